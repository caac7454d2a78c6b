//! Network namespaces for tests that put a real Linux network stack on the vnet.
//!
//! Each [`Netns`] is a fresh namespace whose only interface (besides `lo`) is a TAP into a
//! vnet. Everything the test creates is removed on drop, also when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use telltale::vnet::port::TapPort;

/// Why namespace tests cannot run here, or `None` when they can.
pub fn unsupported() -> Option<String> {
    // SAFETY-free check of the effective uid through /proc.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    if uid != "0" {
        return Some(
            "needs root (network namespaces and TAP devices); `.ci/run` runs it as root".into(),
        );
    }
    for tool in ["ip", "busybox"] {
        if which(tool).is_none() {
            return Some(format!(
                "needs `{tool}` (apt-get install iproute2 busybox-static); `.ci/run` installs it"
            ));
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("needs /dev/net/tun".into());
    }
    None
}

/// Full path of a program on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Stops the test when it cannot run here; the harness (`common::harness`) lists it as ignored with the reason.
#[macro_export]
macro_rules! skip_unless_netns {
    () => {
        if let Some(why) = common::netns::unsupported() {
            // CI has every prerequisite: there a skip would hide a broken setup.
            assert!(
                std::env::var_os("TELLTALE_REQUIRE_ALL_TESTS").is_none(),
                "TELLTALE_REQUIRE_ALL_TESTS is set but this test cannot run: {why}"
            );
            common::harness::skipped(why);
            return;
        }
    };
}

/// A network namespace with one TAP interface named `tap` (moved into it, down).
pub struct Netns {
    pub name: String,
    pub tap: String,
    resolv_dir: PathBuf,
}

impl Netns {
    /// Creates namespace `tt-<pid>-<tag>` and TAP `t<pid><tag>` in the host namespace (the
    /// caller attaches the returned TAP to a vnet), then moves the interface into the
    /// namespace. `/etc/netns/<name>/resolv.conf` points at the vnet's gateway.
    pub fn create(tag: &str) -> (Netns, TapPort) {
        let pid = std::process::id() % 100_000;
        let name = format!("tt-{pid}-{tag}");
        let tap_name = format!("t{pid}{tag}");
        let tap_name: String = tap_name.chars().take(15).collect();
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let resolv_dir = PathBuf::from("/etc/netns").join(&name);
        let ns = Netns {
            name: name.clone(),
            tap: tap_name.clone(),
            resolv_dir: resolv_dir.clone(),
        };
        std::fs::create_dir_all(&resolv_dir).unwrap();
        std::fs::write(resolv_dir.join("resolv.conf"), "nameserver 10.77.0.1\n").unwrap();
        let tap = TapPort::create(&tap_name).expect("create TAP");
        run_ok(Command::new("ip").args(["link", "set", "dev", &tap_name, "netns", &name]));
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns.exec_ok(&["ip", "link", "set", &tap_name, "txqueuelen", "10000", "up"]);
        (ns, tap)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(argv);
        c.output().expect("run ip netns exec")
    }

    /// Runs a command inside the namespace and insists that it succeeds.
    pub fn exec_ok(&self, argv: &[&str]) -> String {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "`{}` failed in {}: {}\n{}",
            argv.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Gets an address over DHCP with busybox udhcpc; returns the lease line the script
    /// wrote (`ip=… router=… dns=… `).
    pub fn dhcp(&self, dir: &Path, hostname: &str) -> String {
        let script = dir.join(format!("udhcpc-{}.sh", self.name));
        let lease = dir.join(format!("lease-{}", self.name));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n bound|renew)\n  ip addr flush dev \"$interface\"\n  ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"\n  ip route replace default via \"${{router%% *}}\" dev \"$interface\"\n  echo \"ip=$ip router=$router dns=$dns\" > {}\n  ;;\nesac\nexit 0\n",
                lease.display()
            ),
        )
        .unwrap();
        run_ok(Command::new("chmod").arg("+x").arg(&script));
        let hostname_opt = format!("hostname:{hostname}");
        self.exec_ok(&[
            "busybox",
            "udhcpc",
            "-i",
            &self.tap,
            "-s",
            script.to_str().unwrap(),
            "-q",
            "-n",
            "-t",
            "5",
            "-T",
            "1",
            "-x",
            &hostname_opt,
        ]);
        std::fs::read_to_string(&lease).unwrap_or_default()
    }

    /// Transmit counters of the TAP as the namespace sees them: (packets, dropped).
    pub fn tap_tx(&self) -> (u64, u64) {
        let read = |f: &str| -> u64 {
            self.exec_ok(&[
                "cat",
                &format!("/sys/class/net/{}/statistics/{f}", self.tap),
            ])
            .trim()
            .parse()
            .unwrap_or(u64::MAX)
        };
        (read("tx_packets"), read("tx_dropped"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}

fn run_ok(c: &mut Command) {
    let out = c.output().expect("run command");
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
}
