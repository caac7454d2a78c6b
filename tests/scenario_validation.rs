//! The scenario language end to end: the full example parses into the expected model, identity
//! generation is deterministic, and every class of validation error renders exactly as
//! snapshotted (file:line:col, the line, a caret, a "did you mean" where one fits).
//! Review snapshot changes with `cargo insta review`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use telltale::scenario::generate::luhn_valid;
use telltale::scenario::*;

#[allow(clippy::result_large_err)] // the error carries every problem of the file
fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, "s.yaml", Path::new("/scenarios"))
}

fn err(text: &str) -> ScenarioError {
    match parse(text) {
        Ok(s) => panic!("expected an error, parsed {s:#?}"),
        Err(e) => e,
    }
}

/// A valid scenario with `steps` and `extra` (top-level YAML) appended.
fn with(steps: &str, extra: &str) -> String {
    format!(
        "target:\n  kind: qemu\n  kernel: vmlinuz\nidentity:\n  seed: 1\n  values: {{serial: KST-000123}}\nsteps:\n{steps}{extra}"
    )
}

/// Several errors of one class, each rendered, separated by blank lines.
fn show(cases: &[&str], kind: ScenarioErrorKind) -> String {
    cases
        .iter()
        .map(|c| {
            let e = err(c);
            assert_eq!(e.kind, kind, "{e}");
            e.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new("tests/fixtures/scenarios").join(name)).unwrap()
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scenario_validation")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn full_scenario_parses_into_the_model() {
    let s = Scenario::parse(&fixture("full.yaml"), "full.yaml", Path::new("/scenarios")).unwrap();
    assert_eq!(s.name, "cloudsync-v1");
    assert_eq!(s.release.as_deref(), Some("v1"));
    let Target::Qemu(q) = &s.target else {
        unreachable!()
    };
    assert_eq!(q.arch, Arch::X86_64);
    assert_eq!(
        q.kernel,
        Path::new("/scenarios/../target/demo-images/vmlinuz")
    );
    assert_eq!(q.memory_mib, 256);
    assert_eq!(q.boot_timeout, Duration::from_secs(60));
    assert_eq!(s.steps.len(), 11);
    assert_eq!(s.steps[0].timeout, Some(Duration::from_secs(90)));
    assert_eq!(s.steps[5].label(5), "step 6 (idle, line 41)");
    assert_eq!(
        s.steps[3].label(3),
        "step 4 \"decline consent\" (shell, line 36)"
    );
    assert_eq!(s.phases(), ["boot", "consent_declined"]);

    // The identity: generated values first, then the given ones.
    let id = s.identity().unwrap();
    let names: Vec<&str> = id.canaries.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "imei",
            "phone",
            "email",
            "contacts[0]",
            "contacts[1]",
            "contacts[2]",
            "contacts[3]",
            "serial",
            "wifi[0]",
            "wifi[1]"
        ]
    );
    let StepKind::Shell { command, .. } = &s.steps[3].kind else {
        unreachable!()
    };
    let first_contact = &id.canaries[3].value;
    assert_eq!(
        s.render_template(command).unwrap(),
        format!("echo declined > /data/consent; echo {first_contact}")
    );
    let StepKind::Plant { content, .. } = &s.steps[2].kind else {
        unreachable!()
    };
    assert_eq!(s.render_template(content).unwrap().lines().count(), 4);

    // Policy helpers.
    let rule = &s.policy.forbid[0];
    assert!(rule.covers(&id.canaries[0], "api.kestrel.example", "consent_declined"));
    assert!(!rule.covers(&id.canaries[0], "api.kestrel.example", "boot"));
    assert!(!rule.covers(&id.canaries[0], "cdn.other.example", "consent_declined"));
    let r = s
        .network
        .response_for("api.account.kestrel.example", "/v1/sync")
        .unwrap();
    assert_eq!(r.body, "{\"ok\":true}");
    assert_eq!(
        s.network
            .response_for("x.kestrel.example", "/")
            .unwrap()
            .status,
        404
    );
    assert!(s.network.response_for("elsewhere.example", "/").is_none());

    // Everything else, pinned.
    insta::assert_debug_snapshot!(s);
}

#[test]
fn generation_is_deterministic_and_valid() {
    let text = with("  - idle: 1s\n", "");
    let a = parse(&text).unwrap();
    let b = parse(&text).unwrap();
    assert_eq!(a.identity(), b.identity());
    let other = parse(&text.replace("seed: 1", "seed: 2")).unwrap();
    assert_ne!(a.identity(), other.identity());
    let id = a.identity().unwrap();
    let imei = &id.canaries[0];
    assert_eq!(imei.name, "imei");
    assert_eq!(imei.value.len(), 15);
    assert!(luhn_valid(&imei.value), "{}", imei.value);
    assert!(id.canaries[1].value.starts_with("+155555501"));
    assert!(id.canaries[2].value.ends_with(".invalid"));
    // The generated identity passes the identity-file rules on its own.
    let as_file: String = id
        .canaries
        .iter()
        .map(|c| format!("{}: \"{}\"\n", c.name.replace(['[', ']'], "_"), c.value))
        .collect();
    telltale::Identity::from_yaml(&as_file, "generated").unwrap();
}

#[test]
fn load_reads_the_identity_file_and_checks_files() {
    let d = tmp_dir("load");
    std::fs::write(d.join("s.yaml"), fixture("with-identity-file.yaml")).unwrap();
    std::fs::write(d.join("ids.yaml"), fixture("ids.yaml")).unwrap();
    // No kernel yet.
    let e = Scenario::load(&d.join("s.yaml"), HostAllow::default()).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::MissingFile);
    assert_eq!((e.line, e.column), (3, 11));
    std::fs::write(d.join("vmlinuz"), b"not a kernel").unwrap();
    let s = Scenario::load(&d.join("s.yaml"), HostAllow::default()).unwrap();
    assert_eq!(s.name, "s");
    assert_eq!(s.identity().unwrap().canaries.len(), 4);
    let StepKind::Plant { content, .. } = &s.steps[0].kind else {
        unreachable!()
    };
    assert_eq!(s.render_template(content).unwrap(), "356938035643809");
    // Parsing alone leaves the identity file unread.
    let p = Scenario::parse(&fixture("with-identity-file.yaml"), "s.yaml", &d).unwrap();
    assert!(p.identity().is_none());
    assert_eq!(
        p.render_template(content).unwrap_err().kind,
        ScenarioErrorKind::Identity
    );
    let e = Scenario::load(&d.join("absent.yaml"), HostAllow::default()).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::Io);
}

// ---- one test per error class -----------------------------------------------------------

#[test]
fn error_syntax() {
    insta::assert_snapshot!(show(
        &[
            "target: [qemu, x86_64\n",
            "target:\n  kind: qemu\n    kernel: vmlinuz\n",
            "name: a\n---\nname: b\n",
        ],
        ScenarioErrorKind::Syntax
    ));
}

#[test]
fn error_duplicate() {
    let claims = "claims:\n  - id: C-1\n    says: x\n    forbid: {canaries: [all]}\n  - id: C-1\n    says: y\n    forbid: {canaries: [all]}\n";
    insta::assert_snapshot!(show(
        &[
            &with("  - idle: 1s\n    idle: 2s\n", ""),
            &with("  - idle: 1s\n", claims),
            &with("  - idle: 1s\n", "").replace("seed: 1", "seed: 1\n  generate: [imei, imei]"),
            &with("  - idle: 1s\n", "")
                .replace("seed: 1", "seed: 1\n  generate: [imei]")
                .replace("{serial: KST-000123}", "{imei: \"356938035643809\"}"),
        ],
        ScenarioErrorKind::Duplicate
    ));
}

#[test]
fn error_unknown_key() {
    insta::assert_snapshot!(show(
        &[
            &with("  - idle: 1s\n", "").replace("steps:", "stesp:"),
            &with("  - wait_for: ready\n    tiemout: 5s\n", ""),
            &with("  - idle: 1s\n", "").replace("kernel: vmlinuz", "kernel: vmlinuz\n  memroy: 1G"),
            &with("  - idle: 1s\n    expect_exit: 0\n", ""),
            &with("  - phase: x\n    timeout: 5s\n", ""),
            &with(
                "  - idle: 1s\n",
                "network:\n  dns:\n    nxdomian: [a.example]\n"
            ),
        ],
        ScenarioErrorKind::UnknownKey
    ));
}

#[test]
fn error_missing_key() {
    let e = err("");
    assert_eq!(e.kind, ScenarioErrorKind::MissingKey);
    insta::assert_snapshot!(show(
        &[
            "",
            &with("  - idle: 1s\n", "").replace("  kernel: vmlinuz\n", ""),
            "target:\n  kind: qemu\n  kernel: k\nsteps:\n  - idle: 1s\n",
            &with("  - idle: 1s\n", "").replace("seed: 1", "generate: [imei]"),
            &with("  - plant: {path: /data/x}\n", ""),
            &with(
                "  - idle: 1s\n",
                "policy:\n  forbid:\n    - phases: [boot]\n"
            ),
            &with("", "").replace("steps:\n", "steps: []\n"),
        ],
        ScenarioErrorKind::MissingKey
    ));
}

#[test]
fn error_wrong_type() {
    insta::assert_snapshot!(show(
        &[
            "- target\n",
            &with("", "").replace("steps:\n", "steps: idle\n"),
            &with("  - idle: 1s\n", "network:\n  ipv6: maybe\n"),
            &with("  - idle: 1s\n", "").replace("kernel: vmlinuz", "kernel: vmlinuz\n  cpus: lots"),
            &with("  - reboot\n", ""),
            &with("  - idle: 1s\n", "").replace(
                "  seed: 1\n  values: {serial: KST-000123}\n",
                "  - ids.yaml\n"
            ),
        ],
        ScenarioErrorKind::WrongType
    ));
}

#[test]
fn error_invalid_value() {
    insta::assert_snapshot!(show(
        &[
            &with("  - idle: 1s\n", "").replace("kernel: vmlinuz", "kernel: vmlinuz\n  cpus: -1"),
            &with("  - idle: 1s\n", "")
                .replace("kernel: vmlinuz", "kernel: vmlinuz\n  memory: lots"),
            &with("  - idle: 1s\n", "")
                .replace("kernel: vmlinuz", "kernel: vmlinuz\n  arch: x86-64"),
            &with(
                "  - idle: 1s\n",
                "network:\n  dns:\n    overrides: {time.example: 300.1.1.1}\n"
            ),
            &with(
                "  - idle: 1s\n",
                "policy:\n  allow_destinations: [\"https://api.example/\"]\n"
            ),
            &with("  - plant: {path: data/imei, content: x}\n", ""),
            &with(
                "  - idle: 1s\n",
                "policy:\n  forbid:\n    - canaries: [all, imei]\n"
            ),
            &with("  - idle: 1s\n", "")
                .replace("seed: 1", "seed: 1\n  generate: [imei, {contacts: 0}]"),
        ],
        ScenarioErrorKind::InvalidValue
    ));
}

#[test]
fn error_invalid_duration() {
    insta::assert_snapshot!(show(
        &[
            &with("  - idle: soon\n", ""),
            &with("  - wait_for: ready\n    timeout: 1.5s\n", ""),
            &with("  - idle: 0s\n", ""),
        ],
        ScenarioErrorKind::InvalidDuration
    ));
}

#[test]
fn error_unknown_step_kind() {
    insta::assert_snapshot!(show(
        &[
            &with("  - idle: 1s\n  - idel: 30s\n", ""),
            &with("  - {name: x, wiat_for: ready}\n", ""),
        ],
        ScenarioErrorKind::UnknownStepKind
    ));
}

#[test]
fn error_step_kind_count() {
    insta::assert_snapshot!(show(
        &[
            &with("  - shell: \"true\"\n    idle: 5s\n", ""),
            &with("  - { shell: \"true\", idle: 5s }\n", ""),
            &with("  - name: nothing\n", ""),
        ],
        ScenarioErrorKind::StepKindCount
    ));
}

/// A scenario with the given target (YAML lines under `target:`) and steps.
fn with_target(target: &str, steps: &str) -> String {
    format!("target:\n{target}identity:\n  seed: 1\n{steps}policy:\n  forbid: [{{canaries: all, phases: [declined]}}]\n")
}

#[test]
fn every_target_kind_parses_into_the_model() {
    let c = parse(&with_target(
        "  kind: container\n  image: telltale-demo/cloudsync:v1\n  env: {MODE: demo, EMPTY: \"\"}\n  copy: [{from: files/agent.conf, to: /etc/agent.conf}]\n  cmd: \"/init --once\"\n",
        "steps:\n  - phase: declined\n  - idle: 1s\n",
    ))
    .unwrap();
    assert_eq!(
        c.target,
        Target::Container(ContainerTarget {
            image: "telltale-demo/cloudsync".into(),
            tag: "v1".into(),
            cmd: vec!["/bin/sh".into(), "-c".into(), "/init --once".into()],
            env: vec![("MODE".into(), "demo".into()), ("EMPTY".into(), "".into())],
            copy: vec![(
                PathBuf::from("/scenarios/files/agent.conf"),
                "/etc/agent.conf".into()
            )],
            boot_timeout: Duration::from_secs(60),
        })
    );
    // A registry port is not a tag.
    let r = parse(&with_target(
        "  kind: container\n  image: registry.local:5000/fw\n",
        "steps:\n  - phase: declined\n",
    ))
    .unwrap();
    let Target::Container(rc) = &r.target else {
        panic!()
    };
    assert_eq!(
        (rc.image.as_str(), rc.tag.as_str()),
        ("registry.local:5000/fw", "latest")
    );

    let n = parse(&with_target(
        "  kind: netns\n  command: [busybox, httpd, -f]\n  workdir: home\n  boot_timeout: 5s\n",
        "steps:\n  - phase: declined\n",
    ))
    .unwrap();
    assert_eq!(
        n.target,
        Target::Netns(NetnsTarget {
            command: HostCommand::Argv(vec!["busybox".into(), "httpd".into(), "-f".into()]),
            env: vec![],
            workdir: Some(PathBuf::from("home")),
            root: false,
            boot_timeout: Duration::from_secs(5),
            user: None,
        })
    );

    let d = parse(&with_target(
        "  kind: device\n  control: {ssh: {host: 192.168.77.2, identity: keys/id}}\n  traffic: {interface: veth-lab}\n  log: logread -f\n",
        "steps:\n  - phase: declined\n",
    ))
    .unwrap();
    assert_eq!(
        d.target,
        Target::Device(DeviceTarget {
            control: DeviceControl::Ssh {
                host: "192.168.77.2".into(),
                port: 22,
                user: "root".into(),
                identity: Some(PathBuf::from("/scenarios/keys/id")),
                options: vec![],
            },
            traffic: DeviceTraffic::Interface("veth-lab".into()),
            log: Some("logread -f".into()),
            boot_timeout: Duration::from_secs(60),
        })
    );
    let a = parse(&with_target(
        "  kind: device\n  control: {adb: R58M12345}\n  traffic: {pull: {path: /sdcard/t.pcap, start: \"tcpdump -w /sdcard/t.pcap\"}}\n",
        "steps:\n  - install: apks/app-release.apk\n  - phase: declined\n",
    ))
    .unwrap();
    assert_eq!(
        a.steps[0].kind,
        StepKind::Install(PathBuf::from("/scenarios/apks/app-release.apk"))
    );
    let Target::Device(ad) = &a.target else {
        panic!()
    };
    assert_eq!(
        ad.control,
        DeviceControl::Adb {
            serial: "R58M12345".into()
        }
    );
    assert_eq!(
        ad.traffic,
        DeviceTraffic::Pull {
            path: "/sdcard/t.pcap".into(),
            start: Some("tcpdump -w /sdcard/t.pcap".into())
        }
    );

    // A capture needs no steps; its phases are declared by the target.
    let p = parse(&with_target(
        "  kind: capture\n  file: run/capture.pcap\n  phases:\n    - {name: declined, at: 2500ms}\n    - {name: later, at_epoch: \"1795300000.000000001\"}\n",
        "",
    ))
    .unwrap();
    assert!(p.steps.is_empty());
    assert_eq!(
        p.target,
        Target::Capture(CaptureTarget {
            file: PathBuf::from("/scenarios/run/capture.pcap"),
            phases: vec![
                (
                    "declined".into(),
                    PhaseStart::Offset(Duration::from_millis(2500))
                ),
                (
                    "later".into(),
                    PhaseStart::EpochNanos(1_795_300_000_000_000_001)
                ),
            ],
        })
    );
}

#[test]
fn error_target_kinds() {
    let cases = [
        (with_target("  kind: container\n  tag: v1\n", "steps:\n  - phase: declined\n"), ScenarioErrorKind::MissingKey),
        (with_target("  kind: container\n  image: x\n  copy: [{from: a, to: etc/a}]\n", "steps:\n  - phase: declined\n"), ScenarioErrorKind::InvalidValue),
        (with_target("  kind: netns\n  program: x\n", "steps:\n  - phase: declined\n"), ScenarioErrorKind::UnknownKey),
        (with_target("  kind: device\n  control: {sshh: 10.0.0.2}\n  traffic: {interface: eth1}\n", "steps:\n  - phase: declined\n"), ScenarioErrorKind::InvalidValue),
        (with_target("  kind: device\n  control: {adb: X}\n  traffic: {interface: this-name-is-too-long}\n", "steps:\n  - phase: declined\n"), ScenarioErrorKind::InvalidValue),
        (with_target("  kind: capture\n  file: c.pcap\n  phases: [{name: declined}]\n", ""), ScenarioErrorKind::MissingKey),
        (with_target("  kind: capture\n  file: c.pcap\n  phases: [{name: declined, at: 1s}]\n", "steps:\n  - shell: reboot\n"), ScenarioErrorKind::InvalidValue),
        (with_target("  kind: capture\n  file: c.pcap\n", ""), ScenarioErrorKind::UnknownPhase),
        (with_target("  kind: vm\n", "steps:\n  - phase: declined\n"), ScenarioErrorKind::InvalidValue),
        (with_target("  kind: device\n  control: {ssh: 10.0.0.2}\n  traffic: {interface: eth1}\n", "steps:\n  - install: app.apk\n  - phase: declined\n"), ScenarioErrorKind::InvalidValue),
    ];
    let shown: Vec<String> = cases
        .iter()
        .map(|(text, kind)| {
            let e = err(text);
            assert_eq!(e.kind, *kind, "{e}");
            e.to_string()
        })
        .collect();
    insta::assert_snapshot!(shown.join("\n\n"));
}

#[test]
fn error_invalid_template() {
    insta::assert_snapshot!(show(
        &[
            &with(
                "  - plant: {path: /data/imei, content: \"{{imei}} and {{imei\"}\n",
                ""
            ),
            &with("  - shell: \"echo {{contacts[x]}}\"\n", ""),
        ],
        ScenarioErrorKind::InvalidTemplate
    ));
}

#[test]
fn error_unknown_template_name() {
    insta::assert_snapshot!(show(
        &[
            &with(
                "  - plant: {path: /data/imei, content: \"IMEI={{imie}}\"}\n",
                ""
            ),
            &with(
                "  - shell: |\n      echo start\n      echo {{contacts[7]}}\n",
                ""
            ),
            &with("  - shell: \"echo {{serial[0]}}\"\n", ""),
        ],
        ScenarioErrorKind::UnknownTemplateName
    ));
}

#[test]
fn error_unknown_canary() {
    insta::assert_snapshot!(show(
        &[
            &with(
                "  - idle: 1s\n",
                "policy:\n  forbid:\n    - canaries: [imie]\n"
            ),
            &with("  - expect_no_upload: {canaries: [\"contacts[9]\"]}\n", ""),
            &with(
                "  - idle: 1s\n",
                "claims:\n  - id: C-1\n    says: x\n    forbid: {canaries: [passport]}\n"
            ),
        ],
        ScenarioErrorKind::UnknownCanary
    ));
}

#[test]
fn error_unknown_phase() {
    insta::assert_snapshot!(show(
        &[
            &with(
                "  - phase: consent_declined\n",
                "policy:\n  forbid:\n    - canaries: [all]\n      phases: [consent_declind]\n"
            ),
            &with(
                "  - idle: 1s\n",
                "claims:\n  - id: C-1\n    says: x\n    forbid: {canaries: [all], phases: [after_reset]}\n"
            ),
            &with(
                "  - expect_no_upload: {canaries: [imei], phase: declined}\n  - phase: declined\n",
                ""
            ),
        ],
        ScenarioErrorKind::UnknownPhase
    ));
}

#[test]
fn error_invalid_regex() {
    insta::assert_snapshot!(show(
        &[
            &with("  - wait_for: \"ready (\"\n", ""),
            &with("  - shell: \"true\"\n    expect_output: \"[a-\"\n", ""),
        ],
        ScenarioErrorKind::InvalidRegex
    ));
}

#[test]
fn error_missing_file() {
    let text = with("  - idle: 1s\n", "").replace(
        "kernel: vmlinuz",
        "kernel: ids.yaml\n  initrd: ../images/initrd.cpio.gz",
    );
    let s = Scenario::parse(&text, "s.yaml", Path::new("tests/fixtures/scenarios")).unwrap();
    let e = s.check_files().unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::MissingFile);
    // A directory is not a file.
    let text = with("  - idle: 1s\n", "").replace("kernel: vmlinuz", "kernel: .");
    let s = Scenario::parse(&text, "s.yaml", Path::new("tests/fixtures/scenarios")).unwrap();
    let dir = s.check_files().unwrap_err();
    insta::assert_snapshot!(format!("{e}\n\n{dir}"));
}

#[test]
fn error_identity() {
    let inline = show(
        &[
            &with("  - idle: 1s\n", "").replace("{serial: KST-000123}", "{pin: \"1234\"}"),
            &with("  - idle: 1s\n", "").replace(
                "{serial: KST-000123}",
                "{a: \"Alice Canary\", b: alice canary}",
            ),
            &with("  - idle: 1s\n", "").replace(
                "{serial: KST-000123}",
                "{serial: KST-000123, more: [abcdefgh, ~]}",
            ),
        ],
        ScenarioErrorKind::Identity,
    );
    // A bad identity file: its own error, with a note pointing back at the scenario.
    let d = tmp_dir("identity");
    std::fs::write(d.join("vmlinuz"), b"k").unwrap();
    std::fs::write(
        d.join("ids.yaml"),
        "imei: \"356938035643809\"\npin: \"12\"\n",
    )
    .unwrap();
    std::fs::write(d.join("s.yaml"), fixture("with-identity-file.yaml")).unwrap();
    let e = Scenario::load(&d.join("s.yaml"), HostAllow::default()).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::Identity);
    assert!(e.identity.is_some());
    let file = e.to_string().replace(&d.display().to_string(), "[DIR]");
    insta::assert_snapshot!(format!("{inline}\n\n{file}"));
}

#[test]
fn identity_file_names_are_checked_on_load() {
    let d = tmp_dir("names");
    std::fs::write(d.join("vmlinuz"), b"k").unwrap();
    std::fs::write(
        d.join("ids.yaml"),
        "phone: \"+15555550123\"\ncontacts: [Ottoline Vanstone]\n",
    )
    .unwrap();
    std::fs::write(d.join("s.yaml"), fixture("with-identity-file.yaml")).unwrap();
    let e = Scenario::load(&d.join("s.yaml"), HostAllow::default()).unwrap_err();
    assert_eq!(e.kind, ScenarioErrorKind::UnknownTemplateName);
    let shown = e.to_string().replace(&d.display().to_string(), "[DIR]");
    insta::assert_snapshot!(shown);
}

#[test]
fn damaged_input_never_panics() {
    let full = fixture("full.yaml");
    let mut cuts = 0;
    for (i, _) in full.char_indices() {
        // Truncated at every character, and with that character removed.
        let _ = parse(&full[..i]);
        let mut removed = full.clone();
        removed.remove(i);
        let _ = parse(&removed);
        cuts += 1;
    }
    assert!(cuts > 1000);
    for t in [
        "[".repeat(100_000),
        "{a: ".repeat(50_000),
        "- ".repeat(50_000),
        "\t\u{feff}\0:".into(),
    ] {
        assert!(parse(&t).is_err());
    }
}

/// Four typos in one file, in four places: one `validate` shows all four, each with its line and column, in
/// file order (the first is the error, the others ride along in `also`).
#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let text = "target:\n  kind: qemu\n  kernel: vmlinuz\n  memroy: 256M\nidentity:\n  seed: 1\n  values: {serial: KST-000123}\nsteps:\n  - idel: 30s\n  - phase: declined\n  - idle: soon\npolicy:\n  forbidd: [imei]\n";
    let e = err(text);
    assert_eq!(e.count(), 4, "{e}");
    let lines: Vec<usize> = std::iter::once(e.line)
        .chain(e.more().iter().map(|a| a.line))
        .collect();
    assert_eq!(lines, vec![4, 9, 11, 13], "{e}");
    insta::assert_snapshot!(e.to_string());
}
