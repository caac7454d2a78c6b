//! Collecting what the engine learns into report records: aggregation of findings, DNS question/answer pairing,
//! HTTP request/response pairing, capped warnings. Destination names are filled in at the end, when every
//! conversation's best name (SNI, Host, DNS) is known.
//!
//! The per-message records (DNS questions, HTTP requests, TLS hellos, DHCP messages) are kept up to a cap each
//! ([`super::Config::max_dns_records`] and the like): past it a record is not kept, its message's bytes are an
//! unread span of reason `state_cap` on its flow and direction at its time (so that a rule over that traffic is
//! inconclusive, never a silent pass), the records not kept are counted, and [`Collector::record_cap_warnings`]
//! says so. The canary search of the message is not affected: only the record is dropped.

use rustc_hash::FxHashMap;

use super::{direction, Flow};
use crate::proto::dns::{DnsData, DnsMessage};
use crate::report::{
    CaptureSummary, DhcpMessage, DnsQuery, Finding, FlowRecord, HttpRequest, Report, TlsHello,
    UnreadReason, UnreadSpan, Warning,
};

/// A single canary hit before aggregation.
pub(super) struct Raw {
    pub flow: usize,
    pub canary: usize,
    pub encoding: String,
    pub dir: usize,
    pub protocol: &'static str,
    pub field: Option<String>,
    pub decoded_from: Option<String>,
    /// HTTP method and path of the message.
    pub http: Option<(String, String)>,
    pub packet: u64,
    pub ts: u64,
    pub offset: u64,
    pub excerpt: String,
    /// The destination when it is not the flow's server: for a canary in a DNS query name, the zone queried.
    pub zone: Option<String>,
}

/// At most this many warnings of one kind are listed; the rest are counted.
const WARNINGS_PER_KIND: u64 = 20;

/// The index [`Collector::http_request`] and [`Collector::tls`] return for a record past its cap, which was not
/// kept: [`Collector::http_request_mut`] and [`Collector::tls_mut`] never resolve it (the record vectors only
/// grow, and never to this length), so a response or ServerHello paired with it updates nothing.
pub(super) const NOT_KEPT: usize = usize::MAX;

/// The kinds of per-message records, each kept up to its own cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Dns,
    Http,
    Tls,
    Dhcp,
}

impl Record {
    const ALL: [Record; 4] = [Record::Dns, Record::Http, Record::Tls, Record::Dhcp];

    /// What one record is, in the plural, its report list, and the [`super::Config`] field of its cap.
    fn words(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Record::Dns => ("DNS questions", "dns_queries", "max_dns_records"),
            Record::Http => ("HTTP requests", "http_requests", "max_http_records"),
            Record::Tls => ("TLS ClientHellos", "tls", "max_tls_records"),
            Record::Dhcp => ("DHCP messages", "dhcp", "max_dhcp_records"),
        }
    }
}

/// Where the message behind a record was sent: its flow and direction, its bytes on the wire and its frame and
/// time. A record past its cap is not kept; these bytes are accounted there as `state_cap` unread instead.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    pub flow: usize,
    pub dir: usize,
    pub bytes: u64,
    pub at: super::At,
}

impl Sent {
    pub fn new(flow: usize, dir: usize, bytes: usize, at: super::At) -> Self {
        Sent {
            flow,
            dir,
            bytes: bytes as u64,
            at,
        }
    }
}

pub(super) struct Collector {
    pub capture: CaptureSummary,
    canaries: Vec<String>,
    findings: Vec<(Raw, u64)>,
    /// Per finding: found in TLS traffic decrypted with logged keys.
    findings_decrypted: Vec<bool>,
    /// Set while the engine feeds decrypted plaintext: the findings made meanwhile are marked.
    pub decrypting: bool,
    finding_index: FxHashMap<String, usize>,
    dns: Vec<DnsQuery>,
    dns_pending: FxHashMap<(usize, u16), Vec<usize>>,
    http: Vec<HttpRequest>,
    tls: Vec<TlsHello>,
    dhcp: Vec<DhcpMessage>,
    /// Cap of each kind of record, in the order of [`Record`].
    record_caps: [usize; 4],
    /// Records not kept past their cap, per kind.
    not_kept: [u64; 4],
    warnings: Vec<Warning>,
    warning_counts: FxHashMap<String, u64>,
    links: FxHashMap<u32, u64>,
    phases: Vec<(u64, String)>,
    /// Unread spans: (flow, dir, reason, bytes, first ns, last ns, capture offset).
    unread: Vec<RawUnread>,
    /// The open (mergeable) span of each (flow, dir, reason, phase).
    unread_index: FxHashMap<(usize, usize, UnreadReason, usize), usize>,
}

struct RawUnread {
    flow: Option<usize>,
    dir: usize,
    reason: UnreadReason,
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
    offset: Option<u64>,
}

impl Collector {
    pub fn new(canaries: Vec<String>, cfg: &super::Config) -> Self {
        Collector {
            phases: cfg.phases.clone(),
            record_caps: [
                cfg.max_dns_records,
                cfg.max_http_records,
                cfg.max_tls_records,
                cfg.max_dhcp_records,
            ],
            not_kept: [0; 4],
            capture: CaptureSummary::default(),
            canaries,
            findings: Vec::new(),
            findings_decrypted: Vec::new(),
            decrypting: false,
            finding_index: FxHashMap::default(),
            dns: Vec::new(),
            dns_pending: FxHashMap::default(),
            http: Vec::new(),
            tls: Vec::new(),
            dhcp: Vec::new(),
            warnings: Vec::new(),
            warning_counts: FxHashMap::default(),
            links: FxHashMap::default(),
            unread: Vec::new(),
            unread_index: FxHashMap::default(),
        }
    }

    /// Accounts `bytes` of flow `flow`, direction `dir`, sent at `ts`, as unread for `reason` (merged with the
    /// span of the same flow, direction, reason and phase).
    pub fn unread(&mut self, flow: usize, dir: usize, reason: UnreadReason, bytes: u64, ts: u64) {
        if bytes == 0 {
            return;
        }
        let phase = self.phase_index(ts).map_or(0, |i| i + 1);
        let key = (flow, dir, reason, phase);
        if let Some(&i) = self.unread_index.get(&key) {
            if let Some(u) = self.unread.get_mut(i) {
                u.bytes += bytes;
                u.first_ns = u.first_ns.min(ts);
                u.last_ns = u.last_ns.max(ts);
                return;
            }
        }
        self.unread_index.insert(key, self.unread.len());
        self.unread.push(RawUnread {
            flow: Some(flow),
            dir,
            reason,
            bytes,
            first_ns: ts,
            last_ns: ts,
            offset: None,
        });
    }

    /// Accounts bytes of the capture file skipped after damage at `offset`.
    pub fn unread_damage(&mut self, offset: u64, bytes: u64, ts: u64) {
        self.unread.push(RawUnread {
            flow: None,
            dir: 0,
            reason: UnreadReason::CaptureDamage,
            bytes,
            first_ns: ts,
            last_ns: ts,
            offset: Some(offset),
        });
    }

    pub fn count_link(&mut self, link: u32) {
        *self.links.entry(link).or_insert(0) += 1;
    }

    pub fn warn(&mut self, kind: &str, message: String, offset: Option<u64>) {
        let n = self.warning_counts.entry(kind.to_string()).or_insert(0);
        *n += 1;
        if *n <= WARNINGS_PER_KIND {
            self.warnings.push(Warning {
                kind: kind.to_string(),
                message,
                offset,
            });
        }
    }

    /// Adds a hit; identical (flow, canary, encoding, direction, protocol, field) hits are counted, not repeated.
    pub fn finding(&mut self, raw: Raw) {
        let key = self.finding_key(&raw, self.decrypting);
        match self.finding_index.get(&key) {
            Some(&i) => self.findings[i].1 += 1,
            None => {
                self.finding_index.insert(key, self.findings.len());
                self.findings.push((raw, 1));
                self.findings_decrypted.push(self.decrypting);
            }
        }
    }

    /// What makes two hits one finding.
    fn finding_key(&self, raw: &Raw, decrypting: bool) -> String {
        let key = format!(
            "{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{:?}\u{1}{:?}\u{1}{:?}\u{1}{}",
            self.phase_index(raw.ts).map_or(0, |i| i + 1),
            raw.flow,
            raw.canary,
            raw.encoding,
            raw.dir,
            raw.protocol,
            raw.field,
            raw.decoded_from,
            raw.http,
            decrypting
        );
        match &raw.zone {
            Some(z) => format!("{key}\u{1}{z}"),
            None => key,
        }
    }

    /// Every flow something collected so far refers to (a finding, an unread span, a DNS question, an HTTP
    /// request, a TLS hello): the flows that must keep their own record.
    pub fn referenced_flows(&self) -> rustc_hash::FxHashSet<usize> {
        let mut s = rustc_hash::FxHashSet::default();
        s.extend(self.findings.iter().map(|(r, _)| r.flow));
        s.extend(self.unread.iter().filter_map(|u| u.flow));
        s.extend(self.dns.iter().map(|d| d.flow));
        s.extend(self.dns_pending.keys().map(|k| k.0));
        s.extend(self.http.iter().map(|h| h.flow));
        s.extend(self.tls.iter().map(|t| t.flow));
        s
    }

    /// Renumbers flows after folding: `map[old]` is the new index (every referenced flow has one).
    pub fn renumber_flows(&mut self, map: &[Option<usize>]) {
        let to = |i: usize| map.get(i).copied().flatten().unwrap_or(i);
        for (r, _) in &mut self.findings {
            r.flow = to(r.flow);
        }
        let decrypted = std::mem::take(&mut self.findings_decrypted);
        self.finding_index = self
            .findings
            .iter()
            .zip(&decrypted)
            .enumerate()
            .map(|(i, ((r, _), &d))| (self.finding_key(r, d), i))
            .collect();
        self.findings_decrypted = decrypted;
        for u in &mut self.unread {
            u.flow = u.flow.map(to);
        }
        self.unread_index = std::mem::take(&mut self.unread_index)
            .into_iter()
            .map(|((f, d, r, p), i)| ((to(f), d, r, p), i))
            .collect();
        for d in &mut self.dns {
            d.flow = to(d.flow);
        }
        self.dns_pending = std::mem::take(&mut self.dns_pending)
            .into_iter()
            .map(|((f, id), v)| ((to(f), id), v))
            .collect();
        for h in &mut self.http {
            h.flow = to(h.flow);
        }
        for t in &mut self.tls {
            t.flow = to(t.flow);
        }
    }

    /// Index of the phase that `ts` falls in (`None` before the first or without phases).
    fn phase_index(&self, ts: u64) -> Option<usize> {
        let n = self.phases.partition_point(|(start, _)| *start <= ts);
        n.checked_sub(1)
    }

    /// Whether one more record of `kind` fits under its cap, `len` being how many are kept.
    fn fits(&self, kind: Record, len: usize) -> bool {
        len < self.record_caps[kind as usize]
    }

    /// Counts `n` records of `kind` not kept and accounts the bytes of their message as `state_cap` unread.
    fn not_kept(&mut self, kind: Record, n: u64, sent: Sent) {
        if n == 0 {
            return;
        }
        self.not_kept[kind as usize] += n;
        self.unread(
            sent.flow,
            sent.dir,
            UnreadReason::StateCap,
            sent.bytes,
            sent.at.ts,
        );
    }

    /// Records the questions of a DNS message (a query's, paired with its response later by flow and ID; a
    /// response's whose query was not seen), up to [`super::Config::max_dns_records`].
    pub fn dns(&mut self, msg: &DnsMessage, sent: Sent) {
        let (flow, packet) = (sent.flow, sent.at.packet);
        let answers: Vec<String> = msg
            .answers
            .iter()
            .filter_map(|a| match &a.data {
                DnsData::A(v4) => Some(v4.to_string()),
                DnsData::Aaaa(v6) => Some(v6.to_string()),
                DnsData::Cname(n) => Some(format!("CNAME {n}")),
                _ => None,
            })
            .collect();
        let mut dropped = 0u64;
        if !msg.is_response {
            let mut idx = Vec::new();
            for q in &msg.questions {
                if !self.fits(Record::Dns, self.dns.len()) {
                    dropped += 1;
                    continue;
                }
                idx.push(self.dns.len());
                self.dns.push(DnsQuery {
                    name: q.name.clone(),
                    qtype: q.qtype.clone(),
                    packet,
                    flow,
                    rcode: None,
                    answers: Vec::new(),
                });
            }
            if idx.is_empty() && dropped > 0 {
                // Nothing to pair: an earlier query with the same ID must not take this one's answer either.
                self.dns_pending.remove(&(flow, msg.id));
            } else {
                self.dns_pending.insert((flow, msg.id), idx);
            }
            self.not_kept(Record::Dns, dropped, sent);
            return;
        }
        let rcode = rcode_name(msg.rcode);
        if let Some(idx) = self.dns_pending.remove(&(flow, msg.id)) {
            for i in idx {
                if let Some(q) = self.dns.get_mut(i) {
                    q.rcode = Some(rcode.clone());
                    q.answers = answers.clone();
                }
            }
            return;
        }
        for q in &msg.questions {
            if !self.fits(Record::Dns, self.dns.len()) {
                dropped += 1;
                continue;
            }
            self.dns.push(DnsQuery {
                name: q.name.clone(),
                qtype: q.qtype.clone(),
                packet,
                flow,
                rcode: Some(rcode.clone()),
                answers: answers.clone(),
            });
        }
        self.not_kept(Record::Dns, dropped, sent);
    }

    /// Records a DHCP message, up to [`super::Config::max_dhcp_records`].
    pub fn dhcp(&mut self, info: crate::proto::dhcp::DhcpInfo, sent: Sent) {
        if !self.fits(Record::Dhcp, self.dhcp.len()) {
            self.not_kept(Record::Dhcp, 1, sent);
            return;
        }
        self.dhcp.push(DhcpMessage {
            message_type: info.message_type,
            client_mac: info.client_mac,
            hostname: info.hostname,
            client_id: info.client_id,
            vendor_class: info.vendor_class,
            packet: sent.at.packet,
        });
    }

    /// Records a request whose head's size on the wire is not known (an HTTP/2 request, whose head is
    /// HPACK-compressed): as [`Collector::http_request_from`], sent by the client, and the size of the head
    /// written as HTTP/1.1 (method, target, headers) standing for its bytes.
    pub fn http_request(&mut self, req: HttpRequest) -> usize {
        let head = req.method.len()
            + req.target.len()
            + 12
            + req
                .headers
                .iter()
                .map(|[n, v]| n.len() + v.len() + 4)
                .sum::<usize>();
        self.http_request_from(req, 0, head as u64)
    }

    /// Records a request sent in direction `dir`, its head `head_bytes` long, up to
    /// [`super::Config::max_http_records`]; returns its index for pairing with the response ([`NOT_KEPT`] past the
    /// cap). What is `state_cap` unread past the cap is the head, what the record holds: the body is searched
    /// and accounted on its own (as `encrypted_payload`, `decode_cap`…), and is not counted twice.
    pub fn http_request_from(
        &mut self,
        mut req: HttpRequest,
        dir: usize,
        head_bytes: u64,
    ) -> usize {
        if !self.fits(Record::Http, self.http.len()) {
            let at = super::At {
                packet: req.packet,
                ts: req.time_ns,
            };
            let sent = Sent {
                flow: req.flow,
                dir,
                bytes: head_bytes,
                at,
            };
            self.not_kept(Record::Http, 1, sent);
            return NOT_KEPT;
        }
        req.destination.clear();
        self.http.push(req);
        self.http.len() - 1
    }

    pub fn http_request_mut(&mut self, i: usize) -> Option<&mut HttpRequest> {
        self.http.get_mut(i)
    }

    /// Records a ClientHello, up to [`super::Config::max_tls_records`]; returns its index ([`NOT_KEPT`] past the
    /// cap).
    pub fn tls(&mut self, hello: TlsHello, sent: Sent) -> usize {
        if !self.fits(Record::Tls, self.tls.len()) {
            self.not_kept(Record::Tls, 1, sent);
            return NOT_KEPT;
        }
        self.tls.push(hello);
        self.tls.len() - 1
    }

    pub fn tls_mut(&mut self, i: usize) -> Option<&mut TlsHello> {
        self.tls.get_mut(i)
    }

    /// One warning (kind `record-cap`) per kind of record of which some were not kept past its cap.
    pub fn record_cap_warnings(&mut self) {
        for kind in Record::ALL {
            let n = self.not_kept[kind as usize];
            if n == 0 {
                continue;
            }
            let (what, list, field) = kind.words();
            let cap = self.record_caps[kind as usize];
            let msg = format!(
                "{n} {what} were not kept as records ({list}) past the cap of {cap} ({field}); they were still \
                 searched for canaries, and the bytes of their messages are accounted as unread (state_cap)"
            );
            self.warn("record-cap", msg, None);
        }
    }

    pub fn finish(mut self, flows: &[Flow]) -> Report {
        let dest = |i: usize| flows.get(i).map(|f| f.destination()).unwrap_or_default();
        let addr = |i: usize| {
            flows
                .get(i)
                .map_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |f| {
                    f.address()
                })
        };
        for h in &mut self.http {
            h.destination = dest(h.flow);
        }
        for t in &mut self.tls {
            t.destination = dest(t.flow);
        }
        let phases = std::mem::take(&mut self.phases);
        let phase_of = |ts: u64| {
            let n = phases.partition_point(|(start, _)| *start <= ts);
            match n.checked_sub(1) {
                Some(i) => phases.get(i).map(|p| p.1.clone()),
                None => phases.first().map(|p| p.1.clone()),
            }
        };
        let decrypted = std::mem::take(&mut self.findings_decrypted);
        let mut findings: Vec<Finding> = self
            .findings
            .into_iter()
            .zip(decrypted.into_iter().chain(std::iter::repeat(false)))
            .map(|((r, count), dec)| Finding {
                tls: dec.then(|| "decrypted".to_string()),
                phase: phase_of(r.ts),
                canary: self.canaries.get(r.canary).cloned().unwrap_or_default(),
                encoding: r.encoding,
                destination: r.zone.clone().unwrap_or_else(|| dest(r.flow)),
                address: addr(r.flow),
                protocol: r.protocol.to_string(),
                direction: direction(r.dir),
                http_method: r.http.as_ref().map(|h| h.0.clone()),
                http_path: r.http.map(|h| h.1),
                field: r.field,
                decoded_from: r.decoded_from,
                flow: r.flow,
                packet: r.packet,
                offset: r.offset,
                time_ns: r.ts,
                count,
                excerpt: r.excerpt,
            })
            .collect();
        // Uploads first, then by time of first occurrence.
        findings.sort_by(|a, b| {
            (a.direction, a.packet, &a.canary, &a.encoding).cmp(&(
                b.direction,
                b.packet,
                &b.canary,
                &b.encoding,
            ))
        });
        for (kind, n) in &self.warning_counts {
            if *n > WARNINGS_PER_KIND {
                self.warnings.push(Warning {
                    kind: kind.clone(),
                    message: format!(
                        "{} more warnings of this kind not listed",
                        n - WARNINGS_PER_KIND
                    ),
                    offset: None,
                });
            }
        }
        let mut links: Vec<(u32, u64)> = self.links.into_iter().collect();
        links.sort();
        for (lt, n) in &links {
            let name = link_name(*lt);
            if name.starts_with("linktype-") {
                self.warnings.push(Warning {
                    kind: "unsupported-link".into(),
                    message: format!("{n} frames of link type {lt} were counted but not decoded"),
                    offset: None,
                });
            }
            self.capture.link_types.insert(name, *n);
        }
        let mut capped = 0u64;
        // Per flow and direction, the bytes of its unread spans.
        let mut unread_of: FxHashMap<usize, [u64; 2]> = FxHashMap::default();
        for u in &self.unread {
            if let Some(f) = u.flow {
                let e = unread_of.entry(f).or_default();
                if let Some(n) = e.get_mut(u.dir) {
                    *n = n.saturating_add(u.bytes);
                }
            }
        }
        let flows_out: Vec<FlowRecord> = flows
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if let Some(s) = &f.tcp_stats {
                    capped += s[0].cap_hits + s[1].cap_hits;
                }
                let unread = unread_of.get(&i).copied().unwrap_or_default();
                FlowRecord {
                    id: i,
                    protocol: super::transport(f.proto),
                    app: f.app,
                    client: f.client.into(),
                    server: f.server.into(),
                    destination: f.destination(),
                    packets_up: f.packets[0],
                    packets_down: f.packets[1],
                    bytes_up: f.bytes[0],
                    bytes_down: f.bytes[1],
                    first_ns: f.first_ns,
                    last_ns: f.last_ns,
                    first_packet: f.first_packet,
                    opaque_bytes: f.opaque_bytes,
                    read_up: f.bytes[0].saturating_sub(unread[0]),
                    unread_up: unread[0],
                    read_down: f.bytes[1].saturating_sub(unread[1]),
                    unread_down: unread[1],
                    folded: f.folded,
                    tcp: f.tcp_stats,
                }
            })
            .collect();
        if capped > 0 {
            self.warnings.push(Warning {
                kind: "reassembly-cap".into(),
                message: format!(
                    "the out-of-order buffer of some TCP streams hit its cap {capped} times; the holes were skipped as gaps (see flows[].tcp)"
                ),
                offset: None,
            });
        }
        let unread: Vec<UnreadSpan> = self
            .unread
            .iter()
            .map(|u| UnreadSpan {
                reason: u.reason,
                flow: u.flow,
                direction: direction(u.dir),
                destination: u.flow.map(dest).unwrap_or_default(),
                bytes: u.bytes,
                first_ns: u.first_ns,
                last_ns: u.last_ns,
                phase: phase_of(u.first_ns),
                capture_offset: u.offset,
            })
            .collect();
        Report {
            unread,
            format_version: crate::report::FORMAT_VERSION,
            telltale_version: env!("CARGO_PKG_VERSION").to_string(),
            capture: self.capture,
            canaries: self.canaries,
            findings,
            flows: flows_out,
            dns_queries: self.dns,
            http_requests: self.http,
            tls: self.tls,
            dhcp: self.dhcp,
            warnings: self.warnings,
        }
    }
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// Name of a link type for the report.
pub fn link_name(lt: u32) -> String {
    match lt {
        0 => "null".into(),
        1 => "ethernet".into(),
        12 | 14 | 101 => "raw-ip".into(),
        108 => "loop".into(),
        113 => "linux-sll".into(),
        228 => "ipv4".into(),
        229 => "ipv6".into(),
        276 => "linux-sll2".into(),
        n => format!("linktype-{n}"),
    }
}

/// A printable excerpt of at most ~96 bytes around `start..end`, non-printables as `\xNN`.
pub fn excerpt(hay: &[u8], start: usize, end: usize) -> String {
    let from = start.saturating_sub(24);
    let to = end.saturating_add(24).min(hay.len());
    let end = end.min(to);
    let start = start.min(end);
    let mut s = String::new();
    let render = |s: &mut String, bytes: &[u8]| {
        for &b in bytes {
            if (0x20..0x7f).contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("\\x{b:02x}"));
            }
        }
    };
    render(&mut s, hay.get(from..start).unwrap_or_default());
    s.push('«');
    render(
        &mut s,
        hay.get(start..end.min(start + 48)).unwrap_or_default(),
    );
    if end > start + 48 {
        s.push('…');
    }
    s.push('»');
    render(&mut s, hay.get(end..to).unwrap_or_default());
    s
}
