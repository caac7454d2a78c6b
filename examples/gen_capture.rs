//! Generates a large synthetic capture for the throughput benchmark (`ci/bench`).
//!
//! `gen_capture OUT.pcap [--size-mb N]` writes a pcap of about N MB (default 400) that looks like a chatty
//! device: DNS lookups, then per connection either an HTTP upload of JSON telemetry (plain, or chunked and
//! gzip-compressed), an HTTP download, or a TLS connection (ClientHello with SNI, then encrypted-looking records).
//! The first upload and every 500th after it carry canary values from `ci/bench-identity.yaml` (raw, and base64 in a JSON field), so
//! the benchmark also measures the path that reports findings. Deterministic: same size, same bytes.
//!
//! With `--layers`, every upload is wrapped in the layers real SDKs use, in turn: a gzip'd JSON file in a
//! multipart/form-data part; a form value of base64 of zlib; a JSON field of base64 of gzip; hex of base64; zstd;
//! and a short datagram-sized body under a single-byte XOR. That file measures the decoding graph at work.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine;
use telltale::synth::{dns_answer, dns_query, Side, Synth, Tcp};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "cpu",
    "memory",
    "battery",
    "signal",
    "wifi",
    "rssi",
    "uptime",
    "temperature",
    "screen",
    "brightness",
    "locale",
    "timezone",
    "firmware",
    "build",
    "kernel",
    "module",
    "sensor",
    "accel",
    "gyro",
    "charging",
    "storage",
    "free",
    "used",
    "network",
    "cellular",
    "lte",
    "band",
    "cell",
    "app",
    "launcher",
    "settings",
    "camera",
    "gallery",
];

fn json_body(rng: &mut Rng, size: usize, canary: bool) -> Vec<u8> {
    let mut s = String::with_capacity(size + 256);
    s.push_str("{\"device\":\"model-x\",\"events\":[");
    let mut first = true;
    while s.len() < size {
        if !first {
            s.push(',');
        }
        first = false;
        let w1 = WORDS[rng.below(WORDS.len() as u64) as usize];
        let w2 = WORDS[rng.below(WORDS.len() as u64) as usize];
        s.push_str(&format!(
            "{{\"t\":{},\"metric\":\"{w1}.{w2}\",\"value\":{}.{:02},\"tags\":[\"{w2}\",\"{}\"]}}",
            1_700_000_000 + rng.below(10_000_000),
            rng.below(100_000),
            rng.below(100),
            rng.next() % 0xffff_ffff
        ));
    }
    if canary {
        let b64 = base64::engine::general_purpose::STANDARD.encode("356938035643809");
        s.push_str(&format!(
            "],\"imei\":\"356938035643809\",\"contact\":\"Alice Canary\",\"id\":\"{b64}\"}}"
        ));
    } else {
        s.push_str("]}");
    }
    s.into_bytes()
}

fn gzip(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(d);
    e.finish().unwrap_or_default()
}

fn zlib(d: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(d);
    e.finish().unwrap_or_default()
}

/// `json` wrapped in the `n`-th kind of layers: the Content-Type and the body.
fn layered(n: u64, json: &[u8]) -> (String, Vec<u8>) {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    match n % 6 {
        0 => {
            let mut body = b"--b0undary\r\nContent-Disposition: form-data; name=\"report\"; filename=\"report.json.gz\"\r\nContent-Type: application/gzip\r\n\r\n".to_vec();
            body.extend_from_slice(&gzip(json));
            body.extend_from_slice(b"\r\n--b0undary--\r\n");
            ("multipart/form-data; boundary=b0undary".into(), body)
        }
        1 => {
            let v: String = percent_encoding::utf8_percent_encode(
                &b64(&zlib(json)),
                percent_encoding::NON_ALPHANUMERIC,
            )
            .collect();
            (
                "application/x-www-form-urlencoded".into(),
                format!("v=2&payload={v}").into_bytes(),
            )
        }
        2 => (
            "application/json".into(),
            format!("{{\"kind\":\"batch\",\"blob\":\"{}\"}}", b64(&gzip(json))).into_bytes(),
        ),
        3 => ("text/plain".into(), hex::encode(b64(json)).into_bytes()),
        4 => (
            "application/zstd".into(),
            zstd::bulk::compress(json, 1).unwrap_or_default(),
        ),
        _ => (
            "application/octet-stream".into(),
            // The last 4000 bytes (where a canary upload has its values), under a key that keeps text printable.
            json[json.len().saturating_sub(4000)..]
                .iter()
                .map(|b| b ^ 0x5c)
                .collect(),
        ),
    }
}

fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    // server_name
    let name = sni.as_bytes();
    let mut sn = Vec::new();
    sn.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sn.extend_from_slice(name);
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sn);
    // ALPN h2, http/1.1
    let alpn = [
        2u8, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
    ];
    ext.extend_from_slice(&16u16.to_be_bytes());
    ext.extend_from_slice(&((alpn.len() + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(alpn.len() as u16).to_be_bytes());
    ext.extend_from_slice(&alpn);
    // supported_versions: TLS 1.3, 1.2
    ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
    // signature_algorithms
    ext.extend_from_slice(&[
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    let ciphers: [u16; 4] = [0x1301, 0x1302, 0xc02b, 0xc02f];
    body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
    for c in ciphers {
        body.extend_from_slice(&c.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn tls_records(rng: &mut Rng, total: usize, handshake_first: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(total + 64);
    if handshake_first {
        // A TLS 1.3 ServerHello (supported_versions, an x25519 key share) and a ChangeCipherSpec, then
        // application data.
        let mut ext = vec![
            0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20,
        ];
        ext.extend_from_slice(&[9u8; 32]);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[5u8; 32]);
        body.push(32);
        body.extend_from_slice(&[6u8; 32]);
        body.extend_from_slice(&[0x13, 0x01, 0x00]);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![2u8];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        v.extend_from_slice(&[0x16, 0x03, 0x03]);
        v.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        v.extend_from_slice(&hs);
        v.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    }
    while v.len() < total {
        let n = (total - v.len()).min(16_000);
        v.extend_from_slice(&[0x17, 0x03, 0x03]);
        v.extend_from_slice(&(n as u16).to_be_bytes());
        for _ in 0..n / 8 {
            v.extend_from_slice(&rng.next().to_le_bytes());
        }
        v.extend(std::iter::repeat_n(0x5a, n % 8));
    }
    v
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| {
        eprintln!("usage: gen_capture OUT.pcap [--size-mb N] [--layers]");
        std::process::exit(2)
    });
    let mut size_mb: u64 = 400;
    let mut layers = false;
    while let Some(a) = args.next() {
        if a == "--size-mb" {
            size_mb = args.next().and_then(|v| v.parse().ok()).unwrap_or(size_mb);
        } else if a == "--layers" {
            layers = true;
        }
    }
    let target = size_mb * 1_000_000;
    let file = BufWriter::with_capacity(1 << 20, File::create(&out)?);
    let mut s = Synth::to_writer(
        CountingWriter { inner: file, n: 0 },
        telltale::capture::writer::linktype::ETHERNET,
    )?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let device = Ipv4Addr::new(10, 0, 2, 15);
    let resolver: SocketAddr = "10.0.2.3:53".parse().unwrap_or_else(|_| unreachable!());
    let mut n: u64 = 0;
    while s_bytes(&s) < target {
        n += 1;
        let host = format!("api{}.telemetry{}.example", n % 50, n % 7);
        let server_ip = Ipv4Addr::new(198, 18, (n % 200) as u8, (n % 250) as u8 + 1);
        let dport = 20_000 + (n % 40_000) as u16;
        if n % 4 == 1 {
            let q = dns_query(n as u16, &host);
            s.udp(SocketAddr::from((device, dport)), resolver, &q);
            let a = dns_answer(n as u16, &host, server_ip);
            s.udp(resolver, SocketAddr::from((device, dport)), &a);
        }
        let kind = n % 10;
        let port = if (7..=8).contains(&kind) { 443 } else { 80 };
        let mut tcp = Tcp::new(
            SocketAddr::from((device, 30_000 + (n % 30_000) as u16)),
            SocketAddr::from((server_ip, port)),
            rng.next() as u32,
            rng.next() as u32,
        );
        tcp.open(&mut s);
        match kind {
            0..=5 => {
                let size = 4096 + rng.below(60_000) as usize;
                // In the layered file every 100th upload carries the canaries, so that even a small file has
                // each kind of layers with a canary in it.
                let every = if layers { 100 } else { 500 };
                let canary = n % every == 1;
                let body = json_body(&mut rng, size, canary);
                let (ctype, body) = if layers {
                    // Uploads with canaries go through every kind of layers in turn.
                    layered(if canary { n / every } else { n / 10 }, &body)
                } else {
                    ("application/json".to_string(), body)
                };
                let mut req = format!(
                    "POST /v1/telemetry/{} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                    n % 13,
                    body.len()
                )
                .into_bytes();
                req.extend_from_slice(&body);
                tcp.send(&mut s, Side::Client, &req, 1448);
                tcp.send(&mut s, Side::Server, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 1448);
            }
            6 => {
                let size = 16_384 + rng.below(48_000) as usize;
                let body = json_body(&mut rng, size, false);
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&body)?;
                let gz = gz.finish()?;
                let mut req = format!(
                    "POST /v2/batch HTTP/1.1\r\nHost: {host}\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .into_bytes();
                for c in gz.chunks(4000) {
                    req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    req.extend_from_slice(c);
                    req.extend_from_slice(b"\r\n");
                }
                req.extend_from_slice(b"0\r\n\r\n");
                tcp.send(&mut s, Side::Client, &req, 1448);
                tcp.send(
                    &mut s,
                    Side::Server,
                    b"HTTP/1.1 204 No Content\r\n\r\n",
                    1448,
                );
            }
            7 | 8 => {
                tcp.send(&mut s, Side::Client, &client_hello(&host), 1448);
                let size = 32_768 + rng.below(96_000) as usize;
                let down = tls_records(&mut rng, size, true);
                tcp.send(&mut s, Side::Server, &down, 1448);
                let size = 2048 + rng.below(8192) as usize;
                let up = tls_records(&mut rng, size, false);
                tcp.send(&mut s, Side::Client, &up, 1448);
            }
            _ => {
                let req = format!(
                    "GET /v1/config/{} HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n",
                    n % 17
                );
                tcp.send(&mut s, Side::Client, req.as_bytes(), 1448);
                let size = 8192 + rng.below(56_000) as usize;
                let body = json_body(&mut rng, size, false);
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                resp.extend_from_slice(&body);
                tcp.send(&mut s, Side::Server, &resp, 1448);
            }
        }
        tcp.close(&mut s);
    }
    let frames = s.frames();
    let w = s.into_inner()?;
    eprintln!(
        "wrote {out}: {} bytes, {frames} frames, {n} connections",
        w.n
    );
    Ok(())
}

fn s_bytes(s: &Synth<CountingWriter>) -> u64 {
    s.writer().n
}

struct CountingWriter {
    inner: BufWriter<File>,
    n: u64,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
