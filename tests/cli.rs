//! The command line as an interface: exit codes, messages that point at the problem, JSON contract.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn telltale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_telltale"))
}

fn tmp(name: &str) -> PathBuf {
    // Inside target/ (Cargo's scratch space for integration tests), so nothing is left elsewhere.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A fresh identity file per call: tests run in parallel and must not read each other's half-written files.
fn identity_file() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    write(
        &format!("ids-{n}.yaml"),
        format!("imei: \"{IMEI}\"\nphone: \"{PHONE}\"\ncontacts: [\"{CONTACT}\"]\n").as_bytes(),
    )
}

fn run(args: &[&Path]) -> (i32, String, String) {
    let out = telltale().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_1_and_findings_first_when_a_canary_leaves() {
    let pcap = write(
        "leak.pcap",
        &conversation(
            &post("/v1/upload", "", format!("imei={IMEI}").as_bytes()),
            1460,
        ),
    );
    let ids = identity_file();
    let (code, out, _) = run(&[Path::new("analyze"), &pcap, Path::new("--identity"), &ids]);
    assert_eq!(code, 1, "{out}");
    let first_lines: Vec<&str> = out.lines().take(4).collect();
    assert!(
        first_lines.iter().any(|l| l.starts_with("FINDINGS")),
        "{out}"
    );
    assert!(
        out.contains(
            "imei (raw) sent to api.vendor.example 198.18.0.10:80 via http POST /v1/upload [body]"
        ),
        "{out}"
    );
}

#[test]
fn exit_0_when_nothing_is_found() {
    let pcap = write(
        "clean.pcap",
        &conversation(&post("/v1/ping", "", b"{}"), 1460),
    );
    let ids = identity_file();
    let (code, out, _) = run(&[Path::new("analyze"), &pcap, Path::new("-i"), &ids]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("No canary found (3 searched: imei, phone, contacts[0])"),
        "{out}"
    );
}

#[test]
fn json_report_carries_the_contract_fields() {
    let mut req = post(
        "/v2/sync",
        "",
        format!("{{\"c\":\"{CONTACT}\"}}").as_bytes(),
    );
    req.splice(0..0, Vec::new());
    let pcap = write("contract.pcap", &conversation(&req, 1460));
    let ids = identity_file();
    let out = telltale()
        .args([
            Path::new("analyze"),
            &pcap,
            Path::new("--identity"),
            &ids,
            Path::new("--format"),
            Path::new("json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "dns_queries",
        "tls",
        "http_requests",
        "flows",
        "findings",
        "warnings",
    ] {
        assert!(v[key].is_array(), "{key} missing");
    }
    let f = &v["findings"][0];
    for key in ["canary", "encoding", "destination", "protocol", "direction"] {
        assert!(f[key].is_string(), "findings[].{key} missing: {f}");
    }
    assert_eq!(v["http_requests"][0]["method"], "POST");
    assert_eq!(v["http_requests"][0]["host"], "api.vendor.example");
    assert_eq!(v["http_requests"][0]["path"], "/v2/sync");
    assert_eq!(v["flows"][0]["protocol"], "tcp");
    assert!(v["flows"][0]["bytes_up"].as_u64().unwrap() > 0);
    assert!(v["flows"][0]["bytes_down"].as_u64().unwrap() > 0);
    // The report round-trips through the library's own model.
    let _: telltale::Report = serde_json::from_slice(&out.stdout).unwrap();
}

#[test]
fn exit_2_for_a_file_that_is_not_a_capture() {
    let p = write("notes.txt", b"these are not packets\n");
    let (code, _, err) = run(&[Path::new("analyze"), &p]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "is not a capture file: its first bytes are neither a pcap nor a pcapng header"
        ),
        "{err}"
    );
    let (code, _, err) = run(&[Path::new("analyze"), Path::new("/nonexistent/x.pcap")]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /nonexistent/x.pcap"), "{err}");
    let empty = write("empty.pcap", b"");
    let (code, _, err) = run(&[Path::new("analyze"), &empty]);
    assert_eq!(code, 2);
    assert!(err.contains("the file is empty"), "{err}");
}

#[test]
fn exit_2_for_a_bad_identity_file_with_line_and_column() {
    let pcap = write("any.pcap", &conversation(b"GET / HTTP/1.1\r\n\r\n", 1460));
    let bad = write("bad-ids.yaml", b"imei: \"356938035643809\"\npin: \"12\"\n");
    let (code, _, err) = run(&[Path::new("analyze"), &pcap, Path::new("--identity"), &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad-ids.yaml:2:"), "{err}");
    assert!(err.contains("pin: \"12\""), "{err}");
    assert!(err.contains('^'), "a caret points at the value: {err}");
    let broken = write("broken-ids.yaml", b"imei: [unclosed\n");
    let (code, _, err) = run(&[
        Path::new("analyze"),
        &pcap,
        Path::new("--identity"),
        &broken,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broken-ids.yaml:"), "{err}");
}

#[test]
fn truncated_capture_is_reported_not_rejected() {
    let full = conversation(
        &post("/v1/upload", "", format!("imei={IMEI}").as_bytes()),
        200,
    );
    let cut = write("cut.pcap", &full[..full.len() - 10]);
    let ids = identity_file();
    let out = telltale()
        .args([
            Path::new("analyze"),
            &cut,
            Path::new("-i"),
            &ids,
            Path::new("-f"),
            Path::new("json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"][0]["kind"], "damaged-capture");
    assert!(v["warnings"][0]["offset"].as_u64().unwrap() > 24);
}

#[test]
fn gzip_compressed_captures_are_read() {
    use std::io::Write;
    let pcap = conversation(&post("/gz", "", format!("imei={IMEI}").as_bytes()), 1460);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&pcap).unwrap();
    let p = write("compressed.pcap.gz", &e.finish().unwrap());
    let ids = identity_file();
    let (code, out, _) = run(&[Path::new("analyze"), &p, Path::new("-i"), &ids]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn identity_command_lists_patterns() {
    let ids = identity_file();
    let (code, out, _) = run(&[Path::new("identity"), &ids, Path::new("--patterns")]);
    assert_eq!(code, 0);
    assert!(out.lines().any(|l| l == IMEI));
    assert!(
        out.lines().any(|l| l == "MzU2OTM4MDM1NjQzODA5"),
        "base64 of the IMEI"
    );
}

#[test]
fn help_teaches_exit_codes_and_identity_format() {
    let out = telltale().args(["analyze", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(
        "Exit codes: 0 no canary found, 1 canary found, 2 bad input, 3 internal failure."
    ));
    assert!(text.contains("imei: \"356938035643809\""));
}
