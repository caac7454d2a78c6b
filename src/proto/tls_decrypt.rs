//! The TLS record layer and key schedules, for decrypting a captured connection with its logged keys (sans-IO).
//!
//! [`TlsDecryptor`] takes both directions of one TCP conversation's TLS bytes in order (records may be split
//! anywhere) and hands out what it read: application data, handshake messages (decrypted or cleartext), and the
//! ciphertext it could not read (counted, with the reason kept in its [`Status`]). Covered:
//! - TLS 1.3 (RFC 8446): `TLS_AES_128_GCM_SHA256`, `TLS_AES_256_GCM_SHA384`, `TLS_CHACHA20_POLY1305_SHA256`; traffic
//!   keys and IVs from the logged traffic secrets (HKDF-Expand-Label), per-record nonces, handshake records
//!   decrypted with the handshake secrets and skipped to the Finished message, KeyUpdate (the next generation of
//!   the traffic secret), HelloRetryRequest (the second ServerHello is the real one), 0-RTT data when
//!   `CLIENT_EARLY_TRAFFIC_SECRET` is logged.
//! - TLS 1.2 AEAD suites (RFC 5246/5288/7905): `*_WITH_AES_128_GCM_SHA256`, `*_WITH_AES_256_GCM_SHA384` (ECDHE-RSA,
//!   ECDHE-ECDSA, DHE-RSA, RSA) and `*_WITH_CHACHA20_POLY1305_SHA256` (ECDHE-RSA, ECDHE-ECDSA, DHE-RSA); keys from
//!   the logged master secret through the PRF; explicit nonces for GCM. CBC suites are named as unsupported.
//!
//! The primitives are RustCrypto's (aes-gcm, chacha20poly1305, hkdf, hmac, sha2); the record framing and key
//! schedules are ours (see ARCHITECTURE.md). Hostile input never panics: every length is checked, a record that
//! does not authenticate is never handed out as plaintext.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384};

use std::sync::Arc;

use super::keylog::{KeyLog, Secrets};

/// Largest record body accepted (2^14 plaintext + 256 expansion, RFC 8446 §5.2; TLS 1.2 allows 2048).
pub const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
/// Encrypted records of one direction held while the other direction's ServerHello is still missing.
pub const PENDING_CAP: usize = 1 << 20;

/// Which side sent the bytes.
pub const CLIENT: usize = 0;
/// The server's direction.
pub const SERVER: usize = 1;

/// What became of the connection's ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// No ClientHello seen yet.
    Waiting,
    /// No key for this connection's ClientHello random.
    NoKey,
    /// Keys found; records decrypt (so far).
    Decrypting,
    /// The logged key did not authenticate a record: nothing after it was handed out.
    KeyFailed(String),
    /// The negotiated cipher suite is not one we decrypt.
    UnsupportedSuite(String),
    /// The stream lost bytes or ended mid-record, or the handshake was not seen.
    Truncated(String),
}

/// Something read from the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Decrypted application data of a direction.
    AppData(usize, Vec<u8>),
    /// Handshake messages of a direction (decrypted, or cleartext ones after the hellos).
    Handshake(usize, Vec<u8>),
    /// Bytes of a direction that could not be read (records that did not decrypt, or were not attempted).
    Unread(usize, u64),
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirCounts {
    /// Records decrypted.
    pub records: u64,
    /// Plaintext bytes of application data handed out.
    pub app_bytes: u64,
    /// Bytes not read (records that did not decrypt or could not be attempted).
    pub unread: u64,
    /// Records that did not authenticate.
    pub failed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Suite {
    aead: Aead,
    hash: Hash,
    tls13: bool,
}

fn suite(id: u16) -> Option<Suite> {
    let s = |aead, hash, tls13| Some(Suite { aead, hash, tls13 });
    match id {
        0x1301 => s(Aead::Aes128Gcm, Hash::Sha256, true),
        0x1302 => s(Aead::Aes256Gcm, Hash::Sha384, true),
        0x1303 => s(Aead::ChaCha, Hash::Sha256, true),
        0x009c | 0x009e | 0xc02b | 0xc02f => s(Aead::Aes128Gcm, Hash::Sha256, false),
        0x009d | 0x009f | 0xc02c | 0xc030 => s(Aead::Aes256Gcm, Hash::Sha384, false),
        0xcca8..=0xccaa => s(Aead::ChaCha, Hash::Sha256, false),
        _ => None,
    }
}

/// A cipher suite's IANA name (or its number).
pub fn suite_name(id: u16) -> String {
    match id {
        0x1301 => "TLS_AES_128_GCM_SHA256".into(),
        0x1302 => "TLS_AES_256_GCM_SHA384".into(),
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256".into(),
        0x1304 => "TLS_AES_128_CCM_SHA256".into(),
        0x1305 => "TLS_AES_128_CCM_8_SHA256".into(),
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256".into(),
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384".into(),
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256".into(),
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384".into(),
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA".into(),
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA".into(),
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA".into(),
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA".into(),
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA".into(),
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA".into(),
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256".into(),
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384".into(),
        n => format!("cipher suite {n:#06x}"),
    }
}

/// `HKDF-Expand-Label(secret, label, context, len)` of RFC 8446 §7.1.
pub fn hkdf_expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len() + context.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full.len()).ok()?);
    info.extend_from_slice(full.as_bytes());
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = vec![0u8; len];
    match hash {
        HashAlg::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        HashAlg::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

/// The hash of a TLS 1.3 key schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl From<Hash> for HashAlg {
    fn from(h: Hash) -> Self {
        match h {
            Hash::Sha256 => HashAlg::Sha256,
            Hash::Sha384 => HashAlg::Sha384,
        }
    }
}

/// The TLS 1.2 PRF (RFC 5246 §5): `P_hash(secret, label + seed)` cut to `len`.
pub fn tls12_prf(sha384: bool, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    fn p_hash<M: Mac + KeyInit + Clone>(secret: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let Ok(base) = <M as KeyInit>::new_from_slice(secret) else {
            return out;
        };
        let mut a = {
            let mut m = base.clone();
            m.update(seed);
            m.finalize().into_bytes().to_vec()
        };
        while out.len() < len {
            let mut m = base.clone();
            m.update(&a);
            m.update(seed);
            out.extend_from_slice(&m.finalize().into_bytes());
            let mut m = base.clone();
            m.update(&a);
            a = m.finalize().into_bytes().to_vec();
        }
        out.truncate(len);
        out
    }
    let mut full = label.to_vec();
    full.extend_from_slice(seed);
    if sha384 {
        p_hash::<Hmac<Sha384>>(secret, &full, len)
    } else {
        p_hash::<Hmac<Sha256>>(secret, &full, len)
    }
}

/// One direction's record protection.
struct Keys {
    aead: Aead,
    key: Vec<u8>,
    /// TLS 1.3 and TLS 1.2 ChaCha20: the 12-byte IV; TLS 1.2 GCM: the 4-byte salt.
    iv: Vec<u8>,
    seq: u64,
    tls13: bool,
}

impl Keys {
    fn tls13(suite: Suite, secret: &[u8]) -> Option<Keys> {
        let key_len = match suite.aead {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::ChaCha => 32,
        };
        Some(Keys {
            aead: suite.aead,
            key: hkdf_expand_label(suite.hash.into(), secret, "key", &[], key_len)?,
            iv: hkdf_expand_label(suite.hash.into(), secret, "iv", &[], 12)?,
            seq: 0,
            tls13: true,
        })
    }

    /// Decrypts `record` (header included) in place of a copy; the plaintext and its content type.
    fn open(&self, record: &[u8]) -> Option<(u8, Vec<u8>)> {
        let header = record.get(..5)?;
        let body = record.get(5..)?;
        let mut nonce = [0u8; 12];
        let (ct, aad): (&[u8], Vec<u8>) = if self.tls13 {
            nonce.copy_from_slice(self.iv.get(..12)?);
            xor_seq(&mut nonce, self.seq);
            (body, header.to_vec())
        } else {
            let (ct, explicit_len) = match self.aead {
                Aead::ChaCha => {
                    nonce.copy_from_slice(self.iv.get(..12)?);
                    xor_seq(&mut nonce, self.seq);
                    (body, 0)
                }
                _ => {
                    nonce[..4].copy_from_slice(self.iv.get(..4)?);
                    nonce[4..].copy_from_slice(body.get(..8)?);
                    (body.get(8..)?, 8)
                }
            };
            let _ = explicit_len;
            let plain_len = u16::try_from(ct.len().checked_sub(16)?).ok()?;
            let mut aad = self.seq.to_be_bytes().to_vec();
            aad.extend_from_slice(header.get(..3)?);
            aad.extend_from_slice(&plain_len.to_be_bytes());
            (ct, aad)
        };
        let split = ct.len().checked_sub(16)?;
        let (data, tag) = ct.split_at(split);
        let mut buf = data.to_vec();
        let ok = match self.aead {
            Aead::Aes128Gcm => Aes128Gcm::new_from_slice(&self.key)
                .ok()?
                .decrypt_in_place_detached((&nonce).into(), &aad, &mut buf, tag.into())
                .is_ok(),
            Aead::Aes256Gcm => Aes256Gcm::new_from_slice(&self.key)
                .ok()?
                .decrypt_in_place_detached((&nonce).into(), &aad, &mut buf, tag.into())
                .is_ok(),
            Aead::ChaCha => ChaCha20Poly1305::new_from_slice(&self.key)
                .ok()?
                .decrypt_in_place_detached((&nonce).into(), &aad, &mut buf, tag.into())
                .is_ok(),
        };
        if !ok {
            return None;
        }
        if self.tls13 {
            // TLSInnerPlaintext: content, the real type, zero padding.
            let end = buf.iter().rposition(|&b| b != 0)?;
            let kind = buf[end];
            buf.truncate(end);
            Some((kind, buf))
        } else {
            Some((*header.first()?, buf))
        }
    }
}

fn xor_seq(nonce: &mut [u8; 12], seq: u64) {
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
}

/// Where a TLS 1.3 direction is in its key schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Cleartext records (hellos); for TLS 1.2 until ChangeCipherSpec.
    Clear,
    /// TLS 1.3 handshake traffic keys (after the ServerHello), or 0-RTT early data.
    Handshake,
    /// Application traffic keys of generation `n`.
    App(u32),
    /// Lost: nothing more is read.
    Lost,
}

/// Frames handshake messages across records, to see Finished and KeyUpdate.
#[derive(Default)]
struct HsFramer {
    head: Vec<u8>,
    remaining: usize,
}

impl HsFramer {
    /// Feeds handshake bytes; returns the types of the messages completed.
    fn push(&mut self, mut b: &[u8], done: &mut Vec<u8>) {
        while !b.is_empty() {
            if self.remaining == 0 && self.head.len() < 4 {
                let take = (4 - self.head.len()).min(b.len());
                self.head.extend_from_slice(&b[..take]);
                b = &b[take..];
                if self.head.len() == 4 {
                    self.remaining = usize::from(self.head[1]) << 16
                        | usize::from(self.head[2]) << 8
                        | usize::from(self.head[3]);
                    if self.remaining == 0 {
                        done.push(self.head[0]);
                        self.head.clear();
                    }
                }
                continue;
            }
            let take = self.remaining.min(b.len());
            b = &b[take..];
            self.remaining -= take;
            if self.remaining == 0 {
                done.push(self.head.first().copied().unwrap_or(0));
                self.head.clear();
            }
        }
    }
}

struct Dir {
    /// Bytes of the current incomplete record.
    buf: Vec<u8>,
    phase: Phase,
    keys: Option<Keys>,
    /// TLS 1.3: the current traffic secret (for KeyUpdate) of the application phase.
    secret: Vec<u8>,
    framer: HsFramer,
    /// Encrypted records waiting for the ServerHello (TLS 1.3 client Finished / early data).
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    /// A KeyUpdate was seen in this record: switch after it.
    update_after: bool,
    counts: DirCounts,
    /// A cleartext handshake of a TLS 1.2 direction (after CCS the records are encrypted).
    ccs: bool,
}

impl Dir {
    fn new() -> Self {
        Dir {
            buf: Vec::new(),
            phase: Phase::Clear,
            keys: None,
            secret: Vec::new(),
            framer: HsFramer::default(),
            pending: Vec::new(),
            pending_bytes: 0,
            update_after: false,
            counts: DirCounts::default(),
            ccs: false,
        }
    }
}

/// Decrypts one TLS connection (both directions) with keys from a [`KeyLog`].
pub struct TlsDecryptor {
    keys: Arc<KeyLog>,
    secrets: Option<Secrets>,
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    suite_id: Option<u16>,
    suite: Option<Suite>,
    status: Status,
    dirs: [Dir; 2],
}

impl TlsDecryptor {
    /// A decryptor looking up the connection's keys in `keys` once its ClientHello is seen.
    pub fn new(keys: Arc<KeyLog>) -> Self {
        TlsDecryptor {
            keys,
            secrets: None,
            client_random: None,
            server_random: None,
            suite_id: None,
            suite: None,
            status: Status::Waiting,
            dirs: [Dir::new(), Dir::new()],
        }
    }

    /// What became of the connection so far.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The ClientHello random, once seen.
    pub fn client_random(&self) -> Option<[u8; 32]> {
        self.client_random
    }

    /// Where the keys came from, when found.
    pub fn key_source(&self) -> Option<&str> {
        self.secrets.as_ref().map(|s| &*s.source)
    }

    /// The negotiated cipher suite's number, once the ServerHello is seen.
    pub fn suite_id(&self) -> Option<u16> {
        self.suite_id
    }

    /// Whether keys were found for this connection (its ciphertext is accounted by the decryptor).
    pub fn has_keys(&self) -> bool {
        self.secrets.is_some()
    }

    /// Counters of direction `dir`.
    pub fn counts(&self, dir: usize) -> DirCounts {
        self.dirs.get(dir).map(|d| d.counts).unwrap_or_default()
    }

    /// Feeds the next in-order TLS bytes of direction `dir` (0 client, 1 server).
    pub fn push(&mut self, dir: usize, mut data: &[u8], out: &mut Vec<Out>) {
        let dir = dir.min(1);
        while !data.is_empty() {
            let d = &mut self.dirs[dir];
            if d.phase == Phase::Lost {
                d.counts.unread += data.len() as u64;
                out.push(Out::Unread(dir, data.len() as u64));
                return;
            }
            if d.buf.len() < 5 {
                let take = (5 - d.buf.len()).min(data.len());
                d.buf.extend_from_slice(&data[..take]);
                data = &data[take..];
                if d.buf.len() < 5 {
                    return;
                }
            }
            let kind = d.buf[0];
            let len = usize::from(u16::from_be_bytes([d.buf[3], d.buf[4]]));
            if !(0x14..=0x18).contains(&kind) || d.buf[1] != 3 || len > MAX_RECORD_BODY {
                let n = d.buf.len() as u64 + data.len() as u64;
                d.buf.clear();
                d.phase = Phase::Lost;
                d.counts.unread += n;
                out.push(Out::Unread(dir, n));
                self.fail_truncated(format!(
                    "{} stream is not TLS records any more (type {kind:#04x}, length {len})",
                    side(dir)
                ));
                return;
            }
            let need = 5 + len - d.buf.len();
            let take = need.min(data.len());
            d.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if take < need {
                return;
            }
            let record = std::mem::take(&mut self.dirs[dir].buf);
            self.record(dir, record, out);
        }
    }

    /// Bytes of direction `dir` were lost (a TCP gap): the record layer cannot continue.
    pub fn gap(&mut self, dir: usize, n: u64, out: &mut Vec<Out>) {
        let dir = dir.min(1);
        let d = &mut self.dirs[dir];
        if d.phase == Phase::Lost {
            return;
        }
        let buffered = d.buf.len() as u64 + d.pending_bytes as u64;
        d.buf.clear();
        d.pending.clear();
        d.pending_bytes = 0;
        d.phase = Phase::Lost;
        d.counts.unread += buffered;
        if buffered > 0 {
            out.push(Out::Unread(dir, buffered));
        }
        self.fail_truncated(format!(
            "{} bytes of the {} stream were not captured",
            n,
            side(dir)
        ));
    }

    /// End of both streams: a record cut short, or records still waiting for keys, are unread.
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        for dir in 0..2 {
            let d = &mut self.dirs[dir];
            let n = d.buf.len() as u64 + d.pending_bytes as u64;
            if n > 0 {
                d.counts.unread += n;
                out.push(Out::Unread(dir, n));
                d.buf.clear();
                d.pending.clear();
                d.pending_bytes = 0;
                if self.secrets.is_some() {
                    self.fail_truncated(format!(
                        "the {} stream ended inside a record or before the ServerHello",
                        side(dir)
                    ));
                }
            }
        }
    }

    fn fail_truncated(&mut self, why: String) {
        if matches!(self.status, Status::Decrypting | Status::Waiting) && self.secrets.is_some() {
            self.status = Status::Truncated(why);
        }
    }

    fn unread(&mut self, dir: usize, n: usize, out: &mut Vec<Out>) {
        self.dirs[dir].counts.unread += n as u64;
        out.push(Out::Unread(dir, n as u64));
    }

    /// One whole record (header included) of direction `dir`.
    fn record(&mut self, dir: usize, record: Vec<u8>, out: &mut Vec<Out>) {
        let kind = record[0];
        let body = record.get(5..).unwrap_or_default();
        let phase = self.dirs[dir].phase;
        let tls13 = self.suite.map(|s| s.tls13);
        // Cleartext records.
        let encrypted = match (phase, kind) {
            (Phase::Clear, 0x17) => true,
            (Phase::Clear, _) => false,
            (_, 0x14) if tls13 == Some(true) => false, // middlebox-compatibility ChangeCipherSpec
            _ => true,
        };
        if !encrypted {
            match kind {
                0x16 => {
                    self.clear_handshake(dir, body);
                    // The hellos are read by the handshake reader; the rest (TLS 1.2 certificates, key exchange)
                    // only here.
                    if self.secrets.is_some() && !matches!(body.first(), Some(1 | 2)) {
                        out.push(Out::Handshake(dir, body.to_vec()));
                    }
                }
                0x14 if tls13 == Some(false) => {
                    // TLS 1.2: what follows in this direction is protected.
                    self.dirs[dir].ccs = true;
                    self.start_tls12(dir);
                }
                0x14 if tls13.is_none() => self.dirs[dir].ccs = true,
                _ => {}
            }
            return;
        }
        if self.secrets.is_none() {
            // No keys: the analysis accounts this ciphertext itself.
            return;
        }
        if self.suite.is_none() {
            // Encrypted before the ServerHello was seen (the client's records can come first in the capture).
            let d = &mut self.dirs[dir];
            if d.pending_bytes + record.len() > PENDING_CAP {
                let n = record.len();
                self.unread(dir, n, out);
                self.fail_truncated(format!(
                    "more than {} KiB of {} records came before the ServerHello",
                    PENDING_CAP >> 10,
                    side(dir)
                ));
                return;
            }
            d.pending_bytes += record.len();
            d.pending.push(record);
            return;
        }
        if matches!(self.status, Status::UnsupportedSuite(_)) || self.dirs[dir].keys.is_none() {
            let n = record.len();
            self.unread(dir, n, out);
            return;
        }
        self.decrypt(dir, record, out);
    }

    fn decrypt(&mut self, dir: usize, record: Vec<u8>, out: &mut Vec<Out>) {
        let Some(suite) = self.suite else {
            return;
        };
        let mut opened = self.dirs[dir].keys.as_ref().and_then(|k| k.open(&record));
        if opened.is_none() && suite.tls13 {
            opened = self.tls13_retry(dir, suite, &record);
        }
        let d = &mut self.dirs[dir];
        let Some((kind, plain)) = opened else {
            d.counts.failed += 1;
            let n = record.len();
            let first = d.counts.records == 0;
            let early_client = suite.tls13 && dir == CLIENT && d.phase == Phase::Handshake && first;
            self.unread(dir, n, out);
            if early_client {
                // 0-RTT data without its secret logged: the handshake keys start later.
                return;
            }
            self.dirs[dir].phase = Phase::Lost;
            if !matches!(self.status, Status::KeyFailed(_)) {
                let which = self.dirs[dir].counts.records + self.dirs[dir].counts.failed;
                self.status = Status::KeyFailed(format!(
                    "{} record {which} did not authenticate with the logged key",
                    side(dir)
                ));
            }
            return;
        };
        if let Some(k) = d.keys.as_mut() {
            k.seq = k.seq.wrapping_add(1);
        }
        d.counts.records += 1;
        match kind {
            0x17 => {
                d.counts.app_bytes += plain.len() as u64;
                out.push(Out::AppData(dir, plain));
            }
            0x16 => {
                let mut done = Vec::new();
                d.framer.push(&plain, &mut done);
                out.push(Out::Handshake(dir, plain));
                if suite.tls13 {
                    for t in done {
                        match (t, self.dirs[dir].phase) {
                            (20, Phase::Handshake) => {
                                // Finished: application traffic keys from the next record on.
                                let secret = if dir == CLIENT {
                                    self.secrets.as_ref().and_then(|s| s.client_traffic.clone())
                                } else {
                                    self.secrets.as_ref().and_then(|s| s.server_traffic.clone())
                                };
                                let d = &mut self.dirs[dir];
                                d.keys = secret.as_deref().and_then(|s| Keys::tls13(suite, s));
                                d.secret = secret.unwrap_or_default();
                                d.phase = Phase::App(0);
                            }
                            (24, Phase::App(_)) => self.dirs[dir].update_after = true,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
        let d = &mut self.dirs[dir];
        if d.update_after {
            d.update_after = false;
            Self::key_update(d, suite);
        }
    }

    /// A TLS 1.3 record that failed with the current keys: the next phase's keys (a Finished or KeyUpdate we
    /// could not frame, or 0-RTT data before the handshake keys).
    fn tls13_retry(&mut self, dir: usize, suite: Suite, record: &[u8]) -> Option<(u8, Vec<u8>)> {
        let secrets = self.secrets.as_ref()?;
        let d = &mut self.dirs[dir];
        match d.phase {
            Phase::Handshake => {
                let s = if dir == CLIENT {
                    secrets.client_traffic.clone()
                } else {
                    secrets.server_traffic.clone()
                }?;
                let k = Keys::tls13(suite, &s)?;
                let r = k.open(record)?;
                d.keys = Some(k);
                d.secret = s;
                d.phase = Phase::App(0);
                Some(r)
            }
            Phase::App(_) => {
                let next = hkdf_expand_label(
                    suite.hash.into(),
                    &d.secret,
                    "traffic upd",
                    &[],
                    suite.hash.len(),
                )?;
                let k = Keys::tls13(suite, &next)?;
                let r = k.open(record)?;
                d.keys = Some(k);
                d.secret = next;
                if let Phase::App(n) = d.phase {
                    d.phase = Phase::App(n + 1);
                }
                Some(r)
            }
            _ => None,
        }
    }

    fn key_update(d: &mut Dir, suite: Suite) {
        let Some(next) = hkdf_expand_label(
            suite.hash.into(),
            &d.secret,
            "traffic upd",
            &[],
            suite.hash.len(),
        ) else {
            return;
        };
        d.keys = Keys::tls13(suite, &next);
        d.secret = next;
        if let Phase::App(n) = d.phase {
            d.phase = Phase::App(n + 1);
        }
    }

    /// A cleartext handshake record: the hellos give the randoms and the suite.
    fn clear_handshake(&mut self, dir: usize, body: &[u8]) {
        // The hello is the record's first message in every implementation we know; a hello split across
        // records is read from its first record when the fields fit.
        let Some((&t, rest)) = body.split_first() else {
            return;
        };
        let msg = rest.get(3..).unwrap_or_default();
        match (dir, t) {
            (CLIENT, 1) => {
                let Some(random) = msg.get(2..34).and_then(|r| <[u8; 32]>::try_from(r).ok()) else {
                    return;
                };
                if self.client_random.is_some() {
                    return; // the second ClientHello after a HelloRetryRequest keeps the random
                }
                self.client_random = Some(random);
                match self.keys.get(&random) {
                    Some(s) => {
                        self.secrets = Some(s.clone());
                        self.status = Status::Decrypting;
                    }
                    None => self.status = Status::NoKey,
                }
            }
            (SERVER, 2) => self.server_hello(msg),
            _ => {}
        }
    }

    fn server_hello(&mut self, msg: &[u8]) {
        let Some(random) = msg.get(2..34).and_then(|r| <[u8; 32]>::try_from(r).ok()) else {
            return;
        };
        if random == HELLO_RETRY_REQUEST_RANDOM {
            return; // HelloRetryRequest: the real ServerHello follows
        }
        let Some(&sid_len) = msg.get(34) else {
            return;
        };
        let at = 35 + usize::from(sid_len);
        let Some(id) = msg
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
        else {
            return;
        };
        let mut version = msg
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(0);
        // Extensions: supported_versions (43) names TLS 1.3.
        let mut ext = msg.get(at + 5..).unwrap_or_default();
        while let [t0, t1, l0, l1, tail @ ..] = ext {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            let Some(data) = tail.get(..len) else {
                break;
            };
            if u16::from_be_bytes([*t0, *t1]) == 43 && len == 2 {
                version = u16::from_be_bytes([data[0], data[1]]);
            }
            ext = tail.get(len..).unwrap_or_default();
        }
        self.server_random = Some(random);
        self.suite_id = Some(id);
        let Some(s) = suite(id).filter(|s| s.tls13 == (version == 0x0304)) else {
            if self.secrets.is_some() {
                self.status = Status::UnsupportedSuite(suite_name(id));
            }
            // Records waiting for a suite are unread for good.
            self.suite = None;
            for d in &mut self.dirs {
                d.counts.unread += d.pending_bytes as u64;
                d.pending.clear();
                d.pending_bytes = 0;
            }
            return;
        };
        self.suite = Some(s);
        if s.tls13 {
            for dir in 0..2 {
                let secret = self.secrets.as_ref().and_then(|x| {
                    if dir == CLIENT {
                        x.client_handshake.clone()
                    } else {
                        x.server_handshake.clone()
                    }
                });
                let d = &mut self.dirs[dir];
                d.phase = Phase::Handshake;
                d.keys = secret.as_deref().and_then(|x| Keys::tls13(s, x));
            }
        } else {
            for dir in 0..2 {
                if self.dirs[dir].ccs {
                    self.start_tls12(dir);
                }
            }
        }
    }

    /// TLS 1.2 after ChangeCipherSpec: the direction's keys from the key block.
    fn start_tls12(&mut self, dir: usize) {
        let (Some(s), Some(cr), Some(sr), Some(master)) = (
            self.suite,
            self.client_random,
            self.server_random,
            self.secrets.as_ref().and_then(|x| x.master.clone()),
        ) else {
            if self.suite.is_some() && self.secrets.is_some() {
                // Keys were logged for TLS 1.3 only.
                self.dirs[dir].phase = Phase::App(0);
            }
            return;
        };
        let (key_len, iv_len) = match s.aead {
            Aead::Aes128Gcm => (16, 4),
            Aead::Aes256Gcm => (32, 4),
            Aead::ChaCha => (32, 12),
        };
        let mut seed = sr.to_vec();
        seed.extend_from_slice(&cr);
        let block = tls12_prf(
            s.hash == Hash::Sha384,
            &master,
            b"key expansion",
            &seed,
            2 * key_len + 2 * iv_len,
        );
        let (ck, rest) = block.split_at(key_len.min(block.len()));
        let (sk, rest) = rest.split_at(key_len.min(rest.len()));
        let (civ, siv) = rest.split_at(iv_len.min(rest.len()));
        let (key, iv) = if dir == CLIENT { (ck, civ) } else { (sk, siv) };
        let d = &mut self.dirs[dir];
        d.keys = Some(Keys {
            aead: s.aead,
            key: key.to_vec(),
            iv: iv.to_vec(),
            seq: 0,
            tls13: false,
        });
        d.phase = Phase::App(0);
    }

    /// Records that waited for the ServerHello, now that the suite is known.
    pub fn drain_pending(&mut self, out: &mut Vec<Out>) {
        if self.suite.is_none() {
            return;
        }
        for dir in 0..2 {
            let pending = std::mem::take(&mut self.dirs[dir].pending);
            self.dirs[dir].pending_bytes = 0;
            for r in pending {
                self.record(dir, r, out);
            }
        }
    }
}

fn side(dir: usize) -> &'static str {
    if dir == CLIENT {
        "client"
    } else {
        "server"
    }
}

/// `ServerHello.random` of a TLS 1.3 HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    /// RFC 8448 §3 (simple 1-RTT handshake): the server's handshake traffic keys from its secret.
    #[test]
    fn rfc8448_handshake_traffic_key_and_iv() {
        let s_hs = h("b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38");
        let key = hkdf_expand_label(HashAlg::Sha256, &s_hs, "key", &[], 16).unwrap();
        let iv = hkdf_expand_label(HashAlg::Sha256, &s_hs, "iv", &[], 12).unwrap();
        assert_eq!(key, h("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc"));
        assert_eq!(iv, h("5d 31 3e b2 67 12 76 ee 13 00 0b 30"));
    }

    /// RFC 8448 §3: the client's application traffic key and IV, and its first application record (50 bytes
    /// `00 01 … 31`) opens with them; a flipped bit does not.
    #[test]
    fn rfc8448_application_record_opens_and_a_flipped_bit_fails() {
        let c_ap = h("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5");
        let key = hkdf_expand_label(HashAlg::Sha256, &c_ap, "key", &[], 16).unwrap();
        let iv = hkdf_expand_label(HashAlg::Sha256, &c_ap, "iv", &[], 12).unwrap();
        assert_eq!(key, h("17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51"));
        assert_eq!(iv, h("5b 78 92 3d ee 08 57 90 33 e5 23 d9"));
        let k = Keys::tls13(suite(0x1301).unwrap(), &c_ap).unwrap();
        let record = h("17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55
            cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b
            62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4");
        let (kind, plain) = k.open(&record).expect("authenticates");
        assert_eq!(kind, 0x17);
        assert_eq!(plain, (0u8..=0x31).collect::<Vec<u8>>());
        let mut bad = record.clone();
        bad[40] ^= 1;
        assert!(k.open(&bad).is_none());
        // The same record as the second of the direction (sequence 1) does not open either.
        let k1 = Keys { seq: 1, ..k };
        assert!(k1.open(&record).is_none());
    }

    #[test]
    fn tls12_prf_matches_a_known_vector() {
        // The widely used TLS 1.2 PRF-SHA256 test vector (IETF TLS WG mailing list, 2009).
        let secret = h("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35");
        let seed = h("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c");
        let out = tls12_prf(false, &secret, b"test label", &seed, 100);
        assert_eq!(
            out,
            h("e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a 6b 30 17 91
               e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab 4f bc 91 66 6e 9d ef 9b 97
               fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01 87 34 7b 66")
        );
    }

    #[test]
    fn hostile_records_do_not_panic() {
        let mut keys = KeyLog::new();
        keys.add_text(
            &format!(
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET {} {}\n",
                "00".repeat(32),
                "11".repeat(32)
            ),
            "t",
        );
        for seed in 0u32..300 {
            let mut d = TlsDecryptor::new(Arc::new(keys.clone()));
            let mut out = Vec::new();
            // A ClientHello with random 0, then junk records of every type and length.
            let mut ch = vec![0x16, 3, 1, 0, 40, 1, 0, 0, 36, 3, 3];
            ch.extend_from_slice(&[0; 32]);
            ch.extend_from_slice(&[0, 0]);
            d.push(0, &ch, &mut out);
            let mut x = seed.wrapping_mul(2654435761);
            let junk: Vec<u8> = (0..600)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if i % 97 == 0 {
                        0x17
                    } else {
                        x as u8
                    }
                })
                .collect();
            let mut sh = vec![0x16, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3];
            sh.extend_from_slice(&[7; 32]);
            sh.extend_from_slice(&[0, 0x13, (seed % 4) as u8, 0]);
            d.push(1, &sh, &mut out);
            d.push(1, &junk, &mut out);
            d.push(0, &junk[seed as usize % 50..], &mut out);
            d.finish(&mut out);
            assert!(!out.iter().any(|o| matches!(o, Out::AppData(..))));
        }
    }
}
