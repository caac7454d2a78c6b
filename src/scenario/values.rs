//! Small value types of the scenario language: durations, sizes, globs and regex patterns.
//! Parsers here take the scalar text and return a value or a message; the caller adds the position.

use std::fmt;
use std::time::Duration;

/// Parse a duration: `500ms`, `30s`, `2m`, `1h`, or a bare number of seconds. Zero is rejected.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let bad = || {
        format!("`{s}` is not a duration; write a whole number with a unit: `500ms`, `30s`, `2m`, `1h`, or a number of seconds")
    };
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is too long a duration"))?;
    let d = match unit.trim() {
        "" | "s" => n.checked_mul(1000),
        "ms" => Some(n),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        u if u.starts_with('.') => {
            return Err(format!(
                "`{s}`: fractions are not accepted; use a smaller unit, e.g. `1500ms` for 1.5s"
            ))
        }
        _ => return Err(bad()),
    }
    .ok_or_else(|| format!("`{s}` is too long a duration"))?;
    if d == 0 {
        return Err(format!("`{s}`: a duration must be longer than zero"));
    }
    Ok(Duration::from_millis(d))
}

/// Most memory a QEMU target may ask for, in MiB (1 TiB).
pub const MAX_MEMORY_MIB: u32 = 1 << 20;

/// Parse a memory size into MiB: `256M`, `256MiB`, `1G`, `1GiB`, or a bare number of MiB.
/// `1795300000.123456789` (seconds since the Unix epoch, at most nanosecond digits) → ns.
pub(crate) fn parse_epoch_nanos(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || {
        format!("`{t}` is not a time in seconds since 1970 such as `1795300000.25` (at most 9 decimals)")
    };
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let mut nanos: u64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        nanos += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

pub(crate) fn parse_memory_mib(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let bad = || format!("`{s}` is not a memory size; write e.g. `256M`, `1G`, or a number of MiB");
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mib = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => Some(n),
        "g" | "gb" | "gib" => n.checked_mul(1024),
        _ => return Err(bad()),
    };
    match mib {
        Some(m) if (1..=u64::from(MAX_MEMORY_MIB)).contains(&m) => Ok(m as u32),
        _ => Err(format!(
            "`{s}`: memory must be between 1M and {}G",
            MAX_MEMORY_MIB / 1024
        )),
    }
}

/// Parse a byte count: a bare number, or a number with `B`, `kB`/`KB` (1000), `KiB` (1024),
/// `MB`, `MiB`, `GB`, `GiB`.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let bad = || {
        format!(
            "`{s}` is not a byte count; write a number of bytes or e.g. `100kB`, `64KiB`, `1MB`"
        )
    };
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("`{s}` is too large a byte count"))
}

/// A shell-style glob over host names or URL paths: `*` matches any run of characters (dots and
/// slashes included), `?` one character; everything else matches itself, ASCII case ignored.
/// `*.kestrel.example` matches `api.kestrel.example` but not `kestrel.example`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    pattern: String,
}

impl Glob {
    /// A glob from its pattern text (not validated: the scenario parser checks the characters).
    pub fn new(pattern: &str) -> Glob {
        Glob {
            pattern: pattern.to_string(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern has no wildcard.
    pub fn is_literal(&self) -> bool {
        !self.pattern.contains(['*', '?'])
    }

    /// Does `text` match the whole pattern (ASCII case-insensitive)?
    pub fn matches(&self, text: &str) -> bool {
        let p: Vec<char> = self.pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == '?' || c.eq_ignore_ascii_case(&t[ti]) => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi.min(p.len())..].iter().all(|&c| c == '*')
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Check a host glob: letters, digits, `.`, `-`, `_`, `:` (IPv6), `*`, `?`; not empty.
pub(crate) fn check_host_glob(s: &str) -> Result<Glob, String> {
    if s.is_empty() {
        return Err("a host pattern cannot be empty; use `*` for any host".to_string());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '*' | '?')))
    {
        return Err(format!(
            "`{s}` is not a host pattern: `{c}` is not allowed (write a host name such as `*.vendor.example`, without scheme, port or path)"
        ));
    }
    Ok(Glob::new(s))
}

/// Check a URL path glob: starts with `/` or `*`, no whitespace.
pub(crate) fn check_path_glob(s: &str) -> Result<Glob, String> {
    if !(s.starts_with('/') || s.starts_with('*')) || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{s}` is not a path pattern; write it like `/v1/*` (starting with `/`, no spaces)"
        ));
    }
    Ok(Glob::new(s))
}

/// A compiled regular expression (the `regex` crate's syntax), compared by its source text.
#[derive(Clone)]
pub struct Pattern {
    regex: regex::Regex,
}

impl Pattern {
    /// Compile `source`; the error is a one-line reason.
    pub fn new(source: &str) -> Result<Pattern, String> {
        regex::Regex::new(source)
            .map(|regex| Pattern { regex })
            .map_err(|e| match e {
                regex::Error::Syntax(s) => s
                    .lines()
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(s.lines().last().unwrap_or("syntax error"))
                    .to_string(),
                other => other.to_string(),
            })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The compiled regex.
    pub fn regex(&self) -> &regex::Regex {
        &self.regex
    }

    /// Does the pattern match anywhere in `text`?
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("1.5s").unwrap_err().contains("1500ms"));
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("9999999999999999h").is_err());
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_mib("256M"), Ok(256));
        assert_eq!(parse_memory_mib("256MiB"), Ok(256));
        assert_eq!(parse_memory_mib("1G"), Ok(1024));
        assert_eq!(parse_memory_mib("2gib"), Ok(2048));
        assert_eq!(parse_memory_mib("512"), Ok(512));
        assert!(parse_memory_mib("lots").is_err());
        assert!(parse_memory_mib("0").unwrap_err().contains("between"));
        assert!(parse_memory_mib("2048G").is_err());
        assert!(parse_memory_mib("99999999999999999999999G").is_err());
    }

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("100000"), Ok(100_000));
        assert_eq!(parse_bytes("100kB"), Ok(100_000));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert!(parse_bytes("1 TB").is_err());
        assert!(parse_bytes("x").is_err());
        assert!(parse_bytes("18446744073709551615GiB").is_err());
    }

    #[test]
    fn globs() {
        let g = Glob::new("*.kestrel.example");
        assert!(g.matches("api.kestrel.example"));
        assert!(g.matches("a.b.KESTREL.example"));
        assert!(!g.matches("kestrel.example"));
        assert!(!g.matches("api.kestrel.example.evil"));
        assert!(Glob::new("/v1/*").matches("/v1/sync/x"));
        assert!(!Glob::new("/v1/*").matches("/v2/sync"));
        assert!(Glob::new("a?c").matches("abc"));
        assert!(!Glob::new("a?c").matches("ac"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXXbYYc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYY"));
        assert!(Glob::new("*x*").matches("abxcd"));
        assert!(Glob::new("api.example").is_literal());
        assert!(!g.is_literal());
    }

    #[test]
    fn glob_checks() {
        assert!(check_host_glob("*.tracker.example").is_ok());
        assert!(check_host_glob("198.51.100.7").is_ok());
        assert!(check_host_glob("https://x.example/").is_err());
        assert!(check_host_glob("").is_err());
        assert!(check_path_glob("/v1/*").is_ok());
        assert!(check_path_glob("v1").is_err());
    }

    #[test]
    fn patterns() {
        let p = Pattern::new("ready$").unwrap();
        assert!(p.is_match("telltale-demo: ready"));
        assert_eq!(p, Pattern::new("ready$").unwrap());
        assert_eq!(format!("{p:?}"), "Pattern(\"ready$\")");
        let e = Pattern::new("(unclosed").unwrap_err();
        assert_eq!(e, "unclosed group");
    }
}
