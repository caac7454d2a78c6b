//! The one place exit codes are decided: for the top-level [`Error`], for a run's verdict, for a claim's
//! verification, and how a batch combines them (the worst wins). The binary only calls these.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | pass / nothing found |
//! | 1 | a canary was found; a policy rule, claim or snapshot was violated; a claim is STILL LEAKING |
//! | 2 | bad input (the message names the file, line and column) |
//! | 3 | infrastructure failure, or telltale failed (a panic in any run included) |
//! | 4 | inconclusive |
//! | 130 | interrupted (Ctrl-C) |

use super::batch::{RunFailure, RunResult};
use crate::error::{Error, ExitCode};
use crate::runner::verify::ClaimVerdict;
use crate::runner::Verdict;

impl ExitCode {
    /// The worse of two exit codes (what a batch of runs ends with).
    pub fn worse(self, other: ExitCode) -> ExitCode {
        // A proven leak outranks what could not be shown: a batch with one FAIL and one INCONCLUSIVE run
        // is a failure (1), as a verify with one STILL LEAKING and one INCONCLUSIVE claim is.
        let rank = |c: ExitCode| match c {
            ExitCode::Clean => 0,
            ExitCode::Inconclusive => 1,
            ExitCode::Found => 2,
            ExitCode::Interrupted => 3,
            ExitCode::BadInput => 4,
            ExitCode::Internal => 5,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Io { .. }
            | Error::NotACapture { .. }
            | Error::NotAReport { .. }
            | Error::Identity(_)
            | Error::Scenario(_)
            | Error::Scenarios { .. }
            | Error::Usage(_) => ExitCode::BadInput,
            Error::Output(_)
            | Error::Infrastructure(_)
            | Error::Resource { .. }
            | Error::Write { .. }
            | Error::Encode { .. }
            | Error::Bug(_)
            | Error::SnapshotFile { .. }
            | Error::SnapshotDamaged { .. } => ExitCode::Internal,
        }
    }
}

/// A run's verdict as an exit code.
pub fn of_verdict(v: Verdict) -> ExitCode {
    match v {
        Verdict::Pass => ExitCode::Clean,
        Verdict::Fail => ExitCode::Found,
        Verdict::Inconclusive => ExitCode::Inconclusive,
        Verdict::Error => ExitCode::Internal,
        Verdict::Interrupted => ExitCode::Interrupted,
    }
}

/// One run of a batch: its verdict, or 3 when it has no report (130 when Ctrl-C came first).
pub fn of_run(r: &RunResult) -> ExitCode {
    match &r.outcome {
        Ok(o) => of_verdict(o.report.verdict),
        Err(RunFailure::NotStarted) => ExitCode::Interrupted,
        Err(RunFailure::Failed(_) | RunFailure::Panicked(_)) => ExitCode::Internal,
    }
}

/// A claim's verification as an exit code.
pub fn of_claim(v: ClaimVerdict) -> ExitCode {
    match v {
        ClaimVerdict::Fixed => ExitCode::Clean,
        ClaimVerdict::StillLeaking => ExitCode::Found,
        ClaimVerdict::NotReproduced | ClaimVerdict::Inconclusive => ExitCode::Inconclusive,
    }
}

/// `analyze`: 1 when a canary was found.
pub fn of_findings(found: bool) -> ExitCode {
    if found {
        ExitCode::Found
    } else {
        ExitCode::Clean
    }
}

/// `verify-bundle`: 0 the bundle holds, 1 it does not (tampered, or the verdicts differ). Bad input (not a
/// bundle, an unreadable key) is an [`Error`], 2.
pub fn of_bundle(holds: bool) -> ExitCode {
    if holds {
        ExitCode::Clean
    } else {
        ExitCode::Found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_code_wins_whatever_the_order() {
        let all = [
            ExitCode::Clean,
            ExitCode::Inconclusive,
            ExitCode::Found,
            ExitCode::Interrupted,
            ExitCode::BadInput,
            ExitCode::Internal,
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                assert_eq!(a.worse(*b), all[i.max(j)]);
            }
        }
    }

    #[test]
    fn a_panicked_run_is_an_infrastructure_failure() {
        let r = RunResult {
            name: "x".into(),
            dir: "x".into(),
            outcome: Err(RunFailure::Panicked("boom".into())),
        };
        assert_eq!(of_run(&r), ExitCode::Internal);
    }

    #[test]
    fn telltale_s_own_failures_are_3_and_say_what_was_being_done() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let cases = [
            (
                Error::resource("start the async runtime")(denied()),
                "cannot start the async runtime: permission denied",
            ),
            (
                Error::write(std::path::Path::new("/b/verdicts.json"))(denied()),
                "cannot write /b/verdicts.json: permission denied",
            ),
            (
                Error::encode("the JSON report", json),
                "cannot encode the JSON report: expected value",
            ),
            (
                Error::Bug("verify planned two runs"),
                "internal error (a bug in telltale, please report it): verify planned two runs",
            ),
        ];
        for (e, words) in cases {
            assert_eq!(e.exit_code(), ExitCode::Internal, "{e}");
            assert!(e.to_string().starts_with(words), "{e}");
        }
    }
}
