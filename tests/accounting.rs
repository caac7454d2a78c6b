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
    assert_eq!(f.address, "10.77.0.1:53", "the resolver stays the address");
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
