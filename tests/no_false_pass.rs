//! A PASS means "read everything, found nothing". Runs over captures the tests write (`kind: capture`, so
//! nothing boots): what telltale could not read makes a rule or claim INCONCLUSIVE (exit 4) unless the
//! policy accepts it; a scenario without a policy forbids every canary; a phase that never ran is never
//! "held"; `verify` never says FIXED over traffic the after-run could not read.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::runs::workdir;
use telltale::app::{self, RunRequest};
use telltale::record::{ClaimStatus, RuleStatus, Verdict};
use telltale::runner::NoProgress;
use telltale::synth::{Side, Synth, Tcp};
use telltale::ExitCode;

const IMEI: &str = "356938035643809";

/// TLS application-data records of pseudo-random bytes (what an upload over TLS looks like without keys).
fn app_data(n: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut x = u32::from(seed) | 1;
    let mut left = n;
    while left > 0 {
        let len = left.min(1200);
        out.extend_from_slice(&[0x17, 3, 3]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push(x as u8);
        }
        left -= len;
    }
    out
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// 300 datagrams 1 ms apart so phases can be placed by offset.
fn filler(s: &mut Synth, n: u16) {
    for i in 0..n {
        s.udp(
            addr("10.77.0.10:5000"),
            addr("10.77.0.1:9"),
            &i.to_be_bytes(),
        );
    }
}

/// A TLS connection to `sni`: the hello at once, `before` bytes of application data, then (after `gap`
/// datagrams) `after` more bytes on the same connection (keep-alive).
fn tls_upload(s: &mut Synth, sni: &str, before: usize, gap: u16, after: usize) {
    let mut t = Tcp::new(
        addr("10.77.0.10:41000"),
        addr("198.18.0.30:443"),
        5000,
        7000,
    );
    t.open(s);
    t.send(
        s,
        Side::Client,
        &telltale::synth::tls_client_hello(sni),
        1400,
    );
    t.send(s, Side::Server, &app_data(200, 3), 1400);
    if before > 0 {
        t.send(s, Side::Client, &app_data(before, 5), 1400);
    }
    filler(s, gap);
    if after > 0 {
        t.send(s, Side::Client, &app_data(after, 7), 1400);
    }
    t.close(s);
}

struct Case {
    dir: PathBuf,
}

impl Case {
    fn new(tag: &str, capture: impl FnOnce(&mut Synth)) -> Case {
        let dir = workdir(tag);
        let mut s = Synth::ethernet();
        capture(&mut s);
        std::fs::write(dir.join("cap.pcap"), s.finish()).unwrap();
        Case { dir }
    }

    fn scenario(&self, name: &str, rest: &str) -> PathBuf {
        let p = self.dir.join(format!("{name}.yaml"));
        std::fs::write(
            &p,
            format!("name: {name}\ntarget:\n  kind: capture\n  file: cap.pcap\n{rest}identity:\n  values: {{imei: \"{IMEI}\"}}\n"),
        )
        .unwrap();
        p
    }

    fn run(&self, scenario: &Path) -> telltale::app::Batch {
        let req = RunRequest {
            out: self.dir.join("out"),
            jobs: 1,
            accel: vec!["tcg".into()],
            keep: false,
            command_line: vec![],
        };
        let scenarios = app::load_scenarios(&[scenario.to_path_buf()], Default::default()).unwrap();
        app::execute(app::plan(scenarios, &req.out), &req, Arc::new(NoProgress)).unwrap()
    }
}

fn only(b: &telltale::app::Batch) -> &telltale::record::RunReport {
    &b.runs[0]
        .outcome
        .as_ref()
        .expect("the run completed")
        .report
}

const PHASED: &str = "  phases:\n    - {name: consent_declined, at: 100ms}\n";
const FORBID_DECLINED: &str =
    "policy:\n  forbid:\n    - canaries: all\n      phases: [consent_declined]\n";

#[test]
fn no_policy_means_no_canary_may_leave() {
    let c = Case::new("nfp-default", |s| {
        common::upload(s, 40000, "api.vendor.example", &format!("imei={IMEI}"))
    });
    let b = c.run(&c.scenario("nopolicy", ""));
    let r = only(&b);
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(b.exit_code(), ExitCode::Found);
    let rule = &r.judgement.rules[0];
    assert!(rule.rule.contains("the default"), "{}", rule.rule);
    assert_eq!(rule.status(), RuleStatus::Broken);
    let shown = telltale::render::batch(&b);
    assert!(
        shown.contains("FAIL forbid: no canary may leave the device"),
        "{shown}"
    );
}

#[test]
fn tls_without_keys_in_a_forbidden_phase_is_inconclusive_not_pass() {
    let c = Case::new("nfp-tls", |s| {
        filler(s, 200);
        tls_upload(s, "sync.vendor.example", 4000, 0, 0);
    });
    let b = c.run(&c.scenario("tls", &format!("{PHASED}{FORBID_DECLINED}claims:\n  - id: C-1\n    says: nothing is sent once consent is declined\n    forbid: {{canaries: all, phases: [consent_declined]}}\n")));
    let r = only(&b);
    assert!(r.analysis.findings.is_empty(), "nothing readable was found");
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:#?}", r.judgement);
    assert_eq!(b.exit_code(), ExitCode::Inconclusive);
    let rule = &r.judgement.rules[0];
    assert_eq!(rule.status(), RuleStatus::Inconclusive);
    assert!(!rule.held);
    let why = rule.inconclusive.join("\n");
    assert!(why.contains("sync.vendor.example"), "{why}");
    assert!(why.contains("TLS without keys"), "{why}");
    assert_eq!(r.judgement.claims[0].verdict, ClaimStatus::Inconclusive);
    let shown = telltale::render::batch(&b);
    assert!(shown.contains("INCONCLUSIVE"), "{shown}");
    assert!(shown.contains("CLAIM INCONCLUSIVE  C-1"), "{shown}");
}

#[test]
fn the_policy_may_accept_named_unread_traffic() {
    let c = Case::new("nfp-accept", |s| {
        filler(s, 200);
        tls_upload(s, "sync.vendor.example", 4000, 0, 0);
    });
    let accept =
        "  accept_unread:\n    - destinations: [\"*.vendor.example\"]\n      reasons: [tls_ciphertext]\n";
    let b = c.run(&c.scenario("accepted", &format!("{PHASED}{FORBID_DECLINED}{accept}")));
    assert_eq!(only(&b).verdict, Verdict::Pass, "{:#?}", only(&b).judgement);
    // The same exception for another destination does not cover it.
    let other = "  accept_unread:\n    - destinations: [\"*.other.example\"]\n";
    let b = c.run(&c.scenario("other", &format!("{PHASED}{FORBID_DECLINED}{other}")));
    assert_eq!(only(&b).verdict, Verdict::Inconclusive);
}

#[test]
fn a_keep_alive_connection_opened_before_the_phase_counts_in_the_phase() {
    // The TLS connection opens at once (phase `boot`), idles, and sends again after the phase began.
    let c = Case::new("nfp-keepalive", |s| {
        tls_upload(s, "sync.vendor.example", 0, 300, 4000)
    });
    let b = c.run(&c.scenario("keepalive", &format!("{PHASED}{FORBID_DECLINED}")));
    let r = only(&b);
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:#?}", r.judgement);
    assert!(r.judgement.rules[0].inconclusive[0].contains("during consent_declined"));
}

#[test]
fn a_phase_that_never_ran_is_not_held() {
    let c = Case::new("nfp-phase", |s| filler(s, 10));
    // consent_declined would begin after the capture's last frame: it never ran.
    let late = "  phases:\n    - {name: consent_declined, at: 60s}\n";
    let b = c.run(&c.scenario("late", &format!("{late}{FORBID_DECLINED}")));
    let r = only(&b);
    let rule = &r.judgement.rules[0];
    assert_ne!(rule.status(), RuleStatus::Held, "{:#?}", r);
}

/// `verify` with `scenario` on the captures of `before` and `after`; its one claim must be INCONCLUSIVE.
fn verify_inconclusive(before: &Case, after: &Case, scenario: &Path) -> app::VerifyOutcome {
    let req = RunRequest {
        out: before.dir.join("verify-out"),
        jobs: 2,
        accel: vec!["tcg".into()],
        keep: false,
        command_line: vec![],
    };
    let o = app::verify(
        scenario,
        &before.dir.join("cap.pcap"),
        &after.dir.join("cap.pcap"),
        &req,
        None,
        Arc::new(NoProgress),
    )
    .unwrap();
    let v = &o.verdicts[0];
    assert_eq!(
        v.verdict,
        telltale::runner::verify::ClaimVerdict::Inconclusive,
        "{v:#?}"
    );
    o
}

#[test]
fn verify_never_says_fixed_over_unread_traffic() {
    // Before: the IMEI in plain HTTP during the phase. After: the same upload moved into TLS.
    let before = Case::new("nfp-verify-before", |s| {
        filler(s, 200);
        common::upload(s, 40000, "api.vendor.example", &format!("imei={IMEI}"));
    });
    let after = Case::new("nfp-verify-after", |s| {
        filler(s, 200);
        tls_upload(s, "sync.vendor.example", 4000, 0, 0);
    });
    let claim = "claims:\n  - id: C-1\n    says: the IMEI is no longer sent once consent is declined\n    forbid: {canaries: [imei], phases: [consent_declined]}\n";
    let scenario = before.scenario("claim", &format!("{PHASED}{FORBID_DECLINED}{claim}"));
    let o = verify_inconclusive(&before, &after, &scenario);
    let v = &o.verdicts[0];
    assert!(v.reason.contains("TLS without keys"), "{}", v.reason);
    assert_eq!(o.exit_code(), ExitCode::Inconclusive);
}

/// `verify` reads each run's own judgement of a claim: a covered phase that never ran (it would begin after
/// the capture's last frame) leaves the claim unshown, so the leak cannot be "not reproduced" either.
#[test]
fn verify_says_inconclusive_when_a_covered_phase_never_ran() {
    let before = Case::new("nfp-verify-late-before", |s| filler(s, 10));
    let after = Case::new("nfp-verify-late-after", |s| filler(s, 10));
    let late = "  phases:\n    - {name: consent_declined, at: 60s}\n";
    let claim = "claims:\n  - id: C-2\n    says: nothing is sent once consent is declined\n    forbid: {canaries: [imei], phases: [consent_declined]}\n";
    let scenario = before.scenario("late-claim", &format!("{late}{FORBID_DECLINED}{claim}"));
    let o = verify_inconclusive(&before, &after, &scenario);
    let v = &o.verdicts[0];
    assert!(
        v.reason
            .contains("the before run could not show the leak: phase consent_declined never ran"),
        "{}",
        v.reason
    );
    assert_eq!(o.exit_code(), ExitCode::Inconclusive);
}

#[test]
fn templates_reach_the_target_filled_in_or_are_refused_with_the_line() {
    use telltale::scenario::{HostCommand, Scenario, Target};
    let text = format!(
        "name: prog\ntarget:\n  kind: netns\n  command: [\"sh\", \"-c\", \"wget -q -O- http://up.example/?id={{{{imei}}}}\"]\n  env:\n    DEVICE_ID: \"{{{{imei}}}}\"\nidentity:\n  values: {{imei: \"{IMEI}\"}}\nsteps:\n  - idle: 1s\n"
    );
    let s = Scenario::parse(&text, "prog.yaml", Path::new(".")).expect("valid");
    let Target::Netns(n) = &s.target else {
        panic!("a netns target")
    };
    let HostCommand::Argv(argv) = &n.command else {
        panic!("argv")
    };
    assert_eq!(argv[2], format!("wget -q -O- http://up.example/?id={IMEI}"));
    assert_eq!(n.env, vec![("DEVICE_ID".to_string(), IMEI.to_string())]);

    // A name the identity does not have is a validation error at its line, not literal text.
    let typo = text.replace("DEVICE_ID: \"{{imei}}\"", "DEVICE_ID: \"{{imie}}\"");
    let e = Scenario::parse(&typo, "prog.yaml", Path::new(".")).expect_err("refused");
    assert_eq!(e.line, 6, "{e}");
    assert!(e.to_string().contains("imie"), "{e}");
}
