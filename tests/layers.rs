//! Layered decoding (issue 15): a canary wrapped in the containers and encodings real uploads use is found and
//! named by its full chain — every layer alone, combinations three deep, split across TCP segments and
//! reordered — and the same layers without a canary, near-miss values and random binary find nothing. What the
//! graph could not open (depth limit) is an unread span, never silence. Captures are built here with
//! `telltale::synth`; encodings are computed with the encoders' own crates.

mod common;

use std::io::Write;
use std::net::SocketAddr;

use common::*;
use telltale::report::Report;
use telltale::synth::{Side, Synth, Tcp};

fn gzip(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}
fn zlib(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}
fn deflate(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}
fn zstd(d: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(d, 3).unwrap()
}
fn xz(d: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut std::io::Cursor::new(d), &mut out).unwrap();
    out
}
fn bzip2(d: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    e.write_all(d).unwrap();
    e.finish().unwrap()
}
fn tar(name: &str, d: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(d.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, d).unwrap();
    b.into_inner().unwrap()
}
fn zip(name: &str, d: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file(name, o).unwrap();
    w.write_all(d).unwrap();
    w.finish().unwrap().into_inner()
}
fn b64(d: &[u8]) -> Vec<u8> {
    data_encoding::BASE64.encode(d).into_bytes()
}
fn b32(d: &[u8]) -> Vec<u8> {
    data_encoding::BASE32_NOPAD.encode(d).into_bytes()
}
fn hexb(d: &[u8]) -> Vec<u8> {
    hex(d).into_bytes()
}
fn multipart(name: &str, ctype: &str, part: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----telltaleBoundary7MA4YWxk";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"device\"\r\n\r\nthermostat\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: {ctype}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(part);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// An HTTP POST of `body` with `content_type`, cut in `mss`-byte segments, optionally sent in reverse order.
fn capture(content_type: &str, headers: &str, body: &[u8], mss: usize, reorder: bool) -> Vec<u8> {
    let mut req = format!(
        "POST /v1/report HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Type: {content_type}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 1000, 5000);
    t.open(&mut s);
    let mut segs = t.plan(Side::Client, &req, mss);
    if reorder {
        segs.reverse();
    }
    t.write(&mut s, Side::Client, &segs, req.len());
    t.send(
        &mut s,
        Side::Server,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        1460,
    );
    t.close(&mut s);
    s.finish()
}

fn chain_of(r: &Report, canary: &str) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.canary == canary)
        .map(|f| f.encoding.clone())
        .collect()
}

fn assert_chain(r: &Report, canary: &str, chain: &str) {
    assert!(
        chain_of(r, canary).iter().any(|c| c == chain),
        "expected {canary} as {chain}; findings:\n{}\nunread: {:?}",
        describe(r),
        r.unread
    );
}

fn unread_reasons(r: &Report) -> Vec<&'static str> {
    r.unread.iter().map(|u| u.reason.as_str()).collect()
}

/// Compressible (a repeated log), so that deflate and zstd code the canaries instead of storing them verbatim (a
/// stored block shows the canary as `raw`, which is right but tests no layer).
const DOC: &str = r#"{"device":"thermostat","imei":"356938035643809","owner":"Alice Canary","log":"boot ok; boot ok; boot ok; boot ok; boot ok; boot ok; boot ok; boot ok; boot ok; boot ok; boot ok; boot ok","status":"thermostat thermostat thermostat thermostat"}"#;

/// Every layer alone, in a body: found, and named by its chain.
#[test]
fn every_layer_alone_is_opened() {
    let doc = DOC.as_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("application/octet-stream", gzip(doc), "gzip>raw"),
        ("application/octet-stream", zlib(doc), "zlib>raw"),
        ("application/octet-stream", deflate(doc), "deflate>raw"),
        ("application/octet-stream", zstd(doc), "zstd>raw"),
        // lzma-rs's encoder writes uncompressed LZMA2 chunks: the canary stays visible, and is found as it is.
        ("application/octet-stream", xz(doc), "raw"),
        ("application/octet-stream", bzip2(doc), "bzip2>raw"),
        (
            "application/x-tar",
            tar("state.json", &zlib(doc)),
            "tar[state.json]>zlib>raw",
        ),
        (
            "application/zip",
            zip("state.json", doc),
            "zip[state.json]>raw",
        ),
        ("text/plain", b32(doc), "base32>raw"),
        ("text/plain", hexb(&b64(doc)), "hex>base64"),
        ("text/plain", b64(&b64(doc)), "base64>base64"),
        (
            "application/x-www-form-urlencoded",
            format!("d={}", url_encode(&url_encode(DOC))).into_bytes(),
            "form[d]>url",
        ),
        (
            "application/xml",
            b"<r><imei>35693803&#53;643809</imei></r>".to_vec(),
            "xml>raw",
        ),
    ];
    for (ct, body, chain) in cases {
        let r = analyze(capture(ct, "", &body, 1460, false));
        // Percent-encoding leaves digits alone: the form case is checked on the name (whose space is encoded).
        let canary = if chain.starts_with("form") {
            "contact"
        } else {
            "imei"
        };
        assert_chain(&r, canary, chain);
        assert!(r.unread.is_empty(), "{chain}: {:?}", r.unread);
    }
}

/// A gzip'd file in a multipart part: `multipart[report]>gzip>raw`, with the part's name as the field.
#[test]
fn gzip_file_in_a_multipart_part() {
    let (ct, body) = multipart("report", "application/gzip", &gzip(DOC.as_bytes()));
    let r = analyze(capture(&ct, "", &body, 1460, false));
    assert_chain(&r, "imei", "multipart[report]>gzip>raw");
    let f = expect(&r, "imei", &["multipart[report]>gzip>raw"]);
    assert_eq!(f.field.as_deref(), Some("body/report(report.bin)"));
    assert!(f.excerpt.contains("356938035643809"), "{}", f.excerpt);
}

/// Three layers deep, split across 7-byte TCP segments, in order and reversed.
#[test]
fn three_deep_split_and_reordered() {
    let doc = DOC.as_bytes();
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        {
            let (ct, b) = multipart("report", "text/plain", &b64(&zlib(doc)));
            (ct, b, "multipart[report]>base64>zlib>raw")
        },
        (
            "application/gzip".into(),
            gzip(&tar("a/state.json", &zlib(doc))),
            "gzip>tar[a/state.json]>zlib>raw",
        ),
        (
            "application/json".into(),
            format!(
                r#"{{"blob":"{}"}}"#,
                String::from_utf8(b64(&zstd(&hexb(doc)))).unwrap()
            )
            .into_bytes(),
            "json>base64>zstd>hex",
        ),
    ];
    for (ct, body, chain) in cases {
        for reorder in [false, true] {
            let r = analyze(capture(&ct, "", &body, 7, reorder));
            assert_chain(&r, "imei", chain);
        }
    }
}

/// Header values and cookies go through the graph.
#[test]
fn header_values_and_cookies() {
    let token = String::from_utf8(b64(&gzip(DOC.as_bytes()))).unwrap();
    let cookie = String::from_utf8(b32(b"alice.canary@example.invalid")).unwrap();
    let headers = format!("X-Telemetry: {token}\r\nCookie: sid=abc; u={cookie}\r\n");
    let r = analyze(capture("application/json", &headers, b"{}", 1460, false));
    assert_chain(&r, "email", "cookie[u]>base32>raw");
    // base64 of gzip is one of the matcher's own forms (its `H4sI` trigger).
    assert!(!chain_of(&r, "imei").is_empty(), "{}", describe(&r));
}

/// UDP payloads and DNS names: zstd in a datagram, base32 spread over DNS labels.
#[test]
fn datagrams_and_dns_labels() {
    let mut s = Synth::ethernet();
    let a: SocketAddr = "10.0.2.15:5000".parse().unwrap();
    let b: SocketAddr = "198.18.0.30:7000".parse().unwrap();
    s.udp(a, b, &zstd(DOC.as_bytes()));
    let enc = String::from_utf8(b32(b"alice.canary@example.invalid"))
        .unwrap()
        .to_lowercase();
    let labels: Vec<&str> = enc
        .as_bytes()
        .chunks(20)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let name = format!("{}.t.exfil.example", labels.join("."));
    let dns: SocketAddr = "10.0.2.3:53".parse().unwrap();
    s.udp(a, dns, &telltale::synth::dns_query(7, &name));
    let r = analyze(s.finish());
    assert_chain(&r, "imei", "zstd>raw");
    assert_chain(&r, "email", "base32>raw");
}

/// The same layers without a canary and a near-miss value inside them: no finding, nothing unread; random binary: no
/// finding, unread only as a possible encrypted payload.
#[test]
fn no_false_positives() {
    // One digit / letter off in the middle (the matcher's embedded-base64 forms cover all but the ends of a value).
    let near = DOC
        .replace("356938035643809", "356938095643809")
        .replace("Alice Canary", "Alice Banary");
    let n = near.as_bytes();
    let mut x = 0x2545f4914f6cdd1du64;
    let random: Vec<u8> = (0..20000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (mct, mbody) = multipart("report", "application/gzip", &gzip(n));
    let bodies: Vec<(String, Vec<u8>)> = vec![
        ("application/octet-stream".into(), gzip(n)),
        ("application/octet-stream".into(), zstd(&b64(&zlib(n)))),
        ("application/octet-stream".into(), xz(&bzip2(n))),
        ("text/plain".into(), b32(n)),
        ("text/plain".into(), hexb(&b64(n))),
        (mct, mbody),
        ("application/zip".into(), zip("x.json", &tar("y", n))),
    ];
    for (ct, body) in bodies {
        let r = analyze(capture(&ct, "", &body, 536, false));
        assert!(r.findings.is_empty(), "{ct}:\n{}", describe(&r));
        assert!(r.unread.is_empty(), "{ct}: {:?}", r.unread);
    }
    // Random binary holds no canary, but telltale cannot tell it from an encrypted payload: unread (never PASS),
    // and still no finding.
    for (ct, body) in [
        ("application/octet-stream", random.clone()),
        ("text/plain", b64(&random)),
    ] {
        let r = analyze(capture(ct, "", &body, 536, false));
        assert!(r.findings.is_empty(), "{ct}:\n{}", describe(&r));
        assert!(
            r.unread
                .iter()
                .all(|u| u.reason == telltale::report::UnreadReason::EncryptedPayload),
            "{ct}: {:?}",
            r.unread
        );
    }
}

/// Layers nested deeper than the limit: not found, and the still-encoded bytes are an unread span (never a
/// silent PASS).
#[test]
fn the_depth_limit_is_an_unread_span() {
    // bzip2 (the HTTP layer undoes gzip bodies itself, before the graph).
    let mut body = DOC.as_bytes().to_vec();
    for _ in 0..telltale::layers::graph::DEFAULT_DEPTH + 1 {
        body = bzip2(&body);
    }
    let r = analyze(capture("application/octet-stream", "", &body, 1460, false));
    assert!(r.findings.is_empty(), "{}", describe(&r));
    assert!(
        unread_reasons(&r).contains(&"decode_depth"),
        "{:?}",
        r.unread
    );
    // With a deeper limit it is found.
    let m = std::sync::Arc::new(telltale::Matcher::new(&identity()));
    let mut cfg = telltale::Config::default();
    cfg.layers.max_depth = telltale::layers::graph::DEFAULT_DEPTH + 2;
    let r = telltale::analyze_bytes(
        capture("application/octet-stream", "", &body, 1460, false),
        "t.pcap",
        m,
        cfg,
    )
    .unwrap();
    let chain = "bzip2>".repeat(telltale::layers::graph::DEFAULT_DEPTH + 1) + "raw";
    assert_chain(&r, "imei", &chain);
}

/// A capture-wide decoding budget that runs out is an unread span.
#[test]
fn an_exhausted_budget_is_an_unread_span() {
    let m = std::sync::Arc::new(telltale::Matcher::new(&identity()));
    let mut cfg = telltale::Config::default();
    cfg.decode_budget.bytes = 16;
    let r = telltale::analyze_bytes(
        capture(
            "application/octet-stream",
            "",
            &bzip2(DOC.as_bytes()),
            1460,
            false,
        ),
        "t.pcap",
        m,
        cfg,
    )
    .unwrap();
    assert!(r.findings.is_empty(), "{}", describe(&r));
    assert!(
        unread_reasons(&r).contains(&"decode_budget"),
        "{:?}",
        r.unread
    );
}

// ---- Structured binary layers (protobuf, MessagePack, CBOR), single-byte XOR, numeric and phone forms ----

fn pb_var(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
fn pb_varint(field: u64, v: u64, out: &mut Vec<u8>) {
    pb_var(field << 3, out);
    pb_var(v, out);
}
fn pb_bytes(field: u64, b: &[u8], out: &mut Vec<u8>) {
    pb_var((field << 3) | 2, out);
    pb_var(b.len() as u64, out);
    out.extend_from_slice(b);
}
fn pb_double(field: u64, v: f64, out: &mut Vec<u8>) {
    pb_var((field << 3) | 1, out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A UDP datagram from the device.
fn datagram(payload: &[u8]) -> Vec<u8> {
    let mut s = Synth::ethernet();
    let a: SocketAddr = "10.0.2.15:5000".parse().unwrap();
    let b: SocketAddr = "198.18.0.30:7000".parse().unwrap();
    s.udp(a, b, payload);
    s.finish()
}

const IMEI_N: u64 = 356_938_035_643_809;

/// The IMEI as a protobuf varint and as a u64: the matcher's binary forms see it in the message itself; where the
/// number is only visible once the message is walked (a double written by a JavaScript SDK, a base64'd message in
/// a JSON field), the chain names the protobuf field.
#[test]
fn protobuf_numbers_and_strings() {
    let mut m = Vec::new();
    pb_varint(1, IMEI_N, &mut m);
    pb_varint(2, 42, &mut m);
    let r = analyze(datagram(&m));
    assert_chain(&r, "imei", "varint");
    let mut m = Vec::new();
    pb_var((4 << 3) | 1, &mut m);
    m.extend_from_slice(&IMEI_N.to_le_bytes());
    let r = analyze(datagram(&m));
    assert_chain(&r, "imei", "u64le");
    // A double: no bare form for the matcher; the walker hands on its decimal text.
    let mut m = Vec::new();
    pb_varint(1, 7, &mut m);
    pb_double(7, IMEI_N as f64, &mut m);
    let r = analyze(datagram(&m));
    assert_chain(&r, "imei", "protobuf[7]>double>raw");
    // A message base64'd in a JSON field: the chain names every layer down to the protobuf field.
    let mut m = Vec::new();
    pb_varint(1, 12, &mut m);
    pb_bytes(3, b"session-0123456789abcdef-0123456789abcdef", &mut m);
    pb_double(7, IMEI_N as f64, &mut m);
    let json = format!(r#"{{"event":"{}"}}"#, String::from_utf8(b64(&m)).unwrap());
    let r = analyze(capture(
        "application/json",
        "",
        json.as_bytes(),
        1460,
        false,
    ));
    let chains = chain_of(&r, "imei");
    assert!(
        chains
            .iter()
            .any(|c| c.ends_with("base64>protobuf[7]>double>raw")),
        "{chains:?}\n{}",
        describe(&r)
    );
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

/// MessagePack and CBOR maps: numbers (integers, integral floats) and strings, gzip'd in a body.
#[test]
fn msgpack_and_cbor_documents() {
    use rmp::encode as en;
    let mut m = Vec::new();
    en::write_map_len(&mut m, 3).unwrap();
    en::write_str(&mut m, "id").unwrap();
    en::write_f64(&mut m, IMEI_N as f64).unwrap();
    en::write_str(&mut m, "n").unwrap();
    en::write_uint(&mut m, 7).unwrap();
    en::write_str(&mut m, "who").unwrap();
    en::write_str(&mut m, "Alice Canary").unwrap();
    let r = analyze(capture("application/msgpack", "", &gzip(&m), 1460, false));
    assert_chain(&r, "imei", "gzip>msgpack>float>raw");
    let f = expect(&r, "imei", &["gzip>msgpack>float>raw"]);
    assert_eq!(f.field.as_deref(), Some("body/id"), "{}", describe(&r));
    assert!(!chain_of(&r, "contact").is_empty(), "{}", describe(&r));
    // CBOR: {"d": {"imei": 356938035643809.0 (float64)}, "tags": ["x"]}
    let mut c = vec![0xa2, 0x61, b'd', 0xa1, 0x64];
    c.extend_from_slice(b"imei");
    c.push(0xfb);
    c.extend_from_slice(&(IMEI_N as f64).to_be_bytes());
    c.extend_from_slice(&[0x64, b't', b'a', b'g', b's', 0x81, 0x61, b'x']);
    let r = analyze(capture("application/cbor", "", &zlib(&c), 1460, false));
    assert_chain(&r, "imei", "zlib>cbor>float>raw");
    let f = expect(&r, "imei", &["zlib>cbor>float>raw"]);
    assert_eq!(f.field.as_deref(), Some("body/d.imei"));
    assert!(r.unread.is_empty(), "{:?}", r.unread);
}

/// A short datagram XORed with one byte: found, and the key is in the chain.
#[test]
fn single_byte_xor_names_its_key() {
    let doc = br#"{"id":"356938035643809","mail":"alice.canary@example.invalid"}"#;
    let x: Vec<u8> = doc.iter().map(|&c| c ^ 0xa7).collect();
    let r = analyze(datagram(&x));
    assert_chain(&r, "imei", "xor[0xa7]>raw");
    assert_chain(&r, "email", "xor[0xa7]>raw");
    // A long binary body is not tried (XOR is for short payloads): nothing found, and nothing hidden either
    // (no magic, no encoding run: the body is searched as it is).
    let long: Vec<u8> = doc.iter().cycle().take(20_000).map(|&c| c ^ 0xa7).collect();
    let r = analyze(capture("application/octet-stream", "", &long, 1460, false));
    assert!(
        chain_of(&r, "imei").iter().all(|c| !c.starts_with("xor")),
        "{}",
        describe(&r)
    );
}

/// Keys below 0x80 keep text printable, so the body looks like plain text: found all the same (by the
/// differences of neighbouring bytes, which no key changes), in a datagram and in an HTTP body, with the key named.
#[test]
fn single_byte_xor_with_a_key_that_keeps_text_printable() {
    let doc = br#"{"id":"356938035643809","mail":"alice.canary@example.invalid"}"#;
    for key in [0x01u8, 0x05, 0x0f, 0x41, 0x7f] {
        let x: Vec<u8> = doc.iter().map(|&c| c ^ key).collect();
        let want = format!("xor[{key:#04x}]>raw");
        let r = analyze(datagram(&x));
        assert_chain(&r, "imei", &want);
        assert_chain(&r, "email", &want);
        let r = analyze(capture("application/octet-stream", "", &x, 1460, false));
        assert_chain(&r, "imei", &want);
    }
    // The same text under no key is found as it is, not as a XOR.
    let r = analyze(datagram(doc));
    assert!(
        chain_of(&r, "imei").iter().all(|c| !c.starts_with("xor")),
        "{}",
        describe(&r)
    );
}

/// A phone number as people write it, in a vCard, plain and gzip'd in a multipart part.
#[test]
fn phone_as_written_in_a_vcard() {
    let vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob Example\r\nNOTE:met at the example meetup, the example meetup, the example meetup\r\nTEL;TYPE=cell:+1 (555) 555-0123\r\nEND:VCARD\r\n";
    let r = analyze(capture("text/vcard", "", vcard.as_bytes(), 1460, false));
    assert_chain(&r, "phone", "phone-formatted");
    let (ct, body) = multipart("contacts", "application/gzip", &gzip(vcard.as_bytes()));
    let r = analyze(capture(&ct, "", &body, 100, true));
    assert_chain(&r, "phone", "multipart[contacts]>gzip>phone-formatted");
    // A near miss (one digit off) is nothing.
    let near = vcard.replace("0123", "0124");
    let r = analyze(capture("text/vcard", "", near.as_bytes(), 1460, false));
    assert!(r.findings.is_empty(), "{}", describe(&r));
}

/// The structured layers and XOR with no canary, and near-miss numbers: nothing found, nothing unread.
#[test]
fn structured_layers_without_a_canary_find_nothing() {
    let mut m = Vec::new();
    pb_varint(1, IMEI_N - 1, &mut m);
    pb_double(2, (IMEI_N + 1) as f64, &mut m);
    pb_bytes(3, b"alice.canary@example.invalit", &mut m);
    let x: Vec<u8> = br#"{"id":"356938035643808","who":"Alice Canari"}"#
        .iter()
        .map(|&c| c ^ 0x3c)
        .collect();
    let mut mp = Vec::new();
    rmp::encode::write_array_len(&mut mp, 2).unwrap();
    rmp::encode::write_uint(&mut mp, IMEI_N + 10).unwrap();
    rmp::encode::write_str(&mut mp, "+1 (555) 555-0124").unwrap();
    for payload in [m.clone(), x, mp, gzip(&m)] {
        let r = analyze(datagram(&payload));
        assert!(r.findings.is_empty(), "{payload:?}\n{}", describe(&r));
        assert!(r.unread.is_empty(), "{:?}", r.unread);
    }
}

/// The IMEI percent-encoded in full (every digit an escape; the matcher's URL form leaves digits alone) inside a
/// binary datagram: the printable run is decoded on its own, and the finding names the `url` layer.
#[test]
fn a_value_percent_encoded_inside_binary_bytes() {
    let binary: Vec<u8> = (0..200u32).map(|i| (i * 167 % 251) as u8 | 0x80).collect();
    let mut payload = binary.clone();
    payload.extend_from_slice(b"id=");
    for c in IMEI_N.to_string().bytes() {
        payload.extend_from_slice(format!("%{c:02X}").as_bytes());
    }
    payload.extend_from_slice(&binary);
    let r = analyze(datagram(&payload));
    assert_chain(&r, "imei", "url>raw");
    // One escape is enough to hide it from the raw search.
    let mut payload = binary.clone();
    payload.extend_from_slice(b"35693803564380%39");
    payload.extend_from_slice(&binary);
    let r = analyze(datagram(&payload));
    assert_chain(&r, "imei", "url>raw");
}

/// Forty pipelined POSTs in one segment: the first body, base64 of zlib of the document, is still opened
/// (the parser sees every head of a delivery before its bodies are collected, and the first message's span was
/// dropped to keep 32).
#[test]
fn pipelined_requests_keep_their_bodies() {
    let first = b64(&zlib(DOC.as_bytes()));
    let mut req = Vec::new();
    for i in 0..40 {
        let body: Vec<u8> = if i == 0 {
            first.clone()
        } else {
            b"{\"n\":1}".to_vec()
        };
        req.extend_from_slice(
            format!(
                "POST /v1/r{i} HTTP/1.1\r\nHost: api.vendor.example\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(&body);
    }
    let mut s = Synth::ethernet();
    let mut t = Tcp::new(client(), server(), 1000, 5000);
    t.open(&mut s);
    let segs = t.plan(Side::Client, &req, 60_000);
    t.write(&mut s, Side::Client, &segs, req.len());
    t.close(&mut s);
    let r = analyze(s.finish());
    assert_chain(&r, "imei", "base64>zlib>raw");
}
