//! Recall: every canary form the analysis promises to find, through every transport hardship it promises to
//! survive, in captures written by these tests. Encodings are computed here independently of the library.

mod common;

use std::io::Write;
use std::net::SocketAddr;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::*;
use md5::Digest as _;
use telltale::report::Direction;
use telltale::synth::{dns_query, Side, Synth, Tcp};

fn sha1_hex(v: &str) -> String {
    hex(&sha1::Sha1::digest(v.as_bytes()))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Each canary form in a plain HTTP POST body is found, attributed to the destination, method, path and body.
#[test]
fn every_encoding_of_every_canary_is_found_in_an_upload_body() {
    let mut cases: Vec<(&str, Vec<&str>, Vec<u8>)> = Vec::new();
    for (name, v) in [
        ("imei", IMEI),
        ("phone", PHONE),
        ("email", EMAIL),
        ("contact", CONTACT),
    ] {
        let b = v.as_bytes();
        cases.push((name, vec!["raw"], b.to_vec()));
        cases.push((name, vec!["raw"], v.to_uppercase().into_bytes()));
        cases.push((name, vec!["raw"], v.to_lowercase().into_bytes()));
        if url_encode(v) != v {
            cases.push((name, vec!["url"], url_encode(v).into_bytes()));
            cases.push((name, vec!["url"], url_encode(v).to_lowercase().into_bytes()));
        }
        cases.push((
            name,
            vec!["base64", "base64url"],
            STANDARD.encode(b).into_bytes(),
        ));
        cases.push((
            name,
            vec!["base64", "base64url"],
            STANDARD_NO_PAD.encode(b).into_bytes(),
        ));
        cases.push((
            name,
            vec!["base64url", "base64"],
            URL_SAFE_NO_PAD.encode(b).into_bytes(),
        ));
        cases.push((name, vec!["hex"], hex(b).into_bytes()));
        cases.push((name, vec!["hex"], hex(b).to_uppercase().into_bytes()));
        cases.push((
            name,
            vec!["md5>hex"],
            hex(&md5::Md5::digest(b)).into_bytes(),
        ));
        cases.push((
            name,
            vec!["sha1>hex"],
            sha1_hex(v).to_uppercase().into_bytes(),
        ));
        cases.push((
            name,
            vec!["sha256>hex"],
            hex(&sha2::Sha256::digest(b)).into_bytes(),
        ));
        cases.push((
            name,
            vec!["sha512>hex"],
            hex(&sha2::Sha512::digest(b)).into_bytes(),
        ));
        cases.push((
            name,
            vec!["md5>base64"],
            STANDARD.encode(md5::Md5::digest(b)).into_bytes(),
        ));
        cases.push((
            name,
            vec!["sha1>base64"],
            STANDARD.encode(sha1::Sha1::digest(b)).into_bytes(),
        ));
        cases.push((
            name,
            vec!["sha256>base64url", "sha256>base64"],
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(b)).into_bytes(),
        ));
        let json_u: String = v.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        cases.push((name, vec!["json-unicode"], json_u.into_bytes()));
        let utf16: Vec<u8> = v.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        cases.push((name, vec!["utf16le"], utf16));
        // Embedded in a longer base64-encoded document, at each of the three alignments.
        for pad in 0..3 {
            let doc = format!("{}{{\"v\":\"{v}\",\"n\":42}}", "x".repeat(pad));
            cases.push((
                name,
                vec!["base64"],
                STANDARD.encode(doc.as_bytes()).into_bytes(),
            ));
        }
        // Two layers: base64 of gzip.
        let doc = format!("{{\"device\":{{\"id\":\"{v}\"}}}}");
        cases.push((
            name,
            vec!["gzip>base64"],
            STANDARD.encode(gzip(doc.as_bytes())).into_bytes(),
        ));
    }
    for (name, encodings, form) in &cases {
        let mut body = b"{\"payload\":\"".to_vec();
        body.extend_from_slice(form);
        body.extend_from_slice(b"\",\"v\":1}");
        let r = analyze(conversation(&post("/v2/sync", "", &body), 1460));
        let f = expect(&r, name, encodings);
        assert_eq!(f.destination, "api.vendor.example", "{name} {encodings:?}");
        assert_eq!(f.direction, Direction::Up);
        assert_eq!(f.protocol, "http");
        assert_eq!(f.http_method.as_deref(), Some("POST"));
        assert_eq!(f.http_path.as_deref(), Some("/v2/sync"));
        assert_eq!(f.field.as_deref(), Some("body"), "{name} {encodings:?}");
        assert_eq!(f.address.to_string(), "198.18.0.10:80");
    }
}

/// A value split across TCP segments at every possible position is found exactly once.
#[test]
fn split_across_segments_at_every_position() {
    let body = format!("{{\"imei\":\"{IMEI}\",\"h\":\"{}\"}}", sha1_hex(CONTACT));
    let req = post("/upload", "", body.as_bytes());
    for mss in [1, 2, 3, 5, 7, 11, 64] {
        let r = analyze(conversation(&req, mss));
        assert_eq!(expect(&r, "imei", &["raw"]).count, 1, "mss {mss}");
        assert_eq!(expect(&r, "contact", &["sha1>hex"]).count, 1, "mss {mss}");
    }
}

fn reordered(order: impl Fn(usize) -> Vec<usize>, dup: bool) -> telltale::Report {
    let body = format!("imei={IMEI}&contact={}", sha1_hex(CONTACT));
    let req = post("/v1/upload", "", body.as_bytes());
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 77, 99);
    t.open(&mut s);
    let segs = t.plan(Side::Client, &req, 20);
    let mut list: Vec<_> = order(segs.len())
        .into_iter()
        .map(|i| segs[i].clone())
        .collect();
    if dup {
        // Retransmit every segment, and add overlapping re-segmentations of the same bytes.
        let again = list.clone();
        list.extend(again);
        let over = t.plan(Side::Client, &req, 33);
        list.extend(over);
    }
    t.write(&mut s, Side::Client, &list, req.len());
    t.send(
        &mut s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        1460,
    );
    t.close(&mut s);
    analyze(s.finish())
}

#[test]
fn reordered_segments() {
    for r in [
        reordered(|n| (0..n).rev().collect(), false),
        reordered(
            |n| {
                (0..n)
                    .map(|i| {
                        if i % 2 == 0 {
                            (i + 1).min(n - 1)
                        } else {
                            i - 1
                        }
                    })
                    .collect()
            },
            false,
        ),
    ] {
        assert_eq!(expect(&r, "imei", &["raw"]).count, 1);
        expect(&r, "contact", &["sha1>hex"]);
        assert_eq!(r.http_requests.len(), 1);
        assert!(r.flows[0].tcp.unwrap()[0].out_of_order > 0);
    }
}

#[test]
fn retransmitted_and_overlapping_segments_count_once() {
    let r = reordered(|n| (0..n).collect(), true);
    assert_eq!(expect(&r, "imei", &["raw"]).count, 1, "{}", describe(&r));
    assert_eq!(expect(&r, "contact", &["sha1>hex"]).count, 1);
    assert!(r.flows[0].tcp.unwrap()[0].retransmitted > 0);
}

#[test]
fn chunked_gzip_body() {
    let json = format!(
        "{{\"contacts\":[\"{CONTACT}\"],\"imei_b64\":\"{}\"}}",
        STANDARD.encode(IMEI)
    );
    let gz = gzip(json.as_bytes());
    let mut req = b"POST /v3/batch HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in gz.chunks(7) {
        req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = analyze(conversation(&req, 13));
    let f = expect(&r, "contact", &["raw"]);
    assert_eq!(f.decoded_from.as_deref(), Some("chunked+gzip"));
    assert_eq!(f.field.as_deref(), Some("body"));
    expect(&r, "imei", &["base64"]);
    assert_eq!(
        r.http_requests[0].content_encoding,
        vec!["gzip".to_string()]
    );
    assert_eq!(r.http_requests[0].body_decoded_bytes, json.len() as u64);
}

#[test]
fn query_parameters_and_headers_are_named() {
    let req = format!(
        "GET /track?e={}&id={}&x=1 HTTP/1.1\r\nHost: t.vendor.example\r\nX-Device: {}\r\n\r\n",
        url_encode(EMAIL),
        IMEI,
        sha1_hex(PHONE)
    );
    let r = analyze(conversation(req.as_bytes(), 1460));
    assert_eq!(
        expect(&r, "email", &["url"]).field.as_deref(),
        Some("query:e")
    );
    assert_eq!(
        expect(&r, "imei", &["raw"]).field.as_deref(),
        Some("query:id")
    );
    let h = expect(&r, "phone", &["sha1>hex"]);
    assert_eq!(h.field.as_deref(), Some("header:X-Device"));
    assert_eq!(h.destination, "t.vendor.example");
    assert_eq!(r.http_requests[0].path, "/track");
}

#[test]
fn partially_percent_encoded_query_value_is_decoded() {
    // Only some characters encoded: no fixed pattern matches the wire form; the decoded parameter does.
    let req = "GET /c?who=Alice%20Can%61ry HTTP/1.1\r\nHost: t.vendor.example\r\n\r\n";
    let r = analyze(conversation(req.as_bytes(), 1460));
    let f = expect(&r, "contact", &["url"]);
    assert_eq!(f.field.as_deref(), Some("query:who"));
}

#[test]
fn canary_in_dns_labels() {
    let mut s = Synth::ethernet();
    let dev: SocketAddr = "10.0.2.15:5353".parse().unwrap();
    let dns: SocketAddr = "10.0.2.3:53".parse().unwrap();
    s.udp(
        dev,
        dns,
        &dns_query(1, &format!("{IMEI}.t.tracker.example")),
    );
    // Hex of the phone number split across two labels (exfiltration tunnels do this).
    let h = hex(PHONE.as_bytes());
    s.udp(
        dev,
        dns,
        &dns_query(2, &format!("{}.{}.x.tracker.example", &h[..10], &h[10..])),
    );
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(f.protocol, "dns");
    assert_eq!(f.field.as_deref(), Some("query name"));
    assert_eq!(f.count, 1, "{}", describe(&r));
    expect(&r, "phone", &["hex"]);
    assert_eq!(r.dns_queries.len(), 2);
}

#[test]
fn ipv6_conversation() {
    let mut s = Synth::ethernet();
    let c: SocketAddr = "[fd00::15]:40000".parse().unwrap();
    let sv: SocketAddr = "[2001:db8::10]:80".parse().unwrap();
    let mut t = Tcp::new(c, sv, 1, 2);
    t.open(&mut s);
    t.send(
        &mut s,
        Side::Client,
        &post("/v6", "", format!("{{\"n\":\"{CONTACT}\"}}").as_bytes()),
        9,
    );
    t.close(&mut s);
    let r = analyze(s.finish());
    let f = expect(&r, "contact", &["raw"]);
    assert_eq!(f.address.to_string(), "[2001:db8::10]:80");
    assert_eq!(f.destination, "api.vendor.example");
}

#[test]
fn udp_payload_and_dns_attribution() {
    let mut s = Synth::ethernet();
    let dev: SocketAddr = "10.0.2.15:40500".parse().unwrap();
    let resolver: SocketAddr = "10.0.2.3:53".parse().unwrap();
    s.udp(dev, resolver, &dns_query(7, "stats.vendor.example"));
    s.udp(
        resolver,
        dev,
        &telltale::synth::dns_answer(7, "stats.vendor.example", "198.18.0.77".parse().unwrap()),
    );
    s.udp(
        dev,
        "198.18.0.77:9999".parse().unwrap(),
        format!("beacon;{}", STANDARD.encode(IMEI)).as_bytes(),
    );
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["base64", "base64url"]);
    assert_eq!(f.protocol, "udp");
    assert_eq!(
        f.destination, "stats.vendor.example",
        "DNS answers name later flows"
    );
    assert_eq!(r.dns_queries[0].answers, vec!["198.18.0.77".to_string()]);
}

#[test]
fn tls_client_hello_sni_carrying_a_hash_and_no_canary_in_ciphertext() {
    // The SNI names a host derived from the IMEI's md5: found in the handshake, attributed to TLS.
    let sni = format!(
        "{}.devices.vendor.example",
        hex(&md5::Md5::digest(IMEI.as_bytes()))
    );
    let hello = telltale::synth::tls_client_hello(&sni);
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), "198.18.0.11:443".parse().unwrap(), 10, 20);
    t.open(&mut s);
    t.send(&mut s, Side::Client, &hello, 100);
    t.close(&mut s);
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["md5>hex"]);
    assert_eq!(f.protocol, "tls");
    assert_eq!(r.tls[0].sni.as_deref(), Some(sni.as_str()));
    assert_eq!(f.destination, sni);
    assert!(r.tls[0].ja4.starts_with("t1"), "{}", r.tls[0].ja4);
}

#[test]
fn download_direction_is_reported_as_down() {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 1, 1);
    t.open(&mut s);
    t.send(
        &mut s,
        Side::Client,
        b"GET /me HTTP/1.1\r\nHost: api.vendor.example\r\n\r\n",
        1460,
    );
    let body = format!("{{\"phone\":\"{PHONE}\"}}");
    t.send(
        &mut s,
        Side::Server,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
        1460,
    );
    t.close(&mut s);
    let r = analyze(s.finish());
    let f = expect(&r, "phone", &["raw"]);
    assert_eq!(f.direction, Direction::Down);
    assert_eq!(f.http_path.as_deref(), Some("/me"));
    assert_eq!(r.http_requests[0].status, Some(200));
}

#[test]
fn capture_started_mid_connection_and_sequence_wraparound() {
    let req = post(
        "/late",
        "",
        format!("{{\"c\":\"{CONTACT}\",\"i\":\"{IMEI}\"}}").as_bytes(),
    );
    // No handshake, and sequence numbers that wrap inside the request.
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), u32::MAX - 40, 7);
    t.send(&mut s, Side::Client, &req, 16);
    let r = analyze(s.finish());
    expect(&r, "contact", &["raw"]);
    expect(&r, "imei", &["raw"]);
    assert!(r.flows[0].tcp.unwrap()[0].started_midstream);
    assert_eq!(
        r.flows[0].client.to_string(),
        "10.0.2.15:40001",
        "port 80 is the server even without a SYN"
    );
}

#[test]
fn pipelined_requests_are_each_attributed() {
    let mut req = post("/a", "", format!("{{\"i\":\"{IMEI}\"}}").as_bytes());
    req.extend_from_slice(&post("/b", "", format!("{{\"e\":\"{EMAIL}\"}}").as_bytes()));
    let r = analyze(conversation(&req, 1460));
    assert_eq!(
        expect(&r, "imei", &["raw"]).http_path.as_deref(),
        Some("/a")
    );
    assert_eq!(
        expect(&r, "email", &["raw"]).http_path.as_deref(),
        Some("/b")
    );
    assert_eq!(r.http_requests.len(), 2);
}

#[test]
fn truncated_capture_keeps_everything_before_the_damage() {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 1, 1);
    t.open(&mut s);
    t.send(
        &mut s,
        Side::Client,
        &post("/first", "", IMEI.as_bytes()),
        1460,
    );
    let keep = s.writer().len();
    t.send(
        &mut s,
        Side::Client,
        &post("/second", "", EMAIL.as_bytes()),
        1460,
    );
    let mut bytes = s.finish();
    bytes.truncate(keep + 30); // cut inside the next record
    let r = analyze(bytes);
    expect(&r, "imei", &["raw"]);
    assert!(r.findings.iter().all(|f| f.canary != "email"));
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "damaged-capture")
        .expect("damage warning");
    assert_eq!(w.offset, Some(keep as u64));
    assert_eq!(r.capture.damaged_at, Some(keep as u64));
}

#[test]
fn snap_length_truncated_frames_become_gaps_not_stalls() {
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 1, 1);
    t.open(&mut s);
    // First segment truncated by a 96-byte snap length, then a request with a canary.
    let first = post("/big", "", &[b'z'; 1000]);
    let segs = t.plan(Side::Client, &first, 1460);
    let f = s.tcp_frame(client(), server(), segs[0].seq, t.sseq, "AP", &segs[0].data);
    s.truncated_frame(&f, 96);
    t.cseq = t.cseq.wrapping_add(first.len() as u32);
    t.send(
        &mut s,
        Side::Client,
        &post("/next", "", IMEI.as_bytes()),
        1460,
    );
    let r = analyze(s.finish());
    assert_eq!(
        expect(&r, "imei", &["raw"]).http_path.as_deref(),
        Some("/next")
    );
    let st = r.flows[0].tcp.unwrap()[0];
    assert!(st.gap_bytes > 0);
}

#[test]
fn nothing_found_in_unrelated_traffic() {
    // Lots of text and binary that contains none of the canaries.
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut body = Vec::new();
    for _ in 0..200_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        body.push((seed >> 32) as u8);
    }
    body.extend_from_slice(
        b"{\"imei\":\"000000000000000\",\"phone\":\"+15555550100\",\"name\":\"Bob Example\"}",
    );
    let r = analyze(conversation(&post("/noise", "", &body), 1460));
    assert!(r.findings.is_empty(), "{}", describe(&r));
    assert_eq!(r.http_requests[0].body_bytes, body.len() as u64);
}

/// HTTP through a SOCKS proxy (4a and 5 with username/password): the handshake is skipped, the request parsed,
/// and the destination named by the SOCKS target.
#[test]
fn http_through_socks_proxies() {
    let proxy: SocketAddr = "10.0.2.2:1080".parse().unwrap();
    let socks4a_req = [
        &[4u8, 1, 0, 80, 0, 0, 0, 1, b'u', 0][..],
        b"sink.vendor.example\0",
    ]
    .concat();
    let socks5_client = [
        &[5u8, 1, 2][..],           // greeting: username/password
        &[1, 1, b'u', 1, b'p'][..], // RFC 1929 sub-negotiation
        &[5, 1, 0, 3, 19][..],
        b"sink.vendor.example",
        &[0, 80][..], // CONNECT sink.vendor.example:80
    ]
    .concat();
    let socks5_server = [
        &[5u8, 2][..],
        &[1, 0][..],
        &[5, 0, 0, 1, 10, 0, 0, 1, 0, 80][..],
    ]
    .concat();
    for (client_hs, server_hs) in [
        (socks4a_req, vec![0u8, 0x5a, 0, 0, 0, 0, 0, 0]),
        (socks5_client, socks5_server),
    ] {
        let mut s = Synth::ethernet();
        let mut t = Tcp::new(client(), proxy, 1, 1);
        t.open(&mut s);
        let mut up = client_hs.clone();
        up.extend_from_slice(b"POST /u HTTP/1.1\r\nContent-Length: 15\r\n\r\n");
        up.extend_from_slice(IMEI.as_bytes());
        t.send(&mut s, Side::Client, &up, 1460);
        t.send(&mut s, Side::Server, &server_hs, 1460);
        t.close(&mut s);
        let r = analyze(s.finish());
        let f = expect(&r, "imei", &["raw"]);
        assert_eq!(
            f.field.as_deref(),
            Some("body"),
            "{}\n{}",
            describe(&r),
            serde_json::to_string_pretty(&r.flows).unwrap()
        );
        assert_eq!(f.destination, "sink.vendor.example");
        assert_eq!(r.http_requests[0].path, "/u");
    }
}

/// A UDP datagram split into IPv4 fragments, the canary straddling the fragment boundary: found once
/// reassembled.
#[test]
fn canary_across_ipv4_fragments() {
    let s0 = Synth::ethernet();
    let payload = format!("{}{IMEI}{}", "a".repeat(1000), "b".repeat(500));
    let frame = s0.udp_frame(
        "10.0.2.15:40000".parse().unwrap(),
        "198.18.0.9:7000".parse().unwrap(),
        payload.as_bytes(),
    );
    let (eth, ip) = frame.split_at(14);
    let (hdr, data) = ip.split_at(20);
    let cut = 1008; // a multiple of 8 inside the IMEI (UDP header 8 + 1000 bytes of 'a')
    let mut s = Synth::ethernet();
    for (off, part, more) in [(0, &data[..cut], true), (cut, &data[cut..], false)] {
        let mut h = hdr.to_vec();
        h[2..4].copy_from_slice(&((20 + part.len()) as u16).to_be_bytes());
        let fo = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fo.to_be_bytes());
        let f = [eth, &h[..], part].concat();
        s.frame(&f);
    }
    let r = analyze(s.finish());
    let f = expect(&r, "imei", &["raw"]);
    assert_eq!(f.protocol, "udp");
    assert_eq!(f.address.to_string(), "198.18.0.9:7000");
    assert_eq!(r.capture.ip_fragments, 2);
}

/// A body that claims gzip but is not: a warning says so, and its raw bytes are still searched.
#[test]
fn undecodable_body_is_warned_about_and_searched_raw() {
    let body = format!("not gzip at all, imei={IMEI}");
    let req = format!(
        "POST /z HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = analyze(conversation(req.as_bytes(), 1460));
    let w = r
        .warnings
        .iter()
        .find(|w| w.kind == "http-decode-error")
        .expect("warning");
    assert!(w.message.contains("POST /z"), "{}", w.message);
    assert_eq!(expect(&r, "imei", &["raw"]).field.as_deref(), Some("body"));
}
