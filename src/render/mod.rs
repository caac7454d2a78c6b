//! Everything people and CI read, rendered from the typed outcomes of [`crate::app`]: the terminal output of
//! every command, and the report files (JSON, JUnit, HTML). Rendering never decides a verdict or an exit
//! code; it only shows them.

pub mod bundle;
pub mod html;
pub mod junit;
pub mod progress;
pub mod reports;
pub mod summary;

use std::fmt::Write as _;

use crate::app::{AcceptOutcome, Batch, CheckOutcome, SnapshotStatus, VerifyOutcome};
use crate::runner::verify::{ClaimVerdict, ComparedFinding};
use crate::scenario::Scenario;

/// `telltale validate`: one line per valid scenario.
pub fn validated(list: &[Scenario]) -> String {
    let mut out = String::new();
    for s in list {
        let _ = writeln!(
            out,
            "ok  {} ({}: {} steps, {} policy rules, {} claims)",
            s.source_name,
            s.name,
            s.steps.len(),
            s.policy.forbid.len()
                + usize::from(s.policy.allow_destinations.is_some())
                + s.policy.max_upload_bytes.len(),
            s.claims.len()
        );
    }
    out
}

/// `telltale validate`: what each scenario would do on or read from the host beyond its own folder, one
/// line each under the scenario's name, so a reviewer reads it in one place (nothing when none does).
pub fn host_access(list: &[Scenario]) -> String {
    let mut out = String::new();
    for s in list.iter().filter(|s| !s.host_access().is_empty()) {
        let _ = writeln!(out, "\n{} reaches the host:", s.source_name);
        for h in s.host_access() {
            let _ = writeln!(
                out,
                "  {}:{}:{}  [{}] {}",
                s.source_name,
                h.line,
                h.column,
                h.kind.name(),
                h.what
            );
        }
    }
    out
}

/// Every run's summary (or why it has none), as `run` and `check` print them.
pub fn batch(batch: &Batch) -> String {
    let mut out = String::from("\n");
    for r in &batch.runs {
        match &r.outcome {
            Ok(o) => out.push_str(&crate::render::summary::render(&o.report, &r.dir)),
            Err(e) => {
                let _ = writeln!(out, "{}: ERROR  {e}", r.name);
            }
        }
        out.push('\n');
    }
    out
}

/// `telltale check`'s snapshot lines, after the runs' summaries.
pub fn check(outcome: &CheckOutcome) -> String {
    let mut out = String::new();
    for (name, s) in &outcome.snapshots {
        let _ = match s.status {
            SnapshotStatus::Unchanged => {
                writeln!(out, "{name}: snapshot unchanged ({})", s.path.display())
            }
            SnapshotStatus::New => writeln!(out, "{name}: SNAPSHOT MISSING  {}", s.diff),
            SnapshotStatus::Regression => writeln!(
                out,
                "{name}: SNAPSHOT REGRESSION  new privacy behaviour against {} (pending: .snap.new)\n{}",
                s.path.display(),
                s.diff
            ),
            SnapshotStatus::RemovedOnly => writeln!(
                out,
                "{name}: snapshot: less behaviour than accepted in {}{}\n{}",
                s.path.display(),
                if outcome.strict {
                    " (--strict: fails)"
                } else {
                    " (a note; --strict fails on it)"
                },
                s.diff
            ),
        };
    }
    if outcome.ci {
        out.push_str(
            "(CI is set: accepted snapshots were not touched; differences are in .snap.new files)\n",
        );
    }
    out
}

/// `telltale accept`.
pub fn accepted(outcome: &AcceptOutcome) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(dir) = &outcome.nothing_pending_in {
        let _ = writeln!(out, "no pending snapshot in {}", dir.display());
    }
    for p in &outcome.accepted {
        let _ = writeln!(out, "accepted {}", p.display());
    }
    for (p, e) in &outcome.failed {
        let _ = writeln!(err, "error: {} : {e}", p.display());
    }
    (out, err)
}

/// `telltale verify`: each claim's verdict with its evidence, and where the bundle is.
pub fn verified(outcome: &VerifyOutcome, before: &str, after: &str) -> String {
    let mut out = String::from("\n");
    let _ = writeln!(
        out,
        "{}: before = {before}, after = {after}",
        outcome.scenario
    );
    for v in &outcome.verdicts {
        let _ = writeln!(out, "  {:<15} {}  \"{}\"", v.verdict.words(), v.id, v.says);
        let _ = writeln!(out, "                  {}", v.reason);
        for t in v.after.iter().take(5) {
            let _ = writeln!(out, "                  after:  {t}");
        }
        if v.verdict == ClaimVerdict::Fixed {
            for t in v.before.iter().take(3) {
                let _ = writeln!(out, "                  before: {t}");
            }
        }
    }
    let _ = writeln!(
        out,
        "  evidence: {} and {}",
        outcome.bundle.display(),
        outcome.archive.display()
    );
    out
}

/// `telltale compare`: the comparison of two runs as a text table.
pub fn compared(rows: &[ComparedFinding], a: &str, b: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "A = {a}\nB = {b}");
    if rows.is_empty() {
        let _ = writeln!(s, "no canary was uploaded in either run");
        return s;
    }
    let head = [
        "status",
        "canary",
        "encoding",
        "destination",
        "request",
        "phase",
        "A",
        "B",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.status.to_string(),
                r.canary.clone(),
                r.encoding.clone(),
                r.destination.clone(),
                r.request.clone(),
                r.phase.clone(),
                r.count_a.to_string(),
                r.count_b.to_string(),
            ]
        })
        .collect();
    let mut w = head.map(str::len);
    for c in &cells {
        for (i, x) in c.iter().enumerate() {
            w[i] = w[i].max(x.chars().count());
        }
    }
    let line = |c: &[String]| {
        c.iter()
            .enumerate()
            .map(|(i, x)| format!("{x:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(s, "{}", line(&head.map(str::to_string)));
    for c in &cells {
        let _ = writeln!(s, "{}", line(c));
    }
    let n = |st: &str| rows.iter().filter(|r| r.status == st).count();
    let _ = writeln!(
        s,
        "{} persisted, {} appeared, {} disappeared",
        n("PERSISTED"),
        n("APPEARED"),
        n("DISAPPEARED")
    );
    s
}
