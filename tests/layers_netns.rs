//! Layered decoding end to end (issue 15): a real program (a Python script using only its standard library) in a
//! `kind: netns` target gzips a file holding a planted IMEI and uploads it as a file part of a multipart POST, the
//! way SDKs upload crash reports and diagnostics. The run fails, and the finding names the whole chain
//! (`multipart[report]>gzip>raw`), the part and the destination.
//!
//! Needs root, `ip` (iproute2), `nsenter` (util-linux) and `python3`; `.ci/run` has all of them, elsewhere the test
//! says why it is skipped.

mod common;

use std::process::Command;

use common::runs::*;

/// The system's interpreter: the program runs as `nobody`, who cannot reach an interpreter under `/root`
/// (pyenv).
const PYTHON: &str = "/usr/bin/python3";

fn unsupported() -> Option<String> {
    if !telltale::driver::is_root() {
        return Some("needs root (network namespaces, TAP devices); `.ci/run` runs as root".into());
    }
    if !std::path::Path::new(PYTHON).exists() {
        return Some(format!(
            "needs {PYTHON} (Debian: python3); `.ci/run` installs it"
        ));
    }
    for tool in ["ip", "nsenter"] {
        if !on_path(tool) {
            return Some(format!(
                "needs `{tool}` (Debian: iproute2, util-linux, python3); `.ci/run` installs it"
            ));
        }
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("needs /dev/net/tun".into());
    }
    None
}

/// The uploader: waits for the planted file, gzips a JSON report that quotes it, POSTs it as `multipart/form-data`
/// (a text field and the gzip'd file part) and says so.
const UPLOADER: &str = r#"
import gzip, http.client, json, os, sys, time
print("uploader: ready", flush=True)
while not os.path.exists("imei"):
    time.sleep(0.2)
imei = open("imei").read().strip()
doc = json.dumps({"device": "thermostat", "imei": imei, "uptime": 1234}).encode()
part = gzip.compress(doc)
b = "----telltaleUploader"
body = (f"--{b}\r\nContent-Disposition: form-data; name=\"device\"\r\n\r\nthermostat\r\n"
        f"--{b}\r\nContent-Disposition: form-data; name=\"report\"; filename=\"report.json.gz\"\r\n"
        f"Content-Type: application/gzip\r\n\r\n").encode() + part + f"\r\n--{b}--\r\n".encode()
c = http.client.HTTPConnection("diagnostics.vendor.example", 80, timeout=10)
c.request("POST", "/v2/upload", body, {"Content-Type": "multipart/form-data; boundary=" + b})
r = c.getresponse()
r.read()
print("uploader: sent", r.status, flush=True)
time.sleep(600)
"#;

fn a_gzipped_file_in_a_multipart_post_is_found_with_its_chain() {
    if skip(unsupported()) {
        return;
    }
    let dir = workdir("layers-netns");
    let marker = format!("tt-layers-uploader-{}", std::process::id());
    // The program runs as `nobody`: its script goes where `nobody` can read it (the test's folder may sit in a
    // private one).
    let shared = std::env::temp_dir().join(format!("tt-layers-netns-{}", std::process::id()));
    std::fs::create_dir_all(&shared).unwrap();
    let script = shared.join("uploader.py");
    std::fs::write(&script, UPLOADER).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let scenario = dir.join("uploader.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"name: layers-uploader
target:
  kind: netns
  command: [{PYTHON}, -u, "{script}", {marker}]
  boot_timeout: 20s
identity:
  seed: 7
steps:
  - wait_for: "uploader: ready"
  - phase: consent_declined
  - plant: {{path: imei, content: "{{{{imei}}}}"}}
  - wait_for: "uploader: sent"
    timeout: 20s
policy:
  forbid:
    - canaries: all
      phases: [consent_declined]
"#,
            script = script.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = Command::new(bin())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out.join("layers-uploader"));
    assert_eq!(r["verdict"], "fail");
    let up = uploads(&r);
    assert!(
        up.iter().any(|u| u.0 == "imei"
            && u.1 == "multipart[report]>gzip>raw"
            && u.2 == "diagnostics.vendor.example"
            && u.3 == "POST /v2/upload"
            && u.4 == "consent_declined"),
        "{up:#?}\n{}",
        text(&o)
    );
    // Nothing of the run is left behind: no process carrying the marker.
    let left = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(left, 0, "processes of the run are left");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&shared);
}

tests!(a_gzipped_file_in_a_multipart_post_is_found_with_its_chain);
