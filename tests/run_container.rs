//! `kind: container` end to end through `telltale check` and `telltale run`: the demo firmware
//! as container images gives the same verdicts, findings and privacy snapshots as the same
//! firmware under QEMU; failures (a missing image, a container that never gets ready, Ctrl-C)
//! are reported and leave no container and no TAP behind; `--keep` keeps the container.
//!
//! Needs root, a Docker engine (`ci/docker-engine start`) and the images
//! (`ci/build-demo-images --containers`); `.ci/run` has all three. Elsewhere each test says
//! why it is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::runs::*;
use serde_json::Value;

/// The tests compare the host's containers and interfaces before and after: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn unsupported() -> Option<String> {
    if !telltale::driver::is_root() {
        return Some(
            "needs root (a TAP into the container's namespace); `.ci/run` runs as root".into(),
        );
    }
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !info.map(|o| o.status.success()).unwrap_or(false) {
        return Some("needs a Docker engine: ci/docker-engine start (`.ci/run` does)".into());
    }
    let img = Command::new("docker")
        .args(["image", "inspect", "telltale-demo/cloudsync:v1"])
        .output();
    if !img.map(|o| o.status.success()).unwrap_or(false) {
        return Some(
            "needs the demo images: ci/build-demo-images --containers (`.ci/run` does)".into(),
        );
    }
    None
}

/// Every container telltale made (label `telltale`), and `tt*` interfaces on the host.
fn leftovers() -> (Vec<String>, Vec<String>) {
    let ps = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", "label=telltale"])
        .output()
        .unwrap();
    let containers = String::from_utf8_lossy(&ps.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let taps = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tt"))
        .collect();
    (containers, taps)
}

fn assert_clean(context: &str) {
    let (c, t) = leftovers();
    assert!(
        c.is_empty() && t.is_empty(),
        "{context}: left containers {c:?}, TAPs {t:?}"
    );
}

/// Upload findings, sorted and unique (each release sends the same requests many times).
fn distinct_uploads(r: &Value) -> Vec<(String, String, String, String, String)> {
    let mut v = uploads(r);
    v.sort();
    v.dedup();
    v
}

/// The body of a `.snap` file (after insta's header).
fn snap_body(path: &Path) -> String {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut parts = t.splitn(3, "---\n");
    let _ = (parts.next(), parts.next());
    parts.next().unwrap_or("").to_string()
}

fn demo_container_releases_behave_as_under_qemu() {
    if skip(unsupported()) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_clean("before");
    let out = workdir("demo");
    let snaps = out.join("snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    for f in std::fs::read_dir(repo().join("snapshots"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(f.path(), snaps.join(f.file_name())).unwrap();
    }
    let o = Command::new(bin())
        .current_dir(repo())
        .args([
            "check",
            "--allow-host=files",
            "scenarios/cloudsync-container-v1.yaml",
            "scenarios/cloudsync-container-v2-fix.yaml",
            "scenarios/cloudsync-container-v3.yaml",
            "--jobs",
            "3",
            "--out",
        ])
        .arg(&out)
        .arg("--snapshots")
        .arg(&snaps)
        .env("CI", "true")
        .output()
        .unwrap();
    let all = text(&o);
    // v1 and v2-fix break the policy and the claim, as under QEMU; the snapshots hold.
    assert_eq!(o.status.code(), Some(1), "{all}");
    for r in ["v1", "v2-fix", "v3"] {
        assert!(
            all.contains(&format!("cloudsync-container-{r}: snapshot unchanged")),
            "{r}: {all}"
        );
        // The container's privacy snapshot is the VM's, line for line.
        assert_eq!(
            snap_body(&snaps.join(format!("cloudsync-container-{r}@{r}.snap"))),
            snap_body(&repo().join(format!("snapshots/cloudsync-{r}@{r}.snap"))),
            "{r}: the container behaves differently from the VM"
        );
    }
    let v1 = report(&out.join("cloudsync-container-v1"));
    assert_eq!(v1["verdict"], "fail");
    let up = distinct_uploads(&v1);
    for canary in ["imei", "phone", "contacts[0]", "contacts[1]", "contacts[2]"] {
        assert!(
            up.contains(&(
                canary.into(),
                "raw".into(),
                "api.account.kestrel.example".into(),
                "POST /v1/register".into(),
                "consent_declined".into()
            )),
            "v1 {canary}: {up:#?}"
        );
    }
    let v2 = report(&out.join("cloudsync-container-v2-fix"));
    assert_eq!(v2["verdict"], "fail");
    assert_eq!(v2["judgement"]["claims"][0]["verdict"], "BROKEN");
    let up = distinct_uploads(&v2);
    let expected: Vec<_> = [
        ("contacts[0]", "sha1>hex"),
        ("contacts[1]", "sha1>hex"),
        ("contacts[2]", "sha1>hex"),
        ("imei", "base64"),
    ]
    .iter()
    .map(|(c, e)| {
        (
            c.to_string(),
            e.to_string(),
            "sync.kestrel.example".to_string(),
            "POST /v2/sync".to_string(),
            "consent_declined".to_string(),
        )
    })
    .collect();
    assert_eq!(up, expected);
    let v3 = report(&out.join("cloudsync-container-v3"));
    assert_eq!(v3["verdict"], "pass");
    assert!(distinct_uploads(&v3).is_empty());
    // The reboot step restarted the container and the uploads went on after it.
    for r in [&v1, &v2] {
        let reboot = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "reboot")
            .unwrap();
        assert_eq!(reboot["outcome"], "ok");
        let after = reboot["end_ns"].as_u64().unwrap();
        assert!(
            r["vnet"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "http" && e["ts"].as_u64().unwrap_or(0) > after),
            "no upload after the restart"
        );
        assert_eq!(r["vnet"]["frames_dropped"], 0);
        assert!(
            r["vnet"]["port_errors"].as_array().unwrap().is_empty(),
            "{}",
            r["vnet"]
        );
    }
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("cloudsync-container-v1/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["emulator"][0], "docker:telltale-demo/cloudsync:v1");
    assert_clean("after the demo runs");
    let _ = std::fs::remove_dir_all(&out);
}

fn scenario(dir: &Path, name: &str, image: &str, steps: &str) -> PathBuf {
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &p,
        format!("name: {name}\ntarget:\n  kind: container\n  image: {image}\n  boot_timeout: 4s\nidentity: {{seed: 1}}\nsteps:\n{steps}"),
    )
    .unwrap();
    p
}

fn failures_are_reported_and_leave_nothing_and_keep_keeps() {
    if skip(unsupported()) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_clean("before");
    let dir = workdir("fail");
    let out = dir.join("out");

    // An image that is not there (and no registry to pull it from).
    let s = scenario(
        &dir,
        "missing",
        "telltale-demo/no-such-image:v0",
        "  - idle: 1s\n",
    );
    let o = Command::new(bin())
        .args(["run", "--allow-host=files"])
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(all.contains("telltale-demo/no-such-image:v0"), "{all}");
    assert_clean("after a missing image");

    // A container that never prints the awaited line.
    let s = scenario(
        &dir,
        "never",
        "telltale-demo/cloudsync:v3",
        "  - wait_for: never printed\n",
    );
    let o = Command::new(bin())
        .args(["run", "--allow-host=files"])
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(
        all.contains("timed out after 4s") && all.contains("telltale-demo: ready"),
        "{all}"
    );
    assert_clean("after a boot timeout");

    // Ctrl-C in the middle of a step: exit 130, artifacts kept, the container removed.
    let s = scenario(
        &dir,
        "interrupted",
        "telltale-demo/cloudsync:v1",
        "  - wait_for: \"telltale-demo: ready\"\n  - idle: 60s\n",
    );
    let mut child = Command::new(bin())
        .args(["run", "--allow-host=files"])
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let console = out.join("interrupted/console.log");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&console)
        .unwrap_or_default()
        .contains("telltale-demo: ready")
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "never got ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(report(&out.join("interrupted"))["verdict"], "interrupted");
    assert_clean("after Ctrl-C");

    // --keep leaves the container for debugging.
    let s = scenario(
        &dir,
        "kept",
        "telltale-demo/cloudsync:v3",
        "  - wait_for: \"telltale-demo: ready\"\n",
    );
    let o = Command::new(bin())
        .args(["run", "--keep", "--allow-host=files"])
        .arg(&s)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let (kept, taps) = leftovers();
    assert_eq!(kept.len(), 1, "{all}");
    assert!(
        all.contains("kept container") && all.contains(&kept[0]),
        "{all}"
    );
    assert!(taps.is_empty(), "{taps:?}");
    Command::new("docker")
        .args(["rm", "-f", &kept[0]])
        .output()
        .unwrap();
    assert_clean("after removing the kept container");
    let _ = std::fs::remove_dir_all(&dir);
}

tests!(
    demo_container_releases_behave_as_under_qemu,
    failures_are_reported_and_leave_nothing_and_keep_keeps,
);
