//! Judging a run: the scenario's policy, its patch claims and its in-line upload checks,
//! applied to the analysis report. Pure: a scenario and a report in, results out.
//!
//! This module owns what counts as a violation:
//! - a `forbid` rule (or a claim, or an `expect_no_upload` step) is broken by every
//!   *upload* finding (device → network) whose canary, destination and phase it covers;
//! - `allow_destinations` is broken by every conversation with a destination no glob
//!   allows, apart from the network's own services (DHCP, and DNS to the gateway);
//! - `max_upload_bytes` is broken when the payload bytes sent to the destinations one glob
//!   matches exceed its limit.

use crate::canary::{Canary, Identity};
use crate::report::{Direction, Finding, Report};
use crate::scenario::{ForbidRule, Scenario, StepKind};

pub use crate::record::{ClaimResult, ClaimStatus, Judgement, RuleKind, RuleResult, Violation};

/// Phase of a finding (`boot` when the analysis had no phases).
pub fn phase_of(f: &Finding) -> &str {
    f.phase.as_deref().unwrap_or(crate::scenario::INITIAL_PHASE)
}

fn canary_of<'a>(identity: &'a Identity, name: &str) -> Option<&'a Canary> {
    identity.canaries.iter().find(|c| c.name == name)
}

/// Upload findings a rule covers, one violation per (canary, encoding, destination, request,
/// phase) with the occurrences of every conversation added up.
fn covered(rule: &ForbidRule, identity: &Identity, report: &Report) -> Vec<Violation> {
    let mut out: Vec<Violation> = Vec::new();
    for f in &report.findings {
        if f.direction != Direction::Up {
            continue;
        }
        let Some(canary) = canary_of(identity, &f.canary) else {
            continue;
        };
        let phase = phase_of(f);
        if !rule.covers(canary, &f.destination, phase) {
            continue;
        }
        let request = f.request();
        if let Some(v) = out.iter_mut().find(|v| {
            v.canary == f.canary
                && v.encoding == f.encoding
                && v.destination == f.destination
                && v.request == request
                && v.phase == phase
        }) {
            v.count += f.count;
            v.packet = v.packet.min(f.packet);
            continue;
        }
        out.push(Violation {
            canary: f.canary.clone(),
            encoding: f.encoding.clone(),
            destination: f.destination.clone(),
            request,
            phase: phase.to_string(),
            count: f.count,
            packet: f.packet,
            text: String::new(),
        });
    }
    for v in &mut out {
        let at = match &v.request {
            Some(r) => format!("{} {r}", v.destination),
            None => v.destination.clone(),
        };
        let times = if v.count == 1 {
            "once".to_string()
        } else {
            format!("{} times", v.count)
        };
        v.text = format!(
            "{} ({}) sent to {at} during {}, {times}",
            v.canary, v.encoding, v.phase
        );
    }
    out
}

fn describe_forbid(rule: &ForbidRule) -> String {
    let what = match &rule.canaries {
        crate::scenario::CanarySelection::All => "canary".to_string(),
        crate::scenario::CanarySelection::Names(n) => n.join(", "),
    };
    let to = if rule.destinations.is_empty() {
        "any destination".to_string()
    } else {
        rule.destinations
            .iter()
            .map(|g| g.as_str().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let during = if rule.phases.is_empty() {
        String::new()
    } else {
        format!(" during {}", rule.phases.join(", "))
    };
    format!("no {what}, in any encoding, to {to}{during}")
}

/// Judges a run.
pub fn judge(scenario: &Scenario, identity: &Identity, report: &Report) -> Judgement {
    let mut j = Judgement::default();
    for rule in &scenario.policy.forbid {
        let violations = covered(rule, identity, report);
        j.rules.push(RuleResult {
            kind: RuleKind::Forbid,
            rule: describe_forbid(rule),
            line: rule.line,
            held: violations.is_empty(),
            violations,
        });
    }
    if let Some(allowed) = &scenario.policy.allow_destinations {
        let mut violations = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for flow in &report.flows {
            if flow.is_network_service() || allowed.iter().any(|g| g.matches(&flow.destination)) {
                continue;
            }
            if seen.insert(flow.destination.clone()) {
                violations.push(Violation {
                    canary: String::new(),
                    encoding: String::new(),
                    destination: flow.destination.clone(),
                    request: None,
                    phase: String::new(),
                    count: report
                        .flows
                        .iter()
                        .filter(|f| f.destination == flow.destination)
                        .count() as u64,
                    packet: flow.first_packet,
                    text: format!(
                        "{} ({} {}) is not an allowed destination",
                        flow.destination, flow.protocol, flow.server
                    ),
                });
            }
        }
        j.rules.push(RuleResult {
            kind: RuleKind::AllowDestinations,
            rule: format!(
                "only {} may be contacted",
                allowed
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            line: 0,
            held: violations.is_empty(),
            violations,
        });
    }
    for (glob, limit) in &scenario.policy.max_upload_bytes {
        let sent: u64 = report
            .flows
            .iter()
            .filter(|f| glob.matches(&f.destination))
            .map(|f| f.bytes_up)
            .sum();
        let violations = if sent > *limit {
            vec![Violation {
                canary: String::new(),
                encoding: String::new(),
                destination: glob.as_str().to_string(),
                request: None,
                phase: String::new(),
                count: 1,
                packet: 0,
                text: format!("{sent} bytes uploaded to {}, limit {limit}", glob.as_str()),
            }]
        } else {
            Vec::new()
        };
        j.rules.push(RuleResult {
            kind: RuleKind::MaxUploadBytes,
            rule: format!("at most {limit} bytes to {}", glob.as_str()),
            line: 0,
            held: violations.is_empty(),
            violations,
        });
    }
    for step in &scenario.steps {
        if let StepKind::ExpectNoUpload(check) = &step.kind {
            let rule = ForbidRule {
                canaries: check.canaries.clone(),
                destinations: check.destinations.clone(),
                phases: check.phase.iter().cloned().collect(),
                line: step.line,
            };
            let violations = covered(&rule, identity, report);
            j.rules.push(RuleResult {
                kind: RuleKind::ExpectNoUpload,
                rule: describe_forbid(&rule),
                line: step.line,
                held: violations.is_empty(),
                violations,
            });
        }
    }
    for claim in &scenario.claims {
        let violations = covered(&claim.forbid, identity, report);
        let (verdict, text) = if violations.is_empty() {
            (
                ClaimStatus::Holds,
                format!("CLAIM HOLDS   {}  \"{}\"", claim.id, claim.says),
            )
        } else {
            let first = &violations[0];
            let more = if violations.len() > 1 {
                format!(" (and {} more)", violations.len() - 1)
            } else {
                String::new()
            };
            (
                ClaimStatus::Broken,
                format!(
                    "CLAIM BROKEN  {}  \"{}\"  — {}{more}",
                    claim.id, claim.says, first.text
                ),
            )
        };
        j.claims.push(ClaimResult {
            id: claim.id.clone(),
            says: claim.says.clone(),
            line: claim.line,
            verdict,
            violations,
            text,
        });
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation() -> Violation {
        Violation {
            canary: "imei".into(),
            encoding: "base64".into(),
            destination: "sync.kestrel.example".into(),
            request: Some("POST /v2/sync".into()),
            phase: "consent_declined".into(),
            count: 2,
            packet: 12,
            text: "imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times".into(),
        }
    }

    #[test]
    fn judgement_json_keeps_its_field_names_and_words() {
        let kinds = [
            RuleKind::Forbid,
            RuleKind::AllowDestinations,
            RuleKind::MaxUploadBytes,
            RuleKind::ExpectNoUpload,
        ];
        let j = Judgement {
            rules: kinds
                .iter()
                .map(|&kind| RuleResult {
                    kind,
                    rule: "r".into(),
                    line: 3,
                    held: kind != RuleKind::Forbid,
                    violations: if kind == RuleKind::Forbid {
                        vec![violation()]
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            claims: vec![
                ClaimResult {
                    id: "KST-1".into(),
                    says: "fixed".into(),
                    line: 38,
                    verdict: ClaimStatus::Broken,
                    violations: vec![Violation {
                        request: None,
                        ..violation()
                    }],
                    text: "CLAIM BROKEN  KST-1".into(),
                },
                ClaimResult {
                    id: "KST-2".into(),
                    says: "fixed".into(),
                    line: 39,
                    verdict: ClaimStatus::Holds,
                    violations: Vec::new(),
                    text: "CLAIM HOLDS   KST-2".into(),
                },
            ],
        };
        let text = serde_json::to_string(&j).expect("serialises");
        assert_eq!(
            text,
            concat!(
                r#"{"rules":[{"kind":"forbid","rule":"r","line":3,"held":false,"violations":[{"canary":"imei","encoding":"base64","destination":"sync.kestrel.example","request":"POST /v2/sync","phase":"consent_declined","count":2,"packet":12,"text":"imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times"}]},"#,
                r#"{"kind":"allow_destinations","rule":"r","line":3,"held":true,"violations":[]},"#,
                r#"{"kind":"max_upload_bytes","rule":"r","line":3,"held":true,"violations":[]},"#,
                r#"{"kind":"expect_no_upload","rule":"r","line":3,"held":true,"violations":[]}],"#,
                r#""claims":[{"id":"KST-1","says":"fixed","line":38,"verdict":"BROKEN","violations":[{"canary":"imei","encoding":"base64","destination":"sync.kestrel.example","phase":"consent_declined","count":2,"packet":12,"text":"imei (base64) sent to sync.kestrel.example POST /v2/sync during consent_declined, 2 times"}],"text":"CLAIM BROKEN  KST-1"},"#,
                r#"{"id":"KST-2","says":"fixed","line":39,"verdict":"HOLDS","violations":[],"text":"CLAIM HOLDS   KST-2"}]}"#
            )
        );
        let back: Judgement = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, j);
        assert!(j.violated());
        assert_eq!((j.broken_rules(), j.broken_claims()), (1, 1));
        for k in kinds {
            assert_eq!(
                serde_json::to_value(k).expect("serialises"),
                serde_json::json!(k.as_str())
            );
            assert_eq!(k.to_string(), k.as_str());
        }
    }
}
