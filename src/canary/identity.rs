//! The identity file: which fake personal values were planted on the device.
//!
//! The file is a YAML mapping from a canary name to a scalar (string, number, boolean) or a
//! list of scalars. Scalars are taken with their *source text* (`imei: 0356...` keeps the
//! leading zero, `v: 1.10` stays `1.10`), trimmed. This module owns the identity rules
//! (`Identity::plant`: long enough, distinct), the conversion of an identity file's positioned
//! YAML tree (`crate::yaml`, the front end scenarios use too) and its errors
//! ([`IdentityError`], a located [`Diagnostic`]); it does no I/O (the caller reads the file and
//! passes the text plus a display name).

use std::ops::Deref;

use crate::diag::Diagnostic;
use crate::yaml::{self, FileKind, Node, NodeKind, Pos, TreeErrorKind};

/// Canary values shorter than this (in bytes, after trimming) are rejected by
/// [`Identity::from_yaml`]: they would match far too much traffic.
pub const MIN_VALUE_LEN: usize = 6;
/// Fewest distinct bytes (ASCII case ignored) a canary value must have: `000000` or `ababab`
/// would match runs of padding and counters, not the planted value.
pub const MIN_DISTINCT_BYTES: usize = 3;
/// Largest identity file accepted, in bytes (checked before any YAML is read).
pub const MAX_IDENTITY_BYTES: usize = 1 << 20;

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
    /// A value holds control bytes, or fewer than [`MIN_DISTINCT_BYTES`] distinct bytes.
    TooPlain,
    /// The file is larger than [`MAX_IDENTITY_BYTES`], or its aliases expand too far.
    TooLarge,
}

/// Error for an unusable identity file: a [`Diagnostic`] (file, line, column, the offending line,
/// title and message, all readable through `Deref`) with the class of the problem. `Display`
/// renders it hurl-style with the offending line and a caret under the problem.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{diag}")]
pub struct IdentityError {
    /// Class of the problem.
    pub kind: IdentityErrorKind,
    /// Where the problem is (file name as given to [`Identity::from_yaml`]) and what it is.
    pub diag: Diagnostic,
}

impl Deref for IdentityError {
    type Target = Diagnostic;
    fn deref(&self) -> &Diagnostic {
        &self.diag
    }
}

/// Why a value cannot join an identity: the identity rules, shared by identity files and the
/// inline identities of scenarios (each words its own message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Shorter than [`MIN_VALUE_LEN`] bytes after trimming.
    TooShort,
    /// Control bytes, or fewer than [`MIN_DISTINCT_BYTES`] distinct bytes.
    TooPlain,
    /// The same value (ASCII case ignored) as the canary at this index.
    SameAs(usize),
}

/// Reads at most `max + 1` bytes of a file as text: a larger file is never read whole (its text is
/// then longer than `max`, and the caller refuses it), so a huge or endless file costs no memory.
pub fn read_bounded(path: &std::path::Path, max: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max as u64 + 1)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Why a value is too plain to be a canary, in words.
pub(crate) const TOO_PLAIN: &str = "canary values need at least 3 different characters and no control characters (NUL, escapes), or they match padding and counters everywhere; use a realistic fake value";

/// The file's text and name, to build located errors.
struct Src<'a> {
    text: &'a str,
    source: &'a str,
}

impl Src<'_> {
    fn err(
        &self,
        kind: IdentityErrorKind,
        pos: Option<Pos>,
        title: &'static str,
        message: String,
    ) -> IdentityError {
        let (line, col) = pos.map_or((0, 0), |p| (p.line, p.col));
        self.err_at(kind, line, col, title, message)
    }

    /// An error at 1-based `line` and `col`; line 0: no position.
    fn err_at(
        &self,
        kind: IdentityErrorKind,
        line: usize,
        col: usize,
        title: &'static str,
        message: String,
    ) -> IdentityError {
        IdentityError {
            kind,
            diag: Diagnostic::at(self.source, self.text, line, col, title, message),
        }
    }

    /// A syntax error. Its wording is serde_yaml's (libyaml's) where that parser also refuses the
    /// text, as identity files were read with it before the positioned tree; otherwise the tree's.
    fn syntax(&self, pos: Pos, tree_message: String) -> IdentityError {
        let (line, col, msg) = match serde_yaml::from_str::<serde_yaml::Value>(self.text) {
            Err(e) => {
                let (line, col) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((0, 0));
                let mut msg = e.to_string();
                if line > 0 {
                    msg = msg.replace(&format!(" at line {line} column {col}"), "");
                }
                (line, col, msg)
            }
            Ok(_) => (pos.line, pos.col, tree_message),
        };
        self.err_at(
            IdentityErrorKind::Syntax,
            line,
            col,
            "invalid YAML in identity file",
            format!("{msg}; the identity file must be a YAML mapping of name: value"),
        )
    }
}

impl Identity {
    /// Parse and validate an identity file. `source` is the file name used in messages.
    pub fn from_yaml(text: &str, source: &str) -> Result<Identity, IdentityError> {
        use IdentityErrorKind as K;
        let src = Src { text, source };
        let empty = |pos| {
            src.err(
                K::Empty,
                pos,
                "empty identity file",
                "the identity file defines no canaries; add lines like `imei: \"356938035643809\"`"
                    .to_string(),
            )
        };
        if text.len() > MAX_IDENTITY_BYTES {
            return Err(src.err(
                K::TooLarge,
                None,
                "identity file too large",
                format!(
                    "the identity file is {} bytes; identity files are at most {MAX_IDENTITY_BYTES} bytes",
                    text.len()
                ),
            ));
        }
        let root = match yaml::parse(text, FileKind::Identity) {
            Ok(Some(root)) => root,
            Ok(None) => return Err(empty(None)),
            Err(e) => {
                return Err(match e.kind {
                    // A bound of the tree (alias expansion, nesting): never handed to serde_yaml,
                    // which would expand the aliases itself.
                    TreeErrorKind::Limit => src.err(
                        K::TooLarge,
                        Some(e.pos),
                        "identity file too large",
                        e.message,
                    ),
                    TreeErrorKind::Duplicate { key, first_line } => src.err(
                        K::DuplicateKey,
                        Some(e.pos),
                        "duplicate identity key",
                        format!("key `{key}` is already defined on line {first_line}; give every canary its own name"),
                    ),
                    TreeErrorKind::Key { map } => src.err(
                        K::InvalidKey,
                        Some(map),
                        "invalid identity key",
                        "canary names must be plain strings like `imei`".to_string(),
                    ),
                    TreeErrorKind::Syntax => src.syntax(e.pos, e.message),
                });
            }
        };
        let entries: &[(Node, Node)] = match &root.kind {
            NodeKind::Null => return Err(empty(None)),
            NodeKind::Map(m) if m.is_empty() => return Err(empty(Some(root.pos))),
            NodeKind::Map(m) => m,
            _ => return Err(src.err(
                K::NotAMapping,
                Some(root.pos),
                "identity file is not a mapping",
                "the top level must be a mapping of name: value, e.g. `phone: \"+15555550123\"`"
                    .to_string(),
            )),
        };
        // Shapes of every entry first, then the values.
        for (k, v) in entries {
            src.check_shape(k, v)?;
        }
        let mut id = Identity::default();
        let mut lines: Vec<usize> = Vec::new();
        for (k, v) in entries {
            let key = k.scalar().unwrap_or("");
            let items: Vec<(String, &Node)> = match &v.kind {
                NodeKind::Seq(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{key}[{i}]"), item))
                    .collect(),
                _ => vec![(key.to_string(), v)],
            };
            for (name, item) in items {
                let pos = yaml::value_pos(text, item);
                let value = item.scalar().unwrap_or("");
                match id.plant(key, name.clone(), value) {
                    Ok(()) => lines.push(pos.line),
                    Err(Refusal::TooShort) => {
                        return Err(src.err(
                            K::TooShort,
                            Some(pos),
                            "identity value too short",
                            format!(
                                "canary values must be at least {MIN_VALUE_LEN} bytes long, or every packet would match; use a longer fake value"
                            ),
                        ))
                    }
                    Err(Refusal::TooPlain) => {
                        return Err(src.err(
                            K::TooPlain,
                            Some(pos),
                            "identity value too plain",
                            TOO_PLAIN.to_string(),
                        ))
                    }
                    Err(Refusal::SameAs(j)) => {
                        let prev = &id.canaries[j];
                        return Err(src.err(
                            K::DuplicateValue,
                            Some(pos),
                            "duplicate identity value",
                            format!(
                                "`{name}` has the same value as `{}` (line {}); every canary needs a distinct value so a hit names one canary",
                                prev.name, lines.get(j).copied().unwrap_or(0)
                            ),
                        ));
                    }
                }
            }
        }
        Ok(id)
    }

    /// Add one canary under the identity rules: the value (trimmed) is at least
    /// [`MIN_VALUE_LEN`] bytes long and differs (ASCII case ignored) from every value so far.
    pub(crate) fn plant(&mut self, key: &str, name: String, value: &str) -> Result<(), Refusal> {
        let value = value.trim();
        if value.len() < MIN_VALUE_LEN {
            return Err(Refusal::TooShort);
        }
        let mut seen = [false; 256];
        for b in value.bytes() {
            seen[usize::from(b.to_ascii_lowercase())] = true;
        }
        if value.bytes().any(|b| b < 0x20 || b == 0x7f)
            || seen.iter().filter(|s| **s).count() < MIN_DISTINCT_BYTES
        {
            return Err(Refusal::TooPlain);
        }
        if let Some(j) = self
            .canaries
            .iter()
            .position(|c| c.value.eq_ignore_ascii_case(value))
        {
            return Err(Refusal::SameAs(j));
        }
        self.canaries.push(Canary {
            name,
            key: key.to_string(),
            value: value.to_string(),
        });
        Ok(())
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

impl Src<'_> {
    /// An entry's value is a scalar or a non-empty list of scalars.
    fn check_shape(&self, k: &Node, v: &Node) -> Result<(), IdentityError> {
        use IdentityErrorKind as K;
        let key = k.scalar().unwrap_or("");
        match &v.kind {
            NodeKind::Scalar { .. } => Ok(()),
            NodeKind::Null => Err(self.err(
                K::Null,
                Some(yaml::value_pos(self.text, v)),
                "identity value missing",
                format!("`{key}` has no value; write the planted value after the colon, or remove the line"),
            )),
            NodeKind::Map(_) => Err(self.err(
                K::Nested,
                Some(k.pos),
                "nested mapping in identity file",
                format!("`{key}` holds a mapping; values must be a scalar or a list of scalars"),
            )),
            NodeKind::Seq(items) if items.is_empty() => Err(self.err(
                K::Empty,
                Some(v.pos),
                "empty identity list",
                format!("`{key}` is an empty list; add values or remove the line"),
            )),
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let (kind, title, what) = match item.kind {
                        NodeKind::Scalar { .. } => continue,
                        NodeKind::Null => (
                            K::Null,
                            "identity list item missing",
                            "is null; write a value or remove the item",
                        ),
                        NodeKind::Map(_) | NodeKind::Seq(_) => (
                            K::Nested,
                            "nested value in identity list",
                            "is not a scalar; list items must be strings or numbers",
                        ),
                    };
                    return Err(self.err(
                        kind,
                        Some(yaml::value_pos(self.text, item)),
                        title,
                        format!("`{key}[{i}]` {what}"),
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(text: &str) -> IdentityError {
        Identity::from_yaml(text, "ids.yaml").expect_err("should fail")
    }

    #[test]
    fn plain_values_are_refused_with_their_line() {
        for v in [
            "\"\\0\\0\\0\\0\\0\\0\"",
            "\"000000000\"",
            "ababababab",
            "\"abc\\tdefgh\"",
        ] {
            let err = e(&format!("imei: \"356938035643809\"\npin: {v}\n"));
            assert_eq!(err.kind, IdentityErrorKind::TooPlain, "{v}");
            assert_eq!((err.line, err.column), (2, 6), "{v}");
            assert!(err.to_string().contains("3 different characters"), "{err}");
        }
        // Three distinct characters are enough.
        Identity::from_yaml("flt: 1.100000\n", "x").unwrap();
    }

    #[test]
    fn oversized_files_and_alias_bombs_are_refused_without_serde_yaml() {
        let big = format!("a: \"{}\"\n", "x".repeat(MAX_IDENTITY_BYTES));
        assert_eq!(e(&big).kind, IdentityErrorKind::TooLarge);
        let mut t = String::from("l0: &l0 [abcdefg, abcdefh]\n");
        for i in 1..40 {
            t.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        let started = std::time::Instant::now();
        let err = e(&t);
        assert_eq!(err.kind, IdentityErrorKind::TooLarge);
        assert!(err.to_string().contains("aliases are copied"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
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
    fn positions_come_from_the_tree() {
        // Flow mappings and nested duplicates are located like block ones.
        let err = e("{a: \"12\"}\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::TooShort, 1, 5)
        );
        let err = e("{a: abcdefgh, a: ijklmnop}\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::DuplicateKey, 1, 15)
        );
        // An empty value is shown just after its colon, comments or not.
        let err = e("phone:   # later\n");
        assert_eq!(
            (err.kind, err.line, err.column),
            (IdentityErrorKind::Null, 1, 7)
        );
        // Syntax errors keep serde_yaml's wording where it refuses the text too.
        let err = e("a: 1\n---\nb: 2\n");
        assert_eq!(err.kind, IdentityErrorKind::Syntax);
        assert!(
            err.message.contains("more than one document"),
            "{}",
            err.message
        );
        let err = e("a: !custom abcdefgh\n");
        assert_eq!(err.kind, IdentityErrorKind::Syntax);
        assert!(err.message.contains("identity files"), "{}", err.message);
    }

    #[test]
    fn from_pairs_trims_and_skips_empty() {
        let id = Identity::from_pairs(&[("a", " abcdef "), ("b", "  ")]);
        assert_eq!(id.canaries.len(), 1);
        assert_eq!(id.canaries[0].value, "abcdef");
    }
}
