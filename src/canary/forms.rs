//! Encoded forms of a canary value: every byte string the value may appear as on the wire.
//!
//! Each [`Form`] carries an encoding chain label (transforms applied left to right, e.g.
//! `sha1>hex` = hex of the SHA-1 of the value) and whether it must match with exact case.
//! This module owns the list of encodings; the matcher only searches for what is produced here.
//!
//! Inputs to the transforms are the value itself, its phone-number normalisations (digits
//! only, `+digits`, and the national number without a leading `1` for 11-digit numbers) and
//! its ASCII-lowercase form (hashes and base64 of e-mail addresses are usually taken after
//! lowercasing).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

/// Embedded base64 fragments shorter than this many characters are not searched for.
pub const MIN_EMBEDDED_B64: usize = 8;

/// One searchable byte pattern for a canary value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// Encoding chain label, e.g. `raw`, `url`, `base64url`, `sha256>hex`, `utf16le`.
    pub encoding: &'static str,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// `true` when only this exact case is a valid encoding (base64 text); `false` when any
    /// ASCII case variant is a hit (raw text, hex, `%XX`, `\uXXXX`, UTF-16).
    pub case_sensitive: bool,
}

/// All distinct forms of `value` (first label wins for identical bytes). Empty values give
/// no forms.
pub fn encoded_forms(value: &str) -> Vec<Form> {
    let mut out = FormSet::default();
    if value.is_empty() {
        return out.forms;
    }
    let raws = raw_variants(value);
    let mut inputs = raws.clone();
    let lower = value.to_ascii_lowercase();
    if lower != value {
        inputs.push(lower);
    }

    for r in &raws {
        out.add("raw", r.as_bytes().to_vec(), false);
    }
    for s in &inputs {
        let b = s.as_bytes();
        for space_plus in [true, false] {
            let u = url_encode(b, space_plus);
            if u != b {
                out.add("url", u, false);
            }
        }
    }
    for s in &inputs {
        base64_forms(s.as_bytes(), "base64", "base64url", &mut out);
    }
    for s in &inputs {
        out.add("hex", hex(s.as_bytes()), false);
    }
    for s in &inputs {
        let b = s.as_bytes();
        let digests: [(&'static str, &'static str, &'static str, Vec<u8>); 4] = [
            (
                "md5>hex",
                "md5>base64",
                "md5>base64url",
                Md5::digest(b).to_vec(),
            ),
            (
                "sha1>hex",
                "sha1>base64",
                "sha1>base64url",
                Sha1::digest(b).to_vec(),
            ),
            (
                "sha256>hex",
                "sha256>base64",
                "sha256>base64url",
                Sha256::digest(b).to_vec(),
            ),
            (
                "sha512>hex",
                "sha512>base64",
                "sha512>base64url",
                Sha512::digest(b).to_vec(),
            ),
        ];
        for (lh, lb, lu, d) in digests {
            out.add(lh, hex(&d), false);
            out.add(lb, STANDARD.encode(&d).into_bytes(), true);
            out.add(lb, STANDARD_NO_PAD.encode(&d).into_bytes(), true);
            out.add(lu, URL_SAFE.encode(&d).into_bytes(), true);
            out.add(lu, URL_SAFE_NO_PAD.encode(&d).into_bytes(), true);
        }
    }
    for s in &inputs {
        out.add("json-unicode", json_unicode(s, true), false);
        if !s.is_ascii() {
            out.add("json-unicode", json_unicode(s, false), false);
        }
    }
    for s in &inputs {
        out.add("utf16le", utf16(s, true), false);
        out.add("utf16be", utf16(s, false), false);
    }
    out.forms
}

#[derive(Default)]
struct FormSet {
    forms: Vec<Form>,
}

impl FormSet {
    fn add(&mut self, encoding: &'static str, bytes: Vec<u8>, case_sensitive: bool) {
        if bytes.is_empty() || self.forms.iter().any(|f| f.bytes == bytes) {
            return;
        }
        self.forms.push(Form {
            encoding,
            bytes,
            case_sensitive,
        });
    }
}

/// The value plus its phone-number normalisations (all labelled `raw`).
pub fn raw_variants(value: &str) -> Vec<String> {
    let mut out = vec![value.to_string()];
    for p in phone_variants(value) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Normalisations of a phone-like value (optional `+`, then digits, spaces, `-`, `.`, parens;
/// at least 6 digits): digits only, `+digits` when the value starts with `+`, and the
/// 10-digit national number when the digits are 11 long and start with `1`.
pub fn phone_variants(value: &str) -> Vec<String> {
    let s = value.trim();
    let (plus, body) = match s.strip_prefix('+') {
        Some(b) => (true, b),
        None => (false, s),
    };
    if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b' ' | b'-' | b'.' | b'(' | b')'))
    {
        return Vec::new();
    }
    let digits: String = body.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < 6 {
        return Vec::new();
    }
    let mut out = vec![digits.clone()];
    if plus {
        out.push(format!("+{digits}"));
    }
    if digits.len() == 11 && digits.starts_with('1') {
        out.push(digits[1..].to_string());
    }
    out.retain(|v| v != s);
    out.dedup();
    out
}

/// Percent-encode every byte that is not RFC 3986 unreserved (`A-Za-z0-9-._~`), with upper-case
/// hex digits; space becomes `+` when `space_plus`, else `%20`.
pub fn url_encode(bytes: &[u8], space_plus: bool) -> Vec<u8> {
    /// Everything but the RFC 3986 unreserved characters (bytes >= 0x80 are always encoded).
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut out = Vec::with_capacity(bytes.len() * 3);
    // Each encoded byte comes as its own `%XX` piece, so an encoded space is exactly `%20`.
    for piece in percent_encoding::percent_encode(bytes, RESERVED) {
        if space_plus && piece == "%20" {
            out.push(b'+');
        } else {
            out.extend_from_slice(piece.as_bytes());
        }
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> Vec<u8> {
    hex::encode(bytes).into_bytes()
}

/// Standalone (padded and unpadded) and embedded base64 forms, both alphabets.
fn base64_forms(b: &[u8], std_label: &'static str, url_label: &'static str, out: &mut FormSet) {
    out.add(std_label, STANDARD.encode(b).into_bytes(), true);
    out.add(std_label, STANDARD_NO_PAD.encode(b).into_bytes(), true);
    out.add(url_label, URL_SAFE.encode(b).into_bytes(), true);
    out.add(url_label, URL_SAFE_NO_PAD.encode(b).into_bytes(), true);
    for k in 0..3 {
        if let Some(frag) = embedded_base64(b, k) {
            let url: Vec<u8> = frag
                .iter()
                .map(|&c| match c {
                    b'+' => b'-',
                    b'/' => b'_',
                    c => c,
                })
                .collect();
            out.add(std_label, frag, true);
            out.add(url_label, url, true);
        }
    }
}

/// The part of the (standard alphabet) base64 text that is fixed when `value` sits inside a
/// longer plaintext at an offset ≡ `k` (mod 3), whatever the neighbouring bytes are.
/// `None` when that part is shorter than [`MIN_EMBEDDED_B64`].
pub fn embedded_base64(value: &[u8], k: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; k];
    buf.extend_from_slice(value);
    while buf.len() % 3 != 0 {
        buf.push(0);
    }
    let enc = STANDARD_NO_PAD.encode(&buf).into_bytes();
    let lo_bit = 8 * k;
    let hi_bit = 8 * (k + value.len());
    let first = lo_bit.div_ceil(6);
    let last = hi_bit / 6; // exclusive: chars j with 6j + 6 <= hi_bit
    if last <= first || last - first < MIN_EMBEDDED_B64 {
        return None;
    }
    enc.get(first..last).map(<[u8]>::to_vec)
}

/// JSON `\uXXXX` escaping (lower-case hex, surrogate pairs above U+FFFF) of every character
/// when `all`, else of non-ASCII characters only.
pub fn json_unicode(s: &str, all: bool) -> Vec<u8> {
    let mut out = String::with_capacity(s.len() * 6);
    for c in s.chars() {
        if !all && c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{:04x}", u));
        }
    }
    out.into_bytes()
}

/// UTF-16 encoding, little- or big-endian, no BOM.
pub fn utf16(s: &str, little_endian: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2);
    for u in s.encode_utf16() {
        if little_endian {
            out.extend_from_slice(&u.to_le_bytes());
        } else {
            out.extend_from_slice(&u.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(forms: &[Form], label: &str, bytes: &[u8]) -> bool {
        forms
            .iter()
            .any(|f| f.encoding == label && f.bytes == bytes)
    }

    #[test]
    fn phone_normalisations() {
        assert_eq!(
            phone_variants("+1 (555) 555-0123"),
            vec!["15555550123", "+15555550123", "5555550123"]
        );
        assert_eq!(
            phone_variants("+15555550123"),
            vec!["15555550123", "5555550123"]
        );
        assert!(phone_variants("356938035643809").is_empty());
        assert!(phone_variants("Alice Canary").is_empty());
        assert!(phone_variants("12-34").is_empty());
    }

    #[test]
    fn url_and_hex() {
        assert_eq!(url_encode(b"a b+c@d", true), b"a+b%2Bc%40d");
        assert_eq!(url_encode(b"a b", false), b"a%20b");
        assert_eq!(hex(b"\x00\xffA"), b"00ff41");
    }

    #[test]
    fn embedded_fragment_is_substring_of_any_embedding() {
        let v = b"alice.canary@example.invalid";
        for k in 0..3 {
            let frag = embedded_base64(v, k).unwrap();
            assert!(frag.len() >= MIN_EMBEDDED_B64);
            for pre_len in [k, k + 3, k + 6] {
                for fill in [0u8, 0xff, b'{'] {
                    for post_len in 0..4 {
                        let mut plain = vec![fill; pre_len];
                        plain.extend_from_slice(v);
                        plain.extend(std::iter::repeat_n(fill ^ 0x5a, post_len));
                        let enc = STANDARD.encode(&plain);
                        assert!(
                            enc.as_bytes()
                                .windows(frag.len())
                                .any(|w| w == frag.as_slice()),
                            "k={k} pre={pre_len} fill={fill} post={post_len}"
                        );
                    }
                }
            }
        }
        // Short values lose the fragment at some alignments.
        assert!(embedded_base64(b"abcdef", 0).is_some());
        assert!(embedded_base64(b"abcdef", 1).is_none());
    }

    #[test]
    fn json_unicode_and_utf16() {
        assert_eq!(json_unicode("Aé", true), b"\\u0041\\u00e9");
        assert_eq!(json_unicode("Aé", false), b"A\\u00e9");
        assert_eq!(json_unicode("😀", true), b"\\ud83d\\ude00");
        assert_eq!(utf16("Ab", true), b"A\0b\0");
        assert_eq!(utf16("Ab", false), b"\0A\0b");
    }

    #[test]
    fn forms_cover_labels_and_case_rules() {
        let f = encoded_forms("Alice Canary");
        assert!(has(&f, "raw", b"Alice Canary"));
        assert!(has(&f, "url", b"Alice+Canary"));
        assert!(has(&f, "url", b"Alice%20Canary"));
        assert!(has(&f, "base64", b"QWxpY2UgQ2FuYXJ5"));
        assert!(has(
            &f,
            "base64",
            STANDARD.encode("alice canary").as_bytes()
        ));
        assert!(has(&f, "hex", &hex(b"Alice Canary")));
        assert!(has(
            &f,
            "sha256>hex",
            &hex(&Sha256::digest(b"Alice Canary"))
        ));
        // Identical std/url-safe text keeps the first label (`md5>base64`).
        let md5u = URL_SAFE_NO_PAD.encode(Md5::digest(b"Alice Canary"));
        assert!(f
            .iter()
            .any(|x| x.encoding.starts_with("md5>base64") && x.bytes == md5u.as_bytes()));
        let with_slash = (0..50)
            .map(|i| format!("value-{i}-xyz"))
            .find(|v| {
                STANDARD
                    .encode(Sha1::digest(v.as_bytes()))
                    .contains(['+', '/'])
            })
            .unwrap();
        let g = encoded_forms(&with_slash);
        let d = Sha1::digest(with_slash.as_bytes());
        assert!(has(&g, "sha1>base64url", URL_SAFE.encode(d).as_bytes()));
        assert!(has(&g, "sha1>base64", STANDARD_NO_PAD.encode(d).as_bytes()));
        for form in &f {
            let cs = form.encoding.contains("base64");
            assert_eq!(form.case_sensitive, cs, "{}", form.encoding);
            assert!(!form.bytes.is_empty());
        }
        let mut seen = std::collections::HashSet::new();
        assert!(f.iter().all(|x| seen.insert(x.bytes.clone())), "duplicates");
        // No url form when encoding changes nothing.
        assert!(!encoded_forms("356938035643809")
            .iter()
            .any(|x| x.encoding == "url"));
        assert!(has(&encoded_forms("+15555550123"), "raw", b"5555550123"));
        assert!(has(
            &encoded_forms("+15555550123"),
            "sha1>hex",
            &hex(&Sha1::digest(b"15555550123"))
        ));
        assert!(encoded_forms("").is_empty());
    }
}
