//! The per-message records are bounded (issue 18): past `Config::max_dns_records` (and the HTTP, TLS and DHCP
//! caps) a DNS question, HTTP request, ClientHello or DHCP message is not kept as a record, but its message is
//! still searched for canaries, its bytes are a `state_cap` unread span on its flow and direction, and one
//! `record-cap` warning counts what was not kept — so a rule over that traffic is INCONCLUSIVE, never a silent
//! PASS. Captures are written by the tests (`telltale::synth`), with small caps set in the `Config`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use telltale::analysis::Config;
use telltale::canary::Matcher;
use telltale::report::{Direction, Report, UnreadReason, UnreadSpan};
use telltale::synth::{dns_answer, dns_query, Side, Synth, Tcp};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn analyze(pcap: Vec<u8>, cfg: Config) -> Report {
    let m = Arc::new(Matcher::new(&common::identity()));
    telltale::analyze_bytes(pcap, "records.pcap", m, cfg).expect("a capture the test wrote")
}

fn state_cap(r: &Report) -> Vec<&UnreadSpan> {
    r.unread
        .iter()
        .filter(|u| u.reason == UnreadReason::StateCap)
        .collect()
}

fn record_cap_warnings(r: &Report) -> Vec<&str> {
    r.warnings
        .iter()
        .filter(|w| w.kind == "record-cap")
        .map(|w| w.message.as_str())
        .collect()
}

const DEVICE: &str = "10.77.0.10:40000";
const RESOLVER: &str = "10.77.0.1:53";

/// 25 DNS queries (each answered) with a cap of 10 records: 10 questions are listed (paired with their answers),
/// the other 15 queries and their 15 answers are counted, their bytes are `state_cap` unread (the queries'
/// upload, the answers' download), and the IMEI in the name of the last query — far past the cap — is found.
#[test]
fn past_the_dns_record_cap_questions_are_counted_unread_and_still_searched() {
    let mut s = Synth::ethernet();
    let (mut up, mut down) = (0u64, 0u64);
    for i in 0..25u16 {
        let name = if i == 24 {
            format!("{}.t.vendor.example", common::IMEI)
        } else {
            format!("q{i}.vendor.example")
        };
        let q = dns_query(i, &name);
        let a = dns_answer(i, &name, Ipv4Addr::new(198, 18, 0, i as u8));
        s.udp(addr(DEVICE), addr(RESOLVER), &q);
        s.udp(addr(RESOLVER), addr(DEVICE), &a);
        if i >= 10 {
            up += q.len() as u64;
            down += a.len() as u64;
        }
    }
    let pcap = s.finish();
    let cfg = Config {
        max_dns_records: 10,
        ..Config::default()
    };
    let r = analyze(pcap.clone(), cfg);
    assert_eq!(r.dns_queries.len(), 10, "{:#?}", r.dns_queries);
    for (i, q) in r.dns_queries.iter().enumerate() {
        assert_eq!(q.name, format!("q{i}.vendor.example"));
        assert_eq!(q.rcode.as_deref(), Some("NOERROR"), "{q:#?}");
        assert_eq!(q.answers, vec![format!("198.18.0.{i}")], "its own answer");
    }
    // The canary search runs for every message: only the record is dropped.
    let imei: Vec<_> = r.findings.iter().filter(|f| f.canary == "imei").collect();
    assert_eq!(imei.len(), 1, "{:#?}", r.findings);
    assert_eq!(imei[0].destination, "vendor.example");
    assert_eq!(imei[0].direction, Direction::Up);
    // The bytes of the messages whose records were not kept: unread, on the resolver's flow, both ways.
    let spans = state_cap(&r);
    assert_eq!(spans.len(), 2, "{:#?}", r.unread);
    let flow = imei[0].flow;
    for (dir, bytes) in [(Direction::Up, up), (Direction::Down, down)] {
        let span = spans
            .iter()
            .find(|u| u.direction == dir)
            .unwrap_or_else(|| panic!("no {dir:?} span: {spans:#?}"));
        assert_eq!(span.flow, Some(flow));
        assert_eq!(span.bytes, bytes, "{span:#?}");
    }
    assert_eq!(r.flows[flow].unread_up, up);
    let w = record_cap_warnings(&r);
    assert_eq!(w.len(), 1, "{:#?}", r.warnings);
    assert!(
        w[0].starts_with("30 DNS questions") && w[0].contains("cap of 10 (max_dns_records)"),
        "{}",
        w[0]
    );

    // What makes a rule INCONCLUSIVE: the device's own upload that was not kept, by destination.
    let unread = telltale::runner::verdict::unread(&r, &[]);
    assert!(
        unread
            .iter()
            .any(|u| u.reason == "state_cap" && u.bytes == up),
        "{unread:#?}"
    );

    // Under the cap nothing changes: every question is a record, nothing is unread, no warning.
    let all = analyze(pcap, Config::default());
    assert_eq!(all.dns_queries.len(), 25);
    assert!(all.unread.is_empty(), "{:#?}", all.unread);
    assert!(record_cap_warnings(&all).is_empty(), "{:#?}", all.warnings);
}

/// A query not kept must not lend its answer to an earlier, kept, unanswered query with the same ID.
#[test]
fn the_answer_to_a_question_not_kept_is_not_paired_with_an_earlier_one() {
    let mut s = Synth::ethernet();
    s.udp(
        addr(DEVICE),
        addr(RESOLVER),
        &dns_query(7, "kept.vendor.example"),
    );
    s.udp(
        addr(DEVICE),
        addr(RESOLVER),
        &dns_query(7, "dropped.vendor.example"),
    );
    s.udp(
        addr(RESOLVER),
        addr(DEVICE),
        &dns_answer(7, "dropped.vendor.example", Ipv4Addr::new(198, 18, 0, 7)),
    );
    let cfg = Config {
        max_dns_records: 1,
        ..Config::default()
    };
    let r = analyze(s.finish(), cfg);
    assert_eq!(r.dns_queries.len(), 1, "{:#?}", r.dns_queries);
    let q = &r.dns_queries[0];
    assert_eq!(q.name, "kept.vendor.example");
    assert_eq!(q.rcode, None, "answered by nothing: {q:#?}");
    assert!(q.answers.is_empty(), "{q:#?}");
    // The dropped query and the answer that carried it back: two questions not kept.
    assert!(record_cap_warnings(&r)[0].starts_with("2 DNS questions"));
}

/// A POST of `body` on its own connection from port `port`, answered `status`; returns the bytes of its head.
fn post(s: &mut Synth, port: u16, body: &str, status: u16) -> u64 {
    let mut t = Tcp::new(
        addr(&format!("10.77.0.10:{port}")),
        addr("198.18.0.20:80"),
        1000,
        9000,
    );
    t.open(s);
    let req = format!(
        "POST /v1/report HTTP/1.1\r\nHost: telemetry.vendor.example\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    t.send(s, Side::Client, req.as_bytes(), 1400);
    let resp = format!("HTTP/1.1 {status} OK\r\nContent-Length: 2\r\n\r\n{{}}");
    t.send(s, Side::Server, resp.as_bytes(), 1400);
    t.close(s);
    (req.len() - body.len()) as u64
}

/// Four uploads with a cap of two HTTP records: two are listed with their own status, the other two heads are
/// `state_cap` unread on their own flows (the bodies are read, and searched), the IMEI in the last body is found, and a policy that
/// forbids the IMEI elsewhere on that destination cannot PASS over the requests it could not list.
#[test]
fn past_the_http_record_cap_requests_are_counted_unread_and_still_searched() {
    let mut s = Synth::ethernet();
    let mut sizes = Vec::new();
    for (i, status) in [201u16, 202, 203, 204].into_iter().enumerate() {
        let body = if i == 3 {
            format!("{{\"imei\":\"{}\"}}", common::IMEI)
        } else {
            format!("{{\"n\":{i}}}")
        };
        sizes.push(post(&mut s, 40000 + i as u16, &body, status));
    }
    let pcap = s.finish();
    let cfg = Config {
        max_http_records: 2,
        ..Config::default()
    };
    let r = analyze(pcap.clone(), cfg);
    assert_eq!(r.http_requests.len(), 2, "{:#?}", r.http_requests);
    assert_eq!(r.http_requests[0].status, Some(201));
    assert_eq!(r.http_requests[1].status, Some(202));
    let imei: Vec<_> = r.findings.iter().filter(|f| f.canary == "imei").collect();
    assert_eq!(imei.len(), 1, "{:#?}", r.findings);
    let spans = state_cap(&r);
    assert_eq!(spans.len(), 2, "{:#?}", r.unread);
    for (span, size) in spans.iter().zip(&sizes[2..]) {
        assert_eq!(span.direction, Direction::Up);
        assert_eq!(span.bytes, *size, "the head: {span:#?}");
        assert_eq!(span.destination, "telemetry.vendor.example");
    }
    assert_eq!(spans[1].flow, Some(imei[0].flow));
    let flow = &r.flows[imei[0].flow];
    assert_eq!(flow.read_up + flow.unread_up, flow.bytes_up, "{flow:#?}");
    let w = record_cap_warnings(&r);
    assert_eq!(w.len(), 1, "{:#?}", r.warnings);
    assert!(
        w[0].starts_with("2 HTTP requests") && w[0].contains("cap of 2 (max_http_records)"),
        "{}",
        w[0]
    );

    // A rule over the traffic the unlisted requests were part of: INCONCLUSIVE, not PASS. (The phone number is
    // nowhere in the capture; the rule holds over what was read.)
    let text = "name: caps\ntarget:\n  kind: capture\n  file: cap.pcap\npolicy:\n  forbid:\n    - canaries: [phone]\n      destinations: [\"*.vendor.example\"]\nidentity:\n  values: {phone: \"+15555550123\"}\n";
    let scenario =
        telltale::scenario::Scenario::parse(text, "caps.yaml", Path::new(".")).expect("valid");
    let phone = telltale::canary::Identity::from_pairs(&[("phone", common::PHONE)]);
    let observed = telltale::runner::verdict::Observed {
        phases: &[],
        completed: true,
    };
    let j = telltale::runner::verdict::judge(&scenario, &phone, &r, &observed);
    assert!(!j.violated(), "{j:#?}");
    assert!(j.inconclusive(), "{j:#?}");
    assert!(
        j.rules[0]
            .inconclusive
            .iter()
            .any(|why| why.contains("telemetry.vendor.example")),
        "{j:#?}"
    );
    // With every request listed, the same rule holds.
    let all = analyze(pcap, Config::default());
    assert_eq!(all.http_requests.len(), 4);
    let j = telltale::runner::verdict::judge(&scenario, &phone, &all, &observed);
    assert!(!j.violated() && !j.inconclusive(), "{j:#?}");
}

/// Three requests pipelined on one connection with a cap of one record: the kept request gets the first
/// response's status, not a later one's (the requests not kept still take their place in the pairing).
#[test]
fn pipelined_requests_past_the_cap_keep_the_pairing_of_responses() {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(addr("10.77.0.10:40100"), addr("198.18.0.20:80"), 1000, 9000);
    t.open(&mut s);
    let mut reqs = String::new();
    for i in 0..3 {
        reqs.push_str(&format!(
            "GET /r{i} HTTP/1.1\r\nHost: telemetry.vendor.example\r\n\r\n"
        ));
    }
    t.send(&mut s, Side::Client, reqs.as_bytes(), 1400);
    let mut resps = String::new();
    for status in [201, 202, 203] {
        resps.push_str(&format!(
            "HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n"
        ));
    }
    t.send(&mut s, Side::Server, resps.as_bytes(), 1400);
    t.close(&mut s);
    let cfg = Config {
        max_http_records: 1,
        ..Config::default()
    };
    let r = analyze(s.finish(), cfg);
    assert_eq!(r.http_requests.len(), 1, "{:#?}", r.http_requests);
    assert_eq!(r.http_requests[0].path, "/r0");
    assert_eq!(r.http_requests[0].status, Some(201));
    let spans = state_cap(&r);
    assert_eq!(spans.len(), 1, "{:#?}", r.unread);
    assert_eq!(spans[0].bytes, (reqs.len() / 3 * 2) as u64);
}

/// Three TLS connections with a cap of one ClientHello record: each connection is still named by its SNI, the
/// hellos not kept are `state_cap` unread on their flows.
#[test]
fn past_the_tls_record_cap_hellos_are_counted_and_unread() {
    let mut s = Synth::ethernet();
    let mut sizes = Vec::new();
    for i in 0..3u16 {
        let hello = telltale::synth::tls_client_hello(&format!("h{i}.vendor.example"));
        let mut t = Tcp::new(
            addr(&format!("10.77.0.10:{}", 41000 + i)),
            addr(&format!("198.18.0.{}:443", 30 + i)),
            5000,
            7000,
        );
        t.open(&mut s);
        t.send(&mut s, Side::Client, &hello, 1400);
        t.close(&mut s);
        sizes.push(hello.len() as u64);
    }
    let cfg = Config {
        max_tls_records: 1,
        ..Config::default()
    };
    let r = analyze(s.finish(), cfg);
    assert_eq!(r.tls.len(), 1, "{:#?}", r.tls);
    assert_eq!(r.tls[0].sni.as_deref(), Some("h0.vendor.example"));
    let spans = state_cap(&r);
    assert_eq!(spans.len(), 2, "{:#?}", r.unread);
    for (i, span) in spans.iter().enumerate() {
        assert_eq!(span.destination, format!("h{}.vendor.example", i + 1));
        assert_eq!(span.bytes, sizes[i + 1]);
        assert_eq!(span.direction, Direction::Up);
    }
    assert!(record_cap_warnings(&r)[0].starts_with("2 TLS ClientHellos"));
}

/// DHCP messages past their cap: counted, unread on the DHCP flow.
#[test]
fn past_the_dhcp_record_cap_messages_are_counted_and_unread() {
    let mut s = Synth::ethernet();
    // A BOOTREQUEST with the magic cookie and option 53 (DISCOVER).
    let mut msg = vec![0u8; 240];
    msg[0] = 1;
    msg[1] = 1;
    msg[2] = 6;
    msg[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    msg[236..240].copy_from_slice(&[99, 130, 83, 99]);
    msg.extend_from_slice(&[53, 1, 1, 255]);
    for _ in 0..5 {
        s.udp(addr("0.0.0.0:68"), addr("255.255.255.255:67"), &msg);
    }
    let cfg = Config {
        max_dhcp_records: 3,
        ..Config::default()
    };
    let r = analyze(s.finish(), cfg);
    assert_eq!(r.dhcp.len(), 3, "{:#?}", r.dhcp);
    let spans = state_cap(&r);
    assert_eq!(spans.len(), 1, "{:#?}", r.unread);
    assert_eq!(spans[0].bytes, 2 * msg.len() as u64);
    assert!(record_cap_warnings(&r)[0].starts_with("2 DHCP messages"));
}
