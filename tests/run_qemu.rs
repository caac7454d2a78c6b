//! `telltale run` end to end: the demo firmware in QEMU on the vnet, and the ways a run can
//! go wrong (a guest that never prints the awaited line, QEMU killed mid-run, Ctrl-C).
//!
//! Needs `qemu-system-x86_64` and the demo images (`ci/build-demo-images`); `.ci/run` has
//! both. Elsewhere each test says why it is skipped. The missing-kernel test needs neither.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::runs::*;
use serde_json::Value;

fn images() -> PathBuf {
    repo().join("target/demo-images")
}

/// Why QEMU tests cannot run here, if they cannot.
fn unsupported() -> Option<String> {
    if !on_path("qemu-system-x86_64") {
        return Some("needs qemu-system-x86_64 (apt-get install --no-install-recommends qemu-system-x86); `.ci/run` installs it".into());
    }
    if !images().join("vmlinuz").is_file() || !images().join("cloudsync-v1.cpio.gz").is_file() {
        return Some("needs the demo images: run ci/build-demo-images (`.ci/run` does)".into());
    }
    None
}

/// QEMU processes whose command line mentions `needle` (the run's folder: the per-run disk copy
/// lives there).
fn qemus_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.starts_with("qemu-system") && cmd.contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn demo_releases_v1_and_v2_fix_fail_with_what_persisted() {
    if skip(unsupported()) {
        return;
    }
    let out = workdir("demo-fail");
    let o = run(&[
        "run",
        "--allow-host=files",
        "scenarios/cloudsync-v1.yaml",
        "scenarios/cloudsync-v2-fix.yaml",
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("CLAIM BROKEN  KST-2014-0001"), "{all}");

    // v1: everything in plain text to the account service, after consent was declined.
    let v1 = report(&out.join("cloudsync-v1"));
    assert_eq!(v1["verdict"], "fail");
    let up = uploads(&v1);
    for canary in ["imei", "phone", "contacts[0]", "contacts[1]", "contacts[2]"] {
        assert!(
            up.iter().any(|u| u.0 == canary
                && u.1 == "raw"
                && u.2 == "api.account.kestrel.example"
                && u.3 == "POST /v1/register"
                && u.4 == "consent_declined"),
            "v1 {canary}: {up:#?}"
        );
    }
    assert_eq!(v1["judgement"]["claims"][0]["verdict"], "BROKEN");

    // v2-fix: the "fix" still sends the contacts sha1-hashed and the IMEI base64-encoded.
    let v2 = report(&out.join("cloudsync-v2-fix"));
    assert_eq!(v2["verdict"], "fail");
    let up = uploads(&v2);
    for (canary, enc) in [
        ("contacts[0]", "sha1>hex"),
        ("contacts[1]", "sha1>hex"),
        ("contacts[2]", "sha1>hex"),
        ("imei", "base64"),
    ] {
        assert!(
            up.iter().any(|u| u.0 == canary
                && u.1 == enc
                && u.2 == "sync.kestrel.example"
                && u.3 == "POST /v2/sync"
                && u.4 == "consent_declined"),
            "v2-fix {canary} {enc}: {up:#?}"
        );
    }
    assert!(
        !up.iter().any(|u| u.1 == "raw" && u.4 == "consent_declined"),
        "no plain upload any more: {up:#?}"
    );
    let claim = &v2["judgement"]["claims"][0];
    assert_eq!(claim["verdict"], "BROKEN");
    assert!(claim["text"]
        .as_str()
        .unwrap()
        .contains("sync.kestrel.example POST /v2/sync"));

    // The run's records: steps, phases, the network's side, the manifest.
    for dir in [out.join("cloudsync-v1"), out.join("cloudsync-v2-fix")] {
        let r = report(&dir);
        let phases: Vec<&str> = r["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(phases, ["boot", "setup", "consent_declined"]);
        assert!(r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "ok"));
        let events = r["vnet"]["events"].as_array().unwrap();
        assert!(events
            .iter()
            .any(|e| e["event"] == "dhcp" && e["lease"]["hostname"] == "kestrel-phone"));
        assert!(events.iter().any(
            |e| e["event"] == "dns" && e["name"].as_str().unwrap().ends_with("kestrel.example")
        ));
        assert!(events
            .iter()
            .any(|e| e["event"] == "http" && e["status"] == 200));
        assert_eq!(r["vnet"]["frames_dropped"], 0);
        let m: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        let pcap = m["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["path"].as_str().unwrap().ends_with("capture.pcap"))
            .unwrap();
        let bytes = std::fs::read(dir.join("capture.pcap")).unwrap();
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(pcap["sha256"], digest.as_str());
        assert_eq!(
            m["images"].as_array().unwrap().len(),
            3,
            "kernel, initrd, disk"
        );
        // The capture analysed again from the file gives the same findings.
        let again = run(&[
            "analyze",
            dir.join("capture.pcap").to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert!(again.status.code() == Some(0) || again.status.code() == Some(1));
    }
    assert!(
        qemus_mentioning(out.to_str().unwrap()).is_empty(),
        "QEMU left running"
    );

    // The same captures as `kind: capture` targets, with the live runs' phase times: the same
    // findings, verdicts and claim verdicts, with nothing running.
    for name in ["cloudsync-v1", "cloudsync-v2-fix"] {
        let live = report(&out.join(name));
        let scenario = replay_scenario(&out, name, &live);
        let o = run(&[
            "run",
            "--allow-host=files",
            scenario.to_str().unwrap(),
            "--out",
            out.join("replay").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let again = report(&out.join("replay").join(name));
        assert_eq!(again["verdict"], live["verdict"], "{name}");
        let (mut a, mut b) = (uploads(&live), uploads(&again));
        a.sort();
        b.sort();
        assert_eq!(
            a, b,
            "{name}: findings of the replay differ from the live run"
        );
        // Rules and claims sit on other lines of the replay's scenario; the rest is equal.
        for part in ["rules", "claims"] {
            let strip = |r: &Value| -> Vec<Value> {
                let mut v = r["judgement"][part].as_array().unwrap().clone();
                for x in &mut v {
                    x.as_object_mut().unwrap().remove("line");
                }
                v
            };
            assert_eq!(strip(&again), strip(&live), "{name} {part}");
            assert!(!strip(&live).is_empty(), "{name} {part}");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// A `kind: capture` scenario over a live run's capture, with its policy and claims and the
/// live run's phase start times.
fn replay_scenario(out: &Path, name: &str, live: &Value) -> PathBuf {
    let original =
        std::fs::read_to_string(repo().join("scenarios").join(format!("{name}.yaml"))).unwrap();
    let rules = &original[original.find("\npolicy:").unwrap()..];
    let phases: String = live["phases"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|p| {
            let ns = p["start_ns"].as_u64().unwrap();
            format!(
                "    - {{name: {}, at_epoch: \"{}.{:09}\"}}\n",
                p["name"].as_str().unwrap(),
                ns / 1_000_000_000,
                ns % 1_000_000_000
            )
        })
        .collect();
    let text = format!(
        "name: {name}\ntarget:\n  kind: capture\n  file: {}\n  phases:\n{phases}identity:\n  seed: 2014\n{rules}",
        out.join(name).join("capture.pcap").display()
    );
    let path = out.join(format!("replay-{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn demo_release_v3_passes() {
    if skip(unsupported()) {
        return;
    }
    let out = workdir("demo-pass");
    let o = run(&[
        "run",
        "--allow-host=files",
        "scenarios/cloudsync-v3.yaml",
        "--out",
        out.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let r = report(&out.join("cloudsync-v3"));
    assert_eq!(r["verdict"], "pass");
    assert!(uploads(&r).is_empty(), "{:#?}", uploads(&r));
    assert_eq!(r["judgement"]["claims"][0]["verdict"], "HOLDS");
    // It still talked to its vendor (a config fetch without personal data): the run saw traffic.
    assert!(r["analysis"]["http_requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["path"] == "/v3/config"));
    assert!(all.contains("PASS"));
    let _ = std::fs::remove_dir_all(&out);
}

fn scenario_file(dir: &Path, name: &str, kernel: &Path, steps: &str) -> PathBuf {
    let img = images();
    let text = format!(
        "name: {name}\ntarget:\n  kind: qemu\n  kernel: {}\n  initrd: {}\n  disk: {}\n  append: \"console=ttyS0 quiet loglevel=3\"\nidentity:\n  seed: 1\nsteps:\n{steps}",
        kernel.display(),
        img.join("cloudsync-v3.cpio.gz").display(),
        img.join("data.img").display()
    );
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn a_kernel_that_does_not_exist_is_invalid_input_with_its_line() {
    let dir = workdir("nokernel");
    std::fs::write(dir.join("fake.cpio.gz"), b"x").unwrap();
    let p = dir.join("s.yaml");
    std::fs::write(
        &p,
        "target:\n  kind: qemu\n  kernel: missing/vmlinuz\n  initrd: fake.cpio.gz\nidentity:\n  seed: 1\nsteps:\n  - idle: 1s\n",
    )
    .unwrap();
    let o = run(&[
        "run",
        "--allow-host=files",
        p.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("s.yaml:3:"), "{all}");
    assert!(all.contains("missing/vmlinuz"), "{all}");
    assert!(!dir.join("out").exists(), "nothing was run");
    let _ = std::fs::remove_dir_all(&dir);
}

fn a_guest_that_never_prints_the_awaited_line_is_an_infrastructure_failure() {
    if skip(unsupported()) {
        return;
    }
    let dir = workdir("never");
    let p = scenario_file(
        &dir,
        "never",
        &images().join("vmlinuz"),
        // Long enough for a TCG boot to print its ready line on a loaded 2-core machine (the other QEMU tests
        // boot beside it): the console log must show the guest got that far.
        "  - name: wait for a line that never comes\n    wait_for: \"this line is never printed\"\n    timeout: 30s\n",
    );
    let out = dir.join("out");
    let o = run(&[
        "run",
        "--allow-host=files",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(
        all.contains("step 1 \"wait for a line that never comes\""),
        "{all}"
    );
    assert!(all.contains("timed out after 30s"), "{all}");
    let run_dir = out.join("never");
    let console = std::fs::read_to_string(run_dir.join("console.log")).unwrap();
    assert!(
        console.contains("telltale-demo: ready"),
        "console log kept: {console}"
    );
    assert_eq!(report(&run_dir)["verdict"], "error");
    assert!(run_dir.join("capture.pcap").is_file());
    assert!(qemus_mentioning(out.to_str().unwrap()).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `telltale run` in the background and waits until the guest is up.
fn start_until_ready(dir: &Path, name: &str) -> (Child, PathBuf) {
    let p = scenario_file(
        dir,
        name,
        &images().join("vmlinuz"),
        "  - wait_for: \"telltale-demo: ready\"\n    timeout: 120s\n  - idle: 120s\n",
    );
    let out = dir.join("out");
    let child = Command::new(bin())
        .args([
            "run",
            "--allow-host=files",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let console = out.join(name).join("console.log");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&console)
        .unwrap_or_default()
        .contains("telltale-demo: ready")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the guest did not come up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    (child, out)
}

fn qemu_killed_mid_run_ends_the_run_with_a_clear_message() {
    if skip(unsupported()) {
        return;
    }
    let dir = workdir("killed");
    let (child, out) = start_until_ready(&dir, "killed");
    let pids = qemus_mentioning(out.to_str().unwrap());
    assert_eq!(pids.len(), 1, "one QEMU for the run");
    // SAFETY: SIGKILL to the QEMU this test's telltale started.
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    let o = child.wait_with_output().unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(
        all.contains("stopped unexpectedly (killed by signal 9 (SIGKILL))"),
        "{all}"
    );
    assert!(all.contains("idle"), "names the step: {all}");
    let run_dir = out.join("killed");
    assert_eq!(report(&run_dir)["verdict"], "error");
    assert!(run_dir.join("console.log").is_file() && run_dir.join("manifest.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

fn ctrl_c_stops_qemu_keeps_the_artifacts_and_exits_130() {
    if skip(unsupported()) {
        return;
    }
    let dir = workdir("ctrlc");
    let (child, out) = start_until_ready(&dir, "ctrlc");
    assert_eq!(qemus_mentioning(out.to_str().unwrap()).len(), 1);
    let t0 = Instant::now();
    // SAFETY: SIGINT to the telltale this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(130), "{all}");
    assert!(t0.elapsed() < Duration::from_secs(30), "stopped promptly");
    assert!(all.contains("interrupted"), "{all}");
    let run_dir = out.join("ctrlc");
    let r = report(&run_dir);
    assert_eq!(r["verdict"], "interrupted");
    assert!(
        r["analysis"]["capture"]["packets"].as_u64().unwrap() > 0,
        "the capture so far was analysed"
    );
    assert!(
        qemus_mentioning(out.to_str().unwrap()).is_empty(),
        "QEMU left running"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks an evidence bundle: every file listed with the right SHA-256, nothing unlisted, both
/// images hashed, and the archive holds the same files.
fn check_bundle(bundle: &Path, image_before: &Path, image_after: &Path) -> Value {
    use sha2::Digest;
    let sha = |p: &Path| -> String {
        sha2::Sha256::digest(std::fs::read(p).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("MANIFEST.json")).unwrap())
            .unwrap();
    let listed: Vec<(String, String)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (path, digest) in &listed {
        assert_eq!(&sha(&bundle.join(path)), digest, "{path}");
    }
    for must in [
        "before/capture.pcap",
        "before/report.json",
        "before/console.log",
        "before/manifest.json",
        "after/capture.pcap",
        "after/report.json",
        "after/console.log",
        "after/manifest.json",
        "scenario.yaml",
        "verdicts.json",
    ] {
        assert!(
            listed.iter().any(|(p, _)| p == must),
            "{must} not in the manifest"
        );
    }
    assert_eq!(m["images"]["before"]["sha256"], sha(image_before).as_str());
    assert_eq!(m["images"]["after"]["sha256"], sha(image_after).as_str());
    assert_eq!(m["telltale_version"], env!("CARGO_PKG_VERSION"));
    // The archive: gzip magic, and every file's name inside.
    let archive = bundle.with_file_name(format!(
        "{}.tar.gz",
        bundle.file_name().unwrap().to_string_lossy()
    ));
    let gz = std::fs::read(&archive).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let mut tar = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    for (path, _) in &listed {
        let needle = format!("{}/{path}", bundle.file_name().unwrap().to_string_lossy());
        assert!(
            tar.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} not in the archive"
        );
    }
    m
}

fn verify_says_still_leaking_for_v2_fix_and_fixed_for_v3_with_a_checkable_bundle() {
    if skip(unsupported()) {
        return;
    }
    let out = workdir("verify");
    let (v1, v2, v3) = (
        images().join("cloudsync-v1.cpio.gz"),
        images().join("cloudsync-v2-fix.cpio.gz"),
        images().join("cloudsync-v3.cpio.gz"),
    );
    let o = run(&[
        "verify",
        "--allow-host=files",
        "scenarios/cloudsync-v1.yaml",
        "--before",
        v1.to_str().unwrap(),
        "--after",
        v2.to_str().unwrap(),
        "--out",
        out.join("a").to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("STILL LEAKING   KST-2014-0001"), "{all}");
    let m = check_bundle(&out.join("a/verify-cloudsync-v1"), &v1, &v2);
    assert_eq!(m["claims"][0]["verdict"], "STILL_LEAKING");
    assert!(m["claims"][0]["after"][0]
        .as_str()
        .unwrap()
        .contains("sync.kestrel.example"));

    let o = run(&[
        "verify",
        "--allow-host=files",
        "scenarios/cloudsync-v1.yaml",
        "--before",
        v1.to_str().unwrap(),
        "--after",
        v3.to_str().unwrap(),
        "--out",
        out.join("b").to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("FIXED           KST-2014-0001"), "{all}");
    let m = check_bundle(&out.join("b/verify-cloudsync-v1"), &v1, &v3);
    assert_eq!(m["claims"][0]["verdict"], "FIXED");
    assert!(m["claims"][0]["before"].as_array().unwrap().len() >= 4);

    // compare over the first bundle's runs: the plain upload disappeared, the hashed one appeared.
    let o = run(&[
        "compare",
        out.join("a/verify-cloudsync-v1/before").to_str().unwrap(),
        out.join("a/verify-cloudsync-v1/after").to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("APPEARED     contacts[0]  sha1>hex  sync.kestrel.example"),
        "{all}"
    );
    assert!(
        all.contains("DISAPPEARED  imei         raw       api.account.kestrel.example"),
        "{all}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

fn check_gates_on_the_accepted_snapshot_and_never_writes_it_in_ci() {
    if skip(unsupported()) {
        return;
    }
    let dir = workdir("check");
    let accepted =
        std::fs::read(repo().join("snapshots/cloudsync-v3@v3.snap")).expect("committed snapshot");
    // The same release again: unchanged. The v2-fix image under v3's name and snapshot: regression.
    let snaps = dir.join("snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    std::fs::write(snaps.join("cloudsync-v3@v3.snap"), &accepted).unwrap();
    std::fs::write(snaps.join("cloudsync-v3-regressed@v3.snap"), &accepted).unwrap();
    let v3 = std::fs::read_to_string(repo().join("scenarios/cloudsync-v3.yaml")).unwrap();
    let regressed = v3
        .replace("name: cloudsync-v3", "name: cloudsync-v3-regressed")
        .replace(
            "../target/demo-images/",
            &format!("{}/", images().display()),
        )
        .replace("cloudsync-v3.cpio.gz", "cloudsync-v2-fix.cpio.gz")
        .replace("claims:", "claims_removed_for_this_test:");
    let regressed = regressed
        .split("claims_removed_for_this_test:")
        .next()
        .unwrap()
        .to_string();
    let variant = dir.join("cloudsync-v3-regressed.yaml");
    std::fs::write(
        &variant,
        regressed.replace(
            "policy:\n  forbid:\n    - canaries: all\n      phases: [consent_declined]\n",
            "",
        ),
    )
    .unwrap();
    let o = Command::new(bin())
        .env("CI", "true")
        .args([
            "check",
            "--allow-host=files",
            "scenarios/cloudsync-v3.yaml",
            variant.to_str().unwrap(),
        ])
        .args([
            "--snapshots",
            snaps.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
            "--jobs",
            "2",
        ])
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("cloudsync-v3: snapshot unchanged"), "{all}");
    assert!(
        all.contains("cloudsync-v3-regressed: SNAPSHOT REGRESSION"),
        "{all}"
    );
    assert!(
        all.contains("+  to sync.kestrel.example"),
        "the diff shows the new destination: {all}"
    );
    assert!(all.contains("imei  base64"), "{all}");
    // CI: accepted snapshots untouched; the difference is pending.
    assert_eq!(
        std::fs::read(snaps.join("cloudsync-v3-regressed@v3.snap")).unwrap(),
        accepted
    );
    assert!(snaps.join("cloudsync-v3-regressed@v3.snap.new").is_file());
    assert!(
        !snaps.join("cloudsync-v3@v3.snap.new").exists(),
        "nothing pending when unchanged"
    );

    // No accepted snapshot in CI: fails, writes only .snap.new — byte-identical to the committed one,
    // which another run of the same release produced: snapshots are stable run after run.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = Command::new(bin())
        .env("CI", "1")
        .args([
            "check",
            "--allow-host=files",
            "scenarios/cloudsync-v3.yaml",
            "--snapshots",
            empty.to_str().unwrap(),
        ])
        .args(["--out", dir.join("out2").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("SNAPSHOT MISSING"));
    assert!(
        !empty.join("cloudsync-v3@v3.snap").exists(),
        "CI never writes accepted snapshots"
    );
    assert_eq!(
        std::fs::read(empty.join("cloudsync-v3@v3.snap.new")).unwrap(),
        accepted
    );
    // Accepting it (a person's decision, outside CI) makes it the accepted snapshot.
    let o = run(&["accept", "--snapshots", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read(empty.join("cloudsync-v3@v3.snap")).unwrap(),
        accepted
    );
    let _ = std::fs::remove_dir_all(&dir);
}

tests!(
    demo_releases_v1_and_v2_fix_fail_with_what_persisted,
    demo_release_v3_passes,
    a_kernel_that_does_not_exist_is_invalid_input_with_its_line,
    a_guest_that_never_prints_the_awaited_line_is_an_infrastructure_failure,
    qemu_killed_mid_run_ends_the_run_with_a_clear_message,
    ctrl_c_stops_qemu_keeps_the_artifacts_and_exits_130,
    verify_says_still_leaking_for_v2_fix_and_fixed_for_v3_with_a_checkable_bundle,
    check_gates_on_the_accepted_snapshot_and_never_writes_it_in_ci,
);
