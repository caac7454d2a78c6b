//! Conversations: the flow table key and the heuristics that decide which end of a conversation is the device.
//!
//! A flow is one TCP connection or one UDP 5-tuple. The reassembler for TCP byte streams lives in
//! [`reassembly`]. Who is the client matters for every report line ("up" = sent by the device): a SYN decides it;
//! for conversations seen mid-way, well-known server ports decide it; otherwise the first packet's destination is
//! taken as the server.

pub mod defrag;
pub mod reassembly;

use std::net::IpAddr;

/// Transport protocol numbers used in keys.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;

/// Direction-independent key of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    proto: u8,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
}

impl FlowKey {
    /// The same key for both directions of a conversation.
    pub fn new(proto: u8, src: (IpAddr, u16), dst: (IpAddr, u16)) -> Self {
        if src <= dst {
            FlowKey {
                proto,
                a: src,
                b: dst,
            }
        } else {
            FlowKey {
                proto,
                a: dst,
                b: src,
            }
        }
    }
}

/// Ports on which a service usually listens (a mid-stream conversation's server is on one of these).
pub fn is_service_port(port: u16) -> bool {
    port < 1024
        || matches!(
            port,
            1883 | 3128
                | 3478
                | 5222
                | 5223
                | 5228
                | 5353
                | 5355
                | 8000
                | 8008
                | 8080
                | 8081
                | 8088
                | 8443
                | 8883
                | 8888
                | 9000
                | 9443
        )
}

/// Decides whether the sender of the first packet seen of a conversation is the server.
/// `syn`/`ack` are the TCP flags of that packet (false for UDP).
pub fn first_sender_is_server(src_port: u16, dst_port: u16, syn: bool, ack: bool) -> bool {
    if syn {
        return ack; // SYN = client opening; SYN+ACK = server answering
    }
    let (s, d) = (is_service_port(src_port), is_service_port(dst_port));
    if s != d {
        return s;
    }
    if s && d {
        // Both look like services (e.g. DNS 53 ↔ 5353): the lower port is the service.
        return src_port < dst_port;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_symmetric() {
        let a = ("10.0.0.1".parse().unwrap(), 1234);
        let b = ("10.0.0.2".parse().unwrap(), 80);
        assert_eq!(FlowKey::new(TCP, a, b), FlowKey::new(TCP, b, a));
        assert_ne!(FlowKey::new(TCP, a, b), FlowKey::new(UDP, a, b));
    }

    #[test]
    fn client_side_heuristics() {
        assert!(!first_sender_is_server(40000, 80, true, false));
        assert!(first_sender_is_server(80, 40000, true, true));
        assert!(first_sender_is_server(443, 51000, false, true));
        assert!(!first_sender_is_server(51000, 443, false, true));
        assert!(first_sender_is_server(53, 5353, false, false));
        assert!(!first_sender_is_server(50000, 50001, false, false));
    }
}
