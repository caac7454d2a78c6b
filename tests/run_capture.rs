//! `kind: capture` through `telltale run` and `telltale verify`: an auditor's pcaps judged
//! against a scenario's identity, phases, policy and claims, with nothing running. The
//! captures are written here with the project's own `synth` module.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::runs::*;
use serde_json::Value;
use telltale::synth::Synth;

const IMEI: &str = "356938035643809";
const B64_IMEI: &str = "MzU2OTM4MDM1NjQzODA5";

/// Frames 1 ms apart: a plain upload at once, 300 ms of unrelated datagrams, then (when
/// `later` is given) a second upload with that body.
fn capture(path: &Path, later: Option<&str>) {
    let mut s = Synth::ethernet();
    common::upload(&mut s, 40000, "api.vendor.example", &format!("imei={IMEI}"));
    for i in 0..300u16 {
        s.udp(
            "10.77.0.10:5000".parse().unwrap(),
            "10.77.0.1:9".parse().unwrap(),
            &i.to_be_bytes(),
        );
    }
    if let Some(body) = later {
        common::upload(&mut s, 40001, "sync.vendor.example", body);
    }
    std::fs::write(path, s.finish()).unwrap();
}

fn scenario(dir: &Path, file: &str, phase_at: &str) -> PathBuf {
    let p = dir.join(format!("audit-{phase_at}.yaml"));
    std::fs::write(
        &p,
        format!(
            "name: audit\nrelease: fw-2\ntarget:\n  kind: capture\n  file: {file}\n  phases:\n    - {{name: consent_declined, at: {phase_at}}}\nidentity:\n  values: {{imei: \"{IMEI}\"}}\npolicy:\n  forbid:\n    - canaries: all\n      phases: [consent_declined]\nclaims:\n  - id: FW-2-001\n    says: the IMEI is no longer sent once consent is declined\n    forbid: {{canaries: [imei], phases: [consent_declined]}}\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn a_capture_is_judged_by_phase_like_a_live_run() {
    let dir = workdir("phases");
    capture(&dir.join("fw-2.pcap"), Some(&format!("id={B64_IMEI}")));

    // Consent declined after 100 ms: only the second, base64 upload falls in it.
    let s = scenario(&dir, "fw-2.pcap", "100ms");
    let out = dir.join("out");
    let o = Command::new(bin())
        .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("CLAIM BROKEN  FW-2-001"), "{all}");
    let r = report(&out.join("audit"));
    assert_eq!(r["verdict"], "fail");
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["boot", "consent_declined"]);
    let v = &r["judgement"]["claims"][0]["violations"];
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), 1, "{v:#?}");
    let found: Vec<(String, String)> = r["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{} {}",
                    f["encoding"].as_str().unwrap(),
                    f["destination"].as_str().unwrap()
                ),
                f["phase"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        found.contains(&("raw api.vendor.example".into(), "boot".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "base64 sync.vendor.example".into(),
            "consent_declined".into()
        )),
        "{found:?}"
    );
    // The run folder looks like a live run's: the capture is in it, hashed in the manifest.
    assert_eq!(
        std::fs::read(out.join("audit/capture.pcap")).unwrap(),
        std::fs::read(dir.join("fw-2.pcap")).unwrap()
    );
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("audit/manifest.json")).unwrap())
            .unwrap();
    assert!(m["images"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("fw-2.pcap"));

    // Declared after the capture's last frame, the phase never ran: nothing was observed in it, so its
    // rule and claim are INCONCLUSIVE (exit 4), never "held".
    let s = scenario(&dir, "fw-2.pcap", "1m");
    let o = Command::new(bin())
        .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("phase consent_declined never ran"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_over_two_captures_gives_claim_verdicts_and_a_bundle() {
    let dir = workdir("verify");
    capture(&dir.join("before.pcap"), Some(&format!("id={B64_IMEI}")));
    capture(&dir.join("after.pcap"), Some("id=none"));
    let s = scenario(&dir, "before.pcap", "100ms");
    let out = dir.join("out");
    let o = Command::new(bin())
        .args(["verify", s.to_str().unwrap(), "--before"])
        .arg(dir.join("before.pcap"))
        .arg("--after")
        .arg(dir.join("after.pcap"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("FIXED"), "{all}");
    let bundle = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "gz"))
        .expect("an evidence bundle");
    assert!(std::fs::metadata(bundle).unwrap().len() > 0);

    // A capture that does not exist is invalid input, pointing at the line.
    let s = scenario(&dir, "missing.pcap", "100ms");
    let o = Command::new(bin())
        .args(["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains(":5:") && all.contains("does not exist"),
        "{all}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
