//! Frame decoding: link layer → IP → TCP/UDP, zero-copy, never panicking.
//!
//! Owns the knowledge of link types (Ethernet with VLAN tags, Linux cooked SLL and SLL2, raw IP, BSD
//! loopback/null) and hands the analysis a [`Decoded`] view: addresses, ports, TCP sequence state and the
//! payload slice, plus how many payload bytes the capture did not keep (snap length), so the reassembler can
//! account for them as a gap instead of waiting for bytes that will never come. Header parsing is etherparse's
//! (checked slices, lax mode so truncated frames still yield what they carry).

use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// LINKTYPE_ values telltale understands.
pub mod link {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: u32 = 0;
    /// Ethernet (with 802.1Q / QinQ tags).
    pub const ETHERNET: u32 = 1;
    /// Raw IP (some platforms' DLT_RAW values).
    pub const RAW_ALIASES: [u32; 3] = [12, 14, 101];
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// TCP header facts the reassembler needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (valid when `ack_flag`).
    pub ack: u32,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// ACK flag.
    pub ack_flag: bool,
}

/// The transport layer of a decoded frame.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    /// TCP segment.
    Tcp(TcpInfo, &'a [u8]),
    /// UDP datagram: source port, destination port, payload.
    Udp(u16, u16, &'a [u8]),
    /// Anything else carried by IP (ICMP, fragments, other protocols); the IP protocol number.
    Other(u8),
}

/// An IP packet decoded from a frame.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport layer.
    pub transport: Transport<'a>,
    /// Payload bytes that were on the wire but not captured (snap length).
    pub missing: u32,
    /// The IP packet is a fragment (not reassembled).
    pub fragment: bool,
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// An IPv4/IPv6 packet.
    Ip(Decoded<'a>),
    /// A non-IP frame (ARP, LLDP, ...), with a short name.
    NonIp(&'static str),
    /// A link type telltale does not decode.
    UnsupportedLink,
    /// Too short or malformed to decode.
    Malformed,
}

/// Decodes one frame of the given link type.
pub fn decode(link_type: u32, data: &[u8]) -> Outcome<'_> {
    let sliced = match link_type {
        link::ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
            Ok(p) => p,
            Err(_) => return Outcome::Malformed,
        },
        link::LINUX_SLL => {
            // packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
            let Some(proto) = be16(data, 14) else {
                return Outcome::Malformed;
            };
            let Some(rest) = data.get(16..) else {
                return Outcome::Malformed;
            };
            from_ether_type(proto, rest)
        }
        link::LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) ARPHRD(2) pkttype(1) addr len(1) addr(8)
            let Some(proto) = be16(data, 0) else {
                return Outcome::Malformed;
            };
            let Some(rest) = data.get(20..) else {
                return Outcome::Malformed;
            };
            from_ether_type(proto, rest)
        }
        link::NULL | link::LOOP => {
            let Some(fam) = data.get(0..4) else {
                return Outcome::Malformed;
            };
            let fam = [fam[0], fam[1], fam[2], fam[3]];
            let family = if link_type == link::LOOP {
                u32::from_be_bytes(fam)
            } else if u32::from_le_bytes(fam) < 0x100 {
                // Host byte order of the capturing machine: small values are families.
                u32::from_le_bytes(fam)
            } else {
                u32::from_be_bytes(fam)
            };
            let rest = &data[4..];
            match family {
                2 | 24 | 28 | 30 => match LaxSlicedPacket::from_ip(rest) {
                    Ok(p) => p,
                    Err(_) => return Outcome::Malformed,
                },
                _ => return Outcome::NonIp("loopback non-IP"),
            }
        }
        l if link::RAW_ALIASES.contains(&l) || l == link::IPV4 || l == link::IPV6 => {
            match LaxSlicedPacket::from_ip(data) {
                Ok(p) => p,
                Err(_) => return Outcome::Malformed,
            }
        }
        _ => return Outcome::UnsupportedLink,
    };
    from_sliced(&sliced)
}

fn from_ether_type(proto: u16, rest: &[u8]) -> LaxSlicedPacket<'_> {
    LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>) -> Outcome<'a> {
    let (src, dst, payload, expected) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let hdr_len = h.slice().len() + v4.extensions().auth.map_or(0, |a| a.slice().len());
            let expected = usize::from(h.total_len()).saturating_sub(hdr_len);
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                expected,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let expected =
                usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len());
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
                expected,
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Outcome::NonIp("ARP"),
        None => {
            return match &p.stop_err {
                Some(_) => Outcome::Malformed,
                None => Outcome::NonIp("non-IP"),
            }
        }
    };
    let missing_ip = if payload.incomplete {
        expected.saturating_sub(payload.payload.len())
    } else {
        0
    };
    let missing = u32::try_from(missing_ip).unwrap_or(u32::MAX);
    let transport = match &p.transport {
        Some(TransportSlice::Tcp(t)) => Transport::Tcp(
            TcpInfo {
                src_port: t.source_port(),
                dst_port: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                syn: t.syn(),
                fin: t.fin(),
                rst: t.rst(),
                ack_flag: t.ack(),
            },
            t.payload(),
        ),
        Some(TransportSlice::Udp(u)) => {
            Transport::Udp(u.source_port(), u.destination_port(), u.payload())
        }
        _ => Transport::Other(payload.ip_number.0),
    };
    Outcome::Ip(Decoded {
        src,
        dst,
        transport,
        missing,
        fragment: payload.fragmented,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 1024);
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("build");
        v
    }

    #[test]
    fn ethernet_tcp_payload_and_ports() {
        let f = tcp_frame(b"GET / HTTP/1.1\r\n\r\n");
        let Outcome::Ip(d) = decode(link::ETHERNET, &f) else {
            panic!("not decoded")
        };
        let Transport::Tcp(t, p) = d.transport else {
            panic!("not tcp")
        };
        assert_eq!((t.src_port, t.dst_port, t.seq), (40000, 80, 1000));
        assert_eq!(p, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(d.missing, 0);
    }

    #[test]
    fn truncated_frame_reports_missing_payload() {
        let f = tcp_frame(&[b'x'; 100]);
        let cut = &f[..f.len() - 40];
        let Outcome::Ip(d) = decode(link::ETHERNET, cut) else {
            panic!("not decoded")
        };
        let Transport::Tcp(_, p) = d.transport else {
            panic!("not tcp")
        };
        assert_eq!(p.len(), 60);
        assert_eq!(d.missing, 40);
    }

    #[test]
    fn sll_sll2_null_raw_all_reach_ip() {
        let eth = tcp_frame(b"abc");
        let ip = &eth[14..];
        let mut sll = vec![0u8, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(ip);
        let mut sll2 = vec![
            0x08u8, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(ip);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        for (lt, f) in [
            (link::LINUX_SLL, &sll[..]),
            (link::LINUX_SLL2, &sll2[..]),
            (link::NULL, &null[..]),
            (101, ip),
        ] {
            match decode(lt, f) {
                Outcome::Ip(d) => assert!(matches!(d.transport, Transport::Tcp(_, b"abc")), "{lt}"),
                other => panic!("link {lt}: {other:?}"),
            }
        }
    }

    #[test]
    fn junk_never_panics() {
        let mut seed = 7u64;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            for lt in [0, 1, 12, 101, 108, 113, 228, 229, 276, 9999] {
                let _ = decode(lt, &bytes);
            }
        }
    }

    #[test]
    fn unsupported_link_is_reported() {
        assert!(matches!(decode(147, b"whatever"), Outcome::UnsupportedLink));
    }
}
