//! Text layers: JSON strings (serde_json; JSON inside a JSON string is opened again), XML text and attribute
//! values (quick-xml), form-urlencoded values, cookies, percent-encoding (applied repeatedly: each pass is a
//! layer), and runs of an encoding alphabet — base64/base64url with or without padding and MIME line breaks,
//! base32 (also joined from DNS labels by the caller), hex — decoded with data-encoding.

use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};

use super::graph::{Cx, Hint};
use super::Child;

/// Shortest run of an encoding alphabet that is decoded.
pub const MIN_RUN: usize = 16;
/// Runs decoded per buffer at most.
const MAX_RUNS: usize = super::graph::MAX_CHILDREN + 1;
/// Largest JSON or XML document parsed.
const MAX_DOC: usize = 16 << 20;

fn lenient(symbols: &str) -> Encoding {
    let mut s = Specification::new();
    s.symbols.push_str(symbols);
    s.check_trailing_bits = false;
    s.encoding()
        .unwrap_or_else(|_| data_encoding::BASE64_NOPAD.clone())
}

static B64: LazyLock<Encoding> =
    LazyLock::new(|| lenient("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"));
static B64URL: LazyLock<Encoding> =
    LazyLock::new(|| lenient("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"));
static B32: LazyLock<Encoding> = LazyLock::new(|| lenient("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));

const HEX: u8 = 1;
const B32U: u8 = 2;
const B32L: u8 = 4;
const STD: u8 = 8;
const URL: u8 = 16;

const fn class(c: u8) -> u8 {
    let mut m = 0;
    if c.is_ascii_hexdigit() {
        m |= HEX;
    }
    if c.is_ascii_uppercase() || matches!(c, b'2'..=b'7') {
        m |= B32U;
    }
    if c.is_ascii_lowercase() || matches!(c, b'2'..=b'7') {
        m |= B32L;
    }
    if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
        m |= STD;
    }
    if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
        m |= URL;
    }
    m
}

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class(i as u8);
        i += 1;
    }
    t
};

/// One run: its data characters (line breaks and padding removed) and the classes all of them share.
struct Run {
    data: Vec<u8>,
    mask: u8,
}

/// Scans `b` for runs of alphabet characters (line breaks allowed inside, `=` padding at the end).
fn scan_runs(b: &[u8], min: usize, mut on: impl FnMut(Run) -> bool) {
    let mut i = 0;
    let n = b.len();
    while i < n {
        // Skip to the next alphabet character.
        while i < n && CLASS[usize::from(b[i])] == 0 {
            i += 1;
        }
        let mut data = Vec::new();
        let mut mask = 0xff;
        while i < n {
            let c = b[i];
            let k = CLASS[usize::from(c)];
            if k != 0 {
                mask &= k;
                data.push(c);
                i += 1;
            } else if (c == b'\r' || c == b'\n') && !data.is_empty() {
                // A MIME line break continues the run if alphabet characters follow it.
                let mut j = i;
                while j < n && (b[j] == b'\r' || b[j] == b'\n') {
                    j += 1;
                }
                if j - i <= 2 && j < n && CLASS[usize::from(b[j])] != 0 && data.len() >= 16 {
                    i = j;
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        while i < n && b[i] == b'=' {
            i += 1;
        }
        if data.len() >= min && !on(Run { data, mask }) {
            return;
        }
        if i < n && CLASS[usize::from(b[i])] == 0 {
            i += 1;
        }
    }
}

/// Whether `b` has a run of an encoding alphabet of at least `min` characters (no decoding).
pub fn has_long_run(b: &[u8], min: usize) -> bool {
    let mut len = 0usize;
    for &c in b {
        if CLASS[usize::from(c)] != 0 {
            len += 1;
            if len >= min {
                return true;
            }
        } else if c != b'\r' && c != b'\n' {
            len = 0;
        }
    }
    false
}

/// Runs of base64 / base64url / base32 / hex text, each decoded into a child (`base64`, `base64url`,
/// `base32`, `hex`). A hex run is decoded only as hex.
pub fn runs(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    let mut count = 0usize;
    scan_runs(b, MIN_RUN, |run| {
        count += 1;
        let d = &run.data;
        let mut push = |label: &str, bytes: Vec<u8>| {
            if !bytes.is_empty() {
                out.push(Child {
                    label: label.into(),
                    field: None,
                    bytes,
                });
            }
        };
        if run.mask & HEX != 0 && d.len() % 2 == 0 {
            if let Ok(v) = data_encoding::HEXLOWER_PERMISSIVE.decode(d) {
                push("hex", v);
            }
            return count < MAX_RUNS;
        }
        if run.mask & (B32U | B32L) != 0 {
            let upper = d.to_ascii_uppercase();
            let use_len = trim_to_valid(&B32, upper.len());
            if let Some(v) = upper.get(..use_len).and_then(|x| B32.decode(x).ok()) {
                push("base32", v);
            }
        }
        let (enc, label) = if run.mask & STD != 0 {
            (&*B64, "base64")
        } else if run.mask & URL != 0 {
            (&*B64URL, "base64url")
        } else {
            return count < MAX_RUNS;
        };
        let len = trim_to_valid(enc, d.len());
        if let Some(v) = d.get(..len).and_then(|x| enc.decode(x).ok()) {
            push(label, v);
        }
        count < MAX_RUNS
    });
    if count >= MAX_RUNS {
        // Runs past the cap were not decoded: the node is reported (see `graph::MAX_CHILDREN`).
        cx.exceeded = true;
    }
    (!out.is_empty()).then_some(out)
}

/// The longest length ≤ `len` that `enc` can decode.
fn trim_to_valid(enc: &Encoding, mut len: usize) -> usize {
    while len > 0 && enc.decode_len(len).is_err() {
        len -= 1;
    }
    len
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding (malformed escapes kept literally); `plus` turns `+` into a space (form values).
pub fn percent_decode(b: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus && c == b'+' { b' ' } else { c });
        i += 1;
    }
    out
}

/// Whether `b[i..]` starts with a valid `%XX` escape.
fn escape_at(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'%')
        && b.get(i + 1).copied().and_then(hex_val).is_some()
        && b.get(i + 2).copied().and_then(hex_val).is_some()
}

/// Escapes a printable run inside binary bytes needs before it is decoded.
const MIN_ESCAPES_IN_BINARY: usize = 1;

/// Percent-encoded text (at least one valid `%XX`): decoded once per layer, so text encoded twice is two
/// `url` links. Text is decoded whole. In binary bytes (a compressed or encrypted body, a binary frame), only
/// the printable runs that hold at least [`MIN_ESCAPES_IN_BINARY`] escapes are decoded, each on its own and
/// joined by NUL bytes (no canary holds one, so nothing matches across a join): decoding the whole would make
/// a damaged copy of the binary for the other detectors to misread, and skipping it would hide a value
/// percent-encoded inside a binary frame.
pub fn percent(b: &[u8], _cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    if !super::graph::mostly_printable(b) {
        return percent_runs(b);
    }
    memchr::memchr_iter(b'%', b).find(|&i| escape_at(b, i))?;
    Some(vec![Child {
        label: "url".into(),
        field: None,
        bytes: percent_decode(b, false),
    }])
}

/// The printable runs of binary bytes that hold percent escapes, decoded (see [`percent`]).
fn percent_runs(b: &[u8]) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in memchr::memchr_iter(b'%', b) {
        if i < from || !escape_at(b, i) {
            continue;
        }
        let printable = |c: &u8| (0x20..0x7f).contains(c);
        let start = b[..i]
            .iter()
            .rposition(|c| !printable(c))
            .map_or(0, |p| p + 1);
        let end = b[i..]
            .iter()
            .position(|c| !printable(c))
            .map_or(b.len(), |p| i + p);
        from = end;
        let run = b.get(start..end).unwrap_or_default();
        let escapes = memchr::memchr_iter(b'%', run)
            .filter(|&j| escape_at(run, j))
            .take(MIN_ESCAPES_IN_BINARY)
            .count();
        if escapes >= MIN_ESCAPES_IN_BINARY {
            if !out.is_empty() {
                out.push(0);
            }
            out.extend_from_slice(&percent_decode(run, false));
        }
    }
    (!out.is_empty()).then(|| {
        vec![Child {
            label: "url".into(),
            field: None,
            bytes: out,
        }]
    })
}

fn form_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'[' | b']' | b'%' | b'*' | b'+')
}

/// A form-urlencoded body or query (`k=v&k2=v2`; by shape, or by its Content-Type): one child per value,
/// decoded (`+` is a space), labelled `form[KEY]`.
pub fn form(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let declared = matches!(cx.hint, Hint::ContentType(ct) if ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let b = if declared { trim(b) } else { b };
    if b.len() < 3 || memchr::memchr(b'=', b).is_none() {
        return None;
    }
    if !declared && b.iter().any(|&c| c <= b' ' || c >= 0x7f) {
        return None;
    }
    let mut out = Vec::new();
    let mut pairs = b.split(|&c| c == b'&');
    for pair in pairs.by_ref().take(MAX_RUNS) {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (pair.get(..i)?, pair.get(i + 1..)?),
            None if declared => (pair, &b""[..]),
            None => return None,
        };
        if k.is_empty() || !(declared || k.iter().all(|&c| form_key_char(c))) {
            return None;
        }
        // Base64 padding (`...dw==`) is not a form: undeclared keys are short and values do not start with `=`.
        if !declared && (k.len() > 64 || v.first() == Some(&b'=')) {
            return None;
        }
        if v.is_empty() {
            continue;
        }
        let key = String::from_utf8_lossy(&percent_decode(k, true))
            .chars()
            .take(64)
            .collect::<String>();
        out.push(Child {
            label: format!("form[{key}]"),
            field: Some(key),
            bytes: percent_decode(v, true),
        });
    }
    if pairs.next().is_some() {
        cx.exceeded = true;
    }
    (!out.is_empty()).then_some(out)
}

/// A `Cookie` header value (only with the cookie hint): one child per cookie, labelled `cookie[NAME]`.
pub fn cookie(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    if cx.hint != Hint::Cookie {
        return None;
    }
    let mut out = Vec::new();
    let mut cookies = b.split(|&c| c == b';');
    for c in cookies.by_ref().take(MAX_RUNS) {
        let c = trim(c);
        let Some(i) = memchr::memchr(b'=', c) else {
            continue;
        };
        let (k, v) = (c.get(..i)?, trim(c.get(i + 1..)?));
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        if v.is_empty() {
            continue;
        }
        let key: String = String::from_utf8_lossy(trim(k)).chars().take(64).collect();
        out.push(Child {
            label: format!("cookie[{key}]"),
            field: Some(format!("cookie:{key}")),
            bytes: v.to_vec(),
        });
    }
    if cookies.next().is_some() {
        cx.exceeded = true;
    }
    (!out.is_empty()).then_some(out)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    b.get(s..e).unwrap_or_default()
}

/// Whether a decoded string value is worth opening: it had escapes (its text differs from the raw document's),
/// or it looks like another layer.
fn worth_opening(s: &[u8], had_escape: bool) -> bool {
    s.len() >= 4
        && (had_escape
            || has_long_run(s, MIN_RUN)
            || memchr::memchr(b'%', s).is_some()
            || matches!(trim(s).first(), Some(b'{' | b'[' | b'<'))
            || s.iter().any(|&c| !(0x20..0x80).contains(&c)))
}

/// A JSON document: its string values (unescaped) that are worth opening, labelled `json`, with their path.
pub fn json(b: &[u8], _cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let t = trim(b);
    let ends = matches!(
        (t.first(), t.last()),
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
    );
    if !ends || t.len() > MAX_DOC || t.len() < 2 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(t).ok()?;
    let escaped = memchr::memchr(b'\\', t).is_some();
    let mut out = Vec::new();
    walk(&v, &mut String::from("$"), escaped, &mut out, 0);
    Some(out)
}

fn walk(
    v: &serde_json::Value,
    path: &mut String,
    escaped: bool,
    out: &mut Vec<Child>,
    depth: usize,
) {
    if out.len() >= MAX_RUNS || depth > 64 {
        return;
    }
    let len = path.len();
    match v {
        serde_json::Value::String(s) if worth_opening(s.as_bytes(), escaped) => {
            out.push(Child {
                label: "json".into(),
                field: Some(path.clone()),
                bytes: s.as_bytes().to_vec(),
            });
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                walk(x, path, escaped, out, depth + 1);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                path.push('.');
                path.extend(k.chars().take(64));
                walk(x, path, escaped, out, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// An XML document: text and attribute values (unescaped) that are worth opening, labelled `xml`, with the
/// element (and attribute) name.
pub fn xml(b: &[u8], _cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    use quick_xml::events::Event;
    let t = trim(b);
    if !(t.first() == Some(&b'<')
        && matches!(t.get(1), Some(c) if c.is_ascii_alphabetic() || *c == b'?' || *c == b'!'))
        || t.len() > MAX_DOC
    {
        return None;
    }
    let mut r = quick_xml::Reader::from_reader(t);
    let mut out = Vec::new();
    let mut elems = 0usize;
    let mut text: Vec<u8> = Vec::new();
    let mut had_ref = false;
    let mut name = String::new();
    let flush = |text: &mut Vec<u8>, had_ref: &mut bool, name: &str, out: &mut Vec<Child>| {
        if worth_opening(text, *had_ref) && out.len() < MAX_RUNS {
            out.push(Child {
                label: "xml".into(),
                field: Some(name.to_string()),
                bytes: std::mem::take(text),
            });
        }
        text.clear();
        *had_ref = false;
    };
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                elems += 1;
                flush(&mut text, &mut had_ref, &name, &mut out);
                name = String::from_utf8_lossy(e.name().as_ref())
                    .chars()
                    .take(64)
                    .collect();
                for a in e.attributes().flatten() {
                    if let Ok(v) = a.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                        let raw_escaped = a.value.contains(&b'&');
                        if worth_opening(v.as_bytes(), raw_escaped) && out.len() < MAX_RUNS {
                            out.push(Child {
                                label: "xml".into(),
                                field: Some(format!(
                                    "{name}@{}",
                                    String::from_utf8_lossy(a.key.as_ref())
                                )),
                                bytes: v.as_bytes().to_vec(),
                            });
                        }
                    }
                }
            }
            Ok(Event::Text(e)) => text.extend_from_slice(&e),
            Ok(Event::CData(e)) => text.extend_from_slice(&e),
            Ok(Event::GeneralRef(e)) => {
                had_ref = true;
                if let Ok(Some(c)) = e.resolve_char_ref() {
                    let mut buf = [0u8; 4];
                    text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                } else {
                    let n = String::from_utf8_lossy(&e);
                    let s = match n.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    };
                    text.extend_from_slice(s.as_bytes());
                }
            }
            Ok(Event::End(_)) => flush(&mut text, &mut had_ref, &name, &mut out),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (elems > 0).then_some(out)
}
