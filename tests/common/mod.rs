//! Helpers shared by the integration tests: a fixed identity, captures built with `telltale::synth`, and
//! assertions on findings that print the whole finding list when they fail.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use telltale::report::{Finding, Report};
use telltale::synth::{Side, Synth, Tcp};
use telltale::{Config, Identity, Matcher};

pub const IMEI: &str = "356938035643809";
pub const PHONE: &str = "+15555550123";
pub const EMAIL: &str = "alice.canary@example.invalid";
pub const CONTACT: &str = "Alice Canary";

pub fn identity() -> Identity {
    Identity::from_pairs(&[
        ("imei", IMEI),
        ("phone", PHONE),
        ("email", EMAIL),
        ("contact", CONTACT),
    ])
}

pub fn analyze(pcap: Vec<u8>) -> Report {
    let m = Arc::new(Matcher::new(&identity()));
    telltale::analyze_bytes(pcap, "test.pcap", m, Config::default())
        .expect("a capture the test wrote")
}

pub fn client() -> SocketAddr {
    "10.0.2.15:40001".parse().unwrap()
}

pub fn server() -> SocketAddr {
    "198.18.0.10:80".parse().unwrap()
}

/// A complete HTTP POST of `body` to api.vendor.example, segmented at `mss`.
pub fn post(path: &str, extra_headers: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// One TCP conversation client→server carrying `request` (in order, `mss`-sized), answered with 200.
/// A whole HTTP upload from the device (port `port`) to 198.18.0.20:80: `POST /collect` with `body` for
/// `host`, answered `200 {}`, with the TCP handshake and close.
pub fn upload(s: &mut Synth, port: u16, host: &str, body: &str) {
    let client: SocketAddr = format!("10.77.0.10:{port}").parse().unwrap();
    let server: SocketAddr = "198.18.0.20:80".parse().unwrap();
    let mut t = Tcp::new(client, server, 1000, 9000);
    t.open(s);
    let req = format!(
        "POST /collect HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    t.send(s, Side::Client, req.as_bytes(), 1400);
    t.send(
        s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        1400,
    );
    t.close(s);
}

pub fn conversation(request: &[u8], mss: usize) -> Vec<u8> {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 1000, 5000);
    t.open(&mut s);
    t.send(&mut s, Side::Client, request, mss);
    t.send(
        &mut s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        1460,
    );
    t.close(&mut s);
    s.finish()
}

pub fn describe(r: &Report) -> String {
    r.findings
        .iter()
        .map(|f| {
            format!(
                "  {} {} {} {} {:?} {:?} {:?} x{} @{} [{}]",
                f.canary,
                f.encoding,
                f.protocol,
                f.destination,
                f.direction,
                f.field,
                f.decoded_from,
                f.count,
                f.packet,
                f.excerpt
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The finding for `canary` whose encoding is one of `encodings`; fails the test, listing all findings, if none.
pub fn expect<'a>(r: &'a Report, canary: &str, encodings: &[&str]) -> &'a Finding {
    r.findings
        .iter()
        .find(|f| f.canary == canary && encodings.contains(&f.encoding.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "no finding of {canary} as {encodings:?}; findings:\n{}\nwarnings: {:?}",
                describe(r),
                r.warnings
            )
        })
}

/// Percent-encodes every byte that is not unreserved (RFC 3986), upper-case hex.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
pub mod harness;
pub mod netns;
pub mod runs;
