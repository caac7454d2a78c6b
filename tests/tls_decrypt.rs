//! TLS decryption with key logs, against real clients and servers: curl (with `SSLKEYLOGFILE`) uploads canaries
//! in a query, a header and a POST body to a Python `ssl` HTTPS server, in a network namespace of its own, over
//! TLS 1.3 and 1.2 with AES-GCM and ChaCha20-Poly1305. `tcpdump` is not on the test machines, and the vnet
//! (what the other namespace tests capture with) terminates TCP itself, so it cannot carry a real TLS server:
//! the capture is taken on the namespace's loopback by a small packet-socket script the test writes. Needs root,
//! `ip`, `curl`, `openssl` and `python3`; elsewhere each test is listed as ignored with the reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::runs::{bin, on_path, skip, text, workdir};
use common::{CONTACT, EMAIL, IMEI};
use telltale::report::{Report, UnreadReason};
use telltale::{Config, Matcher};

/// The connections: (host, curl's TLS options, the suite the report must name).
const CONNECTIONS: [(&str, &[&str], &str); 4] = [
    (
        "a13.vendor.example",
        &["--tlsv1.3", "--tls13-ciphers", "TLS_AES_256_GCM_SHA384"],
        "TLS_AES_256_GCM_SHA384",
    ),
    (
        "c13.vendor.example",
        &[
            "--tlsv1.3",
            "--tls13-ciphers",
            "TLS_CHACHA20_POLY1305_SHA256",
        ],
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        "a12.vendor.example",
        &[
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ],
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "c12.vendor.example",
        &[
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ],
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

const PORT: u16 = 8443;

/// Why these tests cannot run here, or `None`.
fn unsupported() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    if uid != "0" {
        return Some(
            "needs root (a network namespace and a packet socket); `.ci/run` runs it as root"
                .into(),
        );
    }
    for tool in ["ip", "curl", "openssl", "python3"] {
        if !on_path(tool) {
            return Some(format!("needs `{tool}` on PATH"));
        }
    }
    None
}

/// The capture and the key log curl wrote, made once for all tests of this file.
struct Fixture {
    capture: PathBuf,
    keylog: PathBuf,
}

const CAPTURE_PY: &str = r#"
import signal, socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind(("lo", 0))
s.settimeout(0.1)
f = open(sys.argv[1], "wb")
f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
open(sys.argv[2], "w").write("ready")
while not stop:
    try:
        data, addr = s.recvfrom(262144)
    except socket.timeout:
        continue
    except InterruptedError:
        continue
    if addr[2] == socket.PACKET_OUTGOING:
        continue  # loopback shows each frame twice
    t = time.time()
    f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(data), len(data)))
    f.write(data)
f.close()
"#;

const SERVER_PY: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    do_GET = answer
    do_POST = answer
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
httpd = http.server.HTTPServer(("127.0.0.1", int(sys.argv[3])), H)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
open(sys.argv[4], "w").write("ready")
httpd.serve_forever()
"#;

fn wait_for(file: &Path, what: &str) {
    let t = Instant::now();
    while !file.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut c: Child) {
    // SIGTERM to the process we started (by its pid), then wait.
    let _ = Command::new("kill").arg(c.id().to_string()).status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// Removes the namespace on drop.
struct Ns(String);
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn make_fixture() -> Fixture {
    let dir = workdir("tls-decrypt");
    let ns = Ns(format!("tt-{}-tls", std::process::id() % 100_000));
    let ok = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap();
    assert!(ok.success(), "ip netns add failed");
    let exec = |args: &[&str]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.0]).args(args);
        c
    };
    assert!(exec(&["ip", "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg("/CN=vendor.example")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl req: {}", text(&o));
    std::fs::write(dir.join("capture.py"), CAPTURE_PY).unwrap();
    std::fs::write(dir.join("server.py"), SERVER_PY).unwrap();
    let capture = dir.join("tls.pcap");
    let cap_ready = dir.join("capture.ready");
    let cap = exec(&["python3"])
        .arg(dir.join("capture.py"))
        .arg(&capture)
        .arg(&cap_ready)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&cap_ready, "the capture");
    let srv_ready = dir.join("server.ready");
    let srv = exec(&["python3"])
        .arg(dir.join("server.py"))
        .arg(&cert)
        .arg(&key)
        .arg(PORT.to_string())
        .arg(&srv_ready)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&srv_ready, "the HTTPS server");
    let keylog = dir.join("curl-keys.log");
    for (host, opts, _) in CONNECTIONS {
        let url = format!("https://{host}:{PORT}/upload?imei={IMEI}");
        let resolve = format!("{host}:{PORT}:127.0.0.1");
        let header = format!("X-Contact: {CONTACT}");
        let body = format!("{{\"email\":\"{EMAIL}\"}}");
        let o = exec(&["env"])
            .arg(format!("SSLKEYLOGFILE={}", keylog.display()))
            .args(["curl", "-sS", "-k", "--http1.1", "--max-time", "10"])
            .args(opts)
            .args(["--resolve", &resolve, "-H", &header, "-H"])
            .arg("Content-Type: application/json")
            .args(["--data", &body, &url])
            .output()
            .unwrap();
        assert!(o.status.success(), "curl to {host}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "ok");
    }
    // Let the last FINs reach the capture.
    std::thread::sleep(Duration::from_millis(300));
    stop(srv);
    stop(cap);
    drop(ns);
    Fixture { capture, keylog }
}

fn fixture() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    if skip(unsupported()) {
        return None;
    }
    F.get_or_init(|| Some(make_fixture())).as_ref()
}

fn analyze(capture: &Path, keylogs: &[PathBuf]) -> Report {
    let m = Arc::new(Matcher::new(&common::identity()));
    let cfg = Config {
        keys: Arc::new(telltale::app::load_keylogs(keylogs).unwrap()),
        ..Config::default()
    };
    telltale::analyze_file(capture, m, cfg, |_| {}).unwrap()
}

/// Every connection's canaries are found, marked decrypted, with the SNI as destination.
fn assert_all_decrypted(r: &Report, key_source: &str) {
    for (host, _, suite) in CONNECTIONS {
        for (canary, field) in [("imei", "query"), ("contact", "header"), ("email", "body")] {
            let found = r.findings.iter().any(|f| {
                f.destination == host && f.canary == canary && f.tls.as_deref() == Some("decrypted")
            });
            assert!(
                found,
                "no decrypted finding of {canary} ({field}) to {host}; findings:\n{}\nwarnings: {:?}",
                common::describe(r),
                r.warnings
            );
        }
        let t = r
            .tls
            .iter()
            .find(|t| t.sni.as_deref() == Some(host))
            .unwrap_or_else(|| panic!("no TLS record for {host}: {:?}", r.tls));
        let d = t.decryption.as_ref().expect("a decryption state");
        assert_eq!(d.state, "decrypted", "{host}: {d:?}");
        assert_eq!(d.cipher_suite.as_deref(), Some(suite), "{host}: {d:?}");
        assert!(d.plaintext_bytes > 0 && d.records > 0, "{host}: {d:?}");
        assert!(
            d.key_source
                .as_deref()
                .is_some_and(|s| s.contains(key_source)),
            "{host}: {d:?}"
        );
    }
    assert!(
        !r.unread
            .iter()
            .any(|u| u.reason == UnreadReason::TlsCiphertext
                || u.reason == UnreadReason::TlsKeyFailed),
        "ciphertext left unread although every key is there: {:?}",
        r.unread
    );
}

fn curl_uploads_over_tls_13_and_12_with_gcm_and_chacha_are_found_decrypted_with_its_key_log() {
    let Some(f) = fixture() else { return };
    let r = analyze(&f.capture, std::slice::from_ref(&f.keylog));
    assert_all_decrypted(&r, "curl-keys.log");
    assert!(
        !r.warnings.iter().any(|w| w.kind.starts_with("keylog")),
        "{:?}",
        r.warnings
    );
}

fn without_keys_nothing_is_found_and_every_connection_is_opaque_with_its_reason() {
    let Some(f) = fixture() else { return };
    let r = analyze(&f.capture, &[]);
    assert!(
        !r.findings
            .iter()
            .any(|x| ["imei", "contact", "email"].contains(&x.canary.as_str())),
        "{}",
        common::describe(&r)
    );
    for (host, _, _) in CONNECTIONS {
        let t = r
            .tls
            .iter()
            .find(|t| t.sni.as_deref() == Some(host))
            .unwrap();
        let d = t.decryption.as_ref().expect("a decryption state");
        assert_eq!(d.state, "no_key", "{host}: {d:?}");
        assert!(
            r.unread.iter().any(|u| u.flow == Some(t.flow)
                && u.reason == UnreadReason::TlsCiphertext
                && u.bytes > 0),
            "{host}: no unread ciphertext span: {:?}",
            r.unread
        );
    }
}

/// The key log with every secret's last hex digit changed (the client randoms kept).
fn wrong_keys(src: &Path, dst: &Path) {
    let text = std::fs::read_to_string(src).unwrap();
    let out: String = text
        .lines()
        .map(|l| {
            let mut l = l.to_string();
            if let Some(c) = l.pop() {
                l.push(if c == '0' { '1' } else { '0' });
            }
            l + "\n"
        })
        .collect();
    std::fs::write(dst, out).unwrap();
}

fn a_wrong_key_is_an_error_naming_the_connection_and_nothing_is_searched() {
    let Some(f) = fixture() else { return };
    let bad = f.keylog.with_file_name("wrong-keys.log");
    wrong_keys(&f.keylog, &bad);
    let r = analyze(&f.capture, &[bad]);
    assert!(
        !r.findings.iter().any(|x| x.tls.is_some()),
        "garbage searched: {}",
        common::describe(&r)
    );
    for (host, _, _) in CONNECTIONS {
        let t = r
            .tls
            .iter()
            .find(|t| t.sni.as_deref() == Some(host))
            .unwrap();
        let d = t.decryption.as_ref().unwrap();
        assert_eq!(d.state, "key_failed", "{host}: {d:?}");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.kind == "tls-key-failed"
                    && w.message.contains(&format!("flow {} ", t.flow))),
            "{host}: {:?}",
            r.warnings
        );
        assert!(
            r.unread
                .iter()
                .any(|u| u.flow == Some(t.flow) && u.reason == UnreadReason::TlsKeyFailed),
            "{host}: {:?}",
            r.unread
        );
    }
}

fn garbage_lines_are_counted_with_their_line_numbers_and_the_rest_is_used() {
    let Some(f) = fixture() else { return };
    let good = std::fs::read_to_string(&f.keylog).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(0, "this is not a key log line");
    lines.insert(2, "CLIENT_RANDOM zz 00");
    let garbled = f.keylog.with_file_name("garbled-keys.log");
    std::fs::write(&garbled, lines.join("\n") + "\n").unwrap();
    let r = analyze(&f.capture, &[garbled]);
    assert_all_decrypted(&r, "garbled-keys.log");
    let bad: Vec<&str> = r
        .warnings
        .iter()
        .filter(|w| w.kind == "keylog-bad-line")
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("line 1:"), "{bad:?}");
    assert!(bad[1].contains("line 3:"), "{bad:?}");
}

fn a_key_log_of_another_capture_is_a_warning() {
    let Some(f) = fixture() else { return };
    let other = f.keylog.with_file_name("other-keys.log");
    std::fs::write(
        &other,
        format!("CLIENT_RANDOM {} {}\n", "ab".repeat(32), "cd".repeat(48)),
    )
    .unwrap();
    let r = analyze(&f.capture, &[f.keylog.clone(), other]);
    assert_all_decrypted(&r, "curl-keys.log");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.kind == "keylog-unmatched" && w.message.contains("other-keys.log")),
        "{:?}",
        r.warnings
    );
}

fn keylog_inject_writes_a_pcapng_that_is_decrypted_without_key_log() {
    let Some(f) = fixture() else { return };
    let out = f.capture.with_file_name("with-keys.pcapng");
    let o = Command::new(bin())
        .args(["keylog", "inject"])
        .arg(&f.capture)
        .arg(&f.keylog)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("4 connections"), "{}", text(&o));
    let r = analyze(&out, &[]);
    assert_all_decrypted(&r, "decryption secrets block");
}

tests!(
    curl_uploads_over_tls_13_and_12_with_gcm_and_chacha_are_found_decrypted_with_its_key_log,
    without_keys_nothing_is_found_and_every_connection_is_opaque_with_its_reason,
    a_wrong_key_is_an_error_naming_the_connection_and_nothing_is_searched,
    garbage_lines_are_counted_with_their_line_numbers_and_the_rest_is_used,
    a_key_log_of_another_capture_is_a_warning,
    keylog_inject_writes_a_pcapng_that_is_decrypted_without_key_log,
);
