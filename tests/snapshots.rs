//! Snapshot tests (insta) of the report: a small capture with every protocol the engine understands, as JSON and
//! as the text summary, and the messages for invalid identity files. Review changes with `cargo insta review`.

mod common;

use std::net::SocketAddr;

use common::*;
use telltale::synth::{dns_answer, dns_query, Side, Synth, Tcp};

fn dhcp_discover() -> Vec<u8> {
    use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
    use dhcproto::{Encodable, Encoder};
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest);
    m.set_xid(0x1234_5678);
    m.set_chaddr(&[0x02, 0, 0, 0, 0, 0x15]);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    m.opts_mut()
        .insert(DhcpOption::Hostname("alice-canary-phone".into()));
    m.opts_mut()
        .insert(DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 0x15]));
    let mut buf = Vec::new();
    m.encode(&mut Encoder::new(&mut buf)).unwrap();
    buf
}

fn sample() -> telltale::Report {
    let mut s = Synth::ethernet();
    let dev: SocketAddr = "10.0.2.15:68".parse().unwrap();
    s.udp(dev, "255.255.255.255:67".parse().unwrap(), &dhcp_discover());
    let q: SocketAddr = "10.0.2.15:41000".parse().unwrap();
    let dns: SocketAddr = "10.0.2.3:53".parse().unwrap();
    s.udp(q, dns, &dns_query(1, "api.account.vendor.example"));
    s.udp(
        dns,
        q,
        &dns_answer(
            1,
            "api.account.vendor.example",
            "198.18.0.10".parse().unwrap(),
        ),
    );
    let mut t = Tcp::new(client(), server(), 1000, 5000);
    t.open(&mut s);
    let body = format!(
        "{{\"imei\":\"{IMEI}\",\"contacts\":[\"{}\"]}}",
        hex(CONTACT.as_bytes())
    );
    let mut req = format!(
        "POST /v2/sync?phone={} HTTP/1.1\r\nHost: api.account.vendor.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        url_encode(PHONE),
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    t.send(&mut s, Side::Client, &req, 100);
    t.send(
        &mut s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        1460,
    );
    t.close(&mut s);
    analyze(s.finish())
}

#[test]
fn report_json() {
    let r = sample();
    insta::assert_json_snapshot!(r, { ".telltale_version" => "[version]" });
}

#[test]
fn report_text() {
    let r = sample();
    insta::assert_snapshot!(telltale::report::text::render(&r, false));
}

#[test]
fn identity_errors() {
    let cases = [
        ("not-a-mapping.yaml", "- imei\n- phone\n"),
        ("empty.yaml", "# nothing here\n"),
        ("short.yaml", "imei: \"356938035643809\"\npin: \"12\"\n"),
        ("nested.yaml", "device:\n  imei: \"356938035643809\"\n"),
        ("null.yaml", "imei:\n"),
        (
            "duplicate.yaml",
            "a: \"356938035643809\"\nb: \"356938035643809\"\n",
        ),
        ("syntax.yaml", "imei: \"356938035643809\n"),
    ];
    let mut out = String::new();
    for (name, text) in cases {
        let e = telltale::Identity::from_yaml(text, name).expect_err(name);
        out.push_str(&format!("{e}\n\n"));
    }
    insta::assert_snapshot!(out);
}
