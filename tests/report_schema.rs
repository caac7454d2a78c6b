//! `report.json` is a contract described by `schemas/report.schema.json`. A real run (a capture judged by a
//! scenario with a policy and a claim, so every part of the record is filled in) writes a report that must
//! validate; a report bent out of shape must not.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::runs::workdir;
use serde_json::Value;
use telltale::app::{self, RunRequest};
use telltale::runner::NoProgress;
use telltale::synth::{Side, Synth, Tcp};

const IMEI: &str = "356938035643809";

fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema itself is valid")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| e.to_string()).collect()
}

/// A real run's report.json, as written to disk.
fn real_report(tag: &str) -> Value {
    let dir = workdir(tag);
    let mut s = Synth::ethernet();
    let client: SocketAddr = "10.77.0.10:40000".parse().unwrap();
    let server: SocketAddr = "198.18.0.20:80".parse().unwrap();
    let mut t = Tcp::new(client, server, 1000, 9000);
    t.open(&mut s);
    let body = format!("imei={IMEI}");
    let req = format!(
        "POST /collect HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    t.send(&mut s, Side::Client, req.as_bytes(), 1400);
    t.send(
        &mut s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        1400,
    );
    t.close(&mut s);
    s.udp("10.77.0.10:5353".parse().unwrap(), "10.77.0.1:53".parse().unwrap(), b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03api\x06vendor\x07example\x00\x00\x01\x00\x01");
    std::fs::write(dir.join("cap.pcap"), s.finish()).unwrap();
    let scenario = dir.join("audit.yaml");
    std::fs::write(
        &scenario,
        format!("name: audit\nrelease: fw-2\ntarget:\n  kind: capture\n  file: cap.pcap\n  phases:\n    - {{name: consent_declined, at: 1ms}}\nidentity:\n  values: {{imei: \"{IMEI}\"}}\npolicy:\n  forbid:\n    - canaries: all\n      phases: [consent_declined]\n  allow_destinations: [\"*.vendor.example\"]\nclaims:\n  - id: FW-2-001\n    says: the IMEI is no longer sent\n    forbid: {{canaries: [imei]}}\n"),
    )
    .unwrap();
    let req = RunRequest {
        out: dir.join("out"),
        jobs: 1,
        accel: vec!["tcg".into()],
        keep: false,
        command_line: vec![],
    };
    let scenarios = app::load_scenarios(&[scenario], Default::default()).unwrap();
    let batch = app::execute(app::plan(scenarios, &req.out), &req, Arc::new(NoProgress)).unwrap();
    assert_eq!(batch.runs.len(), 1);
    let text = std::fs::read_to_string(dir.join("out/audit/report.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_real_report_validates_and_a_bent_one_does_not() {
    let v = validator();
    let report = real_report("schema-valid");
    // The run found the upload and broke the claim: the record is filled in, not empty.
    assert_eq!(report["verdict"], "fail", "{report:#}");
    assert!(!report["analysis"]["findings"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(report["judgement"]["claims"][0]["verdict"], "BROKEN");
    let errs = errors(&v, &report);
    assert!(
        errs.is_empty(),
        "report.json does not match its schema:\n{}",
        errs.join("\n")
    );

    // Each of these is a contract break the schema must catch.
    type Bend = (&'static str, fn(&mut Value));
    let bend: [Bend; 7] = [
        ("unknown verdict", |r| r["verdict"] = "maybe".into()),
        ("claim verdict as a word", |r| {
            r["judgement"]["claims"][0]["verdict"] = "broken".into()
        }),
        ("flow endpoint without a port", |r| {
            r["analysis"]["flows"][0]["client"] = "10.77.0.10".into()
        }),
        ("an application nobody wrote", |r| {
            r["analysis"]["flows"][0]["app"] = "gopher".into()
        }),
        ("a transport nobody wrote", |r| {
            r["analysis"]["flows"][0]["protocol"] = "ip-".into()
        }),
        ("a field nobody documented", |r| r["surprise"] = 1.into()),
        ("schema version missing", |r| {
            r.as_object_mut().unwrap().remove("schema");
        }),
    ];
    for (what, f) in bend {
        let mut bent = report.clone();
        f(&mut bent);
        assert!(
            !errors(&v, &bent).is_empty(),
            "{what}: accepted by the schema"
        );
    }
}

#[test]
fn the_record_reads_back_what_it_wrote() {
    let report = real_report("schema-roundtrip");
    let typed: telltale::runner::RunReport = serde_json::from_value(report.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), report);
}

/// The schema's words for a flow's application and transport are exactly what the typed record writes: every
/// `App` and every `Transport` (all 256 IP protocol numbers and `link`) validates in a real report, and the
/// schema lists no application the record cannot read.
#[test]
fn the_schema_knows_every_application_and_transport_the_record_writes() {
    use telltale::report::{App, Transport};
    let v = validator();
    let report = real_report("schema-words");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/report.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = schema["$defs"]["analysis"]["properties"]["flows"]["items"]
        ["properties"]["app"]["enum"]
        .as_array()
        .expect("the schema lists the applications")
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let written: Vec<&str> = App::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(listed, written);
    let transports = (0..=255u8)
        .map(Transport::from_ip_protocol)
        .chain([Transport::Link]);
    for t in transports {
        let mut r = report.clone();
        r["analysis"]["flows"][0]["protocol"] = serde_json::to_value(t).unwrap();
        let errs = errors(&v, &r);
        assert!(errs.is_empty(), "{t}: {}", errs.join("\n"));
    }
}
