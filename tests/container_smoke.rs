//! The container driver against a real Docker engine: the demo firmware v1 as a container
//! image (`ci/build-demo-images --containers`), on the vnet through a TAP in its network
//! namespace. Needs root, an engine (`ci/docker-engine start`) and the image; elsewhere the
//! test says why it is skipped (and fails instead when TELLTALE_REQUIRE_ALL_TESTS is set).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use regex::bytes::Regex;
use telltale::driver::container::{engine_unavailable, Container, ContainerSpec};
use telltale::driver::{is_root, Driver};
use telltale::vnet::run::VnetHandle;
use telltale::vnet::{VnetConfig, VnetEvent};

const IMAGE: &str = "telltale-demo/cloudsync";
const IMEI: &str = "356938035643809";

/// The tests count this process's containers and TAPs: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn workdir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("container-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn skip_or_fail(why: &str) {
    assert!(
        std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
        "TELLTALE_REQUIRE_ALL_TESTS is set but this test cannot run: {why}"
    );
    common::harness::skipped(why);
}

/// Containers with telltale's label made by this process.
fn our_containers() -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=telltale.pid={}", std::process::id()),
        ])
        .output()
        .expect("docker ps");
    assert!(out.status.success(), "docker ps failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// TAP devices telltale names (`tt<pid>x<n>`) left in this namespace.
fn our_taps() -> Vec<String> {
    let prefix = format!("tt{}x", std::process::id());
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn uploads_with_imei(events: &[VnetEvent]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            VnetEvent::Http {
                method,
                target,
                host,
                body,
                ..
            } if method == "POST" && body.windows(IMEI.len()).any(|w| w == IMEI.as_bytes()) => {
                Some((target.clone(), host.clone()))
            }
            _ => None,
        })
        .collect()
}

fn demo_v1_container_uploads_the_planted_imei_through_the_vnet_and_leaves_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !is_root() {
        return skip_or_fail("needs root (a TAP device into the container's network namespace)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if let Some(why) = engine_unavailable().await {
            return skip_or_fail(&why);
        }
        let present = Command::new("docker")
            .args(["image", "inspect", &format!("{IMAGE}:v1")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !present {
            return skip_or_fail(&format!(
                "no image {IMAGE}:v1: build it with ci/build-demo-images --containers"
            ));
        }
        let dir = workdir("v1");
        let vnet = VnetHandle::start(VnetConfig::default(), &dir.join("capture.pcap")).unwrap();
        let spec = ContainerSpec {
            image: IMAGE.into(),
            tag: "v1".into(),
            env: vec![("CLOUDSYNC_INTERVAL".into(), "1".into())],
            ..Default::default()
        };
        let console = dir.join("console.log");
        let mut c = Container::start(&spec, &vnet, &console).await.unwrap();
        let id = c.id().to_string();
        assert_eq!(our_containers().len(), 1, "one container while it runs");
        let t = Duration::from_secs(30);
        c.wait_for(&Regex::new("telltale-demo: ready").unwrap(), t)
            .await
            .unwrap();

        // resolv.conf points at telltale; eth0 is the only interface besides lo.
        let out = Driver::shell(&mut c, "cat /etc/resolv.conf", t)
            .await
            .unwrap();
        assert_eq!(out.status, 0, "{out:?}");
        let gw = c.link().lease.gateway.to_string();
        assert!(out.output.contains(&format!("nameserver {gw}")), "{out:?}");
        let out = Driver::shell(&mut c, "ls /sys/class/net", t).await.unwrap();
        let mut ifaces: Vec<&str> = out.output.split_whitespace().collect();
        ifaces.sort_unstable();
        assert_eq!(ifaces, ["eth0", "lo"], "{out:?}");
        let failing = Driver::shell(&mut c, "echo to-stderr >&2; exit 7", t)
            .await
            .unwrap();
        assert_eq!((failing.status, failing.output.as_str()), (7, "to-stderr"));

        // The identity, IMEI last (the agent starts its cycles once /data/imei exists); the
        // parent directory of a planted file is created.
        Driver::plant(&mut c, "/data/phone", b"+15555550123\n", t)
            .await
            .unwrap();
        Driver::plant(&mut c, "/data/deep/er/file", b"x", t)
            .await
            .unwrap();
        Driver::plant(&mut c, "/data/imei", format!("{IMEI}\n").as_bytes(), t)
            .await
            .unwrap();
        let out = Driver::shell(&mut c, "cat /data/imei /data/deep/er/file", t)
            .await
            .unwrap();
        assert_eq!(out.output, format!("{IMEI}\nx"));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while uploads_with_imei(&vnet.events()).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no upload with the IMEI within 30s; console:\n{}\nagent log: {:?}",
                c.tail(20),
                Driver::shell(&mut c, "cat /var/log/cloudsync.log", t).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Reboot: same address, the agent comes back and uploads again.
        let before = uploads_with_imei(&vnet.events()).len();
        let pid = c.pid();
        Driver::reboot(&mut c, t).await.unwrap();
        assert_ne!(c.pid(), pid, "a new first process");
        c.wait_for(&Regex::new("telltale-demo: ready").unwrap(), t)
            .await
            .unwrap();
        let out = Driver::shell(&mut c, "cat /etc/resolv.conf /data/imei", t)
            .await
            .unwrap();
        assert!(
            out.output.contains(&format!("nameserver {gw}")) && out.output.contains(IMEI),
            "after the restart: {out:?}"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while uploads_with_imei(&vnet.events()).len() <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no upload after the restart; console:\n{}",
                c.tail(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // An idle step races `ended` against time: a running container does not end.
        let idle = tokio::time::timeout(Duration::from_secs(2), Driver::ended(&mut c)).await;
        assert!(idle.is_err(), "ended resolved while running: {idle:?}");

        Driver::stop(&mut c).await;
        drop(c);
        let summary = vnet.stop().await.unwrap();
        let uploads = uploads_with_imei(&summary.events);
        assert!(
            uploads.iter().all(|(target, host)| target == "/v1/register"
                && host.as_deref() == Some("api.account.kestrel.example")),
            "{uploads:?}"
        );
        assert!(uploads.len() >= 2, "{uploads:?}");
        assert!(summary.frames_recorded > 0);
        assert!(
            summary.port_errors.is_empty(),
            "the vnet saw port errors: {:?}",
            summary.port_errors
        );
        let log = std::fs::read_to_string(&console).unwrap();
        assert_eq!(log.matches("telltale-demo: ready").count(), 2, "{log}");
        assert!(log.contains("cloudsync: shutting down"), "{log}");
        assert!(our_containers().is_empty(), "container {id} left behind");
        assert!(our_taps().is_empty(), "TAP left behind: {:?}", our_taps());
    });
}

fn a_missing_image_fails_cleanly_and_a_dropped_container_is_removed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !is_root() {
        return skip_or_fail("needs root (a TAP device into the container's network namespace)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if let Some(why) = engine_unavailable().await {
            return skip_or_fail(&why);
        }
        let dir = workdir("drop");
        let vnet = VnetHandle::start(VnetConfig::default(), &dir.join("capture.pcap")).unwrap();
        let missing = ContainerSpec {
            image: "telltale-test/does-not-exist".into(),
            tag: "0".into(),
            ..Default::default()
        };
        let err = match Container::start(&missing, &vnet, &dir.join("console.log")).await {
            Ok(_) => panic!("a missing image started"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("telltale-test/does-not-exist:0"), "{err}");
        assert!(our_containers().is_empty());

        let present = Command::new("docker")
            .args(["image", "inspect", &format!("{IMAGE}:v1")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !present {
            return skip_or_fail(&format!(
                "no image {IMAGE}:v1: build it with ci/build-demo-images --containers"
            ));
        }
        let spec = ContainerSpec {
            image: IMAGE.into(),
            tag: "v1".into(),
            cmd: vec!["sh".into(), "-c".into(), "echo up; exec sleep 600".into()],
            ..Default::default()
        };
        let mut c = Container::start(&spec, &vnet, &dir.join("console2.log"))
            .await
            .unwrap();
        c.wait_for(&Regex::new("up").unwrap(), Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(our_containers().len(), 1);
        drop(c); // no stop: the last resort
        assert!(our_containers().is_empty(), "drop did not remove it");

        // A container that ends on its own is reported by `ended`.
        let spec = ContainerSpec {
            cmd: vec!["sh".into(), "-c".into(), "echo bye; exit 3".into()],
            ..spec
        };
        let mut c = Container::start(&spec, &vnet, &dir.join("console3.log")).await;
        if let Ok(c) = c.as_mut() {
            let e = tokio::time::timeout(Duration::from_secs(20), Driver::ended(c))
                .await
                .expect("ended in time");
            assert!(e.to_string().contains("status 3"), "{e}");
            Driver::stop(c).await;
        } else if let Err(e) = &c {
            // it may already be gone before its namespace could be wired
            assert!(e.to_string().contains("status 3"), "{e}");
        }
        drop(c);
        let _ = vnet.stop().await;
        assert!(our_containers().is_empty());
        assert!(our_taps().is_empty(), "TAP left behind: {:?}", our_taps());
    });
}

tests!(
    demo_v1_container_uploads_the_planted_imei_through_the_vnet_and_leaves_nothing_behind,
    a_missing_image_fails_cleanly_and_a_dropped_container_is_removed,
);
