//! [`ScenarioError`]: every way a scenario can be unusable, rendered hurl-style (`error: title`,
//! `--> file:line:col`, the offending line and a caret under the problem) by the shared
//! [`Diagnostic`], like identity-file errors.

use std::fmt;
use std::ops::Deref;

use crate::canary::IdentityError;
use crate::diag::Diagnostic;

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
    /// The scenario runs something on or reads something from the host beyond its own folder
    /// (`host:` steps, ssh `options`, `install`, paths outside its folder, a `netns` program that
    /// keeps root) and the command line did not allow it (`--allow-host`).
    HostAccess,
}

/// Error for an unusable scenario: a [`Diagnostic`] (file, line, column, the offending line,
/// title and message, all readable through `Deref`) with the class of the problem. `Display`
/// renders it with a caret (identity-file errors render the identity file's own location). Every
/// kind is bad input: the CLI maps it to exit code 2 ([`ScenarioError::exit_code`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_error(self))]
pub struct ScenarioError {
    /// Class of the problem.
    pub kind: ScenarioErrorKind,
    /// Where the problem is in the scenario (file name as given to
    /// [`crate::scenario::Scenario::parse`]) and what it is.
    pub diag: Diagnostic,
    /// The identity file's own error, when the problem is inside the identity file.
    pub identity: Option<Box<IdentityError>>,
    /// Further problems found in the same file (at most [`MAX_ERRORS_PER_FILE`] in all), in file order;
    /// shown after this one, so that one `validate` shows every typo. Boxed: the error stays small on the
    /// usual path of a single problem.
    #[allow(clippy::box_collection)]
    pub also: Option<Box<Vec<ScenarioError>>>,
}

/// Errors reported per scenario file, the first included.
pub const MAX_ERRORS_PER_FILE: usize = 20;

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
        ScenarioError {
            kind,
            diag: Diagnostic::at(source_name, text, line, column, title, message),
            identity: None,
            also: None,
        }
    }

    /// An error without a position.
    pub(crate) fn whole(
        kind: ScenarioErrorKind,
        source_name: &str,
        title: &'static str,
        message: String,
    ) -> ScenarioError {
        ScenarioError {
            kind,
            diag: Diagnostic::whole(source_name, title, message),
            identity: None,
            also: None,
        }
    }

    /// The first of `errors` carrying the others in [`ScenarioError::also`] (flattened, at most
    /// [`MAX_ERRORS_PER_FILE`] in all); `None` when there is none.
    pub(crate) fn combine(errors: Vec<ScenarioError>) -> Option<ScenarioError> {
        let mut all = Vec::new();
        for mut e in errors {
            let more = e.also.take().map(|b| *b).unwrap_or_default();
            all.push(e);
            all.extend(more);
        }
        all.truncate(MAX_ERRORS_PER_FILE);
        let mut all = all.into_iter();
        let mut first = all.next()?;
        let rest: Vec<ScenarioError> = all.collect();
        first.also = (!rest.is_empty()).then(|| Box::new(rest));
        Some(first)
    }

    /// The further problems of the file (see [`ScenarioError::also`]).
    pub fn more(&self) -> &[ScenarioError] {
        self.also.as_deref().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every problem in the file: this one and [`ScenarioError::also`].
    pub fn count(&self) -> usize {
        1 + self.more().len()
    }

    /// The process exit code for this error: always [`crate::ExitCode::BadInput`] (2).
    pub fn exit_code(&self) -> crate::ExitCode {
        crate::ExitCode::BadInput
    }
}

impl Deref for ScenarioError {
    type Target = Diagnostic;
    fn deref(&self) -> &Diagnostic {
        &self.diag
    }
}

fn render_error(e: &ScenarioError) -> String {
    let one = |e: &ScenarioError| match &e.identity {
        Some(id) => id.diag.render_with_origin("identity file", &e.diag),
        None => e.diag.to_string(),
    };
    let mut out = one(e);
    for more in e.more() {
        out.push_str("\n\n");
        out.push_str(&one(more));
    }
    if e.count() >= MAX_ERRORS_PER_FILE {
        out.push_str(&format!(
            "\n\n(the first {MAX_ERRORS_PER_FILE} errors of {} are shown; fix them and validate again)",
            e.diag.source_name
        ));
    }
    out
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
