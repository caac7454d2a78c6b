//! Every channel is searched: a canary carried outside TCP and UDP (ICMP, ICMPv6, SCTP, unknown IP protocols,
//! IPv6 extension headers, non-IP Ethernet and 802.11 frames, ARP) is found and named; TLS that starts inside
//! another protocol (STARTTLS, PostgreSQL's SSLRequest, after a proxy handshake) is read as TLS, not searched as
//! cleartext. Captures are written by the tests with `telltale::synth`.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use telltale::report::{Direction, Report, Transport};
use telltale::synth::{ipv6_with_hop_by_hop, sctp_data, Side, Synth, Tcp};

fn dev() -> IpAddr {
    "10.0.2.15".parse().unwrap()
}

fn remote() -> IpAddr {
    "198.18.0.10".parse().unwrap()
}

fn dev6() -> IpAddr {
    "fd00::15".parse().unwrap()
}

fn remote6() -> IpAddr {
    "2001:db8::10".parse().unwrap()
}

fn payload_with(canary: &str) -> Vec<u8> {
    let mut v = b"id=".to_vec();
    v.extend_from_slice(canary.as_bytes());
    v.extend_from_slice(b";end");
    v
}

#[test]
fn icmp_and_icmpv6_echo_data() {
    let mut s = Synth::ethernet();
    s.icmp_echo(dev(), remote(), &payload_with(IMEI));
    s.icmp_echo(dev6(), remote6(), &payload_with(PHONE));
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(
        (f.protocol.as_str(), f.field.as_deref()),
        ("icmp", Some("echo data"))
    );
    assert_eq!(f.destination, "198.18.0.10");
    assert_eq!(f.direction, Direction::Up);
    let f = expect(&r, "phone", &["raw"]);
    assert_eq!(
        (f.protocol.as_str(), f.field.as_deref()),
        ("icmpv6", Some("echo data"))
    );
    assert_eq!(f.destination, "2001:db8::10");
    assert!(r.flows.iter().any(|fl| fl.protocol == Transport::Icmp));
}

#[test]
fn datagram_quoted_in_an_icmp_error() {
    let mut s = Synth::raw_ip();
    let quoted = s.udp_frame(
        SocketAddr::new(dev(), 5000),
        SocketAddr::new(remote(), 9999),
        &payload_with(EMAIL),
    );
    s.icmp_unreachable(remote(), dev(), &quoted);
    let r = analyze(s.finish());
    let f = expect(&r, "email", &["raw"]);
    assert_eq!(
        (f.protocol.as_str(), f.field.as_deref()),
        ("icmp", Some("quoted datagram"))
    );
}

#[test]
fn sctp_chunks_and_unknown_ip_protocols() {
    let mut s = Synth::ethernet();
    s.ip(
        dev(),
        remote(),
        132,
        &sctp_data(5000, 38412, &payload_with(IMEI)),
    );
    s.ip(dev6(), remote6(), 253, &payload_with(CONTACT));
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(f.protocol, "sctp");
    assert!(r.flows.iter().any(|fl| fl.protocol == Transport::Sctp));
    let f = expect(&r, "contact", &["raw"]);
    assert_eq!(
        (f.protocol.as_str(), f.field.as_deref()),
        ("ip", Some("payload"))
    );
    assert!(r.flows.iter().any(|fl| fl.protocol == Transport::Ip(253)));
}

#[test]
fn ipv6_extension_header_options() {
    let s = Synth::ethernet();
    let frame = s.udp_frame(
        SocketAddr::new(dev6(), 5000),
        SocketAddr::new(remote6(), 443),
        b"nothing here",
    );
    let frame = ipv6_with_hop_by_hop(&frame, 14, IMEI.as_bytes());
    let mut s = s;
    s.frame(&frame);
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(
        (f.protocol.as_str(), f.field.as_deref()),
        ("ipv6", Some("extension headers"))
    );
    assert_eq!(f.destination, "2001:db8::10");
}

#[test]
fn non_ip_ethernet_frames_and_arp() {
    let mut s = Synth::ethernet();
    s.ether(0x88b5, &payload_with(PHONE));
    // An ARP request with the canary in the frame's trailer.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 2, 15];
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 2, 1]);
    arp.extend_from_slice(IMEI.as_bytes());
    s.ether(0x0806, &arp);
    let r = analyze(s.finish());
    let f = expect(&r, "phone", &["raw"]);
    assert_eq!(f.protocol, "link");
    assert_eq!(f.destination, "02:00:00:00:00:02");
    assert!(
        f.field.as_deref().is_some_and(|x| x.contains("0x88b5")),
        "{:?}",
        f.field
    );
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(f.protocol, "arp");
}

#[test]
fn wlan_data_frame_of_a_vendor_ethertype() {
    let mut s = Synth::to_writer(Vec::new(), 105).unwrap();
    // Data frame (type 2, subtype 0), to-DS, three addresses, sequence control, then LLC/SNAP.
    let mut f = vec![0x08, 0x01, 0, 0];
    f.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 9, 0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0, 0,
    ]);
    f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x88, 0xb5]);
    f.extend_from_slice(&payload_with(EMAIL));
    s.frame(&f);
    let r = analyze(s.into_inner().unwrap());
    let f = expect(&r, "email", &["raw"]);
    assert_eq!(f.protocol, "link");
}

/// An application-data record whose bytes happen to spell the canary: ciphertext, not to be searched.
fn app_data(content: &[u8]) -> Vec<u8> {
    let mut v = vec![0x17, 3, 3];
    v.extend_from_slice(&(content.len() as u16).to_be_bytes());
    v.extend_from_slice(content);
    v
}

/// A conversation: the cleartext `exchange` (side, bytes) in order, then a ClientHello and an application-data
/// record from the client.
fn tls_after(port: u16, exchange: &[(Side, &[u8])], sni: &str) -> Report {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), SocketAddr::new(remote(), port), 100, 200);
    t.open(&mut s);
    for (side, bytes) in exchange {
        t.send(&mut s, *side, bytes, 1460);
    }
    t.send(
        &mut s,
        Side::Client,
        &telltale::synth::tls_client_hello(sni),
        1460,
    );
    t.send(&mut s, Side::Client, &app_data(IMEI.as_bytes()), 1460);
    t.close(&mut s);
    analyze(s.finish())
}

type Exchange = (Side, &'static [u8]);

#[test]
fn tls_started_inside_cleartext_protocols_is_read_as_tls() {
    let cases: Vec<(&str, u16, Vec<Exchange>)> = vec![
        (
            "smtp",
            587,
            vec![
                (Side::Server, b"220 mx ESMTP\r\n"),
                (Side::Client, b"EHLO dev\r\n"),
                (Side::Server, b"250-mx\r\n250 STARTTLS\r\n"),
                (Side::Client, b"STARTTLS\r\n"),
                (Side::Server, b"220 2.0.0 Ready to start TLS\r\n"),
            ],
        ),
        (
            "imap",
            143,
            vec![
                (Side::Server, b"* OK IMAP4rev1 ready\r\n"),
                (Side::Client, b"a1 STARTTLS\r\n"),
                (Side::Server, b"a1 OK Begin TLS negotiation now\r\n"),
            ],
        ),
        (
            "pop3",
            110,
            vec![
                (Side::Server, b"+OK POP3 ready\r\n"),
                (Side::Client, b"STLS\r\n"),
                (Side::Server, b"+OK Begin TLS\r\n"),
            ],
        ),
        (
            "ftp",
            21,
            vec![
                (Side::Server, b"220 FTP ready\r\n"),
                (Side::Client, b"AUTH TLS\r\n"),
                (Side::Server, b"234 AUTH TLS successful\r\n"),
            ],
        ),
        (
            "xmpp",
            5222,
            vec![
                (
                    Side::Client,
                    b"<stream:stream to='chat.example' version='1.0'>",
                ),
                (
                    Side::Server,
                    b"<stream:features><starttls/></stream:features>",
                ),
                (
                    Side::Client,
                    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                ),
                (
                    Side::Server,
                    b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
                ),
            ],
        ),
        (
            "ldap",
            389,
            vec![
                (
                    Side::Client,
                    b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037",
                ),
                (
                    Side::Server,
                    b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x00",
                ),
            ],
        ),
        (
            "postgresql",
            5432,
            vec![
                (Side::Client, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
                (Side::Server, b"S"),
            ],
        ),
        (
            "socks5 on another port",
            9050,
            vec![
                (Side::Client, b"\x05\x01\x00"),
                (Side::Server, b"\x05\x00"),
                (Side::Client, b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"),
                (Side::Server, b"\x05\x00\x00\x01\x0a\x00\x00\x01\x01\xbb"),
            ],
        ),
    ];
    for (name, port, exchange) in cases {
        let sni = format!("{}.mail.example", name.replace(' ', "-"));
        let r = tls_after(port, &exchange, &sni);
        assert!(
            r.tls.iter().any(|t| t.sni.as_deref() == Some(sni.as_str())),
            "{name}: ClientHello not read: {:?}",
            r.tls
        );
        assert!(
            r.findings.iter().all(|f| f.canary != "imei"),
            "{name}: ciphertext searched as cleartext:\n{}",
            describe(&r)
        );
        let flow = r
            .flows
            .iter()
            .find(|f| f.protocol == Transport::Tcp)
            .unwrap();
        assert!(
            flow.opaque_bytes > 0,
            "{name}: records not counted as opaque"
        );
    }
}

#[test]
fn cleartext_before_starttls_is_still_searched() {
    let r = tls_after(
        25,
        &[
            (Side::Server, b"220 mx ESMTP\r\n"),
            (Side::Client, format!("EHLO {IMEI}\r\n").as_bytes()),
            (Side::Server, b"250 STARTTLS\r\n"),
            (Side::Client, b"STARTTLS\r\n"),
            (Side::Server, b"220 go\r\n"),
        ],
        "mx.example",
    );
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(f.direction, Direction::Up);
}

fn udp_leak(s: &Synth, canary: &str) -> Vec<u8> {
    s.udp_frame(
        SocketAddr::new(dev(), 5000),
        SocketAddr::new(remote(), 9000),
        &payload_with(canary),
    )
}

#[test]
fn damaged_pcap_record_does_not_end_reading() {
    let mut s = Synth::ethernet();
    let f = udp_leak(&s, PHONE);
    s.frame(&f);
    let damaged_at = s.writer().len();
    let f = udp_leak(&s, CONTACT);
    s.frame(&f); // this record's header is corrupted below
    let f = udp_leak(&s, IMEI);
    s.frame(&f);
    let mut bytes = s.finish();
    // A corrupt captured length in the middle record, then junk is what the reader meets.
    bytes[damaged_at + 8..damaged_at + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let r = analyze(bytes.clone());
    expect(&r, "phone", &["raw"]);
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(f.protocol, "udp");
    assert_eq!(r.capture.damaged_at, Some(damaged_at as u64));
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "damaged-capture")
        .expect("warning");
    assert!(w.message.contains("skipped"), "{}", w.message);

    // Junk bytes inserted between two records.
    let mut s = Synth::ethernet();
    let f = udp_leak(&s, PHONE);
    s.frame(&f);
    let at = s.writer().len();
    let f = udp_leak(&s, EMAIL);
    s.frame(&f);
    let mut bytes = s.finish();
    let junk: Vec<u8> = (0..300u32).map(|i| (i * 97 % 251) as u8 | 0x80).collect();
    bytes.splice(at..at, junk);
    let r = analyze(bytes);
    expect(&r, "phone", &["raw"]);
    expect(&r, "email", &["raw"]);
    assert_eq!(r.capture.damaged_at, Some(at as u64));
}

fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (12 + body.len()) as u32;
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&body);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn epb(frame: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 4]; // interface 0
    b.extend_from_slice(&[0, 0, 0, 0, 0x40, 0x42, 0x0f, 0]); // timestamp
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(frame);
    pcapng_block(6, &b)
}

#[test]
fn damaged_pcapng_block_does_not_end_reading() {
    let s = Synth::ethernet();
    let mut file = pcapng_block(
        0x0A0D_0D0A,
        &[
            0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    );
    file.extend(pcapng_block(1, &[1, 0, 0, 0, 0, 0, 4, 0]));
    file.extend(epb(&udp_leak(&s, PHONE)));
    let at = file.len();
    let mut bad = epb(&udp_leak(&s, CONTACT));
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&7u32.to_le_bytes()); // trailer does not repeat the length
    bad[4..8].copy_from_slice(&0x00ff_fff1u32.to_le_bytes()); // nor does the header hold a valid one
    file.extend(bad);
    file.extend(epb(&udp_leak(&s, IMEI)));
    let r = analyze(file);
    expect(&r, "phone", &["raw"]);
    expect(&r, "imei", &["raw"]);
    assert_eq!(r.capture.format, "pcapng");
    assert_eq!(r.capture.damaged_at, Some(at as u64));
}

mod unread {
    use super::*;
    use std::sync::Arc;
    use telltale::report::UnreadReason;
    use telltale::{Config, Matcher};

    const T0: u64 = 1_704_067_200_000_000_000;

    fn analyze_phases(bytes: Vec<u8>, phases: Vec<(u64, String)>) -> Report {
        let m = Arc::new(Matcher::new(&identity()));
        let cfg = Config {
            phases,
            ..Config::default()
        };
        telltale::analyze_bytes(bytes, "t.pcap", m, cfg).unwrap()
    }

    fn spans(r: &Report, reason: UnreadReason) -> Vec<&telltale::report::UnreadSpan> {
        r.unread.iter().filter(|u| u.reason == reason).collect()
    }

    /// A TLS connection opened before the judged phase and used in it: its ciphertext is unread in that phase.
    #[test]
    fn keep_alive_tls_ciphertext_is_unread_in_the_phase_it_was_sent() {
        let mut s = Synth::ethernet();
        let server = SocketAddr::new(remote(), 443);
        let mut t = Tcp::new(client(), server, 100, 200);
        t.open(&mut s);
        t.send(
            &mut s,
            Side::Client,
            &telltale::synth::tls_client_hello("upload.vendor.example"),
            1460,
        );
        t.send(&mut s, Side::Client, &app_data(&[7u8; 300]), 1460);
        let judged = T0 + (s.frames() + 1) * 1_000_000 - 1;
        t.send(&mut s, Side::Client, &app_data(&[9u8; 1000]), 1460);
        t.close(&mut s);
        let r = analyze_phases(
            s.finish(),
            vec![(T0, "before".into()), (judged, "judged".into())],
        );
        let tls = spans(&r, UnreadReason::TlsCiphertext);
        let in_judged: Vec<_> = tls
            .iter()
            .filter(|u| u.phase.as_deref() == Some("judged"))
            .collect();
        assert_eq!(in_judged.len(), 1, "{:?}", r.unread);
        let u = in_judged[0];
        assert_eq!(u.bytes, 1005);
        assert_eq!(u.direction, Direction::Up);
        assert_eq!(u.destination, "upload.vendor.example");
        assert!(u.first_ns >= judged);
        assert!(tls
            .iter()
            .any(|u| u.phase.as_deref() == Some("before") && u.bytes == 305));
    }

    #[test]
    fn tcp_gap_is_unread() {
        let mut s = Synth::ethernet();
        let mut t = Tcp::new(client(), server(), 1, 1);
        t.open(&mut s);
        let req = post("/u", "", &[b'a'; 3000]);
        let segs = t.plan(Side::Client, &req, 1000);
        let kept: Vec<_> = segs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, s)| s.clone())
            .collect();
        t.write(&mut s, Side::Client, &kept, req.len());
        t.close(&mut s);
        let r = analyze(s.finish());
        let g = spans(&r, UnreadReason::TcpGap);
        assert_eq!(
            g.iter().map(|u| u.bytes).sum::<u64>(),
            1000,
            "{:?}",
            r.unread
        );
        assert_eq!(g[0].direction, Direction::Up);
        assert_eq!(g[0].destination, "api.vendor.example");
    }

    #[test]
    fn capture_damage_snap_length_and_tunnel_depth_are_unread() {
        let mut s = Synth::raw_ip();
        let f = s.udp_frame(
            SocketAddr::new(dev(), 5000),
            SocketAddr::new(remote(), 9000),
            &[b'x'; 500],
        );
        s.truncated_frame(&f, 100);
        // IP-in-IP nested deeper than the decapsulation bound.
        let mut pkt = s.udp_frame(
            SocketAddr::new(dev(), 5000),
            SocketAddr::new(remote(), 9001),
            b"deep",
        );
        for _ in 0..12 {
            pkt = s.ip_frame(dev(), remote(), 4, &pkt);
        }
        s.frame(&pkt);
        let at = s.writer().len();
        s.frame(&f);
        let mut bytes = s.finish();
        bytes[at + 8..at + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        let r = analyze(bytes);
        let snap = spans(&r, UnreadReason::SnapLength);
        assert_eq!(snap.len(), 1, "{:?}", r.unread);
        assert_eq!(snap[0].bytes, 500 - (100 - 28)); // 100 bytes kept: IP and UDP headers and 72 of payload
        assert_eq!(snap[0].destination, "198.18.0.10");
        assert_eq!(
            spans(&r, UnreadReason::TunnelDepth).len(),
            1,
            "{:?}",
            r.unread
        );
        let d = spans(&r, UnreadReason::CaptureDamage);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].capture_offset, Some(at as u64));
        assert!(d[0].bytes > 0);
    }
}
