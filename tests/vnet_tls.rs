//! TLS ended in the vnet, with real clients: curl (OpenSSL) in a network namespace whose only
//! interface is a TAP into the vnet uploads over TLS 1.3 and TLS 1.2 trusting the run's CA,
//! to an address without SNI, with a pinned public key and without trusting the CA. The
//! sink must get the plaintext, the key log must hold the client's sessions, tshark must
//! show the decrypted requests from the capture alone (its Decryption Secrets Blocks), and
//! every refusal must be classified. Needs root, `ip`, busybox and curl (`.ci/run` has
//! them); elsewhere each test says why it is skipped.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::netns::{which, Netns};
use telltale::report::UnreadReason;
use telltale::runner::tls::add_vnet_tls;
use telltale::vnet::run::{VnetHandle, KEY_LOG_FILE};
use telltale::vnet::{RunCa, VnetConfig, VnetEvent};
use telltale::{Identity, Matcher};

const IMEI: &str = "356938035643809";

/// The capture analysed as a run does it: the capture, then what the vnet's TLS endpoint adds.
fn analyse(summary: &telltale::vnet::run::VnetSummary) -> telltale::Report {
    let id = Identity::from_yaml(&format!("imei: \"{IMEI}\"\n"), "ids").unwrap();
    let matcher = Arc::new(Matcher::new(&id));
    let mut report = telltale::analyze_file(
        &summary.pcap,
        matcher.clone(),
        telltale::Config::default(),
        |_| {},
    )
    .unwrap();
    add_vnet_tls(&mut report, &summary.events, &matcher, &[]);
    report
}

fn workdir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("vnet-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Stops the test when curl is missing (after the namespace prerequisites).
fn skip_unless_curl() -> bool {
    if which("curl").is_none() {
        assert!(
            std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
            "TELLTALE_REQUIRE_ALL_TESTS is set but curl is missing"
        );
        common::harness::skipped("needs curl (apt-get install curl); `.ci/run` installs it");
        return true;
    }
    false
}

/// A vnet with a CA the test knows, a namespace on it with a DHCP lease, and the CA's PEM.
struct Setup {
    dir: PathBuf,
    rt: tokio::runtime::Runtime,
    vnet: Option<VnetHandle>,
    ns: Netns,
    ca_pem: PathBuf,
}

fn setup(tag: &str) -> Setup {
    let dir = workdir(tag);
    let rt = runtime();
    let ca = Arc::new(RunCa::generate().unwrap());
    let ca_pem = dir.join("tls-ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    let cfg = VnetConfig {
        tls_ca: Some(ca),
        ..VnetConfig::default()
    };
    let vnet = {
        let _enter = rt.enter();
        VnetHandle::start(cfg, &dir.join("capture.pcap")).unwrap()
    };
    let (ns, tap) = Netns::create(tag);
    {
        let _enter = rt.enter();
        let (r, w) = tap.split().unwrap();
        rt.block_on(vnet.attach(r, w)).unwrap();
    }
    let lease = ns.dhcp(&dir, "tls-phone");
    assert!(lease.contains("ip=10.77.0."), "lease: {lease}");
    Setup {
        dir,
        rt,
        vnet: Some(vnet),
        ns,
        ca_pem,
    }
}

impl Setup {
    /// Runs curl in the namespace; returns (exit code, stdout).
    fn curl(&self, args: &[&str], keylog: Option<&Path>) -> (i32, String) {
        let mut argv: Vec<String> = vec!["env".into()];
        if let Some(k) = keylog {
            argv.push(format!("SSLKEYLOGFILE={}", k.display()));
        }
        argv.extend(
            ["curl", "-s", "-S", "--max-time", "10"]
                .iter()
                .map(|s| s.to_string()),
        );
        argv.extend(args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = self.ns.exec(&argv);
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn stop(&mut self) -> telltale::vnet::run::VnetSummary {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let vnet = self.vnet.take().unwrap();
        self.rt.block_on(vnet.stop()).unwrap()
    }
}

/// The client randoms of an NSS key log's lines.
fn randoms(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(str::to_string)
        .collect()
}

fn tls13_and_tls12_uploads_are_decrypted_from_the_capture_here_and_in_tshark() {
    skip_unless_netns!();
    if skip_unless_curl() {
        return;
    }
    let mut s = setup("up");
    let ca = s.ca_pem.to_str().unwrap().to_string();
    let client_keys = s.dir.join("client-keys.txt");
    let mut bodies = Vec::new();
    for (flag, max, path) in [
        ("--tlsv1.3", "1.3", "/v1/upload13"),
        ("--tlsv1.2", "1.2", "/v1/upload12"),
    ] {
        let body = format!("imei={IMEI}&via={max}");
        let url = format!("https://api.kestrel.example{path}");
        let (code, out) = s.curl(
            &[
                flag,
                "--tls-max",
                max,
                "--cacert",
                &ca,
                "--data-binary",
                &body,
                &url,
            ],
            Some(&client_keys),
        );
        assert_eq!(code, 0, "curl {flag}: {out}");
        assert_eq!(out, "{}", "the sink's default answer, through TLS");
        bodies.push((path, body));
    }
    // No SNI (an address in the URL): the leaf names the address (IP SAN) and verifies.
    let (code, out) = s.curl(
        &[
            "--cacert",
            &ca,
            "--data-binary",
            "contacts=Alice",
            "https://203.0.113.7/v1/nosni",
        ],
        None,
    );
    assert_eq!(code, 0, "curl to an address: {out}");
    // openssl s_client without SNI, checking the leaf's IP SAN.
    if which("openssl").is_some() {
        let script = format!(
            "printf 'POST /v1/sclient HTTP/1.1\\r\\nHost: 203.0.113.9\\r\\nContent-Length: 22\\r\\nConnection: close\\r\\n\\r\\nimei={IMEI}&s' \
             | timeout 10 openssl s_client -connect 203.0.113.9:443 -noservername -CAfile {ca} \
               -verify_return_error -verify_ip 203.0.113.9 -quiet"
        );
        let out = s.ns.exec(&["sh", "-c", &script]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "s_client: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(
            std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
            "TELLTALE_REQUIRE_ALL_TESTS is set but openssl is missing"
        );
        eprintln!("note: openssl not installed; the s_client check did not run");
    }
    let summary = s.stop();
    drop(s.ns);

    for (path, body) in &bodies {
        assert!(
            summary.events.iter().any(|e| matches!(e,
                VnetEvent::Http { target, body: b, host, .. }
                    if target == path && b == body.as_bytes()
                        && host.as_deref() == Some("api.kestrel.example"))),
            "{path}: {:#?}",
            summary.events
        );
    }
    let versions: Vec<&str> = summary
        .events
        .iter()
        .filter_map(|e| match e {
            VnetEvent::TlsIntercepted { version, .. } => Some(version.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        versions.contains(&"TLSv1_3") && versions.contains(&"TLSv1_2"),
        "{versions:?}"
    );
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::TlsIntercepted { sni: None, certificate_name, .. } if certificate_name == "203.0.113.7")));
    assert!(summary
        .events
        .iter()
        .any(|e| matches!(e, VnetEvent::Http { target, .. } if target == "/v1/nosni")));
    if which("openssl").is_some() {
        assert!(summary.events.iter().any(|e| matches!(e,
            VnetEvent::TlsIntercepted { sni: None, certificate_name, .. } if certificate_name == "203.0.113.9")));
        assert!(summary.events.iter().any(|e| matches!(e,
            VnetEvent::Http { target, body, .. } if target == "/v1/sclient" && body.starts_with(b"imei="))));
    }
    assert!(!summary
        .events
        .iter()
        .any(|e| matches!(e, VnetEvent::TlsRefused { .. })));

    // The analysis decrypts the capture with the secrets the vnet wrote into it (one path for runs and auditors'
    // captures): the canary is found in the decrypted HTTP, marked decrypted, once (the sink's copy is only a
    // fallback for connections the analysis could not decrypt), and no TLS record of these connections is unread.
    let report = analyse(&summary);
    for path in ["/v1/upload13", "/v1/upload12"] {
        let found: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.canary == "imei" && f.http_path.as_deref() == Some(path))
            .collect();
        assert!(
            found.iter().any(|f| f.tls.as_deref() == Some("decrypted")
                && f.protocol == "http"
                && f.destination == "api.kestrel.example"),
            "{path}: {:#?}",
            report.findings
        );
        assert!(
            found.iter().all(|f| f.protocol != "https"),
            "{path}: the sink's copy was reported too: {found:#?}"
        );
    }
    assert!(
        !report
            .unread
            .iter()
            .any(|u| u.reason == UnreadReason::TlsCiphertext
                && u.destination == "api.kestrel.example"),
        "{:#?}",
        report.unread
    );
    assert!(report.tls.iter().all(|t| t
        .decryption
        .as_ref()
        .is_some_and(|d| d.state == "decrypted")));
    assert_eq!(report.capture.format, "pcapng");

    // The key log holds every session the client made (the client's own key log says which).
    let ours = std::fs::read_to_string(s.dir.join(KEY_LOG_FILE)).unwrap();
    assert_eq!(summary.key_log.as_deref(), Some(&*s.dir.join(KEY_LOG_FILE)));
    assert_eq!(summary.key_log_lines, ours.lines().count() as u64);
    let theirs = std::fs::read_to_string(&client_keys).unwrap();
    let (ours, theirs) = (randoms(&ours), randoms(&theirs));
    assert_eq!(theirs.len(), 2, "two sessions in the client's key log");
    assert!(theirs.is_subset(&ours), "{theirs:?} not in {ours:?}");

    // tshark decrypts the capture.
    if which("tshark").is_none() {
        assert!(
            std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
            "TELLTALE_REQUIRE_ALL_TESTS is set but tshark is missing"
        );
        eprintln!("note: tshark not installed; the decryption check did not run");
    } else {
        let tshark = |extra: &[&str]| -> String {
            let out = Command::new("tshark")
                .args(extra)
                .arg("-r")
                .arg(&summary.pcap)
                .args([
                    "-Y",
                    "http.request",
                    "-T",
                    "fields",
                    "-e",
                    "http.request.method",
                ])
                .args(["-e", "http.request.uri"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let shows = |text: &str, path: &str| {
            text.lines()
                .any(|l| l.starts_with("POST\t") && l.contains(path))
        };
        // With the capture's own Decryption Secrets Block alone: every session, TLS 1.2 too (the vnet moves all
        // keys to the front of the file when the run ends; a TLS 1.2 master secret exists only after the frame
        // that carries the client's encrypted Finished, and tshark does not go back to it).
        let text = tshark(&[]);
        for path in ["/v1/upload13", "/v1/upload12", "/v1/nosni"] {
            assert!(
                shows(&text, path),
                "tshark shows no decrypted {path}: {text}"
            );
        }
        // With the run's `sslkeylog.txt`: every session.
        let keylog = format!("tls.keylog_file:{}", s.dir.join(KEY_LOG_FILE).display());
        let text = tshark(&["-o", &keylog]);
        for path in ["/v1/upload13", "/v1/upload12", "/v1/nosni"] {
            assert!(
                shows(&text, path),
                "tshark shows no decrypted {path}: {text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

fn refusals_are_classified_and_the_destination_is_then_not_intercepted() {
    skip_unless_netns!();
    if skip_unless_curl() {
        return;
    }
    let mut s = setup("ref");
    let ca = s.ca_pem.to_str().unwrap().to_string();
    // Not trusting the run's CA: curl (OpenSSL) sends unknown_ca and exits 60.
    let (code, out) = s.curl(
        &["--data-binary", "imei=1", "https://untrusting.example/up"],
        None,
    );
    assert_eq!(code, 60, "{out}");
    // A pinned public key that is not ours: the handshake verifies, the pin does not (exit 90).
    let pin = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for (flag, max) in [("--tlsv1.3", "1.3"), ("--tlsv1.2", "1.2")] {
        let url = format!("https://pinned{}.example/up", max.replace('.', ""));
        let (code, out) = s.curl(
            &[
                flag,
                "--tls-max",
                max,
                "--cacert",
                &ca,
                "--pinnedpubkey",
                pin,
                "--data-binary",
                "imei=1",
                &url,
            ],
            None,
        );
        assert_eq!(code, 90, "{flag}: {out}");
    }
    // Again to a destination that refused: not intercepted (curl sees the connection end).
    let (code, out) = s.curl(
        &[
            "--cacert",
            &ca,
            "--data-binary",
            "imei=1",
            "https://untrusting.example/up",
        ],
        None,
    );
    assert_ne!(code, 0, "{out}");
    let summary = s.stop();
    drop(s.ns);

    let refused: Vec<(String, String)> = summary
        .events
        .iter()
        .filter_map(|e| match e {
            VnetEvent::TlsRefused {
                destination, kind, ..
            } => Some((destination.clone(), kind.to_string())),
            _ => None,
        })
        .collect();
    assert!(
        refused.contains(&("untrusting.example".into(), "alert".into())),
        "{refused:?}"
    );
    for d in ["pinned13.example", "pinned12.example"] {
        assert!(
            refused.iter().any(|(dest, kind)| dest == d
                && (kind == "silent_after_handshake" || kind == "closed_after_certificate")),
            "{d}: {refused:?}"
        );
    }
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::TlsNotIntercepted { destination, reason, .. }
            if destination == "untrusting.example" && reason == "refused_before")));
    // Each refusal is unread with its destination: a claim over it cannot PASS.
    let report = analyse(&summary);
    for d in ["untrusting.example", "pinned13.example", "pinned12.example"] {
        assert!(
            report
                .unread
                .iter()
                .any(|u| u.reason == UnreadReason::TlsRefused && u.destination == d && u.bytes > 0),
            "{d}: {:#?}",
            report.unread
        );
    }
    assert!(report.findings.is_empty());
    // Nothing was uploaded.
    assert!(!summary
        .events
        .iter()
        .any(|e| matches!(e, VnetEvent::Http { .. })));
    let _ = std::fs::remove_dir_all(&s.dir);
}

tests!(
    tls13_and_tls12_uploads_are_decrypted_from_the_capture_here_and_in_tshark,
    refusals_are_classified_and_the_destination_is_then_not_intercepted,
);
