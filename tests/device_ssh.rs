//! The `device` target against a stand-in device: a network namespace with its own
//! addresses and an OpenSSH server, wired like a lab phone:
//!
//! ```text
//!   host namespace                         device namespace
//!   tg<pid><t>  (telltale, AF_PACKET) ==== dev0   DHCP from telltale, default route
//!   tm<pid><t>  192.168.77.x/30       ==== mgmt0  sshd listens here (control, out of band)
//! ```
//!
//! telltale is the device's gateway on `dev0` (the vnet served over an `AF_PACKET` socket on
//! the host end, which `prepare_gateway_interface` takes off the host's stack); control goes
//! over the management link, like adb over USB. Needs root, `ip`, busybox and OpenSSH
//! (`openssh-server`, `openssh-client`; the system's ssh service is never started): `.ci/run`
//! has them; elsewhere the tests say why they are skipped. The adb test needs no root and
//! no phone. Every namespace, interface and process made here is removed on drop, also
//! when a test fails.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::netns::which;
use regex::bytes::Regex;
use telltale::driver::device::{Control, Device, DeviceSpec, Traffic};
use telltale::driver::{Driver, TargetError};
use telltale::vnet::run::VnetHandle;
use telltale::vnet::{VnetConfig, VnetEvent};
use telltale::{Config, Matcher};

/// Why the ssh tests cannot run here, or `None`.
fn unsupported() -> Option<String> {
    if let Some(why) = common::netns::unsupported() {
        return Some(why);
    }
    for (tool, package) in [
        ("sshd", "openssh-server"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
    ] {
        if which(tool).is_none() && !Path::new("/usr/sbin").join(tool).exists() {
            return Some(format!(
                "needs `{tool}` (apt-get install {package}); `.ci/run` installs it"
            ));
        }
    }
    None
}

macro_rules! skip_unless_lab {
    () => {
        if let Some(why) = unsupported() {
            assert!(
                std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
                "TELLTALE_REQUIRE_ALL_TESTS is set but this test cannot run: {why}"
            );
            common::harness::skipped(why);
            return;
        }
    };
}

fn sshd_path() -> PathBuf {
    which("sshd").unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn workdir(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("device-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_ok(argv: &[&str]) -> String {
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        argv.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Child processes of this test process whose command name is one of `names`.
fn children_named(names: &[&str]) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid: u32 = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == me && names.contains(&comm) {
            found.push((pid, comm.to_string()));
        }
    }
    found
}

/// The stand-in device: a namespace, two veth pairs, keys, and (optionally) sshd.
struct Lab {
    ns: String,
    gw_if: String,
    mgmt_if: String,
    host_ip: Ipv4Addr,
    device_ip: Ipv4Addr,
    dir: PathBuf,
    sshd: Option<Child>,
}

impl Lab {
    /// `k` picks the management /30 (tests run in parallel).
    fn create(tag: &str, k: u8, dir: &Path) -> Lab {
        let pid = std::process::id() % 100_000;
        let lab = Lab {
            ns: format!("tt-{pid}-{tag}dev"),
            gw_if: format!("tg{pid}{tag}"),
            mgmt_if: format!("tm{pid}{tag}"),
            host_ip: Ipv4Addr::new(192, 168, 77, 4 * k + 1),
            device_ip: Ipv4Addr::new(192, 168, 77, 4 * k + 2),
            dir: dir.to_path_buf(),
            sshd: None,
        };
        // From here on Drop cleans up whatever exists.
        run_ok(&["ip", "netns", "add", &lab.ns]);
        let resolv = PathBuf::from("/etc/netns").join(&lab.ns);
        std::fs::create_dir_all(&resolv).unwrap();
        std::fs::write(resolv.join("resolv.conf"), "nameserver 10.77.0.1\n").unwrap();
        run_ok(&[
            "ip", "link", "add", &lab.gw_if, "type", "veth", "peer", "name", "dev0", "netns",
            &lab.ns,
        ]);
        run_ok(&[
            "ip",
            "link",
            "add",
            &lab.mgmt_if,
            "type",
            "veth",
            "peer",
            "name",
            "mgmt0",
            "netns",
            &lab.ns,
        ]);
        let v6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", lab.mgmt_if);
        if Path::new(&v6).exists() {
            std::fs::write(&v6, "1").unwrap();
        }
        let host_cidr = format!("{}/30", lab.host_ip);
        run_ok(&["ip", "addr", "add", &host_cidr, "dev", &lab.mgmt_if]);
        run_ok(&["ip", "link", "set", &lab.mgmt_if, "up"]);
        let dev_cidr = format!("{}/30", lab.device_ip);
        lab.exec_ok(&["ip", "link", "set", "lo", "up"]);
        lab.exec_ok(&["ip", "addr", "add", &dev_cidr, "dev", "mgmt0"]);
        lab.exec_ok(&["ip", "link", "set", "mgmt0", "up"]);
        lab.exec_ok(&["ip", "link", "set", "dev0", "up"]);
        lab
    }

    fn exec_ok(&self, argv: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.ns];
        full.extend_from_slice(argv);
        run_ok(&full)
    }

    /// Keys for the server and the client; returns the client's private key.
    fn keys(&self) -> PathBuf {
        for name in ["host_key", "id"] {
            let p = self.dir.join(name);
            run_ok(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "telltale-test",
                "-f",
                p.to_str().unwrap(),
            ]);
        }
        std::fs::copy(self.dir.join("id.pub"), self.dir.join("authorized_keys")).unwrap();
        self.dir.join("id")
    }

    /// Runs sshd inside the device namespace, listening on the management address.
    fn start_sshd(&mut self) {
        // sshd insists on its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let cfg = self.dir.join("sshd_config");
        std::fs::write(
            &cfg,
            format!(
                "ListenAddress {ip}\nPort 22\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\n",
                ip = self.device_ip,
                d = self.dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.join("sshd.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(sshd_path())
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.sshd = Some(child);
        // Ready when it accepts connections on the management link.
        let addr = SocketAddr::from((self.device_ip, 22));
        for _ in 0..100 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd did not come up: {}",
            std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
        );
    }

    fn ssh_control(&self, identity: PathBuf) -> Control {
        Control::Ssh {
            host: self.device_ip.to_string(),
            port: 22,
            user: "root".into(),
            identity: Some(identity),
            options: vec![
                "StrictHostKeyChecking=no".into(),
                "UserKnownHostsFile=/dev/null".into(),
                "ConnectTimeout=5".into(),
            ],
        }
    }

    /// Whether anything of this lab still exists.
    fn leftovers(ns: &str, ifs: &[&str], pid: Option<u32>) -> Vec<String> {
        let mut left = Vec::new();
        let list = run_ok(&["ip", "netns", "list"]);
        if list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(ns))
        {
            left.push(format!("namespace {ns}"));
        }
        for i in ifs {
            if Path::new("/sys/class/net").join(i).exists() {
                left.push(format!("interface {i}"));
            }
        }
        if let Some(p) = pid {
            if Path::new(&format!("/proc/{p}")).exists() {
                left.push(format!("process {p}"));
            }
        }
        if Path::new("/etc/netns").join(ns).exists() {
            left.push(format!("/etc/netns/{ns}"));
        }
        left
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.sshd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // sshd's per-connection processes live in the namespace: end them too.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.gw_if])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.mgmt_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.ns));
    }
}

const IMEI: &str = common::IMEI;

fn device_over_ssh_with_telltale_as_gateway_plants_and_the_upload_is_caught() {
    skip_unless_lab!();
    let dir = workdir("ssh");
    let rt = runtime();
    let _enter = rt.enter();
    let mut lab = Lab::create("s", 1, &dir);
    let identity = lab.keys();
    lab.start_sshd();
    let sshd_pid = lab.sshd.as_ref().map(Child::id);

    let pcap = dir.join("capture.pcap");
    let vnet = VnetHandle::start(VnetConfig::default(), &pcap).unwrap();
    let device_log = dir.join("device.log");
    std::fs::write(&device_log, "").unwrap();
    let spec = DeviceSpec {
        control: lab.ssh_control(identity),
        traffic: Traffic::Interface(lab.gw_if.clone()),
        log_command: Some(format!("tail -n 0 -F {}", device_log.display())),
    };
    let console_log = dir.join("console.log");
    let mut dev = rt
        .block_on(Device::start(&spec, &vnet, &console_log))
        .unwrap_or_else(|e| panic!("device did not start: {e}"));

    // The host's stack is off the gateway interface.
    let link = run_ok(&["ip", "-o", "link", "show", "dev", &lab.gw_if]);
    assert!(
        link.contains("NOARP") && link.contains(",UP"),
        "link: {link}"
    );
    let addrs = run_ok(&["ip", "-o", "addr", "show", "dev", &lab.gw_if]);
    assert!(
        addrs.trim().is_empty(),
        "no address on the gateway: {addrs}"
    );
    let v6 = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", lab.gw_if);
    if Path::new(&v6).exists() {
        assert_eq!(std::fs::read_to_string(&v6).unwrap().trim(), "1");
    }

    let t = Duration::from_secs(30);
    // The device configures itself by DHCP from telltale (driven over ssh, like any step).
    let script = dir.join("udhcpc.sh");
    let lease_file = dir.join("lease");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n bound|renew)\n  ip addr flush dev \"$interface\"\n  ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"\n  ip route replace default via \"${{router%% *}}\" dev \"$interface\"\n  echo \"ip=$ip router=$router dns=$dns\" > {}\n  ;;\nesac\nexit 0\n",
            lease_file.display()
        ),
    )
    .unwrap();
    run_ok(&["chmod", "+x", script.to_str().unwrap()]);
    let dhcp = rt
        .block_on(dev.shell(
            &format!(
                "busybox udhcpc -i dev0 -s {} -q -n -t 5 -T 1 -x hostname:lab-phone",
                script.display()
            ),
            t,
        ))
        .unwrap();
    assert_eq!(dhcp.status, 0, "udhcpc: {}", dhcp.output);
    let lease = std::fs::read_to_string(&lease_file).unwrap_or_default();
    assert!(lease.contains("router=10.77.0.1"), "lease: {lease}");
    let routes = rt.block_on(dev.shell("ip route", t)).unwrap();
    assert!(
        routes.output.contains("default via 10.77.0.1 dev dev0"),
        "{}",
        routes.output
    );

    // Plant over ssh (bytes on stdin), read it back.
    let imei_path = dir.join("device-root/data/imei");
    let imei_str = imei_path.to_str().unwrap().to_string();
    rt.block_on(dev.plant(&imei_str, IMEI.as_bytes(), t))
        .unwrap();
    assert_eq!(std::fs::read_to_string(&imei_path).unwrap(), IMEI);
    // Statuses and stderr come back; quoting survives.
    let out = rt
        .block_on(dev.shell("echo 'it'\\''s' >&2; exit 3", t))
        .unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.output, "it's");

    // The log command feeds wait_for.
    rt.block_on(dev.shell(
        &format!("echo 'lab-phone: ready' >> {}", device_log.display()),
        t,
    ))
    .unwrap();
    let re = Regex::new("lab-phone: ready").unwrap();
    rt.block_on(Driver::wait_for(&mut dev, &re, Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("log not seen: {e}"));

    // The upload: by name, through telltale's DNS and sink.
    let up = rt
        .block_on(dev.shell(
            &format!(
                "busybox wget -q -O - --post-data \"imei=$(cat {imei_str})\" http://api.vendor.example/up"
            ),
            t,
        ))
        .unwrap();
    assert_eq!(up.status, 0, "wget: {}", up.output);
    assert_eq!(up.output, "{}", "the sink's answer");

    // A large upload crosses the veth as offloaded segments: still caught whole.
    let big = "A".repeat(20_000);
    let up = rt
        .block_on(dev.shell(
            &format!("busybox wget -q -O - --post-data \"x={big}&imei=$(cat {imei_str})\" http://api.vendor.example/big"),
            t,
        ))
        .unwrap();
    assert_eq!(up.status, 0, "wget: {}", up.output);

    // A capture the device records itself, pulled over ssh; the recorder is ended first.
    let remote_capture = dir.join("device-root/capture.pcap");
    let pull_spec = DeviceSpec {
        control: spec.control.clone(),
        traffic: Traffic::PullCapture {
            remote_path: remote_capture.display().to_string(),
            start: Some(format!(
                "sh -c 'printf captured > {}; exec sleep 1234'",
                remote_capture.display()
            )),
        },
        log_command: None,
    };
    let mut puller = rt
        .block_on(Device::start(&pull_spec, &vnet, &dir.join("console2.log")))
        .unwrap();
    let recorder_running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x001234\x00")
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(recorder_running(), "the capture command runs on the device");
    let pulled = dir.join("pulled.pcap");
    rt.block_on(puller.pull_capture(&pulled)).unwrap();
    assert_eq!(std::fs::read(&pulled).unwrap(), b"captured");
    assert!(
        !recorder_running(),
        "the capture command was ended before the pull"
    );
    rt.block_on(Driver::stop(&mut puller));
    drop(puller);

    rt.block_on(Driver::stop(&mut dev));
    assert!(
        children_named(&["ssh"]).is_empty(),
        "ssh clients left: {:?}",
        children_named(&["ssh"])
    );
    drop(dev);
    let summary = rt.block_on(vnet.stop()).unwrap();
    let gw = lab.gw_if.clone();
    let mgmt = lab.mgmt_if.clone();
    let ns = lab.ns.clone();
    drop(lab);

    let http: Vec<_> = summary
        .events
        .iter()
        .filter_map(|e| match e {
            VnetEvent::Http {
                method,
                target,
                host,
                body,
                body_len,
                ..
            } => Some((
                method.clone(),
                target.clone(),
                host.clone(),
                body.clone(),
                *body_len,
            )),
            _ => None,
        })
        .collect();
    let up = http
        .iter()
        .find(|h| h.1 == "/up")
        .unwrap_or_else(|| panic!("no upload in {:?}", summary.events));
    assert_eq!(up.0, "POST");
    assert_eq!(up.2.as_deref(), Some("api.vendor.example"));
    assert_eq!(up.3, format!("imei={IMEI}").as_bytes());
    let big_up = http.iter().find(|h| h.1 == "/big").expect("big upload");
    assert_eq!(big_up.4, 20_002 + 5 + IMEI.len() as u64 + 1);
    assert!(summary.events.iter().any(|e| matches!(e,
        VnetEvent::Dhcp { lease: Some(l), .. } if l.hostname.as_deref() == Some("lab-phone"))));
    assert!(summary.port_errors.is_empty(), "{:?}", summary.port_errors);

    // Every frame in the capture is wire-sized: offloaded (merged) segments were cut.
    // (The vnet's capture is pcapng: read it with the project's reader.)
    let mut reader = telltale::capture::CaptureReader::open(&pcap).unwrap();
    let (mut frames, mut largest) = (0u64, 0usize);
    while let Ok(Some(p)) = reader.next_packet() {
        largest = largest.max(p.data.len());
        frames += 1;
    }
    assert_eq!(frames, summary.frames_recorded);
    assert!(largest <= 1514, "a {largest}-byte frame in the capture");

    // The capture analyses like any other: the IMEI is found.
    let m = Arc::new(Matcher::new(&common::identity()));
    let report = telltale::analyze_file(&pcap, m, Config::default(), |_| {}).unwrap();
    assert!(
        report.findings.iter().any(|f| f.canary == "imei"),
        "findings:\n{}",
        common::describe(&report)
    );

    let left = Lab::leftovers(&ns, &[&gw, &mgmt], sshd_pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn a_device_that_does_not_answer_fails_clearly_and_leaves_nothing() {
    skip_unless_lab!();
    let dir = workdir("down");
    let rt = runtime();
    let _enter = rt.enter();
    let lab = Lab::create("f", 2, &dir);
    let identity = lab.keys();
    // No sshd: connections to the device are refused.
    let vnet = VnetHandle::start(VnetConfig::default(), &dir.join("c.pcap")).unwrap();
    let spec = DeviceSpec {
        control: lab.ssh_control(identity),
        traffic: Traffic::Interface(lab.gw_if.clone()),
        log_command: Some("logcat".into()),
    };
    let err = rt
        .block_on(Device::start(&spec, &vnet, &dir.join("console.log")))
        .expect_err("nothing answers");
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(matches!(err, TargetError::Io(_)), "{err:?}");
    assert!(
        text.contains(&format!("root@{}:22", lab.device_ip)),
        "names the device: {text}"
    );
    // The control check comes before the interface is touched.
    let link = run_ok(&["ip", "-o", "link", "show", "dev", &lab.gw_if]);
    assert!(!link.contains("NOARP"), "interface untouched: {link}");
    let _ = rt.block_on(vnet.stop());
    let (ns, gw, mgmt) = (lab.ns.clone(), lab.gw_if.clone(), lab.mgmt_if.clone());
    drop(lab);
    assert!(children_named(&["ssh"]).is_empty());
    let left = Lab::leftovers(&ns, &[&gw, &mgmt], None);
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ends the adb server this test started, also when it fails.
struct AdbServer;

impl Drop for AdbServer {
    fn drop(&mut self) {
        let _ = Command::new("adb").arg("kill-server").output();
    }
}

fn adb_without_the_device_names_the_serial() {
    let dir = workdir("adb");
    let rt = runtime();
    let _enter = rt.enter();
    let vnet = VnetHandle::start(VnetConfig::default(), &dir.join("c.pcap")).unwrap();
    let spec = DeviceSpec {
        control: Control::Adb {
            serial: "TT-NO-SUCH-DEVICE".into(),
        },
        traffic: Traffic::PullCapture {
            remote_path: "/data/local/tmp/tt.pcap".into(),
            start: Some("tcpdump -i any -U -w /data/local/tmp/tt.pcap".into()),
        },
        log_command: Some("logcat".into()),
    };
    if which("adb").is_none() {
        assert!(
            std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
            "TELLTALE_REQUIRE_ALL_TESTS is set but adb is missing (apt-get install adb)"
        );
        let err = rt
            .block_on(Device::start(&spec, &vnet, &dir.join("console.log")))
            .expect_err("no adb");
        let text = err.to_string();
        assert!(text.contains("apt-get install adb"), "{text}");
        eprintln!("note: adb not installed; checked the install hint only");
        let _ = rt.block_on(vnet.stop());
        return;
    }
    // The server, started here (no mDNS discovery: loopback only), ended on drop.
    let _server = AdbServer;
    let out = Command::new("adb")
        .arg("start-server")
        .env("ADB_MDNS", "0")
        .env("ADB_MDNS_OPENSCREEN", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "adb start-server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = rt
        .block_on(Device::start(&spec, &vnet, &dir.join("console.log")))
        .expect_err("no such device");
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(text.contains("TT-NO-SUCH-DEVICE"), "{text}");
    assert!(text.contains("attached: none"), "{text}");
    let _ = rt.block_on(vnet.stop());
    drop(_server);
    assert!(children_named(&["adb"]).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in serial line: a pseudo-terminal whose slave end is the "port" telltale opens,
/// and a `sh` on the other end (relayed by a small python3 program), killed on drop.
struct SerialLine {
    relay: Child,
    path: String,
}

const RELAY: &str = r#"
import os, pty, select, subprocess, sys
m, s = pty.openpty()
sh = subprocess.Popen(["sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
print(os.ttyname(s), flush=True)
while True:
    r, _, _ = select.select([m, sh.stdout], [], [])
    if m in r:
        sh.stdin.write(os.read(m, 4096)); sh.stdin.flush()
    if sh.stdout in r:
        d = os.read(sh.stdout.fileno(), 4096)
        if not d:
            break
        os.write(m, d)
"#;

impl SerialLine {
    fn open() -> SerialLine {
        let mut relay = Command::new("python3")
            .args(["-c", RELAY])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let out = relay.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        SerialLine {
            relay,
            path: line.trim().to_string(),
        }
    }

    fn close(&mut self) {
        // The relay's `sh` ends with it (its stdin closes).
        let _ = self.relay.kill();
        let _ = self.relay.wait();
    }
}

impl Drop for SerialLine {
    fn drop(&mut self) {
        self.close();
    }
}

fn serial_console_shell_plant_pull_and_end() {
    if which("python3").is_none() || which("stty").is_none() {
        assert!(
            std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
            "TELLTALE_REQUIRE_ALL_TESTS is set but python3 or stty is missing"
        );
        eprintln!("SKIPPED serial_console_shell_plant_pull_and_end: needs python3 and stty");
        return;
    }
    let dir = workdir("serial");
    let rt = runtime();
    let _enter = rt.enter();
    let mut line = SerialLine::open();
    assert!(line.path.starts_with("/dev/pts/"), "{}", line.path);
    let capture = dir.join("device.pcap");
    let content: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&capture, &content).unwrap();
    let vnet = VnetHandle::start(VnetConfig::default(), &dir.join("c.pcap")).unwrap();
    let spec = DeviceSpec {
        control: Control::Serial {
            path: PathBuf::from(&line.path),
            baud: 115_200,
        },
        traffic: Traffic::PullCapture {
            remote_path: capture.display().to_string(),
            start: None,
        },
        log_command: None,
    };
    let mut dev = rt
        .block_on(Device::start(&spec, &vnet, &dir.join("console.log")))
        .unwrap_or_else(|e| panic!("serial device did not start: {e}"));
    let t = Duration::from_secs(20);
    let out = rt.block_on(dev.shell("echo hello; false", t)).unwrap();
    assert_eq!((out.status, out.output.as_str()), (1, "hello"));
    let planted = dir.join("sub dir/imei");
    rt.block_on(dev.plant(planted.to_str().unwrap(), IMEI.as_bytes(), t))
        .unwrap();
    assert_eq!(std::fs::read_to_string(&planted).unwrap(), IMEI);
    rt.block_on(dev.shell("echo 'device: ready'", t)).unwrap();
    // Output after the last call is the console's too.
    rt.block_on(dev.shell("(sleep 0.3; echo late-line) &", t))
        .unwrap();
    let re = Regex::new("late-line").unwrap();
    rt.block_on(Driver::wait_for(&mut dev, &re, t)).unwrap();
    let pulled = dir.join("pulled.pcap");
    rt.block_on(dev.pull_capture(&pulled)).unwrap();
    assert_eq!(std::fs::read(&pulled).unwrap(), content);
    assert!(std::fs::read_to_string(dir.join("console.log"))
        .unwrap()
        .contains("late-line"));
    // The line goes away: the device has ended.
    line.close();
    let ended = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), Driver::ended(&mut dev)).await
    });
    let err = ended.expect("ended resolves when the port closes");
    assert!(matches!(err, TargetError::Exited { .. }), "{err:?}");
    rt.block_on(Driver::stop(&mut dev));
    drop(dev);
    let _ = rt.block_on(vnet.stop());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same lab through the scenario language and `telltale run`: the scenario gets the
/// device an address from telltale, plants the IMEI over ssh, the device uploads it, and the
/// run fails on its policy with the finding in the right phase.
fn a_device_scenario_over_ssh_is_judged_like_any_run() {
    skip_unless_lab!();
    let dir = workdir("scenario");
    let mut lab = Lab::create("r", 3, &dir);
    let identity = lab.keys();
    lab.start_sshd();
    let sshd_pid = lab.sshd.as_ref().map(Child::id);
    let script = dir.join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in\n bound|renew)\n  ip addr flush dev \"$interface\"\n  ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n  ip route replace default via \"${router%% *}\" dev \"$interface\"\n  ;;\nesac\nexit 0\n",
    )
    .unwrap();
    run_ok(&["chmod", "+x", script.to_str().unwrap()]);
    let root = dir.join("device-root");
    let scenario = dir.join("device.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"name: lab-device
target:
  kind: device
  control:
    ssh:
      host: {ip}
      identity: id
      options: [StrictHostKeyChecking=no, UserKnownHostsFile=/dev/null, ConnectTimeout=5]
  traffic: {{interface: {gw}}}
identity:
  values: {{imei: "{IMEI}"}}
steps:
  - name: the device gets its address from telltale
    shell: busybox udhcpc -i dev0 -s {script} -q -n -t 5 -T 1 -x hostname:lab-phone
    expect_exit: 0
  - phase: consent_declined
  - plant: {{path: {root}/data/imei, content: "{{{{imei}}}}"}}
  - shell: busybox wget -q -O - --post-data "imei=$(cat {root}/data/imei)" http://api.vendor.example/up
    expect_output: "\\{{\\}}"
policy:
  forbid:
    - canaries: all
      phases: [consent_declined]
"#,
            ip = lab.device_ip,
            gw = lab.gw_if,
            script = script.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let _ = identity;
    let out = dir.join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_telltale"))
        .args(["run", "--allow-host=commands,network"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains("imei (raw) → api.vendor.example POST /up [http] during consent_declined"),
        "{all}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lab-device/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["verdict"], "fail");
    assert!(report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["outcome"] == "ok"));
    let manifest = std::fs::read_to_string(out.join("lab-device/manifest.json")).unwrap();
    assert!(
        manifest.contains(&format!("gateway on {}", lab.gw_if)),
        "{manifest}"
    );
    // No ssh client of telltale's (they name this lab's device address) outlived the run.
    let target = format!("root@{}", lab.device_ip);
    let clients: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd);
            (cmd.starts_with("ssh\0") && cmd.contains(&target)).then_some(pid)
        })
        .collect();
    assert!(clients.is_empty(), "ssh clients left: {clients:?}");
    let (ns, gw, mgmt) = (lab.ns.clone(), lab.gw_if.clone(), lab.mgmt_if.clone());
    drop(lab);
    let left = Lab::leftovers(&ns, &[&gw, &mgmt], sshd_pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

tests!(
    device_over_ssh_with_telltale_as_gateway_plants_and_the_upload_is_caught,
    a_device_that_does_not_answer_fails_clearly_and_leaves_nothing,
    adb_without_the_device_names_the_serial,
    serial_console_shell_plant_pull_and_end,
    a_device_scenario_over_ssh_is_judged_like_any_run,
);
