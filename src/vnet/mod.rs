//! The harness's own network: a userspace Ethernet segment where telltale is everything.
//!
//! Every target (a QEMU guest, a network namespace, a container, an attached device) is
//! plugged into a [`Vnet`] as a *frame port* and sees exactly one other host: telltale's
//! gateway, which answers ARP for every address, leases addresses over DHCP, resolves
//! every name to an address of its own ([`dns`]), accepts TCP connections to any address
//! and port (smoltcp in any-IP mode, one listening socket created per incoming SYN) and
//! serves them with the [`sink`], answers NTP, and refuses every other UDP datagram with
//! ICMP port unreachable. Nothing is ever forwarded: this module opens no socket at all;
//! the only I/O is the ports' frames, done by [`port`] and [`run`].
//!
//! [`Vnet`] itself is sans-IO: frames in ([`Vnet::handle_frame`]), frames out
//! ([`Vnet::take_output`]), a clock passed in by the caller (nanoseconds since the Unix
//! epoch, the capture's clock), and a log of [`VnetEvent`]s. That is what makes it
//! testable frame by frame and deterministic: the same frames give the same answers.

pub mod dhcp;
pub mod dns;
pub mod event;
pub mod port;
pub mod run;
pub mod sink;
pub mod tls;

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Icmpv4Type, PacketBuilder};
use serde::Serialize;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpCidr, IpListenEndpoint, Ipv4Address};

pub use dhcp::{DhcpConfig, Lease};
pub use dns::{DnsConfig, DnsOutcome};
pub use event::VnetEvent;
pub use sink::SinkResponse;
pub use tls::{RunCa, TlsPolicy};

/// Index of a port (attached target) on the segment.
pub type PortId = usize;

/// Receive buffer of each TCP connection (the advertised window).
const TCP_RX_BUFFER: usize = 256 * 1024;
/// Send buffer of each TCP connection (the sink's answers are small).
const TCP_TX_BUFFER: usize = 4 * 1024;
/// How often every connection is looked at (timers, closes), at most.
const SWEEP_NANOS: u64 = 50_000_000;
/// A listening socket whose SYN never got through is dropped after this long.
const LISTEN_TIMEOUT_NANOS: u64 = 5_000_000_000;
/// Idle connections are closed after this long without data from the client.
const IDLE_TIMEOUT_NANOS: u64 = 600_000_000_000;

/// telltale's address on the segment by default: gateway, DHCP server and DNS server.
pub const DEFAULT_GATEWAY: Ipv4Addr = crate::net::GATEWAY;

/// Configuration of one segment.
#[derive(Debug, Clone)]
pub struct VnetConfig {
    /// telltale's address on the segment: gateway, DHCP server and DNS server.
    pub gateway: Ipv4Addr,
    /// telltale's MAC address.
    pub gateway_mac: [u8; 6],
    /// Prefix length of the segment.
    pub prefix_len: u8,
    /// First address leased to targets.
    pub first_lease: Ipv4Addr,
    /// DHCP lease time in seconds.
    pub lease_secs: u32,
    /// DNS behaviour.
    pub dns: DnsConfig,
    /// HTTP sink answers, first match wins; default `200 {}`.
    pub responses: Vec<SinkResponse>,
    /// Concurrent TCP connections accepted; SYNs beyond are reset (and logged).
    pub max_connections: usize,
    /// Bytes of each HTTP request body kept in the log (all bytes are hashed and counted).
    pub keep_body: usize,
    /// Answer NTP (UDP 123) with telltale's clock instead of port unreachable.
    pub ntp: bool,
    /// TLS interception: the policy and the run's CA (made by the segment when `None`).
    pub tls: TlsPolicy,
    /// The run's CA (the runner makes it first, to write it into the run folder).
    pub tls_ca: Option<std::sync::Arc<RunCa>>,
}

impl Default for VnetConfig {
    fn default() -> Self {
        VnetConfig {
            gateway: DEFAULT_GATEWAY,
            gateway_mac: [0x02, 0x74, 0x74, 0x00, 0x00, 0x01],
            prefix_len: 24,
            first_lease: Ipv4Addr::new(10, 77, 0, 10),
            lease_secs: 86_400,
            dns: DnsConfig::default(),
            responses: Vec::new(),
            max_connections: 4096,
            keep_body: 1 << 20,
            ntp: true,
            tls: TlsPolicy::default(),
            tls_ca: None,
        }
    }
}

/// Counters of one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VnetStats {
    /// Frames received from targets.
    pub frames_in: u64,
    /// Frames sent to targets.
    pub frames_out: u64,
    /// Frames that were too short or not parseable (still recorded by the driver).
    pub malformed: u64,
    /// IPv6 and other non-IPv4, non-ARP frames (recorded, not answered).
    pub not_ipv4: u64,
    /// IPv4 fragments (recorded, not reassembled, not answered).
    pub fragments: u64,
    /// Frames smoltcp produced for an address whose MAC is unknown (dropped).
    pub no_route: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// SYNs reset because of the connection limit.
    pub refused_connections: u64,
    /// Events not kept in the run's log because it was full (`vnet::event::EVENT_LOG_MAX_EVENTS`,
    /// `EVENT_LOG_MAX_BYTES`; a flood); the capture has their frames.
    pub events_dropped: u64,
}

/// A smoltcp device that is two queues of packets: what to hand smoltcp, and what it sent.
/// The vnet uses it with `Medium::Ip` (smoltcp sees IP packets; layer 2 is ours); tests use
/// it with `Medium::Ethernet` for the smoltcp host that plays the device.
struct PacketQueue {
    medium: Medium,
    mtu: usize,
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

impl PacketQueue {
    fn new(medium: Medium, mtu: usize) -> PacketQueue {
        PacketQueue {
            medium,
            mtu,
            rx: VecDeque::new(),
            tx: VecDeque::new(),
        }
    }
}

struct RxTok(Vec<u8>);
struct TxTok<'a>(&'a mut VecDeque<Vec<u8>>);

impl smoltcp::phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for PacketQueue {
    type RxToken<'a> = RxTok;
    type TxToken<'a> = TxTok<'a>;

    fn receive(&mut self, _: Instant) -> Option<(RxTok, TxTok<'_>)> {
        let p = self.rx.pop_front()?;
        Some((RxTok(p), TxTok(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxTok<'_>> {
        Some(TxTok(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = self.medium;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

/// Client and server ends of a TCP connection.
type ConnKey = (SocketAddrV4, SocketAddrV4);

struct Conn {
    id: u64,
    handle: SocketHandle,
    app: sink::App,
    /// Answer bytes not yet accepted by the socket.
    pending: Vec<u8>,
    closing: bool,
    eof_seen: bool,
    name: Option<String>,
    created: u64,
    last_data: u64,
}

/// One segment. See the module docs.
pub struct Vnet {
    cfg: VnetConfig,
    iface: Interface,
    sockets: SocketSet<'static>,
    dev: PacketQueue,
    dhcp: dhcp::DhcpServer,
    dns: dns::DnsServer,
    /// IPv4 address → (MAC, port) of the targets, learned from what they send.
    neighbors: HashMap<Ipv4Addr, ([u8; 6], PortId)>,
    conns: HashMap<ConnKey, Conn>,
    next_conn: u64,
    out: VecDeque<(PortId, Vec<u8>)>,
    events: Vec<VnetEvent>,
    stats: VnetStats,
    scratch: Vec<u8>,
    last_sweep: u64,
    /// Inside [`Vnet::handle_batch`]: TCP segments are queued and processed together.
    batching: bool,
    /// Connections that got segments since smoltcp last ran.
    touched: Vec<ConnKey>,
    /// Connections opened since smoltcp last ran.
    fresh: Vec<ConnKey>,
    /// TLS interception (none when the CA could not be made: TLS is then only read).
    tls: Option<tls::TlsInterceptor>,
}

impl Vnet {
    /// The address the DHCP server gives (or gave) `mac`, allocated now if new: targets that
    /// telltale configures itself (a TAP in a container or namespace) get the same address a
    /// DHCP client with that MAC would.
    pub fn lease_for(&mut self, mac: [u8; 6]) -> Ipv4Addr {
        self.dhcp.lease_for(mac)
    }

    /// A segment with nothing attached yet. `now` is the clock (ns since the Unix epoch).
    pub fn new(cfg: VnetConfig, now: u64) -> Vnet {
        let mut dev = PacketQueue::new(Medium::Ip, 1500);
        let mut icfg = IfaceConfig::new(HardwareAddress::Ip);
        icfg.random_seed = 0x7e11_7a1e;
        let mut iface = Interface::new(icfg, &mut dev, instant(now));
        let gw = Ipv4Address::from(cfg.gateway.octets());
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(gw.into(), cfg.prefix_len));
        });
        let _ = iface.routes_mut().add_default_ipv4_route(gw);
        iface.set_any_ip(true);
        let dhcp = dhcp::DhcpServer::new(DhcpConfig {
            gateway: cfg.gateway,
            prefix_len: cfg.prefix_len,
            first_lease: cfg.first_lease,
            lease_secs: cfg.lease_secs,
        });
        let dns = dns::DnsServer::new(cfg.dns.clone());
        let mut events = Vec::new();
        let ca = match cfg.tls_ca.clone() {
            Some(ca) => Ok(ca),
            None => RunCa::generate().map(std::sync::Arc::new),
        };
        let tls = match ca.and_then(|ca| tls::TlsInterceptor::new(cfg.tls.clone(), ca)) {
            Ok(t) => Some(t),
            Err(e) => {
                events.push(VnetEvent::Refused {
                    ts: now,
                    what: format!("TLS interception unavailable: {e}"),
                });
                None
            }
        };
        Vnet {
            cfg,
            iface,
            sockets: SocketSet::new(Vec::new()),
            dev,
            dhcp,
            dns,
            neighbors: HashMap::new(),
            conns: HashMap::new(),
            next_conn: 1,
            out: VecDeque::new(),
            events,
            stats: VnetStats::default(),
            scratch: vec![0u8; TCP_RX_BUFFER],
            last_sweep: now,
            batching: false,
            touched: Vec::new(),
            fresh: Vec::new(),
            tls,
        }
    }

    /// The run's CA, when TLS interception is available.
    pub fn tls_ca(&self) -> Option<&std::sync::Arc<RunCa>> {
        self.tls.as_ref().map(tls::TlsInterceptor::ca)
    }

    /// Takes the TLS secrets (NSS key log lines) derived since the last call.
    pub fn take_key_log(&mut self) -> Vec<String> {
        self.tls
            .as_mut()
            .map(tls::TlsInterceptor::take_key_log)
            .unwrap_or_default()
    }

    /// The configuration.
    pub fn config(&self) -> &VnetConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> VnetStats {
        self.stats
    }

    /// Events so far, in order.
    pub fn events(&self) -> &[VnetEvent] {
        &self.events
    }

    /// Takes the events logged so far.
    pub fn take_events(&mut self) -> Vec<VnetEvent> {
        std::mem::take(&mut self.events)
    }

    /// TCP connections currently open.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// The name the vnet's DNS handed `addr` out for, if any.
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.dns.name_of(addr)
    }

    /// Frames to send, each with the port it goes to.
    pub fn take_output(&mut self) -> impl Iterator<Item = (PortId, Vec<u8>)> + '_ {
        self.stats.frames_out += self.out.len() as u64;
        self.out.drain(..)
    }

    /// How long the caller may wait before calling [`Vnet::poll`] (timers of TCP).
    pub fn poll_delay(&mut self, now: u64) -> std::time::Duration {
        let sweep = std::time::Duration::from_nanos(SWEEP_NANOS);
        match self.iface.poll_delay(instant(now), &self.sockets) {
            Some(d) => std::time::Duration::from_micros(d.total_micros()).min(sweep),
            None => sweep,
        }
    }

    /// Runs timers: TCP retransmissions, closes, idle connections.
    pub fn poll(&mut self, now: u64) {
        self.iface
            .poll(instant(now), &mut self.dev, &mut self.sockets);
        if now.saturating_sub(self.last_sweep) >= SWEEP_NANOS {
            self.last_sweep = now;
            let keys: Vec<ConnKey> = self.conns.keys().copied().collect();
            for key in keys {
                self.service(key, now);
            }
            self.iface
                .poll(instant(now), &mut self.dev, &mut self.sockets);
        }
        self.flush_ip();
    }

    /// Handles frames that arrived together: TCP segments among them go through smoltcp in
    /// one pass, so a burst of segments is acknowledged once, as a kernel would.
    pub fn handle_batch<'a>(
        &mut self,
        frames: impl IntoIterator<Item = (PortId, &'a [u8])>,
        now: u64,
    ) {
        self.batching = true;
        for (port, frame) in frames {
            self.handle_frame(port, frame, now);
        }
        self.batching = false;
        self.process_tcp(now);
    }

    /// Handles one Ethernet frame from a target on `port`.
    pub fn handle_frame(&mut self, port: PortId, frame: &[u8], now: u64) {
        self.stats.frames_in += 1;
        if frame.len() < 14 {
            self.stats.malformed += 1;
            return;
        }
        let mut src_mac = [0u8; 6];
        src_mac.copy_from_slice(&frame[6..12]);
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        match ethertype {
            0x0806 => self.handle_arp(port, &frame[14..]),
            0x0800 => self.handle_ipv4(port, src_mac, &frame[14..], now),
            _ => self.stats.not_ipv4 += 1,
        }
    }

    fn handle_arp(&mut self, port: PortId, arp: &[u8]) {
        if arp.len() < 28
            || arp[0..2] != [0, 1]
            || arp[2..4] != [8, 0]
            || arp[4] != 6
            || arp[5] != 4
        {
            self.stats.malformed += 1;
            return;
        }
        let op = u16::from_be_bytes([arp[6], arp[7]]);
        let mut sha = [0u8; 6];
        sha.copy_from_slice(&arp[8..14]);
        let spa = Ipv4Addr::new(arp[14], arp[15], arp[16], arp[17]);
        let tpa = Ipv4Addr::new(arp[24], arp[25], arp[26], arp[27]);
        if !spa.is_unspecified() {
            self.neighbors.insert(spa, (sha, port));
        }
        // Every address is telltale's, except the asker's own: probes (sender 0.0.0.0)
        // and gratuitous announcements get no answer, so duplicate address detection passes.
        if op != 1 || spa.is_unspecified() || spa == tpa {
            return;
        }
        let gw = self.cfg.gateway_mac;
        let mut f = Vec::with_capacity(42);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&gw);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
        f.extend_from_slice(&gw);
        f.extend_from_slice(&tpa.octets());
        f.extend_from_slice(&sha);
        f.extend_from_slice(&spa.octets());
        self.out.push_back((port, f));
    }

    fn handle_ipv4(&mut self, port: PortId, src_mac: [u8; 6], ip: &[u8], now: u64) {
        let Ok(slice) = etherparse::Ipv4Slice::from_slice(ip) else {
            self.stats.malformed += 1;
            return;
        };
        let header = slice.header();
        let src = header.source_addr();
        let dst = header.destination_addr();
        if !src.is_unspecified() {
            self.neighbors.insert(src, (src_mac, port));
        }
        if slice.is_payload_fragmented() {
            self.stats.fragments += 1;
            return;
        }
        let payload = slice.payload().payload;
        let ihl = usize::from(header.ihl()) * 4;
        match header.protocol() {
            etherparse::IpNumber::UDP => {
                let ip_header = ip.get(..ihl).unwrap_or_default();
                self.handle_udp(port, src_mac, (src, dst), ip_header, payload, now)
            }
            etherparse::IpNumber::ICMP => self.handle_icmp(port, src_mac, src, dst, payload, now),
            etherparse::IpNumber::TCP => {
                let total = usize::from(header.total_len()).min(ip.len());
                self.handle_tcp(&ip[..total], src, dst, payload, now);
            }
            _ => {}
        }
    }

    fn handle_udp(
        &mut self,
        port: PortId,
        src_mac: [u8; 6],
        (src, dst): (Ipv4Addr, Ipv4Addr),
        ip_header: &[u8],
        udp: &[u8],
        now: u64,
    ) {
        let Ok(u) = etherparse::UdpSlice::from_slice(udp) else {
            self.stats.malformed += 1;
            return;
        };
        let (sport, dport, payload) = (u.source_port(), u.destination_port(), u.payload());
        let client = SocketAddrV4::new(src, sport);
        match dport {
            67 => {
                let Some(reply) = self.dhcp.handle(payload) else {
                    return;
                };
                let mac = crate::proto::dhcp::parse_dhcp(payload)
                    .map(|i| i.client_mac)
                    .unwrap_or_default();
                self.events.push(VnetEvent::Dhcp {
                    ts: now,
                    mac,
                    received: reply.received.clone(),
                    sent: reply.sent.map(str::to_string),
                    lease: reply.lease.clone(),
                });
                if let Some(p) = reply.payload {
                    let (dmac, dip) = if reply.broadcast {
                        ([0xff; 6], Ipv4Addr::BROADCAST)
                    } else {
                        (src_mac, reply.to)
                    };
                    let gw = self.cfg.gateway;
                    self.send_udp(port, dmac, gw, 67, dip, 68, &p);
                }
            }
            53 => {
                let (resp, answered) = self.dns.answer(payload);
                for a in answered {
                    self.events.push(VnetEvent::Dns {
                        ts: now,
                        client,
                        server: dst,
                        transport: "udp".into(),
                        name: a.name,
                        qtype: a.qtype,
                        outcome: a.outcome,
                    });
                }
                if let Some(resp) = resp {
                    if is_unicast(dst) {
                        self.send_udp(port, src_mac, dst, 53, src, sport, &resp);
                    }
                }
            }
            123 if self.cfg.ntp && payload.len() >= 48 && is_unicast(dst) => {
                let resp = ntp_reply(payload, now);
                self.events.push(VnetEvent::Ntp {
                    ts: now,
                    client,
                    server: dst,
                });
                self.send_udp(port, src_mac, dst, 123, src, sport, &resp);
            }
            68 => {} // DHCP client port: broadcasts between clients; nothing to say.
            _ => {
                self.events.push(VnetEvent::UdpRefused {
                    ts: now,
                    client,
                    server: SocketAddrV4::new(dst, dport),
                    len: payload.len(),
                });
                if is_unicast(dst) && !self.is_broadcast(dst) {
                    // RFC 792: the IP header and the first 8 bytes of the datagram.
                    let mut quoted = Vec::with_capacity(ip_header.len() + 8);
                    quoted.extend_from_slice(ip_header);
                    quoted.extend_from_slice(udp.get(..8).unwrap_or(udp));
                    let b = PacketBuilder::ethernet2(self.cfg.gateway_mac, src_mac)
                        .ipv4(dst.octets(), src.octets(), 64)
                        .icmpv4(Icmpv4Type::DestinationUnreachable(
                            etherparse::icmpv4::DestUnreachableHeader::Port,
                        ));
                    let mut f = Vec::with_capacity(b.size(quoted.len()));
                    if b.write(&mut f, &quoted).is_ok() {
                        self.out.push_back((port, f));
                    }
                }
            }
        }
    }

    fn handle_icmp(
        &mut self,
        port: PortId,
        src_mac: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp: &[u8],
        now: u64,
    ) {
        let Ok(slice) = etherparse::Icmpv4Slice::from_slice(icmp) else {
            return;
        };
        if let Icmpv4Type::EchoRequest(echo) = slice.icmp_type() {
            let answered = dst == self.cfg.gateway;
            self.events.push(VnetEvent::Ping {
                ts: now,
                client: src,
                target: dst,
                answered,
            });
            if answered {
                let b = PacketBuilder::ethernet2(self.cfg.gateway_mac, src_mac)
                    .ipv4(dst.octets(), src.octets(), 64)
                    .icmpv4_echo_reply(echo.id, echo.seq);
                let data = slice.payload();
                let mut f = Vec::with_capacity(b.size(data.len()));
                if b.write(&mut f, data).is_ok() {
                    self.out.push_back((port, f));
                }
            }
        }
    }

    fn handle_tcp(&mut self, packet: &[u8], src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8], now: u64) {
        if tcp.len() < 20 {
            self.stats.malformed += 1;
            return;
        }
        let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
        let flags = tcp[13];
        let (syn, ack, rst) = (flags & 0x02 != 0, flags & 0x10 != 0, flags & 0x04 != 0);
        let key = (SocketAddrV4::new(src, sport), SocketAddrV4::new(dst, dport));
        if syn && !ack && !rst && !self.conns.contains_key(&key) && is_unicast(dst) {
            if self.conns.len() >= self.cfg.max_connections {
                self.stats.refused_connections += 1;
                self.events.push(VnetEvent::Refused {
                    ts: now,
                    what: format!(
                        "TCP {} -> {}: connection limit ({}) reached, reset",
                        key.0, key.1, self.cfg.max_connections
                    ),
                });
            } else {
                self.open(key, now);
            }
        }
        if let Some(c) = self.conns.get_mut(&key) {
            if tcp.len() > usize::from(tcp[12] >> 4) * 4 {
                c.last_data = now;
            }
        }
        self.dev.rx.push_back(packet.to_vec());
        self.touched.push(key);
        if !self.batching {
            self.process_tcp(now);
        }
    }

    /// Runs smoltcp over the queued segments, then the applications of the connections
    /// that got them.
    fn process_tcp(&mut self, now: u64) {
        if self.dev.rx.is_empty() && self.touched.is_empty() {
            return;
        }
        self.iface
            .poll(instant(now), &mut self.dev, &mut self.sockets);
        self.reconcile();
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut acted = false;
        for key in &touched {
            if self.conns.contains_key(key) {
                acted |= self.service(*key, now);
            }
        }
        touched.clear();
        self.touched = touched;
        if acted {
            self.iface
                .poll(instant(now), &mut self.dev, &mut self.sockets);
        }
        self.flush_ip();
    }

    /// When several SYNs for the same address and port were processed in one pass, smoltcp
    /// may have given a SYN to another connection's listening socket: match sockets to
    /// connections by their endpoints again.
    fn reconcile(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        if fresh.len() < 2 {
            return;
        }
        let mut by_pair = HashMap::new();
        let mut unmatched = Vec::new();
        for k in &fresh {
            let Some(h) = self.conns.get(k).map(|c| c.handle) else {
                continue;
            };
            let s = self.sockets.get::<tcp::Socket>(h);
            match (s.remote_endpoint(), s.local_endpoint()) {
                (Some(r), Some(l)) => {
                    by_pair.insert((r, l), h);
                }
                _ => unmatched.push(h),
            }
        }
        for k in &fresh {
            let want = (endpoint(k.0), endpoint(k.1));
            if let Some(c) = self.conns.get_mut(k) {
                if let Some(h) = by_pair.remove(&want).or_else(|| unmatched.pop()) {
                    c.handle = h;
                }
            }
        }
    }

    /// Creates the listening socket that will take this SYN.
    fn open(&mut self, key: ConnKey, now: u64) {
        let mut sock = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; TCP_RX_BUFFER]),
            tcp::SocketBuffer::new(vec![0u8; TCP_TX_BUFFER]),
        );
        let endpoint = IpListenEndpoint {
            addr: Some(Ipv4Address::from(key.1.ip().octets()).into()),
            port: key.1.port(),
        };
        if sock.listen(endpoint).is_err() {
            return;
        }
        sock.set_nagle_enabled(false);
        let handle = self.sockets.add(sock);
        self.fresh.push(key);
        let id = self.next_conn;
        self.next_conn += 1;
        self.stats.connections += 1;
        let name = self.dns.name_of(*key.1.ip()).map(str::to_string);
        self.events.push(VnetEvent::TcpOpen {
            ts: now,
            conn: id,
            client: key.0,
            server: key.1,
            name: name.clone(),
        });
        self.conns.insert(
            key,
            Conn {
                id,
                handle,
                app: sink::App::new(),
                pending: Vec::new(),
                closing: false,
                eof_seen: false,
                name,
                created: now,
                last_data: now,
            },
        );
    }

    /// Moves data between a connection's socket and its application. Returns whether
    /// anything was written or closed (so smoltcp should be polled again).
    fn service(&mut self, key: ConnKey, now: u64) -> bool {
        let Vnet {
            conns,
            sockets,
            dns,
            cfg,
            events,
            scratch,
            tls,
            ..
        } = self;
        let Some(conn) = conns.get_mut(&key) else {
            return false;
        };
        let sock = sockets.get_mut::<tcp::Socket>(conn.handle);
        let mut cx = sink::Ctx {
            now,
            conn: conn.id,
            client: key.0,
            server: key.1,
            name: conn.name.clone(),
            dns,
            responses: &cfg.responses,
            events,
            keep_body: cfg.keep_body,
            tls: tls.as_mut(),
        };
        let mut acted = false;
        while sock.can_recv() {
            let n = match sock.recv_slice(scratch) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            if conn.closing {
                continue; // read and discard after we decided to close
            }
            if conn.app.on_data(&scratch[..n], &mut cx, &mut conn.pending) == sink::After::Close {
                conn.closing = true;
            }
        }
        use tcp::State as S;
        let state = sock.state();
        if !conn.eof_seen && matches!(state, S::CloseWait | S::LastAck | S::Closing | S::TimeWait) {
            conn.eof_seen = true;
            conn.app.on_eof(&mut cx, &mut conn.pending);
            conn.closing = true;
        }
        if !conn.pending.is_empty() && sock.may_send() {
            if let Ok(n) = sock.send_slice(&conn.pending) {
                conn.pending.drain(..n);
                acted |= n > 0;
            }
        }
        if conn.closing && conn.pending.is_empty() && matches!(state, S::Established | S::CloseWait)
        {
            sock.close();
            acted = true;
        }
        let stale_listener =
            state == S::Listen && now.saturating_sub(conn.created) > LISTEN_TIMEOUT_NANOS;
        let idle = matches!(state, S::Established | S::SynReceived)
            && now.saturating_sub(conn.last_data) > IDLE_TIMEOUT_NANOS;
        if idle {
            sock.abort();
            acted = true;
        }
        if matches!(state, S::Closed | S::TimeWait) || stale_listener {
            conn.app.on_gone(&mut cx);
            let (protocol, bytes_in, bytes_out) =
                (conn.app.protocol(), conn.app.bytes_in, conn.app.bytes_out);
            let (id, handle) = (conn.id, conn.handle);
            conns.remove(&key);
            sockets.remove(handle);
            if !stale_listener {
                events.push(VnetEvent::TcpClose {
                    ts: now,
                    conn: id,
                    protocol: protocol.into(),
                    bytes_in,
                    bytes_out,
                });
            }
        }
        acted
    }

    /// Wraps smoltcp's outgoing IP packets in Ethernet for the target that owns the address.
    fn flush_ip(&mut self) {
        while let Some(ip) = self.dev.tx.pop_front() {
            let dst = match ip.get(16..20) {
                Some(d) => Ipv4Addr::new(d[0], d[1], d[2], d[3]),
                None => continue,
            };
            let Some((mac, port)) = self.neighbors.get(&dst).copied() else {
                self.stats.no_route += 1;
                continue;
            };
            let mut f = Vec::with_capacity(14 + ip.len());
            f.extend_from_slice(&mac);
            f.extend_from_slice(&self.cfg.gateway_mac);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&ip);
            self.out.push_back((port, f));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_udp(
        &mut self,
        port: PortId,
        dst_mac: [u8; 6],
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
    ) {
        let b = PacketBuilder::ethernet2(self.cfg.gateway_mac, dst_mac)
            .ipv4(src.octets(), dst.octets(), 64)
            .udp(sport, dport);
        let mut f = Vec::with_capacity(b.size(payload.len()));
        if b.write(&mut f, payload).is_ok() {
            self.out.push_back((port, f));
        }
    }

    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.cfg.prefix_len))
            .unwrap_or(0);
        u32::from(ip) | mask == u32::MAX
    }
}

/// The netmask of a prefix length, as a number (`24` → `0xffffff00`).
pub(crate) fn prefix_mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

fn endpoint(a: SocketAddrV4) -> smoltcp::wire::IpEndpoint {
    smoltcp::wire::IpEndpoint::new(Ipv4Address::from(a.ip().octets()).into(), a.port())
}

fn instant(now_nanos: u64) -> Instant {
    Instant::from_micros(i64::try_from(now_nanos / 1000).unwrap_or(i64::MAX))
}

fn is_unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_broadcast() || ip.is_multicast() || ip.is_unspecified())
}

/// An NTPv4 server reply (mode 4, stratum 2) to a client request, with telltale's clock.
fn ntp_reply(req: &[u8], now: u64) -> Vec<u8> {
    const NTP_EPOCH_OFFSET: u64 = 2_208_988_800;
    let secs = now / 1_000_000_000 + NTP_EPOCH_OFFSET;
    let frac = ((now % 1_000_000_000) << 32) / 1_000_000_000;
    let ts = ((secs & 0xffff_ffff) << 32) | frac;
    let version = (req[0] >> 3) & 0x07;
    let mut r = vec![0u8; 48];
    r[0] = (version.clamp(1, 4) << 3) | 4;
    r[1] = 2;
    r[2] = req[2];
    r[3] = 0xec; // precision 2^-20
    r[12..16].copy_from_slice(b"TTLE");
    r[16..24].copy_from_slice(&ts.to_be_bytes());
    r[24..32].copy_from_slice(&req[40..48]);
    r[32..40].copy_from_slice(&ts.to_be_bytes());
    r[40..48].copy_from_slice(&ts.to_be_bytes());
    r
}

#[cfg(test)]
mod tests;
