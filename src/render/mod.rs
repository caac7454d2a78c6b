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

use crate::app::{AcceptOutcome, Batch, CheckOutcome, RunFailure, SnapshotStatus, VerifyOutcome};
use crate::error::ExitCode;
use crate::record::Verdict;
use crate::runner::verify::{ClaimVerdict, ComparedFinding};
use crate::scenario::Scenario;

/// `telltale validate`: one line per valid scenario.
pub fn validated(list: &[Scenario]) -> String {
    let mut out = String::new();
    for s in list {
        let _ = writeln!(
            out,
            "ok  {} ({}: {}, {}, {})",
            s.source_name,
            s.name,
            plural(s.steps.len(), "step", "steps"),
            plural(
                s.policy.forbid.len()
                    + usize::from(s.policy.allow_destinations.is_some())
                    + s.policy.max_upload_bytes.len(),
                "policy rule",
                "policy rules"
            ),
            plural(s.claims.len(), "claim", "claims")
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

/// `n thing` or `n things`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The run's verdict as the summaries say it, or why it has none.
fn verdict_word(outcome: &Result<crate::runner::RunOutcome, RunFailure>) -> &'static str {
    match outcome {
        Ok(o) => match o.report.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Error => "ERROR",
            Verdict::Interrupted => "INTERRUPTED",
        },
        Err(RunFailure::NotStarted) => "NOT STARTED",
        Err(RunFailure::Failed(_) | RunFailure::Panicked(_)) => "ERROR",
    }
}

/// `label (a, b)` groups in first-seen order: `2 FAIL (v1, v2-fix), 1 PASS (v3)`.
fn grouped<'a>(
    items: impl Iterator<Item = (&'static str, &'a str)>,
) -> Vec<(&'static str, Vec<&'a str>)> {
    let mut groups: Vec<(&'static str, Vec<&'a str>)> = Vec::new();
    for (label, name) in items {
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, names)) => names.push(name),
            None => groups.push((label, vec![name])),
        }
    }
    groups
}

fn groups_text(groups: &[(&'static str, Vec<&str>)]) -> String {
    groups
        .iter()
        .map(|(label, names)| format!("{} {label} ({})", names.len(), names.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a batch ends with `code`, in words.
fn exit_reason(code: ExitCode, batch: &Batch, gated: bool, snapshot_failures: &[&str]) -> String {
    let named = |want: &[&str]| -> Vec<&str> {
        batch
            .runs
            .iter()
            .filter(|r| want.contains(&verdict_word(&r.outcome)))
            .map(|r| r.name.as_str())
            .collect()
    };
    match code {
        ExitCode::Clean => {
            if batch.runs.is_empty() {
                "nothing was run".to_string()
            } else if gated {
                "every policy rule and claim held, and the snapshot gate passed".to_string()
            } else {
                "every policy rule and claim held".to_string()
            }
        }
        ExitCode::Found => {
            let mut why = Vec::new();
            let failed = named(&["FAIL"]);
            if !failed.is_empty() {
                why.push(format!(
                    "{} broke a policy rule or claim",
                    failed.join(", ")
                ));
            }
            if !snapshot_failures.is_empty() {
                why.push(format!(
                    "the snapshot gate failed for {}",
                    snapshot_failures.join(", ")
                ));
            }
            why.join("; ")
        }
        ExitCode::Internal => format!(
            "{} could not be carried out (infrastructure failure; see its message above)",
            named(&["ERROR"]).join(", ")
        ),
        ExitCode::Interrupted => "interrupted (Ctrl-C)".to_string(),
        ExitCode::BadInput => "bad input".to_string(),
        ExitCode::Inconclusive => format!(
            "{} broke nothing, but could not read everything a rule or claim covers (see INCONCLUSIVE above)",
            named(&["INCONCLUSIVE"]).join(", ")
        ),
    }
}

/// `run`'s last line, over every run: how many, their verdicts, the exit code and why.
pub fn batch_total(batch: &Batch) -> String {
    let groups = grouped(
        batch
            .runs
            .iter()
            .map(|r| (verdict_word(&r.outcome), r.name.as_str())),
    );
    let code = batch.exit_code();
    format!(
        "{}: {} → exit {}: {}\n",
        plural(batch.runs.len(), "run", "runs"),
        groups_text(&groups),
        code as u8,
        exit_reason(code, batch, false, &[])
    )
}

/// `check`'s last line, over everything: runs and verdicts, the snapshot gate, the exit code and why.
pub fn check_total(outcome: &CheckOutcome) -> String {
    let runs = grouped(
        outcome
            .batch
            .runs
            .iter()
            .map(|r| (verdict_word(&r.outcome), r.name.as_str())),
    );
    let snaps = grouped(outcome.snapshots.iter().map(|(name, s)| {
        let label = match s.status {
            SnapshotStatus::Unchanged => "unchanged",
            SnapshotStatus::Regression => "REGRESSION",
            SnapshotStatus::RemovedOnly if s.fails => "LESS BEHAVIOUR (--strict)",
            SnapshotStatus::RemovedOnly => "less behaviour (a note)",
            SnapshotStatus::New => "MISSING",
        };
        (label, name.as_str())
    }));
    let snapshot_failures: Vec<&str> = outcome
        .snapshots
        .iter()
        .filter(|(_, s)| s.fails)
        .map(|(n, _)| n.as_str())
        .collect();
    let code = outcome.exit_code();
    format!(
        "{}: {}; snapshots: {} → exit {}: {}\n",
        plural(outcome.batch.runs.len(), "run", "runs"),
        groups_text(&runs),
        if snaps.is_empty() {
            "none gated (no run produced a report)".to_string()
        } else {
            groups_text(&snaps)
        },
        code as u8,
        exit_reason(code, &outcome.batch, true, &snapshot_failures)
    )
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
                "{name}: SNAPSHOT REGRESSION  new privacy behaviour against {} (pending: .snap.new; after review: `{}`)\n{}",
                s.path.display(),
                crate::app::accept_command(s.path.parent().unwrap_or(std::path::Path::new("."))),
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
        let _ = writeln!(
            out,
            "no pending snapshot in {} (after `telltale check --snapshots DIR`, run `telltale accept --snapshots DIR`)",
            dir.display()
        );
    }
    for p in &outcome.accepted {
        let _ = writeln!(out, "accepted {}", p.display());
    }
    // The error names its file already.
    for (_, e) in &outcome.failed {
        let _ = writeln!(err, "error: {e}");
    }
    if !outcome.failed.is_empty() {
        let _ = writeln!(
            err,
            "hint: pending snapshots are where `telltale check` wrote them; give `accept` the same `--snapshots DIR`"
        );
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

/// `compare`'s first part, canary by canary: is it still sent in B, to where, in which encodings — what
/// persisted is the canary, whatever request carries it.
fn canaries_compared(rows: &[ComparedFinding]) -> String {
    let mut canaries: Vec<&str> = Vec::new();
    for r in rows {
        if !canaries.contains(&r.canary.as_str()) {
            canaries.push(&r.canary);
        }
    }
    let where_ = |c: &str, b: bool| -> (Vec<String>, Vec<String>) {
        let (mut dests, mut encs) = (Vec::new(), Vec::new());
        for r in rows.iter().filter(|r| r.canary == c) {
            let n = if b { r.count_b } else { r.count_a };
            if n > 0 {
                if !dests.contains(&r.destination) {
                    dests.push(r.destination.clone());
                }
                if !encs.contains(&r.encoding) {
                    encs.push(r.encoding.clone());
                }
            }
        }
        (dests, encs)
    };
    let mut out = String::from("canaries:\n");
    for c in canaries {
        let (da, ea) = where_(c, false);
        let (db, eb) = where_(c, true);
        let line = match (da.is_empty(), db.is_empty()) {
            (_, true) => format!(
                "no longer sent in B (A: to {} as {})",
                da.join(", "),
                ea.join(", ")
            ),
            (true, false) => format!("NEWLY SENT in B: to {} as {}", db.join(", "), eb.join(", ")),
            (false, false) => format!(
                "STILL SENT in B: to {} as {} (A: to {} as {})",
                db.join(", "),
                eb.join(", "),
                da.join(", "),
                ea.join(", ")
            ),
        };
        let _ = writeln!(out, "  {c:<14} {line}");
    }
    out
}

/// `telltale compare`: canary by canary first, then the comparison of the two runs' requests as a table.
pub fn compared(rows: &[ComparedFinding], a: &str, b: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "A = {a}\nB = {b}");
    if rows.is_empty() {
        let _ = writeln!(s, "no canary was uploaded in either run");
        return s;
    }
    s.push_str(&canaries_compared(rows));
    let _ = writeln!(s, "\nrequests:");
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
        "requests: {} persisted, {} appeared, {} disappeared",
        n("PERSISTED"),
        n("APPEARED"),
        n("DISAPPEARED")
    );
    s
}
