//! The zone a DNS name belongs to, for naming the destination of a leak in a query name: a canary in
//! `3569380356.t.vendor.example` goes to whoever runs `vendor.example` (its authoritative servers see the
//! question), not to the resolver that forwarded it.
//!
//! The rule: the registrable domain — the last two labels, or the last three when the last two are one of the
//! common two-label public suffixes in [`TWO_LABEL_SUFFIXES`] (`co.uk`, `com.au`, …). This is an approximation
//! of the Public Suffix List kept small on purpose (no list to ship and update); a name under a suffix it does
//! not know is attributed one level too high (`a.example.gov.xy` → `gov.xy`), which names a broader zone, never
//! a wrong one.

/// Two-label public suffixes under which the registrable domain has three labels.
pub const TWO_LABEL_SUFFIXES: [&str; 40] = [
    "co.uk",
    "org.uk",
    "ac.uk",
    "gov.uk",
    "me.uk",
    "net.uk",
    "ltd.uk",
    "plc.uk",
    "com.au",
    "net.au",
    "org.au",
    "edu.au",
    "gov.au",
    "co.nz",
    "org.nz",
    "co.jp",
    "ne.jp",
    "or.jp",
    "ac.jp",
    "co.kr",
    "or.kr",
    "com.cn",
    "net.cn",
    "org.cn",
    "com.br",
    "net.br",
    "com.mx",
    "com.tr",
    "co.in",
    "net.in",
    "co.za",
    "com.sg",
    "com.hk",
    "com.tw",
    "co.il",
    "com.ar",
    "com.my",
    "co.id",
    "com.ua",
    "amazonaws.com",
];

/// The zone (registrable domain) of `name`, lower-cased, without a trailing dot; the name itself when it has
/// too few labels.
pub fn zone_of(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    if n <= 2 || labels.iter().any(|l| l.is_empty()) {
        return name;
    }
    let tail = |k: usize| labels.get(n - k..).map(|l| l.join(".")).unwrap_or_default();
    if TWO_LABEL_SUFFIXES.contains(&tail(2).as_str()) {
        tail(3)
    } else {
        tail(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_is_the_registrable_domain() {
        assert_eq!(
            zone_of("356938035643809.t.Vendor.Example."),
            "vendor.example"
        );
        assert_eq!(zone_of("a.b.tracker.co.uk"), "tracker.co.uk");
        assert_eq!(zone_of("vendor.example"), "vendor.example");
        assert_eq!(zone_of("localhost"), "localhost");
        assert_eq!(
            zone_of("x..example"),
            "x..example",
            "malformed names are kept"
        );
        assert_eq!(zone_of(""), "");
    }
}
