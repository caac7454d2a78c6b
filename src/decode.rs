//! Frame decoding: link layer → IP → TCP/UDP, zero-copy, never panicking.
//!
//! Owns the knowledge of link types (Ethernet with VLAN tags, Linux cooked SLL and SLL2, raw IP, BSD
//! loopback/null, Apple PKTAP, Linux NFLOG, ARCNET, PPP/PPPoE/Cisco HDLC, 802.11) and of tunnels, and hands the
//! analysis a [`Decoded`] view: addresses, ports, TCP sequence state and the payload slice, plus how many payload
//! bytes the capture did not keep (snap length), so the reassembler can account for them as a gap instead of
//! waiting for bytes that will never come. Header parsing is etherparse's (checked slices, lax mode so truncated
//! frames still yield what they carry); the link and tunnel headers etherparse does not know are read here.
//!
//! Tunnels are decapsulated: when an IP packet carries GRE (incl. PPTP enhanced GRE, ERSPAN and Aruba 802.11),
//! IP-in-IP / IPv6-in-IP, or a UDP datagram on the port of GRE-in-UDP (4754), VXLAN (4789), VXLAN-GPE (4790),
//! Geneve (6081), GTP-U (2152), AYIYA (5072) or Teredo (3544), and the encapsulated packet decodes to IP, the
//! *inner* packet is returned, with [`Decoded::tunnel`] naming the outermost tunnel. Nesting is bounded by
//! [`MAX_DEPTH`]. A tunnel header that does not parse, or an inner frame that is not IP, leaves the outer packet
//! as the result. The common paths (TCP, UDP on other ports) pay one `match` for this.

use std::net::IpAddr;

use etherparse::{EtherType, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// How many encapsulations (tunnels and link headers wrapping link headers) are undone at most.
pub const MAX_DEPTH: u8 = 8;

/// LINKTYPE_ values telltale understands.
pub mod link {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: u32 = 0;
    /// Ethernet (with 802.1Q / QinQ tags, PPPoE sessions, MPLS).
    pub const ETHERNET: u32 = 1;
    /// ARCNET with BSD-style header (no offset field; exception frames possible).
    pub const ARCNET_BSD: u32 = 7;
    /// PPP (RFC 1661), HDLC address/control bytes optional.
    pub const PPP: u32 = 9;
    /// Raw IP (some platforms' DLT_RAW values).
    pub const RAW_ALIASES: [u32; 3] = [12, 14, 101];
    /// PPP in HDLC-like framing (RFC 1662); Cisco HDLC frames under this type are also understood.
    pub const PPP_HDLC: u32 = 50;
    /// PPPoE session header followed by PPP (no Ethernet header).
    pub const PPP_ETHER: u32 = 51;
    /// Cisco HDLC.
    pub const C_HDLC: u32 = 104;
    /// IEEE 802.11 without radio header.
    pub const IEEE802_11: u32 = 105;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// IEEE 802.11 with radiotap header.
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    /// ARCNET with Linux-style header (with offset field).
    pub const ARCNET_LINUX: u32 = 129;
    /// DLT_USER2. Apple's libpcap defines DLT_PKTAP as DLT_USER2 on Darwin, so captures written there carry this
    /// value; Wireshark and tcpdump read it as PKTAP too. It is decoded as PKTAP only when the frame starts with a
    /// plausible PKTAP header (see [`PKTAP`]); otherwise it is an unsupported link type.
    pub const USER2_PKTAP: u32 = 149;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux netfilter NFLOG: TLV header, the packet in TLV type 9.
    pub const NFLOG: u32 = 239;
    /// Apple PKTAP: per-packet metadata header naming the DLT of the packet that follows it.
    pub const PKTAP: u32 = 258;
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
    /// Anything else carried by IP (ICMP, ICMPv6, SCTP, IPv6 fragments, unknown protocols): the IP protocol
    /// number and the IP payload as captured, to be searched as raw bytes.
    Other(u8, &'a [u8]),
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
    /// The IP packet is a fragment (not reassembled); for a decapsulated packet, also set when the outer packet
    /// was the first fragment the tunnel was read from.
    pub fragment: bool,
    /// For an IPv4 fragment (the outermost IP header): its header and payload, for reassembly.
    pub fragment_ip: Option<Fragment<'a>>,
    /// The packet was decapsulated from this tunnel (the outermost one when nested), e.g. `"GRE"`, `"VXLAN"`.
    pub tunnel: Option<&'static str>,
    /// IPv4 options or IPv6 extension headers (with their options) of the packet, as captured.
    pub ip_options: IpOptions<'a>,
    /// The IP header's payload was not decapsulated because [`MAX_DEPTH`] encapsulations were already undone.
    pub depth_exceeded: bool,
}

/// IPv4 options (copied: at most 40 bytes) or IPv6 extension headers (borrowed).
#[derive(Debug, Clone, Copy)]
pub struct IpOptions<'a> {
    v4: [u8; 40],
    v4_len: u8,
    v6: &'a [u8],
}

impl Default for IpOptions<'_> {
    fn default() -> Self {
        IpOptions {
            v4: [0; 40],
            v4_len: 0,
            v6: &[],
        }
    }
}

impl IpOptions<'_> {
    /// The option / extension header bytes; empty when the packet has none.
    pub fn bytes(&self) -> &[u8] {
        if self.v4_len > 0 {
            &self.v4[..usize::from(self.v4_len).min(40)]
        } else {
            self.v6
        }
    }
}

/// An IPv4 fragment: a copy of its header (options included) and its captured payload.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    header: [u8; 60],
    header_len: u8,
    /// The fragment's payload.
    pub payload: &'a [u8],
}

impl Fragment<'_> {
    /// The IPv4 header bytes.
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len).min(60)]
    }
}

/// What a frame turned out to be.
#[derive(Debug, Clone, Copy)]
// `Ip` carries copies of the IPv4 header and options (so the analysis needs no borrow of the parser's slices); it is
// returned by value once per frame, never stored.
#[allow(clippy::large_enum_variant)]
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
    decode_link(link_type, data, 0)
}

fn decode_link(link_type: u32, data: &[u8], depth: u8) -> Outcome<'_> {
    match link_type {
        link::ETHERNET => ethernet(data, depth),
        link::LINUX_SLL => {
            // packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
            match (be16(data, 14), data.get(16..)) {
                (Some(proto), Some(rest)) => ether_type(proto, rest, depth),
                _ => Outcome::Malformed,
            }
        }
        link::LINUX_SLL2 => {
            // protocol(2) reserved(2) ifindex(4) ARPHRD(2) pkttype(1) addr len(1) addr(8)
            match (be16(data, 0), data.get(20..)) {
                (Some(proto), Some(rest)) => ether_type(proto, rest, depth),
                _ => Outcome::Malformed,
            }
        }
        link::NULL | link::LOOP => loopback(link_type, data, depth),
        l if link::RAW_ALIASES.contains(&l) || l == link::IPV4 || l == link::IPV6 => {
            ip(data, depth)
        }
        link::PKTAP => pktap(data, depth).unwrap_or(Outcome::Malformed),
        link::USER2_PKTAP => pktap(data, depth).unwrap_or(Outcome::UnsupportedLink),
        link::NFLOG => nflog(data, depth),
        link::ARCNET_BSD => arcnet(data, false, true, depth),
        link::ARCNET_LINUX => arcnet(data, true, false, depth),
        link::PPP => ppp(data, depth),
        link::PPP_HDLC => match data.first() {
            // Cisco HDLC address bytes (unicast / broadcast) under the PPP-serial link type.
            Some(0x0f | 0x8f) => c_hdlc(data, depth),
            _ => ppp(data, depth),
        },
        link::PPP_ETHER => pppoe_session(data, depth),
        link::C_HDLC => c_hdlc(data, depth),
        link::IEEE802_11 => wlan(data, depth),
        link::IEEE802_11_RADIOTAP => {
            // version(1) pad(1) length(2, little endian) present flags...
            match le16(data, 2).and_then(|n| data.get(usize::from(n)..)) {
                Some(rest) => wlan(rest, depth),
                None => Outcome::Malformed,
            }
        }
        _ => Outcome::UnsupportedLink,
    }
}

/// BSD (host byte order) and OpenBSD (network byte order) loopback: 4-byte address family.
fn loopback(link_type: u32, data: &[u8], depth: u8) -> Outcome<'_> {
    let (Some(fam), Some(rest)) = (data.get(0..4), data.get(4..)) else {
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
    match family {
        2 | 24 | 28 | 30 => ip(rest, depth),
        _ => Outcome::NonIp("loopback non-IP"),
    }
}

/// An IPv4 or IPv6 packet (version taken from the first nibble).
fn ip(data: &[u8], depth: u8) -> Outcome<'_> {
    match LaxSlicedPacket::from_ip(data) {
        Ok(p) => from_sliced(&p, depth),
        Err(_) => Outcome::Malformed,
    }
}

/// An Ethernet II frame; PPPoE sessions and MPLS, which etherparse leaves undecoded, are followed here.
fn ethernet(data: &[u8], depth: u8) -> Outcome<'_> {
    match LaxSlicedPacket::from_ethernet(data) {
        Ok(p) => {
            if p.net.is_none() && p.stop_err.is_none() {
                // Only non-IP frames reach here: find the innermost EtherType (after VLAN tags).
                let inner = match p.link_exts.last() {
                    Some(LaxLinkExtSlice::Vlan(v)) => Some(v.payload()),
                    Some(LaxLinkExtSlice::Macsec(_)) => None,
                    None => p.link.as_ref().and_then(|l| l.ether_payload()),
                };
                if let Some(e) = inner {
                    if let Some(out) = ether_type_extra(e.ether_type.0, e.payload, depth) {
                        return out;
                    }
                }
            }
            from_sliced(&p, depth)
        }
        Err(_) => Outcome::Malformed,
    }
}

/// A frame body identified by an EtherType.
fn ether_type(proto: u16, rest: &[u8], depth: u8) -> Outcome<'_> {
    if let Some(out) = ether_type_extra(proto, rest, depth) {
        return out;
    }
    from_sliced(
        &LaxSlicedPacket::from_ether_type(EtherType(proto), rest),
        depth,
    )
}

/// EtherTypes etherparse does not decode: PPPoE and MPLS.
fn ether_type_extra(proto: u16, rest: &[u8], depth: u8) -> Option<Outcome<'_>> {
    match proto {
        0x8864 => Some(pppoe_session(rest, depth)),
        0x8863 => Some(Outcome::NonIp("PPPoE discovery")),
        0x8847 | 0x8848 => Some(mpls(rest, depth)),
        _ => None,
    }
}

/// An MPLS label stack; the payload after the bottom-of-stack label is decoded when it is IP.
fn mpls(data: &[u8], depth: u8) -> Outcome<'_> {
    let mut off = 0usize;
    loop {
        let Some(label) = data.get(off..off + 4) else {
            return Outcome::Malformed;
        };
        off += 4;
        if label[2] & 1 == 1 {
            break;
        }
    }
    let rest = data.get(off..).unwrap_or_default();
    match rest.first().map(|b| b >> 4) {
        Some(4 | 6) => ip(rest, depth),
        _ => Outcome::NonIp("MPLS non-IP"),
    }
}

/// PPPoE session stage header (RFC 2516) followed by a PPP protocol field.
fn pppoe_session(data: &[u8], depth: u8) -> Outcome<'_> {
    // ver/type(1) code(1) session id(2) length(2)
    match (data.first(), data.get(1), data.get(6..)) {
        (Some(0x11), Some(0), Some(rest)) => ppp(rest, depth),
        (Some(_), Some(_), Some(_)) => Outcome::NonIp("PPPoE"),
        _ => Outcome::Malformed,
    }
}

/// PPP: optional HDLC address/control bytes (0xff 0x03), a 1- or 2-byte protocol field, the packet.
fn ppp(data: &[u8], depth: u8) -> Outcome<'_> {
    let d = match data {
        [0xff, 0x03, rest @ ..] => rest,
        _ => data,
    };
    let (proto, rest) = match d {
        // Protocol field compression: an odd first byte is the whole protocol number.
        [p, rest @ ..] if p & 1 == 1 => (u16::from(*p), rest),
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return Outcome::Malformed,
    };
    match proto {
        0x0021 | 0x0057 => ip(rest, depth),
        0x0281 | 0x0283 => mpls(rest, depth),
        _ => Outcome::NonIp("PPP"),
    }
}

/// Cisco HDLC: address(1) control(1) EtherType(2).
fn c_hdlc(data: &[u8], depth: u8) -> Outcome<'_> {
    match (be16(data, 2), data.get(4..)) {
        (Some(proto), Some(rest)) => ether_type(proto, rest, depth),
        _ => Outcome::Malformed,
    }
}

/// An IEEE 802.11 frame: data frames carrying LLC/SNAP are decoded by their EtherType.
fn wlan(data: &[u8], depth: u8) -> Outcome<'_> {
    let (Some(&fc0), Some(&fc1)) = (data.first(), data.get(1)) else {
        return Outcome::Malformed;
    };
    let (kind, subtype) = ((fc0 >> 2) & 3, fc0 >> 4);
    if kind != 2 {
        return Outcome::NonIp("802.11 management/control");
    }
    if subtype & 0x4 != 0 {
        return Outcome::NonIp("802.11 null data");
    }
    if fc1 & 0x40 != 0 {
        return Outcome::NonIp("802.11 protected");
    }
    let mut len = 24usize;
    if fc1 & 0x03 == 0x03 {
        len += 6; // fourth address (WDS)
    }
    if subtype & 0x8 != 0 {
        // QoS control; its A-MSDU bit means the body is a list of subframes, not LLC.
        if data.get(len).is_some_and(|qos| qos & 0x80 != 0) {
            return Outcome::NonIp("802.11 A-MSDU");
        }
        len += 2;
        if fc1 & 0x80 != 0 {
            len += 4; // HT control
        }
    }
    let Some(body) = data.get(len..) else {
        return Outcome::Malformed;
    };
    match body {
        [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00 | 0xf8, t0, t1, rest @ ..] => {
            ether_type(u16::from_be_bytes([*t0, *t1]), rest, depth)
        }
        _ => Outcome::NonIp("802.11 non-SNAP"),
    }
}

/// Apple PKTAP: little-endian header length(4) record type(4) DLT(4) ... then the packet of that DLT.
/// `None` when the header is not a plausible PKTAP header (too short, unknown record type, beyond the frame).
fn pktap(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    const MIN_HEADER: u32 = 108;
    const RECORD_NONE: u32 = 0;
    const RECORD_PACKET: u32 = 1;
    let (hdr_len, record, dlt) = (le32(data, 0)?, le32(data, 4)?, le32(data, 8)?);
    if hdr_len < MIN_HEADER || record > RECORD_PACKET || depth >= MAX_DEPTH {
        return None;
    }
    let rest = data.get(usize::try_from(hdr_len).ok()?..)?;
    if record == RECORD_NONE {
        return Some(Outcome::NonIp("PKTAP non-packet record"));
    }
    // DLT values equal LINKTYPE values for everything PKTAP carries, except the raw-IP DLTs, which
    // `RAW_ALIASES` covers.
    Some(match decode_link(dlt, rest, depth + 1) {
        Outcome::UnsupportedLink => Outcome::NonIp("PKTAP with unsupported DLT"),
        other => other,
    })
}

/// Linux NFLOG: family(1) version(1) resource id(2), then TLVs (length and type in the capturing host's byte
/// order, padded to 4 bytes); TLV type 9 holds the packet.
fn nflog(data: &[u8], depth: u8) -> Outcome<'_> {
    const NFULA_PAYLOAD: u16 = 9;
    let Some(&family) = data.first() else {
        return Outcome::Malformed;
    };
    // The byte order is guessed from the first TLV's type: types are small numbers (with two flag bits on top).
    let little = match (le16(data, 6), be16(data, 6)) {
        (Some(le), Some(be)) => (le & 0x3fff) <= 0xff || (be & 0x3fff) > 0xff,
        _ => return Outcome::Malformed,
    };
    let rd = |at: usize| {
        if little {
            le16(data, at)
        } else {
            be16(data, at)
        }
    };
    let mut off = 4usize;
    while let (Some(len), Some(kind)) = (rd(off), rd(off + 2)) {
        let len = usize::from(len);
        if len < 4 {
            return Outcome::Malformed;
        }
        if kind & 0x3fff == NFULA_PAYLOAD {
            let start = off + 4;
            // Lax: a truncated capture keeps what it has.
            let end = (off + len).min(data.len());
            let Some(payload) = data.get(start..end) else {
                return Outcome::Malformed;
            };
            return match (family, payload.first().map(|b| b >> 4)) {
                (2 | 10, _) | (_, Some(4 | 6)) => ip(payload, depth),
                _ => Outcome::NonIp("NFLOG non-IP"),
            };
        }
        off += (len + 3) & !3;
    }
    Outcome::NonIp("NFLOG without payload")
}

/// ARCNET (RFC 1051 and RFC 1201 framing). `has_offset`: the Linux header's 2-byte offset field follows the
/// addresses; `has_exception`: BSD headers may carry an RFC 1201 exception frame header.
fn arcnet(data: &[u8], has_offset: bool, has_exception: bool, depth: u8) -> Outcome<'_> {
    const IP_1051: u8 = 0xf0;
    const ARP_1051: u8 = 0xf1;
    const IP_1201: u8 = 0xd4;
    const ARP_1201: u8 = 0xd5;
    const RARP_1201: u8 = 0xd6;
    const IPV6: u8 = 0xc4;
    const DIAGNOSE: u8 = 0x80;
    const BACNET: u8 = 0xcd;
    let mut off = if has_offset { 4 } else { 2 };
    let Some(&proto) = data.get(off) else {
        return Outcome::Malformed;
    };
    off += 1;
    match proto {
        IP_1051 | ARP_1051 | DIAGNOSE | BACNET => {}
        _ => {
            // RFC 1201: split flag(1) sequence(2), after an exception header when the flag is 0xff.
            let Some(mut split) = data.get(off).copied() else {
                return Outcome::Malformed;
            };
            if has_exception && split == 0xff {
                off += 4;
                let Some(&s) = data.get(off) else {
                    return Outcome::Malformed;
                };
                split = s;
            }
            off += 3;
            if split != 0 && split & 1 == 0 {
                // A later fragment of a split packet: no header to decode.
                return Outcome::NonIp("ARCNET fragment");
            }
        }
    }
    let Some(rest) = data.get(off..) else {
        return Outcome::Malformed;
    };
    match proto {
        IP_1051 | IP_1201 | IPV6 => ip(rest, depth),
        ARP_1051 | ARP_1201 | RARP_1201 => Outcome::NonIp("ARP"),
        _ => Outcome::NonIp("ARCNET non-IP"),
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn le16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>, depth: u8) -> Outcome<'a> {
    let mut fragment_ip = None;
    let mut ip_options = IpOptions::default();
    let (src, dst, payload, expected, first_fragment) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            if v4.payload().fragmented {
                let hs = h.slice();
                let mut header = [0u8; 60];
                let len = hs.len().min(60);
                header[..len].copy_from_slice(&hs[..len]);
                fragment_ip = Some(Fragment {
                    header,
                    header_len: len as u8,
                    payload: v4.payload().payload,
                });
            }
            let o = h.options();
            let n = o.len().min(40);
            ip_options.v4[..n].copy_from_slice(&o[..n]);
            ip_options.v4_len = n as u8;
            let hdr_len = h.slice().len() + v4.extensions().auth.map_or(0, |a| a.slice().len());
            let expected = usize::from(h.total_len()).saturating_sub(hdr_len);
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                expected,
                h.more_fragments() && h.fragments_offset().value() == 0,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            ip_options.v6 = v6.extensions().slice();
            let expected =
                usize::from(h.payload_length()).saturating_sub(v6.extensions().slice().len());
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
                expected,
                false,
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
        _ => Transport::Other(payload.ip_number.0, payload.payload),
    };
    let mut outer = Decoded {
        src,
        dst,
        transport,
        missing,
        fragment: payload.fragmented,
        fragment_ip,
        tunnel: None,
        ip_options,
        depth_exceeded: false,
    };
    if depth < MAX_DEPTH {
        let inner = match transport {
            Transport::Tcp(..) => None,
            Transport::Udp(sp, dp, data) => udp_tunnel(sp, dp, data, depth + 1),
            Transport::Other(n, _) if !payload.fragmented => {
                ip_tunnel(n, payload.payload, depth + 1)
            }
            // The first fragment of a UDP datagram carries the tunnel header and usually most of the inner
            // packet; what follows in later fragments is reported as missing by the inner packet's lengths.
            Transport::Other(17, _) if first_fragment => {
                payload.payload.get(8..).and_then(|data| {
                    udp_tunnel(
                        be16(payload.payload, 0)?,
                        be16(payload.payload, 2)?,
                        data,
                        depth + 1,
                    )
                })
            }
            Transport::Other(..) => None,
        };
        if let Some((name, Outcome::Ip(mut d))) = inner {
            d.tunnel = Some(name);
            d.fragment |= outer.fragment;
            if outer.fragment_ip.is_some() {
                d.fragment_ip = outer.fragment_ip;
            }
            return Outcome::Ip(d);
        }
    } else {
        outer.depth_exceeded = match transport {
            Transport::Udp(sp, dp, data) => udp_tunnel(sp, dp, data, depth).is_some(),
            Transport::Other(n, _) => matches!(n, 4 | 41 | 47),
            Transport::Tcp(..) => false,
        };
    }
    Outcome::Ip(outer)
}

/// Tunnels identified by the IP protocol number of a complete (unfragmented) IP payload.
fn ip_tunnel(proto: u8, data: &[u8], depth: u8) -> Option<(&'static str, Outcome<'_>)> {
    match proto {
        4 => Some(("IP-in-IP", ip(data, depth))),
        41 => Some(("IPv6-in-IP", ip(data, depth))),
        47 => Some(("GRE", gre(data, depth)?)),
        _ => None,
    }
}

/// Tunnels identified by a UDP port (the destination port is tried first).
fn udp_tunnel(sp: u16, dp: u16, data: &[u8], depth: u8) -> Option<(&'static str, Outcome<'_>)> {
    let by_port = |port: u16| -> Option<(&'static str, Outcome<'_>)> {
        match port {
            4754 => Some(("GRE-in-UDP", gre(data, depth)?)),
            4789 => Some(("VXLAN", vxlan(data, depth)?)),
            4790 => Some(("VXLAN-GPE", vxlan_gpe(data, depth)?)),
            6081 => Some(("Geneve", geneve(data, depth)?)),
            2152 => Some(("GTP-U", gtp_u(data, depth)?)),
            5072 => Some(("AYIYA", ayiya(data, depth)?)),
            3544 => Some(("Teredo", teredo(data, depth)?)),
            _ => None,
        }
    };
    match by_port(dp) {
        Some(hit @ (_, Outcome::Ip(_))) => Some(hit),
        _ if sp != dp => by_port(sp),
        other => other,
    }
}

/// GRE (RFC 2784/2890, RFC 1701 routing) and PPTP's enhanced GRE (RFC 2637, version 1).
fn gre(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    const CSUM: u16 = 0x8000;
    const ROUTING: u16 = 0x4000;
    const KEY: u16 = 0x2000;
    const SEQ: u16 = 0x1000;
    const ACK: u16 = 0x0080;
    let flags = be16(data, 0)?;
    let proto = be16(data, 2)?;
    let mut off = 4usize;
    match flags & 0x7 {
        0 => {
            if flags & (CSUM | ROUTING) != 0 {
                off += 4; // checksum + offset
            }
            if flags & KEY != 0 {
                off += 4;
            }
            if flags & SEQ != 0 {
                off += 4;
            }
            if flags & ROUTING != 0 {
                // Source route entries: address family(2) offset(1) length(1) data, until a null entry.
                loop {
                    let family = be16(data, off)?;
                    let len = usize::from(*data.get(off + 3)?);
                    off += 4 + len;
                    if family == 0 && len == 0 {
                        break;
                    }
                }
            }
        }
        1 => {
            // Enhanced GRE: key (payload length + call id) always, sequence and acknowledgement optional.
            if proto != 0x880b || flags & KEY == 0 {
                return None;
            }
            off += 4;
            if flags & SEQ != 0 {
                off += 4;
            }
            if flags & ACK != 0 {
                off += 4;
            }
        }
        _ => return None,
    }
    let payload = data.get(off..)?;
    Some(match proto {
        0x6558 => ethernet(payload, depth),
        0x880b => {
            if payload.is_empty() {
                // PPTP acknowledgement without payload.
                return None;
            }
            ppp(payload, depth)
        }
        // ERSPAN type II carries an 8-byte header (the sequence bit is set); type I has none.
        0x88be => ethernet(payload.get(if flags & SEQ != 0 { 8 } else { 0 }..)?, depth),
        0x22eb => {
            // ERSPAN type III: 12-byte header, 8 more with the optional platform sub-header; frame type 0 is
            // Ethernet.
            let (b10, b11) = (*payload.get(10)?, *payload.get(11)?);
            if (b10 >> 2) & 0x1f != 0 {
                return None;
            }
            ethernet(payload.get(if b11 & 1 != 0 { 20 } else { 12 }..)?, depth)
        }
        // Aruba access points tunnel raw 802.11 frames with these protocol types.
        p if (0x8200..=0x8370).contains(&p) && p & 0xf == 0 => wlan(payload, depth),
        p => ether_type(p, payload, depth),
    })
}

/// VXLAN (RFC 7348): flags(1, I bit 0x08) reserved(3) VNI(3) reserved(1), then Ethernet.
fn vxlan(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    if data.first()? & 0x08 == 0 {
        return None;
    }
    Some(ethernet(data.get(8..)?, depth))
}

/// VXLAN-GPE: like VXLAN, with a next-protocol byte (1 IPv4, 2 IPv6, 3 Ethernet) when the P bit is set.
fn vxlan_gpe(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    let flags = *data.first()?;
    let next = if flags & 0x04 != 0 { *data.get(3)? } else { 3 };
    let rest = data.get(8..)?;
    match next {
        1 | 2 => Some(ip(rest, depth)),
        3 => Some(ethernet(rest, depth)),
        _ => None,
    }
}

/// Geneve (RFC 8926): version/option length(1) flags(1) protocol type(2) VNI(3) reserved(1) options.
fn geneve(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    let b0 = *data.first()?;
    if b0 >> 6 != 0 {
        return None;
    }
    let len = 8 + usize::from(b0 & 0x3f) * 4;
    let proto = be16(data, 2)?;
    let rest = data.get(len..)?;
    Some(match proto {
        0x6558 => ethernet(rest, depth),
        p => ether_type(p, rest, depth),
    })
}

/// GTP-U (3GPP TS 29.281) G-PDU: version 1, optional sequence/N-PDU/extension headers, then IPv4 or IPv6.
fn gtp_u(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    const G_PDU: u8 = 0xff;
    let flags = *data.first()?;
    // Version 1, protocol type GTP.
    if flags >> 5 != 1 || flags & 0x10 == 0 || *data.get(1)? != G_PDU {
        return None;
    }
    let mut off = 8usize;
    if flags & 0x07 != 0 {
        // sequence(2) N-PDU number(1) next extension header type(1)
        let mut next = *data.get(11)?;
        off = 12;
        while next != 0 {
            // Extension header: length in 4-byte units (incl. itself), content, next type as last byte.
            let len = usize::from(*data.get(off)?) * 4;
            if len == 0 {
                return None;
            }
            next = *data.get(off + len - 1)?;
            off += len;
        }
    }
    let rest = data.get(off..)?;
    match rest.first()? >> 4 {
        4 | 6 => Some(ip(rest, depth)),
        _ => None,
    }
}

/// AYIYA: identity length/type(1) signature length/hash(1) auth method/opcode(1) next header(1) epoch(4),
/// identity, signature; forwarded packets (opcode 1) carry IPv6 (41) or IPv4 (4).
fn ayiya(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    let (b0, b1, b2, next) = (*data.first()?, *data.get(1)?, *data.get(2)?, *data.get(3)?);
    if b2 & 0x0f != 1 || !matches!(next, 4 | 41) {
        return None;
    }
    let len = 8 + (1usize << (b0 >> 4)) + usize::from(b1 >> 4) * 4;
    Some(ip(data.get(len..)?, depth))
}

/// Teredo (RFC 4380): optional authentication and origin indication headers, then IPv6.
fn teredo(data: &[u8], depth: u8) -> Option<Outcome<'_>> {
    let mut rest = data;
    if let [0x00, 0x01, id_len, auth_len, ..] = rest {
        // indicator(2) id len(1) auth len(1) id auth nonce(8) confirmation(1)
        let len = 4 + usize::from(*id_len) + usize::from(*auth_len) + 9;
        rest = rest.get(len..)?;
    }
    if let [0x00, 0x00, ..] = rest {
        rest = rest.get(8..)?;
    }
    if rest.first()? >> 4 != 6 {
        return None;
    }
    Some(ip(rest, depth))
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

    /// Inner IPv4/UDP DNS-ish packet (no link header).
    fn inner_ipv4_udp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([192, 168, 1, 1], [192, 168, 1, 53], 64)
            .udp(5555, 53)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    fn inner_ipv6_tcp(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6([0x20; 16], [0x30; 16], 64)
            .tcp(41000, 80, 7, 1024)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    fn inner_ethernet(ip: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4];
        v.extend_from_slice(if ip[0] >> 4 == 6 {
            &[0x86, 0xdd]
        } else {
            &[0x08, 0x00]
        });
        v.extend_from_slice(ip);
        v
    }

    /// Outer Ethernet/IPv4/UDP frame with the given ports around `payload`.
    fn outer_udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(sp, dp)
            .write(&mut v, payload)
            .expect("build");
        v
    }

    /// Outer Ethernet/IPv4 frame with the given IP protocol around `payload`.
    fn outer_ip(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .write(&mut v, etherparse::IpNumber(proto), payload)
            .expect("build");
        v
    }

    fn expect_ip(out: Outcome<'_>) -> Decoded<'_> {
        match out {
            Outcome::Ip(d) => d,
            other => panic!("not IP: {other:?}"),
        }
    }

    /// Asserts the frame decodes to the inner UDP datagram of [`inner_ipv4_udp`] via `tunnel`.
    fn assert_inner_udp(lt: u32, frame: &[u8], tunnel: Option<&str>, payload: &[u8]) {
        let d = expect_ip(decode(lt, frame));
        assert_eq!(d.src, IpAddr::from([192, 168, 1, 1]), "{tunnel:?}");
        assert_eq!(d.tunnel, tunnel);
        match d.transport {
            Transport::Udp(5555, 53, p) => assert_eq!(p, payload),
            other => panic!("{tunnel:?}: {other:?}"),
        }
    }

    fn assert_inner_tcp6(frame: &[u8], tunnel: &str, payload: &[u8]) {
        let d = expect_ip(decode(link::ETHERNET, frame));
        assert_eq!(d.src, IpAddr::from([0x20u8; 16]), "{tunnel}");
        assert_eq!(d.tunnel, Some(tunnel));
        match d.transport {
            Transport::Tcp(t, p) => {
                assert_eq!((t.src_port, t.dst_port, t.seq), (41000, 80, 7));
                assert_eq!(p, payload);
            }
            other => panic!("{tunnel}: {other:?}"),
        }
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
        assert_eq!(d.tunnel, None);
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

    fn pktap_header(dlt: u32) -> Vec<u8> {
        let mut h = vec![0u8; 108];
        h[0..4].copy_from_slice(&108u32.to_le_bytes());
        h[4..8].copy_from_slice(&1u32.to_le_bytes());
        h[8..12].copy_from_slice(&dlt.to_le_bytes());
        h[12..15].copy_from_slice(b"en0");
        h
    }

    #[test]
    fn pktap_and_apple_user2_pktap() {
        let ip = inner_ipv4_udp(b"q");
        let mut f = pktap_header(1);
        f.extend_from_slice(&inner_ethernet(&ip));
        assert_inner_udp(link::PKTAP, &f, None, b"q");
        assert_inner_udp(link::USER2_PKTAP, &f, None, b"q");
        // DLT_RAW inside PKTAP.
        let mut raw = pktap_header(12);
        raw.extend_from_slice(&ip);
        assert_inner_udp(link::PKTAP, &raw, None, b"q");
        // USER2 without a PKTAP header stays unsupported; a broken PKTAP header is malformed.
        assert!(matches!(
            decode(link::USER2_PKTAP, &ip),
            Outcome::UnsupportedLink
        ));
        assert!(matches!(decode(link::PKTAP, &f[..50]), Outcome::Malformed));
        // A record without packet; an unknown record type is not a PKTAP header.
        let mut other = f.clone();
        other[4] = 0;
        assert!(matches!(decode(link::PKTAP, &other), Outcome::NonIp(_)));
        other[4] = 2;
        assert!(matches!(decode(link::PKTAP, &other), Outcome::Malformed));
        assert!(matches!(
            decode(link::USER2_PKTAP, &other),
            Outcome::UnsupportedLink
        ));
    }

    fn nflog_tlv(v: &mut Vec<u8>, kind: u16, value: &[u8], big: bool) {
        let len = u16::try_from(4 + value.len()).expect("small");
        if big {
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&kind.to_be_bytes());
        } else {
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&kind.to_le_bytes());
        }
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
    }

    #[test]
    fn nflog_payload_tlv_either_byte_order() {
        let ip = inner_ipv4_udp(b"hello");
        for big in [false, true] {
            let mut f = vec![2u8, 0, 0, 1];
            nflog_tlv(&mut f, 1, &[0x08, 0x00, 1, 0], big); // packet header
            nflog_tlv(&mut f, 10, b"prefix!", big); // prefix (padded)
            nflog_tlv(&mut f, 9, &ip, big);
            assert_inner_udp(link::NFLOG, &f, None, b"hello");
        }
        let mut none = vec![2u8, 0, 0, 1];
        nflog_tlv(&mut none, 10, b"x", false);
        assert!(matches!(decode(link::NFLOG, &none), Outcome::NonIp(_)));
        let zero_len = [2u8, 0, 0, 1, 0, 0, 9, 0];
        assert!(matches!(decode(link::NFLOG, &zero_len), Outcome::Malformed));
    }

    #[test]
    fn arcnet_rfc1051_and_rfc1201_both_headers() {
        let ip = inner_ipv4_udp(b"arc");
        // Linux header: src dst offset(2) protocol [split seq(2)]
        let mut l1051 = vec![0xbe, 0x50, 0xab, 0x08, 0xf0];
        l1051.extend_from_slice(&ip);
        assert_inner_udp(link::ARCNET_LINUX, &l1051, None, b"arc");
        let mut l1201 = vec![0xbe, 0x50, 0xa8, 0xe7, 0xd4, 0x00, 0x01, 0x66];
        l1201.extend_from_slice(&ip);
        assert_inner_udp(link::ARCNET_LINUX, &l1201, None, b"arc");
        // BSD header: src dst protocol [split seq(2)], with an exception frame header.
        let mut b1051 = vec![0xbe, 0x50, 0xf0];
        b1051.extend_from_slice(&ip);
        assert_inner_udp(link::ARCNET_BSD, &b1051, None, b"arc");
        let mut bexc = vec![0xbe, 0x50, 0xd4, 0xff, 0xff, 0xff, 0xd4, 0x00, 0x00, 0x07];
        bexc.extend_from_slice(&ip);
        assert_inner_udp(link::ARCNET_BSD, &bexc, None, b"arc");
        // ARP and later fragments are not IP.
        let arp = [0xbe, 0x00, 0xed, 0x08, 0xf1, 0x00, 0x07, 0x08, 0x00];
        assert!(matches!(
            decode(link::ARCNET_LINUX, &arp),
            Outcome::NonIp("ARP")
        ));
        let mut frag = vec![0xbe, 0x50, 0, 0, 0xd4, 0x02, 0x00, 0x01];
        frag.extend_from_slice(&ip);
        assert!(matches!(
            decode(link::ARCNET_LINUX, &frag),
            Outcome::NonIp(_)
        ));
        assert!(matches!(
            decode(link::ARCNET_LINUX, &[0xbe, 0x50, 0, 0]),
            Outcome::Malformed
        ));
    }

    #[test]
    fn ppp_variants() {
        let ip = inner_ipv4_udp(b"ppp");
        let mut ppp_full = vec![0xff, 0x03, 0x00, 0x21];
        ppp_full.extend_from_slice(&ip);
        assert_inner_udp(link::PPP, &ppp_full, None, b"ppp");
        assert_inner_udp(link::PPP_HDLC, &ppp_full, None, b"ppp");
        let mut ppp_compressed = vec![0x21];
        ppp_compressed.extend_from_slice(&ip);
        assert_inner_udp(link::PPP, &ppp_compressed, None, b"ppp");
        let mut pppoe = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x00, 0x00, 0x21];
        pppoe.extend_from_slice(&ip);
        assert_inner_udp(link::PPP_ETHER, &pppoe, None, b"ppp");
        let mut chdlc = vec![0x0f, 0x00, 0x08, 0x00];
        chdlc.extend_from_slice(&ip);
        assert_inner_udp(link::C_HDLC, &chdlc, None, b"ppp");
        assert_inner_udp(link::PPP_HDLC, &chdlc, None, b"ppp");
        // PPPoE session inside Ethernet.
        let mut eth = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x88, 0x64];
        eth.extend_from_slice(&pppoe);
        assert_inner_udp(link::ETHERNET, &eth, None, b"ppp");
        // LCP is not IP.
        assert!(matches!(
            decode(link::PPP, &[0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]),
            Outcome::NonIp("PPP")
        ));
    }

    #[test]
    fn mpls_in_ethernet() {
        let ip = inner_ipv4_udp(b"mpls");
        let mut eth = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x88, 0x47];
        eth.extend_from_slice(&[0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]);
        eth.extend_from_slice(&ip);
        assert_inner_udp(link::ETHERNET, &eth, None, b"mpls");
        assert!(matches!(
            decode(link::ETHERNET, &eth[..20]),
            Outcome::Malformed
        ));
    }

    fn wlan_qos_data(ip: &[u8]) -> Vec<u8> {
        let mut w = vec![0x88, 0x01, 0, 0];
        w.extend_from_slice(&[7; 18]); // three addresses
        w.extend_from_slice(&[0x10, 0x00]); // sequence control
        w.extend_from_slice(&[0x00, 0x00]); // QoS control
        w.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        w.extend_from_slice(ip);
        w
    }

    #[test]
    fn wlan_and_radiotap() {
        let ip = inner_ipv4_udp(b"wifi");
        let w = wlan_qos_data(&ip);
        assert_inner_udp(link::IEEE802_11, &w, None, b"wifi");
        let mut rt = vec![0u8, 0, 8, 0, 0, 0, 0, 0];
        rt.extend_from_slice(&w);
        assert_inner_udp(link::IEEE802_11_RADIOTAP, &rt, None, b"wifi");
        let mut protected = w.clone();
        protected[1] |= 0x40;
        assert!(matches!(
            decode(link::IEEE802_11, &protected),
            Outcome::NonIp(_)
        ));
        let beacon = [0x80u8, 0, 0, 0];
        assert!(matches!(
            decode(link::IEEE802_11, &beacon),
            Outcome::NonIp(_)
        ));
    }

    #[test]
    fn gre_plain_with_key_seq_checksum() {
        let ip = inner_ipv4_udp(b"gre");
        for (flags, extra) in [(0x0000u16, 0usize), (0x2000, 4), (0x3000, 8), (0xb000, 12)] {
            let mut g = flags.to_be_bytes().to_vec();
            g.extend_from_slice(&[0x08, 0x00]);
            g.resize(g.len() + extra, 0x5a);
            g.extend_from_slice(&ip);
            assert_inner_udp(link::ETHERNET, &outer_ip(47, &g), Some("GRE"), b"gre");
        }
        // Inner IPv6 and TEB (Ethernet).
        let ip6 = inner_ipv6_tcp(b"six");
        let mut g6 = vec![0, 0, 0x86, 0xdd];
        g6.extend_from_slice(&ip6);
        assert_inner_tcp6(&outer_ip(47, &g6), "GRE", b"six");
        let mut teb = vec![0x20, 0, 0x65, 0x58, 0, 0, 0, 9];
        teb.extend_from_slice(&inner_ethernet(&ip));
        assert_inner_udp(link::ETHERNET, &outer_ip(47, &teb), Some("GRE"), b"gre");
        // Unknown GRE version: the outer packet stays.
        let bad = [0x00, 0x05, 0x08, 0x00, 0x45];
        let f = outer_ip(47, &bad);
        let d = expect_ip(decode(link::ETHERNET, &f));
        assert!(matches!(d.transport, Transport::Other(47, _)));
        assert_eq!(d.tunnel, None);
    }

    #[test]
    fn gre_pptp_enhanced_with_ppp() {
        let ip = inner_ipv4_udp(b"pptp");
        // K, S, A bits, version 1, protocol PPP; payload length + call id, sequence, ack.
        let mut g = vec![0x30, 0x81, 0x88, 0x0b, 0x00, 0x20, 0x12, 0x34];
        g.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        g.extend_from_slice(&[0xff, 0x03, 0x00, 0x21]);
        g.extend_from_slice(&ip);
        assert_inner_udp(link::ETHERNET, &outer_ip(47, &g), Some("GRE"), b"pptp");
        // Ack-only packet: no payload, outer packet stays.
        let ack = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0x12, 0x34, 0, 0, 0, 2];
        assert_eq!(
            expect_ip(decode(link::ETHERNET, &outer_ip(47, &ack))).tunnel,
            None
        );
    }

    #[test]
    fn gre_aruba_and_erspan() {
        let ip = inner_ipv4_udp(b"aruba");
        let mut a = vec![0, 0, 0x82, 0x00];
        a.extend_from_slice(&wlan_qos_data(&ip));
        assert_inner_udp(link::ETHERNET, &outer_ip(47, &a), Some("GRE"), b"aruba");
        // ERSPAN II: sequence bit, 8-byte ERSPAN header, Ethernet.
        let mut e2 = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
        e2.extend_from_slice(&[0x10, 0x01, 0, 0, 0, 0, 0, 0]);
        e2.extend_from_slice(&inner_ethernet(&ip));
        assert_inner_udp(link::ETHERNET, &outer_ip(47, &e2), Some("GRE"), b"aruba");
        // ERSPAN III with the platform sub-header (O bit).
        let mut e3 = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
        e3.extend_from_slice(&[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x01]);
        e3.extend_from_slice(&[0; 8]);
        e3.extend_from_slice(&inner_ethernet(&ip));
        assert_inner_udp(link::ETHERNET, &outer_ip(47, &e3), Some("GRE"), b"aruba");
    }

    #[test]
    fn ip_in_ip_and_ipv6_in_ip() {
        let ip = inner_ipv4_udp(b"4in4");
        assert_inner_udp(link::ETHERNET, &outer_ip(4, &ip), Some("IP-in-IP"), b"4in4");
        let ip6 = inner_ipv6_tcp(b"6in4");
        assert_inner_tcp6(&outer_ip(41, &ip6), "IPv6-in-IP", b"6in4");
    }

    #[test]
    fn udp_tunnels() {
        let ip = inner_ipv4_udp(b"udp");
        let eth = inner_ethernet(&ip);
        // GRE-in-UDP.
        let mut g = vec![0, 0, 0x08, 0x00];
        g.extend_from_slice(&ip);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(50000, 4754, &g),
            Some("GRE-in-UDP"),
            b"udp",
        );
        // VXLAN.
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        vx.extend_from_slice(&eth);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(50000, 4789, &vx),
            Some("VXLAN"),
            b"udp",
        );
        // VXLAN-GPE with next protocol IPv4.
        let mut gpe = vec![0x0c, 0, 0, 1, 0, 0, 0x2a, 0];
        gpe.extend_from_slice(&ip);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(50000, 4790, &gpe),
            Some("VXLAN-GPE"),
            b"udp",
        );
        // Geneve with 8 bytes of options, inner Ethernet and inner IP.
        let mut gen = vec![0x02, 0, 0x65, 0x58, 0, 0, 1, 0];
        gen.extend_from_slice(&[0x01, 0x02, 0x03, 0x01, 9, 9, 9, 9]);
        gen.extend_from_slice(&eth);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(50000, 6081, &gen),
            Some("Geneve"),
            b"udp",
        );
        let mut gen_ip = vec![0x00, 0, 0x08, 0x00, 0, 0, 1, 0];
        gen_ip.extend_from_slice(&ip);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(50000, 6081, &gen_ip),
            Some("Geneve"),
            b"udp",
        );
        // GTP-U plain and with sequence number and a PDU session container extension header.
        let mut gtp = vec![0x30, 0xff, 0, 0, 0, 0, 0, 1];
        gtp.extend_from_slice(&ip);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(2152, 2152, &gtp),
            Some("GTP-U"),
            b"udp",
        );
        let mut gtp_ext = vec![0x36, 0xff, 0, 0, 0, 0, 0, 1, 0, 7, 0, 0x85];
        gtp_ext.extend_from_slice(&[1, 0x10, 0x01, 0x00]);
        gtp_ext.extend_from_slice(&ip);
        assert_inner_udp(
            link::ETHERNET,
            &outer_udp(2152, 5906, &gtp_ext),
            Some("GTP-U"),
            b"udp",
        );
        // AYIYA: 16-byte identity, 20-byte signature, opcode forward, next header IPv6.
        let ip6 = inner_ipv6_tcp(b"ayiya");
        let mut ay = vec![0x41, 0x52, 0x11, 41, 0, 0, 0, 0];
        ay.extend_from_slice(&[0x11; 16]);
        ay.extend_from_slice(&[0x22; 20]);
        ay.extend_from_slice(&ip6);
        assert_inner_tcp6(&outer_udp(5072, 5072, &ay), "AYIYA", b"ayiya");
        // AYIYA heartbeat: not a tunnelled packet.
        let mut hb = ay.clone();
        hb[2] = 0x10;
        hb[3] = 59;
        assert_eq!(
            expect_ip(decode(link::ETHERNET, &outer_udp(5072, 5072, &hb))).tunnel,
            None
        );
        // Teredo with origin indication.
        let mut te = vec![0x00, 0x00, 0xfe, 0xdc, 1, 2, 3, 4];
        te.extend_from_slice(&ip6);
        assert_inner_tcp6(&outer_udp(3544, 40000, &te), "Teredo", b"ayiya");
    }

    #[test]
    fn non_tunnel_on_tunnel_port_stays_outer() {
        // A DNS query from source port 4789: not VXLAN (no I flag), so it stays what it is.
        let f = outer_udp(4789, 53, &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0]);
        let d = expect_ip(decode(link::ETHERNET, &f));
        assert!(matches!(d.transport, Transport::Udp(4789, 53, _)));
        assert_eq!(d.tunnel, None);
    }

    #[test]
    fn nested_tunnels_report_outermost_and_are_bounded() {
        let ip = inner_ipv4_udp(b"deep");
        // VXLAN in Geneve (inner IP) in GRE.
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        vx.extend_from_slice(&inner_ethernet(&ip));
        let mut mid = Vec::new();
        PacketBuilder::ipv4([172, 16, 0, 1], [172, 16, 0, 2], 64)
            .udp(1, 4789)
            .write(&mut mid, &vx)
            .expect("build");
        let mut gen = vec![0x00, 0, 0x08, 0x00, 0, 0, 1, 0];
        gen.extend_from_slice(&mid);
        let mut mid2 = Vec::new();
        PacketBuilder::ipv4([172, 16, 1, 1], [172, 16, 1, 2], 64)
            .udp(1, 6081)
            .write(&mut mid2, &gen)
            .expect("build");
        let mut g = vec![0, 0, 0x08, 0x00];
        g.extend_from_slice(&mid2);
        assert_inner_udp(link::ETHERNET, &outer_ip(47, &g), Some("GRE"), b"deep");

        // IP-in-IP nested deeper than MAX_DEPTH stops decapsulating at the bound.
        let mut pkt = ip.clone();
        for _ in 0..20 {
            let mut v = Vec::new();
            PacketBuilder::ipv4([9, 9, 9, 9], [8, 8, 8, 8], 64)
                .write(&mut v, etherparse::IpNumber(4), &pkt)
                .expect("build");
            pkt = v;
        }
        let d = expect_ip(decode(link::IPV4, &pkt));
        assert_eq!(d.tunnel, Some("IP-in-IP"));
        assert!(matches!(d.transport, Transport::Other(4, _)));
        assert_eq!(d.src, IpAddr::from([9, 9, 9, 9]));
    }

    #[test]
    fn truncated_tunnel_reports_inner_missing() {
        let ip6 = inner_ipv6_tcp(&[b'y'; 200]);
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 0x2a, 0];
        vx.extend_from_slice(&inner_ethernet(&ip6));
        let f = outer_udp(50000, 4789, &vx);
        let d = expect_ip(decode(link::ETHERNET, &f[..f.len() - 50]));
        assert_eq!(d.tunnel, Some("VXLAN"));
        let Transport::Tcp(_, p) = d.transport else {
            panic!("not tcp")
        };
        assert_eq!((p.len(), d.missing), (150, 50));
    }

    #[test]
    fn first_fragment_of_gtp_is_decapsulated() {
        let ip = inner_ipv4_udp(&[b'z'; 100]);
        let mut gtp = vec![0x30, 0xff, 0, 0, 0, 0, 0, 1];
        gtp.extend_from_slice(&ip);
        let mut udp = Vec::new();
        udp.extend_from_slice(&2152u16.to_be_bytes());
        udp.extend_from_slice(&2152u16.to_be_bytes());
        udp.extend_from_slice(&u16::try_from(8 + gtp.len()).expect("small").to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&gtp);
        // First fragment: 80 bytes of the UDP datagram, more-fragments set.
        let first = &udp[..80];
        let mut h = etherparse::Ipv4Header::new(
            80,
            64,
            etherparse::IpNumber::UDP,
            [1, 1, 1, 1],
            [2, 2, 2, 2],
        )
        .expect("header");
        h.more_fragments = true;
        let mut f = Vec::new();
        h.write(&mut f).expect("write");
        f.extend_from_slice(first);
        let d = expect_ip(decode(link::IPV4, &f));
        assert_eq!(d.tunnel, Some("GTP-U"));
        assert!(d.fragment);
        let Transport::Udp(5555, 53, p) = d.transport else {
            panic!("not inner udp: {:?}", d.transport)
        };
        assert_eq!(p.len(), 80 - 8 - 8 - 28);
        assert_eq!(d.missing, 100 - u32::try_from(p.len()).expect("small"));
    }

    #[test]
    fn junk_never_panics() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 56) as u8
        };
        let links = [
            0, 1, 7, 9, 12, 50, 51, 101, 104, 105, 108, 113, 127, 129, 149, 228, 229, 239, 258,
            276, 9999,
        ];
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len).map(|_| next()).collect();
            for lt in links {
                let _ = decode(lt, &bytes);
            }
        }
        // Random bytes behind valid outer headers, so every tunnel and link parser sees junk.
        let ip_protos = [4u8, 41, 47];
        let ports = [4754u16, 4789, 4790, 6081, 2152, 5072, 3544];
        for len in 0..200 {
            let junk: Vec<u8> = (0..len).map(|_| next()).collect();
            for p in ip_protos {
                let _ = decode(link::ETHERNET, &outer_ip(p, &junk));
            }
            for port in ports {
                let _ = decode(link::ETHERNET, &outer_udp(1, port, &junk));
            }
            let mut pk = pktap_header(u32::from(next()));
            pk.extend_from_slice(&junk);
            let _ = decode(link::PKTAP, &pk);
            let mut nf = vec![2u8, 0, 0, 0];
            nf.extend_from_slice(&junk);
            let _ = decode(link::NFLOG, &nf);
            for prefix in [
                &[0x08u8, 0, 0, 0][..],
                &[0x30, 0xff, 0, 0, 0, 0, 0, 0],
                &[0x00, 0x01],
            ] {
                let mut t = prefix.to_vec();
                t.extend_from_slice(&junk);
                for port in ports {
                    let _ = decode(link::ETHERNET, &outer_udp(1, port, &t));
                }
            }
        }
    }

    #[test]
    fn unsupported_link_is_reported() {
        assert!(matches!(decode(147, b"whatever"), Outcome::UnsupportedLink));
    }
}
