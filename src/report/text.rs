//! The human-readable summary of a report: findings first, then destinations, uploads, names, warnings.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Direction, Report};

/// Renders the text summary. `color` adds ANSI emphasis for terminals.
pub fn render(r: &Report, color: bool) -> String {
    let (bold, red, green, yellow, dim, reset) = if color {
        (
            "\x1b[1m",
            "\x1b[1;31m",
            "\x1b[1;32m",
            "\x1b[33m",
            "\x1b[2m",
            "\x1b[0m",
        )
    } else {
        ("", "", "", "", "", "")
    };
    let mut s = String::new();
    let c = &r.capture;
    let _ = writeln!(
        s,
        "{bold}{}{reset} — {} frames, {} flows, {} DNS questions, {} HTTP requests, {} TLS hellos",
        c.file,
        c.packets,
        r.flows.len(),
        r.dns_queries.len(),
        r.http_requests.len(),
        r.tls.len()
    );
    let _ = writeln!(s);

    if r.findings.is_empty() {
        if r.canaries.is_empty() {
            let _ = writeln!(s, "No canaries were searched for (no identity file given).");
        } else {
            let _ = writeln!(
                s,
                "{green}No canary found{reset} ({} searched: {}).",
                r.canaries.len(),
                r.canaries.join(", ")
            );
        }
    } else {
        let total: u64 = r.findings.iter().map(|f| f.count).sum();
        let _ = writeln!(
            s,
            "{red}FINDINGS{reset}: {total} occurrences in {} findings",
            r.findings.len()
        );
        for f in &r.findings {
            let dir = match f.direction {
                Direction::Up => "sent to",
                Direction::Down => "received from",
            };
            let mut place = f.protocol.clone();
            if let (Some(m), Some(p)) = (&f.http_method, &f.http_path) {
                let _ = write!(place, " {m} {p}");
            }
            if let Some(field) = &f.field {
                let _ = write!(place, " [{field}]");
            }
            if let Some(d) = &f.decoded_from {
                let _ = write!(place, " (decoded {d})");
            }
            let _ = writeln!(
                s,
                "  {red}{}{reset} ({}) {dir} {bold}{}{reset} {} via {place}, {}×, first in frame {}",
                f.canary, f.encoding, f.destination, f.address, f.count, f.packet
            );
            let _ = writeln!(s, "      {dim}{}{reset}", f.excerpt);
        }
    }
    let _ = writeln!(s);

    // Destinations: aggregate flows by best name.
    let mut dests: BTreeMap<&str, (u64, u64, u64, Vec<String>)> = BTreeMap::new();
    for f in &r.flows {
        let e = dests.entry(&f.destination).or_default();
        e.0 += 1;
        e.1 += f.bytes_up;
        e.2 += f.bytes_down;
        let app = f.app_or_transport();
        if !e.3.contains(&app) {
            e.3.push(app);
        }
    }
    if !dests.is_empty() {
        let mut list: Vec<_> = dests.into_iter().collect();
        list.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        let _ = writeln!(s, "{bold}DESTINATIONS{reset} (by bytes sent)");
        for (name, (flows, up, down, apps)) in list.iter().take(25) {
            let _ = writeln!(
                s,
                "  {name:<40} {:>10} up {:>10} down  {flows} flow{}  {}",
                bytes(*up),
                bytes(*down),
                if *flows == 1 { "" } else { "s" },
                apps.join(",")
            );
        }
        if list.len() > 25 {
            let _ = writeln!(s, "  … and {} more (see --format json)", list.len() - 25);
        }
        let _ = writeln!(s);
    }

    let uploads: Vec<_> = r
        .http_requests
        .iter()
        .filter(|h| h.body_bytes > 0)
        .collect();
    if !uploads.is_empty() {
        let _ = writeln!(s, "{bold}UPLOADS{reset} (HTTP requests with a body)");
        for h in uploads.iter().take(25) {
            let enc = if h.content_encoding.is_empty() {
                String::new()
            } else {
                format!(" {}", h.content_encoding.join("+"))
            };
            let status = h.status.map(|s| format!(" → {s}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "  {} {}{} {}{enc}{status}",
                h.method,
                h.host,
                h.path,
                bytes(h.body_bytes)
            );
        }
        if uploads.len() > 25 {
            let _ = writeln!(s, "  … and {} more", uploads.len() - 25);
        }
        let _ = writeln!(s);
    }

    let mut names: Vec<&str> = r.dns_queries.iter().map(|q| q.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if !names.is_empty() {
        let shown: Vec<&str> = names.iter().take(20).copied().collect();
        let more = if names.len() > 20 {
            format!(" … and {} more", names.len() - 20)
        } else {
            String::new()
        };
        let _ = writeln!(s, "{bold}DNS{reset} {}{more}", shown.join(", "));
    }
    let mut snis: Vec<&str> = r.tls.iter().filter_map(|t| t.sni.as_deref()).collect();
    snis.sort_unstable();
    snis.dedup();
    if !snis.is_empty() {
        let _ = writeln!(s, "{bold}TLS{reset} {}", snis.join(", "));
    }
    for d in &r.dhcp {
        if d.hostname.is_some() || d.client_id.is_some() {
            let _ = writeln!(
                s,
                "{bold}DHCP{reset} {} {} hostname={} client-id={}",
                d.message_type.as_deref().unwrap_or("?"),
                d.client_mac,
                d.hostname.as_deref().unwrap_or("-"),
                d.client_id.as_deref().unwrap_or("-")
            );
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "{yellow}WARNINGS{reset}");
        for w in &r.warnings {
            let _ = writeln!(s, "  [{}] {}", w.kind, w.message);
        }
    }
    s
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
