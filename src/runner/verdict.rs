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
//!
//! And what cannot be said to hold: a `forbid` rule, check or claim that nothing broke is INCONCLUSIVE when
//! the run did not complete, when a phase it covers never ran, or when bytes the device sent to a destination
//! it covers, during a phase it covers, could not be read (TLS without keys…) and the policy does not accept
//! them (`accept_unread`). A scenario without any policy rule gets the default rule: no canary may leave the
//! device.

use crate::canary::{Canary, Identity};
use crate::record::PhaseSpan;
use crate::report::{Direction, Finding, Report};
use crate::scenario::{CanarySelection, ForbidRule, Policy, Scenario, StepKind};

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

/// What the run observed besides the analysis: the phases that ran (with their spans) and whether it
/// completed (a run that failed or was interrupted did not observe what it did not reach).
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The phases that ran.
    pub phases: &'a [PhaseSpan],
    /// Whether every step ran.
    pub completed: bool,
}

/// The words of the default rule, used when a scenario has no policy.
pub const DEFAULT_RULE: &str =
    "no canary may leave the device, in any encoding, to any destination (the default: the scenario has no policy)";

/// Bytes the analysis could not read, to one destination during one phase, for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    /// Destination name (or address).
    pub destination: String,
    /// Phase during which the bytes were (or may have been) sent.
    pub phase: String,
    /// Why they could not be read (the report's word: `tls_ciphertext`, `tcp_gap`…).
    pub reason: &'static str,
    /// How many bytes (an upper bound when a conversation spans several phases).
    pub bytes: u64,
}

/// What the device sent that the analysis could not read (the report's visibility account), by destination,
/// phase and reason. Only uploads count (device → network), and capture damage, whose bytes could have been
/// anything sent anywhere. Each span carries the phase its bytes were sent in, so a keep-alive connection
/// opened before a phase still makes that phase's rules inconclusive.
pub fn unread(report: &Report, phases: &[PhaseSpan]) -> Vec<Unread> {
    use crate::report::UnreadReason;
    let mut out: Vec<Unread> = Vec::new();
    for s in &report.unread {
        let damage = s.reason == UnreadReason::CaptureDamage;
        if s.direction != Direction::Up && !damage {
            continue;
        }
        let phase = s
            .phase
            .clone()
            .unwrap_or_else(|| phase_at(phases, s.first_ns).to_string());
        let reason = s.reason.as_str();
        match out
            .iter_mut()
            .find(|u| u.destination == s.destination && u.phase == phase && u.reason == reason)
        {
            Some(u) => u.bytes += s.bytes,
            None => out.push(Unread {
                destination: s.destination.clone(),
                phase,
                reason,
                bytes: s.bytes,
            }),
        }
    }
    out
}

/// The phase running at `ns` (the first phase before any began).
fn phase_at(phases: &[PhaseSpan], ns: u64) -> &str {
    phases
        .iter()
        .rev()
        .find(|p| p.start_ns <= ns)
        .or(phases.first())
        .map_or(crate::scenario::INITIAL_PHASE, |p| p.name.as_str())
}

/// Why a forbid rule (or check, or claim) that nothing broke cannot be said to hold; empty when it holds.
fn inconclusive(
    rule: &ForbidRule,
    policy: &Policy,
    observed: &Observed<'_>,
    unread: &[Unread],
) -> Vec<String> {
    let mut why = Vec::new();
    if !observed.completed {
        why.push(
            "the run did not complete, so it did not observe everything this covers".to_string(),
        );
    }
    for phase in &rule.phases {
        // A phase that began when the run (or the capture) was over lasted no time: nothing in it was seen.
        if !observed
            .phases
            .iter()
            .any(|p| &p.name == phase && p.end_ns > p.start_ns)
        {
            why.push(format!("phase {phase} never ran"));
        }
    }
    let covers = |u: &Unread| {
        (rule.destinations.is_empty()
            || rule.destinations.iter().any(|g| g.matches(&u.destination)))
            && (rule.phases.is_empty() || rule.phases.contains(&u.phase))
    };
    for u in unread.iter().filter(|u| covers(u)) {
        if policy
            .accept_unread
            .iter()
            .any(|a| a.accepts(&u.destination, u.reason, u.bytes))
        {
            continue;
        }
        why.push(format!(
            "{} bytes to {} during {} could not be read ({})",
            u.bytes,
            u.destination,
            u.phase,
            reason_words(u.reason)
        ));
    }
    why
}

/// An unread reason in words.
pub fn reason_words(reason: &str) -> &'static str {
    match reason {
        "tls_ciphertext" => "TLS without keys",
        "quic_ciphertext" => "QUIC without keys",
        "tcp_gap" => "bytes missing from the capture",
        "snap_length" => "cut by the capture's snap length",
        "capture_damage" => "the capture is damaged there",
        "tunnel_depth" => "tunnels nested too deep",
        "encrypted_link" => "encrypted at the link layer",
        "decode_budget" => "layers left unopened (decoding budget)",
        "decode_cap" => "decoded only in part (decompression cap)",
        "decode_depth" => "still encoded at the decoding depth limit",
        "tls_key_failed" => "TLS whose logged key did not authenticate",
        "tls_unsupported_suite" => "TLS with a cipher suite telltale does not decrypt",
        "tls_truncated" => "TLS with keys, but records lost or cut",
        "stream_cap" => "beyond a stream protocol reader's cap",
        "stream_undecoded" => "a stream protocol telltale could not decode there",
        "state_cap" => {
            "past one of telltale's state or record caps (too many live connections, or more DNS, HTTP, TLS or DHCP messages than the report lists)"
        }
        "encrypted_payload" => "an encrypted payload",
        "tls_refused" => {
            "the client refused telltale's certificate: pinned or not trusting the run's CA"
        }
        "http_cap" => "past an HTTP parser cap",
        _ => "a protocol telltale does not read",
    }
}

/// The default rule when the scenario has no policy: no canary, any destination, any phase.
fn default_rule() -> ForbidRule {
    ForbidRule {
        canaries: CanarySelection::All,
        destinations: Vec::new(),
        phases: Vec::new(),
        line: 0,
    }
}

/// A forbid-like rule's result: broken by its violations, else inconclusive with its reasons, else held.
fn forbid_result(
    kind: RuleKind,
    rule: &ForbidRule,
    text: String,
    ctx: (&Identity, &Report, &Policy, &Observed<'_>, &[Unread]),
) -> RuleResult {
    let (identity, report, policy, observed, unread) = ctx;
    let violations = covered(rule, identity, report);
    let inconclusive = if violations.is_empty() {
        inconclusive(rule, policy, observed, unread)
    } else {
        Vec::new()
    };
    RuleResult {
        kind,
        rule: text,
        line: rule.line,
        held: violations.is_empty() && inconclusive.is_empty(),
        violations,
        inconclusive,
    }
}

/// A run's verdict: how it stopped when it did not complete, else FAIL when anything was broken,
/// INCONCLUSIVE when nothing was but something could not be shown, else PASS.
pub fn run_verdict(
    stopped: Option<crate::record::Verdict>,
    j: &Judgement,
) -> crate::record::Verdict {
    use crate::record::Verdict;
    match stopped {
        Some(v) => v,
        None if j.violated() => Verdict::Fail,
        None if j.inconclusive() => Verdict::Inconclusive,
        None => Verdict::Pass,
    }
}

/// Judges a run.
pub fn judge(
    scenario: &Scenario,
    identity: &Identity,
    report: &Report,
    observed: &Observed<'_>,
) -> Judgement {
    let mut j = Judgement::default();
    let policy = &scenario.policy;
    let unread = unread(report, observed.phases);
    let ctx = (identity, report, policy, observed, unread.as_slice());
    for rule in &policy.forbid {
        j.rules.push(forbid_result(
            RuleKind::Forbid,
            rule,
            describe_forbid(rule),
            ctx,
        ));
    }
    if policy.is_empty() {
        j.rules.push(forbid_result(
            RuleKind::Forbid,
            &default_rule(),
            DEFAULT_RULE.to_string(),
            ctx,
        ));
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
            inconclusive: Vec::new(),
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
            inconclusive: Vec::new(),
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
            j.rules.push(forbid_result(
                RuleKind::ExpectNoUpload,
                &rule,
                describe_forbid(&rule),
                ctx,
            ));
        }
    }
    for claim in &scenario.claims {
        let violations = covered(&claim.forbid, identity, report);
        let why = if violations.is_empty() {
            inconclusive(&claim.forbid, policy, observed, &unread)
        } else {
            Vec::new()
        };
        let (verdict, text) = if violations.is_empty() && why.is_empty() {
            (
                ClaimStatus::Holds,
                format!("CLAIM HOLDS   {}  \"{}\"", claim.id, claim.says),
            )
        } else if violations.is_empty() {
            (
                ClaimStatus::Inconclusive,
                format!(
                    "CLAIM INCONCLUSIVE  {}  \"{}\"  — {}",
                    claim.id, claim.says, why[0]
                ),
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
            inconclusive: why,
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
                    inconclusive: Vec::new(),
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
                    inconclusive: Vec::new(),
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
                    inconclusive: Vec::new(),
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
