//! The segment tested frame by frame against a second, independent TCP/IP stack (smoltcp
//! as an Ethernet host with its own DHCP and DNS clients) playing the device.

use super::*;
use smoltcp::iface::{Config as IConfig, Interface as Iface, SocketSet as Set};
use smoltcp::socket::{dhcpv4, dns as sdns};
use smoltcp::wire::{DnsQueryType, EthernetAddress, IpAddress, Ipv4Cidr};

const DEVICE_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const T0: u64 = 1_700_000_000_000_000_000;

/// The device: a smoltcp host on the segment.
struct Device_ {
    iface: Iface,
    dev: PacketQueue,
    sockets: Set<'static>,
    now: u64,
    /// Every frame the device sent / received, for assertions.
    sent: Vec<Vec<u8>>,
    received: Vec<Vec<u8>>,
    /// Hand the segment all frames of a step at once (`handle_batch`), as the driver does.
    batch: bool,
}

impl Device_ {
    fn new(addr: Option<Ipv4Addr>) -> Device_ {
        let mut dev = PacketQueue::new(Medium::Ethernet, 1514);
        let cfg = IConfig::new(HardwareAddress::Ethernet(EthernetAddress(DEVICE_MAC)));
        let mut iface = Iface::new(cfg, &mut dev, instant(T0));
        if let Some(a) = addr {
            iface.update_ip_addrs(|addrs| {
                let _ = addrs.push(IpCidr::new(Ipv4Address::from(a.octets()).into(), 24));
            });
            let _ = iface
                .routes_mut()
                .add_default_ipv4_route(Ipv4Address::new(10, 77, 0, 1));
        }
        Device_ {
            iface,
            dev,
            sockets: Set::new(Vec::new()),
            now: T0,
            sent: Vec::new(),
            received: Vec::new(),
            batch: false,
        }
    }

    /// Exchanges frames between device and segment for `steps` milliseconds of fake time,
    /// stopping early when `done` says so.
    fn pump(&mut self, net: &mut Vnet, steps: usize, mut done: impl FnMut(&mut Device_) -> bool) {
        for _ in 0..steps {
            self.iface
                .poll(instant(self.now), &mut self.dev, &mut self.sockets);
            if self.batch {
                let frames: Vec<Vec<u8>> = self.dev.tx.drain(..).collect();
                net.handle_batch(frames.iter().map(|f| (0, f.as_slice())), self.now);
                self.sent.extend(frames);
            }
            while let Some(f) = self.dev.tx.pop_front() {
                net.handle_frame(0, &f, self.now);
                self.sent.push(f);
            }
            net.poll(self.now);
            for (port, f) in net.take_output() {
                assert_eq!(port, 0);
                self.received.push(f.clone());
                self.dev.rx.push_back(f);
            }
            self.iface
                .poll(instant(self.now), &mut self.dev, &mut self.sockets);
            if done(self) {
                return;
            }
            self.now += 1_000_000;
        }
    }
}

fn net() -> Vnet {
    Vnet::new(VnetConfig::default(), T0)
}

#[test]
fn dhcp_lease_from_an_independent_client() {
    let mut net = net();
    let mut d = Device_::new(None);
    let h = d.sockets.add(dhcpv4::Socket::new());
    let mut got = None;
    d.pump(&mut net, 20_000, |d| {
        if let Some(dhcpv4::Event::Configured(c)) = d.sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            got = Some((c.address, c.router, c.dns_servers.to_vec()));
            return true;
        }
        false
    });
    let (address, router, dns) = got.expect("the client got a lease");
    assert_eq!(address, Ipv4Cidr::new(Ipv4Address::new(10, 77, 0, 10), 24));
    assert_eq!(router, Some(Ipv4Address::new(10, 77, 0, 1)));
    assert_eq!(dns, vec![Ipv4Address::new(10, 77, 0, 1)]);
    let leases: Vec<_> = net
        .events()
        .iter()
        .filter_map(|e| match e {
            VnetEvent::Dhcp { lease: Some(l), .. } => Some(l.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].ip, Ipv4Addr::new(10, 77, 0, 10));
    assert_eq!(leases[0].mac, "52:54:00:12:34:56");
}

#[test]
fn dns_answers_every_name_with_a_pool_address() {
    let mut net = net();
    let mut d = Device_::new(Some(Ipv4Addr::new(10, 77, 0, 10)));
    let servers = [IpAddress::v4(10, 77, 0, 1)];
    let h = d.sockets.add(sdns::Socket::new(&servers, vec![None]));
    let q = {
        let s = d.sockets.get_mut::<sdns::Socket>(h);
        s.start_query(
            d.iface.context(),
            "api.account.kestrel.example",
            DnsQueryType::A,
        )
        .unwrap()
    };
    let mut answer = None;
    d.pump(&mut net, 5_000, |d| {
        match d.sockets.get_mut::<sdns::Socket>(h).get_query_result(q) {
            Ok(a) => {
                answer = Some(a.to_vec());
                true
            }
            Err(sdns::GetQueryResultError::Pending) => false,
            Err(e) => panic!("query failed: {e:?}"),
        }
    });
    let answer = answer.expect("answered");
    let expected = net.name_of_reverse("api.account.kestrel.example");
    assert_eq!(
        answer,
        vec![IpAddress::Ipv4(Ipv4Address::from(expected.octets()))]
    );
    assert!(net.dns.in_pool(expected));
    assert!(net.events().iter().any(|e| matches!(e,
        VnetEvent::Dns { name, transport, outcome: DnsOutcome::Addresses(a), .. }
            if transport == "udp" && name == "api.account.kestrel.example" && a == &vec![expected])));
}

impl Vnet {
    /// Test helper: the address a name resolves to (allocating it like a query would).
    fn name_of_reverse(&mut self, name: &str) -> Ipv4Addr {
        self.dns.resolve(name).unwrap()
    }
}

/// Connects the device to `server`, sends `request`, and reads until `response_len` bytes
/// arrived or the connection closed.
fn tcp_exchange(
    net: &mut Vnet,
    d: &mut Device_,
    server: (Ipv4Addr, u16),
    local_port: u16,
    request: &[u8],
) -> Vec<u8> {
    let sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 256 * 1024]),
        tcp::SocketBuffer::new(vec![0; 256 * 1024]),
    );
    let h = d.sockets.add(sock);
    {
        let s = d.sockets.get_mut::<tcp::Socket>(h);
        s.connect(
            d.iface.context(),
            (Ipv4Address::from(server.0.octets()), server.1),
            local_port,
        )
        .unwrap();
    }
    let mut sent = 0;
    let mut got = Vec::new();
    d.pump(net, 60_000, |d| {
        let s = d.sockets.get_mut::<tcp::Socket>(h);
        if s.may_send() && sent < request.len() {
            sent += s.send_slice(&request[sent..]).unwrap();
        }
        while s.can_recv() {
            let mut buf = [0u8; 4096];
            let n = s.recv_slice(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        sent == request.len() && got.windows(4).any(|w| w == b"\r\n\r\n") && {
            // Whole response (Content-Length 2 for the default body).
            got.ends_with(b"{}")
        }
    });
    {
        let s = d.sockets.get_mut::<tcp::Socket>(h);
        s.close();
    }
    d.pump(net, 2_000, |_| false);
    got
}

#[test]
fn upload_to_any_address_and_port_reaches_the_sink_whole() {
    let mut net = net();
    let mut d = Device_::new(Some(Ipv4Addr::new(10, 77, 0, 10)));
    let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut req = format!(
        "POST /v1/register HTTP/1.1\r\nHost: api.account.kestrel.example\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    // A hard-coded public address and an odd port: still telltale.
    let resp = tcp_exchange(
        &mut net,
        &mut d,
        (Ipv4Addr::new(93, 184, 216, 34), 8081),
        40001,
        &req,
    );
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    let http: Vec<_> = net
        .events()
        .iter()
        .filter_map(|e| match e {
            VnetEvent::Http {
                body: b,
                body_len,
                body_sha256,
                complete,
                server,
                host,
                ..
            } => Some((
                b.clone(),
                *body_len,
                body_sha256.clone(),
                *complete,
                *server,
                host.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].0, body);
    assert_eq!(http[0].1, body.len() as u64);
    let digest = Sha256::digest(&body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(http[0].2, hex);
    assert!(http[0].3);
    assert_eq!(
        http[0].4,
        SocketAddrV4::new(Ipv4Addr::new(93, 184, 216, 34), 8081)
    );
    assert_eq!(http[0].5.as_deref(), Some("api.account.kestrel.example"));
    // The connection was closed cleanly and forgotten.
    assert!(net.events().iter().any(|e| matches!(e,
        VnetEvent::TcpClose { protocol, bytes_in, .. } if protocol == "http" && *bytes_in == req.len() as u64)));
    assert_eq!(net.open_connections(), 0);
}

use sha2::{Digest, Sha256};

#[test]
fn many_concurrent_connections_to_one_port() {
    concurrent_connections(false);
}

#[test]
fn simultaneous_syns_in_one_batch_keep_each_connection_its_own() {
    // All SYNs to the same address and port reach smoltcp in one pass: whichever listening
    // socket takes which SYN, every request must be logged on its own connection.
    concurrent_connections(true);
}

fn concurrent_connections(batch: bool) {
    let mut net = net();
    let mut d = Device_::new(Some(Ipv4Addr::new(10, 77, 0, 10)));
    d.batch = batch;
    let n = 300u16;
    let mut handles = Vec::new();
    for i in 0..n {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 4096]),
            tcp::SocketBuffer::new(vec![0; 4096]),
        );
        s.connect(
            d.iface.context(),
            (Ipv4Address::new(198, 18, 0, 7), 80),
            20000 + i,
        )
        .unwrap();
        handles.push(d.sockets.add(s));
    }
    let mut answered = std::collections::HashSet::new();
    d.pump(&mut net, 30_000, |d| {
        for (i, h) in handles.iter().enumerate() {
            let s = d.sockets.get_mut::<tcp::Socket>(*h);
            if s.may_send() && s.send_queue() == 0 && !answered.contains(&i) {
                let _ = s.send_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            }
            if s.can_recv() {
                let mut buf = [0u8; 512];
                if let Ok(k) = s.recv_slice(&mut buf) {
                    if buf[..k].starts_with(b"HTTP/1.1 200") {
                        answered.insert(i);
                    }
                }
            }
        }
        answered.len() == handles.len()
    });
    assert_eq!(answered.len(), n as usize);
    assert_eq!(net.stats().connections, u64::from(n));
    let targets: std::collections::HashSet<String> = net
        .events()
        .iter()
        .filter_map(|e| match e {
            VnetEvent::Http { target, .. } => Some(target.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets.len(),
        n as usize,
        "every connection's own request reached the sink"
    );
}

fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&DEVICE_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&DEVICE_MAC);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

#[test]
fn arp_answers_every_address_but_not_probes() {
    let mut net = net();
    let me = Ipv4Addr::new(10, 77, 0, 10);
    for target in [Ipv4Addr::new(10, 77, 0, 1), Ipv4Addr::new(10, 77, 0, 99)] {
        net.handle_frame(0, &arp_request(me, target), T0);
        let out: Vec<_> = net.take_output().collect();
        assert_eq!(out.len(), 1);
        let f = &out[0].1;
        assert_eq!(&f[0..6], &DEVICE_MAC);
        assert_eq!(u16::from_be_bytes([f[20], f[21]]), 2, "ARP reply");
        assert_eq!(&f[22..28], &VnetConfig::default().gateway_mac);
        assert_eq!(&f[28..32], &target.octets());
    }
    // Duplicate address detection: sender 0.0.0.0, or asking for itself.
    net.handle_frame(0, &arp_request(Ipv4Addr::UNSPECIFIED, me), T0);
    net.handle_frame(0, &arp_request(me, me), T0);
    assert_eq!(net.take_output().count(), 0);
}

fn udp_frame(dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(DEVICE_MAC, VnetConfig::default().gateway_mac)
        .ipv4([10, 77, 0, 10], dst.octets(), 64)
        .udp(5000, dport);
    let mut f = Vec::new();
    b.write(&mut f, payload).unwrap();
    f
}

#[test]
fn other_udp_is_refused_with_port_unreachable_and_ntp_is_answered() {
    let mut net = net();
    let quic = udp_frame(Ipv4Addr::new(142, 250, 1, 1), 443, &[0xc3; 1200]);
    net.handle_frame(0, &quic, T0);
    let out: Vec<_> = net.take_output().collect();
    assert_eq!(out.len(), 1);
    let p = etherparse::SlicedPacket::from_ethernet(&out[0].1).unwrap();
    match p.transport {
        Some(etherparse::TransportSlice::Icmpv4(icmp)) => {
            assert_eq!(icmp.type_u8(), 3);
            assert_eq!(icmp.code_u8(), 3);
            // The quote: the original IP header and the UDP header.
            assert_eq!(icmp.payload(), &quic[14..14 + 28]);
        }
        other => panic!("expected ICMP, got {other:?}"),
    }
    match p.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            assert_eq!(ip.header().source_addr(), Ipv4Addr::new(142, 250, 1, 1));
        }
        _ => panic!("not IPv4"),
    }
    // Broadcast UDP: recorded, never answered.
    net.handle_frame(0, &udp_frame(Ipv4Addr::BROADCAST, 1900, b"M-SEARCH"), T0);
    assert_eq!(net.take_output().count(), 0);
    // NTP gets the time.
    let mut ntp = vec![0u8; 48];
    ntp[0] = 0x23; // v4, client
    ntp[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    net.handle_frame(
        0,
        &udp_frame(Ipv4Addr::new(162, 159, 200, 1), 123, &ntp),
        T0,
    );
    let out: Vec<_> = net.take_output().collect();
    let p = etherparse::SlicedPacket::from_ethernet(&out[0].1).unwrap();
    let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
        panic!("expected UDP")
    };
    let r = u.payload();
    assert_eq!(r[0] & 0x07, 4, "server mode");
    assert_eq!(&r[24..32], &ntp[40..48], "originate = client's transmit");
    let secs = u32::from_be_bytes([r[40], r[41], r[42], r[43]]) as u64;
    assert_eq!(secs, T0 / 1_000_000_000 + 2_208_988_800);
    assert_eq!(
        net.events()
            .iter()
            .filter(|e| matches!(e, VnetEvent::UdpRefused { .. }))
            .count(),
        2
    );
}

#[test]
fn only_the_gateway_answers_ping() {
    let mut net = net();
    for (dst, answered) in [
        (Ipv4Addr::new(10, 77, 0, 1), true),
        (Ipv4Addr::new(8, 8, 8, 8), false),
    ] {
        let b = PacketBuilder::ethernet2(DEVICE_MAC, VnetConfig::default().gateway_mac)
            .ipv4([10, 77, 0, 10], dst.octets(), 64)
            .icmpv4_echo_request(7, 1);
        let mut f = Vec::new();
        b.write(&mut f, b"ping-data").unwrap();
        net.handle_frame(0, &f, T0);
        let out: Vec<_> = net.take_output().collect();
        assert_eq!(out.len(), usize::from(answered));
        if answered {
            let p = etherparse::SlicedPacket::from_ethernet(&out[0].1).unwrap();
            let Some(etherparse::TransportSlice::Icmpv4(icmp)) = p.transport else {
                panic!()
            };
            assert_eq!(icmp.type_u8(), 0);
            assert_eq!(icmp.payload(), b"ping-data");
        }
    }
}

#[test]
fn garbage_frames_are_counted_not_fatal() {
    let mut net = net();
    for f in [
        &b""[..],
        &[0u8; 13],
        &[0xffu8; 60],
        &arp_request(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8))[..30],
    ] {
        net.handle_frame(0, f, T0);
    }
    let mut bad_ip = udp_frame(Ipv4Addr::new(10, 77, 0, 1), 53, b"x");
    bad_ip[14] = 0x4f; // IHL 15 > packet
    net.handle_frame(0, &bad_ip, T0);
    let s = net.stats();
    assert_eq!(s.frames_in, 5);
    assert!(s.malformed >= 3, "{s:?}");
}

#[test]
fn connection_limit_resets_and_logs() {
    let mut net = Vnet::new(
        VnetConfig {
            max_connections: 2,
            ..VnetConfig::default()
        },
        T0,
    );
    let mut d = Device_::new(Some(Ipv4Addr::new(10, 77, 0, 10)));
    let mut hs = Vec::new();
    for i in 0..3u16 {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 1024]),
            tcp::SocketBuffer::new(vec![0; 1024]),
        );
        s.connect(
            d.iface.context(),
            (Ipv4Address::new(1, 1, 1, 1), 80),
            30000 + i,
        )
        .unwrap();
        hs.push(d.sockets.add(s));
    }
    d.pump(&mut net, 2_000, |_| false);
    let established = hs
        .iter()
        .filter(|h| d.sockets.get_mut::<tcp::Socket>(**h).state() == tcp::State::Established)
        .count();
    assert_eq!(established, 2);
    assert!(net.stats().refused_connections >= 1);
    assert!(net.events().iter().any(
        |e| matches!(e, VnetEvent::Refused { what, .. } if what.contains("connection limit"))
    ));
}

#[test]
fn a_dns_flood_is_counted_not_kept_beyond_the_event_log_cap() {
    use super::event::{EventLog, EVENT_LOG_MAX_BYTES, EVENT_LOG_MAX_EVENTS};
    let mut net = net();
    let mut log = EventLog::new();
    let n = EVENT_LOG_MAX_EVENTS + 20_000;
    let mut dns_events = 0u64;
    let mut answers = 0usize;
    for i in 0..n {
        let q = crate::synth::dns_query(i as u16, &format!("q{i}.flood.example"));
        net.handle_frame(0, &udp_frame(Ipv4Addr::new(10, 77, 0, 1), 53, &q), T0);
        // As the driver does: drain the segment's events into the run's log each round.
        if i % 1000 == 999 || i == n - 1 {
            net.poll(T0);
            answers += net.take_output().count();
            let fresh = net.take_events();
            dns_events += fresh
                .iter()
                .filter(|e| matches!(e, VnetEvent::Dns { .. }))
                .count() as u64;
            log.extend(fresh);
        }
    }
    assert!(answers >= n, "every query answered: {answers}");
    assert_eq!(dns_events, n as u64, "every query logged by the segment");
    assert!(log.events().len() <= EVENT_LOG_MAX_EVENTS);
    assert!(log.bytes() <= EVENT_LOG_MAX_BYTES);
    assert!(log.dropped() >= 20_000, "{}", log.dropped());
    assert_eq!(log.dropped() + log.events().len() as u64, dns_events);
    // The counter reaches the report (vnet.stats.events_dropped).
    let stats = VnetStats {
        events_dropped: log.dropped(),
        ..net.stats()
    };
    let json = serde_json::to_value(stats).unwrap();
    assert_eq!(json["events_dropped"], log.dropped());
}
