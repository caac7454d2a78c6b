//! The analysis engine: frames in, privacy report out (sans-IO).
//!
//! [`Analyzer`] takes decoded-or-not frames one at a time ([`Analyzer::packet`]) and keeps only bounded state per
//! live conversation: a reassembler and a canary scanner per TCP direction, and the protocol parser chosen for
//! that direction (HTTP, TLS handshake, DNS over TCP). Everything it learns is collected into a
//! [`crate::report::Report`] by [`Analyzer::finish`]. It never touches files or sockets: the capture reader
//! ([`crate::capture`]) feeds it, and so will the virtual network's live capture.
//!
//! Canary search is one multi-pattern pass ([`crate::canary::Matcher`]) over: every reassembled TCP stream in both
//! directions (except TLS application data, which is ciphertext and only counted as opaque), every UDP payload,
//! every decoded HTTP body (chunked / gzip / deflate / br / zstd undone), percent-decoded query parameters and DNS
//! query names (dotted, and with the labels joined, for data split across labels). Every other channel is searched
//! as raw bytes: the payload of IP protocols other than TCP and UDP (ICMP/ICMPv6 echo data and quoted datagrams,
//! SCTP chunks, unknown protocol numbers, IPv6 fragments, tunnels nested beyond the decapsulation depth), IPv4
//! options and IPv6 extension headers, and every non-IP, undecodable or malformed frame whole (ARP, vendor
//! EtherTypes, 802.11 frames), in pseudo-conversations named by destination MAC address. TLS that starts inside a
//! cleartext TCP protocol (STARTTLS and the like) is read as TLS from its first handshake record on.

mod collect;
mod tcp;
mod tls_decrypt;
mod units;

use units::{Judge, Unit};

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::canary::Matcher;
use crate::capture::{Damage, Packet};
use crate::decode::{self, Outcome, Transport};
use crate::flow::{self, FlowKey};
use crate::report::{App, Direction, Report, UnreadReason};

use collect::{Collector, Sent};
use tcp::TcpConn;

/// Default of [`Config::max_live_tcp`]: about 2.5 KB of state each when idle, so some 25 MB in all, plus what each
/// one buffers (at most twice [`Config::reassembly_cap`]).
pub const MAX_LIVE_TCP: usize = 10_000;

/// Default of [`Config::max_flow_records`].
pub const MAX_FLOW_RECORDS: usize = 50_000;

/// Default of [`Config::max_dns_records`]: DNS questions listed in the report (`dns_queries`), some 150 bytes
/// each with a short name and answer (a 255-byte name with many answers: a few KB).
pub const MAX_DNS_RECORDS: usize = 50_000;

/// Default of [`Config::max_http_records`]: HTTP requests listed in the report (`http_requests`). Fewer than
/// the others because a request is the largest record (its headers, up to 64 of up to 512 bytes): about 1-2 KB
/// for a typical one.
pub const MAX_HTTP_RECORDS: usize = 20_000;

/// Default of [`Config::max_tls_records`]: TLS and QUIC ClientHellos listed in the report (`tls`), some 300
/// bytes each.
pub const MAX_TLS_RECORDS: usize = 50_000;

/// Default of [`Config::max_dhcp_records`]: DHCP messages listed in the report (`dhcp`), some 200 bytes each.
pub const MAX_DHCP_RECORDS: usize = 50_000;

/// The destination of the folded record of each protocol and application past half [`Config::max_flow_records`].
const MORE_DESTINATIONS: &str = "(more destinations)";

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// Cap of each TCP direction's out-of-order buffer, in bytes.
    pub reassembly_cap: usize,
    /// Conversations idle for this long (capture time) release their reassembly state.
    pub idle_timeout_ns: u64,
    /// TCP conversations with live state (reassembly, parsers, scanners) at most. Past it, the conversation that
    /// got its state first is finished early (flushed and searched, like an idle one); what it sends later is read
    /// from the middle of the stream and is also an unread span (`state_cap`). Bounds the analysis' memory on
    /// captures with a million connections.
    pub max_live_tcp: usize,
    /// Conversation records kept one by one before folding: when there are more, finished conversations that no
    /// finding, unread span, DNS question, HTTP request or TLS hello refers to are folded into one record per
    /// protocol, application, server address and destination that counts them (`FlowRecord::folded`); past half
    /// this many such records, into one per protocol and application (destination `(more destinations)`).
    /// Bounds the engine's memory on captures with a million flows; what is referred to stays one by one.
    pub max_flow_records: usize,
    /// DNS questions kept as records (`dns_queries`) at most. Past it a question is searched as before but not
    /// listed: the bytes of its message are an unread span (`state_cap`) on its flow and direction, and a warning
    /// (`record-cap`) counts the questions not kept. Bounds the report and the engine's memory on captures with a
    /// million DNS queries.
    pub max_dns_records: usize,
    /// HTTP requests (HTTP/1.x, SSDP, HTTP/2) kept as records (`http_requests`) at most; past it, as
    /// [`Config::max_dns_records`] (the request's head is `state_cap` unread, its body is searched and accounted
    /// as any body; its response is paired with nothing).
    pub max_http_records: usize,
    /// TLS and QUIC ClientHellos kept as records (`tls`) at most; past it, as [`Config::max_dns_records`] (the
    /// connection is still named by its SNI; its ServerHello and decryption state are recorded nowhere; a QUIC
    /// hello's datagram is `quic_ciphertext` unread already, so it is only counted).
    pub max_tls_records: usize,
    /// DHCP messages kept as records (`dhcp`) at most; past it, as [`Config::max_dns_records`].
    pub max_dhcp_records: usize,
    /// Phases of a run: `(start time in ns since the epoch, name)`, in time order. When set,
    /// every finding names the phase of its first occurrence, and occurrences in different
    /// phases are separate findings (so a connection that spans a phase change still shows
    /// what it sent in each phase). Empty: no phases.
    pub phases: Vec<(u64, String)>,
    /// TLS session keys (key log files, pcapng decryption secrets blocks): TLS connections whose keys are here are
    /// decrypted and their plaintext searched like cleartext.
    pub keys: Arc<crate::proto::keylog::KeyLog>,
    /// Limits of the decoding graph per input (depth, bytes, work, decompression cap).
    pub layers: crate::layers::Limits,
    /// The decoding graph's budget for the whole capture.
    pub decode_budget: crate::layers::Budget,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reassembly_cap: 512 << 10,
            idle_timeout_ns: 600 * 1_000_000_000,
            max_live_tcp: MAX_LIVE_TCP,
            max_flow_records: MAX_FLOW_RECORDS,
            max_dns_records: MAX_DNS_RECORDS,
            max_http_records: MAX_HTTP_RECORDS,
            max_tls_records: MAX_TLS_RECORDS,
            max_dhcp_records: MAX_DHCP_RECORDS,
            phases: Vec::new(),
            keys: Arc::default(),
            layers: crate::layers::Limits::default(),
            decode_budget: crate::layers::Budget::default(),
        }
    }
}

/// Per-conversation state.
struct Flow {
    proto: u8,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    first_ns: u64,
    last_ns: u64,
    first_packet: u64,
    packets: [u64; 2],
    bytes: [u64; 2],
    opaque_bytes: u64,
    app: App,
    dns_name: Option<String>,
    sni: Option<String>,
    host: Option<String>,
    tcp: Option<Box<TcpConn>>,
    /// Reader of the client's QUIC Initial packets, while the ClientHello is still expected.
    quic: Option<Box<crate::proto::quic::QuicInitialReader>>,
    tcp_stats: Option<[flow::reassembly::ReassemblyStats; 2]>,
    /// Both directions finished (FIN delivered or RST): a new SYN on the same tuple opens a new flow.
    closed: bool,
    /// Its state was released early under [`Config::max_live_tcp`]: later bytes are `state_cap` spans.
    evicted: bool,
    /// Conversations folded into this record (0: it is one conversation; see [`Config::max_flow_records`]).
    folded: u64,
}

impl Flow {
    /// Best name of the server end.
    fn destination(&self) -> String {
        if let Some(s) = &self.sni {
            return s.clone();
        }
        if let Some(h) = &self.host {
            return strip_port(h).to_string();
        }
        if let Some(n) = &self.dns_name {
            return n.clone();
        }
        self.server.0.to_string()
    }

    fn address(&self) -> std::net::SocketAddr {
        self.server.into()
    }

    fn dir_of(&self, src: (IpAddr, u16)) -> usize {
        if src == self.client {
            0
        } else {
            1
        }
    }
}

fn sockaddr(a: (IpAddr, u16)) -> String {
    match a.0 {
        IpAddr::V4(v4) => format!("{v4}:{}", a.1),
        IpAddr::V6(v6) => format!("[{v6}]:{}", a.1),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split(']')
            .next()
            .map(|h| h.trim_start_matches('['))
            .unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Where a packet was, for findings.
#[derive(Debug, Clone, Copy)]
struct At {
    packet: u64,
    ts: u64,
}

/// The analysis engine. Feed it frames, then call [`Analyzer::finish`].
pub struct Analyzer {
    matcher: Arc<Matcher>,
    cfg: Config,
    index: FxHashMap<FlowKey, usize>,
    flows: Vec<Flow>,
    /// Address → the DNS name it was last given as an answer for.
    names: FxHashMap<IpAddr, String>,
    out: Collector,
    live_tcp: usize,
    /// Flows in the order their TCP state was made (some since released), for [`Config::max_live_tcp`].
    live_order: std::collections::VecDeque<usize>,
    /// TCP conversations whose state was released early under [`Config::max_live_tcp`].
    tcp_evicted: u64,
    /// Flow count at which the next folding runs ([`Config::max_flow_records`]).
    fold_at: usize,
    /// Conversations folded so far, and how many of them had had their state released early.
    flows_folded: u64,
    folded_evicted: u64,
    next_sweep: u64,
    defrag: flow::defrag::Defragmenter,
    /// Pseudo-conversations of non-IP frames, by link label.
    link_flows: FxHashMap<String, usize>,
    /// Capture damage: (offset, bytes skipped, time of the last packet read before it).
    damaged: Vec<(u64, u64, u64)>,
    /// ClientHello randoms whose logged keys were used.
    keys_matched: rustc_hash::FxHashSet<[u8; 32]>,
    /// What is left of the decoding graph's capture-wide budget.
    budget: crate::layers::Budget,
}

impl Analyzer {
    /// An engine searching for the matcher's canaries.
    pub fn new(matcher: Arc<Matcher>, cfg: Config) -> Self {
        let canaries = matcher
            .identity()
            .canaries
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let out = Collector::new(canaries, &cfg);
        let budget = cfg.decode_budget.clone();
        Analyzer {
            matcher,
            cfg,
            index: FxHashMap::default(),
            flows: Vec::new(),
            names: FxHashMap::default(),
            out,
            live_tcp: 0,
            live_order: std::collections::VecDeque::new(),
            tcp_evicted: 0,
            fold_at: 0,
            flows_folded: 0,
            folded_evicted: 0,
            next_sweep: 1 << 16,
            defrag: flow::defrag::Defragmenter::default(),
            link_flows: FxHashMap::default(),
            budget,
            damaged: Vec::new(),
            keys_matched: Default::default(),
        }
    }

    /// Sets the file facts reported in `capture`.
    pub fn set_capture_info(&mut self, file: &str, format: &str, gzip: bool) {
        self.out.capture.file = file.to_string();
        self.out.capture.format = format.to_string();
        self.out.capture.gzip = gzip;
    }

    /// Records damage in the capture (reading may have resumed after it: [`Damage::resumed`]).
    pub fn damage(&mut self, d: &Damage) {
        self.out.capture.damaged_at.get_or_insert(d.offset);
        self.damaged
            .push((d.offset, d.skipped, self.out.capture.last_ns));
        self.out
            .warn("damaged-capture", d.message.clone(), Some(d.offset));
    }

    /// Adds a warning of the caller's (e.g. about the input).
    pub fn warn(&mut self, kind: &str, message: String) {
        self.out.warn(kind, message, None);
    }

    /// Analyses one frame.
    pub fn packet(&mut self, p: &Packet<'_>) {
        let c = &mut self.out.capture;
        if c.packets == 0 {
            c.first_ns = p.ts_nanos;
        }
        c.packets += 1;
        c.bytes += p.data.len() as u64;
        c.last_ns = c.last_ns.max(p.ts_nanos);
        self.out.count_link(p.link_type);
        let at = At {
            packet: p.number,
            ts: p.ts_nanos,
        };
        match decode::decode(p.link_type, p.data) {
            Outcome::Ip(d) => {
                if let Some(frag) = &d.fragment_ip {
                    // Analysed once whole; a datagram that never completes is lost (counted).
                    self.out.capture.ip_fragments += 1;
                    if let Some(whole) = self.defrag.push(frag.header(), frag.payload) {
                        if let Outcome::Ip(d) = decode::decode(decode::link::RAW_ALIASES[2], &whole)
                        {
                            self.ip(d, at);
                        }
                    }
                } else {
                    if d.fragment {
                        self.out.capture.ip_fragments += 1;
                    }
                    self.ip(d, at);
                }
            }
            Outcome::NonIp(name) => {
                self.out.capture.non_ip_packets += 1;
                self.link_frame(p, name, at);
            }
            Outcome::UnsupportedLink => self.link_frame(p, "unsupported link type", at),
            Outcome::Malformed => {
                self.out.capture.malformed_packets += 1;
                self.link_frame(p, "malformed frame", at);
            }
        }
        if p.number >= self.next_sweep {
            self.next_sweep = p.number + (1 << 16);
            self.sweep_idle(p.ts_nanos);
        }
    }

    /// Records a TLS ClientHello (over TCP or QUIC), sent as `sent`, and names the flow by its SNI; returns the
    /// record's index ([`collect::NOT_KEPT`] past [`Config::max_tls_records`]).
    fn record_hello(&mut self, fi: usize, ch: crate::proto::tls::ClientHello, sent: Sent) -> usize {
        let f = &mut self.flows[fi];
        if f.sni.is_none() {
            f.sni.clone_from(&ch.sni);
        }
        let decryption = Some(if f.proto == flow::UDP {
            crate::report::TlsDecryption {
                state: "unsupported".into(),
                detail: Some(
                    "QUIC 1-RTT decryption is not implemented: only the client's Initial packets were read".into(),
                ),
                ..Default::default()
            }
        } else {
            crate::report::TlsDecryption {
                state: "no_key".into(),
                detail: Some(if self.cfg.keys.is_empty() {
                    "no key log given".into()
                } else {
                    "no key logged for this connection's ClientHello random".into()
                }),
                ..Default::default()
            }
        });
        let versions = if ch.supported_versions.is_empty() {
            vec![ch.legacy_version]
        } else {
            ch.supported_versions
        };
        let hello = crate::report::TlsHello {
            sni: ch.sni,
            alpn: ch.alpn,
            versions,
            ja4: ch.ja4,
            negotiated_version: None,
            destination: String::new(),
            flow: fi,
            packet: sent.at.packet,
            decryption,
        };
        self.out.tls(hello, sent)
    }

    fn ip(&mut self, d: decode::Decoded<'_>, at: At) {
        if d.depth_exceeded || (d.missing > 0 && !matches!(d.transport, Transport::Tcp(..))) {
            self.account_unread_ip(&d, at);
        }
        match d.transport {
            Transport::Tcp(t, payload) => self.tcp(d.src, d.dst, t, payload, d.missing, at),
            Transport::Udp(sp, dp, payload) => self.udp((d.src, sp), (d.dst, dp), payload, at),
            Transport::Other(n, payload) => self.other_ip(&d, n, payload, at),
        }
        if !d.ip_options.bytes().is_empty() {
            // IPv4 options / IPv6 extension headers: searched as raw bytes in the packet's conversation.
            let (proto, sp, dp, syn, ack) = match d.transport {
                Transport::Tcp(t, _) => (flow::TCP, t.src_port, t.dst_port, t.syn, t.ack_flag),
                Transport::Udp(sp, dp, _) => (flow::UDP, sp, dp, false, false),
                Transport::Other(n, _) => (n, 0, 0, false, false),
            };
            let (fi, dir) = self.flow_for(proto, (d.src, sp), (d.dst, dp), syn, ack, at);
            let (protocol, field) = if d.src.is_ipv4() {
                ("ipv4", "options")
            } else {
                ("ipv6", "extension headers")
            };
            self.scan_bytes(
                fi,
                dir,
                protocol,
                Some(field),
                d.ip_options.bytes(),
                at,
                &[],
            );
        }
    }

    /// Unread bytes of a non-TCP packet: cut by the snap length, or nested beyond the decapsulation bound.
    fn account_unread_ip(&mut self, d: &decode::Decoded<'_>, at: At) {
        let (proto, sp, dp, len) = match d.transport {
            Transport::Tcp(t, p) => (flow::TCP, t.src_port, t.dst_port, p.len()),
            Transport::Udp(sp, dp, p) => (flow::UDP, sp, dp, p.len()),
            Transport::Other(n, p) => (n, 0, 0, p.len()),
        };
        let (fi, dir) = self.flow_for(proto, (d.src, sp), (d.dst, dp), false, false, at);
        if d.missing > 0 && proto != flow::TCP {
            let n = u64::from(d.missing);
            self.out.unread(fi, dir, UnreadReason::SnapLength, n, at.ts);
        }
        if d.depth_exceeded {
            self.out
                .unread(fi, dir, UnreadReason::TunnelDepth, len as u64, at.ts);
        }
    }

    /// An IP packet of a protocol other than TCP and UDP (ICMP, ICMPv6, SCTP, unknown numbers, IPv6 fragments):
    /// its payload is searched as raw bytes, in a conversation per protocol and address pair.
    fn other_ip(&mut self, d: &decode::Decoded<'_>, proto: u8, payload: &[u8], at: At) {
        let (fi, dir) = self.flow_for(proto, (d.src, 0), (d.dst, 0), false, false, at);
        let f = &mut self.flows[fi];
        f.last_ns = f.last_ns.max(at.ts);
        f.packets[dir] += 1;
        f.bytes[dir] += payload.len() as u64 + u64::from(d.missing);
        let (protocol, field) = other_ip_field(proto, payload, d.fragment);
        if f.app.is_unknown() {
            f.app = match protocol {
                "icmp" => App::Icmp,
                "icmpv6" => App::Icmpv6,
                "sctp" => App::Sctp,
                _ => App::Ip,
            };
        }
        self.scan_bytes(fi, dir, protocol, Some(field), payload, at, &[]);
    }

    /// A frame that is not IP (ARP, a vendor EtherType, 802.11 management, an undecodable link type or a
    /// malformed frame): all its captured bytes are searched, in a pseudo-conversation per link label.
    fn link_frame(&mut self, p: &Packet<'_>, name: &'static str, at: At) {
        let mut hits = Vec::new();
        self.matcher.find_all(p.data, &mut hits);
        let (label, field) = link_label(p, name);
        // ARP is the segment's own plumbing (`FlowRecord::is_network_service`): it gets conversations of its
        // own, apart from any other non-IP traffic to the same address, which is the device's.
        let arp = name == "ARP";
        let key = if arp {
            format!("arp {label}")
        } else {
            label.clone()
        };
        let fi = match self.link_flows.get(&key) {
            Some(&i) => i,
            None => {
                let unspec = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
                let i = self.push_flow(LINK_PROTO, (unspec, 0), (unspec, 0), at);
                self.flows[i].host = Some(label.clone());
                self.flows[i].app = if arp { App::Arp } else { App::Link };
                self.link_flows.insert(key, i);
                i
            }
        };
        let f = &mut self.flows[fi];
        f.last_ns = f.last_ns.max(at.ts);
        f.packets[0] += 1;
        f.bytes[0] += p.data.len() as u64;
        let protocol = if name == "ARP" { "arp" } else { "link" };
        if name == "802.11 protected" {
            self.out.unread(
                fi,
                0,
                UnreadReason::EncryptedLink,
                p.data.len() as u64,
                at.ts,
            );
        }
        for h in &hits {
            self.out.finding(collect::Raw {
                flow: fi,
                canary: h.canary,
                encoding: h.encoding.to_string(),
                dir: 0,
                protocol,
                field: Some(field.clone()),
                decoded_from: None,
                http: None,
                packet: at.packet,
                ts: at.ts,
                offset: h.start as u64,
                excerpt: collect::excerpt(p.data, h.start, h.end),
                zone: None,
            });
        }
    }

    /// Finds or creates the flow for a packet; returns its index and the packet's direction.
    fn flow_for(
        &mut self,
        proto: u8,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        syn: bool,
        ack: bool,
        at: At,
    ) -> (usize, usize) {
        let key = FlowKey::new(proto, src, dst);
        if let Some(&i) = self.index.get(&key) {
            let reopen = proto == flow::TCP && syn && !ack && self.flows[i].closed;
            if !reopen {
                let f = &mut self.flows[i];
                return (i, f.dir_of(src));
            }
        }
        if self.flows.len() >= self.fold_at.max(self.cfg.max_flow_records) {
            self.fold_flows();
        }
        let sender_is_server = flow::first_sender_is_server(src.1, dst.1, syn, ack);
        let (client, server) = if sender_is_server {
            (dst, src)
        } else {
            (src, dst)
        };
        let i = self.push_flow(proto, client, server, at);
        // A TCP conversation that appears without its SYN after a released one was folded may be that one
        // resuming: read from the middle of its stream, so its bytes are `state_cap` too.
        if proto == flow::TCP && !syn && self.folded_evicted > 0 {
            self.flows[i].evicted = true;
        }
        self.index.insert(key, i);
        (i, if sender_is_server { 1 } else { 0 })
    }

    fn push_flow(
        &mut self,
        proto: u8,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        at: At,
    ) -> usize {
        let i = self.flows.len();
        self.flows.push(Flow {
            proto,
            client,
            server,
            first_ns: at.ts,
            last_ns: at.ts,
            first_packet: at.packet,
            packets: [0; 2],
            bytes: [0; 2],
            opaque_bytes: 0,
            app: App::Unknown,
            dns_name: self.names.get(&server.0).cloned(),
            sni: None,
            host: None,
            tcp: None,
            quic: None,
            tcp_stats: None,
            closed: false,
            evicted: false,
            folded: 0,
        });
        i
    }

    fn udp(&mut self, src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8], at: At) {
        let (fi, dir) = self.flow_for(flow::UDP, src, dst, false, false, at);
        let f = &mut self.flows[fi];
        f.last_ns = f.last_ns.max(at.ts);
        f.packets[dir] += 1;
        f.bytes[dir] += payload.len() as u64;
        let ports = (f.client.1, f.server.1);
        let is = |p: u16| ports.0 == p || ports.1 == p;
        if is(53) || is(5353) || is(5355) {
            f.app = App::Dns;
            self.dns_message(fi, dir, payload, at);
        } else if is(67) || is(68) {
            f.app = App::Dhcp;
            if let Ok(info) = crate::proto::dhcp::parse_dhcp(payload) {
                self.out.dhcp(info, Sent::new(fi, dir, payload.len(), at));
            }
            self.scan_datagram(fi, dir, "dhcp", payload, at, &[]);
        } else if is(1900) {
            // SSDP: HTTP heads over UDP.
            self.flows[fi].app = App::Ssdp;
            if let Some(head) =
                crate::proto::http::parse_datagram(crate::proto::http::Role::Client, payload)
            {
                if let Some(req) = tcp::request_record(&head, fi, at) {
                    self.out.http_request_from(req, dir, payload.len() as u64);
                }
            }
            self.scan_datagram(fi, dir, "ssdp", payload, at, &[]);
        } else if ports.0 > 1023 && ports.1 > 1023 && crate::proto::dns::looks_like_dns(payload) {
            // DNS on a port of its own choosing (Wireshark's heuristic, for the same answers as tshark).
            self.flows[fi].app = App::Dns;
            self.dns_message(fi, dir, payload, at);
        } else {
            if dir == 0 {
                self.quic_datagram(fi, payload, at);
            }
            let protocol = if self.flows[fi].app == App::Quic {
                // Searched raw as well, but without keys its packets are not read.
                self.out.unread(
                    fi,
                    dir,
                    UnreadReason::QuicCiphertext,
                    payload.len() as u64,
                    at.ts,
                );
                "quic"
            } else {
                if dir == 0 && crate::layers::opaque::classify(payload).is_some() {
                    // A datagram the device encrypted itself (PGP, CMS, age, JWE, high entropy): not read.
                    self.out.unread(
                        fi,
                        dir,
                        UnreadReason::EncryptedPayload,
                        payload.len() as u64,
                        at.ts,
                    );
                }
                "udp"
            };
            self.scan_datagram(fi, dir, protocol, payload, at, &[]);
        }
    }

    /// A client datagram of a UDP conversation: QUIC Initial packets up to the ClientHello.
    fn quic_datagram(&mut self, fi: usize, payload: &[u8], at: At) {
        use crate::proto::quic::{looks_like_quic_initial, QuicProgress};
        let f = &mut self.flows[fi];
        if f.quic.is_none() {
            // Decided on the client's first datagram only.
            if f.packets[0] != 1 || !looks_like_quic_initial(payload) {
                return;
            }
            f.app = App::Quic;
            f.quic = Some(Box::default());
        }
        let Some(mut reader) = f.quic.take() else {
            return;
        };
        match reader.push_client_datagram(payload) {
            QuicProgress::NeedMore => f.quic = Some(reader),
            QuicProgress::ClientHello(ch) => {
                // Its bytes are `quic_ciphertext` unread already (below): not counted twice.
                self.record_hello(fi, ch, Sent::new(fi, 0, 0, at));
                // Encrypted on the wire: search the decrypted hello too.
                if let Some(msg) = reader.client_hello_message() {
                    self.scan_datagram(fi, 0, "quic", msg, at, &[]);
                }
            }
            QuicProgress::Error(e) => {
                self.out
                    .warn("quic", format!("{}: {e}", sockaddr(f.server)), None)
            }
            QuicProgress::Done | QuicProgress::NotQuic => {
                let s = reader.stats();
                if s.truncated > 0 || s.undecryptable > 0 {
                    let msg = format!(
                        "{}: QUIC ClientHello not seen ({} Initial packets truncated, {} undecryptable)",
                        sockaddr(f.server),
                        s.truncated,
                        s.undecryptable
                    );
                    self.out.warn("quic", msg, None);
                }
            }
        }
    }

    /// A DNS message (UDP datagram or one TCP-framed message): names, answers, and canaries in names.
    fn dns_message(&mut self, fi: usize, dir: usize, payload: &[u8], at: At) {
        let mut found_in_names: Vec<usize> = Vec::new();
        if let Ok(msg) = crate::proto::dns::parse_dns(payload) {
            for q in &msg.questions {
                if msg.is_response {
                    // The question echoed in an answer is the query's canary again, not a second finding:
                    // skipped in the raw search below too.
                    let mut hits = Vec::new();
                    self.matcher.find_all(q.name.as_bytes(), &mut hits);
                    let joined: Vec<u8> = q.name.bytes().filter(|&b| b != b'.').collect();
                    self.matcher.find_all(&joined, &mut hits);
                    found_in_names.extend(hits.iter().map(|h| h.canary));
                } else {
                    found_in_names.extend(self.scan_dns_name(fi, dir, &q.name, at));
                }
            }
            self.out.dns(&msg, Sent::new(fi, dir, payload.len(), at));
            self.learn_names(&msg);
        }
        self.scan_datagram(fi, dir, "dns", payload, at, &found_in_names);
    }

    /// Remembers which name each answered address belongs to, so later conversations get a name.
    fn learn_names(&mut self, msg: &crate::proto::dns::DnsMessage) {
        if !msg.is_response {
            return;
        }
        let qname = msg.questions.first().map(|q| q.name.as_str());
        for a in &msg.answers {
            let ip = match a.data {
                crate::proto::dns::DnsData::A(v4) => IpAddr::V4(v4),
                crate::proto::dns::DnsData::Aaaa(v6) => IpAddr::V6(v6),
                _ => continue,
            };
            self.names.insert(ip, qname.unwrap_or(&a.name).to_string());
        }
    }

    /// Searches a DNS name as text and with its labels joined (through the decoding graph: base32 or hex spread
    /// over labels). Returns the canaries found.
    fn scan_dns_name(&mut self, fi: usize, dir: usize, name: &str, at: At) -> Vec<usize> {
        let mut hits = Vec::new();
        self.matcher.find_all(name.as_bytes(), &mut hits);
        let mut hay = name.as_bytes().to_vec();
        if hits.is_empty() && name.contains('.') {
            hay = name.bytes().filter(|&b| b != b'.').collect();
            self.matcher.find_all(&hay, &mut hits);
        }
        let mut seen = Vec::new();
        for h in &hits {
            seen.push(h.canary);
            self.out.finding(collect::Raw {
                flow: fi,
                canary: h.canary,
                encoding: h.encoding.to_string(),
                dir,
                protocol: "dns",
                field: Some("query name".into()),
                decoded_from: None,
                http: None,
                packet: at.packet,
                ts: at.ts,
                offset: h.start as u64,
                excerpt: collect::excerpt(&hay, h.start, h.end),
                // The leak goes to whoever answers for the name, not to the resolver that forwards it.
                zone: Some(crate::proto::dns::zone_of(name)),
            });
        }
        // The labels left of the registered domain (its last two labels), joined: data spread over labels.
        let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
        let keep = if labels.len() > 2 {
            labels.len() - 2
        } else {
            labels.len()
        };
        let joined: Vec<u8> = labels.iter().take(keep).flat_map(|l| l.bytes()).collect();
        let more = self.search_unit(Unit {
            flow: fi,
            dir,
            protocol: "dns",
            field: Some("query name"),
            prefix: None,
            decoded_from: None,
            http: None,
            bytes: &joined,
            hint: crate::layers::Hint::None,
            at,
            report_root: false,
            found: &seen,
            zone: Some(crate::proto::dns::zone_of(name)),
            judge: Judge::Layers,
        });
        seen.extend(more);
        seen
    }

    /// Searches one datagram payload; hits of canaries in `skip` were already reported from a decoded form.
    fn scan_datagram(
        &mut self,
        fi: usize,
        dir: usize,
        protocol: &'static str,
        payload: &[u8],
        at: At,
        skip: &[usize],
    ) {
        self.scan_bytes(fi, dir, protocol, None, payload, at, skip);
    }

    /// Searches bytes of a packet as raw bytes, naming the protocol and field of the hits.
    #[allow(clippy::too_many_arguments)]
    fn scan_bytes(
        &mut self,
        fi: usize,
        dir: usize,
        protocol: &'static str,
        field: Option<&str>,
        payload: &[u8],
        at: At,
        skip: &[usize],
    ) {
        self.search_unit(Unit {
            flow: fi,
            dir,
            protocol,
            field,
            prefix: None,
            decoded_from: None,
            http: None,
            bytes: payload,
            hint: crate::layers::Hint::None,
            at,
            report_root: true,
            found: skip,
            zone: None,
            judge: Judge::Layers,
        });
    }

    fn tcp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        t: decode::TcpInfo,
        payload: &[u8],
        missing: u32,
        at: At,
    ) {
        let (fi, dir) = self.flow_for(
            flow::TCP,
            (src, t.src_port),
            (dst, t.dst_port),
            t.syn,
            t.ack_flag,
            at,
        );
        let cap = self.cfg.reassembly_cap;
        let (evicted, fresh) = {
            let f = &mut self.flows[fi];
            f.last_ns = f.last_ns.max(at.ts);
            f.packets[dir] += 1;
            f.bytes[dir] += payload.len() as u64 + u64::from(missing);
            if f.closed {
                return; // late packets of a finished connection
            }
            let fresh = f.tcp.is_none();
            if fresh {
                f.tcp = Some(Box::new(TcpConn::new(&self.matcher, cap)));
            }
            (f.evicted, fresh)
        };
        if evicted {
            let n = payload.len() as u64 + u64::from(missing);
            self.out.unread(fi, dir, UnreadReason::StateCap, n, at.ts);
        }
        if fresh {
            self.live_tcp += 1;
            self.live_order.push_back(fi);
            self.evict_tcp(fi);
        }
        tcp::segment(self, fi, dir, t, payload, missing, at);
        let f = &mut self.flows[fi];
        let done = f.tcp.as_ref().is_some_and(|c| c.finished()) || t.rst;
        if done {
            self.close_tcp(fi);
        }
    }

    /// Ends a TCP conversation: flushes holes, finishes parsers, releases its state.
    fn close_tcp(&mut self, fi: usize) {
        if self.flows[fi].tcp.is_none() {
            return;
        }
        tcp::flush(self, fi);
        let f = &mut self.flows[fi];
        if let Some(conn) = f.tcp.take() {
            f.tcp_stats = Some(conn.stats());
            self.live_tcp -= 1;
        }
        f.closed = true;
    }

    /// Folds finished conversations that nothing refers to into counting records (see
    /// [`Config::max_flow_records`]), renumbering the others everywhere they are referred to.
    fn fold_flows(&mut self) {
        let cap = self.cfg.max_flow_records.max(2);
        let mut referenced = self.out.referenced_flows();
        referenced.extend(self.link_flows.values().copied());
        let n = self.flows.len();
        let mut slots: Vec<Option<Flow>> = std::mem::take(&mut self.flows)
            .into_iter()
            .map(Some)
            .collect();
        let foldable = |i: usize, f: &Flow| {
            f.folded == 0
                && f.tcp.is_none()
                && f.quic.is_none()
                && !referenced.contains(&i)
                && (f.proto != flow::TCP || f.closed || f.evicted)
        };
        type AggKey = (u8, App, Option<(IpAddr, u16)>, String);
        let mut map: Vec<Option<usize>> = vec![None; n];
        let mut kept: Vec<Flow> = Vec::new();
        let mut aggs: FxHashMap<AggKey, usize> = FxHashMap::default();
        let mut agg_count = 0usize;
        let key_of = |f: &Flow, wide: bool| -> AggKey {
            if wide {
                (f.proto, f.app, None, MORE_DESTINATIONS.to_string())
            } else {
                (f.proto, f.app, Some(f.server), f.destination())
            }
        };
        // Kept records first, in their order (the aggregates made earlier among them).
        for (i, slot) in slots.iter_mut().enumerate() {
            let keep = slot.as_ref().is_some_and(|f| !foldable(i, f));
            if keep {
                if let Some(f) = slot.take() {
                    if f.folded > 0 {
                        aggs.insert(
                            key_of(&f, f.sni.as_deref() == Some(MORE_DESTINATIONS)),
                            kept.len(),
                        );
                        agg_count += 1;
                    }
                    map[i] = Some(kept.len());
                    kept.push(f);
                }
            }
        }
        let mut folded_now = 0u64;
        for f in slots.into_iter().flatten() {
            folded_now += 1;
            if f.evicted {
                self.folded_evicted += 1;
            }
            let mut key = key_of(&f, false);
            if !aggs.contains_key(&key) && agg_count >= cap / 2 {
                key = key_of(&f, true);
            }
            match aggs.get(&key) {
                Some(&a) => {
                    let g = &mut kept[a];
                    g.folded += 1;
                    g.first_ns = g.first_ns.min(f.first_ns);
                    g.last_ns = g.last_ns.max(f.last_ns);
                    g.first_packet = g.first_packet.min(f.first_packet);
                    for d in 0..2 {
                        g.packets[d] += f.packets[d];
                        g.bytes[d] += f.bytes[d];
                    }
                    g.opaque_bytes += f.opaque_bytes;
                    match (&mut g.tcp_stats, f.tcp_stats) {
                        (Some(s), Some(t)) => {
                            s[0].cap_hits += t[0].cap_hits;
                            s[1].cap_hits += t[1].cap_hits;
                        }
                        (s @ None, t) => *s = t,
                        _ => {}
                    }
                }
                None => {
                    let mut g = f;
                    g.folded = 1;
                    g.sni = Some(key.3.clone());
                    g.host = None;
                    g.dns_name = None;
                    if key.2.is_none() {
                        g.server = (IpAddr::from([0u8, 0, 0, 0]), 0);
                    }
                    aggs.insert(key, kept.len());
                    agg_count += 1;
                    kept.push(g);
                }
            }
        }
        self.flows = kept;
        self.flows_folded += folded_now;
        self.index
            .retain(|_, v| match map.get(*v).copied().flatten() {
                Some(nv) => {
                    *v = nv;
                    true
                }
                None => false,
            });
        for v in self.link_flows.values_mut() {
            *v = map.get(*v).copied().flatten().unwrap_or(*v);
        }
        self.live_order = self
            .live_order
            .iter()
            .filter_map(|&i| map.get(i).copied().flatten())
            .collect();
        self.out.renumber_flows(&map);
        // The next folding once half the cap of new records has come (amortised: linear over the capture).
        self.fold_at = self.flows.len() + cap / 2;
    }

    /// Keeps at most [`Config::max_live_tcp`] conversations with live state: finishes the oldest others early
    /// (never `keep`, the one just given state).
    fn evict_tcp(&mut self, keep: usize) {
        while self.live_tcp > self.cfg.max_live_tcp.max(1) {
            let Some(i) = self.live_order.pop_front() else {
                break;
            };
            if i == keep {
                self.live_order.push_back(i);
                if self.live_order.len() == 1 {
                    break;
                }
                continue;
            }
            if self.flows.get(i).is_none_or(|f| f.tcp.is_none()) {
                continue; // released already (closed, idle)
            }
            self.close_tcp(i);
            self.flows[i].closed = false;
            self.flows[i].evicted = true;
            self.tcp_evicted += 1;
        }
        // Entries of conversations released otherwise: dropped once they outnumber the live ones.
        if self.live_order.len() > 4 * self.cfg.max_live_tcp.max(1) {
            let flows = &self.flows;
            self.live_order
                .retain(|&i| flows.get(i).is_some_and(|f| f.tcp.is_some()));
        }
    }

    /// Releases the state of conversations idle for longer than the idle timeout.
    fn sweep_idle(&mut self, now: u64) {
        if self.live_tcp == 0 {
            return;
        }
        let limit = now.saturating_sub(self.cfg.idle_timeout_ns);
        let idle: Vec<usize> = (0..self.flows.len())
            .filter(|&i| self.flows[i].tcp.is_some() && self.flows[i].last_ns < limit)
            .collect();
        for i in idle {
            self.close_tcp(i);
            // Idle is not closed: a later packet may resume it (mid-stream).
            self.flows[i].closed = false;
        }
    }

    /// Finishes every conversation and returns the report.
    pub fn finish(mut self) -> Report {
        for i in 0..self.flows.len() {
            self.close_tcp(i);
        }
        let n = self.matcher.nested_stats();
        if n.inflate_truncated + n.run_truncated > 0 {
            let msg = format!(
                "{} base64-encoded gzip blobs were larger than the decoding caps and were searched only in part",
                n.inflate_truncated + n.run_truncated
            );
            self.out.warn("nested-decode-cap", msg, None);
        }
        if self.defrag.dropped > 0 {
            let msg = format!(
                "{} fragmented IPv4 datagrams could not be reassembled",
                self.defrag.dropped
            );
            self.out.warn("ip-fragments-dropped", msg, None);
        }
        if self.flows_folded > 0 {
            let msg = format!(
                "{} finished conversations that nothing else in the report refers to were folded into counting \
                 records (flows[].folded), to keep at most about {} flow records",
                self.flows_folded, self.cfg.max_flow_records
            );
            self.out.warn("flows-folded", msg, None);
        }
        if self.tcp_evicted > 0 {
            let msg = format!(
                "{} TCP connections had their state released early, because more than {} were live at once; what \
                 they sent afterwards was searched but read from the middle of the stream (unread: state_cap)",
                self.tcp_evicted, self.cfg.max_live_tcp
            );
            self.out.warn("tcp-state-cap", msg, None);
        }
        self.out.record_cap_warnings();
        self.keylog_warnings();
        for &(offset, bytes, ts) in &self.damaged {
            self.out.unread_damage(offset, bytes, ts);
        }
        let flows = std::mem::take(&mut self.flows);
        self.out.finish(&flows)
    }
}

/// The protocol number of the pseudo-conversations of non-IP frames (255 is reserved by IANA).
pub(crate) const LINK_PROTO: u8 = 255;

/// Report name of an IP protocol number.
pub(crate) fn transport(proto: u8) -> crate::report::Transport {
    match proto {
        LINK_PROTO => crate::report::Transport::Link,
        n => crate::report::Transport::from_ip_protocol(n),
    }
}

/// The application of a conversation read by a stream protocol's parser.
pub(crate) fn stream_app(kind: crate::proto::stream::StreamKind) -> App {
    use crate::proto::stream::StreamKind;
    match kind {
        StreamKind::H2 => App::Http2,
        StreamKind::WebSocket => App::WebSocket,
        StreamKind::Mqtt => App::Mqtt,
    }
}

/// Protocol and field names of the payload of a non-TCP/UDP IP packet.
fn other_ip_field(proto: u8, payload: &[u8], fragment: bool) -> (&'static str, &'static str) {
    if fragment {
        return ("ip", "fragment");
    }
    let kind = payload.first().copied();
    match proto {
        1 => (
            "icmp",
            match kind {
                Some(0 | 8) => "echo data",
                Some(3 | 4 | 5 | 11 | 12) => "quoted datagram",
                _ => "message",
            },
        ),
        58 => (
            "icmpv6",
            match kind {
                Some(128 | 129) => "echo data",
                Some(1..=4) => "quoted datagram",
                _ => "message",
            },
        ),
        132 => ("sctp", "chunks"),
        4 | 41 | 47 => ("ip", "tunnel beyond the decapsulation depth"),
        _ => ("ip", "payload"),
    }
}

/// Label (destination name) and field of a non-IP frame: on Ethernet, the destination MAC and EtherType.
fn link_label(p: &Packet<'_>, name: &str) -> (String, String) {
    if p.link_type == decode::link::ETHERNET && p.data.len() >= 14 {
        let d = &p.data[..6];
        let mut et = u16::from_be_bytes([p.data[12], p.data[13]]);
        let mut at = 14;
        while matches!(et, 0x8100 | 0x88a8 | 0x9100) && p.data.len() >= at + 4 {
            et = u16::from_be_bytes([p.data[at + 2], p.data[at + 3]]);
            at += 4;
        }
        let mac = format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            d[0], d[1], d[2], d[3], d[4], d[5]
        );
        let field = if et < 0x600 {
            format!("802.3 frame ({name})")
        } else {
            format!("ethertype 0x{et:04x} ({name})")
        };
        return (mac, field);
    }
    (format!("linktype {}", p.link_type), name.to_string())
}

/// Direction index to report direction.
fn direction(dir: usize) -> Direction {
    if dir == 0 {
        Direction::Up
    } else {
        Direction::Down
    }
}
