//! The vnet under a real Linux network stack: a network namespace whose only interface is
//! a TAP into the vnet, running real clients (busybox udhcpc, nslookup, wget, nc; curl when
//! installed). Needs root, `ip` and busybox: `.ci/run` has them; elsewhere each test says
//! why it is skipped.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use common::netns::{which, Netns};
use telltale::vnet::dns::DnsServer;
use telltale::vnet::run::VnetHandle;
use telltale::vnet::{DnsOutcome, VnetConfig, VnetEvent};
use telltale::{Config, Matcher};

fn workdir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("vnet-{tag}-{}", std::process::id()));
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

fn http_events(events: &[VnetEvent]) -> Vec<(String, Option<String>, SocketAddrV4, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            VnetEvent::Http {
                target,
                host,
                server,
                body,
                ..
            } => Some((target.clone(), host.clone(), *server, body.clone())),
            _ => None,
        })
        .collect()
}

fn busybox_clients_get_a_lease_names_and_a_sink_and_the_capture_shows_the_canaries() {
    skip_unless_netns!();
    let dir = workdir("clients");
    let rt = runtime();
    let _enter = rt.enter();
    let cfg = VnetConfig::default();
    let pcap = dir.join("capture.pcap");
    let vnet = VnetHandle::start(cfg.clone(), &pcap).unwrap();
    let (ns, tap) = Netns::create("c");
    let (r, w) = tap.split().unwrap();
    rt.block_on(vnet.attach(r, w)).unwrap();

    // DHCP: a lease from telltale, router and DNS = the gateway.
    let lease = ns.dhcp(&dir, "kestrel-phone");
    assert!(lease.contains("ip=10.77.0.10"), "lease: {lease}");
    assert!(lease.contains("router=10.77.0.1"), "lease: {lease}");
    assert!(lease.contains("dns=10.77.0.1"), "lease: {lease}");

    // DNS: every name resolves to its stable pool address.
    let mut expected_dns = DnsServer::new(cfg.dns.clone());
    let api = expected_dns.resolve("api.account.kestrel.example").unwrap();
    let out = ns.exec_ok(&[
        "busybox",
        "nslookup",
        "api.account.kestrel.example",
        "10.77.0.1",
    ]);
    assert!(out.contains(&api.to_string()), "nslookup said: {out}");
    // A hard-coded public resolver is telltale too.
    let out = ns.exec_ok(&[
        "busybox",
        "nslookup",
        "telemetry.kestrel.example",
        "8.8.8.8",
    ]);
    let tel = expected_dns.resolve("telemetry.kestrel.example").unwrap();
    assert!(
        out.contains(&tel.to_string()),
        "nslookup via 8.8.8.8 said: {out}"
    );

    // HTTP upload by name (busybox wget resolves through the namespace's resolv.conf).
    let body1 = "imei=356938035643809&phone=%2B15555550123";
    let out = ns.exec_ok(&[
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "--post-data",
        body1,
        "http://api.account.kestrel.example/v1/register",
    ]);
    assert_eq!(out, "{}", "the sink's default answer");
    // Upload to a hard-coded address and port.
    let body2 = "contacts=Alice%20Canary";
    ns.exec_ok(&[
        "busybox",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "--post-data",
        body2,
        "http://203.0.113.77:8080/sync",
    ]);
    // Raw TCP with nc: accepted, read, never answered.
    let nc = ns.exec(&[
        "sh",
        "-c",
        "echo 'IMEI 356938035643809' | timeout 3 busybox nc 198.51.100.9 9000; true",
    ]);
    assert!(nc.stdout.is_empty(), "opaque TCP gets no answer");
    // curl, when the machine has it (`.ci/run` installs it).
    let curl_body = "{\"email\":\"alice.canary@example.invalid\"}";
    let has_curl = which("curl").is_some();
    if has_curl {
        let out = ns.exec_ok(&[
            "curl",
            "-s",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            curl_body,
            "http://sync.kestrel.example/v2/sync",
        ]);
        assert_eq!(out, "{}");
    } else {
        eprintln!("note: curl not installed; its part of this test did not run");
    }
    // Frames the namespace handed to its interface, before stopping the vnet.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (tx_packets, tx_dropped) = ns.tap_tx();
    let summary = rt.block_on(vnet.stop()).unwrap();
    drop(ns);

    // The sink received every upload whole, attributed to the right name and address.
    let http = http_events(&summary.events);
    let reg = http
        .iter()
        .find(|h| h.0 == "/v1/register")
        .expect("register upload");
    assert_eq!(reg.1.as_deref(), Some("api.account.kestrel.example"));
    assert_eq!(reg.2, SocketAddrV4::new(api, 80));
    assert_eq!(reg.3, body1.as_bytes());
    let sync = http
        .iter()
        .find(|h| h.0 == "/sync")
        .expect("upload to hard-coded address");
    assert_eq!(
        sync.2,
        SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 77), 8080)
    );
    assert_eq!(sync.3, body2.as_bytes());
    if has_curl {
        let c = http
            .iter()
            .find(|h| h.0 == "/v2/sync")
            .expect("curl upload");
        assert_eq!(c.3, curl_body.as_bytes());
    }
    assert!(
        summary.events.iter().any(|e| matches!(
            e,
            VnetEvent::TcpClose {
                protocol,
                bytes_in: 21,
                ..
            } if protocol == "opaque"
        )),
        "nc's bytes were read"
    );
    // The lease carries the host name the device sent.
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::Dhcp { lease: Some(l), .. } if l.hostname.as_deref() == Some("kestrel-phone"))));
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::Dns { name, outcome: DnsOutcome::Addresses(a), .. }
            if name == "api.account.kestrel.example" && a == &vec![api])));

    // Nothing lost: every frame the namespace sent is in the capture (plus ours).
    assert_eq!(tx_dropped, 0);
    assert_eq!(
        summary.stats.frames_in, tx_packets,
        "frames the namespace sent vs frames the vnet got"
    );
    assert_eq!(
        summary.frames_recorded,
        summary.stats.frames_in + summary.stats.frames_out
    );
    assert_eq!(summary.frames_dropped, 0);

    // The capture goes through the analysis engine unchanged and shows the canaries.
    let identity = telltale::Identity::from_pairs(&[
        ("imei", "356938035643809"),
        ("phone", "+15555550123"),
        ("contact", "Alice Canary"),
        ("email", "alice.canary@example.invalid"),
    ]);
    let report = telltale::analyze_file(
        &pcap,
        Arc::new(Matcher::new(&identity)),
        Config::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(report.capture.packets, summary.frames_recorded);
    let found = |canary: &str, dest: &str| {
        report
            .findings
            .iter()
            .any(|f| f.canary == canary && f.destination == dest)
    };
    assert!(
        found("imei", "api.account.kestrel.example"),
        "{:#?}",
        report.findings
    );
    assert!(
        found("phone", "api.account.kestrel.example"),
        "{:#?}",
        report.findings
    );
    assert!(found("contact", "203.0.113.77"), "{:#?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.canary == "imei" && f.protocol == "tcp"),
        "nc upload"
    );
    if has_curl {
        assert!(
            found("email", "sync.kestrel.example"),
            "{:#?}",
            report.findings
        );
    }
    assert!(report
        .dhcp
        .iter()
        .any(|d| d.hostname.as_deref() == Some("kestrel-phone")));
    let _ = std::fs::remove_dir_all(&dir);
}

fn nothing_a_target_sends_reaches_the_host() {
    skip_unless_netns!();
    let dir = workdir("isolation");
    // Host services the target will try to reach: loopback and every host address.
    let lo = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = lo.local_addr().unwrap().port();
    let any = TcpListener::bind(("0.0.0.0", port + 1)).ok();
    lo.set_nonblocking(true).unwrap();
    if let Some(a) = &any {
        a.set_nonblocking(true).unwrap();
    }
    let host_addrs: Vec<String> = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next().map(str::to_string))
        .collect();

    let rt = runtime();
    let _enter = rt.enter();
    let vnet = VnetHandle::start(VnetConfig::default(), &dir.join("capture.pcap")).unwrap();
    let (ns, tap) = Netns::create("i");
    let (r, w) = tap.split().unwrap();
    rt.block_on(vnet.attach(r, w)).unwrap();
    ns.dhcp(&dir, "isolated");

    let mut targets: Vec<String> = vec![
        "8.8.8.8:80".into(),
        "1.1.1.1:443".into(),
        "10.0.0.1:22".into(),
        "192.168.1.1:80".into(),
        "172.17.0.1:2375".into(),
        format!("127.0.0.1:{port}"),
    ];
    for a in &host_addrs {
        targets.push(format!("{a}:{port}"));
        targets.push(format!("{a}:{}", port + 1));
    }
    for t in &targets {
        let (ip, p) = t.rsplit_once(':').unwrap();
        let _ = ns.exec(&[
            "sh",
            "-c",
            &format!("echo probe | timeout 2 busybox nc {ip} {p}; true"),
        ]);
        let _ = ns.exec(&[
            "busybox",
            "wget",
            "-q",
            "-T",
            "2",
            "-O",
            "/dev/null",
            &format!("http://{t}/"),
        ]);
    }
    // UDP and ping to the outside world as well.
    let _ = ns.exec(&["bash", "-c", "echo x > /dev/udp/8.8.4.4/443; true"]);
    let _ = ns.exec(&["busybox", "ping", "-c", "1", "-W", "1", "9.9.9.9"]);
    let summary = rt.block_on(vnet.stop()).unwrap();
    drop(ns);

    // The host saw nothing.
    for l in [Some(&lo), any.as_ref()].into_iter().flatten() {
        match l.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a host service got a connection: {other:?}"),
        }
    }
    // Everything non-loopback ended inside telltale: a connection to every target.
    for t in &targets {
        if t.starts_with("127.") {
            continue; // the namespace's own loopback; not even telltale sees it
        }
        let sa: SocketAddrV4 = t.parse().unwrap();
        assert!(
            summary
                .events
                .iter()
                .any(|e| matches!(e, VnetEvent::TcpOpen { server, .. } if *server == sa)),
            "no connection to {t} reached the vnet"
        );
    }
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::UdpRefused { server, .. } if *server.ip() == Ipv4Addr::new(8, 8, 4, 4))));
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::Ping { target, answered: false, .. } if *target == Ipv4Addr::new(9, 9, 9, 9))));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Enters the namespace on the current thread (for plain std sockets inside it).
fn enter_netns(name: &str) {
    let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: setns on an fd we hold open; affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn load_1000_concurrent_connections_and_a_100_mb_upload_lose_nothing() {
    skip_unless_netns!();
    let dir = workdir("load");
    let rt = runtime();
    let _enter = rt.enter();
    let pcap = dir.join("capture.pcap");
    let cfg = VnetConfig {
        keep_body: 64 * 1024,
        ..VnetConfig::default()
    };
    let vnet = VnetHandle::start(cfg, &pcap).unwrap();
    let (ns, tap) = Netns::create("l");
    let (r, w) = tap.split().unwrap();
    rt.block_on(vnet.attach(r, w)).unwrap();
    ns.dhcp(&dir, "load");
    let hwm_before = vm_hwm_kib();

    let ns_name = ns.name.clone();
    const N: usize = 1000;
    const UPLOAD: usize = 100 * 1024 * 1024;
    let client = std::thread::spawn(move || {
        enter_netns(&ns_name);
        // 1,000 connections open at the same time, each to its own address.
        let mut conns = Vec::with_capacity(N);
        for i in 0..N {
            let addr = SocketAddrV4::new(
                Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250 + 1) as u8),
                80,
            );
            let s = std::net::TcpStream::connect(addr).expect("connect through the vnet");
            conns.push(s);
        }
        for (i, s) in conns.iter_mut().enumerate() {
            s.write_all(format!("GET /c/{i} HTTP/1.1\r\nHost: load.example\r\n\r\n").as_bytes())
                .unwrap();
        }
        let mut answered = 0;
        for s in conns.iter_mut() {
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap();
            if buf[..n].starts_with(b"HTTP/1.1 200 OK") {
                answered += 1;
            }
        }
        drop(conns);
        // One 100 MB upload.
        let mut s = std::net::TcpStream::connect("198.18.77.77:80").unwrap();
        s.write_all(
            format!(
                "POST /big HTTP/1.1\r\nHost: upload.example\r\nContent-Length: {UPLOAD}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut sent = 0;
        while sent < UPLOAD {
            s.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        let mut resp = [0u8; 256];
        let n = s.read(&mut resp).unwrap();
        (answered, resp[..n].starts_with(b"HTTP/1.1 200 OK"))
    });
    let (answered, big_ok) = client.join().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (tx_packets, tx_dropped) = ns.tap_tx();
    let summary = rt.block_on(vnet.stop()).unwrap();
    drop(ns);
    let hwm_after = vm_hwm_kib();

    assert_eq!(answered, N, "every connection got its answer");
    assert!(big_ok, "the 100 MB upload was answered");
    let http = http_events(&summary.events);
    let paths: std::collections::HashSet<&str> = http.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(paths.iter().filter(|p| p.starts_with("/c/")).count(), N);
    let big = summary
        .events
        .iter()
        .find_map(|e| match e {
            VnetEvent::Http {
                target,
                body_len,
                body,
                complete,
                ..
            } if target == "/big" => Some((*body_len, body.len(), *complete)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        big.0, UPLOAD as u64,
        "every byte of the upload reached the sink"
    );
    assert_eq!(big.1, 64 * 1024, "the log keeps only the configured prefix");
    assert!(big.2);
    // Nothing lost between the namespace and the capture.
    assert_eq!(tx_dropped, 0);
    assert_eq!(summary.stats.frames_in, tx_packets);
    assert_eq!(summary.frames_dropped, 0);
    let mut reader = telltale::capture::CaptureReader::open(&pcap).unwrap();
    let mut frames = 0u64;
    while let Ok(Some(_)) = reader.next_packet() {
        frames += 1;
    }
    assert_eq!(frames, summary.frames_recorded);
    assert_eq!(frames, summary.stats.frames_in + summary.stats.frames_out);
    // Memory stays bounded: 1,000 connections' buffers and a 100 MB stream, not 100 MB kept.
    let grew_mib = hwm_after.saturating_sub(hwm_before) / 1024;
    eprintln!(
        "load: {} frames in, {} out, peak RSS {} MiB (grew {} MiB)",
        summary.stats.frames_in,
        summary.stats.frames_out,
        hwm_after / 1024,
        grew_mib
    );
    assert!(grew_mib < 160, "peak RSS grew by {grew_mib} MiB");
    let _ = std::fs::remove_dir_all(&dir);
}

tests!(
    busybox_clients_get_a_lease_names_and_a_sink_and_the_capture_shows_the_canaries,
    nothing_a_target_sends_reaches_the_host,
    load_1000_concurrent_connections_and_a_100_mb_upload_lose_nothing,
);
