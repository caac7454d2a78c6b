//! [`ScenarioError`]: every way a scenario can be unusable, rendered hurl-style (`error: title`,
//! `--> file:line:col`, the offending line and a caret under the problem), like identity-file errors.

use std::fmt;

use crate::canary::IdentityError;

/// What class of problem a [`ScenarioError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScenarioErrorKind {
    /// The scenario file could not be read.
    Io,
    /// The text is not valid YAML (or is more than one document, or uses anchors/tags beyond what
    /// scenarios accept, or is too large or too deeply nested).
    Syntax,
    /// The same key appears twice in one mapping, or two claims share an id.
    Duplicate,
    /// A key that the scenario language does not know.
    UnknownKey,
    /// A required key is missing (or the file is empty).
    MissingKey,
    /// A value has the wrong shape: a string where a list is needed, a word where a number is needed.
    WrongType,
    /// A value has the right shape but is not acceptable: `cpus: -1`, `memory: lots`, `arch: mips`,
    /// a bad IP address, an empty glob.
    InvalidValue,
    /// A duration that cannot be read (`idle: soon`) or is zero.
    InvalidDuration,
    /// A step key that is not a step kind (`idel: 30s`).
    UnknownStepKind,
    /// A step with two kinds, or with none.
    StepKindCount,
    /// A malformed `{{...}}` template.
    InvalidTemplate,
    /// A template names a value that the identity does not define (`{{imie}}`).
    UnknownTemplateName,
    /// A policy, claim or `expect_no_upload` step names a canary that the identity does not define.
    UnknownCanary,
    /// A policy, claim or `expect_no_upload` step names a phase that no `phase` step declares.
    UnknownPhase,
    /// A regular expression that does not compile.
    InvalidRegex,
    /// A file named by the scenario (kernel, initrd, disk, identity file) does not exist or is not a file.
    MissingFile,
    /// The identity (inline values, generated values or the identity file) breaks the identity rules.
    Identity,
}

/// Error for an unusable scenario. `Display` renders it with the file, line, column, the offending
/// line and a caret (identity-file errors render the identity file's own location). Every kind is
/// bad input: the CLI maps it to exit code 2 ([`ScenarioError::exit_code`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_error(self))]
pub struct ScenarioError {
    /// Class of the problem.
    pub kind: ScenarioErrorKind,
    /// Name of the scenario file, as given to [`crate::scenario::Scenario::parse`].
    pub source_name: String,
    /// 1-based line of the problem in the scenario; 0 when there is no position.
    pub line: usize,
    /// 1-based column (in characters); 0 when there is no position.
    pub column: usize,
    /// The text of the offending line (empty when there is no position).
    pub line_text: String,
    /// Short title, e.g. `unknown key`.
    pub title: &'static str,
    /// What is wrong and what to do about it (ends with "did you mean `x`?" where one fits).
    pub message: String,
    /// The identity file's own error, when the problem is inside the identity file.
    pub identity: Option<Box<IdentityError>>,
}

impl ScenarioError {
    /// An error located in `text` (the scenario source) at 1-based `line`/`column`.
    pub(crate) fn at(
        kind: ScenarioErrorKind,
        source_name: &str,
        text: &str,
        line: usize,
        column: usize,
        title: &'static str,
        message: String,
    ) -> ScenarioError {
        let line_text = if line == 0 {
            String::new()
        } else {
            text.lines()
                .nth(line - 1)
                .unwrap_or("")
                .trim_end_matches('\r')
                .to_string()
        };
        ScenarioError {
            kind,
            source_name: source_name.to_string(),
            line,
            column,
            line_text,
            title,
            message,
            identity: None,
        }
    }

    /// An error without a position.
    pub(crate) fn whole(
        kind: ScenarioErrorKind,
        source_name: &str,
        title: &'static str,
        message: String,
    ) -> ScenarioError {
        ScenarioError::at(kind, source_name, "", 0, 0, title, message)
    }

    /// The process exit code for this error: always [`crate::ExitCode::BadInput`] (2).
    pub fn exit_code(&self) -> crate::ExitCode {
        crate::ExitCode::BadInput
    }
}

fn render_error(e: &ScenarioError) -> String {
    if let Some(id) = &e.identity {
        let mut s = id.to_string();
        if e.line > 0 {
            s.push_str(&format!(
                "\n   = note: identity file of {}:{}:{}",
                e.source_name, e.line, e.column
            ));
        }
        return s;
    }
    crate::canary::identity::render(
        e.title,
        &e.source_name,
        e.line,
        e.column,
        &e.line_text,
        &e.message,
    )
}

/// The candidate closest to `word` by edit distance (Damerau-Levenshtein, ASCII case ignored), if
/// it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
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
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    match did_you_mean(word, candidates.iter().copied()) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => format!("; expected one of {}", list(candidates)),
    }
}

/// `` `a`, `b`, `c` ``
pub(crate) fn list(items: &[&str]) -> String {
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

impl fmt::Display for ScenarioErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
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
    fn renders_like_identity_errors() {
        let e = ScenarioError::at(
            ScenarioErrorKind::InvalidDuration,
            "s.yaml",
            "steps:\n  - idle: soon\n",
            2,
            11,
            "invalid duration",
            "nope".into(),
        );
        assert_eq!(
            e.to_string(),
            "error: invalid duration\n  --> s.yaml:2:11\n   |\n 2 |   - idle: soon\n   |           ^ nope"
        );
        assert_eq!(e.exit_code(), crate::ExitCode::BadInput);
        let w = ScenarioError::whole(ScenarioErrorKind::Io, "s.yaml", "t", "m".into());
        assert_eq!(w.to_string(), "error: t\n  --> s.yaml\n   = m");
    }
}
