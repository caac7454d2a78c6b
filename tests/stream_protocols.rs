//! Stream protocols inside TCP: HTTP/2 in cleartext (prior knowledge and the h2c upgrade; HPACK with Huffman
//! coding and the dynamic table; DATA; gRPC messages), WebSocket (masked, fragmented, permessage-deflate) and MQTT
//! 3.1.1 and 5 (CONNECT fields, PUBLISH payloads). Every capture is written here with `telltale::synth`, split
//! across small segments so that frames and packets straddle them; HPACK blocks come from `httlib-hpack`, an
//! encoder independent of the decoder under test.

mod common;

use std::net::SocketAddr;

use common::*;
use flate2::{Compress, Compression, FlushCompress};
use httlib_hpack::Encoder;
use telltale::report::Report;
use telltale::synth::{Side, Synth, Tcp};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HUFFMAN_VALUE: u8 = 0x2;
const INDEXING: u8 = 0x4;
const BEST: u8 = 0x10;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn settings() -> Vec<u8> {
    h2_frame(4, 0, 0, &[])
}

/// A header block: every field Huffman-coded; with `index`, literals are added to the dynamic table and fields
/// already in it are sent as an index.
fn block(enc: &mut Encoder, headers: &[(&str, &str)], index: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let flags = HUFFMAN_VALUE | if index { INDEXING | BEST } else { 0 };
    for (n, v) in headers {
        enc.encode(
            (n.as_bytes().to_vec(), v.as_bytes().to_vec(), flags),
            &mut out,
        )
        .expect("an encodable header");
    }
    out
}

fn conversation(port: u16, turns: &[(Side, Vec<u8>)], mss: usize) -> Vec<u8> {
    let mut s = Synth::ethernet();
    let server: SocketAddr = format!("198.18.0.10:{port}").parse().unwrap();
    let mut t = Tcp::new(client(), server, 1000, 5000);
    t.open(&mut s);
    for (side, data) in turns {
        t.send(&mut s, *side, data, mss);
    }
    t.close(&mut s);
    s.finish()
}

fn findings_of<'a>(r: &'a Report, canary: &str) -> Vec<&'a telltale::report::Finding> {
    r.findings.iter().filter(|f| f.canary == canary).collect()
}

/// The finding of `canary` in `field` of protocol `protocol`, whose encoding starts with `chain`.
fn expect_in<'a>(
    r: &'a Report,
    canary: &str,
    protocol: &str,
    field: &str,
    chain: &str,
) -> &'a telltale::report::Finding {
    r.findings
        .iter()
        .find(|f| {
            f.canary == canary
                && f.protocol == protocol
                && f.field.as_deref() == Some(field)
                && f.encoding.starts_with(chain)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {canary} in {protocol} {field} ({chain}…); findings:\n{}\nwarnings: {:?}\nunread: {:?}",
                describe(r),
                r.warnings,
                r.unread
            )
        })
}

fn request_headers<'a>(path: &'a str, device: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "api.vendor.example"),
        (":path", path),
        ("x-device", device),
    ]
}

/// Prior knowledge: the IMEI Huffman-coded in a header (two requests; the second refers to the dynamic table),
/// the phone number in a DATA body split over two frames, the e-mail in a gRPC message.
#[test]
fn http2_prior_knowledge_headers_data_and_grpc() {
    let mut enc = Encoder::with_dynamic_size(4096);
    let mut up = PREFACE.to_vec();
    up.extend(settings());
    // Stream 1: the IMEI in a header, indexed; a JSON body with the phone number over two DATA frames.
    let b1 = block(&mut enc, &request_headers("/v1/register", IMEI), true);
    up.extend(h2_frame(1, 0x4, 1, &b1));
    let body = format!("{{\"phone\":\"{PHONE}\"}}");
    let (a, b) = body.as_bytes().split_at(9);
    up.extend(h2_frame(0, 0, 1, a));
    up.extend(h2_frame(0, 0x1, 1, b));
    // Stream 3: the same header again, now an index into the dynamic table (no Huffman bytes of the IMEI).
    let b3 = block(&mut enc, &request_headers("/v1/ping", IMEI), true);
    assert!(
        b3.len() < b1.len(),
        "the second block refers to the dynamic table"
    );
    up.extend(h2_frame(1, 0x5, 3, &b3));
    // Stream 5: gRPC, the e-mail inside a length-prefixed message.
    let mut g = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/pkg.Svc/Put"),
    ];
    g.push(("content-type", "application/grpc"));
    let b5 = block(&mut enc, &g, true);
    up.extend(h2_frame(1, 0x4, 5, &b5));
    let mut msg = vec![0x0a, EMAIL.len() as u8];
    msg.extend_from_slice(EMAIL.as_bytes());
    let mut grpc = vec![0];
    grpc.extend((msg.len() as u32).to_be_bytes());
    grpc.extend(&msg);
    up.extend(h2_frame(0, 0x1, 5, &grpc));
    let mut senc = Encoder::with_dynamic_size(4096);
    let mut down = settings();
    down.extend(h2_frame(
        1,
        0x5,
        1,
        &block(&mut senc, &[(":status", "200")], true),
    ));
    let r = analyze(conversation(
        8080,
        &[(Side::Client, up), (Side::Server, down)],
        7,
    ));
    assert!(
        r.findings.iter().all(|f| f.field.is_some()),
        "raw hits are left to the units:\n{}",
        describe(&r)
    );
    let f = expect_in(&r, "imei", "http2", "header:x-device", "h2>hpack>");
    let both = r
        .findings
        .iter()
        .filter(|g| g.canary == "imei" && g.field == f.field)
        .count();
    assert_eq!(
        both,
        2,
        "both requests, the second through the dynamic table:\n{}",
        describe(&r)
    );
    assert_eq!(f.destination, "api.vendor.example");
    expect_in(&r, "phone", "http2", "body", "h2>");
    expect_in(&r, "email", "http2", "grpc[0]", "grpc>");
    let paths: Vec<(&str, &str, Option<u16>)> = r
        .http_requests
        .iter()
        .map(|q| (q.method.as_str(), q.path.as_str(), q.status))
        .collect();
    assert_eq!(
        paths,
        [
            ("POST", "/v1/register", Some(200)),
            ("POST", "/v1/ping", None),
            ("POST", "/pkg.Svc/Put", None)
        ]
    );
    let h3 = &r.http_requests[1].headers;
    assert!(
        h3.contains(&["x-device".to_string(), IMEI.to_string()]),
        "{h3:?}"
    );
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

/// h2c: an HTTP/1.1 request with `Upgrade: h2c`, the 101, then HTTP/2 both ways; the contact name is in a
/// Huffman-coded header of the client's first HTTP/2 request.
#[test]
fn http2_after_an_h2c_upgrade() {
    let up = b"GET / HTTP/1.1\r\nHost: api.vendor.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n".to_vec();
    let mut down =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    down.extend(settings());
    let mut senc = Encoder::with_dynamic_size(4096);
    down.extend(h2_frame(
        1,
        0x5,
        1,
        &block(&mut senc, &[(":status", "200")], true),
    ));
    let mut after = PREFACE.to_vec();
    after.extend(settings());
    let mut enc = Encoder::with_dynamic_size(4096);
    let hb = block(
        &mut enc,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/me"),
            ("x-user", CONTACT),
        ],
        false,
    );
    after.extend(h2_frame(1, 0x5, 3, &hb));
    let r = analyze(conversation(
        80,
        &[
            (Side::Client, up),
            (Side::Server, down),
            (Side::Client, after),
        ],
        11,
    ));
    expect_in(&r, "contact", "http2", "header:x-user", "h2>hpack>");
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

fn ws_frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![first];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 126);
        f.extend((payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend(k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

fn ws_upgrade(extensions: &str) -> (Vec<u8>, Vec<u8>) {
    let up = format!(
        "GET /chat HTTP/1.1\r\nHost: ws.vendor.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    );
    let down = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extensions}\r\n"
    );
    (up.into_bytes(), down.into_bytes())
}

/// A masked text message in three fragments (a ping between them): the IMEI crosses fragment boundaries.
#[test]
fn websocket_masked_fragmented_message() {
    let (req, resp) = ws_upgrade("");
    let text = format!("{{\"imei\":\"{IMEI}\"}}");
    let t = text.as_bytes();
    let k = Some([0x37, 0xfa, 0x21, 0x3d]);
    let mut frames = ws_frame(0x01, &t[..12], k);
    frames.extend(ws_frame(0x89, b"keepalive", k));
    frames.extend(ws_frame(0x00, &t[12..16], k));
    frames.extend(ws_frame(0x80, &t[16..], k));
    let r = analyze(conversation(
        80,
        &[
            (Side::Client, req),
            (Side::Server, resp),
            (Side::Client, frames),
        ],
        5,
    ));
    let f = expect_in(&r, "imei", "websocket", "text", "websocket>");
    assert_eq!(f.direction, telltale::report::Direction::Up);
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

/// permessage-deflate with context takeover: the second message refers back to the first, both show the phone.
#[test]
fn websocket_permessage_deflate() {
    let (req, resp) = ws_upgrade("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    let mut c = Compress::new(Compression::default(), false);
    let mut deflate = |data: &[u8]| {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out.truncate(out.len() - 4);
        out
    };
    let msg = format!("{{\"phone\":\"{PHONE}\",\"n\":1}}");
    let one = deflate(msg.as_bytes());
    let two = deflate(msg.as_bytes());
    assert!(!one.windows(PHONE.len()).any(|w| w == PHONE.as_bytes()));
    let k = Some([9, 8, 7, 6]);
    let mut frames = ws_frame(0xc1, &one, k);
    frames.extend(ws_frame(0xc1, &two, k));
    // The server's direction: unmasked, compressed, the e-mail.
    let mut s = Compress::new(Compression::default(), false);
    let mut reply = Vec::with_capacity(256);
    s.compress_vec(EMAIL.as_bytes(), &mut reply, FlushCompress::Sync)
        .unwrap();
    reply.truncate(reply.len() - 4);
    let mut down = resp;
    down.extend(ws_frame(0xc1, &reply, None));
    let r = analyze(conversation(
        80,
        &[
            (Side::Client, req),
            (Side::Server, down),
            (Side::Client, frames),
        ],
        6,
    ));
    let f = expect_in(&r, "phone", "websocket", "text", "websocket>deflate>");
    assert_eq!(f.count, 2, "{}", describe(&r));
    let e = expect_in(&r, "email", "websocket", "text", "websocket>deflate>");
    assert_eq!(e.direction, telltale::report::Direction::Down);
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

fn mqtt_str(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn mqtt_packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    let mut n = body.len();
    loop {
        let mut x = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            x |= 0x80;
        }
        v.push(x);
        if n == 0 {
            break;
        }
    }
    v.extend_from_slice(body);
    v
}

/// MQTT 3.1.1: the IMEI as client id, the phone number as password; a PUBLISH with the e-mail in its payload.
#[test]
fn mqtt_311_connect_and_publish() {
    let mut c = mqtt_str(b"MQTT");
    c.extend([4, 0xc2, 0, 60]);
    c.extend(mqtt_str(IMEI.as_bytes()));
    c.extend(mqtt_str(b"device"));
    c.extend(mqtt_str(PHONE.as_bytes()));
    let mut up = mqtt_packet(0x10, &c);
    let mut p = mqtt_str(b"telemetry/up");
    p.extend(format!("{{\"owner\":\"{EMAIL}\"}}").as_bytes());
    up.extend(mqtt_packet(0x30, &p));
    let down = mqtt_packet(0x20, &[0, 0]);
    let r = analyze(conversation(
        1883,
        &[(Side::Client, up), (Side::Server, down)],
        4,
    ));
    expect_in(&r, "imei", "mqtt", "mqtt.client_id", "mqtt>");
    expect_in(&r, "phone", "mqtt", "mqtt.password", "mqtt>");
    expect_in(&r, "email", "mqtt", "mqtt.publish[telemetry/up]", "mqtt>");
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

/// MQTT 5 (properties in CONNECT and PUBLISH): the contact name as password, the IMEI base64 in a payload sent by
/// the server (its direction reads v5 properties once the client's CONNECT named the level).
#[test]
fn mqtt_5_connect_and_publish_both_ways() {
    use base64::Engine;
    let mut c = mqtt_str(b"MQTT");
    c.extend([5, 0xc2, 0, 60]);
    c.extend([5, 0x11, 0, 0, 0, 30]); // properties: session expiry interval
    c.extend(mqtt_str(b"sensor-7"));
    c.extend(mqtt_str(b"device"));
    c.extend(mqtt_str(CONTACT.as_bytes()));
    let up = mqtt_packet(0x10, &c);
    let mut down = mqtt_packet(0x20, &[0, 0, 0]);
    let mut p = mqtt_str(b"cmd/sensor-7");
    p.extend([0x02, 0x01, 0x01]); // properties: payload format indicator
    p.extend(
        base64::engine::general_purpose::STANDARD
            .encode(IMEI)
            .as_bytes(),
    );
    down.extend(mqtt_packet(0x30, &p));
    let r = analyze(conversation(
        1883,
        &[(Side::Client, up), (Side::Server, down)],
        3,
    ));
    expect_in(&r, "contact", "mqtt", "mqtt.password", "mqtt>");
    let f = expect_in(&r, "imei", "mqtt", "mqtt.publish[cmd/sensor-7]", "mqtt>");
    assert_eq!(f.direction, telltale::report::Direction::Down);
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

/// No false positives: the same protocols carrying values that are not canaries (near misses) find nothing.
#[test]
fn no_false_positives_in_stream_protocols() {
    let near = "356938035643808";
    let mut enc = Encoder::with_dynamic_size(4096);
    let mut up = PREFACE.to_vec();
    up.extend(settings());
    up.extend(h2_frame(
        1,
        0x4,
        1,
        &block(&mut enc, &request_headers("/v1", near), true),
    ));
    up.extend(h2_frame(0, 0x1, 1, b"{\"phone\":\"+15555550124\"}"));
    let h2 = analyze(conversation(
        8080,
        &[(Side::Client, up), (Side::Server, settings())],
        9,
    ));
    let (req, resp) = ws_upgrade("");
    let frames = ws_frame(
        0x81,
        format!("Alice Canar {near}").as_bytes(),
        Some([1, 2, 3, 4]),
    );
    let ws = analyze(conversation(
        80,
        &[
            (Side::Client, req),
            (Side::Server, resp),
            (Side::Client, frames),
        ],
        5,
    ));
    let mut c = mqtt_str(b"MQTT");
    c.extend([4, 0x02, 0, 60]);
    c.extend(mqtt_str(near.as_bytes()));
    let mqtt = analyze(conversation(
        1883,
        &[(Side::Client, mqtt_packet(0x10, &c))],
        4,
    ));
    for (name, r) in [("h2", &h2), ("websocket", &ws), ("mqtt", &mqtt)] {
        assert!(r.findings.is_empty(), "{name}:\n{}", describe(r));
        assert!(r.unread.is_empty(), "{name}: {:?}", r.unread);
        assert_eq!(findings_of(r, "imei").len(), 0);
    }
    assert_eq!(h2.http_requests.len(), 1, "the HTTP/2 request was read");
}

/// What a reader cannot read is unread, never a silent pass: a compressed WebSocket message that does not inflate,
/// and an HTTP/2 stream cut by a gap.
#[test]
fn undecodable_stream_bytes_are_unread() {
    let (req, resp) = ws_upgrade("Sec-WebSocket-Extensions: permessage-deflate\r\n");
    let frames = ws_frame(0xc2, &[0xff, 0xfe, 0xfd, 0xfc, 0xfb], Some([1, 1, 1, 1]));
    let r = analyze(conversation(
        80,
        &[
            (Side::Client, req),
            (Side::Server, resp),
            (Side::Client, frames),
        ],
        5,
    ));
    assert!(
        r.unread
            .iter()
            .any(|u| u.reason.as_str() == "stream_undecoded"),
        "{:?}",
        r.unread
    );
    // An HTTP/2 client direction with a segment missing: the rest is not decoded.
    let mut enc = Encoder::with_dynamic_size(4096);
    let mut up = PREFACE.to_vec();
    up.extend(settings());
    for i in 0..4u32 {
        up.extend(h2_frame(
            1,
            0x5,
            1 + 2 * i,
            &block(&mut enc, &request_headers("/x", "abc"), true),
        ));
    }
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), "198.18.0.10:8080".parse().unwrap(), 1000, 5000);
    t.open(&mut s);
    let mut segs = t.plan(Side::Client, &up, 20);
    segs.remove(3);
    t.write(&mut s, Side::Client, &segs, up.len());
    t.close(&mut s);
    let r = analyze(s.finish());
    let reasons: Vec<&str> = r.unread.iter().map(|u| u.reason.as_str()).collect();
    assert!(
        reasons.contains(&"tcp_gap") && reasons.contains(&"stream_undecoded"),
        "{reasons:?}"
    );
}
