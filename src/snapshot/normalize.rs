//! Normalisation of the values that go into a privacy snapshot: destinations, HTTP paths and
//! query keys, DNS names, upload volumes, and the escaping that keeps every value one
//! whitespace-free token.
//!
//! Everything here is a pure function of its input and never fails: odd input (an empty path, a
//! Host header with spaces, an address with a port) is mapped to a stable, readable token.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Placeholder for a numeric path segment, DNS label or query key (`/user/123` → `/user/{n}`).
pub const NUMBER: &str = "{n}";
/// Placeholder for an identifier-looking segment or label: hex, UUID, base64 (≥ 8 characters).
pub const ID: &str = "{id}";
/// Destination shown for a synthetic address (198.18.0.0/15) that no DNS answer of the run names.
pub const UNNAMED_SYNTHETIC: &str = crate::net::SYNTHETIC_POOL_TEXT;

/// Upload volume of one destination in one phase, in coarse buckets (ordered smallest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UploadBucket {
    /// Nothing sent (a connection without payload).
    Zero,
    /// 1 byte to 1023 bytes.
    Under1KiB,
    /// 1 KiB to 16 KiB − 1.
    Under16KiB,
    /// 16 KiB to 256 KiB − 1.
    Under256KiB,
    /// 256 KiB to 4 MiB − 1.
    Under4MiB,
    /// 4 MiB or more.
    AtLeast4MiB,
}

impl UploadBucket {
    /// Every bucket, smallest first.
    pub const ALL: [UploadBucket; 6] = [
        UploadBucket::Zero,
        UploadBucket::Under1KiB,
        UploadBucket::Under16KiB,
        UploadBucket::Under256KiB,
        UploadBucket::Under4MiB,
        UploadBucket::AtLeast4MiB,
    ];

    /// The bucket of a byte count.
    pub fn of(bytes: u64) -> UploadBucket {
        match bytes {
            0 => UploadBucket::Zero,
            1..=1023 => UploadBucket::Under1KiB,
            1024..=16_383 => UploadBucket::Under16KiB,
            16_384..=262_143 => UploadBucket::Under256KiB,
            262_144..=4_194_303 => UploadBucket::Under4MiB,
            _ => UploadBucket::AtLeast4MiB,
        }
    }

    /// The label used in snapshot files: `0`, `<1KiB`, `<16KiB`, `<256KiB`, `<4MiB`, `>=4MiB`.
    pub fn label(self) -> &'static str {
        match self {
            UploadBucket::Zero => "0",
            UploadBucket::Under1KiB => "<1KiB",
            UploadBucket::Under16KiB => "<16KiB",
            UploadBucket::Under256KiB => "<256KiB",
            UploadBucket::Under4MiB => "<4MiB",
            UploadBucket::AtLeast4MiB => ">=4MiB",
        }
    }

    /// The bucket of a label written by [`UploadBucket::label`].
    pub fn from_label(label: &str) -> Option<UploadBucket> {
        UploadBucket::ALL.into_iter().find(|b| b.label() == label)
    }
}

impl fmt::Display for UploadBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Makes `s` one token: whitespace, control characters and the `extra` delimiters become `%XX`
/// (their UTF-8 bytes); an empty value becomes `-`. Not meant to be undone: tokens are compared
/// as written.
pub fn token(s: &str, extra: &[char]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() || extra.contains(&c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

pub use crate::net::is_synthetic;

/// The address in `s` when it is one: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:443`.
pub fn parse_address(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok()
}

/// The destination as shown in a snapshot.
///
/// Names are lower-cased, lose a trailing dot and any `:port`, and have numeric and
/// identifier-looking labels replaced (see [`normalize_host`]). Addresses lose their port and are
/// written canonically; a synthetic address (198.18.0.0/15) is replaced by the name a DNS answer
/// of the run gave it (`names`), else by [`UNNAMED_SYNTHETIC`], because the address itself is
/// the vnet's choice, not the firmware's.
pub fn normalize_destination(raw: &str, names: &BTreeMap<IpAddr, String>) -> String {
    let raw = raw.trim();
    if let Some(ip) = parse_address(raw) {
        return address_destination(ip, names);
    }
    // `name:port` (a Host header the analyser did not strip).
    let host = match raw.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            h
        }
        _ => raw,
    };
    if let Some(ip) = parse_address(host) {
        return address_destination(ip, names);
    }
    normalize_host(host)
}

fn address_destination(ip: IpAddr, names: &BTreeMap<IpAddr, String>) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if is_synthetic(ip) {
        return match names.get(&ip) {
            Some(name) => normalize_host(name),
            None => UNNAMED_SYNTHETIC.to_string(),
        };
    }
    ip.to_string()
}

/// A DNS name as shown in a snapshot: lower case, no trailing dot, numeric labels → `{n}`,
/// identifier-looking labels → `{id}`, one token.
pub fn normalize_host(name: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<String> = name.split('.').map(normalize_piece).collect();
    token(&labels.join("."), &[])
}

/// An HTTP path as shown in a snapshot: the query and fragment dropped, each `/`-segment
/// normalised (numeric → `{n}`, identifier-looking → `{id}`, per `.`-separated piece, so
/// `/a/3f2c9e1d7b.json` → `/a/{id}.json`), one token.
pub fn normalize_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segments: Vec<String> = path.split('/').map(normalize_segment).collect();
    token(&segments.join("/"), &['?'])
}

/// The parameter names of a query string (values dropped), normalised like path segments,
/// sorted and without duplicates.
pub fn query_keys(query: &str) -> Vec<String> {
    let mut keys: Vec<String> = query
        .split(['&', ';'])
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split('=').next().unwrap_or(""))
        .filter(|k| !k.is_empty())
        .map(|k| token(&normalize_segment(k), &['&', '?', '=']))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// One path segment: its `.`-separated pieces normalised one by one.
fn normalize_segment(seg: &str) -> String {
    if !seg.contains('.') {
        return normalize_piece(seg);
    }
    let pieces: Vec<String> = seg.split('.').map(normalize_piece).collect();
    pieces.join(".")
}

/// One piece of a segment or one DNS label.
fn normalize_piece(p: &str) -> String {
    if is_numeric(p) {
        NUMBER.to_string()
    } else if looks_like_id(p) {
        ID.to_string()
    } else {
        p.to_string()
    }
}

/// Digits, possibly with the separators of dates, times and phone numbers (`2026-06-11`, `+1555…`).
fn is_numeric(p: &str) -> bool {
    p.bytes().any(|b| b.is_ascii_digit())
        && p.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b':' | b',' | b'+'))
}

/// Hex (≥ 8 hex digits, dashes allowed as in UUIDs, at least one digit), base64 / base64url
/// (≥ 8 characters with digits, upper and lower case, or `=` padding), or a long (≥ 16)
/// alphanumeric run of letters and digits.
fn looks_like_id(p: &str) -> bool {
    let padded = p.ends_with('=') || p.ends_with("%3D") || p.ends_with("%3d");
    let mut core = p;
    loop {
        let next = core
            .strip_suffix('=')
            .or_else(|| core.strip_suffix("%3D"))
            .or_else(|| core.strip_suffix("%3d"));
        match next {
            Some(c) => core = c,
            None => break,
        }
    }
    let b = core.as_bytes();
    let has_digit = b.iter().any(u8::is_ascii_digit);
    let has_upper = b.iter().any(u8::is_ascii_uppercase);
    let has_lower = b.iter().any(u8::is_ascii_lowercase);
    // Hex, UUID.
    let hex_digits = b.iter().filter(|c| c.is_ascii_hexdigit()).count();
    if hex_digits >= 8 && has_digit && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-') {
        return true;
    }
    let base64ish = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'_'));
    if b.len() >= 8 && base64ish && ((has_digit && has_upper && has_lower) || padded) {
        return true;
    }
    b.len() >= 16
        && b.iter().all(u8::is_ascii_alphanumeric)
        && has_digit
        && (has_upper || has_lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_have_exact_boundaries_and_order() {
        assert_eq!(UploadBucket::of(0), UploadBucket::Zero);
        assert_eq!(UploadBucket::of(1), UploadBucket::Under1KiB);
        assert_eq!(UploadBucket::of(1023), UploadBucket::Under1KiB);
        assert_eq!(UploadBucket::of(1024), UploadBucket::Under16KiB);
        assert_eq!(UploadBucket::of(16 * 1024 - 1), UploadBucket::Under16KiB);
        assert_eq!(UploadBucket::of(16 * 1024), UploadBucket::Under256KiB);
        assert_eq!(UploadBucket::of(256 * 1024), UploadBucket::Under4MiB);
        assert_eq!(
            UploadBucket::of(4 * 1024 * 1024 - 1),
            UploadBucket::Under4MiB
        );
        assert_eq!(UploadBucket::of(4 * 1024 * 1024), UploadBucket::AtLeast4MiB);
        assert_eq!(UploadBucket::of(u64::MAX), UploadBucket::AtLeast4MiB);
        assert!(UploadBucket::Under1KiB < UploadBucket::Under16KiB);
        assert!(UploadBucket::Zero < UploadBucket::Under1KiB);
        for b in UploadBucket::ALL {
            assert_eq!(UploadBucket::from_label(b.label()), Some(b));
        }
        assert_eq!(UploadBucket::from_label("<2KiB"), None);
    }

    #[test]
    fn numeric_and_id_segments_are_replaced() {
        assert_eq!(normalize_path("/v2/sync"), "/v2/sync");
        assert_eq!(normalize_path("/v1/register"), "/v1/register");
        assert_eq!(normalize_path("/user/12345/items/7"), "/user/{n}/items/{n}");
        assert_eq!(normalize_path("/logs/2026-06-11/a"), "/logs/{n}/a");
        assert_eq!(normalize_path("/dev/353604416773002"), "/dev/{n}");
        assert_eq!(normalize_path("/p/+15555550123"), "/p/{n}");
        assert_eq!(
            normalize_path("/c/794031b3ccf46f82aad6f2a0e86310d5b1aa12fd"),
            "/c/{id}"
        );
        assert_eq!(
            normalize_path("/s/123e4567-e89b-12d3-a456-426614174000/x"),
            "/s/{id}/x"
        );
        assert_eq!(normalize_path("/d/MzUzNjA0NDE2NzczMDAy"), "/d/{id}");
        assert_eq!(normalize_path("/d/aGVsbG8gd29y=="), "/d/{id}");
        assert_eq!(normalize_path("/a/3f2c9e1d7b.json"), "/a/{id}.json");
        assert_eq!(normalize_path("/k/k3j4h5g6k7j8h9q2"), "/k/{id}");
        // Short hex and plain words stay.
        assert_eq!(normalize_path("/api/cafe12/config"), "/api/cafe12/config");
        assert_eq!(normalize_path("/getUserInfo"), "/getUserInfo");
        assert_eq!(normalize_path("/deadbeef"), "/deadbeef");
    }

    #[test]
    fn query_values_never_reach_the_path_or_keys() {
        assert_eq!(normalize_path("/track?imei=353604416773002&t=1"), "/track");
        assert_eq!(normalize_path("/a#frag"), "/a");
        assert_eq!(
            query_keys("t=1700000000&did=abc&did=def&&flag"),
            vec!["did", "flag", "t"]
        );
        assert_eq!(query_keys("1700000000=x&a%20b=1"), vec!["a%20b", "{n}"]);
        assert!(query_keys("").is_empty());
    }

    #[test]
    fn tokens_have_no_whitespace() {
        assert_eq!(token("a b\tc\n", &[]), "a%20b%09c%0A");
        assert_eq!(token("", &[]), "-");
        assert_eq!(token("x?y", &['?']), "x%3Fy");
        assert_eq!(token("caf\u{e9}\u{a0}", &[]), "caf\u{e9}%C2%A0");
        assert_eq!(normalize_path("/a b"), "/a%20b");
    }

    #[test]
    fn destinations_lose_ports_and_synthetic_addresses() {
        let mut names = BTreeMap::new();
        names.insert(
            "198.18.9.118".parse().unwrap(),
            "Sync.Kestrel.Example.".to_string(),
        );
        assert_eq!(
            normalize_destination("sync.kestrel.example", &names),
            "sync.kestrel.example"
        );
        assert_eq!(
            normalize_destination("API.Example.:8443", &names),
            "api.example"
        );
        assert_eq!(
            normalize_destination("93.184.216.34:443", &names),
            "93.184.216.34"
        );
        assert_eq!(
            normalize_destination("93.184.216.34", &names),
            "93.184.216.34"
        );
        assert_eq!(
            normalize_destination("[2001:db8::1]:443", &names),
            "2001:db8::1"
        );
        assert_eq!(
            normalize_destination("2001:db8:0::1", &names),
            "2001:db8::1"
        );
        assert_eq!(
            normalize_destination("[2001:db8::1]", &names),
            "2001:db8::1"
        );
        assert_eq!(
            normalize_destination("198.18.9.118:80", &names),
            "sync.kestrel.example"
        );
        assert_eq!(
            normalize_destination("198.19.1.2", &names),
            UNNAMED_SYNTHETIC
        );
        assert_eq!(
            normalize_destination("::ffff:198.19.1.2", &names),
            UNNAMED_SYNTHETIC
        );
        assert_eq!(normalize_destination("198.20.0.1", &names), "198.20.0.1");
        assert_eq!(
            normalize_destination("353604416773002.t.example", &names),
            "{n}.t.example"
        );
        assert_eq!(normalize_destination("bad host", &names), "bad%20host");
    }

    #[test]
    fn synthetic_range_is_198_18_slash_15() {
        assert!(is_synthetic("198.18.0.0".parse().unwrap()));
        assert!(is_synthetic("198.19.255.255".parse().unwrap()));
        assert!(!is_synthetic("198.17.255.255".parse().unwrap()));
        assert!(!is_synthetic("198.20.0.0".parse().unwrap()));
        assert!(!is_synthetic("::1".parse().unwrap()));
    }

    #[test]
    fn ipv4_destination_is_not_label_normalised() {
        let names = BTreeMap::new();
        assert_eq!(normalize_destination("10.77.0.1", &names), "10.77.0.1");
        assert_eq!(
            normalize_host("1.2.3.4.in-addr.arpa"),
            "{n}.{n}.{n}.{n}.in-addr.arpa"
        );
    }
}
