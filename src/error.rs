//! Typed errors of the library and the exit codes they map to.
//!
//! Exit codes are part of telltale's interface (scripts and CI read them):
//! `0` analysed, nothing found; `1` a canary (or, later, a policy violation) was found;
//! `2` bad input (not a capture, unreadable file, bad identity file); `3` internal / infrastructure failure.
//! The mapping from errors and outcomes to codes lives in one place: `crate::app::exit`.

use std::path::PathBuf;

/// Process exit codes, shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Analysed; no canary found.
    Clean = 0,
    /// A canary (privacy finding) was found.
    Found = 1,
    /// The input was bad: unreadable, not a capture, invalid identity file.
    BadInput = 2,
    /// telltale itself failed, or the infrastructure did (a target that does not boot, hangs or
    /// crashes).
    Internal = 3,
    /// The run could not show whether a claim holds (reserved for `verify`).
    Inconclusive = 4,
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells do).
    Interrupted = 130,
}

/// Errors raised by the library. Each maps to an [`ExitCode`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a pcap or pcapng capture at all.
    #[error("{path} is not a capture file: {detail}\n  telltale reads pcap and pcapng files, optionally gzip-compressed (.gz); convert others with `editcap -F pcap IN OUT`")]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The identity (canary) file is invalid.
    #[error("{0}")]
    Identity(#[from] crate::canary::IdentityError),
    /// A scenario file is invalid (or names files that do not exist); boxed, as it carries every error of
    /// the file.
    #[error("{0}")]
    Scenario(Box<crate::scenario::ScenarioError>),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[source] std::io::Error),
    /// A run report (`report.json`) that cannot be read.
    #[error("{path} is not a telltale run report: {detail}\n  give a run's artifacts folder (OUT/<scenario>/) or its report.json")]
    NotAReport {
        /// The file or folder.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// Some of the scenarios named are invalid: every error, and how many files were read.
    #[error("{}", render_scenarios(errors, *total))]
    Scenarios {
        /// Each invalid scenario's error.
        errors: Vec<crate::scenario::ScenarioError>,
        /// Scenario files read.
        total: usize,
    },
    /// The command's arguments do not fit together (the message says what to give instead).
    #[error("{0}")]
    Usage(String),
    /// A run could not be carried out (a target that could not be started, a network that could not be set
    /// up); the message names the scenario and the step.
    #[error("{0}")]
    Infrastructure(String),
    /// The operating system refused something telltale needs to work (threads for the async runtime,
    /// randomness, a private temporary folder, the network's shutdown).
    #[error("cannot {what}: {source}")]
    Resource {
        /// What telltale was doing, as a verb phrase (`start the async runtime`).
        what: &'static str,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file telltale writes (the evidence bundle's) could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Something telltale made could not be encoded (a JSON document, the JUnit XML, a key as PEM).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error (boxed: the encoders sit above `error` in the dependency table).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A broken invariant: a bug in telltale, never the input's fault.
    #[error("internal error (a bug in telltale, please report it): {0}")]
    Bug(&'static str),
    /// A snapshot file (the accepted one, or the pending one written next to it) cannot be read or written.
    #[error("{what}: {source}")]
    SnapshotFile {
        /// Which file, and what was being done.
        what: &'static str,
        /// The file's error (it names the path): a `snapshot::FileError`, boxed because `error` sits below
        /// `snapshot` in the dependency table.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The accepted snapshot is not a snapshot telltale can compare with.
    #[error("the accepted snapshot {} is damaged: {source}", path.display())]
    SnapshotDamaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (a `snapshot::SnapError`, boxed as above).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether the message is a rendered diagnostic that carries its own `error:` heading (scenario and
    /// identity errors), so it is printed as it is.
    pub fn is_diagnostic(&self) -> bool {
        matches!(
            self,
            Error::Identity(_) | Error::Scenario(_) | Error::Scenarios { .. }
        )
    }
}

impl Error {
    /// `source`, encoding `what`, as [`Error::Encode`].
    pub fn encode(
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Encode {
            what,
            source: Box::new(source),
        }
    }

    /// `source`, doing `what`, as [`Error::Resource`].
    pub fn resource(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Resource { what, source }
    }

    /// `source`, writing `path`, as [`Error::Write`].
    pub fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<crate::scenario::ScenarioError> for Error {
    fn from(e: crate::scenario::ScenarioError) -> Error {
        Error::Scenario(Box::new(e))
    }
}

fn render_scenarios(errors: &[crate::scenario::ScenarioError], total: usize) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&format!("{e}\n\n"));
    }
    out.push_str(&format!(
        "{} of {total} scenario(s) invalid; nothing was run",
        errors.len()
    ));
    out
}
