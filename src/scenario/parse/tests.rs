//! Whole scenarios through the conversion: defaults, typing, generated identities, canary
//! selections, phases, step forms, anchors and positions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::scenario;
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::generate::{Generate, DEFAULT_CONTACTS};
use crate::scenario::values::Glob;
use crate::scenario::*;

const MIN: &str =
    "target: {kind: qemu, kernel: vmlinuz}\nidentity: ids.yaml\nsteps:\n  - idle: 5\n";

fn ok(text: &str) -> Scenario {
    match scenario(text, "dir/min.yaml", Path::new("/base")) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn kind(text: &str) -> K {
    scenario(text, "s.yaml", Path::new("/base"))
        .expect_err("should fail")
        .kind
}

#[test]
fn defaults_of_a_minimal_scenario() {
    let s = ok(MIN);
    assert_eq!(s.name, "min");
    assert_eq!(s.release, None);
    let q = s.target.as_qemu().expect("a qemu target");
    assert_eq!(q.arch, Arch::X86_64);
    assert_eq!(q.kernel, Path::new("/base/vmlinuz"));
    assert_eq!((q.memory_mib, q.cpus), (DEFAULT_MEMORY_MIB, 1));
    assert_eq!(q.boot_timeout, DEFAULT_BOOT_TIMEOUT);
    assert_eq!(
        (q.initrd.as_ref(), q.disk.as_ref(), q.append.as_ref()),
        (None, None, None)
    );
    assert_eq!(
        s.identity,
        IdentitySpec::File(PathBuf::from("/base/ids.yaml"))
    );
    assert!(s.identity().is_none());
    assert_eq!(s.network, NetworkSpec::default());
    assert_eq!(s.policy, Policy::default());
    assert_eq!(s.steps[0].kind, StepKind::Idle(Duration::from_secs(5)));
    assert_eq!(s.steps[0].line, 4);
    // Names in templates and rules wait for the identity file.
    let s = ok(&format!(
        "{MIN}  - shell: \"echo {{{{anything}}}}\"\npolicy:\n  forbid:\n    - canaries: [whatever]\n"
    ));
    assert_eq!(s.steps.len(), 2);
}

#[test]
fn absolute_paths_stay_and_numbers_are_typed() {
    let t = "target:\n  kind: qemu\n  kernel: /abs/vmlinuz\n  arch: aarch64\n  memory: 1024\n  cpus: 4\n  boot_timeout: 2m\nidentity: {values: {serial: \"0123456\"}}\nsteps: [{idle: 500ms}]\n";
    let s = ok(t);
    let q = s.target.as_qemu().expect("a qemu target");
    assert_eq!(q.kernel, Path::new("/abs/vmlinuz"));
    assert_eq!((q.arch, q.memory_mib, q.cpus), (Arch::Aarch64, 1024, 4));
    assert_eq!(q.boot_timeout, Duration::from_secs(120));
    // Scalars keep their source text: the leading zero survives.
    assert_eq!(s.identity().unwrap().canaries[0].value, "0123456");
    // A quoted number is a string, not a number.
    assert_eq!(kind(&t.replace("cpus: 4", "cpus: \"4\"")), K::WrongType);
    assert_eq!(kind(&t.replace("cpus: 4", "cpus: 65")), K::InvalidValue);
}

#[test]
fn seed_alone_generates_everything() {
    let s = ok("target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps: [{idle: 1s}]\n");
    let IdentitySpec::Inline(i) = &s.identity else {
        panic!()
    };
    assert_eq!(
        i.generate,
        [
            Generate::Imei,
            Generate::Phone,
            Generate::Email,
            Generate::Contacts(DEFAULT_CONTACTS)
        ]
    );
    assert_eq!(s.identity().unwrap().canaries.len(), 3 + DEFAULT_CONTACTS);
    assert_eq!(
        kind("target: {kind: qemu, kernel: k}\nidentity: {}\nsteps: [{idle: 1s}]\n"),
        K::WrongType
    );
}

#[test]
fn canary_selection_forms() {
    let base = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps: [{idle: 1s}]\npolicy:\n  forbid:\n";
    let s = ok(&format!("{base}    - canaries: all\n    - canaries: [all]\n    - canaries: [imei, \"contacts[2]\"]\n"));
    assert_eq!(s.policy.forbid[0].canaries, CanarySelection::All);
    assert_eq!(s.policy.forbid[1].canaries, CanarySelection::All);
    assert_eq!(
        s.policy.forbid[2].canaries,
        CanarySelection::Names(vec!["imei".into(), "contacts[2]".into()])
    );
    assert_eq!(
        kind(&format!("{base}    - canaries: []\n")),
        K::InvalidValue
    );
    assert_eq!(kind(&format!("{base}    - canaries: imei\n")), K::WrongType);
    assert_eq!(
        kind(&format!("{base}    - canaries: [\"contacts[3]\"]\n")),
        K::UnknownCanary
    );
}

#[test]
fn phases_and_expect_steps() {
    let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - expect_no_upload: {canaries: [all], phase: boot}\n  - phase: a\n  - expect_no_upload: {canaries: [imei], phase: a, destinations: [\"*.x.example\"]}\n  - phase: b\n  - phase: a\npolicy:\n  forbid: [{canaries: [all], phases: [b, boot]}]\n";
    let s = ok(t);
    assert_eq!(s.phases(), ["boot", "a", "b"]);
    let StepKind::ExpectNoUpload(c) = &s.steps[2].kind else {
        panic!()
    };
    assert_eq!(c.phase.as_deref(), Some("a"));
    assert_eq!(c.destinations, [Glob::new("*.x.example")]);
    assert_eq!(
        kind(&t.replace("phases: [b, boot]", "phases: [c]")),
        K::UnknownPhase
    );
    assert_eq!(
        kind(&t.replace("- phase: b", "- phase: \"b c\"")),
        K::InvalidValue
    );
}

#[test]
fn step_forms() {
    let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - reboot:\n  - host: [a, b]\n  - host: echo hi\n  - shell: x\n    expect_exit: -1\n  - wait_for: ok\n    name: up\n    timeout: 3s\n";
    let s = ok(t);
    assert_eq!(s.steps[0].kind, StepKind::Reboot { wait_for: None });
    assert_eq!(
        s.steps[1].kind,
        StepKind::Host(HostCommand::Argv(vec!["a".into(), "b".into()]))
    );
    assert_eq!(
        s.steps[2].kind,
        StepKind::Host(HostCommand::Shell("echo hi".into()))
    );
    let StepKind::Shell { expect_exit, .. } = &s.steps[3].kind else {
        panic!()
    };
    assert_eq!(*expect_exit, Some(-1));
    assert_eq!(s.steps[4].name.as_deref(), Some("up"));
    assert_eq!(s.steps[4].timeout, Some(Duration::from_secs(3)));
    assert_eq!(
        kind(&t.replace("host: [a, b]", "host: []")),
        K::InvalidValue
    );
    assert_eq!(
        kind(&t.replace("shell: x", "shell: \" \"")),
        K::InvalidValue
    );
    assert_eq!(
        kind(&t.replace("expect_exit: -1", "expect_exit: zero")),
        K::WrongType
    );
    assert_eq!(
        kind(&t.replace("reboot:", "reboot: {wiat_for: x}")),
        K::UnknownKey
    );
}

#[test]
fn anchors_are_expanded() {
    let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - &nap {idle: 2s}\n  - *nap\n";
    let s = ok(t);
    assert_eq!(s.steps.len(), 2);
    assert_eq!(s.steps[1].kind, StepKind::Idle(Duration::from_secs(2)));
    assert_eq!(s.steps[1].line, 5);
}

#[test]
fn template_positions_point_at_the_braces() {
    let t = "target: {kind: qemu, kernel: k}\nidentity: {seed: 9}\nsteps:\n  - shell: >\n      echo {{imei}}\n      and {{imie}}\n";
    let e = scenario(t, "s.yaml", Path::new("/")).unwrap_err();
    assert_eq!(e.kind, K::UnknownTemplateName);
    assert_eq!((e.line, e.column), (6, 11));
}

#[test]
fn oversized_input_is_refused() {
    let big = format!("# {}\n", "x".repeat(MAX_SCENARIO_BYTES));
    assert_eq!(kind(&big), K::Syntax);
}

#[test]
fn network_tls_forms() {
    assert!(ok(MIN).network.tls.intercept, "intercept by default");
    let s = ok(&format!("{MIN}network:\n  tls: off\n"));
    assert_eq!(
        s.network.tls,
        TlsSpec {
            intercept: false,
            except: vec![]
        }
    );
    let s = ok(&format!(
        "{MIN}network:\n  tls: {{mode: intercept, except: [\"*.Bank.example\", 198.51.100.9]}}\n"
    ));
    assert!(s.network.tls.intercept);
    assert_eq!(s.network.tls.except.len(), 2);
    assert_eq!(s.network.tls.except[1], "198.51.100.9");
    assert_eq!(
        kind(&format!("{MIN}network:\n  tls: mitm\n")),
        K::InvalidValue
    );
    assert_eq!(
        kind(&format!("{MIN}network:\n  tls: {{mode: off, pin: x}}\n")),
        K::UnknownKey
    );
    assert_eq!(
        kind(&format!("{MIN}network:\n  tls: {{except: [\"a b\"]}}\n")),
        K::InvalidValue
    );
}
