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
//!
//! Numeric values (an IMEI, an IMSI, a phone number's digits) are also searched as the binary integers
//! programs write them in ([`numeric_forms`]: `varint`, `zigzag-varint`, `u32le`/`u32be`, `u64le`/`u64be`),
//! and phone numbers in the ways people write them ([`phone_formatted`]: `phone-formatted`).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

/// Embedded base64 fragments shorter than this many characters are not searched for.
pub const MIN_EMBEDDED_B64: usize = 8;

/// Fewest significant bytes a binary integer form must have: the bytes of a varint, or the bytes of a
/// fixed-width integer from its most significant non-zero byte down. Shorter patterns would match random binary
/// (a 4-byte pattern about once per 4 GiB, per form) and shorten the matcher's prefilter stride. So a value that
/// fits in 32 bits (at most 4 significant bytes) is never searched as a fixed-width integer, and the `u32le`/`u32be`
/// forms never pass this rule; a varint needs a value of at least 2^28.
pub const MIN_BINARY_SIGNIFICANT_BYTES: usize = 5;

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
    for (label, text) in phone_formatted(value) {
        out.add(label, text.into_bytes(), false);
    }
    if let Some(d) = decimal_without_leading_zeros(value) {
        out.add("decimal", d.into_bytes(), false);
    }
    for f in numeric_forms(value) {
        out.add(f.encoding, f.bytes, f.case_sensitive);
    }
    out.forms
}

/// The integers a value stands for: the value itself when it is all digits, and a phone number's digits and
/// national number ([`phone_variants`]); each parsed as `u64` (leading zeros dropped; too large: skipped).
pub fn numeric_values(value: &str) -> Vec<u64> {
    let v = value.trim();
    let mut texts: Vec<String> = Vec::new();
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        texts.push(v.to_string());
    }
    texts.extend(phone_variants(v));
    let mut out = Vec::new();
    for t in texts {
        let digits = t.trim_start_matches('+');
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = digits.parse::<u64>() {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// Binary integer forms of the value's numbers ([`numeric_values`]): LEB128 `varint` (protobuf, many binary
/// formats), `zigzag-varint` (protobuf `sint64`), and fixed-width `u32le`, `u32be`, `u64le`, `u64be` where the number
/// fits the width. Only patterns with at least [`MIN_BINARY_SIGNIFICANT_BYTES`] significant bytes are made. All
/// are case-sensitive: binary bytes that happen to be ASCII letters must match exactly.
pub fn numeric_forms(value: &str) -> Vec<Form> {
    let mut out = FormSet::default();
    for n in numeric_values(value) {
        let v = varint(n);
        if v.len() >= MIN_BINARY_SIGNIFICANT_BYTES {
            out.add("varint", v, true);
        }
        if let Ok(signed) = i64::try_from(n) {
            let z = varint(zigzag(signed));
            if z.len() >= MIN_BINARY_SIGNIFICANT_BYTES {
                out.add("zigzag-varint", z, true);
            }
        }
        let significant = 8 - (n.leading_zeros() as usize) / 8;
        if significant >= MIN_BINARY_SIGNIFICANT_BYTES {
            if let Ok(small) = u32::try_from(n) {
                // Unreachable with the current rule (a u32 has at most 4 significant bytes); kept so the rule,
                // not the code, decides.
                out.add("u32le", small.to_le_bytes().to_vec(), true);
                out.add("u32be", small.to_be_bytes().to_vec(), true);
            }
            out.add("u64le", n.to_le_bytes().to_vec(), true);
            out.add("u64be", n.to_be_bytes().to_vec(), true);
        }
    }
    out.forms
}

/// LEB128 (protobuf varint) encoding.
pub fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// ZigZag mapping of a signed integer (protobuf `sint32`/`sint64`): 0, -1, 1, -2 → 0, 1, 2, 3.
pub fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// An all-digit value with leading zeros (`0356…`) as an integer prints it: without them, when still at least
/// 6 digits long.
fn decimal_without_leading_zeros(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) || !v.starts_with('0') {
        return None;
    }
    let d = v.trim_start_matches('0');
    (d.len() >= crate::canary::identity::MIN_VALUE_LEN).then(|| d.to_string())
}

/// Written forms of a phone number (see [`phone_variants`] for the value's phone shape), labelled
/// `phone-formatted`. Only the national part is made, because every longer way of writing the number contains it:
/// `+1 (555) 555-0123`, `1 (555) 555-0123` and `(555) 555-0123` all hold `(555) 555-0123`.
///
/// * A North American number (11 digits starting with `1`, or 10 digits written with separators):
///   `(555) 555-0123`, `(555)555-0123`, `(555) 555 0123`, `(555)-555-0123`, `555-555-0123`, `555.555.0123`,
///   `555 555 0123`.
/// * Any other number written in groups after a `+` and a country code (`+44 20 7946 0958`): the national groups
///   joined by spaces, dashes and dots (`20 7946 0958`, also inside `+44-20-7946-0958` and `020 7946 0958`), with the
///   first group in parentheses behind a trunk `0` (`(020) 7946 0958`), and the national digits (`2079460958`).
///
/// National parts shorter than 6 digits give nothing (they would match too much).
pub fn phone_formatted(value: &str) -> Vec<(&'static str, String)> {
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
    let separated = body.bytes().any(|c| !c.is_ascii_digit());
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let mut add = |text: String| {
        if !out.iter().any(|(_, t)| *t == text) {
            out.push(("phone-formatted", text));
        }
    };
    let nanp =
        if digits.len() == 11 && digits.starts_with('1') && (plus || separated || s == digits) {
            digits.get(1..)
        } else if digits.len() == 10 && separated && !plus {
            Some(digits.as_str())
        } else {
            None
        };
    if let Some(n) = nanp {
        let (Some(a), Some(b), Some(c)) = (n.get(..3), n.get(3..6), n.get(6..)) else {
            return out;
        };
        add(format!("({a}) {b}-{c}"));
        add(format!("({a}){b}-{c}"));
        add(format!("({a}) {b} {c}"));
        add(format!("({a})-{b}-{c}"));
        for sep in ["-", ".", " "] {
            add(format!("{a}{sep}{b}{sep}{c}"));
        }
        return out;
    }
    if !plus || !separated {
        return out;
    }
    // Groups as written: the first is the country code.
    let groups: Vec<&str> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let Some((cc, rest)) = groups.split_first() else {
        return out;
    };
    let national: String = rest.concat();
    if cc.len() > 3 || national.len() < 6 {
        return out;
    }
    for sep in [" ", "-", "."] {
        add(rest.join(sep));
    }
    if let Some((first, tail)) = rest.split_first() {
        if !tail.is_empty() && !first.starts_with('0') {
            add(format!("(0{first}) {}", tail.join(" ")));
            add(format!("(0{first}) {}", tail.join("-")));
        }
    }
    add(national);
    out
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

    #[test]
    fn numeric_forms_of_an_imei_and_a_phone_number() {
        assert_eq!(varint(300), vec![0xac, 0x02]);
        assert_eq!(varint(0), vec![0]);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        let imei = 356_938_035_643_809u64;
        let f = encoded_forms("356938035643809");
        assert!(has(&f, "varint", &varint(imei)));
        assert_eq!(varint(imei).len(), 7);
        assert!(has(&f, "zigzag-varint", &varint(imei * 2)));
        assert!(has(&f, "u64le", &imei.to_le_bytes()));
        assert!(has(&f, "u64be", &imei.to_be_bytes()));
        assert!(!f.iter().any(|x| x.encoding.starts_with("u32")));
        for x in f
            .iter()
            .filter(|x| ["varint", "zigzag-varint", "u64le", "u64be"].contains(&x.encoding))
        {
            assert!(x.case_sensitive, "{}", x.encoding);
        }
        // A phone number: its digits and its national number.
        let p = encoded_forms("+1 (555) 555-0123");
        for n in [15_555_550_123u64, 5_555_550_123] {
            assert_eq!(varint(n).len(), 5);
            assert!(has(&p, "varint", &varint(n)));
            assert!(has(&p, "u64be", &n.to_be_bytes()));
            assert!(has(&p, "u64le", &n.to_le_bytes()));
        }
        // Leading zeros: the integer's decimal text has none.
        let z = encoded_forms("0356938035643809");
        assert!(has(&z, "decimal", b"356938035643809"));
        assert!(has(&z, "varint", &varint(imei)));
    }

    #[test]
    fn short_numbers_get_no_binary_forms_under_the_significance_rule() {
        // 123456789 < 2^28: a 4-byte varint, 4 significant bytes as an integer: nothing binary.
        let f = numeric_forms("123456789");
        assert!(f.is_empty(), "{f:?}");
        // 987654321 >= 2^28: a 5-byte varint, but still only 4 significant bytes as a fixed-width integer.
        let f = numeric_forms("987654321");
        assert_eq!(
            f.iter().map(|x| x.encoding).collect::<Vec<_>>(),
            vec!["varint", "zigzag-varint"]
        );
        assert!(f
            .iter()
            .all(|x| x.bytes.len() >= MIN_BINARY_SIGNIFICANT_BYTES));
        // Too large for 64 bits (a 20-digit ICCID): no integer forms, no panic.
        assert!(numeric_forms("89014103211118510720").is_empty());
        assert!(numeric_forms("Alice Canary").is_empty());
        assert!(numeric_forms("alice.canary@example.invalid").is_empty());
    }

    #[test]
    fn phone_numbers_as_people_write_them() {
        let texts =
            |v: &str| -> Vec<String> { phone_formatted(v).into_iter().map(|(_, t)| t).collect() };
        let us = texts("+15555550123");
        for want in [
            "(555) 555-0123",
            "(555)555-0123",
            "(555) 555 0123",
            "555-555-0123",
            "555.555.0123",
            "555 555 0123",
        ] {
            assert!(us.contains(&want.to_string()), "{want} in {us:?}");
        }
        assert_eq!(texts("+1 (555) 555-0123"), us);
        assert_eq!(texts("(555) 555-0123"), us);
        let f = encoded_forms("+15555550123");
        assert!(has(&f, "phone-formatted", b"(555) 555-0123"));
        assert!(has(&f, "phone-formatted", b"555.555.0123"));
        // Every longer spelling holds one of the forms.
        for written in [
            "+1 (555) 555-0123",
            "1-555-555-0123",
            "+1.555.555.0123",
            "1 555 555 0123",
            "+1 555-555-0123",
        ] {
            assert!(
                f.iter().any(|x| written
                    .as_bytes()
                    .windows(x.bytes.len())
                    .any(|w| w == x.bytes)),
                "{written}"
            );
        }
        let uk = texts("+44 20 7946 0958");
        for want in [
            "20 7946 0958",
            "20-7946-0958",
            "20.7946.0958",
            "(020) 7946 0958",
            "2079460958",
        ] {
            assert!(uk.contains(&want.to_string()), "{want} in {uk:?}");
        }
        assert!(texts("356938035643809").is_empty());
        assert!(texts("Alice Canary").is_empty());
        assert!(texts("+44 12 34").is_empty());
        assert!(
            texts("+4420794609").is_empty(),
            "no groups, no country code known"
        );
    }
}
