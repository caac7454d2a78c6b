//! What counts as the device's traffic (issue 20): the network's own services (DHCP, DNS to the resolver, NTP)
//! are listed apart, never counted as uploads or destinations; a canary in a DNS query name is a leak to the zone
//! queried, not to the resolver, and the answer echoing the question is not a second finding; bytes up and
//! down have one definition (transport payload, `FlowRecord::bytes_up`) in the report and every view of it.
//! Captures are written by the tests (`telltale::synth`).

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use telltale::report::{Direction, NetworkService};
use telltale::synth::{dns_answer, dns_query, Synth};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn a_canary_in_a_dns_name_goes_to_the_zone_queried_once() {
    let name = format!("{}.t.vendor.example", common::IMEI);
    let mut s = Synth::ethernet();
    s.udp(
        addr("10.77.0.10:40000"),
        addr("10.77.0.1:53"),
        &dns_query(7, &name),
    );
    s.udp(
        addr("10.77.0.1:53"),
        addr("10.77.0.10:40000"),
        &dns_answer(7, &name, Ipv4Addr::new(198, 18, 0, 9)),
    );
    let r = common::analyze(s.finish());
    let imei: Vec<_> = r.findings.iter().filter(|f| f.canary == "imei").collect();
    assert_eq!(
        imei.len(),
        1,
        "the answer's echo is not a second finding: {imei:#?}"
    );
    let f = imei[0];
    assert_eq!(f.direction, Direction::Up);
    assert_eq!(f.destination, "vendor.example", "{f:#?}");
    assert_eq!(
        f.address.to_string(),
        "10.77.0.1:53",
        "the resolver stays the address"
    );
    assert_eq!(f.count, 1);
    // The resolver's conversation is the network's own service.
    assert_eq!(r.flows[0].network_service(), Some(NetworkService::Dns));
    assert!(r.traffic_by_destination().is_empty());
}

#[test]
fn network_services_are_listed_apart_with_the_same_byte_counts() {
    let mut s = Synth::ethernet();
    // DHCP, DNS to the resolver, NTP (answered by the vnet whatever the address), and one device upload.
    s.udp(addr("0.0.0.0:68"), addr("255.255.255.255:67"), &[1u8; 300]);
    s.udp(
        addr("10.77.0.10:40001"),
        addr("10.77.0.1:53"),
        &dns_query(1, "api.vendor.example"),
    );
    s.udp(
        addr("10.77.0.10:40002"),
        addr("162.159.200.1:123"),
        &[0x23; 48],
    );
    common::upload(&mut s, 40003, "api.vendor.example", "hello=world");
    let r = common::analyze(s.finish());
    let services = r.network_services();
    let kinds: Vec<NetworkService> = services.keys().copied().collect();
    assert_eq!(
        kinds,
        [
            NetworkService::Dhcp,
            NetworkService::Dns,
            NetworkService::Ntp
        ]
    );
    assert_eq!(services[&NetworkService::Dhcp].up, 300);
    assert_eq!(services[&NetworkService::Ntp].up, 48);
    let dests = r.traffic_by_destination();
    assert_eq!(
        dests.keys().copied().collect::<Vec<_>>(),
        ["api.vendor.example"]
    );
    let up = dests["api.vendor.example"];
    let flow = r
        .flows
        .iter()
        .find(|f| f.destination == "api.vendor.example")
        .unwrap();
    assert_eq!(
        (up.flows, up.up, up.down),
        (1, flow.bytes_up, flow.bytes_down)
    );
    assert!(
        up.up > "hello=world".len() as u64,
        "the head counts: transport payload"
    );
}

/// The terminal summary names the zone a DNS-name leak went to as a destination, never "none contacted" above
/// the leak.
#[test]
fn the_summary_lists_the_zone_of_a_dns_leak_as_a_destination() {
    use telltale::record::{Judgement, RunReport, ScenarioInfo, Verdict, VnetRecord};
    let name = format!("{}.t.vendor.example", common::IMEI);
    let mut s = Synth::ethernet();
    s.udp(
        addr("10.77.0.10:40000"),
        addr("10.77.0.1:53"),
        &dns_query(7, &name),
    );
    let analysis = common::analyze(s.finish());
    let run = RunReport {
        schema: 1,
        format_version: 1,
        telltale_version: "0.0.0".into(),
        scenario: ScenarioInfo {
            name: "dns-leak".into(),
            release: None,
            file: "scenarios/dns-leak.yaml".into(),
        },
        verdict: Verdict::Fail,
        error: None,
        start_ns: 0,
        end_ns: 1,
        steps: vec![],
        phases: vec![],
        judgement: Judgement::default(),
        analysis,
        vnet: VnetRecord::default(),
    };
    let text = telltale::render::summary::render(&run, std::path::Path::new("out/dns-leak"));
    assert!(!text.contains("none contacted"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("vendor.example (dns, 1 conn"))
        .unwrap_or_else(|| panic!("no destination line for the zone:\n{text}"));
    assert!(line.trim_start().starts_with("boot:"), "{line}");
}

/// More live TCP connections than `Config::max_live_tcp`: the oldest has its state released early (issue 18's
/// bounded memory for a million flows). What it sent before is searched when it is released, what it sends
/// afterwards is still searched, and is also a `state_cap` unread span (a canary across the cut would be
/// missed), with a warning naming the cap — never a silent PASS.
#[test]
fn too_many_live_connections_release_the_oldest_and_say_so() {
    use std::sync::Arc;
    use telltale::analysis::Config;
    use telltale::canary::Matcher;
    use telltale::report::UnreadReason;
    use telltale::synth::{Side, Tcp};

    let server: SocketAddr = addr("198.18.0.30:8000");
    let mut s = Synth::ethernet();
    let mut conns: Vec<Tcp> = (0..3)
        .map(|i| Tcp::new(addr(&format!("10.77.0.10:{}", 41000 + i)), server, 100, 900))
        .collect();
    // The first connection sends the IMEI, then two more connections open (the cap is 2).
    conns[0].open(&mut s);
    conns[0].send(
        &mut s,
        Side::Client,
        format!("hello {} ", common::IMEI).as_bytes(),
        1400,
    );
    conns[1].open(&mut s);
    conns[2].open(&mut s);
    // Released early, the first one goes on and sends the phone number.
    conns[0].send(
        &mut s,
        Side::Client,
        format!("then {} bye", common::PHONE).as_bytes(),
        1400,
    );
    let m = Arc::new(Matcher::new(&common::identity()));
    let cfg = Config {
        max_live_tcp: 2,
        ..Config::default()
    };
    let r = telltale::analyze_bytes(s.finish(), "cap.pcap", m, cfg).unwrap();
    for canary in ["imei", "phone"] {
        assert!(
            r.findings.iter().any(|f| f.canary == canary),
            "{canary} is found before and after the release: {:#?}",
            r.findings
        );
    }
    let spans: Vec<_> = r
        .unread
        .iter()
        .filter(|u| u.reason == UnreadReason::StateCap)
        .collect();
    assert_eq!(spans.len(), 1, "{:#?}", r.unread);
    assert_eq!(spans[0].flow, Some(0));
    assert_eq!(spans[0].direction, Direction::Up);
    assert_eq!(
        spans[0].bytes,
        format!("then {} bye", common::PHONE).len() as u64
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("more than 2 were live at once")),
        "{:#?}",
        r.warnings
    );
    // With the default cap nothing is released.
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(addr("10.77.0.10:42000"), server, 1, 2);
    t.open(&mut s);
    t.send(&mut s, Side::Client, b"x", 1400);
    assert!(common::analyze(s.finish()).unread.is_empty());
}

/// More flows than `Config::max_flow_records`: finished flows nothing refers to are folded into counting records,
/// the ones a finding, a DNS question or an unread span refers to keep their own record (renumbered
/// consistently), and no packet or byte is lost from the totals (issue 18: a million flows in bounded memory).
#[test]
fn past_the_flow_record_cap_unreferenced_flows_are_folded_and_counted() {
    use std::sync::Arc;
    use telltale::analysis::Config;
    use telltale::canary::Matcher;

    let mut s = Synth::ethernet();
    let mut sent = (0u64, 0u64);
    for i in 0..40u16 {
        // Plain datagrams to 20 servers (two flows each), nothing in them.
        let payload = vec![b'a'; 10 + usize::from(i)];
        s.udp(
            addr(&format!("10.77.0.10:{}", 30000 + i)),
            addr(&format!("198.18.1.{}:7000", 1 + i % 20)),
            &payload,
        );
        sent = (sent.0 + 1, sent.1 + payload.len() as u64);
        if i == 25 {
            // One leak in the middle, after the first folding.
            let leak = format!("imei={}", common::IMEI);
            s.udp(
                addr("10.77.0.10:39999"),
                addr("198.18.9.9:7000"),
                leak.as_bytes(),
            );
            sent = (sent.0 + 1, sent.1 + leak.len() as u64);
        }
    }
    let m = Arc::new(Matcher::new(&common::identity()));
    let cfg = Config {
        max_flow_records: 8,
        ..Config::default()
    };
    let r = telltale::analyze_bytes(s.finish(), "many.pcap", m, cfg).unwrap();
    let folded: u64 = r.flows.iter().map(|f| f.folded).sum();
    assert!(folded >= 20, "most flows are folded: {:#?}", r.flows);
    assert!(r.flows.len() < 30, "{} records", r.flows.len());
    for (i, f) in r.flows.iter().enumerate() {
        assert_eq!(f.id, i, "records are numbered by position");
    }
    let packets: u64 = r.flows.iter().map(|f| f.packets_up + f.packets_down).sum();
    let bytes: u64 = r.flows.iter().map(|f| f.bytes_up + f.bytes_down).sum();
    assert_eq!((packets, bytes), sent, "nothing is lost from the totals");
    let leak: Vec<_> = r.findings.iter().filter(|f| f.canary == "imei").collect();
    assert_eq!(leak.len(), 1, "{:#?}", r.findings);
    let flow = &r.flows[leak[0].flow];
    assert_eq!(
        flow.server.to_string(),
        "198.18.9.9:7000",
        "the finding still names its own flow"
    );
    assert_eq!(flow.folded, 0);
    assert!(
        r.warnings.iter().any(|w| w.kind == "flows-folded"),
        "{:#?}",
        r.warnings
    );
}
