//! Putting a network namespace on the vnet: one TAP device, moved into the namespace as its
//! only interface besides `lo`, addressed and routed to telltale.
//!
//! This module owns that wiring for the target kinds that run Linux programs without an
//! emulator (containers, host programs in a namespace). The TAP's file descriptor goes to
//! the vnet; the device lives in the target's namespace and disappears with it (or when the
//! vnet closes the descriptor), so nothing outlives the run. The address is the one the
//! vnet's DHCP server leases to the interface's MAC, so a DHCP client inside gets the same.
//!
//! Configuration inside the namespace uses `ip` (iproute2) through `nsenter` (util-linux):
//! the commands run on the host, not in the target, which may have no tools at all.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

use super::TargetError;
use crate::vnet::port::TapPort;
use crate::vnet::run::{StaticLease, VnetHandle};

/// Which network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsRef {
    /// The namespace of a process (a container's init): `/proc/PID/ns/net`.
    Pid(u32),
    /// A namespace made with `ip netns add NAME`: `/run/netns/NAME`.
    Named(String),
}

impl NetnsRef {
    /// The namespace's file.
    pub fn path(&self) -> PathBuf {
        match self {
            NetnsRef::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            NetnsRef::Named(n) => PathBuf::from("/run/netns").join(n),
        }
    }

    /// What `ip link set … netns X` accepts.
    fn ip_arg(&self) -> String {
        match self {
            NetnsRef::Pid(pid) => pid.to_string(),
            NetnsRef::Named(n) => n.clone(),
        }
    }
}

/// A namespace's link into the vnet.
#[derive(Debug, Clone)]
pub struct NsLink {
    /// Interface name inside the namespace.
    pub ifname: String,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its address, gateway and prefix.
    pub lease: StaticLease,
}

/// A TAP name unique on this host for this process: `tt<pid><n>` (at most 15 bytes).
pub fn unique_tap_name() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("tt{}x{n}", std::process::id());
    name.chars().take(15).collect()
}

/// `02:74:74:xx:xx:xx`, from the TAP name (locally administered, stable per name).
fn mac_for(name: &str) -> [u8; 6] {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [0x02, 0x74, 0x74, b[5], b[6], b[7]]
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs a host command and fails with its stderr.
async fn run(argv: &[&str]) -> Result<(), TargetError> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| TargetError::Spawn {
            program: argv[0].to_string(),
            hint: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "`{}` is not installed (Debian: apt-get install iproute2 util-linux)",
                    argv[0]
                )
            } else {
                e.to_string()
            },
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TargetError::Io(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Creates a TAP, attaches its descriptor to `vnet`, moves the interface into `ns` as
/// `ifname` with the vnet's lease for its MAC, brings it and `lo` up and routes everything
/// to telltale. Needs root.
pub async fn attach(vnet: &VnetHandle, ns: &NetnsRef, ifname: &str) -> Result<NsLink, TargetError> {
    super::require_root(
        "putting a namespace on telltale's network",
        "it creates a TAP device and moves it into the target's network namespace",
    )?;
    let tap_name = unique_tap_name();
    let mac = mac_for(&tap_name);
    let tap = TapPort::create(&tap_name)
        .map_err(|e| TargetError::Io(format!("cannot create TAP {tap_name}: {e}")))?;
    // Until the move the interface is in the host namespace, down and without an address.
    let moved = run(&["ip", "link", "set", "dev", &tap_name, "netns", &ns.ip_arg()]).await;
    if let Err(e) = moved {
        drop(tap);
        return Err(e);
    }
    let (r, w) = tap
        .split()
        .map_err(|e| TargetError::Io(format!("cannot use TAP {tap_name}: {e}")))?;
    vnet.attach(r, w)
        .await
        .map_err(|e| TargetError::Io(format!("cannot attach {tap_name} to the network: {e}")))?;
    let lease = vnet
        .lease(mac)
        .await
        .map_err(|e| TargetError::Io(format!("cannot get an address on the network: {e}")))?;
    let nsfile = ns.path();
    let net = format!("--net={}", nsfile.display());
    let ip_in = |args: &[&str]| {
        let mut v = vec!["nsenter".to_string(), net.clone(), "ip".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let addr = format!("{}/{}", lease.ip, lease.prefix_len);
    let gw = lease.gateway.to_string();
    let macs = mac_string(&mac);
    for argv in [
        ip_in(&["link", "set", "dev", &tap_name, "name", ifname]),
        ip_in(&["link", "set", "dev", ifname, "address", &macs]),
        ip_in(&["link", "set", "dev", ifname, "txqueuelen", "10000"]),
        ip_in(&["addr", "add", &addr, "dev", ifname]),
        ip_in(&["link", "set", "dev", ifname, "up"]),
        ip_in(&["link", "set", "dev", "lo", "up"]),
        ip_in(&["route", "replace", "default", "via", &gw, "dev", ifname]),
    ] {
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        run(&refs).await?;
    }
    Ok(NsLink {
        ifname: ifname.to_string(),
        mac,
        lease,
    })
}

/// `/etc/resolv.conf` text that sends every lookup to telltale.
pub fn resolv_conf(lease: &StaticLease) -> String {
    format!(
        "# written by telltale: every lookup goes to telltale's DNS\nnameserver {}\n",
        lease.gateway
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_are_short_and_unique() {
        let a = unique_tap_name();
        let b = unique_tap_name();
        assert_ne!(a, b);
        assert!(a.len() <= 15 && a.starts_with("tt"), "{a}");
    }

    #[test]
    fn macs_are_local_unicast_and_stable() {
        let m = mac_for("tt1x0");
        assert_eq!(m, mac_for("tt1x0"));
        assert_ne!(m, mac_for("tt1x1"));
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
        assert_eq!(
            mac_string(&[2, 0x74, 0x74, 0, 0xab, 1]),
            "02:74:74:00:ab:01"
        );
    }

    #[test]
    fn namespace_paths() {
        assert_eq!(NetnsRef::Pid(42).path(), PathBuf::from("/proc/42/ns/net"));
        assert_eq!(
            NetnsRef::Named("x".into()).path(),
            PathBuf::from("/run/netns/x")
        );
    }
}
