//! Recognising encrypted payloads inside readable protocols: an HTTP body or a UDP datagram that telltale can
//! frame but not read, because the device encrypted it before sending.
//!
//! The rule (ARCHITECTURE.md, "Encrypted payloads"): a payload is *opaque* when
//! - it carries an encryption format's own marker: OpenPGP (ASCII armour `-----BEGIN PGP MESSAGE-----`, or
//!   binary packets: one or more public-key/symmetric-key session-key packets followed by an encrypted data
//!   packet), CMS/PKCS#7 `EnvelopedData`, `EncryptedData` or `AuthEnvelopedData` (DER, base64 or PEM), age
//!   (`age-encryption.org/v1`, or its armour), or a JWE (a base64url JOSE header with `"enc"`, or the JSON
//!   serialisation with `"ciphertext"`); or
//! - it is at least [`MIN_ENTROPY_LEN`] bytes long, its byte entropy (with the Miller–Madow correction for
//!   short samples) is above [`ENTROPY_BITS`] bits per byte, and it does not start with the magic of a known
//!   compressed or media format (gzip, zlib, zip, PNG, JPEG, …): random-looking bytes that are not a format
//!   telltale or any viewer knows are, for a privacy audit, ciphertext.
//!
//! Pure and panic-free on any input. [`Sniffer`] classifies a payload that arrives in pieces, keeping only a
//! prefix ([`PREFIX_KEPT`]) and a byte histogram of the first [`HISTOGRAM_WINDOW`] bytes, so memory stays fixed.

use base64::Engine as _;

/// Payloads shorter than this are never called encrypted by entropy alone (their entropy says too little).
pub const MIN_ENTROPY_LEN: u64 = 256;
/// Bits per byte above which a payload of unknown format counts as ciphertext. Text, JSON, protobuf and base64
/// stay below 6.1; compressed data and ciphertext are above 7.8 once a few hundred bytes are seen.
pub const ENTROPY_BITS: f64 = 7.5;
/// The prefix kept for the format markers.
pub const PREFIX_KEPT: usize = 4096;
/// The entropy is measured on this many leading bytes of a payload (a sample: the format of a body does not
/// change half-way, and counting every byte of a large upload would cost throughput).
pub const HISTOGRAM_WINDOW: u64 = 64 * 1024;

/// Which encryption format was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpaqueKind {
    /// OpenPGP ASCII armour.
    PgpArmored,
    /// OpenPGP binary packets.
    PgpBinary,
    /// CMS / PKCS#7 enveloped, encrypted or auth-enveloped data.
    Cms,
    /// age.
    Age,
    /// JSON Web Encryption.
    Jwe,
    /// High entropy and no known format.
    HighEntropy,
}

impl OpaqueKind {
    /// A short name for reports and warnings.
    pub fn as_str(self) -> &'static str {
        match self {
            OpaqueKind::PgpArmored => "PGP (armoured)",
            OpaqueKind::PgpBinary => "PGP",
            OpaqueKind::Cms => "CMS/PKCS#7",
            OpaqueKind::Age => "age",
            OpaqueKind::Jwe => "JWE",
            OpaqueKind::HighEntropy => "high-entropy data",
        }
    }
}

/// A payload recognised as encrypted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Opaque {
    /// The format.
    pub kind: OpaqueKind,
    /// Bits per byte measured (corrected), over the histogram window.
    pub entropy: f64,
}

/// Classifies a whole payload.
pub fn classify(bytes: &[u8]) -> Option<Opaque> {
    let mut s = Sniffer::new();
    s.push(bytes);
    s.finish()
}

/// Classifies a payload that arrives in pieces.
#[derive(Clone)]
pub struct Sniffer {
    prefix: Vec<u8>,
    /// Four interleaved histograms (byte i goes to `counts[i % 4]`), summed when read: four independent
    /// increment chains run about three times faster than one.
    counts: Box<[[u32; 256]; 4]>,
    len: u64,
}

impl Default for Sniffer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sniffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sniffer").field("len", &self.len).finish()
    }
}

impl Sniffer {
    /// An empty sniffer.
    pub fn new() -> Self {
        Sniffer {
            prefix: Vec::new(),
            counts: Box::new([[0; 256]; 4]),
            len: 0,
        }
    }

    /// Bytes pushed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next piece of the payload.
    pub fn push(&mut self, bytes: &[u8]) {
        let room = PREFIX_KEPT.saturating_sub(self.prefix.len());
        self.prefix
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        let window = HISTOGRAM_WINDOW.saturating_sub(self.len.min(HISTOGRAM_WINDOW)) as usize;
        let counted = bytes.get(..window.min(bytes.len())).unwrap_or_default();
        let mut quads = counted.chunks_exact(4);
        for q in &mut quads {
            for (h, &b) in self.counts.iter_mut().zip(q) {
                h[usize::from(b)] += 1;
            }
        }
        for &b in quads.remainder() {
            self.counts[0][usize::from(b)] += 1;
        }
        self.len += bytes.len() as u64;
    }

    /// The verdict on what was pushed.
    pub fn finish(&self) -> Option<Opaque> {
        let entropy = self.entropy();
        let p = self.prefix.as_slice();
        let kind = marker(p).or_else(|| {
            (self.len >= MIN_ENTROPY_LEN && entropy > ENTROPY_BITS && !known_format(p))
                .then_some(OpaqueKind::HighEntropy)
        })?;
        Some(Opaque { kind, entropy })
    }

    /// Bits per byte of the histogram window, with the Miller–Madow bias correction `(m − 1) / 2n` (m: byte
    /// values seen), so a few hundred random bytes measure near 8 rather than near 7.3.
    pub fn entropy(&self) -> f64 {
        let mut total = [0u32; 256];
        for h in self.counts.iter() {
            for (t, &c) in total.iter_mut().zip(h) {
                *t += c;
            }
        }
        let n: u64 = total.iter().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return 0.0;
        }
        let nf = n as f64;
        let mut h = 0.0;
        let mut seen = 0u32;
        for &c in total.iter() {
            if c > 0 {
                seen += 1;
                let p = f64::from(c) / nf;
                h -= p * p.log2();
            }
        }
        (h + f64::from(seen.saturating_sub(1)) / (2.0 * nf * std::f64::consts::LN_2)).min(8.0)
    }
}

/// An encryption format's own marker in the prefix.
fn marker(p: &[u8]) -> Option<OpaqueKind> {
    let has = |needle: &[u8]| memchr::memmem::find(p, needle).is_some();
    if has(b"-----BEGIN PGP MESSAGE-----") {
        return Some(OpaqueKind::PgpArmored);
    }
    if has(b"age-encryption.org/v1") || has(b"-----BEGIN AGE ENCRYPTED FILE-----") {
        return Some(OpaqueKind::Age);
    }
    if let Some(k) = binary_marker(p) {
        return Some(k);
    }
    for label in [&b"-----BEGIN PKCS7-----"[..], b"-----BEGIN CMS-----"] {
        if let Some(at) = memchr::memmem::find(p, label) {
            let rest = p.get(at + label.len()..).unwrap_or_default();
            if base64_prefix(rest).is_some_and(|d| is_cms(&d)) {
                return Some(OpaqueKind::Cms);
            }
        }
    }
    if let Some(d) = base64_prefix(p) {
        if let Some(k) = binary_marker(&d) {
            return Some(k);
        }
    }
    if is_jwe(p) {
        return Some(OpaqueKind::Jwe);
    }
    None
}

fn binary_marker(p: &[u8]) -> Option<OpaqueKind> {
    if is_cms(p) {
        Some(OpaqueKind::Cms)
    } else if is_pgp_binary(p) {
        Some(OpaqueKind::PgpBinary)
    } else {
        None
    }
}

/// One OpenPGP packet header: (tag, header length, body length). Partial and indeterminate lengths are `None`
/// for the body length.
fn pgp_packet(p: &[u8]) -> Option<(u8, usize, Option<usize>)> {
    let &b = p.first()?;
    if b & 0x80 == 0 {
        return None;
    }
    if b & 0x40 == 0 {
        // Old format.
        let tag = (b >> 2) & 0x0f;
        let len = |n: usize| -> Option<usize> {
            let bytes = p.get(1..1 + n)?;
            Some(bytes.iter().fold(0usize, |a, &x| (a << 8) | x as usize))
        };
        return match b & 3 {
            0 => Some((tag, 2, Some(len(1)?))),
            1 => Some((tag, 3, Some(len(2)?))),
            2 => Some((tag, 5, Some(len(4)?))),
            _ => Some((tag, 1, None)),
        };
    }
    let tag = b & 0x3f;
    let &o1 = p.get(1)?;
    match o1 {
        0..=191 => Some((tag, 2, Some(o1 as usize))),
        192..=223 => {
            let &o2 = p.get(2)?;
            Some((tag, 3, Some(((o1 as usize - 192) << 8) + o2 as usize + 192)))
        }
        255 => {
            let b = p.get(2..6)?;
            Some((
                tag,
                6,
                Some(b.iter().fold(0usize, |a, &x| (a << 8) | x as usize)),
            ))
        }
        _ => Some((tag, 2, None)),
    }
}

/// OpenPGP binary: session-key packets (public-key, tag 1, version 3 or 6; symmetric, tag 3, version 4–6)
/// followed by an encrypted data packet (tag 9, 18 or 20).
fn is_pgp_binary(p: &[u8]) -> bool {
    let mut at = 0usize;
    let mut keys = 0;
    for _ in 0..64 {
        let Some(rest) = p.get(at..) else {
            return false;
        };
        let Some((tag, hl, bl)) = pgp_packet(rest) else {
            return false;
        };
        match tag {
            1 | 3 => {
                let version = rest.get(hl).copied();
                let ok = match tag {
                    1 => matches!(version, Some(3 | 6)),
                    _ => matches!(version, Some(4..=6)),
                };
                let Some(bl) = bl.filter(|&l| ok && (4..8192).contains(&l)) else {
                    return false;
                };
                keys += 1;
                at += hl + bl;
            }
            9 | 18 | 20 => return keys > 0,
            _ => return false,
        }
    }
    false
}

/// DER CMS ContentInfo of type envelopedData (1.2.840.113549.1.7.3), encryptedData (…1.7.6) or
/// authEnvelopedData (1.2.840.113549.1.9.16.1.23).
fn is_cms(p: &[u8]) -> bool {
    const PKCS7: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07];
    const AUTH_ENVELOPED: &[u8] = &[
        0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
    ];
    if p.first() != Some(&0x30) {
        return false;
    }
    let hl = match p.get(1) {
        Some(0..=0x7f) | Some(0x80) => 2,
        Some(&l @ 0x81..=0x84) => 2 + (l & 0x7f) as usize,
        _ => return false,
    };
    let Some(oid) = p.get(hl..) else {
        return false;
    };
    if oid.starts_with(AUTH_ENVELOPED) {
        return true;
    }
    oid.first() == Some(&0x06)
        && oid.get(1) == Some(&0x09)
        && oid.get(2..10) == Some(PKCS7)
        && matches!(oid.get(10), Some(3 | 6))
}

/// The decoded start of a payload that is base64 text (standard or URL alphabet, line breaks allowed), at
/// least 64 characters of it.
fn base64_prefix(p: &[u8]) -> Option<Vec<u8>> {
    let run: Vec<u8> = p
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'\r' | b'\n')
        })
        .take(1400)
        .collect();
    // An armour's end line (`-----END …`) is not base64.
    let end = memchr::memmem::find(&run, b"--").unwrap_or(run.len());
    let text: Vec<u8> = run
        .get(..end)?
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .take(1024)
        .collect();
    if text.len() < 64 {
        return None;
    }
    let cut = text.len() / 4 * 4;
    let text = text.get(..cut)?;
    let url = text.iter().any(|b| matches!(b, b'-' | b'_'));
    let engine = if url {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine.decode(text).ok()
}

/// A JWE: a base64url JOSE header (`eyJ`, i.e. `{"`) naming an `enc` algorithm, or the JSON serialisation.
fn is_jwe(p: &[u8]) -> bool {
    let json = |k: &[u8]| memchr::memmem::find(p, k).is_some();
    if json(b"\"ciphertext\"")
        && json(b"\"iv\"")
        && (json(b"\"protected\"") || json(b"\"recipients\"") || json(b"\"encrypted_key\""))
    {
        return true;
    }
    for at in memchr::memmem::find_iter(p, b"eyJ").take(8) {
        let seg: Vec<u8> = p
            .get(at..)
            .unwrap_or_default()
            .iter()
            .copied()
            .take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            .take(1024)
            .collect();
        if p.get(at + seg.len()) != Some(&b'.') {
            continue;
        }
        let cut = seg.len() / 4 * 4 + if seg.len() % 4 >= 2 { seg.len() % 4 } else { 0 };
        let Some(seg) = seg.get(..cut) else {
            continue;
        };
        if let Ok(h) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(seg) {
            if memchr::memmem::find(&h, b"\"enc\"").is_some() {
                return true;
            }
        }
    }
    false
}

/// Magic numbers of compressed and media formats: high entropy that is not (necessarily) encryption.
fn known_format(p: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        b"\x1f\x8b",           // gzip
        b"BZh",                // bzip2
        b"\xfd7zXZ\x00",       // xz
        b"\x28\xb5\x2f\xfd",   // zstd
        b"\x04\x22\x4d\x18",   // lz4 frame
        b"PK\x03\x04",         // zip (and jar, apk, docx, …)
        b"PK\x05\x06",         // empty zip
        b"PK\x07\x08",         // spanned zip
        b"7z\xbc\xaf\x27\x1c", // 7-Zip
        b"Rar!\x1a\x07",       // RAR
        b"MSCF",               // cabinet
        b"\x89PNG\r\n\x1a\n",  // PNG
        b"\xff\xd8\xff",       // JPEG
        b"GIF8",               // GIF
        b"RIFF",               // WebP, WAV, AVI
        b"II*\x00",            // TIFF
        b"MM\x00*",            // TIFF
        b"\x1a\x45\xdf\xa3",   // Matroska, WebM
        b"OggS",               // Ogg
        b"fLaC",               // FLAC
        b"ID3",                // MP3 with a tag
        b"wOFF",               // WOFF
        b"wOF2",               // WOFF2
        b"%PDF",               // PDF
        b"\x00asm",            // WebAssembly
        b"\x7fELF",            // ELF
        b"hsqs",               // squashfs
        b"\x00\x00\x01\x00",   // ICO
        b"\x00\x00\x01\xba",   // MPEG program stream
        b"\x00\x00\x01\xb3",   // MPEG video
    ];
    if MAGIC.iter().any(|m| p.starts_with(m)) {
        return true;
    }
    // zlib: CM 8 and a valid header check; MPEG audio / ADTS frame sync; ISO media (`ftyp` at 4).
    let zlib = matches!(p, [a, b, ..] if a & 0x0f == 8 && a >> 4 <= 7 && (u16::from(*a) << 8 | u16::from(*b)) % 31 == 0);
    let sync = matches!(p, [0xff, b, ..] if b & 0xe0 == 0xe0);
    zlib || sync || p.get(4..8) == Some(b"ftyp")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Deterministic pseudo-random bytes (xorshift), as a stand-in for ciphertext.
    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(n: usize) -> Vec<u8> {
        let line = b"{\"imei\":\"356938035643809\",\"battery\":87,\"apps\":[\"maps\",\"mail\"],\"ts\":1700000000}\n";
        line.iter().copied().cycle().take(n).collect()
    }

    fn kind(b: &[u8]) -> Option<OpaqueKind> {
        classify(b).map(|o| o.kind)
    }

    #[test]
    fn random_bytes_of_meaningful_length_are_ciphertext() {
        for n in [256, 300, 1000, 100_000] {
            let r = random(n, n as u64);
            let o = classify(&r).unwrap_or_else(|| panic!("{n} random bytes"));
            assert_eq!(o.kind, OpaqueKind::HighEntropy, "{n}");
            assert!(o.entropy > ENTROPY_BITS, "{n}: {}", o.entropy);
        }
        assert_eq!(kind(&random(200, 3)), None, "too short to tell");
    }

    #[test]
    fn text_json_and_base64_are_not_ciphertext() {
        assert_eq!(kind(&text(100_000)), None);
        let b64 = base64::engine::general_purpose::STANDARD.encode(random(3000, 9));
        assert_eq!(kind(b64.as_bytes()), None);
        assert_eq!(kind(&hex::encode(random(3000, 9)).into_bytes()), None);
        assert_eq!(kind(b""), None);
    }

    #[test]
    fn compressed_and_media_formats_are_not_ciphertext() {
        let payload = random(20_000, 5);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&payload).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(&payload).unwrap();
        let zl = zl.finish().unwrap();
        let with = |magic: &[u8]| {
            let mut v = magic.to_vec();
            v.extend_from_slice(&payload);
            v
        };
        let zip = with(b"PK\x03\x04\x14\x00\x00\x00\x08\x00");
        let png = with(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR");
        let jpeg = with(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00");
        let mp4 = with(b"\x00\x00\x00\x20ftypisom");
        for (name, b) in [
            ("gzip", &gz),
            ("zlib", &zl),
            ("zip", &zip),
            ("png", &png),
            ("jpeg", &jpeg),
            ("mp4", &mp4),
        ] {
            assert_eq!(kind(b), None, "{name}");
            // The same bytes without their magic would be called ciphertext: the exclusion is what holds.
            assert_eq!(
                kind(b.get(16..).unwrap()),
                Some(OpaqueKind::HighEntropy),
                "{name}"
            );
        }
    }

    #[test]
    fn pgp_armour_and_binary_packets() {
        let armoured = b"-----BEGIN PGP MESSAGE-----\n\nhF4DAAAAAAAAAAASAQdA\n=abcd\n-----END PGP MESSAGE-----\n";
        assert_eq!(kind(armoured), Some(OpaqueKind::PgpArmored));
        // Old-format PKESK (tag 1, 2-byte length, version 3) then a new-format SEIPD (tag 18).
        let mut pkesk = vec![0x85, 0x01, 0x0c, 0x03];
        pkesk.extend(random(0x10c - 1, 1));
        let mut msg = pkesk.clone();
        msg.extend([0xd2, 0x3f, 0x01]);
        msg.extend(random(0x3e, 2));
        assert_eq!(kind(&msg), Some(OpaqueKind::PgpBinary));
        // Symmetric: new-format SKESK (tag 3, version 4) then SEIPD.
        let mut sym = vec![0xc3, 0x0e, 0x04, 0x09, 0x03, 0x08];
        sym.extend(random(10, 4));
        sym.extend([0xd2, 0x20, 0x01]);
        sym.extend(random(31, 5));
        assert_eq!(kind(&sym), Some(OpaqueKind::PgpBinary));
        // In base64.
        let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
        assert_eq!(kind(b64.as_bytes()), Some(OpaqueKind::PgpBinary));
        // A session-key packet not followed by encrypted data, or a wrong version, is not PGP.
        let mut bad = pkesk.clone();
        bad.extend(b"hello world, nothing encrypted here");
        assert!(!is_pgp_binary(&bad));
        let mut v9 = vec![0xc3, 0x0d, 0x09, 0x09];
        v9.extend(random(11, 6));
        v9.extend([0xd2, 0x01, 0x01]);
        assert!(!is_pgp_binary(&v9));
        assert_eq!(kind(&v9), None);
    }

    #[test]
    fn cms_age_and_jwe() {
        let mut cms = vec![0x30, 0x82, 0x01, 0x00, 0x06, 0x09];
        cms.extend([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03]);
        cms.extend([0xa0, 0x80, 0x30]);
        assert_eq!(kind(&cms), Some(OpaqueKind::Cms));
        let pem = format!(
            "-----BEGIN PKCS7-----\n{}\n-----END PKCS7-----\n",
            base64::engine::general_purpose::STANDARD.encode([cms.clone(), random(60, 8)].concat())
        );
        assert_eq!(kind(pem.as_bytes()), Some(OpaqueKind::Cms));
        // signedData (…1.7.2) is not encrypted.
        let mut signed = cms.clone();
        signed[14] = 0x02;
        assert_eq!(kind(&signed), None);

        let age = b"age-encryption.org/v1\n-> X25519 abc\nxyz\n--- def\n\x01\x02";
        assert_eq!(kind(age), Some(OpaqueKind::Age));

        let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";
        assert_eq!(kind(jwe.as_bytes()), Some(OpaqueKind::Jwe));
        let in_json = format!("{{\"data\":\"{jwe}\"}}");
        assert_eq!(kind(in_json.as_bytes()), Some(OpaqueKind::Jwe));
        // A JWS (header without "enc") is signed, not encrypted: readable.
        let jws = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(kind(jws.as_bytes()), None);
        let json = br#"{"protected":"eyJlbmMiOiJBMTI4R0NNIn0","iv":"AxY8DCtDaGlsbGljb3RoZQ","ciphertext":"KDlTtXchhZTGufMYmOYGS4HffxPSUrfmqCHXaI9wOGY","tag":"Mz-VPPyU4RlcuYv1IwIvzw"}"#;
        assert_eq!(kind(json), Some(OpaqueKind::Jwe));
    }

    #[test]
    fn pieces_give_the_same_verdict_as_the_whole() {
        let mut msg = vec![0x85, 0x01, 0x0c, 0x03];
        msg.extend(random(0x10c - 1, 1));
        msg.extend([0xd2, 0x3f, 0x01]);
        msg.extend(random(5000, 2));
        for cut in [1, 3, 100, 4095, 4096, 4097] {
            let mut s = Sniffer::new();
            for piece in msg.chunks(cut) {
                s.push(piece);
            }
            assert_eq!(s.finish(), classify(&msg), "pieces of {cut}");
            assert_eq!(s.len(), msg.len() as u64);
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        for seed in 1..300u64 {
            let mut r = random((seed as usize * 7) % 600, seed);
            if let Some(b) = r.first_mut() {
                *b = [0x85, 0xc1, 0xc3, 0x30, 0x8c][seed as usize % 5];
            }
            let _ = classify(&r);
        }
        let _ = classify(b"-----BEGIN PKCS7-----");
        let _ = classify(b"eyJ.");
        let _ = classify(&[0x30, 0x84]);
        let _ = classify(&[0xc3, 0xff, 0x00]);
    }
}
