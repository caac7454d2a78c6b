//! Encrypted payloads inside a readable protocol (issue 14): an HTTP body the device encrypted itself (OpenPGP,
//! high-entropy bytes of no known format) is framed but not read, so it is an unread span of reason
//! `encrypted_payload` in the visibility account and a rule over it is INCONCLUSIVE; compressed bodies that a
//! layer opens (gzip, as a content encoding or as raw bytes) are read and never called encrypted. Captures are
//! written by the tests (`telltale::synth`).

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use common::runs::workdir;
use telltale::app::{self, RunRequest};
use telltale::record::{RuleStatus, Verdict};
use telltale::report::{Direction, Report, UnreadReason};
use telltale::runner::NoProgress;
use telltale::synth::{Side, Synth, Tcp};

const IMEI: &str = common::IMEI;

/// Pseudo-random bytes (xorshift): what ciphertext looks like.
fn random(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// A binary OpenPGP message as `gpg --symmetric` writes it: an old-format symmetric-key session-key packet
/// (tag 3, version 4) then a symmetrically encrypted, integrity-protected data packet (tag 18).
fn pgp_message(len: usize) -> Vec<u8> {
    let mut m = vec![0x8c, 0x0d, 0x04, 0x09, 0x03, 0x02];
    m.extend(random(8, 11));
    m.push(0x60);
    let body = len.saturating_sub(m.len() + 3).max(1);
    m.extend([0xd2, 0xff]);
    m.extend(((body as u32).to_be_bytes()).iter());
    m.push(0x01);
    m.extend(random(body - 1, 12));
    m
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A JSON report like a device's, `lines` lines long, with the IMEI in it or not.
fn json(lines: usize, with_imei: bool) -> Vec<u8> {
    let imei = if with_imei { IMEI } else { "000000000000000" };
    (0..lines)
        .map(|i| {
            format!(
                "{{\"seq\":{i},\"imei\":\"{imei}\",\"battery\":{},\"apps\":[\"maps\",\"mail\"]}}\n",
                i % 100
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// One HTTP POST of `body` (with `headers`) from the device to 198.18.0.20:80 for `host`, answered 200.
fn post(s: &mut Synth, port: u16, host: &str, headers: &str, body: &[u8]) {
    let client: SocketAddr = format!("10.77.0.10:{port}").parse().unwrap();
    let server: SocketAddr = "198.18.0.20:80".parse().unwrap();
    let mut t = Tcp::new(client, server, 1000, 9000);
    t.open(s);
    let mut req = format!(
        "POST /v1/report HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    t.send(s, Side::Client, &req, 1400);
    t.send(
        s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        1400,
    );
    t.close(s);
}

fn analyze_post(headers: &str, body: &[u8]) -> Report {
    let mut s = Synth::ethernet();
    post(&mut s, 40000, "telemetry.vendor.example", headers, body);
    common::analyze(s.finish())
}

fn encrypted(r: &Report) -> u64 {
    r.unread
        .iter()
        .filter(|u| u.reason == UnreadReason::EncryptedPayload)
        .map(|u| u.bytes)
        .sum()
}

#[test]
fn an_openpgp_body_is_an_unread_span_with_its_bytes() {
    let body = pgp_message(900);
    let r = analyze_post("Content-Type: application/octet-stream\r\n", &body);
    let span = r
        .unread
        .iter()
        .find(|u| u.reason == UnreadReason::EncryptedPayload)
        .unwrap_or_else(|| panic!("{:#?}", r.unread));
    assert_eq!(span.direction, Direction::Up);
    assert_eq!(span.bytes, body.len() as u64);
    assert_eq!(span.destination, "telemetry.vendor.example");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == "encrypted-payload" && w.message.contains("PGP")),
        "{:#?}",
        r.warnings
    );
    // The flow's visibility account: the body unread, the head read; nothing the server sent is unread.
    let f = &r.flows[0];
    assert_eq!(f.unread_up, body.len() as u64);
    assert_eq!(f.read_up + f.unread_up, f.bytes_up);
    assert!(f.read_up > 40, "the request head was read: {f:?}");
    assert_eq!((f.unread_down, f.read_down), (0, f.bytes_down));
}

#[test]
fn random_bytes_of_no_known_format_are_an_encrypted_payload() {
    let body = random(3000, 5);
    let r = analyze_post("", &body);
    assert_eq!(encrypted(&r), body.len() as u64, "{:#?}", r.unread);
    // Too short to tell: read (searched raw), not called encrypted.
    let r = analyze_post("", &random(100, 6));
    assert_eq!(encrypted(&r), 0, "{:#?}", r.unread);
}

#[test]
fn compressed_bodies_a_layer_opens_are_read_not_called_encrypted() {
    // Raw gzip bytes (no Content-Encoding): high entropy, but the gzip layer opens them and finds the IMEI.
    let raw = gzip(&json(200, true));
    let r = analyze_post("Content-Type: application/octet-stream\r\n", &raw);
    assert_eq!(encrypted(&r), 0, "{:#?}", r.unread);
    assert!(
        r.findings.iter().any(|f| f.canary == "imei"),
        "the gzip layer was opened: {:#?}",
        r.findings
    );
    // As a content encoding: decoded by the HTTP layer, the decoded text is what is judged.
    let r = analyze_post("Content-Encoding: gzip\r\n", &gzip(&json(200, false)));
    assert_eq!(encrypted(&r), 0, "{:#?}", r.unread);
    assert!(r.unread.is_empty(), "{:#?}", r.unread);
    let f = &r.flows[0];
    assert_eq!((f.read_up, f.unread_up), (f.bytes_up, 0));
    // Plain JSON, text and base64 are read.
    for body in [json(100, false), b"a=b&c=d".repeat(300)] {
        let r = analyze_post("", &body);
        assert!(r.unread.is_empty(), "{:#?}", r.unread);
    }
}

/// A multipart upload with a gzip'd file part and a text part.
fn multipart(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, ctype, data) in parts {
        body.extend_from_slice(
            format!("--xYz\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: {ctype}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--xYz--\r\n");
    body
}

/// A multipart body is judged part by part: a gzip'd file part makes the body high-entropy as a whole, but the
/// gzip layer opens it (the IMEI inside is found), so nothing is called encrypted; a part of random bytes of no
/// format is, with the part's own bytes and its chain in the warning.
#[test]
fn a_multipart_upload_is_judged_part_by_part() {
    let ct = "Content-Type: multipart/form-data; boundary=xYz\r\n";
    let zipped = gzip(&json(400, true));
    let body = multipart(&[
        ("meta", "text/plain", b"model=x1 build=7"),
        ("report", "application/gzip", &zipped),
    ]);
    let r = analyze_post(ct, &body);
    assert_eq!(encrypted(&r), 0, "{:#?}", r.unread);
    assert!(
        r.findings
            .iter()
            .any(|f| f.canary == "imei" && f.encoding.starts_with("multipart[report]>gzip")),
        "{:#?}",
        r.findings
    );

    let sealed = random(5000, 9);
    let body = multipart(&[
        ("report", "application/gzip", &zipped),
        ("blob", "application/octet-stream", &sealed),
    ]);
    let r = analyze_post(ct, &body);
    assert_eq!(encrypted(&r), sealed.len() as u64, "{:#?}", r.unread);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == "encrypted-payload" && w.message.contains("multipart[blob]")),
        "{:#?}",
        r.warnings
    );
}

/// A multipart Content-Type is not a pass for what the body holds outside its parts: random bytes under the
/// header with no framing at all, ciphertext in the preamble or the epilogue of a well-framed body, or a
/// high-entropy multipart body larger than the exploration window are all encrypted payloads.
#[test]
fn ciphertext_outside_a_multipart_body_s_parts_is_an_encrypted_payload() {
    let ct = "Content-Type: multipart/form-data; boundary=xYz\r\n";
    // Not framed: the boundary never appears.
    let sealed = random(6000, 21);
    let r = analyze_post(ct, &sealed);
    assert_eq!(encrypted(&r), sealed.len() as u64, "{:#?}", r.unread);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == "encrypted-payload" && w.message.contains("between the parts")),
        "{:#?}",
        r.warnings
    );

    // Framed, with ciphertext before the first delimiter and after the last one.
    let text = multipart(&[("meta", "text/plain", b"model=x1 build=7")]);
    for (at, label) in [("preamble", 0), ("epilogue", 1)] {
        let mut body = Vec::new();
        if label == 0 {
            body.extend_from_slice(&random(3000, 22));
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(&text);
        } else {
            body.extend_from_slice(&text);
            body.extend_from_slice(&random(3000, 23));
        }
        let r = analyze_post(ct, &body);
        let n = encrypted(&r);
        assert!(
            (3000..body.len() as u64).contains(&n),
            "{at}: {n}, {:#?}",
            r.unread
        );
    }

    // Larger than the window: the parts past it are never opened, so the body is judged as a whole.
    let big = random(1_200_000, 24);
    let body = multipart(&[("blob", "application/octet-stream", &big)]);
    let r = analyze_post(ct, &body);
    assert!(encrypted(&r) >= body.len() as u64, "{:#?}", r.unread);

    // A readable multipart body with short parts is still read, not called encrypted.
    let r = analyze_post(ct, &text);
    assert_eq!(encrypted(&r), 0, "{:#?}", r.unread);
}

/// Ciphertext inside a readable body, the way SDKs send it: base64 in a JSON field, hex in a form value. The
/// decoded layer is opaque and nothing opens it: an encrypted payload, named by its chain. A compressed layer
/// the graph opens (base64 of raw deflate, which has no magic) is read, not called encrypted.
#[test]
fn ciphertext_in_a_field_of_a_readable_body_is_an_encrypted_payload() {
    use base64::Engine as _;
    let sealed = random(600, 31);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&sealed);
    let body = format!("{{\"v\":2,\"device\":\"x1\",\"data\":\"{b64}\"}}");
    let r = analyze_post("Content-Type: application/json\r\n", body.as_bytes());
    assert_eq!(encrypted(&r), sealed.len() as u64, "{:#?}", r.unread);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == "encrypted-payload" && w.message.contains("json>base64")),
        "{:#?}",
        r.warnings
    );
    let form = format!("id=7&blob={}", hex::encode(&sealed));
    let r = analyze_post(
        "Content-Type: application/x-www-form-urlencoded\r\n",
        form.as_bytes(),
    );
    assert_eq!(encrypted(&r), sealed.len() as u64, "{:#?}", r.unread);

    let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    d.write_all(&json(200, true)).unwrap();
    let deflated = base64::engine::general_purpose::STANDARD.encode(d.finish().unwrap());
    let body = format!("{{\"data\":\"{deflated}\"}}");
    let r = analyze_post("Content-Type: application/json\r\n", body.as_bytes());
    assert_eq!(encrypted(&r), 0, "{:#?}", r.unread);
    assert!(
        r.findings.iter().any(|f| f.canary == "imei"),
        "{:#?}",
        r.findings
    );
}

/// A compressed stream proves its own bytes only: ciphertext with a gzip stream appended, or appended to a zlib
/// stream, or appended to a gzip stream, is still ciphertext; and ciphertext cut into multipart parts too short to judge alone is judged
/// with them together.
#[test]
fn compression_and_short_parts_do_not_cover_ciphertext() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let sealed = random(2000, 41);
    let mut before_gzip = sealed.clone();
    before_gzip.extend_from_slice(&gzip(b"x"));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(b"hello").unwrap();
    let mut after_zlib = z.finish().unwrap();
    after_zlib.extend_from_slice(&sealed);
    let mut after_gzip = gzip(b"hello");
    after_gzip.extend_from_slice(&sealed);
    for (name, blob) in [
        ("ciphertext, then gzip", &before_gzip),
        ("zlib, then ciphertext", &after_zlib),
        ("gzip, then ciphertext", &after_gzip),
    ] {
        let body = format!("{{\"d\":\"{}\"}}", b64(blob));
        let r = analyze_post("Content-Type: application/json\r\n", body.as_bytes());
        assert!(
            encrypted(&r) >= sealed.len() as u64,
            "{name}: {:#?}",
            r.unread
        );
    }

    // The same as a whole body: its gzip magic covers the member, not what follows it.
    let r = analyze_post("Content-Type: application/octet-stream\r\n", &after_gzip);
    assert!(encrypted(&r) >= sealed.len() as u64, "{:#?}", r.unread);

    let ct = "Content-Type: multipart/form-data; boundary=xYz\r\n";
    let pieces: Vec<Vec<u8>> = (0..40).map(|i| random(200, 50 + i)).collect();
    let parts: Vec<(String, &[u8])> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("p{i}"), p.as_slice()))
        .collect();
    let named: Vec<(&str, &str, &[u8])> = parts
        .iter()
        .map(|(n, p)| (n.as_str(), "application/octet-stream", *p))
        .collect();
    let r = analyze_post(ct, &multipart(&named));
    assert!(encrypted(&r) >= 40 * 200, "{:#?}", r.unread);
}

#[test]
fn an_encrypted_upload_in_a_forbidden_phase_is_inconclusive() {
    let dir = workdir("encrypted-payload-verdict");
    let mut s = Synth::ethernet();
    for i in 0..200u16 {
        s.udp(
            "10.77.0.10:5000".parse().unwrap(),
            "10.77.0.1:9".parse().unwrap(),
            &i.to_be_bytes(),
        );
    }
    post(
        &mut s,
        40001,
        "telemetry.vendor.example",
        "",
        &pgp_message(700),
    );
    std::fs::write(dir.join("cap.pcap"), s.finish()).unwrap();
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        format!("name: enc\ntarget:\n  kind: capture\n  file: cap.pcap\n  phases:\n    - {{name: consent_declined, at: 100ms}}\nidentity:\n  values: {{imei: \"{IMEI}\"}}\npolicy:\n  forbid:\n    - canaries: all\n      phases: [consent_declined]\n"),
    )
    .unwrap();
    let req = RunRequest {
        out: dir.join("out"),
        jobs: 1,
        accel: vec!["tcg".into()],
        keep: false,
        command_line: vec![],
    };
    let scenarios = app::load_scenarios(&[scenario], Default::default()).unwrap();
    let b = app::execute(app::plan(scenarios, &req.out), &req, Arc::new(NoProgress)).unwrap();
    let r = &b.runs[0]
        .outcome
        .as_ref()
        .expect("the run completed")
        .report;
    assert!(r.analysis.findings.is_empty());
    assert_eq!(r.verdict, Verdict::Inconclusive, "{:#?}", r.judgement);
    assert_eq!(b.exit_code(), telltale::ExitCode::Inconclusive);
    let rule = &r.judgement.rules[0];
    assert_eq!(rule.status(), RuleStatus::Inconclusive);
    let why = rule.inconclusive.join("\n");
    assert!(why.contains("an encrypted payload"), "{why}");
    assert!(why.contains("telemetry.vendor.example"), "{why}");
    let _ = std::fs::remove_dir_all(&dir);
}
