//! [`Diagnostic`]: one problem located in one input file, rendered hurl-style (`error: title`,
//! `--> file:line:col`, the offending line and a caret under the problem), plus the "did you
//! mean" suggestions ([`did_you_mean`], [`hint`]) that messages end with.
//!
//! Scenario errors ([`crate::scenario::ScenarioError`]) and identity-file errors
//! ([`crate::canary::IdentityError`]) are this type with their own kind of problem. This module
//! depends on nothing else in the crate.

use std::fmt::{self, Write};

/// A problem located in an input file. `Display` renders it with the file, line, column, the
/// offending line and a caret, or (without a position) with the file name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Display name of the file the problem is in.
    pub source_name: String,
    /// 1-based line of the problem; 0 when there is no position.
    pub line: usize,
    /// 1-based column (in characters); 0 when there is no position.
    pub column: usize,
    /// The text of the offending line (empty when there is no position).
    pub line_text: String,
    /// Short title, e.g. `unknown key`.
    pub title: &'static str,
    /// What is wrong and what to do about it (ends with "did you mean `x`?" where one fits).
    pub message: String,
}

impl Diagnostic {
    /// A problem in `text` (the whole source of `source_name`) at 1-based `line` and `column`;
    /// `line` 0 means no position.
    pub fn at(
        source_name: &str,
        text: &str,
        line: usize,
        column: usize,
        title: &'static str,
        message: String,
    ) -> Diagnostic {
        let line_text = if line == 0 {
            String::new()
        } else {
            text.lines()
                .nth(line - 1)
                .unwrap_or("")
                .trim_end_matches('\r')
                .to_string()
        };
        Diagnostic {
            source_name: source_name.to_string(),
            line,
            column,
            line_text,
            title,
            message,
        }
    }

    /// A problem with the file as a whole (no position).
    pub fn whole(source_name: &str, title: &'static str, message: String) -> Diagnostic {
        Diagnostic::at(source_name, "", 0, 0, title, message)
    }

    /// This diagnostic followed by `= note: {what} of FILE:LINE:COL`, naming the place in
    /// another file (`origin`) that led here; the note is left out when `origin` has no position.
    pub fn render_with_origin(&self, what: &str, origin: &Diagnostic) -> String {
        let mut s = self.to_string();
        if origin.line > 0 {
            let _ = write!(
                s,
                "\n   = note: {what} of {}:{}:{}",
                origin.source_name, origin.line, origin.column
            );
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.title)?;
        if self.line == 0 {
            writeln!(f, "  --> {}", self.source_name)?;
            return write!(f, "   = {}", self.message);
        }
        let w = self.line.to_string().len();
        let pad = " ".repeat(w + 1);
        let bar = " ".repeat(w + 2);
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            self.source_name,
            self.line,
            self.column.max(1)
        )?;
        writeln!(f, "{bar}|")?;
        writeln!(f, " {:>w$} | {}", self.line, self.line_text)?;
        let caret_pad = " ".repeat(self.column.saturating_sub(1));
        write!(f, "{bar}| {caret_pad}^ {}", self.message)
    }
}

/// The candidate closest to `word` by edit distance (Damerau-Levenshtein, ASCII case ignored), if
/// it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = w.chars().count().div_ceil(3).clamp(1, 3);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = strsim::damerau_levenshtein(&w, &c.to_ascii_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `"; did you mean `x`?"` or, without a close candidate, `"; expected one of `a`, `b`"`.
pub fn hint(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => format!("; expected one of {}", list(candidates)),
    }
}

/// `` `a`, `b`, `c` ``
pub fn list(items: &[&str]) -> String {
    let mut s = String::new();
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('`');
        s.push_str(it);
        s.push('`');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_or_absent() {
        let keys = ["imei", "phone", "email", "contacts"];
        assert_eq!(did_you_mean("imie", keys), Some("imei"));
        assert_eq!(did_you_mean("IMEI", keys), Some("imei"));
        assert_eq!(did_you_mean("contcts", keys), Some("contacts"));
        assert_eq!(did_you_mean("serial", keys), None);
        assert_eq!(
            did_you_mean("tiemout", ["timeout", "name"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("x", ["name"]), None);
    }

    #[test]
    fn hint_lists_candidates_without_a_match() {
        assert_eq!(hint("zzz", &["a", "b"]), "; expected one of `a`, `b`");
        assert_eq!(hint("idel", &["idle", "shell"]), "; did you mean `idle`?");
    }

    #[test]
    fn renders_with_and_without_a_position() {
        let d = Diagnostic::at(
            "s.yaml",
            "steps:\r\n  - idle: soon\r\n",
            2,
            11,
            "invalid duration",
            "nope".into(),
        );
        assert_eq!(d.line_text, "  - idle: soon");
        assert_eq!(
            d.to_string(),
            "error: invalid duration\n  --> s.yaml:2:11\n   |\n 2 |   - idle: soon\n   |           ^ nope"
        );
        let w = Diagnostic::whole("s.yaml", "t", "m".into());
        assert_eq!(w.to_string(), "error: t\n  --> s.yaml\n   = m");
        assert_eq!(
            w.render_with_origin("x", &d),
            format!("{w}\n   = note: x of s.yaml:2:11")
        );
        assert_eq!(d.render_with_origin("x", &w), d.to_string());
    }
}
