//! Network constants shared by the vnet (which serves them), the analysis of its captures and the snapshots
//! (which must tell the network's own services from the device's uploads). Depends on nothing.

use std::net::{IpAddr, Ipv4Addr};

/// telltale's address on the segment by default: gateway, DHCP server, DNS and NTP server.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// First address of the pool from which the vnet's DNS answers every name (198.18.0.0/15, RFC 2544's
/// benchmarking range: never a real destination).
pub const SYNTHETIC_POOL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);

/// Prefix length of [`SYNTHETIC_POOL`] (15 → 131,072 addresses).
pub const SYNTHETIC_POOL_PREFIX: u8 = 15;

/// The pool as text, for people.
pub const SYNTHETIC_POOL_TEXT: &str = "198.18.0.0/15";

/// DHCP server port.
pub const DHCP_SERVER_PORT: u16 = 67;
/// DHCP client port.
pub const DHCP_CLIENT_PORT: u16 = 68;
/// DNS port.
pub const DNS_PORT: u16 = 53;
/// NTP port.
pub const NTP_PORT: u16 = 123;

/// Whether `ip` lies in the synthetic pool the vnet's DNS hands out.
pub fn is_synthetic(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX << (32 - u32::from(SYNTHETIC_POOL_PREFIX));
            u32::from(v4) & mask == u32::from(SYNTHETIC_POOL) & mask
        }
        IpAddr::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_198_18_slash_15() {
        assert!(is_synthetic("198.18.0.0".parse().unwrap()));
        assert!(is_synthetic("198.19.255.255".parse().unwrap()));
        assert!(!is_synthetic("198.20.0.0".parse().unwrap()));
        assert!(!is_synthetic("198.17.255.255".parse().unwrap()));
        assert!(!is_synthetic("::1".parse().unwrap()));
    }
}
