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

use serde::{Deserialize, Serialize};

use crate::canary::{Canary, Identity};
use crate::report::{Direction, Finding, Report};
use crate::scenario::{ForbidRule, Scenario, StepKind};

/// One finding that breaks a rule, in words and as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Canary name (`contacts[1]`), empty for destination and volume rules.
    pub canary: String,
    /// Encoding chain (`sha1>hex`).
    pub encoding: String,
    /// Destination name (or address).
    pub destination: String,
    /// HTTP method and path, when in HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Phase of the run.
    pub phase: String,
    /// Occurrences.
    pub count: u64,
    /// Frame of the first occurrence in the capture.
    pub packet: u64,
    /// The sentence a person reads.
    pub text: String,
}

/// Which kind of rule a [`RuleResult`] is; written to `report.json` as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A policy `forbid` rule (`forbid`).
    Forbid,
    /// The policy's `allow_destinations` list (`allow_destinations`).
    AllowDestinations,
    /// A policy `max_upload_bytes` limit (`max_upload_bytes`).
    MaxUploadBytes,
    /// An in-line `expect_no_upload` step (`expect_no_upload`).
    ExpectNoUpload,
}

impl RuleKind {
    /// The name as written in scenarios and `report.json` (`forbid`, `allow_destinations`…).
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Forbid => "forbid",
            RuleKind::AllowDestinations => "allow_destinations",
            RuleKind::MaxUploadBytes => "max_upload_bytes",
            RuleKind::ExpectNoUpload => "expect_no_upload",
        }
    }
}

impl std::fmt::Display for RuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A patch claim's verdict; written to `report.json` as `HOLDS` or `BROKEN`.
///
/// A later issue adds an `Inconclusive` state (a run that cannot show the claim either
/// way); code that matches on this enum should keep matching exhaustively so that the
/// new state has to be handled wherever a verdict is shown or counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ClaimStatus {
    /// No upload the claim covers was seen (`HOLDS`).
    Holds,
    /// An upload the claim covers was seen (`BROKEN`).
    Broken,
}

impl ClaimStatus {
    /// The word as written in `report.json` (`HOLDS`, `BROKEN`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Holds => "HOLDS",
            ClaimStatus::Broken => "BROKEN",
        }
    }
}

impl std::fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    /// `forbid`, `allow_destinations`, `max_upload_bytes` or `expect_no_upload`.
    pub kind: RuleKind,
    /// The rule in words.
    pub rule: String,
    /// Line of the rule in the scenario.
    pub line: usize,
    /// Whether it held.
    pub held: bool,
    /// What broke it.
    pub violations: Vec<Violation>,
}

/// Outcome of one patch claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Advisory or ticket.
    pub id: String,
    /// The vendor's words.
    pub says: String,
    /// Line in the scenario.
    pub line: usize,
    /// `HOLDS` or `BROKEN`.
    pub verdict: ClaimStatus,
    /// What broke it.
    pub violations: Vec<Violation>,
    /// One line a person reads first.
    pub text: String,
}

/// Everything judged: `report.json`'s `judgement`, written by `run` and read back by the
/// reports (HTML, JUnit) of stored runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// Policy rules and in-line checks.
    pub rules: Vec<RuleResult>,
    /// Patch claims.
    pub claims: Vec<ClaimResult>,
}

impl Judgement {
    /// Whether anything was violated.
    pub fn violated(&self) -> bool {
        self.broken_rules() > 0 || self.broken_claims() > 0
    }

    /// Rules (and in-line checks) that did not hold.
    pub fn broken_rules(&self) -> usize {
        self.rules.iter().filter(|r| !r.held).count()
    }

    /// Claims that are broken.
    pub fn broken_claims(&self) -> usize {
        self.claims
            .iter()
            .filter(|c| c.verdict == ClaimStatus::Broken)
            .count()
    }
}

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
