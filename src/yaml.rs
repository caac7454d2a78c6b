//! The positioned YAML front end of scenarios and identity files: a tree whose every node knows
//! where it starts, built from `saphyr-parser`'s events.
//!
//! serde_yaml reports positions only for its own deserialisation errors; scenario and identity
//! checks are mostly semantic (unknown phase, unknown canary, a value too short), so both files
//! are read into this tree and converted by hand, and every error points at the node it is about.
//!
//! Scalars keep their text as written (`imei: 0356...` keeps the leading zero), so typing
//! (numbers, booleans) is decided by the converter, not by the YAML schema. Duplicate keys,
//! non-scalar keys, multi-document files, tags other than `!!str`, nesting deeper than
//! [`MAX_DEPTH`] and alias expansion past [`MAX_NODES`] nodes or [`MAX_BYTES`] bytes of text are rejected
//! here, before anything is copied ([`TreeErrorKind::Limit`]).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting of sequences and mappings accepted.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most nodes a document may expand to (aliases are copied), so `*a` bombs stay small.
pub(crate) const MAX_NODES: usize = 100_000;
/// Most bytes of scalar text a document may expand to (aliases are copied): a long string
/// aliased many times is refused before it is copied.
pub(crate) const MAX_BYTES: usize = 4 << 20;

/// Where a node starts: 1-based line and column (in characters) and the 0-based character index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
    pub index: usize,
}

impl Pos {
    fn from_span(s: &Span) -> Pos {
        Pos {
            line: s.start.line(),
            col: s.start.col() + 1,
            index: s.start.index(),
        }
    }
}

/// One YAML node with its start position and (for scalars) the character index just past it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub pos: Pos,
    /// Character index just past the node's source text (scalars; start index for collections).
    pub end: usize,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// `~`, `null`, or nothing at all (`key:`).
    Null,
    /// A scalar with its text; `plain` is false for quoted, block and `!!str` scalars.
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping; keys are scalars, unique by text.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar node.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for a plain (unquoted) scalar, the only kind read as a number or boolean.
    pub fn is_plain(&self) -> bool {
        matches!(self.kind, NodeKind::Scalar { plain: true, .. })
    }

    /// `a string `x``, `a list`, … for messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "nothing".to_string(),
            NodeKind::Scalar { text, .. } => {
                let short: String = text.chars().take(40).collect();
                let more = if short.len() < text.len() { "…" } else { "" };
                format!("`{}{more}`", short.replace('\n', "\\n"))
            }
            NodeKind::Seq(_) => "a list".to_string(),
            NodeKind::Map(_) => "a mapping".to_string(),
        }
    }

    /// Nodes and bytes of scalar text in this subtree.
    fn weight(&self) -> (usize, usize) {
        match &self.kind {
            NodeKind::Null => (1, 0),
            NodeKind::Scalar { text, .. } => (1, text.len()),
            NodeKind::Seq(v) => v.iter().map(Node::weight).fold((1, 0), add),
            NodeKind::Map(m) => m
                .iter()
                .flat_map(|(k, v)| [k.weight(), v.weight()])
                .fold((1, 0), add),
        }
    }
}

/// Which file a tree is read from, named in the tree's own messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A scenario file.
    Scenario,
    /// An identity (canary) file.
    Identity,
}

impl FileKind {
    /// `a scenario file`
    fn a_file(self) -> &'static str {
        match self {
            FileKind::Scenario => "a scenario file",
            FileKind::Identity => "an identity file",
        }
    }

    /// `scenarios`
    fn plural(self) -> &'static str {
        match self {
            FileKind::Scenario => "scenarios",
            FileKind::Identity => "identity files",
        }
    }
}

/// What kind of problem a [`TreeError`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TreeErrorKind {
    /// Not valid YAML, or YAML beyond what the files accept (tags, several documents, too deep,
    /// too large).
    Syntax,
    /// A key that is not a scalar; `map` is where its mapping starts.
    Key { map: Pos },
    /// A key already set in the same mapping, first on line `first_line`.
    Duplicate { key: String, first_line: usize },
    /// A bound of the tree: alias expansion past [`MAX_NODES`] or [`MAX_BYTES`].
    Limit,
}

/// A problem found while building the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeError {
    pub pos: Pos,
    pub kind: TreeErrorKind,
    pub message: String,
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

impl TreeError {
    fn syntax(pos: Pos, message: String) -> TreeError {
        TreeError {
            pos,
            kind: TreeErrorKind::Syntax,
            message,
        }
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
    },
}

/// Parse one YAML document of a `file` into a tree; `Ok(None)` for an empty document (only
/// comments).
pub(crate) fn parse(text: &str, file: FileKind) -> Result<Option<Node>, TreeError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    let mut bytes = 0usize;
    while let Some(next) = parser.next_event() {
        let (ev, span) = next.map_err(|e| {
            TreeError::syntax(
                Pos {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                    index: e.marker().index(),
                },
                e.info().to_string(),
            )
        })?;
        let pos = Pos::from_span(&span);
        let node = match ev {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(TreeError::syntax(
                        pos,
                        format!("{} holds one YAML document; remove the second `---` and what follows, or move it to its own file", file.a_file()),
                    ));
                }
                continue;
            }
            Event::Alias(id) => {
                let Some(n) = anchors.get(&id) else {
                    return Err(TreeError::syntax(pos, "unknown alias".to_string()));
                };
                let (c, b) = n.weight();
                nodes = nodes.saturating_add(c);
                bytes = bytes.saturating_add(b);
                if nodes > MAX_NODES || bytes > MAX_BYTES {
                    return Err(TreeError {
                        pos,
                        kind: TreeErrorKind::Limit,
                        message: format!("the document expands to more than {MAX_NODES} nodes or {MAX_BYTES} bytes of text (aliases are copied)"),
                    });
                }
                let mut n = n.clone();
                n.pos = pos;
                n.end = span.end.index();
                n
            }
            Event::Scalar(value, style, anchor, tag) => {
                let mut plain = style == ScalarStyle::Plain;
                if let Some(tag) = tag {
                    if tag.is_yaml_core_schema() && tag.suffix == "str" {
                        plain = false;
                    } else {
                        return Err(TreeError::syntax(
                            pos,
                            format!("YAML tag `{tag}` is not used in {}; only `!!str` is accepted (to force a string)", file.plural()),
                        ));
                    }
                }
                bytes = bytes.saturating_add(value.len());
                let kind = if plain && matches!(&*value, "" | "~" | "null" | "Null" | "NULL") {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar {
                        text: value.into_owned(),
                        plain,
                    }
                };
                nodes = nodes.saturating_add(1);
                let n = Node {
                    kind,
                    pos,
                    end: span.end.index(),
                };
                if anchor > 0 {
                    anchors.insert(anchor, n.clone());
                }
                n
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if let Some(tag) = tag {
                    return Err(TreeError::syntax(
                        pos,
                        format!("YAML tag `{tag}` is not used in {}", file.plural()),
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(TreeError::syntax(
                        pos,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                nodes = nodes.saturating_add(1);
                let is_seq = matches!(ev, Event::SequenceStart(..));
                stack.push(if is_seq {
                    Frame::Seq {
                        items: Vec::new(),
                        pos,
                        anchor,
                    }
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        pos,
                        anchor,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (n, anchor) = match stack.pop() {
                    Some(Frame::Seq { items, pos, anchor }) => (
                        Node {
                            kind: NodeKind::Seq(items),
                            pos,
                            end: pos.index,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        entries,
                        pos,
                        anchor,
                        ..
                    }) => (
                        Node {
                            kind: NodeKind::Map(entries),
                            pos,
                            end: pos.index,
                        },
                        anchor,
                    ),
                    None => return Err(TreeError::syntax(pos, "unbalanced YAML".to_string())),
                };
                if anchor > 0 {
                    anchors.insert(anchor, n.clone());
                }
                n
            }
        };
        if nodes > MAX_NODES || bytes > MAX_BYTES {
            return Err(TreeError {
                pos,
                kind: TreeErrorKind::Limit,
                message: format!("the document expands to more than {MAX_NODES} nodes or {MAX_BYTES} bytes of text (aliases are copied)"),
            });
        }
        push(&mut stack, &mut root, node)?;
    }
    Ok(root)
}

fn push(stack: &mut [Frame], root: &mut Option<Node>, node: Node) -> Result<(), TreeError> {
    match stack.last_mut() {
        None => {
            *root = Some(node);
            Ok(())
        }
        Some(Frame::Seq { items, .. }) => {
            items.push(node);
            Ok(())
        }
        Some(Frame::Map {
            entries, key, pos, ..
        }) => {
            if let Some(k) = key.take() {
                entries.push((k, node));
                return Ok(());
            }
            let Some(text) = node.scalar() else {
                return Err(TreeError {
                    pos: node.pos,
                    kind: TreeErrorKind::Key { map: *pos },
                    message: format!("mapping keys must be plain names, not {}", node.describe()),
                });
            };
            if let Some((first, _)) = entries.iter().find(|(k, _)| k.scalar() == Some(text)) {
                return Err(TreeError {
                    pos: node.pos,
                    kind: TreeErrorKind::Duplicate {
                        key: text.to_string(),
                        first_line: first.pos.line,
                    },
                    message: format!(
                        "key `{text}` is already set on line {}; remove one of them",
                        first.pos.line
                    ),
                });
            }
            *key = Some(node);
            Ok(())
        }
    }
}

/// The position of character `offset` (0-based, in characters) of a scalar's *value*, found by
/// mapping the `nth` occurrence of `needle` in the value onto the `nth` occurrence in the node's
/// source text. When the source and the value disagree on how often `needle` occurs (escapes,
/// folding), the node's own position is returned.
pub(crate) fn pos_of_nth(text: &str, node: &Node, value: &str, needle: &str, nth: usize) -> Pos {
    let in_value = value.matches(needle).count();
    let raw: String = text
        .chars()
        .skip(node.pos.index)
        .take(node.end.saturating_sub(node.pos.index))
        .collect();
    if raw.matches(needle).count() != in_value || nth >= in_value {
        return node.pos;
    }
    let Some((byte_at, _)) = raw.match_indices(needle).nth(nth) else {
        return node.pos;
    };
    let mut p = node.pos;
    for c in raw[..byte_at].chars() {
        p.index += 1;
        if c == '\n' {
            p.line += 1;
            p.col = 1;
        } else {
            p.col += 1;
        }
    }
    p
}

/// Where a mapping's `value` is shown: its own position, or for an empty value (`key:`, which
/// the parser places on the colon) the column just after the colon.
pub(crate) fn value_pos(text: &str, value: &Node) -> Pos {
    if value.kind != NodeKind::Null || value.end != value.pos.index {
        return value.pos;
    }
    let mut p = value.pos;
    for c in text.chars().skip(value.pos.index) {
        match c {
            ' ' | '\t' => {}
            ':' => {
                p.col += 1;
                p.index += 1;
                return p;
            }
            _ => return value.pos,
        }
        p.col += 1;
        p.index += 1;
    }
    value.pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Option<Node>, TreeError> {
        super::parse(t, FileKind::Scenario)
    }

    fn tree(t: &str) -> Node {
        parse(t).unwrap().unwrap()
    }

    fn map(n: &Node) -> &[(Node, Node)] {
        match &n.kind {
            NodeKind::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_of_keys_and_values() {
        let n = tree("name: x\ntarget:\n  kind: qemu\n  memory: '256M'\n");
        let m = map(&n);
        assert_eq!((m[1].0.pos.line, m[1].0.pos.col), (2, 1));
        let t = map(&m[1].1);
        assert_eq!((t[1].1.pos.line, t[1].1.pos.col), (4, 11));
        assert_eq!(t[1].1.scalar(), Some("256M"));
        assert!(!t[1].1.is_plain());
        assert!(t[0].1.is_plain());
    }

    #[test]
    fn nulls_and_source_text() {
        let n = tree("a:\nb: ~\nc: 0123\nd: '~'\ne: !!str 12\n");
        let m = map(&n);
        assert_eq!(m[0].1.kind, NodeKind::Null);
        assert_eq!(m[1].1.kind, NodeKind::Null);
        assert_eq!(m[2].1.scalar(), Some("0123"));
        assert_eq!(m[3].1.scalar(), Some("~"));
        assert!(!m[4].1.is_plain());
        assert_eq!(parse("# only a comment\n").unwrap(), None);
        assert_eq!(parse("").unwrap(), None);
    }

    #[test]
    fn duplicate_keys_are_reported_at_the_second() {
        let e = parse("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert_eq!(
            e.kind,
            TreeErrorKind::Duplicate {
                key: "c".into(),
                first_line: 3
            }
        );
        assert_eq!((e.pos.line, e.pos.col), (4, 3));
        assert!(e.message.contains("line 3"), "{}", e.message);
        let e = parse("{a: 1, a: 2}").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (1, 8));
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse("a: [1, 2\n").unwrap_err();
        assert_eq!(e.kind, TreeErrorKind::Syntax);
        assert_eq!(e.pos.line, 2);
        let e = parse("a: b: c\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (1, 5));
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        let e = parse("a: !foo x\n").unwrap_err();
        assert!(e.message.contains("!foo"), "{}", e.message);
        let e = parse("? [a]\n: x\n").unwrap_err();
        assert!(e.message.contains("keys"), "{}", e.message);
        assert_eq!(e.pos.col, 3);
        assert!(matches!(e.kind, TreeErrorKind::Key { map } if map.col == 1));
        let e = super::parse("a: !foo x\n", FileKind::Identity).unwrap_err();
        assert!(e.message.contains("identity files"), "{}", e.message);
    }

    #[test]
    fn aliases_copy_and_are_bounded() {
        let n = tree("a: &x [1, 2]\nb: *x\n");
        let m = map(&n);
        assert_eq!(m[0].1.kind, m[1].1.kind);
        assert_eq!(m[1].1.pos.line, 2);
        // Each level doubles: 2^20 nodes.
        let mut t = String::from("l0: &l0 [x, x]\n");
        for i in 1..20 {
            t.push_str(&format!("l{i}: &l{i} [*l{}, *l{}]\n", i - 1, i - 1));
        }
        let e = parse(&t).unwrap_err();
        assert!(e.message.contains("nodes"), "{}", e.message);
        assert_eq!(e.kind, TreeErrorKind::Limit);
        // Few nodes, many bytes: a 64 KiB string aliased 100 times.
        let t = format!(
            "a: &a \"{}\"\nb: [{}]\n",
            "x".repeat(64 << 10),
            vec!["*a"; 100].join(", ")
        );
        let e = parse(&t).unwrap_err();
        assert_eq!(e.kind, TreeErrorKind::Limit);
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn depth_is_bounded() {
        let t = "[".repeat(200) + &"]".repeat(200);
        let e = parse(&t).unwrap_err();
        assert!(e.message.contains("nesting"), "{}", e.message);
    }

    #[test]
    fn empty_values_are_shown_after_the_colon() {
        let t = "a:\nbb :  # c\nc: ~\nd: [x, ]\n";
        let n = tree(t);
        let m = map(&n);
        let cols: Vec<(usize, usize)> = m
            .iter()
            .map(|(_, v)| value_pos(t, v))
            .map(|p| (p.line, p.col))
            .collect();
        assert_eq!(cols, [(1, 3), (2, 5), (3, 4), (4, 4)]);
    }

    #[test]
    fn nth_occurrence_positions() {
        let t = "c: \"x {{a}} y {{b}}\"\n";
        let n = tree(t);
        let v = &map(&n)[0].1;
        let p = pos_of_nth(t, v, v.scalar().unwrap(), "{{", 1);
        assert_eq!((p.line, p.col), (1, 15));
        // Block scalar on following lines.
        let t = "c: |\n  one\n  {{b}}\n";
        let n = tree(t);
        let v = &map(&n)[0].1;
        let p = pos_of_nth(t, v, v.scalar().unwrap(), "{{", 0);
        assert_eq!((p.line, p.col), (3, 3));
        // Disagreement (escape) falls back to the node.
        let t = "c: \"\\x7b{ {{b}}\"\n";
        let n = tree(t);
        let v = &map(&n)[0].1;
        let p = pos_of_nth(t, v, v.scalar().unwrap(), "{{", 0);
        assert_eq!((p.line, p.col), (1, 4));
    }
}
