//! QUIC Initial packets: the TLS ClientHello a QUIC client sends in the clear.
//!
//! This module owns reading the client side of a QUIC handshake up to its
//! ClientHello. QUIC Initial packets are encrypted, but with keys anyone can
//! derive from the packet itself (RFC 9001 §5.2), so an observer can read
//! them: [`QuicInitialReader`] takes the UDP payloads a client sends, parses
//! the long headers of the packets coalesced in each datagram (RFC 9000
//! §17.2), removes header protection (AES-128-ECB, RFC 9001 §5.4) and
//! payload protection (AEAD_AES_128_GCM, RFC 9001 §5.3) from every Initial
//! packet, reassembles the CRYPTO stream from CRYPTO frames (out of order,
//! across frames, packets and datagrams, at most [`MAX_CRYPTO_BUFFER`]
//! bytes), and hands the complete ClientHello to
//! [`crate::proto::tls::parse_client_hello`] with JA4 transport `q`.
//!
//! Versions: QUIC v1 (RFC 9001 salt and `quic key`/`quic iv`/`quic hp`
//! labels) and QUIC v2 (RFC 9369: its salt, `quicv2 *` labels and Long
//! Header type bits). Other versions (drafts, Google QUIC) are not decrypted.
//!
//! Keys: Initial packets are protected with keys derived from the
//! Destination Connection ID of the client's first Initial packet; after a
//! Retry, from the DCID of the client's next Initial (the Retry's Source
//! CID), and that stays the key for the client's later Initials even when
//! their DCID becomes the server-chosen one. The reader does not need the
//! server's datagrams to follow this: it tries the keys that last worked,
//! then keys derived from the packet's own DCID, and keeps whichever one
//! authenticates (AES-GCM's tag makes a wrong key certain to fail).
//!
//! Crypto is the RustCrypto `hkdf`/`sha2`, `aes` and `aes-gcm` crates; the
//! packet and frame parsing is written here.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::{AeadInPlace, Aes128Gcm};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::proto::tls::{self, ClientHello, TlsError};

/// QUIC version 1 (RFC 9000).
pub const QUIC_V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const QUIC_V2: u32 = 0x6b33_43cf;
/// Most CRYPTO-stream bytes buffered: the largest ClientHello (handshake
/// header included) the reader can reassemble.
pub const MAX_CRYPTO_BUFFER: usize = 64 * 1024;
/// Client datagrams the reader accepts without a result before it gives up
/// ([`QuicProgress::Done`]). A real handshake needs a handful.
pub const MAX_CLIENT_DATAGRAMS: u32 = 64;
/// Most separate (non-adjacent) byte ranges of CRYPTO data held at once.
const MAX_CRYPTO_RANGES: usize = 256;
/// Most key sets (one per version and connection ID) kept derived.
const MAX_KEY_CACHE: usize = 4;
/// Largest connection ID in QUIC v1 and v2 (RFC 9000 §17.2).
const MAX_CID_LEN: usize = 20;
const TAG_LEN: usize = 16;
const SAMPLE_LEN: usize = 16;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;

/// `initial_salt` of QUIC v1 (RFC 9001 §5.2).
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// `initial_salt` of QUIC v2 (RFC 9369 §3.3.1).
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];

/// Why a reader stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    /// The CRYPTO stream (or the ClientHello announced in it) is larger
    /// than [`MAX_CRYPTO_BUFFER`].
    #[error("QUIC CRYPTO data up to byte {len} exceeds the {max}-byte limit")]
    TooLarge {
        /// End offset of the data, or announced size of the ClientHello.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// CRYPTO frames left more holes than the reader tracks.
    #[error("QUIC CRYPTO data in more than {0} separate ranges")]
    TooFragmented(usize),
    /// The client's CRYPTO stream does not start with a ClientHello.
    #[error("QUIC CRYPTO stream starts with handshake type {0}, not ClientHello")]
    NotClientHello(u8),
    /// The reassembled ClientHello does not decode.
    #[error("QUIC ClientHello: {0}")]
    Tls(#[from] TlsError),
}

/// Result of feeding a client datagram to a [`QuicInitialReader`].
#[derive(Debug, Clone, PartialEq)]
pub enum QuicProgress {
    /// No complete ClientHello yet; feed the client's next datagram.
    NeedMore,
    /// The ClientHello, JA4 with transport `q` (the reader is finished).
    ClientHello(ClientHello),
    /// The first datagram is not a QUIC Initial (see
    /// [`looks_like_quic_initial`]); the reader is finished.
    NotQuic,
    /// The ClientHello can no longer be seen: the client moved on to
    /// Handshake or 1-RTT packets, or [`MAX_CLIENT_DATAGRAMS`] datagrams
    /// passed, or the reader already reported its result. Stop feeding.
    Done,
    /// The CRYPTO stream is malformed or too large (the reader is finished).
    Error(QuicError),
}

/// Counters of what a [`QuicInitialReader`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuicStats {
    /// Client datagrams pushed.
    pub datagrams: u32,
    /// Initial packets found (v1 or v2).
    pub initial_packets: u32,
    /// Initial packets whose protection was removed.
    pub decrypted: u32,
    /// Complete Initial packets no key authenticated.
    pub undecryptable: u32,
    /// Initial packets cut short (capture snap length, damaged datagram).
    pub truncated: u32,
}

/// Cheap sniff of a UDP payload: does it start with a QUIC long-header
/// Initial packet a client could send first?
///
/// True for a v1 or v2 Initial packet whose header (up to the packet
/// number) is well formed, and for a long header carrying a reserved
/// "greasing" version `0x?a?a?a?a` (RFC 9000 §15), which a client uses to
/// provoke Version Negotiation before its real Initial.
pub fn looks_like_quic_initial(payload: &[u8]) -> bool {
    match parse_packet(payload) {
        Parsed::Long(h) => h.kind == PacketKind::Initial,
        Parsed::Unsupported { version } => {
            version & 0x0f0f_0f0f == 0x0a0a_0a0a
                && payload.first().is_some_and(|b| b & 0x40 != 0)
                && cid_lengths_ok(payload)
        }
        _ => false,
    }
}

/// Reads the ClientHello out of the Initial packets of ONE QUIC connection,
/// fed with the client's UDP payloads in capture order.
///
/// Sans-IO and bounded: it holds at most [`MAX_CRYPTO_BUFFER`] bytes of
/// CRYPTO data, one decrypted packet, and a few derived key sets.
/// Server datagrams are not needed (see the module docs on keys).
pub struct QuicInitialReader {
    state: State,
    /// Derived keys, most recently used first.
    keys: Vec<CachedKeys>,
    /// The DCID whose keys last authenticated a client Initial.
    current_dcid: Option<Vec<u8>>,
    /// Largest client Initial packet number seen (one number space across
    /// a Retry: RFC 9000 §17.2.5.3).
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    /// The packet being decrypted.
    scratch: Vec<u8>,
    version: Option<u32>,
    /// The decrypted ClientHello message, once reported.
    hello: Option<Vec<u8>>,
    stats: QuicStats,
}

impl std::fmt::Debug for QuicInitialReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicInitialReader")
            .field("state", &self.state)
            .field("version", &self.version)
            .field("crypto_bytes", &self.crypto.contiguous())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for QuicInitialReader {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Reading,
    Finished,
}

impl QuicInitialReader {
    /// A reader waiting for the client's first datagram.
    pub fn new() -> Self {
        Self {
            state: State::Start,
            keys: Vec::new(),
            current_dcid: None,
            largest_pn: None,
            crypto: CryptoStream::default(),
            scratch: Vec::new(),
            version: None,
            hello: None,
            stats: QuicStats::default(),
        }
    }

    /// Feeds the UDP payload of the client's next datagram. Returns
    /// [`QuicProgress::NeedMore`] until a result is known; after any other
    /// result the reader is finished, has released its buffers, and every
    /// later push returns [`QuicProgress::Done`].
    pub fn push_client_datagram(&mut self, payload: &[u8]) -> QuicProgress {
        match self.state {
            State::Finished => return QuicProgress::Done,
            State::Start => {
                if !looks_like_quic_initial(payload) {
                    return self.finish(QuicProgress::NotQuic);
                }
                self.state = State::Reading;
            }
            State::Reading => {}
        }
        self.stats.datagrams = self.stats.datagrams.saturating_add(1);
        let progress = self.datagram(payload);
        if progress == QuicProgress::NeedMore && self.stats.datagrams >= MAX_CLIENT_DATAGRAMS {
            return self.finish(QuicProgress::Done);
        }
        if progress != QuicProgress::NeedMore {
            return self.finish(progress);
        }
        progress
    }

    /// The QUIC version of the last Initial packet decrypted, if any.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// What the reader saw so far.
    pub fn stats(&self) -> QuicStats {
        self.stats
    }

    /// The decrypted ClientHello handshake message (4-byte header
    /// included) after [`QuicProgress::ClientHello`] was returned, e.g. to
    /// search it for canaries: on the wire it is encrypted.
    pub fn client_hello_message(&self) -> Option<&[u8]> {
        self.hello.as_deref()
    }

    fn finish(&mut self, progress: QuicProgress) -> QuicProgress {
        self.state = State::Finished;
        self.keys = Vec::new();
        self.crypto = CryptoStream::default();
        self.scratch = Vec::new();
        progress
    }

    /// Walks the packets coalesced in one datagram.
    fn datagram(&mut self, payload: &[u8]) -> QuicProgress {
        let mut rest = payload;
        let mut moved_on = false;
        let mut first = true;
        while !rest.is_empty() {
            let parsed = parse_packet(rest);
            match parsed {
                Parsed::Short => {
                    // A 1-RTT packet first in a datagram: the client has
                    // finished with Initial keys. (Later in a datagram, a
                    // "short header" is usually zero padding.)
                    if first && rest.first().is_some_and(|b| b & 0x40 != 0) {
                        moved_on = true;
                    }
                    break;
                }
                Parsed::Unsupported { .. } | Parsed::Malformed => break,
                Parsed::Long(h) => {
                    let Some(packet) = rest.get(..h.end) else {
                        // Cut short: nothing after it is readable either.
                        if h.kind == PacketKind::Initial {
                            self.stats.initial_packets =
                                self.stats.initial_packets.saturating_add(1);
                            self.stats.truncated = self.stats.truncated.saturating_add(1);
                        }
                        break;
                    };
                    match h.kind {
                        PacketKind::Initial => {
                            if let Err(e) = self.initial_packet(packet, &h) {
                                return QuicProgress::Error(e);
                            }
                        }
                        // A client discards its Initial keys when it first
                        // sends a Handshake packet (RFC 9001 §4.9.1).
                        PacketKind::Handshake => moved_on = true,
                        PacketKind::ZeroRtt => {}
                        PacketKind::Retry => break,
                    }
                    rest = rest.get(h.end..).unwrap_or_default();
                }
            }
            first = false;
        }
        match self.crypto.client_hello() {
            Some(Ok(message)) => match tls::parse_client_hello(message, 'q') {
                Ok(ch) => {
                    self.hello = Some(message.to_vec());
                    QuicProgress::ClientHello(ch)
                }
                Err(e) => QuicProgress::Error(e.into()),
            },
            Some(Err(e)) => QuicProgress::Error(e),
            None if moved_on => QuicProgress::Done,
            None => QuicProgress::NeedMore,
        }
    }

    /// Decrypts one complete Initial packet and takes its CRYPTO frames.
    fn initial_packet(&mut self, packet: &[u8], h: &LongHeader<'_>) -> Result<(), QuicError> {
        self.stats.initial_packets = self.stats.initial_packets.saturating_add(1);
        if packet.len() < h.pn_offset + 4 + SAMPLE_LEN {
            self.stats.truncated = self.stats.truncated.saturating_add(1);
            return Ok(());
        }
        // Keys that worked last, then keys from this packet's own DCID.
        let mut candidates: Vec<Vec<u8>> = Vec::with_capacity(2);
        if let Some(cur) = &self.current_dcid {
            candidates.push(cur.clone());
        }
        if self.current_dcid.as_deref() != Some(h.dcid) {
            candidates.push(h.dcid.to_vec());
        }
        for dcid in candidates {
            let Some(slot) = self.keys_for(h.version, &dcid) else {
                continue;
            };
            let Some(keys) = self.keys.get(slot) else {
                continue;
            };
            let Some((pn, header_len)) = unprotect(
                &keys.keys,
                packet,
                h.pn_offset,
                self.largest_pn,
                &mut self.scratch,
            ) else {
                continue;
            };
            self.stats.decrypted = self.stats.decrypted.saturating_add(1);
            self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
            self.version = Some(h.version.wire());
            self.current_dcid = Some(dcid);
            // Most recently used first.
            let entry = self.keys.remove(slot);
            self.keys.insert(0, entry);
            let end = self.scratch.len().saturating_sub(TAG_LEN);
            let frames = self.scratch.get(header_len..end).unwrap_or_default();
            return read_frames(frames, &mut self.crypto);
        }
        self.stats.undecryptable = self.stats.undecryptable.saturating_add(1);
        Ok(())
    }

    /// Index of the cached keys for `(version, dcid)`, deriving them (and
    /// evicting the least recently used set) if needed.
    fn keys_for(&mut self, version: Version, dcid: &[u8]) -> Option<usize> {
        if let Some(i) = self
            .keys
            .iter()
            .position(|k| k.version == version && k.dcid == dcid)
        {
            return Some(i);
        }
        let material = initial_key_material(version, dcid, Side::Client)?;
        if self.keys.len() >= MAX_KEY_CACHE {
            self.keys.pop();
        }
        self.keys.push(CachedKeys {
            version,
            dcid: dcid.to_vec(),
            keys: PacketKeys::new(&material),
        });
        Some(self.keys.len() - 1)
    }
}

/// QUIC versions whose Initial packets can be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn from_wire(v: u32) -> Option<Self> {
        match v {
            QUIC_V1 => Some(Self::V1),
            QUIC_V2 => Some(Self::V2),
            _ => None,
        }
    }

    fn wire(self) -> u32 {
        match self {
            Self::V1 => QUIC_V1,
            Self::V2 => QUIC_V2,
        }
    }

    fn salt(self) -> &'static [u8; 20] {
        match self {
            Self::V1 => &SALT_V1,
            Self::V2 => &SALT_V2,
        }
    }

    /// Labels of the packet protection key, IV and header protection key.
    fn labels(self) -> [&'static [u8]; 3] {
        match self {
            Self::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Self::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }

    /// Long Header packet type from the first byte (RFC 9000 §17.2,
    /// RFC 9369 §3.2).
    fn kind(self, first: u8) -> PacketKind {
        let bits = (first >> 4) & 0x03;
        let v1_bits = match self {
            Self::V1 => bits,
            // v2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
            Self::V2 => bits.wrapping_sub(1) & 0x03,
        };
        match v1_bits {
            0 => PacketKind::Initial,
            1 => PacketKind::ZeroRtt,
            2 => PacketKind::Handshake,
            _ => PacketKind::Retry,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PacketKind {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// A parsed long header of a supported version.
#[derive(Debug)]
struct LongHeader<'a> {
    version: Version,
    kind: PacketKind,
    dcid: &'a [u8],
    /// Offset of the (protected) packet number.
    pn_offset: usize,
    /// Offset just past the packet; may exceed the datagram if truncated.
    end: usize,
}

#[derive(Debug)]
enum Parsed<'a> {
    /// Short header (or not QUIC at all): runs to the end of the datagram.
    Short,
    /// A long header of a version this module does not decode (or Version
    /// Negotiation, version 0): its length is unknown.
    Unsupported {
        version: u32,
    },
    /// A long header of a supported version that does not parse.
    Malformed,
    Long(LongHeader<'a>),
}

/// Parses the packet at the start of `data` (RFC 9000 §17.2).
fn parse_packet(data: &[u8]) -> Parsed<'_> {
    let Some((&first, rest)) = data.split_first() else {
        return Parsed::Malformed;
    };
    if first & 0x80 == 0 {
        return Parsed::Short;
    }
    let Some((v, mut rest)) = split(rest, 4) else {
        return Parsed::Malformed;
    };
    let wire = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    let Some(version) = Version::from_wire(wire) else {
        return Parsed::Unsupported { version: wire };
    };
    let mut cid = || -> Option<&[u8]> {
        let (&len, tail) = rest.split_first()?;
        let len = usize::from(len);
        if len > MAX_CID_LEN {
            return None;
        }
        let (id, tail) = split(tail, len)?;
        rest = tail;
        Some(id)
    };
    let (Some(dcid), Some(_scid)) = (cid(), cid()) else {
        return Parsed::Malformed;
    };
    let kind = version.kind(first);
    let header = |pn_offset: usize, end: usize| {
        Parsed::Long(LongHeader {
            version,
            kind,
            dcid,
            pn_offset,
            end,
        })
    };
    if kind == PacketKind::Retry {
        return header(data.len(), data.len());
    }
    if kind == PacketKind::Initial {
        let Some((token_len, tail)) = varint(rest) else {
            return Parsed::Malformed;
        };
        let Some((_token, tail)) = usize::try_from(token_len).ok().and_then(|n| split(tail, n))
        else {
            return Parsed::Malformed;
        };
        rest = tail;
    }
    let Some((length, tail)) = varint(rest) else {
        return Parsed::Malformed;
    };
    let pn_offset = data.len() - tail.len();
    match usize::try_from(length)
        .ok()
        .and_then(|n| pn_offset.checked_add(n))
    {
        Some(end) => header(pn_offset, end),
        None => Parsed::Malformed,
    }
}

/// Whether both connection ID lengths of a long header are at most 20.
fn cid_lengths_ok(payload: &[u8]) -> bool {
    let Some(&dcid_len) = payload.get(5) else {
        return false;
    };
    let scid_at = 6 + usize::from(dcid_len);
    usize::from(dcid_len) <= MAX_CID_LEN
        && payload
            .get(scid_at)
            .is_some_and(|&l| usize::from(l) <= MAX_CID_LEN)
}

fn split(data: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (data.len() >= n).then(|| data.split_at(n))
}

/// A QUIC variable-length integer (RFC 9000 §16) and the bytes after it.
fn varint(data: &[u8]) -> Option<(u64, &[u8])> {
    let (&first, _) = data.split_first()?;
    let len = 1usize << (first >> 6);
    let (bytes, rest) = split(data, len)?;
    let value = bytes
        .iter()
        .skip(1)
        .fold(u64::from(first & 0x3f), |acc, &b| acc << 8 | u64::from(b));
    Some((value, rest))
}

/// Full packet number from its truncated encoding (RFC 9000 §A.3).
fn decode_packet_number(largest: Option<u64>, truncated: u64, bits: u32) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << bits;
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < (1u64 << 62).saturating_sub(win) {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

/// Which endpoint's Initial secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    #[cfg_attr(not(test), allow(dead_code))]
    Server,
}

/// Initial secret and packet protection keys of one endpoint (RFC 9001
/// §5.1–5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyMaterial {
    secret: [u8; 32],
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
fn expand_label(prk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = u16::try_from(out.len()).ok()?;
    let label_len = u8::try_from(6 + label.len()).ok()?;
    let mut info = Vec::with_capacity(4 + 6 + label.len());
    info.extend_from_slice(&len.to_be_bytes());
    info.push(label_len);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0);
    prk.expand(&info, out).ok()
}

fn initial_key_material(version: Version, dcid: &[u8], side: Side) -> Option<KeyMaterial> {
    let (_, initial) = Hkdf::<Sha256>::extract(Some(version.salt()), dcid);
    let mut m = KeyMaterial {
        secret: [0; 32],
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    let label: &[u8] = match side {
        Side::Client => b"client in",
        Side::Server => b"server in",
    };
    expand_label(&initial, label, &mut m.secret)?;
    let prk = Hkdf::<Sha256>::from_prk(&m.secret).ok()?;
    let [key, iv, hp] = version.labels();
    expand_label(&prk, key, &mut m.key)?;
    expand_label(&prk, iv, &mut m.iv)?;
    expand_label(&prk, hp, &mut m.hp)?;
    Some(m)
}

/// Ready-to-use ciphers of one key set.
struct PacketKeys {
    aead: Aes128Gcm,
    iv: [u8; 12],
    hp: Aes128,
}

impl PacketKeys {
    fn new(m: &KeyMaterial) -> Self {
        Self {
            aead: Aes128Gcm::new(&m.key.into()),
            iv: m.iv,
            hp: Aes128::new(&m.hp.into()),
        }
    }

    fn nonce(&self, pn: u64) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, p) in nonce.iter_mut().skip(4).zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        nonce
    }
}

struct CachedKeys {
    version: Version,
    dcid: Vec<u8>,
    keys: PacketKeys,
}

/// Removes header and payload protection from one long-header packet
/// (RFC 9001 §5.3–5.4) into `out`. Returns the packet number and the
/// length of the unprotected header; the plaintext frames are
/// `out[header_len..out.len() - 16]`. `None` if the packet is too short or
/// does not authenticate with these keys.
fn unprotect(
    keys: &PacketKeys,
    packet: &[u8],
    pn_offset: usize,
    largest_pn: Option<u64>,
    out: &mut Vec<u8>,
) -> Option<(u64, usize)> {
    let sample_at = pn_offset.checked_add(4)?;
    let sample = packet.get(sample_at..sample_at.checked_add(SAMPLE_LEN)?)?;
    let mut mask = GenericArray::clone_from_slice(sample);
    keys.hp.encrypt_block(&mut mask);
    out.clear();
    out.extend_from_slice(packet);
    let first = out.first_mut()?;
    *first ^= mask.first()? & 0x0f;
    let pn_len = usize::from(*first & 0x03) + 1;
    let mut truncated = 0u64;
    for (i, m) in mask.iter().skip(1).take(pn_len).enumerate() {
        let b = out.get_mut(pn_offset + i)?;
        *b ^= m;
        truncated = truncated << 8 | u64::from(*b);
    }
    let pn = decode_packet_number(largest_pn, truncated, 8 * pn_len as u32);
    let header_len = pn_offset + pn_len;
    let body_len = out.len().checked_sub(header_len)?.checked_sub(TAG_LEN)?;
    let (header, body) = out.split_at_mut(header_len);
    let (ciphertext, tag) = body.split_at_mut(body_len);
    keys.aead
        .decrypt_in_place_detached(
            GenericArray::from_slice(&keys.nonce(pn)),
            header,
            ciphertext,
            GenericArray::from_slice(tag),
        )
        .ok()?;
    Some((pn, header_len))
}

/// Reads the frames of a decrypted Initial packet, adding CRYPTO data to
/// the stream. Frames allowed in Initial packets (RFC 9000 §12.4) are
/// PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE (0x1c); reading stops
/// at anything else or at a malformed frame, keeping what came before.
fn read_frames(mut p: &[u8], crypto: &mut CryptoStream) -> Result<(), QuicError> {
    while let Some((&frame_type, rest)) = p.split_first() {
        let next = match frame_type {
            0x00 => {
                let zeros = rest.iter().take_while(|&&b| b == 0).count();
                rest.get(zeros..)
            }
            0x01 => Some(rest),
            0x02 => skip_ack(rest, false),
            0x03 => skip_ack(rest, true),
            0x06 => match crypto_frame_body(rest) {
                Some((offset, data, after)) => {
                    crypto.insert(offset, data)?;
                    Some(after)
                }
                None => None,
            },
            0x1c => skip_connection_close(rest),
            _ => None,
        };
        match next {
            Some(r) => p = r,
            None => break,
        }
    }
    Ok(())
}

fn skip_varints(mut p: &[u8], n: u64) -> Option<&[u8]> {
    for _ in 0..n {
        p = varint(p)?.1;
    }
    Some(p)
}

/// Skips an ACK frame body (RFC 9000 §19.3).
fn skip_ack(rest: &[u8], ecn: bool) -> Option<&[u8]> {
    let r = skip_varints(rest, 2)?; // largest acknowledged, ACK delay
    let (ranges, r) = varint(r)?;
    // The first ACK range, then ranges of two varints each (at least 2
    // bytes), so the loop ends when the packet does, whatever `ranges` says.
    let mut r = varint(r)?.1;
    let mut left = ranges;
    while left > 0 {
        r = skip_varints(r, 2)?;
        left -= 1;
    }
    if ecn {
        r = skip_varints(r, 3)?;
    }
    Some(r)
}

/// A CRYPTO frame body (RFC 9000 §19.6): offset, data, and what follows.
fn crypto_frame_body(rest: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    let (offset, r) = varint(rest)?;
    let (len, r) = varint(r)?;
    let (data, r) = split(r, usize::try_from(len).ok()?)?;
    Some((offset, data, r))
}

/// Skips a transport CONNECTION_CLOSE frame body (RFC 9000 §19.19).
fn skip_connection_close(rest: &[u8]) -> Option<&[u8]> {
    let r = skip_varints(rest, 2)?; // error code, frame type
    let (reason_len, r) = varint(r)?;
    Some(split(r, usize::try_from(reason_len).ok()?)?.1)
}

/// The client's CRYPTO stream at the Initial level, reassembled from
/// offsets; bytes `[0, buf.len())`, of which `ranges` were received.
#[derive(Debug, Default)]
struct CryptoStream {
    buf: Vec<u8>,
    /// Received byte ranges, sorted, disjoint and non-adjacent.
    ranges: Vec<(usize, usize)>,
}

impl CryptoStream {
    fn insert(&mut self, offset: u64, data: &[u8]) -> Result<(), QuicError> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset.saturating_add(data.len() as u64);
        let too_large = QuicError::TooLarge {
            len: end,
            max: MAX_CRYPTO_BUFFER,
        };
        let (Ok(start), Ok(end)) = (usize::try_from(offset), usize::try_from(end)) else {
            return Err(too_large);
        };
        if end > MAX_CRYPTO_BUFFER {
            return Err(too_large);
        }
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        if let Some(dst) = self.buf.get_mut(start..end) {
            dst.copy_from_slice(data);
        }
        self.add_range(start, end)
    }

    fn add_range(&mut self, mut start: usize, mut end: usize) -> Result<(), QuicError> {
        let mut merged = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for &(a, b) in &self.ranges {
            if b < start {
                merged.push((a, b));
            } else if a > end {
                if !placed {
                    merged.push((start, end));
                    placed = true;
                }
                merged.push((a, b));
            } else {
                start = start.min(a);
                end = end.max(b);
            }
        }
        if !placed {
            merged.push((start, end));
        }
        if merged.len() > MAX_CRYPTO_RANGES {
            return Err(QuicError::TooFragmented(MAX_CRYPTO_RANGES));
        }
        self.ranges = merged;
        Ok(())
    }

    /// Bytes received without a hole from offset 0.
    fn contiguous(&self) -> usize {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// The complete first handshake message, if received; an error if it
    /// is not a ClientHello or cannot fit.
    fn client_hello(&self) -> Option<Result<&[u8], QuicError>> {
        let have = self.buf.get(..self.contiguous())?;
        let [msg_type, l0, l1, l2, ..] = *have else {
            return None;
        };
        if msg_type != HANDSHAKE_CLIENT_HELLO {
            return Some(Err(QuicError::NotClientHello(msg_type)));
        }
        let total = 4 + (usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2));
        if total > MAX_CRYPTO_BUFFER {
            return Some(Err(QuicError::TooLarge {
                len: total as u64,
                max: MAX_CRYPTO_BUFFER,
            }));
        }
        have.get(..total).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        hex::decode(digits).unwrap()
    }

    const RFC_DCID: &str = "8394c8f03e515708";

    /// RFC 9001 §A.2 / RFC 9369 §A.2: the CRYPTO frame of the client
    /// Initial (then PADDING up to 1162 bytes).
    const RFC_CRYPTO_FRAME: &str = "
        060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a 00080006001d00170018001000070005
        04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408 050806002d00020101001c0002400100
        3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806 048000ffff";

    /// RFC 9001 §A.2: the protected client Initial.
    const RFC9001_CLIENT_INITIAL: &str = "
        c000000001088394c8f03e5157080000 449e7b9aec34d1b1c98dd7689fb8ec11
        d242b123dc9bd8bab936b47d92ec356c 0bab7df5976d27cd449f63300099f399
        1c260ec4c60d17b31f8429157bb35a12 82a643a8d2262cad67500cadb8e7378c
        8eb7539ec4d4905fed1bee1fc8aafba1 7c750e2c7ace01e6005f80fcb7df6212
        30c83711b39343fa028cea7f7fb5ff89 eac2308249a02252155e2347b63d58c5
        457afd84d05dfffdb20392844ae81215 4682e9cf012f9021a6f0be17ddd0c208
        4dce25ff9b06cde535d0f920a2db1bf3 62c23e596d11a4f5a6cf3948838a3aec
        4e15daf8500a6ef69ec4e3feb6b1d98e 610ac8b7ec3faf6ad760b7bad1db4ba3
        485e8a94dc250ae3fdb41ed15fb6a8e5 eba0fc3dd60bc8e30c5c4287e53805db
        059ae0648db2f64264ed5e39be2e20d8 2df566da8dd5998ccabdae053060ae6c
        7b4378e846d29f37ed7b4ea9ec5d82e7 961b7f25a9323851f681d582363aa5f8
        9937f5a67258bf63ad6f1a0b1d96dbd4 faddfcefc5266ba6611722395c906556
        be52afe3f565636ad1b17d508b73d874 3eeb524be22b3dcbc2c7468d54119c74
        68449a13d8e3b95811a198f3491de3e7 fe942b330407abf82a4ed7c1b311663a
        c69890f4157015853d91e923037c227a 33cdd5ec281ca3f79c44546b9d90ca00
        f064c99e3dd97911d39fe9c5d0b23a22 9a234cb36186c4819e8b9c5927726632
        291d6a418211cc2962e20fe47feb3edf 330f2c603a9d48c0fcb5699dbfe58964
        25c5bac4aee82e57a85aaf4e2513e4f0 5796b07ba2ee47d80506f8d2c25e50fd
        14de71e6c418559302f939b0e1abd576 f279c4b2e0feb85c1f28ff18f58891ff
        ef132eef2fa09346aee33c28eb130ff2 8f5b766953334113211996d20011a198
        e3fc433f9f2541010ae17c1bf202580f 6047472fb36857fe843b19f5984009dd
        c324044e847a4f4a0ab34f719595de37 252d6235365e9b84392b061085349d73
        203a4a13e96f5432ec0fd4a1ee65accd d5e3904df54c1da510b0ff20dcc0c77f
        cb2c0e0eb605cb0504db87632cf3d8b4 dae6e705769d1de354270123cb11450e
        fc60ac47683d7b8d0f811365565fd98c 4c8eb936bcab8d069fc33bd801b03ade
        a2e1fbc5aa463d08ca19896d2bf59a07 1b851e6c239052172f296bfb5e724047
        90a2181014f3b94a4e97d117b4381303 68cc39dbb2d198065ae3986547926cd2
        162f40a29f0c3c8745c0f50fba3852e5 66d44575c29d39a03f0cda721984b6f4
        40591f355e12d439ff150aab7613499d bd49adabc8676eef023b15b65bfc5ca0
        6948109f23f350db82123535eb8a7433 bdabcb909271a6ecbcb58b936a88cd4e
        8f2e6ff5800175f113253d8fa9ca8885 c2f552e657dc603f252e1a8e308f76f0
        be79e2fb8f5d5fbbe2e30ecadd220723 c8c0aea8078cdfcb3868263ff8f09400
        54da48781893a7e49ad5aff4af300cd8 04a6b6279ab3ff3afb64491c85194aab
        760d58a606654f9f4400e8b38591356f bf6425aca26dc85244259ff2b19c41b9
        f96f3ca9ec1dde434da7d2d392b905dd f3d1f9af93d1af5950bd493f5aa731b4
        056df31bd267b6b90a079831aaf579be 0a39013137aac6d404f518cfd4684064
        7e78bfe706ca4cf5e9c5453e9f7cfd2b 8b4c8d169a44e55c88d4a9a7f9474241
        e221af44860018ab0856972e194cd934";

    /// RFC 9369 §A.2: the same client Initial in QUIC v2.
    const RFC9369_CLIENT_INITIAL: &str = "
        d76b3343cf088394c8f03e5157080000 449ea0c95e82ffe67b6abcdb4298b485
        dd04de806071bf03dceebfa162e75d6c 96058bdbfb127cdfcbf903388e99ad04
        9f9a3dd4425ae4d0992cfff18ecf0fdb 5a842d09747052f17ac2053d21f57c5d
        250f2c4f0e0202b70785b7946e992e58 a59ac52dea6774d4f03b55545243cf1a
        12834e3f249a78d395e0d18f4d766004 f1a2674802a747eaa901c3f10cda5500
        cb9122faa9f1df66c392079a1b40f0de 1c6054196a11cbea40afb6ef5253cd68
        18f6625efce3b6def6ba7e4b37a40f77 32e093daa7d52190935b8da58976ff33
        12ae50b187c1433c0f028edcc4c2838b 6a9bfc226ca4b4530e7a4ccee1bfa2a3
        d396ae5a3fb512384b2fdd851f784a65 e03f2c4fbe11a53c7777c023462239dd
        6f7521a3f6c7d5dd3ec9b3f233773d4b 46d23cc375eb198c63301c21801f6520
        bcfb7966fc49b393f0061d974a2706df 8c4a9449f11d7f3d2dcbb90c6b877045
        636e7c0c0fe4eb0f697545460c806910 d2c355f1d253bc9d2452aaa549e27a1f
        ac7cf4ed77f322e8fa894b6a83810a34 b361901751a6f5eb65a0326e07de7c12
        16ccce2d0193f958bb3850a833f7ae43 2b65bc5a53975c155aa4bcb4f7b2c4e5
        4df16efaf6ddea94e2c50b4cd1dfe060 17e0e9d02900cffe1935e0491d77ffb4
        fdf85290fdd893d577b1131a610ef6a5 c32b2ee0293617a37cbb08b847741c3b
        8017c25ca9052ca1079d8b78aebd4787 6d330a30f6a8c6d61dd1ab5589329de7
        14d19d61370f8149748c72f132f0fc99 f34d766c6938597040d8f9e2bb522ff9
        9c63a344d6a2ae8aa8e51b7b90a4a806 105fcbca31506c446151adfeceb51b91
        abfe43960977c87471cf9ad4074d30e1 0d6a7f03c63bd5d4317f68ff325ba3bd
        80bf4dc8b52a0ba031758022eb025cdd 770b44d6d6cf0670f4e990b22347a7db
        848265e3e5eb72dfe8299ad7481a4083 22cac55786e52f633b2fb6b614eaed18
        d703dd84045a274ae8bfa73379661388 d6991fe39b0d93debb41700b41f90a15
        c4d526250235ddcd6776fc77bc97e7a4 17ebcb31600d01e57f32162a8560cacc
        7e27a096d37a1a86952ec71bd89a3e9a 30a2a26162984d7740f81193e8238e61
        f6b5b984d4d3dfa033c1bb7e4f0037fe bf406d91c0dccf32acf423cfa1e70710
        10d3f270121b493ce85054ef58bada42 310138fe081adb04e2bd901f2f13458b
        3d6758158197107c14ebb193230cd115 7380aa79cae1374a7c1e5bbcb80ee23e
        06ebfde206bfb0fcbc0edc4ebec30966 1bdd908d532eb0c6adc38b7ca7331dce
        8dfce39ab71e7c32d318d136b6100671 a1ae6a6600e3899f31f0eed19e3417d1
        34b90c9058f8632c798d4490da498730 7cba922d61c39805d072b589bd52fdf1
        e86215c2d54e6670e07383a27bbffb5a ddf47d66aa85a0c6f9f32e59d85a44dd
        5d3b22dc2be80919b490437ae4f36a0a e55edf1d0b5cb4e9a3ecabee93dfc6e3
        8d209d0fa6536d27a5d6fbb17641cde2 7525d61093f1b28072d111b2b4ae5f89
        d5974ee12e5cf7d5da4d6a31123041f3 3e61407e76cffcdcfd7e19ba58cf4b53
        6f4c4938ae79324dc402894b44faf8af bab35282ab659d13c93f70412e85cb19
        9a37ddec600545473cfb5a05e08d0b20 9973b2172b4d21fb69745a262ccde96b
        a18b2faa745b6fe189cf772a9f84cbfc";

    /// JA4 of the RFC's ClientHello, worked out by hand from its bytes:
    /// QUIC "q", TLS 1.3 (supported_versions 0x0304), SNI present "d",
    /// 2 ciphers (1301, 1302), 11 extensions, first ALPN "alpn" -> "an";
    /// sha256("1301,1302")[..12] = 62ed6f6ca7ad;
    /// sha256("0005,000a,000d,001c,002b,002d,0033,0039,ff01_0403,0503,0603,
    /// 0203,0804,0805,0806")[..12] = 4d634acda6c0.
    const RFC_JA4: &str = "q13d0211an_62ed6f6ca7ad_4d634acda6c0";

    /// The ClientHello message inside the RFC's CRYPTO frame.
    fn rfc_client_hello() -> Vec<u8> {
        hex(RFC_CRYPTO_FRAME)[4..].to_vec()
    }

    fn expect_hello(p: QuicProgress) -> ClientHello {
        match p {
            QuicProgress::ClientHello(ch) => ch,
            other => panic!("expected a ClientHello, got {other:?}"),
        }
    }

    #[test]
    fn rfc9001_key_derivation() {
        let dcid = hex(RFC_DCID);
        let c = initial_key_material(Version::V1, &dcid, Side::Client).unwrap();
        assert_eq!(
            c.secret.to_vec(),
            hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        );
        assert_eq!(c.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(c.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(c.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let s = initial_key_material(Version::V1, &dcid, Side::Server).unwrap();
        assert_eq!(
            s.secret.to_vec(),
            hex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
        );
        assert_eq!(s.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(s.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(s.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
    }

    #[test]
    fn rfc9369_key_derivation() {
        let dcid = hex(RFC_DCID);
        let c = initial_key_material(Version::V2, &dcid, Side::Client).unwrap();
        assert_eq!(
            c.secret.to_vec(),
            hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b")
        );
        assert_eq!(c.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(c.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(c.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
        let s = initial_key_material(Version::V2, &dcid, Side::Server).unwrap();
        assert_eq!(s.key.to_vec(), hex("82db637861d55e1d011f19ea71d5d2a7"));
        assert_eq!(s.iv.to_vec(), hex("dd13c276499c0249d3310652"));
        assert_eq!(s.hp.to_vec(), hex("edf6d05c83121201b436e16877593c3a"));
    }

    /// Unprotects an RFC sample packet and checks header and payload
    /// byte for byte.
    fn check_unprotect(
        version: Version,
        side: Side,
        packet: &str,
        want_header: &str,
        want_pn: u64,
        want_payload: &[u8],
    ) {
        let packet = hex(packet);
        let Parsed::Long(h) = parse_packet(&packet) else {
            panic!("not a long header");
        };
        assert_eq!(h.end, packet.len());
        let keys = PacketKeys::new(&initial_key_material(version, &hex(RFC_DCID), side).unwrap());
        let mut out = Vec::new();
        let (pn, header_len) = unprotect(&keys, &packet, h.pn_offset, None, &mut out).unwrap();
        assert_eq!(pn, want_pn);
        assert_eq!(out[..header_len], hex(want_header)[..]);
        assert_eq!(&out[header_len..out.len() - TAG_LEN], want_payload);
    }

    #[test]
    fn rfc9001_client_initial_unprotects_byte_for_byte() {
        let mut payload = hex(RFC_CRYPTO_FRAME);
        payload.resize(1162, 0);
        check_unprotect(
            Version::V1,
            Side::Client,
            RFC9001_CLIENT_INITIAL,
            "c300000001088394c8f03e5157080000449e00000002",
            2,
            &payload,
        );
    }

    #[test]
    fn rfc_server_initials_unprotect() {
        // §A.3 of both RFCs: server keys, a 2-byte packet number, ACK +
        // CRYPTO(ServerHello), no padding.
        let payload = hex(
            "02000000000600405a020000560303ee fce7f7b37ba1d1632e96677825ddf739
             88cfc79825df566dc5430b9a045a1200 130100002e00330024001d00209d3c94
             0d89690b84d08a60993c144eca684d10 81287c834d5311bcf32bb9da1a002b00
             020304",
        );
        check_unprotect(
            Version::V1,
            Side::Server,
            "cf000000010008f067a5502a4262b500 4075c0d95a482cd0991cd25b0aac406a
             5816b6394100f37a1c69797554780bb3 8cc5a99f5ede4cf73c3ec2493a1839b3
             dbcba3f6ea46c5b7684df3548e7ddeb9 c3bf9c73cc3f3bded74b562bfb19fb84
             022f8ef4cdd93795d77d06edbb7aaf2f 58891850abbdca3d20398c276456cbc4
             2158407dd074ee",
            "c1000000010008f067a5502a4262b50040750001",
            1,
            &payload,
        );
        check_unprotect(
            Version::V2,
            Side::Server,
            "dc6b3343cf0008f067a5502a4262b500 4075d92faaf16f05d8a4398c47089698
             baeea26b91eb761d9b89237bbf872630 17915358230035f7fd3945d88965cf17
             f9af6e16886c61bfc703106fbaf3cb4c fa52382dd16a393e42757507698075b2
             c984c707f0a0812d8cd5a6881eaf21ce da98f4bd23f6fe1a3e2c43edd9ce7ca8
             4bed8521e2e140",
            "d16b3343cf0008f067a5502a4262b50040750001",
            1,
            &payload,
        );
    }

    #[test]
    fn rfc9001_client_initial_gives_client_hello() {
        let packet = hex(RFC9001_CLIENT_INITIAL);
        assert!(looks_like_quic_initial(&packet));
        let mut r = QuicInitialReader::new();
        let ch = expect_hello(r.push_client_datagram(&packet));
        assert_eq!(ch.sni.as_deref(), Some("example.com"));
        assert_eq!(ch.alpn, ["alpn"]);
        assert_eq!(ch.supported_versions, ["TLS1.3"]);
        assert_eq!(ch.ciphers, [0x1301, 0x1302]);
        assert_eq!(ch.ja4, RFC_JA4);
        assert_eq!(
            ch,
            tls::parse_client_hello(&rfc_client_hello(), 'q').unwrap()
        );
        assert_eq!(r.version(), Some(QUIC_V1));
        assert_eq!(r.stats().decrypted, 1);
        assert_eq!(r.client_hello_message(), Some(&rfc_client_hello()[..]));
        assert_eq!(r.push_client_datagram(&packet), QuicProgress::Done);
    }

    #[test]
    fn rfc9369_client_initial_gives_client_hello() {
        let mut payload = hex(RFC_CRYPTO_FRAME);
        payload.resize(1162, 0);
        check_unprotect(
            Version::V2,
            Side::Client,
            RFC9369_CLIENT_INITIAL,
            "d36b3343cf088394c8f03e5157080000449e00000002",
            2,
            &payload,
        );
        let packet = hex(RFC9369_CLIENT_INITIAL);
        assert!(looks_like_quic_initial(&packet));
        let mut r = QuicInitialReader::new();
        let ch = expect_hello(r.push_client_datagram(&packet));
        assert_eq!(ch.ja4, RFC_JA4);
        assert_eq!(r.version(), Some(QUIC_V2));
    }

    // ---- building protected packets (inverse of `unprotect`) ----

    fn encode_varint(v: u64) -> Vec<u8> {
        match v {
            0..=0x3f => vec![v as u8],
            0x40..=0x3fff => ((v as u16) | 0x4000).to_be_bytes().to_vec(),
            0x4000..=0x3fff_ffff => ((v as u32) | 0x8000_0000).to_be_bytes().to_vec(),
            _ => (v | 0xc000_0000_0000_0000).to_be_bytes().to_vec(),
        }
    }

    fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend(encode_varint(offset));
        f.extend(encode_varint(data.len() as u64));
        f.extend_from_slice(data);
        f
    }

    /// A protected long-header packet of `kind` (v1 type bits), keys from
    /// `key_dcid`, a 4-byte packet number, `frames` padded to >= 20 bytes.
    fn protect(
        version: Version,
        first_bits: u8,
        key_dcid: &[u8],
        dcid: &[u8],
        token: &[u8],
        pn: u32,
        frames: &[u8],
    ) -> Vec<u8> {
        let m = initial_key_material(version, key_dcid, Side::Client).unwrap();
        let keys = PacketKeys::new(&m);
        let mut payload = frames.to_vec();
        if payload.len() < 20 {
            payload.resize(20, 0);
        }
        let mut p = vec![0x80 | 0x40 | first_bits | 0x03];
        p.extend(version.wire().to_be_bytes());
        p.push(dcid.len() as u8);
        p.extend_from_slice(dcid);
        p.push(3);
        p.extend_from_slice(b"src");
        if version.kind(first_bits | 0x80) == PacketKind::Initial {
            p.extend(encode_varint(token.len() as u64));
            p.extend_from_slice(token);
        }
        let length = (4 + payload.len() + TAG_LEN) as u64;
        p.extend(((length as u16) | 0x4000).to_be_bytes());
        let pn_offset = p.len();
        p.extend(pn.to_be_bytes());
        let tag = keys
            .aead
            .encrypt_in_place_detached(
                GenericArray::from_slice(&keys.nonce(u64::from(pn))),
                &p,
                &mut payload,
            )
            .unwrap();
        p.extend(payload);
        p.extend(tag);
        let mut mask = GenericArray::clone_from_slice(&p[pn_offset + 4..pn_offset + 20]);
        keys.hp.encrypt_block(&mut mask);
        p[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            p[pn_offset + i] ^= mask[1 + i];
        }
        p
    }

    fn initial(key_dcid: &[u8], dcid: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
        protect(Version::V1, 0x00, key_dcid, dcid, b"", pn, frames)
    }

    /// Pads a datagram to 1200 bytes with zeros after its packets.
    fn pad(mut d: Vec<u8>) -> Vec<u8> {
        if d.len() < 1200 {
            d.resize(1200, 0);
        }
        d
    }

    #[test]
    fn protect_helper_reproduces_rfc_packet() {
        // The test encoder is checked against the RFC, so packets built
        // with it are real QUIC packets.
        let dcid = hex(RFC_DCID);
        let mut frames = hex(RFC_CRYPTO_FRAME);
        frames.resize(1162, 0);
        let mut p = vec![0xc3];
        p.extend(QUIC_V1.to_be_bytes());
        p.push(8);
        p.extend_from_slice(&dcid);
        p.extend([0, 0, 0x44, 0x9e]);
        let m = initial_key_material(Version::V1, &dcid, Side::Client).unwrap();
        let keys = PacketKeys::new(&m);
        let pn_offset = p.len();
        p.extend(2u32.to_be_bytes());
        let tag = keys
            .aead
            .encrypt_in_place_detached(GenericArray::from_slice(&keys.nonce(2)), &p, &mut frames)
            .unwrap();
        p.extend(frames);
        p.extend(tag);
        let mut mask = GenericArray::clone_from_slice(&p[pn_offset + 4..pn_offset + 20]);
        keys.hp.encrypt_block(&mut mask);
        assert_eq!(mask[..5], hex("437b9aec36")[..]);
        p[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            p[pn_offset + i] ^= mask[1 + i];
        }
        assert_eq!(p, hex(RFC9001_CLIENT_INITIAL));
        // And the generic helper agrees on the 4-byte-PN layout.
        let q = protect(Version::V1, 0, &dcid, &dcid, b"", 2, &hex(RFC_CRYPTO_FRAME));
        let Parsed::Long(h) = parse_packet(&q) else {
            panic!()
        };
        assert_eq!((h.kind, h.end), (PacketKind::Initial, q.len()));
    }

    #[test]
    fn client_hello_split_over_two_initials_out_of_order() {
        let ch = rfc_client_hello();
        let dcid = hex("0011223344556677");
        // Datagram 1: the middle and the start of the hello, in that order,
        // with PING, ACK and PADDING around them.
        let mut f1 = vec![0x01];
        f1.extend(crypto_frame(100, &ch[100..180]));
        f1.extend([0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]); // ACK, 1 range
        f1.extend(crypto_frame(0, &ch[..100]));
        f1.extend([0; 10]);
        let d1 = pad(initial(&dcid, &dcid, 0, &f1));
        // Datagram 2: the rest, overlapping what came before.
        let d2 = pad(initial(&dcid, &dcid, 1, &crypto_frame(150, &ch[150..])));
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push_client_datagram(&d1), QuicProgress::NeedMore);
        let got = expect_hello(r.push_client_datagram(&d2));
        assert_eq!(got.ja4, RFC_JA4);
        assert_eq!(r.stats().decrypted, 2);
        assert_eq!(r.stats().datagrams, 2);
    }

    #[test]
    fn retry_changes_the_key_dcid() {
        let ch = rfc_client_hello();
        let original = hex("1bafab9fd70531bb");
        let retry_scid = hex("e1051eaa7adfb230");
        let server_cid = hex("5555");
        let mut r = QuicInitialReader::new();
        // First flight: first part of the hello, keys from the original DCID.
        let d1 = pad(initial(
            &original,
            &original,
            0,
            &crypto_frame(0, &ch[..60]),
        ));
        assert_eq!(r.push_client_datagram(&d1), QuicProgress::NeedMore);
        // After a Retry: DCID = the Retry's SCID, keys from it, a token,
        // packet numbers continuing.
        let d2 = pad(protect(
            Version::V1,
            0,
            &retry_scid,
            &retry_scid,
            b"retry-token",
            1,
            &crypto_frame(60, &ch[60..120]),
        ));
        assert_eq!(r.push_client_datagram(&d2), QuicProgress::NeedMore);
        // Then the server's chosen CID as DCID, still the Retry-SCID keys.
        let d3 = pad(initial(
            &retry_scid,
            &server_cid,
            2,
            &crypto_frame(120, &ch[120..]),
        ));
        assert_eq!(expect_hello(r.push_client_datagram(&d3)).ja4, RFC_JA4);
        assert_eq!(r.stats().undecryptable, 0);
        assert_eq!(r.stats().decrypted, 3);
    }

    #[test]
    fn coalesced_packets_and_v2() {
        let ch = rfc_client_hello();
        let dcid = hex("a1a2a3a4a5a6a7a8");
        // v2 Initial (type bits 0b01) with the first half, then a v2 0-RTT
        // packet (0b10), then another v2 Initial with the rest.
        let mut d = protect(
            Version::V2,
            0x10,
            &dcid,
            &dcid,
            b"",
            0,
            &crypto_frame(0, &ch[..120]),
        );
        d.extend(protect(Version::V2, 0x20, &dcid, &dcid, b"", 0, b"\x01"));
        d.extend(protect(
            Version::V2,
            0x10,
            &dcid,
            &dcid,
            b"",
            1,
            &crypto_frame(120, &ch[120..]),
        ));
        let d = pad(d);
        assert!(looks_like_quic_initial(&d));
        let mut r = QuicInitialReader::new();
        assert_eq!(expect_hello(r.push_client_datagram(&d)).ja4, RFC_JA4);
        assert_eq!(r.version(), Some(QUIC_V2));
        assert_eq!(r.stats().initial_packets, 2);
    }

    #[test]
    fn version_negotiation_first() {
        // A greasing version first (provoking Version Negotiation), then v1.
        let dcid = hex("9d5728481287a3b4");
        let mut grease = vec![0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8];
        grease.extend_from_slice(&dcid);
        grease.push(0);
        let grease = pad(grease);
        assert!(looks_like_quic_initial(&grease));
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push_client_datagram(&grease), QuicProgress::NeedMore);
        let d = pad(initial(
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &rfc_client_hello()),
        ));
        assert_eq!(expect_hello(r.push_client_datagram(&d)).ja4, RFC_JA4);
    }

    #[test]
    fn stops_when_the_client_moves_on() {
        let dcid = hex("0102030405060708");
        let ch = rfc_client_hello();
        let d1 = pad(initial(&dcid, &dcid, 0, &crypto_frame(0, &ch[..50])));
        // Handshake packet (v1 type 0b10) without the rest of the hello.
        let hs = protect(Version::V1, 0x20, &dcid, &dcid, b"", 0, b"\x01");
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push_client_datagram(&d1), QuicProgress::NeedMore);
        assert_eq!(r.push_client_datagram(&hs), QuicProgress::Done);
        assert_eq!(r.push_client_datagram(&d1), QuicProgress::Done);
        // A 1-RTT (short header) datagram.
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push_client_datagram(&d1), QuicProgress::NeedMore);
        assert_eq!(
            r.push_client_datagram(&[0x43, 1, 2, 3, 4, 5]),
            QuicProgress::Done
        );
        // Datagrams that never complete the hello: bounded.
        let mut r = QuicInitialReader::new();
        let mut last = QuicProgress::NeedMore;
        for _ in 0..MAX_CLIENT_DATAGRAMS {
            last = r.push_client_datagram(&d1);
        }
        assert_eq!(last, QuicProgress::Done);
        assert_eq!(r.stats().datagrams, MAX_CLIENT_DATAGRAMS);
    }

    #[test]
    fn not_quic_and_undecryptable() {
        let mut r = QuicInitialReader::new();
        assert_eq!(
            r.push_client_datagram(b"\x12\x34\x01\x00\x00\x01\x00\x00"),
            QuicProgress::NotQuic
        );
        assert_eq!(
            r.push_client_datagram(&hex(RFC9001_CLIENT_INITIAL)),
            QuicProgress::Done
        );
        // A flipped ciphertext bit: authenticates with no key.
        let mut p = hex(RFC9001_CLIENT_INITIAL);
        p[500] ^= 1;
        let mut r = QuicInitialReader::new();
        assert_eq!(r.push_client_datagram(&p), QuicProgress::NeedMore);
        assert_eq!(r.stats().undecryptable, 1);
        // Cut by a snap length: counted as truncated.
        let mut r = QuicInitialReader::new();
        let p = hex(RFC9001_CLIENT_INITIAL);
        assert_eq!(r.push_client_datagram(&p[..214]), QuicProgress::NeedMore);
        assert_eq!(r.stats().truncated, 1);
        assert_eq!(r.stats().decrypted, 0);
    }

    #[test]
    fn caps_are_reported() {
        let dcid = hex("0102030405060708");
        // A ClientHello announcing 70000 bytes.
        let d = pad(initial(
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &[1, 0x01, 0x11, 0x70, 3, 3]),
        ));
        let mut r = QuicInitialReader::new();
        assert_eq!(
            r.push_client_datagram(&d),
            QuicProgress::Error(QuicError::TooLarge {
                len: 70004,
                max: MAX_CRYPTO_BUFFER
            })
        );
        // CRYPTO data beyond the buffer.
        let d = pad(initial(&dcid, &dcid, 0, &crypto_frame(70_000, b"xyz")));
        let mut r = QuicInitialReader::new();
        assert!(matches!(
            r.push_client_datagram(&d),
            QuicProgress::Error(QuicError::TooLarge { len: 70_003, .. })
        ));
        // Too many holes.
        let mut frames = Vec::new();
        for i in 0..300u64 {
            frames.extend(crypto_frame(10 + 3 * i, b"a"));
        }
        let d = initial(&dcid, &dcid, 0, &frames);
        let mut r = QuicInitialReader::new();
        assert_eq!(
            r.push_client_datagram(&d),
            QuicProgress::Error(QuicError::TooFragmented(MAX_CRYPTO_RANGES))
        );
        // Not a ClientHello, and a malformed one.
        let d = pad(initial(&dcid, &dcid, 0, &crypto_frame(0, &[2, 0, 0, 1, 0])));
        let mut r = QuicInitialReader::new();
        assert_eq!(
            r.push_client_datagram(&d),
            QuicProgress::Error(QuicError::NotClientHello(2))
        );
        let d = pad(initial(
            &dcid,
            &dcid,
            0,
            &crypto_frame(0, &[1, 0, 0, 2, 3, 3]),
        ));
        let mut r = QuicInitialReader::new();
        assert!(matches!(
            r.push_client_datagram(&d),
            QuicProgress::Error(QuicError::Tls(_))
        ));
    }

    #[test]
    fn crypto_stream_ranges() {
        let mut s = CryptoStream::default();
        s.insert(10, b"bb").unwrap();
        s.insert(20, b"dd").unwrap();
        assert_eq!(s.ranges, [(10, 12), (20, 22)]);
        s.insert(12, b"cccccccc").unwrap(); // adjacent to both
        assert_eq!(s.ranges, [(10, 22)]);
        assert_eq!(s.contiguous(), 0);
        s.insert(0, &[1, 0, 0, 18, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(s.ranges, [(0, 22)]);
        assert_eq!(s.client_hello().unwrap().unwrap().len(), 22);
        s.insert(5, b"").unwrap();
        assert_eq!(s.ranges, [(0, 22)]);
    }

    #[test]
    fn frames_reader() {
        let mut s = CryptoStream::default();
        // PADDING, PING, ACK with ECN and 2 ranges, CONNECTION_CLOSE, CRYPTO.
        let mut p = vec![0, 0, 0, 1, 0x03, 5, 0, 2, 0, 1, 1, 1, 1, 7, 8, 9];
        p.extend([0x1c, 0x0a, 0x06, 3, b'b', b'y', b'e']);
        p.extend(crypto_frame(0, b"hello"));
        // An unknown frame type stops reading: later CRYPTO data is ignored.
        p.push(0x08);
        p.extend(crypto_frame(5, b"world"));
        read_frames(&p, &mut s).unwrap();
        assert_eq!(s.ranges, [(0, 5)]);
        assert_eq!(&s.buf, b"hello");
        // Truncated frames stop quietly.
        read_frames(&[0x06, 0x40], &mut s).unwrap();
        read_frames(&[0x02, 1, 0, 0xff], &mut s).unwrap();
        assert_eq!(s.ranges, [(0, 5)]);
    }

    #[test]
    fn varints_and_packet_numbers() {
        // RFC 9000 §A.1 examples.
        assert_eq!(
            varint(&hex("c2197c5eff14e88c")).unwrap().0,
            151_288_809_941_952_652
        );
        assert_eq!(varint(&hex("9d7f3e7d")).unwrap().0, 494_878_333);
        assert_eq!(varint(&hex("7bbd")).unwrap().0, 15_293);
        assert_eq!(varint(&hex("25")).unwrap().0, 37);
        assert_eq!(varint(&hex("4025")).unwrap().0, 37);
        assert!(varint(&hex("7b")).is_none());
        // RFC 9000 §A.3 example.
        assert_eq!(
            decode_packet_number(Some(0xa82f30ea), 0x9b32, 16),
            0xa82f9b32
        );
        assert_eq!(decode_packet_number(None, 2, 32), 2);
        assert_eq!(decode_packet_number(Some(0xff), 0x01, 8), 0x101);
        assert_eq!(decode_packet_number(Some(0x101), 0xff, 8), 0xff);
        assert_eq!(decode_packet_number(Some(u64::MAX), 0, 8), !0xff);
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_quic_initial(&hex(RFC9001_CLIENT_INITIAL)[..30]));
        // Handshake packet, Retry, short header, VN, unknown version.
        let dcid = hex("0102030405060708");
        let hs = protect(Version::V1, 0x20, &dcid, &dcid, b"", 0, b"\x01");
        assert!(!looks_like_quic_initial(&hs));
        assert!(!looks_like_quic_initial(&[0x43, 1, 2, 3, 4, 5, 6, 7]));
        assert!(!looks_like_quic_initial(&[0x80, 0, 0, 0, 0, 8, 1, 2, 3]));
        assert!(!looks_like_quic_initial(&[
            0xc0, 0x51, 0x30, 0x35, 0x30, 8, 1
        ]));
        // CID longer than 20, header cut before the Length field.
        assert!(!looks_like_quic_initial(&[0xc0, 0, 0, 0, 1, 21]));
        assert!(!looks_like_quic_initial(&hex(RFC9001_CLIENT_INITIAL)[..17]));
        assert!(!looks_like_quic_initial(&[]));
        assert!(!looks_like_quic_initial(b"GET / HTTP/1.1\r\n"));
        // Greasing version with a bad CID length.
        assert!(!looks_like_quic_initial(&[
            0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 30
        ]));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let base = hex(RFC9001_CLIENT_INITIAL);
        for _ in 0..1500 {
            let mut m = base.clone();
            for _ in 0..3 {
                let i = next() as usize % 64;
                m[i] = next() as u8;
            }
            let cut = next() as usize % (m.len() + 1);
            let mut r = QuicInitialReader::new();
            let _ = r.push_client_datagram(&m[..cut]);
            let _ = r.push_client_datagram(&m);
            let _ = looks_like_quic_initial(&m[..cut]);
        }
        for _ in 0..3000 {
            let len = (next() % 300) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = junk.first_mut() {
                *b |= 0x80;
            }
            if junk.len() > 5 && next() % 2 == 0 {
                junk[1..5].copy_from_slice(&QUIC_V1.to_be_bytes());
            }
            let mut r = QuicInitialReader::new();
            r.state = State::Reading;
            let _ = r.push_client_datagram(&junk);
            let mut s = CryptoStream::default();
            let _ = read_frames(&junk, &mut s);
            let _ = s.client_hello();
        }
        // Decrypted-but-hostile frames: random frame bytes in valid packets.
        let dcid = hex("0102030405060708");
        for pn in 0..200u32 {
            let len = (next() % 120) as usize;
            let mut frames: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(b) = frames.first_mut() {
                *b = [0x00, 0x01, 0x02, 0x03, 0x06, 0x1c][next() as usize % 6];
            }
            let mut r = QuicInitialReader::new();
            let _ = r.push_client_datagram(&pad(initial(&dcid, &dcid, pn, &frames)));
        }
    }
}
