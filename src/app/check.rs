//! `telltale check`, the CI gate: run the scenarios, then compare each run's privacy snapshot with the
//! accepted one. A differing or missing snapshot is written as `.snap.new`; accepted files are never
//! written here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::batch::{execute, plan, Batch, RunRequest};
use crate::error::{Error, ExitCode};
use crate::record::RunReport;
use crate::runner::Progress;
use crate::scenario::Scenario;

/// How a run's snapshot compares with the accepted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotStatus {
    /// The same privacy behaviour as accepted.
    Unchanged,
    /// New privacy behaviour (fails).
    Regression,
    /// Only things gone (a note; fails with `--strict`).
    RemovedOnly,
    /// No accepted snapshot yet (fails).
    New,
}

/// The snapshot gate's result for one run.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotOutcome {
    /// The accepted snapshot's path.
    pub path: PathBuf,
    /// How it compares.
    pub status: SnapshotStatus,
    /// Whether the gate fails on it.
    pub fails: bool,
    /// The difference for people (`+`/`-` lines), or what to do when there is no accepted snapshot.
    pub diff: String,
}

/// The command that accepts the pending snapshots of `dir` (`--snapshots DIR` unless it is the default).
pub fn accept_command(dir: &Path) -> String {
    if dir == Path::new("snapshots") {
        "telltale accept".to_string()
    } else {
        format!("telltale accept --snapshots {}", dir.display())
    }
}

/// Gates one run on its accepted snapshot in `dir`; writes `.snap.new` when they differ or none is accepted,
/// removes a stale `.snap.new` when they agree.
pub fn gate_snapshot(
    run: &RunReport,
    scenario_file: &str,
    dir: &Path,
    strict: bool,
) -> Result<SnapshotOutcome, Error> {
    use crate::snapshot::{compare, read_accepted, snapshot_path, write_pending, PrivacySnapshot};
    let snap = PrivacySnapshot::from_run(run);
    let path = snapshot_path(dir, &run.scenario);
    let text = snap.render(scenario_file);
    let file_err = |source: crate::snapshot::FileError| Error::SnapshotFile {
        what: "the pending snapshot cannot be written",
        source: Box::new(source),
    };
    let accepted = read_accepted(&path).map_err(|source| Error::SnapshotFile {
        what: "the accepted snapshot cannot be read",
        source: Box::new(source),
    })?;
    let Some(accepted) = accepted else {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let pending = write_pending(&path, &text).map_err(file_err)?;
        return Ok(SnapshotOutcome {
            path,
            status: SnapshotStatus::New,
            fails: true,
            diff: format!(
                "no accepted snapshot yet; the run's snapshot is in {}: review it, then `{}`",
                pending.display(),
                accept_command(dir)
            ),
        });
    };
    let diff = compare(&accepted.body, &snap).map_err(|source| Error::SnapshotDamaged {
        path: path.clone(),
        source: Box::new(source),
    })?;
    let pending = crate::snapshot::pending_path(&path);
    if diff.is_unchanged() {
        let _ = std::fs::remove_file(&pending);
        return Ok(SnapshotOutcome {
            path,
            status: SnapshotStatus::Unchanged,
            fails: false,
            diff: String::new(),
        });
    }
    write_pending(&path, &text).map_err(file_err)?;
    Ok(SnapshotOutcome {
        status: if diff.is_regression() {
            SnapshotStatus::Regression
        } else {
            SnapshotStatus::RemovedOnly
        },
        fails: diff.fails(strict),
        diff: diff.render(),
        path,
    })
}

/// What `telltale check` found.
#[derive(Debug)]
pub struct CheckOutcome {
    /// The runs.
    pub batch: Batch,
    /// The snapshot gate of every run that produced a report, by run name, in order.
    pub snapshots: Vec<(String, SnapshotOutcome)>,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// Whether this was a CI job (accepted snapshots are never written anyway; the output says so).
    pub ci: bool,
}

impl CheckOutcome {
    /// The gate's exit code: the batch's, and 1 for any failing snapshot.
    pub fn exit_code(&self) -> ExitCode {
        let snap = if self.snapshots.iter().any(|(_, s)| s.fails) {
            ExitCode::Found
        } else {
            ExitCode::Clean
        };
        self.batch.exit_code().worse(snap)
    }

    /// The snapshot outcome of the run named `name`.
    pub fn snapshot_of(&self, name: &str) -> Option<&SnapshotOutcome> {
        self.snapshots
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }
}

/// `telltale check`: runs the scenarios and gates each on its accepted snapshot in `snapshots`.
pub fn check(
    scenarios: Vec<Scenario>,
    req: &RunRequest,
    snapshots: &Path,
    strict: bool,
    progress: Arc<dyn Progress>,
) -> Result<CheckOutcome, Error> {
    let files: std::collections::HashMap<String, String> = scenarios
        .iter()
        .map(|s| (s.name.clone(), s.source_name.clone()))
        .collect();
    let batch = execute(plan(scenarios, &req.out), req, progress)?;
    let mut gated = Vec::new();
    for (r, o) in batch.completed() {
        let file = files
            .get(&o.report.scenario.name)
            .cloned()
            .unwrap_or_default();
        gated.push((
            r.name.clone(),
            gate_snapshot(&o.report, &file, snapshots, strict)?,
        ));
    }
    Ok(CheckOutcome {
        batch,
        snapshots: gated,
        strict,
        ci: super::in_ci(),
    })
}
