//! TLS handshake inspection: ClientHello / ServerHello fields and JA4.
//!
//! This module owns reading the plaintext start of one direction of a TLS
//! stream: [`HandshakeReader`] reassembles TLS records (split across TCP
//! segments) and handshake messages (split across records), and reports the
//! first ClientHello or ServerHello it finds. From a ClientHello it extracts
//! the SNI, ALPN list, versions, cipher suites, extension types and signature
//! algorithms, and computes the JA4 fingerprint ([`ja4`]).
//!
//! Records and handshake messages are decoded with `tls-parser`
//! (`parse_tls_record_header`, `parse_tls_message_handshake`,
//! `parse_tls_client_hello_extension`, `parse_tls_server_hello_extension`).
//! The extension list itself is walked here (type, length, data) so that one
//! extension `tls-parser` cannot decode does not hide the ones after it: the
//! list of extension types, which JA4 needs, stays complete.
//!
//! JA4 follows the FoxIO specification (`technical_details/JA4.md` in
//! `FoxIO-LLC/ja4`, 2026-01 revision): GREASE values ignored everywhere;
//! version from the highest `supported_versions` value, else the ClientHello
//! version; `d` if an SNI extension is present, else `i`; cipher and
//! extension counts capped at 99; first and last character of the first ALPN
//! value (`00` if none or empty; first and last hex digit of the whole value
//! if either end byte is not ASCII alphanumeric); then the truncated SHA-256
//! of the sorted cipher list and of the sorted extension list without SNI and
//! ALPN, followed by `_` and the signature algorithms in wire order
//! (`000000000000` for an empty list).

use serde::Serialize;
use sha2::{Digest, Sha256};
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

/// Most handshake-message bytes buffered by [`HandshakeReader`] (the largest
/// handshake message it can reassemble, header included).
pub const MAX_HANDSHAKE_BUFFER: usize = 64 * 1024;
/// Largest record body accepted: 2^14 plus the 2048 bytes RFC 5246 allows
/// for compressed/encrypted records.
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_ALPN: u16 = 0x0010;
/// `ServerHello.random` of a TLS 1.3 HelloRetryRequest (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Errors from decoding a hello message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The bytes are not a well-formed handshake message of the expected kind.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A record or handshake message is larger than the reader accepts.
    #[error("{what} of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Fields of a TLS ClientHello.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientHello {
    /// First `host_name` of the server_name extension (bytes that are not
    /// UTF-8 replaced by U+FFFD).
    pub sni: Option<String>,
    /// ALPN protocol names in order (invalid UTF-8 replaced by U+FFFD).
    pub alpn: Vec<String>,
    /// supported_versions values, GREASE excluded, as `"TLS1.3"`,
    /// `"TLS1.2"`, ... (see [`version_name`]).
    pub supported_versions: Vec<String>,
    /// The ClientHello `legacy_version` field, named as by [`version_name`].
    pub legacy_version: String,
    /// Cipher suites in wire order, GREASE included.
    pub ciphers: Vec<u16>,
    /// Extension types in wire order, GREASE included.
    pub extensions: Vec<u16>,
    /// signature_algorithms values in wire order, GREASE included.
    pub signature_algorithms: Vec<u16>,
    /// JA4 fingerprint, with the transport given when parsing (`t` for
    /// [`HandshakeReader`]).
    pub ja4: String,
}

/// Fields of a TLS ServerHello.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerHello {
    /// Negotiated version: the supported_versions extension if present, else
    /// the `legacy_version` field, named as by [`version_name`].
    pub version: String,
    /// Selected cipher suite.
    pub cipher: u16,
    /// Selected ALPN protocol, if any.
    pub alpn: Option<String>,
}

/// Result of feeding bytes to a [`HandshakeReader`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TlsProgress {
    /// No hello yet; feed more bytes.
    NeedMore,
    /// A ClientHello was found (the reader is finished).
    ClientHello(ClientHello),
    /// A ServerHello was found (the reader is finished).
    ServerHello(ServerHello),
    /// Handshake messages are no longer visible (ChangeCipherSpec, alert or
    /// application data came before any hello, or the reader already
    /// reported its result): stop feeding.
    Done,
    /// The stream does not start with a TLS record.
    NotTls,
    /// The stream started as TLS but is malformed or too large (the reader is
    /// finished).
    Error(String),
}

/// Cheap sniff of the first bytes of a TCP client stream: a TLS handshake
/// record (`0x16 0x03 0x00..=0x04`) with a plausible length, carrying a
/// ClientHello if the 6th byte is present. Needs at least 3 bytes.
pub fn looks_like_tls_client(prefix: &[u8]) -> bool {
    match prefix {
        [0x16, 0x03, minor, rest @ ..] if *minor <= 0x04 => {
            if let [hi, lo, more @ ..] = rest {
                let len = usize::from(u16::from_be_bytes([*hi, *lo]));
                if len == 0 || len > MAX_RECORD_LEN {
                    return false;
                }
                if let Some(&msg_type) = more.first() {
                    return msg_type == HANDSHAKE_CLIENT_HELLO;
                }
            }
            true
        }
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderState {
    /// No record seen yet.
    Start,
    /// Reading records.
    Records,
    /// Result reported; everything else is ignored.
    Finished,
}

/// Reassembles the handshake of ONE direction of a TCP stream and reports
/// its first ClientHello or ServerHello.
///
/// Sans-IO: feed the stream's bytes in order with [`HandshakeReader::push`].
/// Records may be split across pushes and handshake messages across records.
/// Buffers at most one record (≤ 18 KiB) and [`MAX_HANDSHAKE_BUFFER`] bytes
/// of handshake messages; a longer message is reported as
/// [`TlsProgress::Error`]. Handshake messages other than the hellos are
/// skipped, as is a TLS 1.3 HelloRetryRequest (and one ChangeCipherSpec
/// after it), so the real ServerHello is reported.
#[derive(Debug)]
pub struct HandshakeReader {
    state: ReaderState,
    /// The current, incomplete record (header included).
    record: Vec<u8>,
    /// Handshake-protocol bytes not yet consumed as whole messages.
    handshake: Vec<u8>,
    /// A HelloRetryRequest was seen: one ChangeCipherSpec may follow.
    ccs_allowed: bool,
}

impl Default for HandshakeReader {
    fn default() -> Self {
        Self::new()
    }
}

impl HandshakeReader {
    /// Creates a reader positioned at the start of a stream direction.
    pub fn new() -> Self {
        Self {
            state: ReaderState::Start,
            record: Vec::new(),
            handshake: Vec::new(),
            ccs_allowed: false,
        }
    }

    /// Feeds the next bytes of the stream. Returns [`TlsProgress::NeedMore`]
    /// until a result is known; after any other result the reader is
    /// finished and every later push returns [`TlsProgress::Done`].
    pub fn push(&mut self, data: &[u8]) -> TlsProgress {
        if self.state == ReaderState::Finished {
            return TlsProgress::Done;
        }
        let progress = self.push_inner(data);
        if progress != TlsProgress::NeedMore {
            self.state = ReaderState::Finished;
            self.record = Vec::new();
            self.handshake = Vec::new();
        }
        progress
    }

    fn push_inner(&mut self, mut data: &[u8]) -> TlsProgress {
        while !data.is_empty() {
            // Record header.
            if self.record.len() < 5 {
                let take = (5 - self.record.len()).min(data.len());
                let (head, tail) = data.split_at(take);
                self.record.extend_from_slice(head);
                data = tail;
                if self.state == ReaderState::Start && !plausible_record_start(&self.record) {
                    return TlsProgress::NotTls;
                }
                if self.record.len() < 5 {
                    return TlsProgress::NeedMore;
                }
            }
            let Ok((_, header)) = tls_parser::parse_tls_record_header(&self.record) else {
                return TlsProgress::Error("unreadable TLS record header".into());
            };
            let record_type = u8::from(header.record_type);
            let plausible = (0x14..=0x18).contains(&record_type) && header.version.0 >> 8 == 3;
            if self.state == ReaderState::Start {
                if !plausible {
                    return TlsProgress::NotTls;
                }
                self.state = ReaderState::Records;
            } else if !plausible {
                return TlsProgress::Error(format!(
                    "invalid TLS record header (type {record_type:#04x}, version {:#06x})",
                    header.version.0
                ));
            }
            let body_len = usize::from(header.len);
            if body_len > MAX_RECORD_LEN {
                return TlsProgress::Error(
                    TlsError::TooLarge {
                        what: "TLS record",
                        len: body_len,
                        max: MAX_RECORD_LEN,
                    }
                    .to_string(),
                );
            }
            // Record body.
            let missing = (5 + body_len).saturating_sub(self.record.len());
            let take = missing.min(data.len());
            let (head, tail) = data.split_at(take);
            self.record.extend_from_slice(head);
            data = tail;
            if take < missing {
                return TlsProgress::NeedMore;
            }
            let record = std::mem::take(&mut self.record);
            let body = record.get(5..).unwrap_or_default();
            match record_type {
                0x16 => {
                    if let Some(progress) = self.add_handshake_bytes(body) {
                        return progress;
                    }
                }
                0x14 if self.ccs_allowed => self.ccs_allowed = false,
                // ChangeCipherSpec, alert, application data, heartbeat
                // before a hello: the handshake is not visible.
                _ => return TlsProgress::Done,
            }
            // Reuse the allocation for the next record.
            self.record = record;
            self.record.clear();
        }
        TlsProgress::NeedMore
    }

    /// Appends one record's handshake bytes (in pieces, so the buffer never
    /// exceeds its cap) and handles every complete message.
    fn add_handshake_bytes(&mut self, mut body: &[u8]) -> Option<TlsProgress> {
        while !body.is_empty() {
            let room = MAX_HANDSHAKE_BUFFER.saturating_sub(self.handshake.len());
            if room == 0 {
                // Unreachable in practice: a complete message is always
                // consumed, and longer ones are rejected from their header.
                return Some(TlsProgress::Error("handshake buffer full".into()));
            }
            let take = room.min(body.len());
            let (head, tail) = body.split_at(take);
            self.handshake.extend_from_slice(head);
            body = tail;
            if let Some(progress) = self.take_messages() {
                return Some(progress);
            }
        }
        None
    }

    /// Handles every complete handshake message in the buffer.
    fn take_messages(&mut self) -> Option<TlsProgress> {
        loop {
            let [msg_type, l0, l1, l2, ..] = self.handshake[..] else {
                return None;
            };
            let total = 4 + (usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2));
            if total > MAX_HANDSHAKE_BUFFER {
                return Some(TlsProgress::Error(
                    TlsError::TooLarge {
                        what: "handshake message",
                        len: total,
                        max: MAX_HANDSHAKE_BUFFER,
                    }
                    .to_string(),
                ));
            }
            let message = self.handshake.get(..total)?;
            match msg_type {
                HANDSHAKE_CLIENT_HELLO => {
                    return Some(match parse_client_hello(message, 't') {
                        Ok(ch) => TlsProgress::ClientHello(ch),
                        Err(e) => TlsProgress::Error(e.to_string()),
                    });
                }
                HANDSHAKE_SERVER_HELLO => match parse_server_hello(message) {
                    Ok(None) => self.ccs_allowed = true,
                    Ok(Some(sh)) => return Some(TlsProgress::ServerHello(sh)),
                    Err(e) => return Some(TlsProgress::Error(e.to_string())),
                },
                _ => {}
            }
            self.handshake.drain(..total);
        }
    }
}

/// Whether the first bytes of a stream (possibly fewer than a record
/// header) can start a TLS record: content type 0x14..=0x18, major version 3.
fn plausible_record_start(prefix: &[u8]) -> bool {
    match prefix {
        [] => true,
        [t] => (0x14..=0x18).contains(t),
        [t, major, ..] => (0x14..=0x18).contains(t) && *major == 3,
    }
}

/// Walks an extension block: `(type, whole TLV bytes, data)` for each
/// complete extension, stopping at the first truncated one.
fn extensions(block: &[u8]) -> Vec<(u16, &[u8], &[u8])> {
    let mut out = Vec::new();
    let mut rest = block;
    while let [t0, t1, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let (Some(data), Some(tlv)) = (tail.get(..len), rest.get(..4 + len)) else {
            break;
        };
        out.push((u16::from_be_bytes([*t0, *t1]), tlv, data));
        rest = tail.get(len..).unwrap_or_default();
    }
    out
}

/// Decodes one ClientHello handshake message (4-byte handshake header
/// included), computing its JA4 with the given transport character (`t` for
/// TLS over TCP, `q` for QUIC, `d` for DTLS).
pub fn parse_client_hello(message: &[u8], transport: char) -> Result<ClientHello, TlsError> {
    let ch = match tls_parser::parse_tls_message_handshake(message) {
        Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)))) => ch,
        _ => return Err(TlsError::Malformed("ClientHello")),
    };
    let ciphers: Vec<u16> = ch.ciphers.iter().map(|c| c.0).collect();
    let mut ext_types = Vec::new();
    let mut sni = None;
    let mut alpn_raw: Vec<&[u8]> = Vec::new();
    let mut versions: Vec<u16> = Vec::new();
    let mut signature_algorithms = Vec::new();
    for (ext_type, tlv, _) in extensions(ch.ext.unwrap_or_default()) {
        ext_types.push(ext_type);
        let Ok((_, ext)) = tls_parser::parse_tls_client_hello_extension(tlv) else {
            continue;
        };
        match ext {
            TlsExtension::SNI(names) if sni.is_none() => {
                sni = names
                    .iter()
                    .find(|(kind, _)| kind.0 == 0)
                    .map(|(_, name)| String::from_utf8_lossy(name).into_owned());
            }
            TlsExtension::ALPN(protocols) if alpn_raw.is_empty() => alpn_raw = protocols,
            TlsExtension::SupportedVersions(v) if versions.is_empty() => {
                versions = v.iter().map(|v| v.0).collect();
            }
            TlsExtension::SignatureAlgorithms(s) if signature_algorithms.is_empty() => {
                signature_algorithms = s;
            }
            _ => {}
        }
    }
    let ja4 = ja4(
        &Ja4Input {
            legacy_version: ch.version.0,
            supported_versions: &versions,
            ciphers: &ciphers,
            extensions: &ext_types,
            first_alpn: alpn_raw.first().copied(),
            signature_algorithms: &signature_algorithms,
        },
        transport,
    );
    Ok(ClientHello {
        sni,
        alpn: alpn_raw
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
        supported_versions: versions
            .iter()
            .filter(|v| !is_grease(**v))
            .map(|v| version_name(*v))
            .collect(),
        legacy_version: version_name(ch.version.0),
        ciphers,
        extensions: ext_types,
        signature_algorithms,
        ja4,
    })
}

/// Decodes one ServerHello handshake message (header included). Returns
/// `Ok(None)` for a TLS 1.3 HelloRetryRequest.
fn parse_server_hello(message: &[u8]) -> Result<Option<ServerHello>, TlsError> {
    let (legacy_version, random, cipher, ext) =
        match tls_parser::parse_tls_message_handshake(message) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)))) => {
                (sh.version.0, sh.random, sh.cipher.0, sh.ext)
            }
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHelloV13Draft18(sh)))) => {
                (sh.version.0, sh.random, sh.cipher.0, sh.ext)
            }
            _ => return Err(TlsError::Malformed("ServerHello")),
        };
    if random == HELLO_RETRY_REQUEST_RANDOM {
        return Ok(None);
    }
    let mut version = legacy_version;
    let mut alpn = None;
    for (_, tlv, _) in extensions(ext.unwrap_or_default()) {
        match tls_parser::parse_tls_server_hello_extension(tlv) {
            Ok((_, TlsExtension::SupportedVersions(v))) => {
                if let Some(v) = v.first() {
                    version = v.0;
                }
            }
            Ok((_, TlsExtension::ALPN(protocols))) => {
                alpn = protocols
                    .first()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
            }
            _ => {}
        }
    }
    Ok(Some(ServerHello {
        version: version_name(version),
        cipher,
        alpn,
    }))
}

/// Names a protocol version: `"SSL2.0"`, `"SSL3.0"`, `"TLS1.0"` …
/// `"TLS1.3"`, `"DTLS1.0"`, `"DTLS1.2"`, `"DTLS1.3"`, `"TLS1.3-draft<n>"`
/// for 0x7fnn, otherwise `"0x<hex>"`.
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSL2.0".into(),
        0x0300 => "SSL3.0".into(),
        0x0301 => "TLS1.0".into(),
        0x0302 => "TLS1.1".into(),
        0x0303 => "TLS1.2".into(),
        0x0304 => "TLS1.3".into(),
        0xfeff => "DTLS1.0".into(),
        0xfefd => "DTLS1.2".into(),
        0xfefc => "DTLS1.3".into(),
        0x7f00..=0x7fff => format!("TLS1.3-draft{}", v & 0xff),
        _ => format!("{v:#06x}"),
    }
}

/// True for the 16 GREASE values of RFC 8701 (0x0a0a, 0x1a1a, … 0xfafa).
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// ClientHello values JA4 is computed from (all in wire order, GREASE
/// values may be included: [`ja4`] ignores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ja4Input<'a> {
    /// The ClientHello `legacy_version` field.
    pub legacy_version: u16,
    /// Values of the supported_versions extension (empty if absent).
    pub supported_versions: &'a [u16],
    /// Cipher suites.
    pub ciphers: &'a [u16],
    /// Extension types.
    pub extensions: &'a [u16],
    /// The first protocol name of the ALPN extension, if any.
    pub first_alpn: Option<&'a [u8]>,
    /// Values of the signature_algorithms extension.
    pub signature_algorithms: &'a [u16],
}

/// Computes the JA4 fingerprint (`t13d1516h2_8daaf6152771_e5627efa2ab1`);
/// `transport` is the first character: `t` (TLS over TCP), `q` (QUIC) or
/// `d` (DTLS).
pub fn ja4(input: &Ja4Input<'_>, transport: char) -> String {
    let not_grease = |v: &&u16| !is_grease(**v);
    let version = input
        .supported_versions
        .iter()
        .filter(not_grease)
        .max()
        .copied()
        .unwrap_or(input.legacy_version);
    let version = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let sni = if input.extensions.contains(&EXT_SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    let mut ciphers: Vec<u16> = input.ciphers.iter().filter(not_grease).copied().collect();
    let extensions: Vec<u16> = input
        .extensions
        .iter()
        .filter(not_grease)
        .copied()
        .collect();
    let cipher_count = ciphers.len().min(99);
    let extension_count = extensions.len().min(99);

    ciphers.sort_unstable();
    let cipher_hash = hash12(&hex_list(&ciphers));

    let mut hashed_ext: Vec<u16> = extensions
        .into_iter()
        .filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN)
        .collect();
    hashed_ext.sort_unstable();
    let signatures: Vec<u16> = input
        .signature_algorithms
        .iter()
        .filter(not_grease)
        .copied()
        .collect();
    let ext_hash = if hashed_ext.is_empty() {
        hash12("")
    } else if signatures.is_empty() {
        hash12(&hex_list(&hashed_ext))
    } else {
        hash12(&format!(
            "{}_{}",
            hex_list(&hashed_ext),
            hex_list(&signatures)
        ))
    };
    format!(
        "{transport}{version}{sni}{cipher_count:02}{extension_count:02}{}_{cipher_hash}_{ext_hash}",
        ja4_alpn(input.first_alpn)
    )
}

/// The two ALPN characters of JA4: first and last byte of the first ALPN
/// value if both are ASCII alphanumeric, else the first and last hex digit
/// of the value; `00` if there is none or it is empty.
fn ja4_alpn(first: Option<&[u8]>) -> String {
    let Some(value) = first else {
        return "00".into();
    };
    let (Some(&a), Some(&z)) = (value.first(), value.last()) else {
        return "00".into();
    };
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        [char::from(a), char::from(z)].iter().collect()
    } else {
        // First hex digit of the first byte, last hex digit of the last byte.
        let mut digits = [0u8; 4];
        // Cannot fail: the output is exactly twice the input.
        let _ = hex::encode_to_slice([a, z], &mut digits);
        let [hi, _, _, lo] = digits;
        [char::from(hi), char::from(lo)].iter().collect()
    }
}

/// Comma-separated 4-digit lower-case hex values.
fn hex_list(values: &[u16]) -> String {
    let mut out = String::with_capacity(values.len() * 5);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{v:04x}"));
    }
    out
}

/// First 12 hex digits of the SHA-256 of `s`; `000000000000` for an empty
/// list.
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(digest.get(..6).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn ext(t: u16, data: &[u8]) -> Vec<u8> {
        let mut out = t.to_be_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    fn sni_ext(host: &[u8]) -> Vec<u8> {
        let mut entry = vec![0u8];
        entry.extend_from_slice(&(host.len() as u16).to_be_bytes());
        entry.extend_from_slice(host);
        let mut data = (entry.len() as u16).to_be_bytes().to_vec();
        data.extend(entry);
        ext(0x0000, &data)
    }

    fn alpn_ext(protocols: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for p in protocols {
            list.push(p.len() as u8);
            list.extend_from_slice(p);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend(list);
        ext(0x0010, &data)
    }

    fn versions_ext(versions: &[u16]) -> Vec<u8> {
        let mut data = vec![(versions.len() * 2) as u8];
        data.extend(u16s(versions));
        ext(0x002b, &data)
    }

    fn sigalgs_ext(algs: &[u16]) -> Vec<u8> {
        let mut data = ((algs.len() * 2) as u16).to_be_bytes().to_vec();
        data.extend(u16s(algs));
        ext(0x000d, &data)
    }

    fn handshake(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![msg_type];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(body);
        out
    }

    /// A ClientHello handshake message (header included).
    fn client_hello(legacy: u16, ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = legacy.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x42; 32]); // random
        body.push(32);
        body.extend_from_slice(&[0x17; 32]); // session id
        body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        body.extend(u16s(ciphers));
        body.extend_from_slice(&[1, 0]); // null compression
        if !exts.is_empty() {
            let block: Vec<u8> = exts.concat();
            body.extend_from_slice(&(block.len() as u16).to_be_bytes());
            body.extend(block);
        }
        handshake(HANDSHAKE_CLIENT_HELLO, &body)
    }

    fn server_hello(random: [u8; 32], cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = 0x0303u16.to_be_bytes().to_vec();
        body.extend_from_slice(&random);
        body.push(0);
        body.extend_from_slice(&cipher.to_be_bytes());
        body.push(0);
        let block: Vec<u8> = exts.concat();
        body.extend_from_slice(&(block.len() as u16).to_be_bytes());
        body.extend(block);
        handshake(HANDSHAKE_SERVER_HELLO, &body)
    }

    fn record(content_type: u8, version: u16, body: &[u8]) -> Vec<u8> {
        let mut out = vec![content_type];
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Builds a ClientHello from a JA4 "original order" listing: extension
    /// types in wire order get realistic contents for the four extensions
    /// JA4 reads, empty data otherwise; GREASE is added at the places Chrome
    /// uses (first cipher, first and last extension, first supported
    /// version), which JA4 must ignore.
    fn from_listing(
        legacy: u16,
        ciphers: &[u16],
        ext_types: &[u16],
        sigalgs: &[u16],
        alpn: &[&[u8]],
        versions: &[u16],
    ) -> Vec<u8> {
        let mut all_ciphers = vec![0x3a3a];
        all_ciphers.extend_from_slice(ciphers);
        let mut exts = vec![ext(0x8a8a, &[])];
        for &t in ext_types {
            exts.push(match t {
                0x0000 => sni_ext(b"example.com"),
                0x0010 => alpn_ext(alpn),
                0x002b => {
                    let mut v = vec![0xdada];
                    v.extend_from_slice(versions);
                    versions_ext(&v)
                }
                0x000d => sigalgs_ext(sigalgs),
                0x0033 => ext(0x0033, &[0, 6, 0x4a, 0x4a, 0, 1, 0, 0x1d, 0, 0x20][..4]),
                _ => ext(t, &[]),
            });
        }
        exts.push(ext(0x1a1a, &[0]));
        client_hello(legacy, &all_ciphers, &exts)
    }

    fn parse(msg: &[u8]) -> ClientHello {
        parse_client_hello(msg, 't').unwrap()
    }

    #[test]
    fn ja4_spec_worked_example() {
        // Source: FoxIO-LLC/ja4 technical_details/JA4.md, "Example" and
        // "Extension hash" sections (ciphers, extensions and signature
        // algorithms in the listed wire order; TLS 1.3, SNI, ALPN h2).
        let ciphers = [
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let exts = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ];
        let sigs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        let msg = from_listing(
            0x0303,
            &ciphers,
            &exts,
            &sigs,
            &[b"h2", b"http/1.1"],
            &[0x0304, 0x0303],
        );
        let ch = parse(&msg);
        assert_eq!(ch.ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        // The spec's hash of the same extension list without signature
        // algorithms.
        assert_eq!(
            hash12("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"),
            "6d807ffa2a79"
        );
        // Other fields of the same hello.
        assert_eq!(ch.sni.as_deref(), Some("example.com"));
        assert_eq!(ch.alpn, ["h2", "http/1.1"]);
        assert_eq!(ch.supported_versions, ["TLS1.3", "TLS1.2"]);
        assert_eq!(ch.legacy_version, "TLS1.2");
        assert_eq!(ch.ciphers.len(), 16, "GREASE cipher kept");
        assert_eq!(ch.ciphers[0], 0x3a3a);
        assert_eq!(ch.extensions.len(), 18, "GREASE extensions kept");
        assert_eq!((ch.extensions[0], ch.extensions[17]), (0x8a8a, 0x1a1a));
        assert_eq!(ch.extensions[1..17], exts);
        assert_eq!(ch.signature_algorithms, sigs);
        // QUIC transport marker.
        assert!(parse_client_hello(&msg, 'q')
            .unwrap()
            .ja4
            .starts_with("q13d1516h2_"));
    }

    #[test]
    fn ja4_repository_test_vectors() {
        // Source: FoxIO-LLC/ja4 python/test/testdata/*.json ("JA4.1" with
        // its "JA4_ro.1" listing: ciphers, extensions, signature algorithms
        // in wire order). The ALPN lists and versions are the ones implied
        // by the fingerprint's first part.
        struct Vector {
            source: &'static str,
            legacy: u16,
            ciphers: &'static [u16],
            exts: &'static [u16],
            sigs: &'static [u16],
            alpn: &'static [&'static [u8]],
            versions: &'static [u16],
            want: &'static str,
        }
        let chrome_ciphers: &[u16] = &[
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let chrome_sigs: &[u16] = &[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        let vectors = [
            Vector {
                source: "ipv6.pcapng www.cloudflare.com",
                legacy: 0x0303,
                ciphers: &[
                    0xc030, 0xc02c, 0xc028, 0xc024, 0xc014, 0xc00a, 0x009f, 0x006b, 0x0039, 0xcca9,
                    0xcca8, 0xccaa, 0xff85, 0x00c4, 0x0088, 0x0081, 0x009d, 0x003d, 0x0035, 0x00c0,
                    0x0084, 0xc02f, 0xc02b, 0xc027, 0xc023, 0xc013, 0xc009, 0x009e, 0x0067, 0x0033,
                    0x00be, 0x0045, 0x009c, 0x003c, 0x002f, 0x00ba, 0x0041, 0xc011, 0xc007, 0x0005,
                    0x0004, 0xc012, 0xc008, 0x0016, 0x000a, 0x00ff,
                ],
                exts: &[0x0000, 0x000b, 0x000a, 0x000d, 0x0010],
                sigs: &[
                    0x0601, 0x0603, 0xefef, 0x0501, 0x0503, 0x0401, 0x0403, 0xeeee, 0xeded, 0x0301,
                    0x0303, 0x0201, 0x0203,
                ],
                alpn: &[b"h2", b"http/1.1"],
                versions: &[],
                want: "t12d4605h2_85626a9a5f7f_aaf95bb78ec9",
            },
            Vector {
                source: "latest.pcapng discovery.cem.cloud.us",
                legacy: 0x0303,
                ciphers: &[
                    0xc02c, 0xc02b, 0xc030, 0xc02f, 0xc024, 0xc023, 0xc028, 0xc027, 0xc00a, 0xc009,
                    0xc014, 0xc013, 0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0x000a,
                ],
                exts: &[
                    0x0000, 0x0005, 0x000a, 0x000b, 0x000d, 0x0023, 0x0017, 0xff01,
                ],
                sigs: &[
                    0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0201, 0x0403, 0x0503, 0x0203, 0x0202,
                    0x0601, 0x0603,
                ],
                alpn: &[],
                versions: &[],
                want: "t12d190800_d83cc789557e_7af1ed941c26",
            },
            Vector {
                source: "tls-handshake.pcapng mtalk.google.com",
                legacy: 0x0303,
                ciphers: chrome_ciphers,
                exts: &[
                    0x0033, 0x002b, 0x001b, 0x0000, 0x0012, 0x002d, 0x000d, 0x000a, 0x0005, 0x0023,
                    0x0017, 0xff01, 0x000b, 0x0015,
                ],
                sigs: chrome_sigs,
                alpn: &[],
                versions: &[0x0304, 0x0303],
                want: "t13d151400_8daaf6152771_de4a06bb82e3",
            },
            Vector {
                source: "tls12.pcap contile.services.mozilla.com",
                legacy: 0x0303,
                ciphers: &[
                    0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a,
                    0xc009, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
                ],
                exts: &[
                    0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x0022, 0x0033,
                    0x002b, 0x000d, 0x002d, 0x001c, 0x0015,
                ],
                sigs: &[
                    0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203,
                    0x0201,
                ],
                alpn: &[b"h2", b"http/1.1"],
                versions: &[0x0304, 0x0303],
                want: "t13d1715h2_5b57614c22b0_3d5424432f57",
            },
        ];
        for v in vectors {
            let msg = from_listing(v.legacy, v.ciphers, v.exts, v.sigs, v.alpn, v.versions);
            assert_eq!(parse(&msg).ja4, v.want, "{}", v.source);
        }
    }

    #[test]
    fn ja4_hand_derived() {
        // A TLS 1.2 client without SNI, following JA4.md step by step:
        //   transport "t"; no supported_versions -> legacy 0x0303 -> "12";
        //   no SNI extension -> "i";
        //   ciphers 0x3a3a (GREASE, ignored), 0xc02f, 0x009c, 0x00ff (SCSV,
        //   counted) -> "04"... minus GREASE -> 3 -> "03";
        //   extensions 0x0a0a (GREASE), 0x000a, 0x000b, 0x000d, 0x0010,
        //   0x0017 -> 5 counted -> "05";
        //   first ALPN value "http/1.1" -> 'h' and '1' -> "h1";
        //   sorted ciphers "009c,00ff,c02f" -> sha256[..12] = 56d1ad0ca1e0;
        //   extensions without 0x0010, sorted: "000a,000b,000d,0017", then
        //   "_" and the signature algorithms in wire order "0401,0804"
        //   (GREASE 0x2a2a ignored) -> sha256 of
        //   "000a,000b,000d,0017_0401,0804" [..12] = 712913e52679.
        let msg = client_hello(
            0x0303,
            &[0x3a3a, 0xc02f, 0x009c, 0x00ff],
            &[
                ext(0x0a0a, &[]),
                ext(0x000a, &[0, 2, 0, 0x17]),
                ext(0x000b, &[1, 0]),
                sigalgs_ext(&[0x2a2a, 0x0401, 0x0804]),
                alpn_ext(&[b"http/1.1"]),
                ext(0x0017, &[]),
            ],
        );
        let ch = parse(&msg);
        assert_eq!(ch.ja4, "t12i0305h1_56d1ad0ca1e0_712913e52679");
        assert_eq!(ch.sni, None);
        assert!(ch.supported_versions.is_empty());
        assert_eq!(ch.signature_algorithms, [0x2a2a, 0x0401, 0x0804]);
    }

    #[test]
    fn ja4_legacy_ssl3_and_tls10() {
        // SSL 3.0 hello without extensions: "s3", no SNI, 2 ciphers, 0
        // extensions, no ALPN; cipher hash of "002f,0035"; empty extension
        // list -> 000000000000.
        let ch = parse(&client_hello(0x0300, &[0x0035, 0x002f], &[]));
        assert_eq!(ch.legacy_version, "SSL3.0");
        assert_eq!(ch.ja4, "ts3i020000_f54dd463d39b_000000000000");
        assert!(ch.extensions.is_empty());
        let ch = parse(&client_hello(
            0x0301,
            &[0x002f, 0x0035],
            &[sni_ext(b"old.example")],
        ));
        assert_eq!(ch.legacy_version, "TLS1.0");
        assert_eq!(ch.sni.as_deref(), Some("old.example"));
        // Only SNI, which is not hashed: empty list -> zeros.
        assert_eq!(ch.ja4, "t10d020100_f54dd463d39b_000000000000");
        // No ciphers at all.
        let ch = parse(&client_hello(0x0303, &[], &[ext(0x0017, &[])]));
        assert!(ch.ja4.starts_with("t12i000100_000000000000_"));
    }

    #[test]
    fn ja4_alpn_rule_examples() {
        // The examples listed in JA4.md, "ALPN Extension Value".
        let cases: &[(&[u8], &str)] = &[
            (b"h2", "h2"),
            (b"http/1.1", "h1"),
            (b"h", "hh"),
            (&[0xab], "ab"),
            (&[0x20], "20"),
            (&[0xab, 0xcd], "ad"),
            (&[0x20, 0x61], "21"),
            (&[0x30, 0xab], "3b"),
            (&[0x61, 0x20], "60"),
            (&[0x30, 0x31, 0xab, 0xcd], "3d"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
            (b"", "00"),
        ];
        for (value, want) in cases {
            assert_eq!(ja4_alpn(Some(value)), *want, "{value:?}");
        }
        assert_eq!(ja4_alpn(None), "00");
        // Through a whole hello: non-ASCII first ALPN value.
        let ch = parse(&client_hello(
            0x0303,
            &[0x1301],
            &[alpn_ext(&[&[0xe2, 0x98, 0x83]])],
        ));
        assert_eq!(&ch.ja4[8..10], "e3");
        assert_eq!(ch.alpn, ["\u{2603}"]);
    }

    #[test]
    fn ja4_counts_capped_at_99() {
        let ciphers: Vec<u16> = (1..=120).collect();
        let exts: Vec<u16> = (0x100..0x100 + 105).collect();
        let input = Ja4Input {
            legacy_version: 0x0303,
            supported_versions: &[0x0a0a],
            ciphers: &ciphers,
            extensions: &exts,
            first_alpn: None,
            signature_algorithms: &[],
        };
        let fp = ja4(&input, 't');
        assert!(fp.starts_with("t12i999900_"), "{fp}");
    }

    #[test]
    fn grease_values() {
        let grease: Vec<u16> = (0..16).map(|i| 0x0a0a | (i << 12) | (i << 4)).collect();
        assert!(grease.iter().all(|&g| is_grease(g)));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301) && !is_grease(0x0a0b));
        assert_eq!((0..=u16::MAX).filter(|&v| is_grease(v)).count(), 16);
    }

    fn chrome_like() -> Vec<u8> {
        from_listing(
            0x0303,
            &[0x1301, 0x1302],
            &[0x0000, 0x0010, 0x002b, 0x000d, 0x0033],
            &[0x0403],
            &[b"h2"],
            &[0x0304],
        )
    }

    #[test]
    fn reader_single_record() {
        let msg = chrome_like();
        let mut r = HandshakeReader::new();
        match r.push(&record(0x16, 0x0301, &msg)) {
            TlsProgress::ClientHello(ch) => {
                assert_eq!(ch.sni.as_deref(), Some("example.com"));
                assert_eq!(ch, parse(&msg));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.push(&record(0x17, 0x0303, b"x")), TlsProgress::Done);
    }

    #[test]
    fn reader_split_at_every_byte() {
        let msg = chrome_like();
        let stream = record(0x16, 0x0301, &msg);
        let want = TlsProgress::ClientHello(parse(&msg));
        for split in 0..=stream.len() {
            let mut r = HandshakeReader::new();
            let first = r.push(&stream[..split]);
            if split < stream.len() {
                assert_eq!(first, TlsProgress::NeedMore, "split {split}");
                assert_eq!(r.push(&stream[split..]), want, "split {split}");
            } else {
                assert_eq!(first, want);
            }
        }
        // One byte at a time.
        let mut r = HandshakeReader::new();
        let results: Vec<_> = stream.iter().map(|b| r.push(&[*b])).collect();
        assert_eq!(results.last(), Some(&want));
        assert!(results[..results.len() - 1]
            .iter()
            .all(|p| *p == TlsProgress::NeedMore));
    }

    #[test]
    fn reader_message_across_records() {
        let msg = chrome_like();
        let (a, b) = msg.split_at(37);
        let mut stream = record(0x16, 0x0301, a);
        stream.extend(record(0x16, 0x0303, b));
        let want = TlsProgress::ClientHello(parse(&msg));
        for split in [0, 3, 5, 20, 42, 43, stream.len() - 1] {
            let mut r = HandshakeReader::new();
            let first = r.push(&stream[..split]);
            assert_eq!(first, TlsProgress::NeedMore);
            assert_eq!(r.push(&stream[split..]), want, "split {split}");
        }
    }

    #[test]
    fn reader_server_hello() {
        // HelloRetryRequest, a compatibility ChangeCipherSpec, then the real
        // ServerHello with supported_versions and ALPN.
        let hrr = server_hello(
            HELLO_RETRY_REQUEST_RANDOM,
            0x1301,
            &[versions_ext_server(0x0304)],
        );
        let sh = server_hello(
            [7; 32],
            0x1302,
            &[versions_ext_server(0x0304), alpn_ext(&[b"h2"])],
        );
        let mut stream = record(0x16, 0x0303, &hrr);
        stream.extend(record(0x14, 0x0303, &[1]));
        stream.extend(record(0x16, 0x0303, &sh));
        let mut r = HandshakeReader::new();
        assert_eq!(
            r.push(&stream),
            TlsProgress::ServerHello(ServerHello {
                version: "TLS1.3".into(),
                cipher: 0x1302,
                alpn: Some("h2".into()),
            })
        );
        // TLS 1.2 ServerHello: version from the legacy field.
        let sh = server_hello([7; 32], 0xc02f, &[ext(0xff01, &[0])]);
        let mut r = HandshakeReader::new();
        assert_eq!(
            r.push(&record(0x16, 0x0303, &sh)),
            TlsProgress::ServerHello(ServerHello {
                version: "TLS1.2".into(),
                cipher: 0xc02f,
                alpn: None,
            })
        );
    }

    fn versions_ext_server(v: u16) -> Vec<u8> {
        ext(0x002b, &v.to_be_bytes())
    }

    #[test]
    fn reader_skips_other_handshake_messages() {
        // A HelloRequest (type 0, empty) before the hello, in the same record.
        let mut body = handshake(0, &[]);
        body.extend(chrome_like());
        let mut r = HandshakeReader::new();
        assert!(matches!(
            r.push(&record(0x16, 0x0301, &body)),
            TlsProgress::ClientHello(_)
        ));
    }

    #[test]
    fn reader_not_tls_and_errors() {
        let mut r = HandshakeReader::new();
        assert_eq!(r.push(b"GET / HTTP/1.1\r\n"), TlsProgress::NotTls);
        // Decided from the first byte already.
        assert_eq!(HandshakeReader::new().push(b"G"), TlsProgress::NotTls);
        assert_eq!(
            HandshakeReader::new().push(&[0x16, 0x02]),
            TlsProgress::NotTls
        );
        assert_eq!(
            r.push(&record(0x16, 0x0301, &chrome_like())),
            TlsProgress::Done
        );
        // Few bytes: undecided.
        let mut r = HandshakeReader::new();
        assert_eq!(r.push(&[0x16, 0x03]), TlsProgress::NeedMore);
        // Application data first (capture started mid-connection).
        let mut r = HandshakeReader::new();
        assert_eq!(r.push(&record(0x17, 0x0303, &[1, 2, 3])), TlsProgress::Done);
        // Valid first record, then garbage.
        let mut r = HandshakeReader::new();
        let mut stream = record(0x16, 0x0301, &handshake(0, &[]));
        stream.extend_from_slice(b"garbage!");
        assert!(matches!(r.push(&stream), TlsProgress::Error(_)));
        // Oversized record.
        let mut r = HandshakeReader::new();
        assert!(matches!(
            r.push(&[0x16, 3, 1, 0xff, 0xff]),
            TlsProgress::Error(_)
        ));
        // Handshake message longer than the cap: rejected from its header.
        let mut r = HandshakeReader::new();
        let p = r.push(&record(0x16, 0x0301, &[1, 0x01, 0x00, 0x00]));
        assert!(
            matches!(&p, TlsProgress::Error(e) if e.contains("65540")),
            "{p:?}"
        );
        // Malformed ClientHello body (session id length 33).
        let mut bad = client_hello(0x0303, &[0x1301], &[]);
        bad[4 + 2 + 32] = 33;
        let mut r = HandshakeReader::new();
        assert!(matches!(
            r.push(&record(0x16, 0x0301, &bad)),
            TlsProgress::Error(_)
        ));
        assert!(parse_client_hello(&bad, 't').is_err());
    }

    #[test]
    fn reader_truncated_stays_need_more() {
        let stream = record(0x16, 0x0301, &chrome_like());
        let mut r = HandshakeReader::new();
        assert_eq!(r.push(&stream[..stream.len() - 1]), TlsProgress::NeedMore);
        // A large hello spread over several records is buffered.
        let big = client_hello(0x0303, &[0x1301], &[ext(0x0015, &vec![0; 40_000])]);
        let mut r = HandshakeReader::new();
        let mut last = TlsProgress::NeedMore;
        for chunk in big.chunks(16_384) {
            last = r.push(&record(0x16, 0x0303, chunk));
        }
        assert!(matches!(last, TlsProgress::ClientHello(ch) if ch.extensions == [0x0015]));
    }

    #[test]
    fn malformed_extensions_keep_types() {
        // SNI with a broken inner length, then ALPN: the SNI value is lost,
        // the extension types are all kept, ALPN is still read.
        let msg = client_hello(
            0x0303,
            &[0x1301],
            &[
                ext(0x0000, &[0, 9, 0, 0, 50, b'a']),
                alpn_ext(&[b"h2"]),
                ext(0x0017, &[]),
            ],
        );
        let ch = parse(&msg);
        assert_eq!(ch.sni, None);
        assert_eq!(ch.extensions, [0x0000, 0x0010, 0x0017]);
        assert_eq!(ch.alpn, ["h2"]);
        assert!(ch.ja4.starts_with("t12d0103h2_"));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let base = record(0x16, 0x0301, &chrome_like());
        for _ in 0..3000 {
            let mut m = base.clone();
            for _ in 0..4 {
                let i = next() as usize % m.len();
                m[i] = next() as u8;
            }
            let mut r = HandshakeReader::new();
            let cut = next() as usize % (m.len() + 1);
            let _ = r.push(&m[..cut]);
            let _ = r.push(&m[cut..]);
            let _ = parse_client_hello(&m[5..], 't');
            let _ = looks_like_tls_client(&m);
        }
        for _ in 0..2000 {
            let len = (next() % 200) as usize;
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = HandshakeReader::new().push(&junk);
        }
    }

    #[test]
    fn sniffing() {
        let stream = record(0x16, 0x0301, &chrome_like());
        assert!(looks_like_tls_client(&stream));
        assert!(looks_like_tls_client(&stream[..3]));
        assert!(looks_like_tls_client(&[0x16, 0x03, 0x00, 0x00, 0x30, 0x01]));
        assert!(!looks_like_tls_client(&stream[..2]));
        assert!(!looks_like_tls_client(b"GET / HTTP/1.1"));
        assert!(!looks_like_tls_client(&[0x16, 0x03, 0x05, 0x00, 0x30]));
        assert!(!looks_like_tls_client(&[0x16, 0x03, 0x01, 0x00, 0x00]));
        // A ServerHello record is not a client stream.
        assert!(!looks_like_tls_client(&[
            0x16, 0x03, 0x03, 0x00, 0x30, 0x02
        ]));
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(0x0304), "TLS1.3");
        assert_eq!(version_name(0x0300), "SSL3.0");
        assert_eq!(version_name(0x7f17), "TLS1.3-draft23");
        assert_eq!(version_name(0xfefd), "DTLS1.2");
        assert_eq!(version_name(0x1234), "0x1234");
    }
}
