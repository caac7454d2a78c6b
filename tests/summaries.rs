//! The last lines people read: `run`'s and `check`'s one-line summary over every run (verdicts, snapshots,
//! the exit code and why), as insta snapshots of runs built here.

use std::path::PathBuf;

use telltale::app::{Batch, CheckOutcome, RunFailure, RunResult, SnapshotOutcome, SnapshotStatus};
use telltale::record::{Judgement, RunReport, ScenarioInfo, Verdict, VnetRecord};
use telltale::render;
use telltale::report::Report;
use telltale::runner::RunOutcome;

fn run(name: &str, verdict: Verdict) -> RunResult {
    RunResult {
        name: name.into(),
        dir: PathBuf::from("telltale-out").join(name),
        outcome: Ok(RunOutcome {
            report: RunReport {
                schema: 1,
                format_version: 1,
                telltale_version: "0.0.0".into(),
                scenario: ScenarioInfo {
                    name: name.into(),
                    release: None,
                    file: format!("scenarios/{name}.yaml"),
                },
                verdict,
                error: None,
                start_ns: 0,
                end_ns: 1,
                steps: vec![],
                phases: vec![],
                judgement: Judgement::default(),
                analysis: Report::default(),
                vnet: VnetRecord::default(),
            },
            dir: PathBuf::from("telltale-out").join(name),
        }),
    }
}

fn demo() -> Batch {
    Batch {
        runs: vec![
            run("cloudsync-v1", Verdict::Fail),
            run("cloudsync-v2-fix", Verdict::Fail),
            run("cloudsync-v3", Verdict::Pass),
        ],
    }
}

fn snapshot(name: &str, status: SnapshotStatus, fails: bool) -> (String, SnapshotOutcome) {
    (
        name.into(),
        SnapshotOutcome {
            path: PathBuf::from(format!("snapshots/{name}.snap")),
            status,
            fails,
            diff: String::new(),
        },
    )
}

#[test]
fn run_ends_with_every_verdict_and_why_it_exits_1() {
    let line = render::batch_total(&demo());
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains("exit 1"), "{line}");
    insta::assert_snapshot!(line);
}

#[test]
fn run_that_all_pass_exits_0() {
    let b = Batch {
        runs: vec![run("cloudsync-v3", Verdict::Pass)],
    };
    insta::assert_snapshot!(render::batch_total(&b));
}

#[test]
fn a_run_that_could_not_be_carried_out_is_named_as_the_reason_for_exit_3() {
    let mut b = demo();
    b.runs.push(RunResult {
        name: "cloudsync-broken".into(),
        dir: "telltale-out/cloudsync-broken".into(),
        outcome: Err(RunFailure::Failed("the kernel does not exist".into())),
    });
    let line = render::batch_total(&b);
    assert!(line.contains("exit 3"), "{line}");
    insta::assert_snapshot!(line);
}

#[test]
fn check_ends_with_runs_snapshots_and_the_exit_code() {
    let outcome = CheckOutcome {
        batch: demo(),
        snapshots: vec![
            snapshot("cloudsync-v1", SnapshotStatus::Unchanged, false),
            snapshot("cloudsync-v2-fix", SnapshotStatus::Unchanged, false),
            snapshot("cloudsync-v3", SnapshotStatus::Unchanged, false),
        ],
        strict: false,
        ci: true,
    };
    let line = render::check_total(&outcome);
    assert!(line.contains("3 unchanged"), "{line}");
    insta::assert_snapshot!(line);
}

#[test]
fn check_names_the_snapshot_regression_even_when_every_run_passes() {
    let outcome = CheckOutcome {
        batch: Batch {
            runs: vec![
                run("cloudsync-v3", Verdict::Pass),
                run("cloudsync-v4", Verdict::Pass),
            ],
        },
        snapshots: vec![
            snapshot("cloudsync-v3", SnapshotStatus::Unchanged, false),
            snapshot("cloudsync-v4", SnapshotStatus::Regression, true),
        ],
        strict: false,
        ci: true,
    };
    let line = render::check_total(&outcome);
    assert!(line.contains("exit 1"), "{line}");
    assert!(
        line.contains("snapshot gate failed for cloudsync-v4"),
        "{line}"
    );
    insta::assert_snapshot!(line);
}

#[test]
fn accept_names_each_path_once_and_the_command_for_another_folder() {
    use telltale::app::{accept_command, AcceptOutcome};
    let pending = PathBuf::from("snaps/cloudsync-v3@v3.snap.new");
    let outcome = AcceptOutcome {
        failed: vec![(
            pending.clone(),
            format!(
                "{}: no pending snapshot to accept or reject",
                pending.display()
            ),
        )],
        ..AcceptOutcome::default()
    };
    let (_, err) = render::accepted(&outcome);
    assert_eq!(
        err.matches("snaps/cloudsync-v3@v3.snap.new").count(),
        1,
        "{err}"
    );
    assert!(err.contains("--snapshots DIR"), "{err}");
    assert_eq!(
        accept_command(std::path::Path::new("snapshots")),
        "telltale accept"
    );
    assert_eq!(
        accept_command(std::path::Path::new("snaps")),
        "telltale accept --snapshots snaps"
    );
}

/// v1 → v2-fix: the requests all changed, but the IMEI is still sent, re-encoded, to another host; compare
/// says that first.
#[test]
fn compare_is_canary_first() {
    use telltale::runner::verify::ComparedFinding;
    let row = |status, canary: &str, enc: &str, dest: &str, a, b| ComparedFinding {
        status,
        canary: canary.into(),
        encoding: enc.into(),
        destination: dest.into(),
        request: "POST /sync".into(),
        phase: "consent_declined".into(),
        count_a: a,
        count_b: b,
    };
    let rows = vec![
        row("DISAPPEARED", "imei", "raw", "api.kestrel.example", 2, 0),
        row("APPEARED", "imei", "base64", "sync.kestrel.example", 0, 2),
        row("DISAPPEARED", "phone", "raw", "api.kestrel.example", 2, 0),
    ];
    let text = render::compared(&rows, "v1", "v2-fix");
    assert!(
        text.find("STILL SENT").unwrap() < text.find("requests:").unwrap(),
        "{text}"
    );
    insta::assert_snapshot!(text);
}
