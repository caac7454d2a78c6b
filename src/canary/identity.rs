//! The identity file: which fake personal values were planted on the device.
//!
//! The file is a YAML mapping from a canary name to a scalar (string, number, boolean) or a
//! list of scalars. Scalars are taken with their *source text* (`imei: 0356...` keeps the
//! leading zero, `v: 1.10` stays `1.10`), trimmed. This module owns parsing and validation of
//! that file and the hurl-style rendering of its errors; it does no I/O (the caller reads the
//! file and passes the text plus a display name).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml::Value;

/// Canary values shorter than this (in bytes, after trimming) are rejected by
/// [`Identity::from_yaml`]: they would match far too much traffic.
pub const MIN_VALUE_LEN: usize = 6;

/// One planted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// Display name: the key (`"imei"`), or `key[i]` for the i-th item of a list (`"contacts[1]"`).
    pub name: String,
    /// The YAML key the value came from (`"contacts"`).
    pub key: String,
    /// The planted value (trimmed source text of the scalar).
    pub value: String,
}

/// All canaries of one identity file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The canaries in file order; [`crate::canary::Hit::canary`] indexes this vector.
    pub canaries: Vec<Canary>,
}

/// What class of problem an [`IdentityError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityErrorKind {
    /// The text is not valid YAML.
    Syntax,
    /// The top level is not a mapping.
    NotAMapping,
    /// The file defines no canary at all (empty file, `{}`, or an empty list).
    Empty,
    /// A key is not a plain scalar (e.g. `? [a, b]: x` or `~: x`).
    InvalidKey,
    /// The same key appears twice.
    DuplicateKey,
    /// A value (or list item) is a mapping or a list inside a list.
    Nested,
    /// A value (or list item) is null / missing.
    Null,
    /// A value is shorter than [`MIN_VALUE_LEN`] bytes after trimming.
    TooShort,
    /// The same value (ignoring ASCII case) is used by two canaries.
    DuplicateValue,
}

/// Error for an unusable identity file. `Display` renders it hurl-style with the offending
/// line and a caret under the problem.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.title, .source_name, *.line, *.column, .line_text, .message))]
pub struct IdentityError {
    /// Class of the problem.
    pub kind: IdentityErrorKind,
    /// Name of the file (as given to [`Identity::from_yaml`]).
    pub source_name: String,
    /// 1-based line of the problem; 0 when unknown.
    pub line: usize,
    /// 1-based column (in characters) of the problem; 0 when unknown.
    pub column: usize,
    /// The text of the offending line (empty when unknown).
    pub line_text: String,
    /// Short title, e.g. `identity value too short`.
    pub title: &'static str,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl IdentityError {
    fn new(
        kind: IdentityErrorKind,
        source: &str,
        text: &str,
        line: usize,
        column: usize,
        title: &'static str,
        message: String,
    ) -> IdentityError {
        let line_text = if line == 0 {
            String::new()
        } else {
            text.lines().nth(line - 1).unwrap_or("").to_string()
        };
        IdentityError {
            kind,
            source_name: source.to_string(),
            line,
            column,
            line_text,
            title,
            message,
        }
    }
}

/// Hurl-style rendering of an identity error.
pub(crate) fn render(
    title: &str,
    source_name: &str,
    line: usize,
    column: usize,
    line_text: &str,
    message: &str,
) -> String {
    use fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "error: {}", title);
    if line == 0 {
        let _ = writeln!(s, "  --> {}", source_name);
        let _ = write!(s, "   = {}", message);
        return s;
    }
    let w = line.to_string().len();
    let pad = " ".repeat(w + 1);
    let bar = " ".repeat(w + 2);
    let _ = writeln!(s, "{pad}--> {}:{}:{}", source_name, line, column.max(1));
    let _ = writeln!(s, "{bar}|");
    let _ = writeln!(s, " {:>w$} | {}", line, line_text);
    let caret_pad = " ".repeat(column.saturating_sub(1));
    let _ = write!(s, "{bar}| {caret_pad}^ {}", message);
    s
}

impl Identity {
    /// Parse and validate an identity file. `source` is the file name used in messages.
    pub fn from_yaml(text: &str, source: &str) -> Result<Identity, IdentityError> {
        use IdentityErrorKind as K;
        let err = |kind, line, col, title: &'static str, msg: String| {
            IdentityError::new(kind, source, text, line, col, title, msg)
        };
        let lines = scan_top_level(text);

        // Duplicate keys first: serde_yaml reports them at the mapping start only.
        for (i, a) in lines.iter().enumerate() {
            if let Some(first) = lines[..i].iter().find(|b| b.key == a.key) {
                return Err(err(
                    K::DuplicateKey,
                    a.line,
                    a.key_col,
                    "duplicate identity key",
                    format!(
                        "key `{}` is already defined on line {}; give every canary its own name",
                        a.key, first.line
                    ),
                ));
            }
        }

        let doc: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let (line, col) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                let mut msg = e.to_string();
                if line > 0 {
                    msg = msg.replace(&format!(" at line {line} column {col}"), "");
                }
                return Err(err(
                    K::Syntax,
                    line,
                    col,
                    "invalid YAML in identity file",
                    format!("{msg}; the identity file must be a YAML mapping of name: value"),
                ));
            }
        };
        let doc = untag(&doc);
        let map = match doc {
            Value::Mapping(m) => m,
            Value::Null => return Err(err(
                K::Empty,
                0,
                0,
                "empty identity file",
                "the identity file defines no canaries; add lines like `imei: \"356938035643809\"`"
                    .to_string(),
            )),
            _ => {
                let (line, col) = first_content_pos(text);
                return Err(err(
                    K::NotAMapping,
                    line,
                    col,
                    "identity file is not a mapping",
                    "the top level must be a mapping of name: value, e.g. `phone: \"+15555550123\"`"
                        .to_string(),
                ));
            }
        };
        if map.is_empty() {
            let (line, col) = first_content_pos(text);
            return Err(err(
                K::Empty,
                line,
                col,
                "empty identity file",
                "the identity file defines no canaries; add lines like `imei: \"356938035643809\"`"
                    .to_string(),
            ));
        }

        // Pass 1: shapes, with semantic errors located by scanning the text.
        let mut shapes = Vec::with_capacity(map.len());
        for (k, v) in map {
            let key_text = match untag(k) {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    let (line, col) = first_content_pos(text);
                    return Err(err(
                        K::InvalidKey,
                        line,
                        col,
                        "invalid identity key",
                        "canary names must be plain strings like `imei`".to_string(),
                    ));
                }
            };
            let loc = lines.iter().find(|l| l.key == key_text);
            let (kl, kc, vc) = loc.map_or((0, 0, 0), |l| (l.line, l.key_col, l.value_col));
            match untag(v) {
                Value::Null => {
                    return Err(err(
                        K::Null,
                        kl,
                        vc,
                        "identity value missing",
                        format!("`{key_text}` has no value; write the planted value after the colon, or remove the line"),
                    ))
                }
                Value::Mapping(_) => {
                    return Err(err(
                        K::Nested,
                        kl,
                        kc,
                        "nested mapping in identity file",
                        format!("`{key_text}` holds a mapping; values must be a scalar or a list of scalars"),
                    ))
                }
                Value::Sequence(items) => {
                    if items.is_empty() {
                        return Err(err(
                            K::Empty,
                            kl,
                            vc,
                            "empty identity list",
                            format!("`{key_text}` is an empty list; add values or remove the line"),
                        ));
                    }
                    for (i, item) in items.iter().enumerate() {
                        let bad = match untag(item) {
                            Value::Null => Some((K::Null, "identity list item missing", "is null; write a value or remove the item")),
                            Value::Mapping(_) | Value::Sequence(_) => Some((K::Nested, "nested value in identity list", "is not a scalar; list items must be strings or numbers")),
                            _ => None,
                        };
                        if let Some((kind, title, what)) = bad {
                            let (il, ic) = locate_item(text, loc, i).unwrap_or((kl, kc));
                            return Err(err(kind, il, ic, title, format!("`{key_text}[{i}]` {what}")));
                        }
                    }
                    shapes.push(Shape::List);
                }
                _ => shapes.push(Shape::Scalar),
            }
        }

        // Pass 2: re-read with the scalars' source text.
        let raw = DocSeed { shapes: &shapes }
            .deserialize(serde_yaml::Deserializer::from_str(text))
            .map_err(|e| {
                err(
                    K::Syntax,
                    e.location().map_or(0, |l| l.line()),
                    e.location().map_or(0, |l| l.column()),
                    "invalid YAML in identity file",
                    e.to_string(),
                )
            })?;

        let mut canaries: Vec<Canary> = Vec::new();
        let mut where_: Vec<(usize, usize)> = Vec::new();
        for (key, val) in raw {
            let loc = lines.iter().find(|l| l.key == key);
            let (kl, vc) = loc.map_or((0, 0), |l| (l.line, l.value_col));
            let items: Vec<(String, String, (usize, usize))> = match val {
                RawVal::Scalar(s) => vec![(key.clone(), s, (kl, vc))],
                RawVal::List(v) => v
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let pos = locate_item(text, loc, i).unwrap_or((kl, vc));
                        (format!("{key}[{i}]"), s, pos)
                    })
                    .collect(),
            };
            for (name, value, (line, col)) in items {
                let value = value.trim().to_string();
                if value.len() < MIN_VALUE_LEN {
                    return Err(err(
                        K::TooShort,
                        line,
                        col,
                        "identity value too short",
                        format!(
                            "canary values must be at least {MIN_VALUE_LEN} bytes long, or every packet would match; use a longer fake value"
                        ),
                    ));
                }
                if let Some(j) = canaries
                    .iter()
                    .position(|c| c.value.eq_ignore_ascii_case(&value))
                {
                    let prev = &canaries[j];
                    return Err(err(
                        K::DuplicateValue,
                        line,
                        col,
                        "duplicate identity value",
                        format!(
                            "`{name}` has the same value as `{}` (line {}); every canary needs a distinct value so a hit names one canary",
                            prev.name, where_[j].0
                        ),
                    ));
                }
                canaries.push(Canary {
                    name,
                    key: key.clone(),
                    value,
                });
                where_.push((line, col));
            }
        }
        Ok(Identity { canaries })
    }

    /// Build an identity from `(name, value)` pairs without validation (values are trimmed;
    /// empty values are skipped). The key of each canary is its name.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Identity {
        let canaries = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(n, v)| Canary {
                name: n.to_string(),
                key: n.to_string(),
                value: v.trim().to_string(),
            })
            .collect();
        Identity { canaries }
    }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// Position of the first non-blank, non-comment character.
fn first_content_pos(text: &str) -> (usize, usize) {
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if !t.is_empty() && !t.starts_with('#') && t != "---" {
            return (i + 1, l.chars().count() - t.chars().count() + 1);
        }
    }
    (1, 1)
}

/// A top-level `key: value` line found by scanning the text.
#[derive(Debug, Clone)]
struct KeyLine {
    key: String,
    line: usize,
    key_col: usize,
    /// Column of the value; for an empty value, the column just after the colon.
    value_col: usize,
}

/// Best-effort scan of top-level block-mapping keys (lines starting at column 1).
fn scan_top_level(text: &str) -> Vec<KeyLine> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let Some(first) = l.chars().next() else {
            continue;
        };
        if first.is_whitespace() || matches!(first, '#' | '-' | '[' | '{' | '%' | '.' | '?') {
            continue;
        }
        let chars: Vec<char> = l.chars().collect();
        let (key, after) = if first == '"' || first == '\'' {
            let mut j = 1;
            let mut k = String::new();
            while j < chars.len() && chars[j] != first {
                if first == '"' && chars[j] == '\\' && j + 1 < chars.len() {
                    j += 1;
                }
                k.push(chars[j]);
                j += 1;
            }
            (k, j + 1)
        } else {
            let mut j = 0;
            while j < chars.len() {
                if chars[j] == ':' && chars.get(j + 1).is_none_or(|c| c.is_whitespace()) {
                    break;
                }
                if chars[j] == '#' && j > 0 && chars[j - 1].is_whitespace() {
                    j = chars.len();
                    break;
                }
                j += 1;
            }
            (
                chars[..j.min(chars.len())]
                    .iter()
                    .collect::<String>()
                    .trim_end()
                    .to_string(),
                j,
            )
        };
        // Expect the colon right at `after` (possibly after spaces).
        let mut j = after;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if chars.get(j) != Some(&':') {
            continue;
        }
        j += 1;
        let colon_end = j;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let value_col = if j >= chars.len() || chars[j] == '#' {
            colon_end + 1
        } else {
            j + 1
        };
        out.push(KeyLine {
            key,
            line: i + 1,
            key_col: 1,
            value_col,
        });
    }
    out
}

/// Best-effort position (line, column) of the `i`-th list item of a key: block list items
/// on the following lines, or flow items on the key's line.
fn locate_item(text: &str, loc: Option<&KeyLine>, i: usize) -> Option<(usize, usize)> {
    let loc = loc?;
    let lines: Vec<&str> = text.lines().collect();
    let key_line = lines.get(loc.line - 1)?;
    let rest: String = key_line.chars().skip(loc.value_col - 1).collect();
    if rest.starts_with('[') {
        // Flow list on one line: split at top-level commas, respecting quotes.
        let mut idx = 0;
        let mut quote: Option<char> = None;
        let mut start: Option<usize> = None;
        for (c_i, c) in rest.chars().enumerate().skip(1) {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => {
                        quote = Some(c);
                        if start.is_none() {
                            start = Some(c_i);
                        }
                    }
                    ',' | ']' => {
                        if idx == i {
                            return start.map(|s| (loc.line, loc.value_col + s));
                        }
                        idx += 1;
                        start = None;
                        if c == ']' {
                            return None;
                        }
                    }
                    c if c.is_whitespace() => {}
                    _ => {
                        if start.is_none() {
                            start = Some(c_i);
                        }
                    }
                },
            }
        }
        return None;
    }
    let mut idx = 0;
    for (n, l) in lines.iter().enumerate().skip(loc.line) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(after) = t.strip_prefix('-') {
            if idx == i {
                let indent = l.chars().count() - t.chars().count();
                let sp = after.chars().take_while(|c| c.is_whitespace()).count();
                return Some((n + 1, indent + 2 + sp));
            }
            idx += 1;
        } else {
            break;
        }
    }
    None
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Scalar,
    List,
}

enum RawVal {
    Scalar(String),
    List(Vec<String>),
}

/// Deserializes a scalar as its source text (serde_yaml hands the scalar text to `visit_str`).
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_string())
            }
        }
        d.deserialize_str(V)
    }
}

struct ListSeed;

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of scalars")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element_seed(StrSeed)? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

struct DocSeed<'a> {
    shapes: &'a [Shape],
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = Vec<(String, RawVal)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'a>(&'a [Shape]);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Vec<(String, RawVal)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key_seed(StrSeed)? {
                    let v = match self.0.get(out.len()) {
                        Some(Shape::List) => RawVal::List(map.next_value_seed(ListSeed)?),
                        _ => RawVal::Scalar(map.next_value_seed(StrSeed)?),
                    };
                    out.push((k, v));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(self.shapes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(text: &str) -> IdentityError {
        Identity::from_yaml(text, "ids.yaml").expect_err("should fail")
    }

    #[test]
    fn parses_example_in_order_with_source_text() {
        let t = "imei: \"356938035643809\"\nphone: \"+15555550123\"\n# comment\nemail: alice.canary@example.invalid\ncontacts: [\"Alice Canary\", \"+15555550199\"]\nserial: ABC123XYZ   # trailing\nnum: 356938035643800\nlead: 0123456789\nflt: 1.100000\n";
        let id = Identity::from_yaml(t, "ids.yaml").unwrap();
        let got: Vec<(&str, &str, &str)> = id
            .canaries
            .iter()
            .map(|c| (c.name.as_str(), c.key.as_str(), c.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("imei", "imei", "356938035643809"),
                ("phone", "phone", "+15555550123"),
                ("email", "email", "alice.canary@example.invalid"),
                ("contacts[0]", "contacts", "Alice Canary"),
                ("contacts[1]", "contacts", "+15555550199"),
                ("serial", "serial", "ABC123XYZ"),
                ("num", "num", "356938035643800"),
                ("lead", "lead", "0123456789"),
                ("flt", "flt", "1.100000"),
            ]
        );
    }

    #[test]
    fn block_list_items() {
        let t = "contacts:\n  - Alice Canary\n  - 15555550199\n";
        let id = Identity::from_yaml(t, "x").unwrap();
        assert_eq!(id.canaries.len(), 2);
        assert_eq!(id.canaries[1].value, "15555550199");
        assert_eq!(id.canaries[1].name, "contacts[1]");
    }

    #[test]
    fn too_short_is_located_and_rendered() {
        let err = e("imei: \"356938035643809\"\nphone: \"+15555550123\"\npin: \"12\"\n");
        assert_eq!(err.kind, IdentityErrorKind::TooShort);
        assert_eq!((err.line, err.column), (3, 6));
        assert_eq!(err.line_text, "pin: \"12\"");
        let shown = err.to_string();
        assert!(shown.starts_with("error: identity value too short\n  --> ids.yaml:3:6\n   |\n 3 | pin: \"12\"\n   |      ^ canary values must be at least 6 bytes"), "{shown}");
        // Whitespace does not count.
        let err = e("pin: \"  12345  \"\n");
        assert_eq!(err.kind, IdentityErrorKind::TooShort);
    }

    #[test]
    fn syntax_error_uses_yaml_location() {
        let err = e("imei: \"356938035643809\"\ncontacts: [\"abcdefg\", \"hijklmn\"\n");
        assert_eq!(err.kind, IdentityErrorKind::Syntax);
        assert_eq!(err.line, 3);
        assert!(err.column >= 1);
        let err = e("a: 'xxxxxxx'\n  b: 2\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Syntax, 2, 3)
        );
        assert!(!err.message.contains("at line"), "{}", err.message);
    }

    #[test]
    fn not_a_mapping() {
        let err = e("# ids\n- 356938035643809\n- abcdefgh\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::NotAMapping, 2, 1)
        );
        let err = e("just-a-string-value\n");
        assert_eq!(err.kind, IdentityErrorKind::NotAMapping);
    }

    #[test]
    fn empty_file_and_empty_list() {
        assert_eq!(e("").kind, IdentityErrorKind::Empty);
        assert_eq!(e("# only a comment\n").kind, IdentityErrorKind::Empty);
        let err = e("{}\n");
        assert_eq!((err.kind, err.line), (IdentityErrorKind::Empty, 1));
        let err = e("imei: \"356938035643809\"\ncontacts: []\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Empty, 2, 11)
        );
    }

    #[test]
    fn nested_mapping_and_nested_list() {
        let err = e("imei: \"356938035643809\"\nphone:\n  home: \"+15555550123\"\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Nested, 2, 1)
        );
        let err = e("contacts:\n  - Alice Canary\n  - [abcdefgh, ijklmnop]\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Nested, 3, 5)
        );
    }

    #[test]
    fn null_values() {
        let err = e("imei: \"356938035643809\"\nphone:\nemail: alice@example.invalid\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Null, 2, 7)
        );
        let err = e("phone: ~\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Null, 1, 8)
        );
        let err = e("contacts: [\"Alice Canary\", null]\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Null, 1, 28)
        );
    }

    #[test]
    fn duplicate_values_and_keys() {
        let err = e("a: \"Alice Canary\"\nb: alice canary\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::DuplicateValue, 2, 4)
        );
        assert!(err.message.contains("`a`"), "{}", err.message);
        let err = e("contacts:\n  - abcdefgh\n  - abcdefgh\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::DuplicateValue, 3, 5)
        );
        let err = e("imei: \"356938035643809\"\nimei: \"356938035643810\"\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::DuplicateKey, 2, 1)
        );
    }

    #[test]
    fn invalid_key() {
        let err = e("? [a, b]\n: abcdefgh\n");
        assert_eq!(err.kind, IdentityErrorKind::InvalidKey);
        assert_eq!(err.line, 1);
    }

    #[test]
    fn from_pairs_trims_and_skips_empty() {
        let id = Identity::from_pairs(&[("a", " abcdef "), ("b", "  ")]);
        assert_eq!(id.canaries.len(), 1);
        assert_eq!(id.canaries[0].value, "abcdef");
    }
}
