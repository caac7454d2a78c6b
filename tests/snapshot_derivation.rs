//! Privacy snapshots derived from run reports built in code (shaped like the demo releases v1 and
//! v2-fix), pinned with insta, and the compatibility of the `.snap` files telltale writes with
//! insta's own reader and writer (what `cargo insta review`/`accept` use). Review changes with
//! `cargo insta review`.

use std::path::{Path, PathBuf};

use telltale::record::{PhaseSpan, ScenarioInfo, StoredRun, Verdict};
use telltale::report::{Direction, DnsQuery, Finding, FlowRecord, HttpRequest, Report, Transport};
use telltale::snapshot::{self, compare, PrivacySnapshot, SnapFile};

const SEC: u64 = 1_000_000_000;

fn flow(
    id: usize,
    app: &str,
    client: String,
    server: String,
    dest: &str,
    up: u64,
    at: u64,
) -> FlowRecord {
    FlowRecord {
        id,
        protocol: if app == "http" {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        app: app.parse().expect("a fixture's application"),
        client: client.parse().expect("a fixture's client address"),
        server: server.parse().expect("a fixture's server address"),
        destination: dest.into(),
        packets_up: 4,
        packets_down: 4,
        bytes_up: up,
        bytes_down: 114,
        first_ns: at,
        last_ns: at + 4_000_000,
        first_packet: id as u64 * 9 + 1,
        opaque_bytes: 0,
        read_up: up,
        unread_up: 0,
        read_down: 114,
        unread_down: 0,
        folded: 0,
        tcp: None,
    }
}

/// A run like the demo firmware's: DHCP at boot (twice, the second after a reboot), then
/// `uploads` cycles of a DNS question to the gateway and `POST path` to `host` with `canaries`
/// in the body. `jitter` moves times, ports and the synthetic address as another run would.
fn demo_run(
    release: &str,
    host: &str,
    path: &str,
    canaries: &[(&str, &str)],
    bytes_up: u64,
    uploads: u64,
    jitter: u64,
) -> StoredRun {
    let t0 = 1_795_288_419_948_634_688 + jitter * 13_000_017;
    let addr = format!("198.{}.{}.{}", 18 + jitter % 2, 9 + jitter, 118 - jitter);
    let mut r = Report {
        canaries: [
            "imei",
            "phone",
            "email",
            "contacts[0]",
            "contacts[1]",
            "contacts[2]",
        ]
        .map(String::from)
        .to_vec(),
        ..Report::default()
    };
    let dhcp = |id, c: &str, s: &str, up| {
        flow(
            id,
            "dhcp",
            c.into(),
            s.into(),
            s.split(':').next().unwrap(),
            up,
            t0 + 3_800_000_000,
        )
    };
    r.flows
        .push(dhcp(0, "0.0.0.0:68", "255.255.255.255:67", 1222));
    r.flows
        .push(dhcp(1, "255.255.255.255:68", "10.77.0.1:67", 0));
    for i in 0..uploads {
        let at = t0 + (9 + 5 * i) * SEC + jitter * 777;
        let port = 33_000 + jitter * 1_013 + i * 29;
        let id = r.flows.len();
        let d = flow(
            id,
            "dns",
            format!("10.77.0.10:{port}"),
            "10.77.0.1:53".into(),
            "10.77.0.1",
            45,
            at,
        );
        r.dns_queries.push(DnsQuery {
            name: host.into(),
            qtype: "A".into(),
            packet: d.first_packet,
            flow: id,
            rcode: Some("NOERROR".into()),
            answers: vec![addr.clone()],
        });
        r.flows.push(d);
        let h = flow(
            id + 1,
            "http",
            format!("10.77.0.10:{}", port + 1),
            format!("{addr}:80"),
            host,
            bytes_up,
            at + 35_000_000,
        );
        r.http_requests.push(HttpRequest {
            method: "POST".into(),
            host: host.into(),
            path: path.into(),
            query: None,
            target: path.into(),
            content_type: Some("application/json".into()),
            content_encoding: Vec::new(),
            headers: Vec::new(),
            body_bytes: bytes_up - 190,
            body_decoded_bytes: bytes_up - 190,
            status: Some(200),
            destination: host.into(),
            flow: id + 1,
            packet: h.first_packet + 3,
            time_ns: at + 45_000_000,
        });
        for (canary, encoding) in canaries {
            r.findings.push(Finding {
                canary: canary.to_string(),
                encoding: encoding.to_string(),
                destination: host.into(),
                address: h.server,
                protocol: "http".into(),
                direction: Direction::Up,
                http_method: Some("POST".into()),
                http_path: Some(path.into()),
                field: Some("body".into()),
                decoded_from: None,
                flow: id + 1,
                packet: h.first_packet + 3,
                offset: 190,
                time_ns: at + 45_000_000,
                phase: Some("consent_declined".into()),
                count: 1,
                excerpt: String::new(),
                tls: None,
            });
        }
        r.flows.push(h);
    }
    let name = format!("cloudsync-{release}");
    let span = |n: &str, a: u64, b: u64| PhaseSpan {
        name: n.into(),
        start_ns: a,
        end_ns: b,
    };
    StoredRun {
        scenario: ScenarioInfo {
            file: format!("scenarios/{name}.yaml"),
            name,
            release: Some(release.into()),
        },
        verdict: Verdict::Fail,
        error: None,
        start_ns: t0,
        end_ns: t0 + 57 * SEC,
        phases: vec![
            span("boot", t0, t0 + 3_940_000_000),
            span("setup", t0 + 3_940_000_000, t0 + 4_100_000_000),
            span("consent_declined", t0 + 4_100_000_000, t0 + 57 * SEC),
        ],
        judgement: telltale::record::Judgement::default(),
        analysis: r,
        schema: telltale::record::SCHEMA,
        format_version: 1,
        telltale_version: String::new(),
        steps: Vec::new(),
        vnet: Default::default(),
    }
}

/// Release v1: contacts, IMEI and phone number raw to the account API.
fn v1(uploads: u64, jitter: u64) -> StoredRun {
    let raw = [
        ("contacts[0]", "raw"),
        ("contacts[1]", "raw"),
        ("contacts[2]", "raw"),
        ("imei", "raw"),
        ("phone", "raw"),
    ];
    demo_run(
        "v1",
        "api.account.kestrel.example",
        "/v1/register",
        &raw,
        405,
        uploads,
        jitter,
    )
}

/// Release v2-fix: contacts sha1-hashed and the IMEI base64 to another endpoint.
fn v2_fix(uploads: u64, jitter: u64) -> StoredRun {
    let hidden = [
        ("contacts[0]", "sha1>hex"),
        ("contacts[1]", "sha1>hex"),
        ("contacts[2]", "sha1>hex"),
        ("imei", "base64"),
    ];
    demo_run(
        "v2-fix",
        "sync.kestrel.example",
        "/v2/sync",
        &hidden,
        387,
        uploads,
        jitter,
    )
}

fn snapshot_file(run: &StoredRun) -> String {
    PrivacySnapshot::from_run(run).render(&run.scenario.file)
}

#[test]
fn cloudsync_v1() {
    insta::assert_snapshot!("cloudsync_v1", snapshot_file(&v1(7, 0)));
}

#[test]
fn cloudsync_v2_fix() {
    insta::assert_snapshot!("cloudsync_v2_fix", snapshot_file(&v2_fix(7, 0)));
}

#[test]
fn v1_accepted_v2_fix_run() {
    let accepted = PrivacySnapshot::from_run(&v1(7, 0)).render_body();
    let diff = compare(&accepted, &PrivacySnapshot::from_run(&v2_fix(6, 2))).unwrap();
    assert!(diff.is_regression());
    assert!(diff.has_removals());
    insta::assert_snapshot!("v1_accepted_v2_fix_run", diff.render());
}

#[test]
fn another_run_of_the_same_firmware_is_byte_identical() {
    let first = snapshot_file(&v2_fix(7, 0));
    for (uploads, jitter) in [(6, 1), (8, 2), (3, 5)] {
        let run = v2_fix(uploads, jitter);
        assert_ne!(
            run.analysis.flows[3].server,
            v2_fix(7, 0).analysis.flows[3].server
        );
        assert_eq!(snapshot_file(&run), first);
    }
    let diff = compare(
        &SnapFile::parse(&first).unwrap().body,
        &PrivacySnapshot::from_run(&v2_fix(4, 9)),
    )
    .unwrap();
    assert!(diff.is_unchanged() && diff.hunks.is_empty());
}

/// A fresh folder for this test under cargo's temporary folder for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("snapshot_derivation-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// insta reads a file telltale wrote and, saving it again as `cargo insta accept` does
/// (`Snapshot::from_file` on the `.snap.new`, then `save` to the `.snap`), writes the same bytes.
#[test]
fn insta_reads_and_resaves_telltale_snapshots_unchanged() {
    let dir = scratch("insta");
    let mut cases = vec![
        (
            "scenarios/cloudsync-v1.yaml",
            PrivacySnapshot::from_run(&v1(7, 0)),
        ),
        (
            "scenarios/cloudsync-v2-fix.yaml",
            PrivacySnapshot::from_run(&v2_fix(7, 0)),
        ),
        // Values insta's YAML emitter quotes.
        (
            "@odd: name, #1.yaml",
            PrivacySnapshot::from_run(&v2_fix(2, 0)),
        ),
        ("123", PrivacySnapshot::default()),
    ];
    let mut odd = PrivacySnapshot::from_run(&v1(1, 0));
    odd.scenario = "true".into();
    odd.release = None;
    cases.push(("yes", odd));
    for (i, (source, snap)) in cases.into_iter().enumerate() {
        let text = snap.render(source);
        let target = dir.join(format!("case{i}.snap"));
        let pending = snapshot::write_pending(&target, &text).unwrap();
        let loaded = insta::Snapshot::from_file(&pending).unwrap();
        assert_eq!(loaded.metadata().source(), Some(source));
        assert_eq!(
            loaded.metadata().expression(),
            Some(snap.expression().as_str())
        );
        let contents = loaded.as_text().expect("a text snapshot").to_string();
        assert_eq!(contents, snap.render_body().trim_end());
        loaded.save(&target).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), text, "case {i}");
        // And telltale reads what insta wrote.
        let back = snapshot::read_accepted(&target).unwrap().unwrap();
        assert_eq!(back.source.as_deref(), Some(source));
        assert_eq!(back.body, contents);
    }
}

/// telltale reads the files insta writes for the project's own tests (header with `source`,
/// `expression` as a quoted Rust expression).
#[test]
fn telltale_reads_insta_written_snapshots() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/snapshot_derivation__cloudsync_v1.snap");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = SnapFile::parse(&text).unwrap();
    assert_eq!(file.source.as_deref(), Some("tests/snapshot_derivation.rs"));
    assert_eq!(file.expression.as_deref(), Some("snapshot_file(&v1(7, 0))"));
    // The insta snapshot's contents is a complete telltale snapshot file.
    let inner = SnapFile::parse(&file.body).unwrap();
    assert_eq!(inner.source.as_deref(), Some("scenarios/cloudsync-v1.yaml"));
    assert_eq!(
        inner.snapshot().unwrap().phases,
        PrivacySnapshot::from_run(&v1(3, 4)).phases
    );
}

/// The whole cycle on files: no snapshot yet, pending, accepted, a regression, pending again.
#[test]
fn pending_accept_and_check_on_files() {
    let dir = scratch("cycle").join("snapshots");
    let run = v1(7, 0);
    let path = snapshot::snapshot_path(&dir, &run.scenario);
    assert_eq!(path.file_name().unwrap(), "cloudsync-v1@v1.snap");
    assert!(snapshot::read_accepted(&path).unwrap().is_none());
    snapshot::write_pending(&path, &snapshot_file(&run)).unwrap();
    assert_eq!(
        snapshot::pending(&dir).unwrap(),
        vec![dir.join("cloudsync-v1@v1.snap.new")]
    );
    snapshot::accept(&path).unwrap();
    assert!(snapshot::pending(&dir).unwrap().is_empty());

    let mut later = v1(6, 3);
    later.analysis.findings[0].encoding = "base64".into();
    let accepted = snapshot::read_accepted(&path).unwrap().unwrap();
    let diff = compare(&accepted.body, &PrivacySnapshot::from_run(&later)).unwrap();
    assert!(diff.is_regression());
    assert_eq!(diff.added, vec!["      contacts[0]  base64"]);
    assert!(diff.removed.is_empty());
}
