//! Privacy snapshots: the normalised privacy behaviour of a firmware, kept as an insta-compatible
//! `.snap` file per scenario and compared with every new run.
//!
//! This module owns
//!
//! * the snapshot model ([`PrivacySnapshot`]) and its derivation from a run's report
//!   ([`PrivacySnapshot::from_run`]): per phase, the DNS names looked up, and per destination the
//!   largest single upload (a bucket), the protocols and HTTP requests (method and normalised
//!   path, query parameter names only), and the canaries sent with their encoding chains;
//! * the text form ([`text`]): a line-oriented body, one fact per line, inside the header insta
//!   writes (`---`, `source:`, `expression:`, `---`), so `cargo insta review` can show and
//!   accept pending snapshots;
//! * the comparison ([`diff`]): a line diff for people and a structured classification for the
//!   verdict — anything new (destination, request, query parameter, DNS name, canary, encoding,
//!   a larger upload bucket) is a regression, things that are gone are a note;
//! * the files ([`files`]): `snapshots/<scenario>[@<release>].snap`, the pending `.snap.new`
//!   beside it, accepting, rejecting and listing pending snapshots. Only this submodule does I/O.
//!
//! # Determinism
//!
//! The same firmware must give a byte-identical snapshot run after run, so nothing that varies
//! between runs goes in: no times, ports, packet or flow numbers, counts of repeated uploads,
//! synthetic 198.18.0.0/15 addresses (replaced by the name a DNS answer gave them), numeric or
//! identifier-looking path segments and DNS labels (`{n}`, `{id}`), query values. Upload volume
//! is the bucket of the largest single connection's upload (bytes the device sent on one flow),
//! not a sum: a device that uploads every 5 s makes a different number of uploads per run, and
//! a sum would move between buckets with that number. Everything is sorted.
//!
//! # Scope
//!
//! The network's own infrastructure is left out: ARP, DHCP (UDP ports 67/68), NTP (UDP port 123, answered by
//! the vnet) and DNS to the vnet's gateway ([`GATEWAY`]) — unless a canary was found in that traffic, which then appears under
//! its destination like any other. The DNS names asked for are listed per phase (`lookup`).
//! A flow belongs to the phase in which its first frame falls; an HTTP request to the phase of
//! its own time; a finding to its own `phase` (none = `boot`); a DNS question to the phase of
//! the latest frame of the report known to precede it.

pub mod diff;
pub mod files;
pub mod normalize;
pub mod text;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::record::{PhaseSpan, StoredRun};
use crate::report::{Direction, FlowRecord, Report};

pub use diff::{compare, compare_bodies, compare_snapshots, Change, ChangeKind, SnapshotDiff};
pub use files::{
    accept, pending, pending_path, read_accepted, reject, snapshot_path, write_accepted,
    write_pending, FileError,
};
pub use normalize::UploadBucket;
pub use text::{parse_snap, SnapError, SnapFile};

/// The vnet's gateway (its DHCP and DNS server): DNS to it is infrastructure, not a destination.
pub const GATEWAY: Ipv4Addr = crate::net::GATEWAY;

/// Name of the phase before the first `phase` step (and of findings without a phase).
pub const BOOT_PHASE: &str = crate::scenario::INITIAL_PHASE;

/// The privacy behaviour of one run, normalised (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrivacySnapshot {
    /// Scenario name (used in the file header only; empty for a snapshot read from a body).
    pub scenario: String,
    /// Release label of the scenario (header only).
    pub release: Option<String>,
    /// Phases in the order of the run; a phase without traffic is kept (a header line only).
    pub phases: Vec<PhaseSnapshot>,
}

/// What happened in one phase.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhaseSnapshot {
    /// Phase name (one token).
    pub name: String,
    /// DNS names asked for, normalised.
    pub lookups: BTreeSet<String>,
    /// Destinations by normalised name (or address, without port).
    pub destinations: BTreeMap<String, DestinationSnapshot>,
}

/// What went to one destination in one phase.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DestinationSnapshot {
    /// Bucket of the largest upload of one connection that started in this phase; `None` when
    /// no connection to it started in this phase (a request or finding on an older connection).
    pub upload: Option<UploadBucket>,
    /// Protocols and requests, with the canaries sent over each.
    pub channels: BTreeMap<Channel, ChannelSnapshot>,
    /// Why some of what the device sent there in this phase could not be read (the report's unread reasons:
    /// `tls_ciphertext`, `encrypted_payload`, …): a release that starts hiding an upload is a change even
    /// when no canary is seen.
    pub unread: BTreeSet<String>,
}

/// A protocol, or an HTTP request line (method and normalised path).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel {
    /// `http`, `tls`, `dns`, `quic`, `ssdp`, `dhcp`, `tcp`, `udp`…
    pub protocol: String,
    /// For HTTP: the request (method, normalised path).
    pub request: Option<RequestLine>,
}

/// Method and normalised path of an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestLine {
    /// Method as sent.
    pub method: String,
    /// Path, normalised ([`normalize::normalize_path`]).
    pub path: String,
}

/// Facts about one channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelSnapshot {
    /// Query parameter names (values are never kept).
    pub query_keys: BTreeSet<String>,
    /// Canaries found, with their encodings.
    pub canaries: BTreeSet<CanaryUse>,
}

/// A canary found in a channel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CanaryUse {
    /// Canary name (`imei`, `contacts[0]`).
    pub canary: String,
    /// Encoding chain (`raw`, `sha1>hex`, `gzip>base64`).
    pub encoding: String,
    /// Found in what the server sent (`down`), not in what the device sent.
    pub received: bool,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.protocol)?;
        if let Some(r) = &self.request {
            write!(f, " {} {}", r.method, r.path)?;
        }
        Ok(())
    }
}

impl fmt::Display for CanaryUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.canary, self.encoding)?;
        if self.received {
            f.write_str(" received")?;
        }
        Ok(())
    }
}

impl PrivacySnapshot {
    /// The snapshot of a run read back from its `report.json`.
    pub fn from_run(run: &StoredRun) -> PrivacySnapshot {
        PrivacySnapshot::from_report(
            &run.scenario.name,
            run.scenario.release.as_deref(),
            &run.phases,
            &run.analysis,
        )
    }

    /// The snapshot of an analysis report with the run's phases.
    pub fn from_report(
        scenario: &str,
        release: Option<&str>,
        phases: &[PhaseSpan],
        report: &Report,
    ) -> PrivacySnapshot {
        let clock = PhaseClock::new(phases);
        let names = synthetic_names(report);
        let by_id: HashMap<usize, &FlowRecord> = report.flows.iter().map(|f| (f.id, f)).collect();
        // Flows that carried a canary to their own server (a canary in a DNS query name goes to the zone queried,
        // not to the resolver: the resolver's flow stays infrastructure).
        let carrying: HashSet<usize> = report
            .findings
            .iter()
            .filter(|fd| {
                by_id
                    .get(&fd.flow)
                    .is_some_and(|f| f.destination == fd.destination)
            })
            .map(|fd| fd.flow)
            .collect();
        let kept = |f: &FlowRecord| carrying.contains(&f.id) || !f.is_network_service();
        let with_requests: HashSet<usize> = report.http_requests.iter().map(|r| r.flow).collect();
        let dest_name = |raw: &str| normalize::normalize_destination(raw, &names);
        let mut b = Builder::default();

        for f in report.flows.iter().filter(|f| kept(f)) {
            let d = b.destination(clock.at(f.first_ns), dest_name(&f.destination));
            let bucket = UploadBucket::of(f.bytes_up);
            d.upload = Some(d.upload.map_or(bucket, |u| u.max(bucket)));
            if !with_requests.contains(&f.id) {
                d.channels
                    .entry(Channel {
                        protocol: flow_protocol(f),
                        request: None,
                    })
                    .or_default();
            }
        }

        for r in &report.http_requests {
            let flow = by_id.get(&r.flow).copied();
            if flow.is_some_and(|f| !kept(f)) {
                continue;
            }
            let channel = Channel {
                protocol: flow.map_or_else(|| "http".to_string(), flow_protocol),
                request: Some(RequestLine {
                    method: normalize::token(&r.method, &[]),
                    path: normalize::normalize_path(&r.path),
                }),
            };
            let d = b.destination(clock.at(r.time_ns), dest_name(&r.destination));
            let c = d.channels.entry(channel).or_default();
            if let Some(q) = &r.query {
                c.query_keys.extend(normalize::query_keys(q));
            }
        }

        for fd in &report.findings {
            let phase = fd.phase.as_deref().unwrap_or(BOOT_PHASE);
            let request = match (&fd.http_method, &fd.http_path) {
                (Some(m), Some(p)) => Some(RequestLine {
                    method: normalize::token(m, &[]),
                    path: normalize::normalize_path(p),
                }),
                _ => None,
            };
            let channel = Channel {
                protocol: normalize::token(&fd.protocol.to_ascii_lowercase(), &[]),
                request,
            };
            let d = b.destination(phase, dest_name(&fd.destination));
            d.channels
                .entry(channel)
                .or_default()
                .canaries
                .insert(CanaryUse {
                    canary: normalize::token(&fd.canary, &[]),
                    encoding: normalize::token(&fd.encoding, &[]),
                    received: fd.direction == Direction::Down,
                });
        }

        for u in &report.unread {
            let Some(f) = u.flow.and_then(|i| by_id.get(&i).copied()) else {
                continue;
            };
            if u.direction != Direction::Up || !kept(f) {
                continue;
            }
            let phase = u.phase.as_deref().unwrap_or_else(|| clock.at(u.first_ns));
            b.destination(phase, dest_name(&f.destination))
                .unread
                .insert(u.reason.as_str().to_string());
        }

        let packets = PacketClock::new(report);
        for q in &report.dns_queries {
            let phase = clock.at(packets.time_of(q.packet));
            b.phase(phase)
                .lookups
                .insert(normalize::normalize_host(&q.name));
        }

        PrivacySnapshot {
            scenario: scenario.to_string(),
            release: release.map(str::to_string),
            phases: b.finish(&clock.order),
        }
    }

    /// The phase of this name.
    pub fn phase(&self, name: &str) -> Option<&PhaseSnapshot> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// `scenario` or `scenario@release`, as in the snapshot's file name.
    pub fn label(&self) -> String {
        match &self.release {
            Some(r) => format!("{}@{}", self.scenario, r),
            None => self.scenario.clone(),
        }
    }
}

/// The application protocol of a flow, else its transport.
fn flow_protocol(f: &FlowRecord) -> String {
    normalize::token(&f.app_or_transport(), &[])
}

/// Address → name from the run's DNS answers (the smallest name when several), for naming
/// synthetic addresses.
fn synthetic_names(report: &Report) -> BTreeMap<IpAddr, String> {
    let mut names: BTreeMap<IpAddr, String> = BTreeMap::new();
    for q in &report.dns_queries {
        for a in &q.answers {
            let Some(ip) = normalize::parse_address(a) else {
                continue;
            };
            let name = q.name.trim_end_matches('.').to_ascii_lowercase();
            match names.get(&ip) {
                Some(old) if *old <= name => {}
                _ => {
                    names.insert(ip, name);
                }
            }
        }
    }
    names
}

/// Phase of a time: the last span that starts at or before it, else the first; `boot` when
/// the run has no spans.
struct PhaseClock<'a> {
    spans: &'a [PhaseSpan],
    /// Phase names in order of first appearance.
    order: Vec<String>,
}

impl<'a> PhaseClock<'a> {
    fn new(spans: &'a [PhaseSpan]) -> PhaseClock<'a> {
        let mut order: Vec<String> = Vec::new();
        for s in spans {
            if !order.contains(&s.name) {
                order.push(s.name.clone());
            }
        }
        PhaseClock { spans, order }
    }

    fn at(&self, t: u64) -> &'a str {
        self.spans
            .iter()
            .rev()
            .find(|s| s.start_ns <= t)
            .or(self.spans.first())
            .map_or(BOOT_PHASE, |s| s.name.as_str())
    }
}

/// Frame number → time, from every frame of the report whose time is known (first frames of
/// flows, HTTP requests, findings): the time of the latest known frame at or before it.
struct PacketClock {
    known: Vec<(u64, u64)>,
}

impl PacketClock {
    fn new(report: &Report) -> PacketClock {
        let mut known: Vec<(u64, u64)> = report
            .flows
            .iter()
            .map(|f| (f.first_packet, f.first_ns))
            .chain(report.http_requests.iter().map(|r| (r.packet, r.time_ns)))
            .chain(report.findings.iter().map(|f| (f.packet, f.time_ns)))
            .collect();
        known.sort_unstable();
        PacketClock { known }
    }

    fn time_of(&self, packet: u64) -> u64 {
        let i = self.known.partition_point(|&(p, _)| p <= packet);
        match i.checked_sub(1).and_then(|i| self.known.get(i)) {
            Some(&(_, t)) => t,
            None => self.known.first().map_or(0, |&(_, t)| t),
        }
    }
}

/// Collects phases by name, then orders them as the run did.
#[derive(Default)]
struct Builder {
    phases: BTreeMap<String, PhaseSnapshot>,
}

impl Builder {
    fn phase(&mut self, name: &str) -> &mut PhaseSnapshot {
        let name = normalize::token(name, &[]);
        self.phases
            .entry(name.clone())
            .or_insert_with(|| PhaseSnapshot {
                name,
                ..PhaseSnapshot::default()
            })
    }

    fn destination(&mut self, phase: &str, dest: String) -> &mut DestinationSnapshot {
        self.phase(phase).destinations.entry(dest).or_default()
    }

    fn finish(mut self, order: &[String]) -> Vec<PhaseSnapshot> {
        let mut out = Vec::with_capacity(self.phases.len().max(order.len()));
        for name in order {
            let name = normalize::token(name, &[]);
            if out.iter().any(|p: &PhaseSnapshot| p.name == name) {
                continue;
            }
            let p = self.phases.remove(&name).unwrap_or_else(|| PhaseSnapshot {
                name,
                ..PhaseSnapshot::default()
            });
            out.push(p);
        }
        out.extend(self.phases.into_values());
        out
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::report::{DnsQuery, Finding, UnreadReason, UnreadSpan};

    fn body(run: &StoredRun) -> String {
        PrivacySnapshot::from_run(run).render_body()
    }

    #[test]
    fn v2_fix_like_run_gives_the_expected_body() {
        assert_eq!(
            body(&v2_fix_like(7, 0)),
            "\
phase boot

phase setup

phase consent_declined
  lookup sync.kestrel.example
  to sync.kestrel.example  upload <1KiB
    http POST /v2/sync
      contacts[0]  sha1>hex
      contacts[1]  sha1>hex
      contacts[2]  sha1>hex
      imei  base64
"
        );
    }

    #[test]
    fn same_firmware_gives_a_byte_identical_snapshot() {
        // Different times, ports, synthetic addresses and number of uploads.
        let a = v1_like(7, 0);
        let b = v1_like(5, 3);
        let c = v1_like(9, 1);
        assert_ne!(a.analysis.flows[3].server, b.analysis.flows[3].server);
        assert_ne!(a.analysis.flows[2].client, b.analysis.flows[2].client);
        assert_ne!(a.phases[1].start_ns, b.phases[1].start_ns);
        let sa = PrivacySnapshot::from_run(&a).render("scenarios/cloudsync-v1.yaml");
        assert_eq!(
            sa,
            PrivacySnapshot::from_run(&b).render("scenarios/cloudsync-v1.yaml")
        );
        assert_eq!(
            sa,
            PrivacySnapshot::from_run(&c).render("scenarios/cloudsync-v1.yaml")
        );
        assert!(!sa.contains("198.1"), "{sa}");
        assert!(!sa.contains(":80"), "{sa}");
    }

    #[test]
    fn infrastructure_is_left_out() {
        let s = body(&v1_like(2, 0));
        assert!(!s.contains("10.77.0.1"), "{s}");
        assert!(!s.contains("255.255.255.255"), "{s}");
        assert!(!s.contains("dhcp"), "{s}");
        let f = fixtures::flow(
            9,
            "udp",
            "dns",
            "10.77.0.10:5000",
            "10.77.0.1:53",
            "10.77.0.1",
            40,
            T0,
        );
        assert!(f.is_network_service());
        let f = fixtures::flow(
            9,
            "udp",
            "dns",
            "10.77.0.10:5000",
            "8.8.8.8:53",
            "8.8.8.8",
            40,
            T0,
        );
        assert!(
            !f.is_network_service(),
            "DNS to another server is a destination"
        );
        let f = fixtures::flow(
            9,
            "udp",
            "",
            "10.77.0.10:68",
            "10.77.0.1:67",
            "10.77.0.1",
            40,
            T0,
        );
        assert!(f.is_network_service());
        let f = fixtures::flow(
            9,
            "tcp",
            "",
            "10.77.0.10:4000",
            "10.77.0.1:67",
            "10.77.0.1",
            40,
            T0,
        );
        assert!(!f.is_network_service(), "TCP to port 67 is not DHCP");
        let f = fixtures::flow(
            9,
            "udp",
            "",
            "10.77.0.10:4000",
            "10.77.0.1:123",
            "10.77.0.1",
            48,
            T0,
        );
        assert_eq!(
            f.network_service(),
            Some(crate::report::NetworkService::Ntp),
            "the vnet answers NTP itself"
        );
        let f = fixtures::flow(
            9,
            "udp",
            "",
            "10.77.0.10:4000",
            "10.77.0.1:9",
            "10.77.0.1",
            48,
            T0,
        );
        assert!(
            !f.is_network_service(),
            "only ARP, DHCP, DNS to the resolver and NTP are infrastructure"
        );
        assert_eq!(GATEWAY, crate::net::GATEWAY);
    }

    #[test]
    fn canary_in_infrastructure_traffic_is_kept() {
        let mut run = v3_like_no_canaries();
        let dhcp = run.analysis.flows[0].clone();
        run.analysis.findings.push(Finding {
            protocol: "dhcp".into(),
            http_method: None,
            http_path: None,
            field: Some("option 12".into()),
            phase: None,
            ..finding("phone", "raw", &dhcp, "-", "-", T0, None)
        });
        let s = body(&run);
        assert!(
            s.contains(
                "phase boot\n  to 255.255.255.255  upload <16KiB\n    dhcp\n      phone  raw\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn unread_uploads_are_recorded_and_new_ones_are_a_regression() {
        let before = v3_like_no_canaries();
        let mut after = before.clone();
        // The same upload, now inside an encrypted body (no canary seen), and unread bytes the server sent
        // (downloads are not recorded).
        let f = after
            .analysis
            .flows
            .iter()
            .find(|f| f.destination == "api.account.kestrel.example")
            .cloned()
            .unwrap();
        for (reason, direction) in [
            (UnreadReason::EncryptedPayload, Direction::Up),
            (UnreadReason::TlsCiphertext, Direction::Down),
        ] {
            after.analysis.unread.push(UnreadSpan {
                reason,
                flow: Some(f.id),
                direction,
                destination: f.destination.clone(),
                bytes: 300,
                first_ns: f.first_ns,
                last_ns: f.first_ns,
                phase: Some("consent_declined".into()),
                capture_offset: None,
            });
        }
        let (a, b) = (
            PrivacySnapshot::from_run(&before),
            PrivacySnapshot::from_run(&after),
        );
        let text = b.render_body();
        assert!(
            text.contains(
                "  to api.account.kestrel.example  upload <1KiB  unread encrypted_payload\n"
            ),
            "{text}"
        );
        assert!(!text.contains("tls_ciphertext"), "{text}");
        let back = PrivacySnapshot::parse_body(&text).unwrap();
        assert_eq!(back.phases, b.phases);
        let d = compare_snapshots(&a, &b);
        assert!(d.is_regression(), "{d:?}");
        assert!(d
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::NewUnread && c.text.contains("encrypted_payload")));
        // Back to readable: a note, not a regression.
        let d = compare_snapshots(&b, &a);
        assert!(!d.is_regression(), "{d:?}");
        assert!(d.changes.iter().any(|c| c.kind == ChangeKind::GoneUnread));
    }

    fn v3_like_no_canaries() -> StoredRun {
        demo_run(
            "cloudsync-v3",
            "v3",
            "api.account.kestrel.example",
            "GET",
            "/v3/config",
            &[],
            137,
            3,
            0,
        )
    }

    #[test]
    fn upload_bucket_is_the_largest_single_upload_not_a_sum() {
        // 40 uploads of 900 bytes: a sum would be 36000 (<256KiB); one upload is <1KiB.
        let s = PrivacySnapshot::from_run(&demo_run(
            "s",
            "r",
            "a.example",
            "POST",
            "/u",
            &[],
            900,
            40,
            0,
        ));
        let d = &s.phase("consent_declined").unwrap().destinations["a.example"];
        assert_eq!(d.upload, Some(UploadBucket::Under1KiB));
        let s = PrivacySnapshot::from_run(&demo_run(
            "s",
            "r",
            "a.example",
            "POST",
            "/u",
            &[],
            20_000,
            2,
            0,
        ));
        let d = &s.phase("consent_declined").unwrap().destinations["a.example"];
        assert_eq!(d.upload, Some(UploadBucket::Under256KiB));
    }

    #[test]
    fn phases_follow_first_frames_and_findings_their_own_phase() {
        let mut run = v3_like_no_canaries();
        let setup_start = run.phases[1].start_ns;
        // A TLS flow starting in setup, an HTTP request late in consent_declined on it.
        let mut tls = fixtures::flow(
            run.analysis.flows.len(),
            "tcp",
            "tls",
            "10.77.0.10:50000",
            "198.18.7.7:443",
            "cdn.example",
            5000,
            setup_start + 1,
        );
        tls.first_packet = 3;
        run.analysis.flows.push(tls.clone());
        // A finding on it recorded for consent_declined, received from the server.
        run.analysis.findings.push(Finding {
            protocol: "tls".into(),
            http_method: None,
            http_path: None,
            direction: Direction::Down,
            ..finding(
                "email",
                "raw",
                &tls,
                "-",
                "-",
                setup_start + 2,
                Some("consent_declined"),
            )
        });
        // A finding without a phase counts as boot.
        run.analysis.findings.push(Finding {
            protocol: "tls".into(),
            http_method: None,
            http_path: None,
            ..finding("imei", "md5>hex", &tls, "-", "-", setup_start + 3, None)
        });
        let s = PrivacySnapshot::from_run(&run);
        let names: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["boot", "setup", "consent_declined"]);
        let setup = &s.phase("setup").unwrap().destinations["cdn.example"];
        assert_eq!(setup.upload, Some(UploadBucket::Under16KiB));
        let late = &s.phase("consent_declined").unwrap().destinations["cdn.example"];
        assert_eq!(late.upload, None, "no connection started in this phase");
        let text = s.render_body();
        assert!(
            text.contains("  to cdn.example\n    tls\n      email  raw  received\n"),
            "{text}"
        );
        assert!(
            text.contains("phase boot\n  to cdn.example\n    tls\n      imei  md5>hex\n"),
            "{text}"
        );
    }

    #[test]
    fn synthetic_addresses_are_named_by_dns_or_hidden() {
        let mut run = v3_like_no_canaries();
        let n = run.analysis.flows.len();
        let at = run.phases[2].start_ns + 10;
        // A bare synthetic address that a DNS answer names, one that none does, a public one.
        for (i, (server, dest)) in [
            ("198.19.1.2:8443", "198.19.1.2"),
            ("198.18.200.3:443", "198.18.200.3"),
            ("93.184.216.34:443", "93.184.216.34"),
        ]
        .into_iter()
        .enumerate()
        {
            run.analysis.flows.push(fixtures::flow(
                n + i,
                "tcp",
                "",
                "10.77.0.10:41000",
                server,
                dest,
                10,
                at,
            ));
        }
        run.analysis.dns_queries.push(DnsQuery {
            name: "Telemetry.Example.".into(),
            qtype: "A".into(),
            packet: 0,
            flow: 2,
            rcode: None,
            answers: vec!["198.19.1.2".into()],
        });
        let s = body(&run);
        assert!(
            s.contains("  to telemetry.example  upload <1KiB\n    tcp\n"),
            "{s}"
        );
        assert!(
            s.contains("  to 198.18.0.0/15  upload <1KiB\n    tcp\n"),
            "{s}"
        );
        assert!(
            s.contains("  to 93.184.216.34  upload <1KiB\n    tcp\n"),
            "{s}"
        );
        assert!(!s.contains("8443") && !s.contains("200.3"), "{s}");
    }

    #[test]
    fn requests_are_normalised_and_keep_only_query_names() {
        let mut run = v3_like_no_canaries();
        let f = run.analysis.flows[3].clone();
        for (i, q) in ["did=353604416773002&t=1795288429", "t=1795288434&did=x&v=2"]
            .into_iter()
            .enumerate()
        {
            let mut r = fixtures::request(
                "GET",
                &format!("/v1/device/{}/ping", 1000 + i),
                Some(q),
                &f,
                f.first_ns + 1,
            );
            r.packet = f.first_packet + 2;
            run.analysis.http_requests.push(r);
        }
        let s = body(&run);
        assert!(
            s.contains("    http GET /v1/device/{n}/ping?did&t&v\n    http GET /v3/config\n"),
            "{s}"
        );
        assert!(
            !s.contains("353604416773002") && !s.contains("1795288"),
            "{s}"
        );
    }

    #[test]
    fn dns_lookups_take_the_phase_of_the_frames_before_them() {
        let run = v2_fix_like(2, 0);
        let s = PrivacySnapshot::from_run(&run);
        assert!(s.phase("boot").unwrap().lookups.is_empty());
        assert_eq!(
            s.phase("consent_declined")
                .unwrap()
                .lookups
                .iter()
                .collect::<Vec<_>>(),
            ["sync.kestrel.example"]
        );
        // A question in frame 2, between the boot DHCP frames and the first cycle.
        let mut run = run;
        run.analysis.dns_queries.push(DnsQuery {
            name: "early.example".into(),
            qtype: "AAAA".into(),
            packet: 2,
            flow: 0,
            rcode: None,
            answers: Vec::new(),
        });
        let s = PrivacySnapshot::from_run(&run);
        assert!(s.phase("boot").unwrap().lookups.contains("early.example"));
    }

    #[test]
    fn a_run_without_phases_is_all_boot() {
        let mut run = v2_fix_like(1, 0);
        run.phases.clear();
        for f in &mut run.analysis.findings {
            f.phase = None;
        }
        let s = PrivacySnapshot::from_run(&run);
        let names: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["boot"]);
        assert!(s.phases[0]
            .destinations
            .contains_key("sync.kestrel.example"));
    }

    #[test]
    fn odd_report_values_do_not_panic() {
        let mut run = v1_like(1, 0);
        let r = &mut run.analysis;
        // Addresses are typed now (a damaged one is refused when the report is read); the unspecified ones
        // are the odd values left.
        r.flows[2].client = "0.0.0.0:0".parse().unwrap();
        r.flows[2].server = "[::]:0".parse().unwrap();
        r.flows[3].destination = "".into();
        r.findings[0].flow = usize::MAX;
        r.findings[0].canary = "two words".into();
        r.findings[0].encoding = "".into();
        r.findings[1].phase = Some("phase with\nnewline".into());
        r.http_requests[0].flow = 12345;
        r.http_requests[0].path = "".into();
        r.dns_queries[0].packet = u64::MAX;
        let s = PrivacySnapshot::from_run(&run);
        let text = s.render("x.yaml");
        let back = SnapFile::parse(&text).unwrap().snapshot().unwrap();
        assert_eq!(back.phases, s.phases);
        assert!(text.contains("phase phase%20with%0Anewline\n"), "{text}");
        assert!(text.contains("      two%20words  -\n"), "{text}");
    }
}
