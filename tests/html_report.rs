//! The HTML report and the JUnit XML of stored runs, end to end from `report.json` text:
//! the page is written to `CARGO_TARGET_TMPDIR/html-report/` for people and for
//! `ci/html-check` (which the ignored test runs when Chromium is installed).
//!
//! `TELLTALE_HTML_REPORTS=dir1,dir2 cargo test --test html_report -- --ignored render_reports`
//! renders real runs' `report.json`s into `CARGO_TARGET_TMPDIR/html-report/runs.html`.

use std::path::{Path, PathBuf};

use telltale::record::StoredRun;
use telltale::record::{ClaimResult, ClaimStatus, Judgement, RuleKind, RuleResult};
use telltale::render::html::{render, HtmlRun};
use telltale::render::junit::{junit, JunitRun};

/// A report.json of a v2-fix-like run: contacts sha1-hashed and the IMEI base64-encoded to
/// sync.kestrel.example while consent is declined; one clean config request; DHCP and DNS.
const V2_FIX: &str = r#"{
  "format_version": 1, "telltale_version": "0.1.0",
  "scenario": {"name": "cloudsync-v2-fix", "release": "v2-fix", "file": "scenarios/cloudsync-v2-fix.yaml"},
  "verdict": "fail",
  "start_ns": 1795288473924261896, "end_ns": 1795288523773449890,
  "steps": [],
  "phases": [
    {"name": "boot", "start_ns": 1795288473924261896, "end_ns": 1795288477783451695},
    {"name": "setup", "start_ns": 1795288477783451695, "end_ns": 1795288477918660234},
    {"name": "consent_declined", "start_ns": 1795288477918660234, "end_ns": 1795288523773449890}
  ],
  "judgement": {
    "rules": [{"kind": "forbid", "rule": "no canary, in any encoding, to any destination during consent_declined",
      "line": 35, "held": false, "violations": [
        {"canary": "contacts[0]", "encoding": "sha1>hex", "destination": "sync.kestrel.example", "request": "POST /v2/sync",
         "phase": "consent_declined", "count": 2, "packet": 12,
         "text": "contacts[0] (sha1>hex) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times"},
        {"canary": "imei", "encoding": "base64", "destination": "sync.kestrel.example", "request": "POST /v2/sync",
         "phase": "consent_declined", "count": 2, "packet": 12,
         "text": "imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times"}]}],
    "claims": [{"id": "KST-2014-0001", "says": "contacts and device identifiers are no longer uploaded without consent",
      "line": 38, "verdict": "BROKEN", "violations": [
        {"canary": "imei", "encoding": "base64", "destination": "sync.kestrel.example", "request": "POST /v2/sync",
         "phase": "consent_declined", "count": 2, "packet": 12,
         "text": "imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times"}],
      "text": "CLAIM BROKEN  KST-2014-0001  \"contacts and device identifiers are no longer uploaded without consent\"  — imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times"}]
  },
  "analysis": {
    "format_version": 1, "telltale_version": "0.1.0",
    "capture": {"file": "capture.pcap", "format": "pcap", "gzip": false, "packets": 40, "bytes": 6000,
      "first_ns": 1795288477638704474, "last_ns": 1795288519898448393, "link_types": {"ethernet": 40},
      "non_ip_packets": 2, "ip_fragments": 0, "malformed_packets": 0, "damaged_at": null},
    "canaries": ["imei", "phone", "contacts[0]"],
    "findings": [
      {"canary": "imei", "encoding": "base64", "destination": "sync.kestrel.example", "address": "198.18.9.118:80",
       "protocol": "http", "direction": "up", "http_method": "POST", "http_path": "/v2/sync", "field": "body",
       "flow": 3, "packet": 12, "offset": 190, "time_ns": 1795288483131687095, "phase": "consent_declined", "count": 1,
       "excerpt": "{\"did\":\"MzUzNjA0NDE2NzczMDAy\",\"contact_hashes\":[\"794<script>alert(1)</script>"},
      {"canary": "contacts[0]", "encoding": "sha1>hex", "destination": "sync.kestrel.example", "address": "198.18.9.118:80",
       "protocol": "http", "direction": "up", "http_method": "POST", "http_path": "/v2/sync", "field": "body",
       "flow": 3, "packet": 12, "offset": 231, "time_ns": 1795288483131687095, "phase": "consent_declined", "count": 1,
       "excerpt": ",\"contact_hashes\":[\"794031b3ccf46f82aad6f2a0e86310d5b1aa12fd\""},
      {"canary": "imei", "encoding": "base64", "destination": "sync.kestrel.example", "address": "198.18.9.118:80",
       "protocol": "http", "direction": "up", "http_method": "POST", "http_path": "/v2/sync", "field": "body",
       "flow": 5, "packet": 21, "offset": 190, "time_ns": 1795288504043535737, "phase": "consent_declined", "count": 1,
       "excerpt": "{\"did\":\"MzUzNjA0NDE2NzczMDAy\""},
      {"canary": "contacts[0]", "encoding": "sha1>hex", "destination": "sync.kestrel.example", "address": "198.18.9.118:80",
       "protocol": "http", "direction": "up", "http_method": "POST", "http_path": "/v2/sync", "field": "body",
       "flow": 5, "packet": 21, "offset": 231, "time_ns": 1795288504043535737, "phase": "consent_declined", "count": 1,
       "excerpt": ",\"contact_hashes\":[\"794031b3ccf46f82aad6f2a0e86310d5b1aa12fd\""}
    ],
    "flows": [
      {"id": 0, "protocol": "udp", "app": "dhcp", "client": "0.0.0.0:68", "server": "255.255.255.255:67",
       "destination": "255.255.255.255", "packets_up": 4, "packets_down": 0, "bytes_up": 1222, "bytes_down": 0,
       "first_ns": 1795288477638704474, "last_ns": 1795288503624992575, "first_packet": 1, "opaque_bytes": 0},
      {"id": 1, "protocol": "udp", "app": "dns", "client": "10.77.0.15:40001", "server": "10.77.0.1:53",
       "destination": "10.77.0.1", "packets_up": 1, "packets_down": 1, "bytes_up": 38, "bytes_down": 54,
       "first_ns": 1795288483085996881, "last_ns": 1795288483086063809, "first_packet": 8, "opaque_bytes": 0},
      {"id": 2, "protocol": "tcp", "app": "http", "client": "10.77.0.15:40002", "server": "198.18.9.120:80",
       "destination": "config.kestrel.example", "packets_up": 4, "packets_down": 4, "bytes_up": 120, "bytes_down": 300,
       "first_ns": 1795288479000000000, "last_ns": 1795288479010000000, "first_packet": 5, "opaque_bytes": 0},
      {"id": 3, "protocol": "tcp", "app": "http", "client": "10.77.0.15:40003", "server": "198.18.9.118:80",
       "destination": "sync.kestrel.example", "packets_up": 5, "packets_down": 4, "bytes_up": 387, "bytes_down": 200,
       "first_ns": 1795288483122169022, "last_ns": 1795288483138223294, "first_packet": 10, "opaque_bytes": 0},
      {"id": 4, "protocol": "udp", "app": "dns", "client": "10.77.0.15:40004", "server": "10.77.0.1:53",
       "destination": "10.77.0.1", "packets_up": 1, "packets_down": 1, "bytes_up": 38, "bytes_down": 54,
       "first_ns": 1795288503992527876, "last_ns": 1795288503992601534, "first_packet": 18, "opaque_bytes": 0},
      {"id": 5, "protocol": "tcp", "app": "http", "client": "10.77.0.15:40005", "server": "198.18.9.118:80",
       "destination": "sync.kestrel.example", "packets_up": 5, "packets_down": 4, "bytes_up": 387, "bytes_down": 200,
       "first_ns": 1795288504033685429, "last_ns": 1795288504050411614, "first_packet": 19, "opaque_bytes": 0}
    ],
    "dns_queries": [],
    "http_requests": [
      {"method": "GET", "host": "config.kestrel.example", "path": "/v2/config", "target": "/v2/config", "body_bytes": 0,
       "body_decoded_bytes": 0, "destination": "config.kestrel.example", "flow": 2, "packet": 6, "time_ns": 1795288479005000000},
      {"method": "POST", "host": "sync.kestrel.example", "path": "/v2/sync", "target": "/v2/sync", "body_bytes": 205,
       "body_decoded_bytes": 205, "destination": "sync.kestrel.example", "flow": 3, "packet": 12, "time_ns": 1795288483131687095},
      {"method": "POST", "host": "sync.kestrel.example", "path": "/v2/sync", "target": "/v2/sync", "body_bytes": 205,
       "body_decoded_bytes": 205, "destination": "sync.kestrel.example", "flow": 5, "packet": 21, "time_ns": 1795288504043535737}
    ],
    "tls": [], "dhcp": [], "warnings": []
  },
  "vnet": {"stats": {}, "frames_recorded": 40, "frames_dropped": 0, "events": [], "port_errors": []}
}"#;

/// Accepted snapshot body of v1 and this run's (v2-fix), as `telltale check` writes them.
const ACCEPTED: &str = "phase boot

phase setup

phase consent_declined
  lookup api.account.kestrel.example
  to api.account.kestrel.example  upload <1KiB
    http POST /v1/register
      contacts[0]  raw
      imei  raw
";
const NEW: &str = "phase boot

phase setup

phase consent_declined
  lookup sync.kestrel.example
  to sync.kestrel.example  upload <1KiB
    http POST /v2/sync
      contacts[0]  sha1>hex
      imei  base64
";

/// The snapshot comparison as `telltale check` shows it.
fn diff() -> String {
    let d = telltale::snapshot::compare_bodies(ACCEPTED, NEW).expect("the bodies parse");
    assert!(d.is_regression());
    d.render()
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&d).expect("create the output folder");
    d
}

fn v2_fix() -> StoredRun {
    serde_json::from_str(V2_FIX).expect("the report text parses as a stored run")
}

/// A passing run made from the failing one: no findings, everything held.
fn v3() -> StoredRun {
    let mut run = v2_fix();
    run.scenario.name = "cloudsync-v3".into();
    run.scenario.release = Some("v3".into());
    run.verdict = telltale::runner::Verdict::Pass;
    run.analysis.findings.clear();
    run.judgement = Judgement {
        rules: vec![RuleResult {
            inconclusive: Vec::new(),
            kind: RuleKind::Forbid,
            rule: "no canary, in any encoding, to any destination during consent_declined".into(),
            line: 34,
            held: true,
            violations: vec![],
        }],
        claims: vec![ClaimResult {
            inconclusive: Vec::new(),
            id: "KST-2014-0001".into(),
            says: "contacts and device identifiers are no longer uploaded without consent".into(),
            line: 37,
            verdict: ClaimStatus::Holds,
            violations: vec![],
            text: "CLAIM HOLDS   KST-2014-0001".into(),
        }],
    };
    run
}

fn write_page() -> (PathBuf, String) {
    let (a, b) = (v2_fix(), v3());
    let html = render(&[
        HtmlRun {
            run: &a,
            snapshot_diff: Some(diff()),
            snapshot_gate: Some("FAILS: new privacy behaviour against snapshots/cloudsync-v2-fix.snap".into()),
            title: "cloudsync-v2-fix (v2-fix)".into(),
        },
        HtmlRun {
            run: &b,
            snapshot_diff: Some(String::new()),
            snapshot_gate: Some("PASSES: the same privacy behaviour as the accepted snapshot snapshots/cloudsync-v3.snap".into()),
            title: "cloudsync-v3 (v3)".into(),
        },
    ]);
    let path = out_dir().join("report.html");
    std::fs::write(&path, &html).expect("write the page");
    (path, html)
}

#[test]
fn page_from_report_json() {
    let (path, html) = write_page();
    assert!(path.exists());
    assert!(html.contains("CLAIM BROKEN"));
    assert!(html.contains("CLAIM HOLDS"));
    assert!(html.contains("sync.kestrel.example"));
    // Device data stays text.
    assert!(!html.contains("<script"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Nothing is loaded from elsewhere.
    for needle in ["http://", "https://", "src=", "@import", "url("] {
        assert!(!html.contains(needle), "the page refers to {needle}");
    }
    // Both sync requests are red, the config requests grey (in both runs); DHCP and DNS to the resolver are the
    // network's own services: not drawn, listed apart.
    assert_eq!(html.matches("class=\"m-leak\"").count(), 2);
    assert_eq!(html.matches("class=\"m-plain\"").count(), 4);
    assert_eq!(html.matches("<span class=\"services\">").count(), 2);
    assert!(html.contains("<span class=\"reg\">REGRESSION:"));
    // The snapshot gate is shown for every gated run, the unchanged one included.
    assert_eq!(html.matches("<h3>Snapshot gate</h3>").count(), 2);
    assert!(html
        .contains("<p class=\"ok\">PASSES: the same privacy behaviour as the accepted snapshot"));
    assert!(html.contains("<p class=\"bad\">FAILS: new privacy behaviour against"));
    assert!(html.contains("│+  to sync.kestrel.example  upload &lt;1KiB</span>"));
    assert_eq!(
        html,
        render(&[
            HtmlRun {
                run: &v2_fix(),
                snapshot_diff: Some(diff()),
                snapshot_gate: Some("FAILS: new privacy behaviour against snapshots/cloudsync-v2-fix.snap".into()),
                title: "cloudsync-v2-fix (v2-fix)".into(),
            },
            HtmlRun {
                run: &v3(),
                snapshot_diff: Some(String::new()),
                snapshot_gate: Some("PASSES: the same privacy behaviour as the accepted snapshot snapshots/cloudsync-v3.snap".into()),
                title: "cloudsync-v3 (v3)".into(),
            },
        ]),
        "same input, same bytes"
    );
}

#[test]
fn junit_from_report_json() {
    let (a, b) = (v2_fix(), v3());
    let xml = junit(&[
        JunitRun {
            run: &a,
            snapshot: Some((true, diff())),
        },
        JunitRun {
            run: &b,
            snapshot: Some((false, String::new())),
        },
    ])
    .expect("JUnit XML");
    std::fs::write(out_dir().join("junit.xml"), &xml).expect("write the XML");
    let r = quick_junit::Report::deserialize_from_str(&xml).expect("the XML reads back");
    assert_eq!((r.tests, r.failures, r.errors), (6, 3, 0));
    let names: Vec<&str> = r.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(names.contains(&"cloudsync-v2-fix::claim KST-2014-0001"));
    assert!(names.contains(&"cloudsync-v2-fix::forbid (line 35)"));
    assert!(names.contains(&"cloudsync-v2-fix::snapshot"));
    assert!(names.contains(&"cloudsync-v3::snapshot"));
    assert!(xml.contains("message=\"REGRESSION: "), "{xml}");
}

/// Runs `ci/html-check` on the page (needs Debian's `chromium`).
#[test]
#[ignore = "needs chromium: apt-get install -y --no-install-recommends chromium"]
fn html_check_accepts_the_page() {
    let (path, _) = write_page();
    let shot = out_dir().join("report.png");
    let status =
        std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/html-check"))
            .arg(&path)
            .args(["--expect", "CLAIM BROKEN", "--expect", "CLAIM HOLDS"])
            .args(["--expect", "sync.kestrel.example"])
            .args(["--expect", "<script>alert(1)</script>"])
            .arg("--screenshot")
            .arg(&shot)
            .status()
            .expect("run ci/html-check");
    assert!(
        status.success(),
        "ci/html-check failed on {}",
        path.display()
    );
}

/// Renders real runs: `TELLTALE_HTML_REPORTS` lists run folders or report.json files,
/// separated by commas.
#[test]
#[ignore = "reads real runs named by TELLTALE_HTML_REPORTS"]
fn render_reports() {
    let Ok(list) = std::env::var("TELLTALE_HTML_REPORTS") else {
        println!("TELLTALE_HTML_REPORTS is not set: nothing to render");
        return;
    };
    let runs: Vec<StoredRun> = list
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|p| StoredRun::load(Path::new(p)).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let pages: Vec<HtmlRun<'_>> = runs
        .iter()
        .map(|r| HtmlRun {
            run: r,
            snapshot_diff: None,
            snapshot_gate: None,
            title: match &r.scenario.release {
                Some(rel) => format!("{} ({rel})", r.scenario.name),
                None => r.scenario.name.clone(),
            },
        })
        .collect();
    let path = out_dir().join("runs.html");
    std::fs::write(&path, render(&pages)).expect("write the page");
    println!("wrote {}", path.display());
}
