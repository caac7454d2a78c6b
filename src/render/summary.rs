//! The terminal summary of a run: verdict first, then what left the device per phase, the
//! canaries found with their encodings, broken claims and policy results.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::record::{ClaimStatus, RuleStatus};
use crate::record::{RunReport, Verdict};
use crate::report::Direction;

fn secs(ns: u64, from: u64) -> f64 {
    ns.saturating_sub(from) as f64 / 1e9
}

/// `512 B`, `2.6 KiB`, `1.2 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// The summary as text (no colour).
pub fn render(r: &RunReport, dir: &std::path::Path) -> String {
    let mut s = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Inconclusive => "INCONCLUSIVE",
        Verdict::Error => "ERROR",
        Verdict::Interrupted => "INTERRUPTED",
    };
    let release = r
        .scenario
        .release
        .as_deref()
        .map(|x| format!(" ({x})"))
        .unwrap_or_default();
    let broken_rules = r.judgement.broken_rules();
    let broken_claims = r.judgement.broken_claims();
    let unsure = r
        .judgement
        .rules
        .iter()
        .filter(|x| x.status() == RuleStatus::Inconclusive)
        .count()
        + r.judgement
            .claims
            .iter()
            .filter(|c| c.verdict == ClaimStatus::Inconclusive)
            .count();
    let unsure = if unsure > 0 {
        format!(", {unsure} inconclusive")
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "{}{release}: {verdict}  {} rule(s) broken, {} claim(s) broken{unsure}  [{:.1} s]",
        r.scenario.name,
        broken_rules,
        broken_claims,
        secs(r.end_ns, r.start_ns)
    );
    if let Some(e) = &r.error {
        for line in e.lines() {
            let _ = writeln!(s, "  error: {line}");
        }
    }
    for c in &r.judgement.claims {
        if c.verdict != ClaimStatus::Holds {
            let _ = writeln!(s, "  {}", c.text);
        }
    }
    let phase_list: Vec<String> = r
        .phases
        .iter()
        .map(|p| {
            format!(
                "{} {:.1}–{:.1}s",
                p.name,
                secs(p.start_ns, r.start_ns),
                secs(p.end_ns, r.start_ns)
            )
        })
        .collect();
    let _ = writeln!(s, "  phases: {}", phase_list.join(", "));
    // Destinations per phase (by first frame of each conversation).
    let phase_at = |ts: u64| {
        r.phases
            .iter()
            .rev()
            .find(|p| p.start_ns <= ts)
            .or(r.phases.first())
            .map(|p| p.name.as_str())
            .unwrap_or("boot")
    };
    // (phase order, phase) → destination → (conversations, bytes up, protocol)
    type PerDestination<'a> = BTreeMap<&'a str, (u64, u64, String)>;
    let mut per_phase: BTreeMap<(usize, &str), PerDestination> = BTreeMap::new();
    for f in &r.analysis.flows {
        if f.is_network_service() {
            continue;
        }
        let ph = phase_at(f.first_ns);
        let order = r.phases.iter().position(|p| p.name == ph).unwrap_or(0);
        let e = per_phase
            .entry((order, ph))
            .or_default()
            .entry(f.destination.as_str())
            .or_insert((0, 0, f.app_or_transport()));
        e.0 += 1;
        e.1 += f.bytes_up;
    }
    // A canary in a DNS name went to the zone queried (the resolver only forwards it): that zone is a destination
    // even though the conversation itself is one of the network's services. One conversation per query flow.
    let mut dns_zones: BTreeMap<(usize, &str, &str), Vec<usize>> = BTreeMap::new();
    for f in r
        .analysis
        .findings
        .iter()
        .filter(|f| f.protocol == "dns" && f.direction == Direction::Up)
    {
        let ph = phase_at(f.time_ns);
        let order = r.phases.iter().position(|p| p.name == ph).unwrap_or(0);
        let flows = dns_zones
            .entry((order, ph, f.destination.as_str()))
            .or_default();
        if !flows.contains(&f.flow) {
            flows.push(f.flow);
        }
    }
    for ((order, ph, zone), flows) in dns_zones {
        let up: u64 = flows
            .iter()
            .filter_map(|id| r.analysis.flows.iter().find(|f| f.id == *id))
            .map(|f| f.bytes_up)
            .sum();
        let e = per_phase
            .entry((order, ph))
            .or_default()
            .entry(zone)
            .or_insert((0, 0, "dns".to_string()));
        e.0 += flows.len() as u64;
        e.1 += up;
    }
    if per_phase.is_empty() {
        let _ = writeln!(s, "  destinations: none contacted");
    } else {
        let _ = writeln!(s, "  destinations contacted:");
        for ((_, ph), dests) in &per_phase {
            let list: Vec<String> = dests
                .iter()
                .map(|(d, (n, up, app))| format!("{d} ({app}, {n} conn, {} up)", bytes(*up)))
                .collect();
            let _ = writeln!(s, "    {ph}: {}", list.join("; "));
        }
    }
    // The network's own services, apart: not uploads, not destinations.
    let services: Vec<String> = r
        .analysis
        .network_services()
        .iter()
        .map(|(k, t)| format!("{} ({} conn, {} up)", k.as_str(), t.flows, bytes(t.up)))
        .collect();
    if !services.is_empty() {
        let _ = writeln!(
            s,
            "  network services (not counted as uploads): {}",
            services.join("; ")
        );
    }
    // Canaries that went up, added up over conversations.
    let mut ups: Vec<(String, u64)> = Vec::new();
    for f in r
        .analysis
        .findings
        .iter()
        .filter(|f| f.direction == Direction::Up)
    {
        let req = f.request().map(|r| format!(" {r}")).unwrap_or_default();
        let key = format!(
            "{} ({}) → {}{req} [{}] during {}",
            f.canary,
            f.encoding,
            f.destination,
            f.protocol,
            f.phase.as_deref().unwrap_or("boot")
        );
        match ups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += f.count,
            None => ups.push((key, f.count)),
        }
    }
    if ups.is_empty() {
        let _ = writeln!(s, "  canaries found: none");
    } else {
        let _ = writeln!(s, "  canaries found:");
        for (k, n) in ups.iter().take(40) {
            let _ = writeln!(s, "    {k} ×{n}");
        }
        if ups.len() > 40 {
            let _ = writeln!(s, "    … {} more in report.json", ups.len() - 40);
        }
    }
    if !r.judgement.rules.is_empty() {
        let _ = writeln!(s, "  policy:");
        for rule in &r.judgement.rules {
            let mark = match rule.status() {
                RuleStatus::Held => "ok  ",
                RuleStatus::Broken => "FAIL",
                RuleStatus::Inconclusive => "INCONCLUSIVE",
            };
            let at = if rule.line > 0 {
                format!(" (line {})", rule.line)
            } else {
                String::new()
            };
            let _ = writeln!(s, "    {mark} {}: {}{at}", rule.kind, rule.rule);
            for v in rule.violations.iter().take(10) {
                let _ = writeln!(s, "         - {}", v.text);
            }
            if rule.violations.len() > 10 {
                let _ = writeln!(s, "         - … {} more", rule.violations.len() - 10);
            }
            for why in rule.inconclusive.iter().take(10) {
                let _ = writeln!(s, "         - {why}");
            }
        }
    }
    let _ = writeln!(s, "  artifacts: {}", dir.display());
    s
}
