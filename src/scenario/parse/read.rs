//! Reading typed values out of tree nodes for every section: a mapping's keys checked against
//! the allowed ones ([`Fields`]), strings, names, numbers, booleans, durations, lists, one-of
//! words, regexes, file paths and host globs, each with its own located error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Cx, R, TOP_WHAT};
use crate::diag::{hint, list};
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::values;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

/// The keys of one mapping, checked against the allowed ones.
pub(super) struct Fields<'n> {
    pub(super) entries: &'n [(Node, Node)],
    /// Where "missing key" errors point: the mapping's own key, or the mapping.
    pub(super) at: Pos,
    /// What the mapping is, for messages (`a claim`, `` `network` ``).
    pub(super) what: &'static str,
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(_, v)| v)
    }

    pub(super) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(k, _)| k.pos)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = (&'n str, Pos)> {
        self.entries
            .iter()
            .map(|(k, _)| (k.scalar().unwrap_or(""), k.pos))
    }
}

impl Cx<'_> {
    /// The mapping in `node` with its keys checked; `at` is where a missing key is reported.
    pub(super) fn fields<'n>(
        &self,
        node: &'n Node,
        at: Pos,
        what: &'static str,
        allowed: &[&str],
    ) -> R<Fields<'n>> {
        let entries: &'n [(Node, Node)] = match &node.kind {
            NodeKind::Map(m) => m,
            NodeKind::Null => &[],
            _ => {
                return Err(self.err(
                    K::WrongType,
                    node.pos,
                    "expected a mapping",
                    format!(
                        "{what} must be a mapping of {}, not {}",
                        list(allowed),
                        node.describe()
                    ),
                ))
            }
        };
        let f = Fields { entries, at, what };
        for (k, pos) in f.keys() {
            if !allowed.contains(&k) {
                return Err(self.err(
                    K::UnknownKey,
                    pos,
                    "unknown key",
                    format!("{what} has no key `{k}`{}", hint(k, allowed)),
                ));
            }
        }
        Ok(f)
    }

    pub(super) fn req<'n>(&self, f: &Fields<'n>, key: &str, example: &str) -> R<&'n Node> {
        f.get(key).ok_or_else(|| {
            if f.what == TOP_WHAT {
                return ScenarioError::whole(
                    K::MissingKey,
                    self.source,
                    "missing key",
                    format!("the scenario needs `{key}`: add {example}"),
                );
            }
            self.err(
                K::MissingKey,
                f.at,
                "missing key",
                format!("{} needs `{key}`: add {example}", f.what),
            )
        })
    }

    pub(super) fn string(&self, n: &Node, key: &str) -> R<String> {
        match &n.kind {
            NodeKind::Scalar { text, .. } => Ok(text.clone()),
            NodeKind::Null => Err(self.err(
                K::WrongType,
                n.pos,
                "missing value",
                format!("`{key}` needs a value"),
            )),
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected a string",
                format!("`{key}` must be a string, not {}", n.describe()),
            )),
        }
    }

    pub(super) fn nonempty(&self, n: &Node, key: &str) -> R<String> {
        let s = self.string(n, key)?;
        if s.trim().is_empty() {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "empty value",
                format!("`{key}` cannot be empty"),
            ));
        }
        Ok(s)
    }

    /// A name used in file names and reports: letters, digits, `.`, `_`, `-`.
    pub(super) fn label(&self, n: &Node, key: &str) -> R<String> {
        let s = self.nonempty(n, key)?;
        if s == "." || s == ".." {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "invalid name",
                format!("`{key}` names a folder of the run; `{s}` is not a name"),
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "invalid name",
                format!(
                    "`{key}` may hold letters, digits, `.`, `_` and `-` only; `{c}` is not allowed"
                ),
            ));
        }
        Ok(s)
    }

    pub(super) fn uint(&self, n: &Node, key: &str, min: u64, max: u64) -> R<u64> {
        let range = || format!("`{key}` must be a whole number from {min} to {max}");
        let Some(text) = n.scalar() else {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a number",
                format!("{}, not {}", range(), n.describe()),
            ));
        };
        let t = text.trim();
        let body = t.strip_prefix(['-', '+']).unwrap_or(t);
        let numeric = !body.is_empty() && body.chars().all(|c| c.is_ascii_digit());
        if !n.is_plain() || !numeric {
            return Err(self.err(
                K::WrongType,
                n.pos,
                "expected a number",
                format!("{}, not {}", range(), n.describe()),
            ));
        }
        match t.trim_start_matches('+').parse::<i128>() {
            Ok(v) if v >= i128::from(min) && v <= i128::from(max) => Ok(v as u64),
            _ => Err(self.err(
                K::InvalidValue,
                n.pos,
                "number out of range",
                format!("{}, not `{t}`", range()),
            )),
        }
    }

    pub(super) fn int(&self, n: &Node, key: &str) -> R<i32> {
        let err = || {
            self.err(
                K::WrongType,
                n.pos,
                "expected a number",
                format!("`{key}` must be a whole number, not {}", n.describe()),
            )
        };
        let t = n.scalar().ok_or_else(err)?.trim();
        if !n.is_plain() {
            return Err(err());
        }
        t.parse::<i32>().map_err(|_| err())
    }

    pub(super) fn boolean(&self, n: &Node, key: &str) -> R<bool> {
        match (n.is_plain(), n.scalar()) {
            (true, Some("true" | "True" | "TRUE")) => Ok(true),
            (true, Some("false" | "False" | "FALSE")) => Ok(false),
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected true or false",
                format!("`{key}` must be `true` or `false`, not {}", n.describe()),
            )),
        }
    }

    pub(super) fn duration(&self, n: &Node, key: &str) -> R<Duration> {
        let Some(text) = n.scalar() else {
            return Err(self.err(
                K::InvalidDuration,
                n.pos,
                "invalid duration",
                format!(
                    "`{key}` must be a duration such as `30s`, `500ms` or `2m`, not {}",
                    n.describe()
                ),
            ));
        };
        values::parse_duration(text)
            .map_err(|m| self.err(K::InvalidDuration, n.pos, "invalid duration", m))
    }

    pub(super) fn seq<'n>(&self, n: &'n Node, key: &str) -> R<&'n [Node]> {
        match &n.kind {
            NodeKind::Seq(items) => Ok(items),
            _ => Err(self.err(
                K::WrongType,
                n.pos,
                "expected a list",
                format!(
                    "`{key}` must be a list (`[a, b]` or `- a` lines), not {}",
                    n.describe()
                ),
            )),
        }
    }

    pub(super) fn one_of<'c>(&self, n: &Node, key: &str, names: &[&'c str]) -> R<&'c str> {
        let s = self.string(n, key)?;
        names.iter().copied().find(|c| *c == s).ok_or_else(|| {
            self.err(
                K::InvalidValue,
                n.pos,
                "invalid value",
                format!("`{key}` cannot be `{s}`{}", hint(&s, names)),
            )
        })
    }

    pub(super) fn pattern(&self, n: &Node, key: &str) -> R<Pattern> {
        let s = self.string(n, key)?;
        Pattern::new(&s).map_err(|m| {
            self.err(
                K::InvalidRegex,
                n.pos,
                "invalid regex",
                format!("`{key}` is not a valid regex: {m}"),
            )
        })
    }

    pub(super) fn path(&mut self, n: &Node, key: &str, what: &'static str) -> R<PathBuf> {
        let s = self.nonempty(n, key)?;
        let p = Path::new(&s);
        if super::escapes(p) {
            self.host_access(
                HostAccessKind::Files,
                n.pos,
                format!("`{key}` reads the host file {s}, outside the scenario's folder"),
            );
        }
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        };
        self.files.push(FileRef {
            what,
            path: path.clone(),
            pos: n.pos,
        });
        Ok(path)
    }

    pub(super) fn host_glob(&self, n: &Node, key: &str) -> R<Glob> {
        let s = self.string(n, key)?;
        values::check_host_glob(s.trim())
            .map_err(|m| self.err(K::InvalidValue, n.pos, "invalid host pattern", m))
    }

    pub(super) fn host_globs(&self, n: &Node, key: &str) -> R<Vec<Glob>> {
        self.seq(n, key)?
            .iter()
            .map(|i| self.host_glob(i, key))
            .collect()
    }
}
