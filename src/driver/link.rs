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

use super::{run_host, TargetError};
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
    let moved = move_into(&tap_name, ns).await;
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
    let link = NsLink {
        ifname: ifname.to_string(),
        mac,
        lease,
    };
    configure(ns, &tap_name, &link).await?;
    Ok(link)
}

/// Moves the host interface `name` into `ns`.
pub(crate) async fn move_into(name: &str, ns: &NetnsRef) -> Result<(), TargetError> {
    run_host(&["ip", "link", "set", "dev", name, "netns", &ns.ip_arg()]).await
}

/// Runs a host command inside the network namespace `ns` (`nsenter --net=…`).
pub(crate) async fn run_in(ns: &NetnsRef, argv: &[&str]) -> Result<(), TargetError> {
    let net = format!("--net={}", ns.path().display());
    let mut v = vec!["nsenter", net.as_str()];
    v.extend_from_slice(argv);
    run_host(&v).await
}

/// Sets up the interface `name`, already moved into `ns`, as `link` says: renamed to
/// `link.ifname`, its MAC and address, up, `lo` up, the default route to telltale.
pub(crate) async fn configure(ns: &NetnsRef, name: &str, link: &NsLink) -> Result<(), TargetError> {
    let ifname = link.ifname.as_str();
    let addr = format!("{}/{}", link.lease.ip, link.lease.prefix_len);
    let gw = link.lease.gateway.to_string();
    let mac = mac_string(&link.mac);
    for argv in [
        vec!["ip", "link", "set", "dev", name, "name", ifname],
        vec!["ip", "link", "set", "dev", ifname, "address", &mac],
        vec!["ip", "link", "set", "dev", ifname, "txqueuelen", "10000"],
        vec!["ip", "addr", "add", &addr, "dev", ifname],
        vec!["ip", "link", "set", "dev", ifname, "up"],
        vec!["ip", "link", "set", "dev", "lo", "up"],
        vec![
            "ip", "route", "replace", "default", "via", &gw, "dev", ifname,
        ],
    ] {
        run_in(ns, &argv).await?;
    }
    Ok(())
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
