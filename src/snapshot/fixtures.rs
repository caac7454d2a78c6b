//! Test inputs: reports built in code, shaped like the demo firmware's runs (a DHCP exchange at
//! boot, then every cycle a DNS question to the gateway and an HTTP POST carrying canaries).
//! `uploads` sets the number of cycles and `jitter` moves every time, port and synthetic address,
//! as a second run of the same firmware would.

use crate::record::{PhaseSpan, ScenarioInfo, StoredRun, Verdict};
use crate::report::{Direction, DnsQuery, Finding, FlowRecord, HttpRequest, Report};

/// Start of the run (ns since the epoch), before jitter.
pub(crate) const T0: u64 = 1_795_288_419_948_634_688;
const SEC: u64 = 1_000_000_000;

/// A flow record.
#[allow(clippy::too_many_arguments)]
pub(crate) fn flow(
    id: usize,
    protocol: &str,
    app: &str,
    client: &str,
    server: &str,
    destination: &str,
    bytes_up: u64,
    first_ns: u64,
) -> FlowRecord {
    FlowRecord {
        id,
        protocol: protocol.parse().expect("a fixture's transport"),
        app: app.parse().expect("a fixture's application"),
        client: client.parse().expect("a fixture's client address"),
        server: server.parse().expect("a fixture's server address"),
        destination: destination.into(),
        packets_up: 3,
        packets_down: 3,
        bytes_up,
        bytes_down: 114,
        first_ns,
        last_ns: first_ns + 5_000_000,
        first_packet: id as u64 * 10 + 1,
        opaque_bytes: 0,
        read_up: bytes_up,
        unread_up: 0,
        read_down: 114,
        unread_down: 0,
        folded: 0,
        tcp: None,
    }
}

/// An HTTP finding sent by the device.
#[allow(clippy::too_many_arguments)]
pub(crate) fn finding(
    canary: &str,
    encoding: &str,
    f: &FlowRecord,
    method: &str,
    path: &str,
    time_ns: u64,
    phase: Option<&str>,
) -> Finding {
    Finding {
        canary: canary.into(),
        encoding: encoding.into(),
        destination: f.destination.clone(),
        address: f.server,
        protocol: "http".into(),
        direction: Direction::Up,
        http_method: Some(method.into()),
        http_path: Some(path.into()),
        field: Some("body".into()),
        decoded_from: None,
        flow: f.id,
        packet: f.first_packet + 3,
        offset: 190,
        time_ns,
        phase: phase.map(str::to_string),
        count: 1,
        excerpt: String::new(),
        tls: None,
    }
}

/// An HTTP request on a flow.
pub(crate) fn request(
    method: &str,
    path: &str,
    query: Option<&str>,
    f: &FlowRecord,
    time_ns: u64,
) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        host: f.destination.clone(),
        path: path.into(),
        query: query.map(str::to_string),
        target: path.into(),
        content_type: None,
        content_encoding: Vec::new(),
        headers: Vec::new(),
        body_bytes: f.bytes_up.saturating_sub(180),
        body_decoded_bytes: f.bytes_up.saturating_sub(180),
        status: Some(200),
        destination: f.destination.clone(),
        flow: f.id,
        packet: f.first_packet + 3,
        time_ns,
    }
}

/// A DNS question with its answer.
pub(crate) fn dns(name: &str, answer: &str, f: &FlowRecord) -> DnsQuery {
    DnsQuery {
        name: name.into(),
        qtype: "A".into(),
        packet: f.first_packet,
        flow: f.id,
        rcode: Some("NOERROR".into()),
        answers: vec![answer.into()],
    }
}

/// A run of the three demo phases around `report`.
pub(crate) fn run(name: &str, release: Option<&str>, jitter: u64, report: Report) -> StoredRun {
    let t0 = T0 + jitter * 7_919_000;
    let span = |name: &str, a: u64, b: u64| PhaseSpan {
        name: name.into(),
        start_ns: a,
        end_ns: b,
    };
    StoredRun {
        scenario: ScenarioInfo {
            name: name.into(),
            release: release.map(str::to_string),
            file: format!("scenarios/{name}.yaml"),
        },
        verdict: Verdict::Fail,
        error: None,
        start_ns: t0,
        end_ns: t0 + 55 * SEC,
        phases: vec![
            span("boot", t0, t0 + 4 * SEC),
            span("setup", t0 + 4 * SEC, t0 + 4 * SEC + 200_000_000),
            span(
                "consent_declined",
                t0 + 4 * SEC + 200_000_000,
                t0 + 55 * SEC,
            ),
        ],
        judgement: crate::record::Judgement::default(),
        analysis: report,
        schema: crate::record::SCHEMA,
        format_version: 1,
        telltale_version: String::new(),
        steps: Vec::new(),
        vnet: Default::default(),
    }
}

/// A demo-like run: DHCP at boot, then `uploads` cycles of DNS + `method path` to `host`
/// carrying `canaries` (name, encoding), `bytes_up` per upload, during `consent_declined`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn demo_run(
    name: &str,
    release: &str,
    host: &str,
    method: &str,
    path: &str,
    canaries: &[(&str, &str)],
    bytes_up: u64,
    uploads: usize,
    jitter: u64,
) -> StoredRun {
    let t0 = T0 + jitter * 7_919_000;
    let synthetic = format!(
        "198.{}.{}.{}",
        18 + jitter % 2,
        jitter % 250,
        10 + jitter % 200
    );
    let mut r = Report::default();
    r.flows.push(flow(
        0,
        "udp",
        "dhcp",
        "0.0.0.0:68",
        "255.255.255.255:67",
        "255.255.255.255",
        1222,
        t0 + 3 * SEC + 800_000_000,
    ));
    r.flows.push(flow(
        1,
        "udp",
        "dhcp",
        "255.255.255.255:68",
        "10.77.0.1:67",
        "10.77.0.1",
        0,
        t0 + 3 * SEC + 800_100_000,
    ));
    for i in 0..uploads {
        let at = t0 + (9 + 5 * i as u64) * SEC + jitter * 1_000;
        let port = 33_000 + (jitter as usize * 131 + i * 17) % 30_000;
        let d = flow(
            r.flows.len(),
            "udp",
            "dns",
            &format!("10.77.0.10:{port}"),
            "10.77.0.1:53",
            "10.77.0.1",
            45,
            at,
        );
        r.dns_queries.push(dns(host, &synthetic, &d));
        r.flows.push(d);
        let h = flow(
            r.flows.len(),
            "tcp",
            "http",
            &format!("10.77.0.10:{}", port + 1),
            &format!("{synthetic}:80"),
            host,
            bytes_up,
            at + 40_000_000,
        );
        r.http_requests
            .push(request(method, path, None, &h, at + 50_000_000));
        for (c, e) in canaries {
            r.findings.push(finding(
                c,
                e,
                &h,
                method,
                path,
                at + 50_000_000,
                Some("consent_declined"),
            ));
        }
        r.flows.push(h);
    }
    run(name, Some(release), jitter, r)
}

/// Like release v1: everything raw to `api.account.kestrel.example` `POST /v1/register`.
pub(crate) fn v1_like(uploads: usize, jitter: u64) -> StoredRun {
    demo_run(
        "cloudsync-v1",
        "v1",
        "api.account.kestrel.example",
        "POST",
        "/v1/register",
        &[
            ("contacts[0]", "raw"),
            ("contacts[1]", "raw"),
            ("contacts[2]", "raw"),
            ("imei", "raw"),
            ("phone", "raw"),
        ],
        405,
        uploads,
        jitter,
    )
}

/// Like release v2-fix: contacts sha1-hashed and the IMEI base64 to `sync.kestrel.example`.
pub(crate) fn v2_fix_like(uploads: usize, jitter: u64) -> StoredRun {
    demo_run(
        "cloudsync-v2-fix",
        "v2-fix",
        "sync.kestrel.example",
        "POST",
        "/v2/sync",
        &[
            ("contacts[0]", "sha1>hex"),
            ("contacts[1]", "sha1>hex"),
            ("contacts[2]", "sha1>hex"),
            ("imei", "base64"),
        ],
        387,
        uploads,
        jitter,
    )
}
