//! The application layer: every command of `telltale` as a library function that returns a typed outcome.
//!
//! This module owns what a command *does* — which scenarios to load, how runs are planned and carried out
//! side by side, how a run's snapshot is gated, how a release is swapped in for `verify` — and nothing about
//! how the result is shown (that is [`crate::render`]) or how arguments are spelled (that is the binary).
//! Every outcome knows its exit code through [`exit`], the one place exit codes are decided.
//!
//! Tests call these functions directly; the binary is a thin shell over them.

pub mod batch;
pub mod bundle;
pub mod check;
pub mod exit;
pub mod keylog;
pub mod verify;
pub mod vnet;

pub use keylog::{keylog_inject, load_keylogs};

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::scenario::{HostAllow, Scenario};

pub use batch::{execute, plan, Batch, Planned, RunFailure, RunRequest, RunResult};
pub use check::{
    accept_command, check, gate_snapshot, CheckOutcome, SnapshotOutcome, SnapshotStatus,
};
pub use verify::{verify, VerifyOutcome};

/// Scenario files named on the command line: files as given, folders expanded to their `*.yaml` / `*.yml`
/// files in name order.
pub fn collect_scenarios(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::Io {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the folder has no *.yaml scenario",
                    ),
                });
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Loads every scenario named; every invalid one is reported ([`Error::Scenarios`]), not only the first. A
/// scenario that needs host access `allow` does not grant is invalid ([`Scenario::check_host_access`]).
pub fn load_scenarios(paths: &[PathBuf], allow: HostAllow) -> Result<Vec<Scenario>, Error> {
    let files = collect_scenarios(paths)?;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for f in &files {
        match Scenario::load(f, allow) {
            Ok(s) => ok.push(s),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        for s in &ok {
            crate::runner::check_inputs(s)?;
        }
        Ok(ok)
    } else {
        Err(Error::Scenarios {
            errors,
            total: files.len(),
        })
    }
}

/// `telltale validate`: the scenarios, loaded and checked (host access included), or every error. Each
/// scenario's [`Scenario::host_access`] lists what it would do on the host.
pub fn validate(paths: &[PathBuf], allow: HostAllow) -> Result<Vec<Scenario>, Error> {
    load_scenarios(paths, allow)
}

/// The scenario files among `paths` (by their `.yaml`/`.yml` name; `verify`'s `--before`/`--after` may
/// also be images), loaded and checked against `allow`.
pub fn require_host_access(paths: &[&Path], allow: HostAllow) -> Result<(), Error> {
    for p in paths {
        if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            Scenario::load(p, allow)?;
        }
    }
    Ok(())
}

/// `telltale compare`: the canary uploads of two stored runs, side by side.
pub fn compare(a: &Path, b: &Path) -> Result<Vec<crate::runner::verify::ComparedFinding>, Error> {
    let (ra, rb) = (load_run(a)?, load_run(b)?);
    Ok(crate::runner::verify::compare(&ra.analysis, &rb.analysis))
}

/// A stored run's `report.json` (its folder, or the file itself).
pub fn load_run(path: &Path) -> Result<crate::record::StoredRun, Error> {
    crate::record::StoredRun::load(path).map_err(|detail| Error::NotAReport {
        path: path.to_path_buf(),
        detail,
    })
}

/// What `telltale accept` did.
#[derive(Debug, Default)]
pub struct AcceptOutcome {
    /// Snapshots accepted (their accepted paths).
    pub accepted: Vec<PathBuf>,
    /// Pending files that could not be accepted, with why.
    pub failed: Vec<(PathBuf, String)>,
    /// Set when nothing was pending: the folder looked in.
    pub nothing_pending_in: Option<PathBuf>,
}

/// `telltale accept`: pending snapshots (`.snap.new`) become accepted, all of them in `snapshots` or those of
/// the scenarios named.
pub fn accept(paths: &[PathBuf], snapshots: &Path) -> Result<AcceptOutcome, Error> {
    use crate::snapshot::{accept, pending, pending_path, snapshot_path};
    let targets: Vec<PathBuf> = if paths.is_empty() {
        pending(snapshots)
            .map_err(|e| Error::SnapshotFile {
                what: "the pending snapshots cannot be listed",
                source: Box::new(e),
            })?
            .into_iter()
            .map(|p| p.with_extension(""))
            .collect()
    } else {
        load_scenarios(paths, HostAllow::all())?
            .iter()
            .map(|s| snapshot_path(snapshots, &crate::record::ScenarioInfo::of(s)))
            .collect()
    };
    let mut out = AcceptOutcome::default();
    if targets.is_empty() {
        out.nothing_pending_in = Some(snapshots.to_path_buf());
        return Ok(out);
    }
    for t in targets {
        match accept(&t) {
            Ok(p) => out.accepted.push(p),
            Err(e) => out.failed.push((pending_path(&t), e.to_string())),
        }
    }
    Ok(out)
}

/// Whether this is a CI job (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
        .unwrap_or(false)
}

/// `telltale analyze`: a capture file analysed for the identity's canaries (`progress` gets the bytes read
/// so far now and then).
pub fn analyze(
    capture: &Path,
    identity: &crate::Identity,
    cfg: crate::Config,
    progress: impl FnMut(u64),
) -> Result<crate::Report, Error> {
    let matcher = std::sync::Arc::new(crate::Matcher::new(identity));
    crate::analyze_file(capture, matcher, cfg, progress)
}
