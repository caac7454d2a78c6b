//! The report files `run` and `check` write for CI and people: JUnit XML, one self-contained HTML page,
//! and the structured JSON of every run — all from the typed run records, never re-read from disk.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{html, junit};
use crate::app::{SnapshotOutcome, SnapshotStatus};
use crate::error::Error;
use crate::record::RunReport;

/// Which report files to write.
#[derive(Debug, Clone, Default)]
pub struct ReportFiles {
    /// JUnit XML.
    pub junit: Option<PathBuf>,
    /// The structured result as JSON.
    pub json: Option<PathBuf>,
    /// The HTML page.
    pub html: Option<PathBuf>,
}

/// One run as the report files see it.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The run's name in the batch.
    pub scenario: &'a str,
    /// Its artifacts folder.
    pub artifacts: &'a Path,
    /// The snapshot gate's result (`check` only).
    pub snapshot: Option<&'a SnapshotOutcome>,
    /// The run's record (what `report.json` holds).
    pub report: &'a RunReport,
}

/// The snapshot gate's result in words, as the HTML page shows it for every run `check` gated.
pub fn gate_words(s: &SnapshotOutcome) -> String {
    let verdict = if s.fails { "FAILS" } else { "PASSES" };
    let path = s.path.display();
    match s.status {
        SnapshotStatus::Unchanged => {
            format!("{verdict}: the same privacy behaviour as the accepted snapshot {path}")
        }
        SnapshotStatus::Regression => {
            format!("{verdict}: new privacy behaviour against {path} (pending: {path}.new)")
        }
        SnapshotStatus::RemovedOnly => format!(
            "{verdict}: less behaviour than accepted in {path}{}",
            if s.fails {
                " (--strict)"
            } else {
                " (a note; --strict fails on it)"
            }
        ),
        SnapshotStatus::New => {
            format!("{verdict}: no accepted snapshot {path} yet (pending: {path}.new)")
        }
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the requested report files.
pub fn write(files: &ReportFiles, entries: &[Entry<'_>]) -> Result<(), Error> {
    if let Some(p) = &files.junit {
        let runs: Vec<junit::JunitRun> = entries
            .iter()
            .map(|e| junit::JunitRun {
                run: e.report,
                snapshot: e.snapshot.map(|s| (s.fails, s.diff.clone())),
            })
            .collect();
        let xml = junit::junit(&runs).map_err(|e| Error::encode("the JUnit report", e))?;
        write_file(p, &xml)?;
    }
    if let Some(p) = &files.html {
        let runs: Vec<html::HtmlRun> = entries
            .iter()
            .map(|e| html::HtmlRun {
                run: e.report,
                snapshot_diff: e.snapshot.map(|s| s.diff.clone()),
                snapshot_gate: e.snapshot.map(gate_words),
                title: e.scenario.to_string(),
            })
            .collect();
        write_file(p, &html::render(&runs))?;
    }
    if let Some(p) = &files.json {
        let text = serde_json::to_string_pretty(entries)
            .map_err(|e| Error::encode("the JSON report", e))?;
        write_file(p, &(text + "\n"))?;
    }
    Ok(())
}
