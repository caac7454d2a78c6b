//! A run that panics is never dropped from a batch: `run` and `check` end with exit 3 naming the scenario,
//! and the artifacts written before the panic are kept. The fault is injected through the library's own
//! `Progress` hook (called inside the run's task), so no test-only code is compiled into telltale.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::runs::workdir;
use telltale::app::{self, RunFailure, RunRequest};
use telltale::runner::Progress;
use telltale::synth::{Side, Synth, Tcp};
use telltale::ExitCode;

const IMEI: &str = "356938035643809";

/// Panics as soon as the named scenario's run says anything.
struct PanicIn(&'static str);

impl Progress for PanicIn {
    fn step(&self, _: &str, _: usize, _: usize, _: &str) {}
    fn note(&self, scenario: &str, message: &str) {
        if scenario == self.0 {
            panic!("injected fault while {message}");
        }
    }
}

fn scenarios(dir: &Path) -> Vec<telltale::scenario::Scenario> {
    let mut s = Synth::ethernet();
    let client: SocketAddr = "10.77.0.10:40000".parse().unwrap();
    let server: SocketAddr = "198.18.0.20:80".parse().unwrap();
    let mut t = Tcp::new(client, server, 1000, 9000);
    t.open(&mut s);
    t.send(
        &mut s,
        Side::Client,
        b"GET /ping HTTP/1.1\r\nHost: a.example\r\n\r\n",
        1400,
    );
    t.close(&mut s);
    std::fs::write(dir.join("cap.pcap"), s.finish()).unwrap();
    let mut paths = Vec::new();
    for name in ["healthy", "doomed"] {
        let p = dir.join(format!("{name}.yaml"));
        std::fs::write(
            &p,
            format!("name: {name}\ntarget:\n  kind: capture\n  file: cap.pcap\nidentity:\n  values: {{imei: \"{IMEI}\"}}\n"),
        )
        .unwrap();
        paths.push(p);
    }
    app::load_scenarios(&paths, Default::default()).expect("the scenarios are valid")
}

fn request(dir: &Path) -> RunRequest {
    RunRequest {
        out: dir.join("out"),
        jobs: 2,
        accel: vec!["tcg".into()],
        keep: false,
        command_line: vec!["telltale".into(), "run".into()],
    }
}

#[test]
fn a_panicking_run_is_exit_3_with_the_scenario_named() {
    let dir = workdir("panic-run");
    let req = request(&dir);
    let plans = app::plan(scenarios(&dir), &req.out);
    let batch = app::execute(plans, &req, Arc::new(PanicIn("doomed"))).unwrap();
    assert_eq!(batch.runs.len(), 2, "no run is dropped: {batch:?}");
    let doomed = batch.runs.iter().find(|r| r.name == "doomed").unwrap();
    match &doomed.outcome {
        Err(RunFailure::Panicked(why)) => assert!(why.contains("injected fault"), "{why}"),
        other => panic!("expected a panicked run, got {other:?}"),
    }
    let healthy = batch.runs.iter().find(|r| r.name == "healthy").unwrap();
    assert!(healthy.outcome.is_ok(), "{healthy:?}");
    assert_eq!(batch.exit_code(), ExitCode::Internal);
    let shown = telltale::render::batch(&batch);
    assert!(
        shown.contains("doomed: ERROR  telltale failed internally"),
        "{shown}"
    );
    // What the run had written before the fault is kept.
    assert!(dir.join("out/doomed/capture.pcap").exists());
}

#[test]
fn check_with_a_panicking_run_is_exit_3() {
    let dir = workdir("panic-check");
    let req = request(&dir);
    let snaps = dir.join("snapshots");
    let outcome = app::check(
        scenarios(&dir),
        &req,
        &snaps,
        false,
        Arc::new(PanicIn("doomed")),
    )
    .unwrap();
    assert_eq!(outcome.exit_code(), ExitCode::Internal);
    assert_eq!(outcome.batch.runs.len(), 2);
    // The healthy run was still gated (its snapshot is new, so pending).
    assert!(outcome.snapshot_of("healthy").is_some());
    assert!(outcome.snapshot_of("doomed").is_none());
}
