//! JUnit XML for CI: every claim, policy rule and snapshot comparison of every run as a
//! test case, so a CI system shows telltale's verdicts next to the project's own tests.
//!
//! This module owns the mapping from runs to test cases: one suite `telltale`, one test case
//! per scenario × claim (`cloudsync-v2-fix::claim KST-2014-0001`), × policy rule
//! (`cloudsync-v2-fix::forbid (line 35)`) and × snapshot (`cloudsync-v2-fix::snapshot`).
//! A broken claim, violated rule or snapshot regression is a failure whose message is the
//! sentence a person reads first and whose body lists every violation. A run that could not
//! be carried out (verdict `error` or `interrupted`) is a single errored test case
//! (`cloudsync-v2-fix::run`) carrying the error. The XML itself is written by `quick-junit`;
//! the output is deterministic (no timestamps, no ids).

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::html::{diff_line_kind, diff_line_text, DiffLineKind};
use crate::record::{ClaimStatus, RuleStatus, Violation};
use crate::record::{StoredRun, Verdict};

/// Characters of a rule's text used in its test case's name (rules without a line).
pub const MAX_RULE_IN_NAME: usize = 100;
/// Violations listed in one failure body; the rest are counted.
pub const MAX_VIOLATIONS_LISTED: usize = 1000;
/// Bytes of a failure body or system-out (a snapshot diff, the violations listed).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Bytes of a failure message.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// One run to report.
#[derive(Debug, Clone)]
pub struct JunitRun<'a> {
    /// The run, as read back from `report.json`.
    pub run: &'a StoredRun,
    /// The snapshot comparison, when there was one: whether it is a regression, and the diff.
    pub snapshot: Option<(bool, String)>,
}

/// Why the XML could not be written.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// `quick-junit` could not serialise the report.
    #[error("cannot write the JUnit report: {0}")]
    Serialize(#[from] quick_junit::SerializeError),
}

/// The suite's (and the report's) name.
pub const SUITE: &str = "telltale";

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    let rest = s.len() - end;
    format!("{}\n… ({rest} more bytes)", s.get(..end).unwrap_or(""))
}

fn body(vs: &[Violation]) -> String {
    let mut lines: Vec<String> = vs
        .iter()
        .take(MAX_VIOLATIONS_LISTED)
        .map(|v| v.text.clone())
        .collect();
    if vs.len() > MAX_VIOLATIONS_LISTED {
        lines.push(format!(
            "… {} more in report.json",
            vs.len() - MAX_VIOLATIONS_LISTED
        ));
    }
    cut(&lines.join("\n"), MAX_BODY_BYTES)
}

/// An inconclusive rule or claim: a JUnit `<error type="inconclusive">`, so CI test views flag it (red or
/// "errored", never green or "skipped") and keep it apart from a proven violation (`<failure>`).
fn inconclusive(what: &str, why: &[String]) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
    let first = why.first().map(String::as_str).unwrap_or(what);
    st.set_type("inconclusive")
        .set_message(cut(&format!("inconclusive: {first}"), MAX_MESSAGE_BYTES));
    st.set_description(cut(&why.join("\n"), MAX_BODY_BYTES));
    st
}

fn failure(ty: &str, message: &str, description: &str) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
    st.set_type(ty).set_message(cut(message, MAX_MESSAGE_BYTES));
    if !description.is_empty() {
        st.set_description(description);
    }
    st
}

/// The failure message of a snapshot regression: the diff's `REGRESSION:` line and the
/// first new fact (or the first added line), in words.
fn snapshot_message(diff: &str) -> String {
    let summary = diff
        .lines()
        .find(|l| diff_line_kind(l) == DiffLineKind::Regression)
        .map(str::trim);
    let fact = diff
        .lines()
        .find_map(|l| l.strip_prefix("  + "))
        .map(str::trim)
        .or_else(|| {
            diff.lines()
                .find(|l| diff_line_kind(l) == DiffLineKind::Added)
                .map(diff_line_text)
        })
        .filter(|f| !f.is_empty());
    match (summary, fact) {
        (Some(s), Some(f)) => format!("{s} — {f}"),
        (Some(s), None) => s.to_string(),
        (None, Some(f)) => format!("privacy behaviour differs from the accepted snapshot: {f}"),
        (None, None) => "privacy behaviour differs from the accepted snapshot".to_string(),
    }
}

/// Test cases of one run, in report order: claims, rules, snapshot.
fn cases(jr: &JunitRun<'_>) -> Vec<TestCase> {
    let run = jr.run;
    let name = &run.scenario.name;
    let mut out = Vec::new();
    if matches!(run.verdict, Verdict::Error | Verdict::Interrupted) {
        let (ty, fallback) = if run.verdict == Verdict::Interrupted {
            ("interrupted", "the run was interrupted")
        } else {
            ("run error", "the run could not be carried out")
        };
        let error = run.error.as_deref().unwrap_or(fallback);
        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
        st.set_type(ty).set_message(cut(
            error.lines().next().unwrap_or(fallback),
            MAX_MESSAGE_BYTES,
        ));
        st.set_description(cut(error, MAX_BODY_BYTES));
        let mut tc = TestCase::new(format!("{name}::run"), st);
        tc.set_classname(name.as_str());
        out.push(tc);
        return out;
    }
    let j = &run.judgement;
    for c in &j.claims {
        let holds = c.verdict == ClaimStatus::Holds;
        let status = match c.verdict {
            ClaimStatus::Holds => TestCaseStatus::success(),
            ClaimStatus::Broken => failure("claim broken", &c.text, &body(&c.violations)),
            ClaimStatus::Inconclusive => inconclusive(&c.text, &c.inconclusive),
        };
        let mut tc = TestCase::new(format!("{name}::claim {}", c.id), status);
        tc.set_classname(name.as_str());
        if holds {
            tc.set_system_out(c.text.as_str());
        }
        out.push(tc);
    }
    for r in &j.rules {
        let kind = r.kind.as_str();
        let case_name = if r.line > 0 {
            format!("{name}::{kind} (line {})", r.line)
        } else {
            let rule: String = r.rule.chars().take(MAX_RULE_IN_NAME).collect();
            let more = if r.rule.chars().count() > MAX_RULE_IN_NAME {
                "…"
            } else {
                ""
            };
            format!("{name}::{kind} ({rule}{more})")
        };
        let status = if r.status() == RuleStatus::Held {
            TestCaseStatus::success()
        } else if r.status() == RuleStatus::Inconclusive {
            inconclusive(&r.rule, &r.inconclusive)
        } else {
            let first = r
                .violations
                .first()
                .map(|v| v.text.as_str())
                .unwrap_or(r.rule.as_str());
            let message = if r.violations.len() > 1 {
                format!("{first} (and {} more)", r.violations.len() - 1)
            } else {
                first.to_string()
            };
            failure("policy violated", &message, &body(&r.violations))
        };
        let mut tc = TestCase::new(case_name, status);
        tc.set_classname(name.as_str());
        if !r.rule.is_empty() {
            tc.set_system_out(format!("{kind}: {}", r.rule));
        }
        out.push(tc);
    }
    if let Some((regression, diff)) = &jr.snapshot {
        let status = if *regression {
            failure(
                "snapshot regression",
                &snapshot_message(diff),
                &cut(diff, MAX_BODY_BYTES),
            )
        } else {
            TestCaseStatus::success()
        };
        let mut tc = TestCase::new(format!("{name}::snapshot"), status);
        tc.set_classname(name.as_str());
        if !*regression && !diff.trim().is_empty() {
            tc.set_system_out(cut(diff, MAX_BODY_BYTES));
        }
        out.push(tc);
    }
    // A run must show in CI even when its judgement lists nothing, and a failed run must
    // fail there.
    let failing = out
        .iter()
        .any(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }));
    if out.is_empty() || (run.verdict == Verdict::Fail && !failing) {
        let status = if run.verdict == Verdict::Fail {
            failure(
                "run failed",
                "the run failed, but its judgement names no broken claim or rule",
                "",
            )
        } else {
            TestCaseStatus::success()
        };
        let mut tc = TestCase::new(format!("{name}::verdict"), status);
        tc.set_classname(name.as_str());
        out.push(tc);
    }
    out
}

/// JUnit XML of the runs: one suite `telltale`, one test case per scenario × claim, policy
/// rule and snapshot; errored runs give one errored case. Names that would repeat (the same
/// scenario twice) get ` #2`, ` #3`… Same input, same bytes.
pub fn junit(runs: &[JunitRun<'_>]) -> Result<String, JunitError> {
    let mut suite = TestSuite::new(SUITE);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for jr in runs {
        for mut tc in cases(jr) {
            let base = tc.name.as_str().to_string();
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                tc.name = format!("{base} #{n}").into();
            }
            suite.add_test_case(tc);
        }
    }
    let mut report = Report::new(SUITE);
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ClaimResult, Judgement, RuleKind, RuleResult};
    use serde_json::json;

    fn run(name: &str, verdict: &str, judgement: Judgement) -> StoredRun {
        let mut run: StoredRun = serde_json::from_value(json!({
            "scenario": {"name": name, "release": "v2-fix", "file": "scenarios/x.yaml"},
            "verdict": verdict, "start_ns": 1, "end_ns": 2, "phases": [],
            "judgement": {"rules": [], "claims": []},
            "analysis": {
                "format_version": 1, "telltale_version": "0.1.0",
                "capture": {"file": "c.pcap", "format": "pcap", "gzip": false, "packets": 0, "bytes": 0,
                            "first_ns": 0, "last_ns": 0, "link_types": {}, "non_ip_packets": 0,
                            "ip_fragments": 0, "malformed_packets": 0, "damaged_at": null},
                "canaries": [], "findings": [], "flows": [], "dns_queries": [], "http_requests": [],
                "tls": [], "dhcp": [], "warnings": []
            }
        }))
        .expect("test input parses");
        run.judgement = judgement;
        run
    }

    fn violation(text: &str) -> Violation {
        Violation {
            canary: "imei".into(),
            encoding: "base64".into(),
            destination: "sync.kestrel.example".into(),
            request: Some("POST /v2/sync".into()),
            phase: "consent_declined".into(),
            count: 7,
            packet: 12,
            text: text.into(),
        }
    }

    /// A rule that held when it has no violations.
    fn rule(kind: RuleKind, rule: &str, line: usize, violations: Vec<Violation>) -> RuleResult {
        RuleResult {
            inconclusive: Vec::new(),
            kind,
            rule: rule.into(),
            line,
            held: violations.is_empty(),
            violations,
        }
    }

    fn claim(
        says: &str,
        line: usize,
        verdict: ClaimStatus,
        violations: Vec<Violation>,
        text: &str,
    ) -> ClaimResult {
        ClaimResult {
            inconclusive: Vec::new(),
            id: "KST-2014-0001".into(),
            says: says.into(),
            line,
            verdict,
            violations,
            text: text.into(),
        }
    }

    fn v2_fix() -> StoredRun {
        run(
            "cloudsync-v2-fix",
            "fail",
            Judgement {
                rules: vec![
                    rule(
                        RuleKind::Forbid,
                        "no canary, in any encoding, to any destination during consent_declined",
                        35,
                        vec![
                            violation("contacts[0] (sha1>hex) sent to sync.kestrel.example POST /v2/sync during consent_declined, 7 times"),
                            violation("imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 7 times"),
                        ],
                    ),
                    rule(
                        RuleKind::AllowDestinations,
                        "only *.kestrel.example may be contacted",
                        0,
                        vec![],
                    ),
                ],
                claims: vec![claim(
                    "contacts and device identifiers are no longer uploaded without consent",
                    38,
                    ClaimStatus::Broken,
                    vec![violation("imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 7 times")],
                    "CLAIM BROKEN  KST-2014-0001  \"contacts and device identifiers are no longer uploaded without consent\"  — imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 7 times",
                )],
            },
        )
    }

    fn v3() -> StoredRun {
        run(
            "cloudsync-v3",
            "pass",
            Judgement {
                rules: vec![rule(RuleKind::Forbid, "no canary", 34, vec![])],
                claims: vec![claim(
                    "fixed",
                    37,
                    ClaimStatus::Holds,
                    vec![],
                    "CLAIM HOLDS   KST-2014-0001  \"fixed\"",
                )],
            },
        )
    }

    fn parse(xml: &str) -> Report {
        Report::deserialize_from_str(xml).expect("the XML reads back")
    }

    fn case<'r>(r: &'r Report, name: &str) -> &'r TestCase {
        r.test_suites[0]
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("no test case {name}"))
    }

    #[test]
    fn claims_rules_and_snapshots_become_test_cases() {
        let (a, b) = (v2_fix(), v3());
        let xml = junit(&[
            JunitRun {
                run: &a,
                snapshot: Some((true, "--- accepted\n+++ run\n+sync.kestrel.example imei (base64)\n-api.account.kestrel.example imei (raw)".into())),
            },
            JunitRun {
                run: &b,
                snapshot: Some((false, String::new())),
            },
        ])
        .unwrap();
        assert!(xml.contains(
            "<testsuites name=\"telltale\" tests=\"7\" skipped=\"0\" failures=\"3\" errors=\"0\">"
        ));
        let r = parse(&xml);
        assert_eq!(r.test_suites.len(), 1);
        let s = &r.test_suites[0];
        assert_eq!(s.name.as_str(), "telltale");
        assert_eq!((s.tests, s.failures, s.errors), (7, 3, 0));
        let names: Vec<&str> = s.test_cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cloudsync-v2-fix::claim KST-2014-0001",
                "cloudsync-v2-fix::forbid (line 35)",
                "cloudsync-v2-fix::allow_destinations (only *.kestrel.example may be contacted)",
                "cloudsync-v2-fix::snapshot",
                "cloudsync-v3::claim KST-2014-0001",
                "cloudsync-v3::forbid (line 34)",
                "cloudsync-v3::snapshot",
            ]
        );
        match &case(&r, "cloudsync-v2-fix::claim KST-2014-0001").status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Failure,
                message: Some(m),
                description: Some(d),
                ..
            } => {
                assert!(m.as_str().starts_with("CLAIM BROKEN  KST-2014-0001"));
                assert!(d
                    .as_str()
                    .contains("imei (base64) sent to sync.kestrel.example"));
            }
            other => panic!("claim should fail: {other:?}"),
        }
        match &case(&r, "cloudsync-v2-fix::forbid (line 35)").status {
            TestCaseStatus::NonSuccess {
                message: Some(m),
                description: Some(d),
                ..
            } => {
                assert!(m.as_str().starts_with("contacts[0] (sha1>hex) sent to"));
                assert!(m.as_str().ends_with("(and 1 more)"));
                assert_eq!(d.as_str().lines().count(), 2);
            }
            other => panic!("rule should fail: {other:?}"),
        }
        match &case(&r, "cloudsync-v2-fix::snapshot").status {
            TestCaseStatus::NonSuccess {
                message: Some(m),
                description: Some(d),
                ..
            } => {
                assert_eq!(
                    m.as_str(),
                    "privacy behaviour differs from the accepted snapshot: sync.kestrel.example imei (base64)"
                );
                assert!(d
                    .as_str()
                    .contains("-api.account.kestrel.example imei (raw)"));
            }
            other => panic!("snapshot should fail: {other:?}"),
        }
        assert!(matches!(
            case(&r, "cloudsync-v3::claim KST-2014-0001").status,
            TestCaseStatus::Success { .. }
        ));
        assert_eq!(
            case(&r, "cloudsync-v3::snapshot")
                .classname
                .as_ref()
                .map(|c| c.as_str()),
            Some("cloudsync-v3")
        );
    }

    #[test]
    fn errored_runs_are_one_errored_case() {
        let mut a = v2_fix();
        a.verdict = Verdict::Error;
        a.error =
            Some("step 1 \"boot\" (wait_for, line 21): timed out\nconsole tail: <panic>".into());
        let mut b = v3();
        b.verdict = Verdict::Interrupted;
        b.error = None;
        let xml = junit(&[
            JunitRun {
                run: &a,
                snapshot: Some((true, "+x".into())),
            },
            JunitRun {
                run: &b,
                snapshot: None,
            },
        ])
        .unwrap();
        let r = parse(&xml);
        let s = &r.test_suites[0];
        assert_eq!((s.tests, s.failures, s.errors), (2, 0, 2));
        match &case(&r, "cloudsync-v2-fix::run").status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                message: Some(m),
                description: Some(d),
                ..
            } => {
                assert_eq!(m.as_str(), "step 1 \"boot\" (wait_for, line 21): timed out");
                assert!(d.as_str().ends_with("console tail: <panic>"));
            }
            other => panic!("run should error: {other:?}"),
        }
        assert!(xml.contains("&lt;panic&gt;"));
        match &case(&r, "cloudsync-v3::run").status {
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                message: Some(m),
                ..
            } => assert_eq!(m.as_str(), "the run was interrupted"),
            other => panic!("run should error: {other:?}"),
        }
    }

    #[test]
    fn repeated_names_are_numbered_and_output_is_deterministic() {
        let a = v3();
        let runs = [
            JunitRun {
                run: &a,
                snapshot: None,
            },
            JunitRun {
                run: &a,
                snapshot: None,
            },
        ];
        let xml = junit(&runs).unwrap();
        assert_eq!(xml, junit(&runs).unwrap());
        let r = parse(&xml);
        assert!(r.test_suites[0]
            .test_cases
            .iter()
            .any(|c| c.name.as_str() == "cloudsync-v3::claim KST-2014-0001 #2"));
        assert_eq!(r.tests, 4);
        assert!(!xml.contains("timestamp"));
    }

    #[test]
    fn hostile_text_stays_text_and_empty_judgements_do_not_panic() {
        let evil = "</failure><script>x</script>\u{1b}[31m\u{0}]]>&";
        let a = run(
            evil,
            "fail",
            Judgement {
                rules: vec![rule(RuleKind::Forbid, evil, 0, vec![violation(evil)])],
                claims: vec![],
            },
        );
        let b = run("odd", "fail", Judgement::default());
        let xml = junit(&[
            JunitRun {
                run: &a,
                snapshot: Some((true, evil.into())),
            },
            JunitRun {
                run: &b,
                snapshot: None,
            },
        ])
        .unwrap();
        assert!(!xml.contains("<script>"));
        let r = parse(&xml);
        assert_eq!(r.tests, 3);
        assert_eq!(r.failures, 3);
        case(&r, "odd::verdict");
        assert!(matches!(
            &r.test_suites[0].test_cases[0].status,
            TestCaseStatus::NonSuccess { message: Some(m), .. } if m.as_str().contains("<script>x</script>")
        ));
    }

    #[test]
    fn snapshot_messages_name_the_first_new_fact() {
        let telltale = "-accepted snapshot\n+new snapshot\n────┬────\n          6 │+  lookup sync.kestrel.example\n────┴────\nREGRESSION: 2 new privacy facts\n  + consent_declined: new DNS lookup sync.kestrel.example\n  + consent_declined: imei sent to sync.kestrel.example as base64\n";
        assert_eq!(
            snapshot_message(telltale),
            "REGRESSION: 2 new privacy facts — consent_declined: new DNS lookup sync.kestrel.example"
        );
        assert_eq!(
            snapshot_message(
                "-accepted snapshot\n+new snapshot\n    1       │-a\n          1 │+  b c\n"
            ),
            "privacy behaviour differs from the accepted snapshot: b c"
        );
        assert_eq!(
            snapshot_message("REGRESSION: 1 new privacy fact\n"),
            "REGRESSION: 1 new privacy fact"
        );
        assert_eq!(
            snapshot_message("+++ b\n+\n"),
            "privacy behaviour differs from the accepted snapshot"
        );
    }

    #[test]
    fn rules_without_a_line_are_named_by_their_text_cut_short() {
        let globs = "*.example, ".repeat(40);
        let a = run(
            "s",
            "pass",
            Judgement {
                rules: vec![rule(
                    RuleKind::AllowDestinations,
                    &format!("only {globs}may be contacted"),
                    0,
                    vec![],
                )],
                claims: vec![],
            },
        );
        let r = parse(
            &junit(&[JunitRun {
                run: &a,
                snapshot: None,
            }])
            .unwrap(),
        );
        let name = r.test_suites[0].test_cases[0].name.as_str();
        assert!(name.starts_with("s::allow_destinations (only *.example, *.example"));
        assert!(name.ends_with("…)"));
        assert_eq!(
            name.chars().count(),
            "s::allow_destinations (".len() + MAX_RULE_IN_NAME + 2
        );
    }

    #[test]
    fn long_diffs_and_many_violations_are_cut() {
        let vs: Vec<Violation> = (0..MAX_VIOLATIONS_LISTED + 3)
            .map(|i| violation(&format!("v{i}")))
            .collect();
        let a = run(
            "big",
            "fail",
            Judgement {
                rules: vec![rule(RuleKind::Forbid, "r", 1, vs)],
                claims: vec![],
            },
        );
        let diff = format!("+{}", "é".repeat(MAX_BODY_BYTES));
        let xml = junit(&[JunitRun {
            run: &a,
            snapshot: Some((true, diff)),
        }])
        .unwrap();
        assert!(xml.contains("… 3 more in report.json"));
        assert!(xml.contains("more bytes)"));
        assert!(xml.len() < 2 * MAX_BODY_BYTES + 2 * MAX_MESSAGE_BYTES + 4096);
    }
}
