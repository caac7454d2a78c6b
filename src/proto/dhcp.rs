//! DHCPv4 message parsing.
//!
//! This module owns turning one DHCPv4/BOOTP UDP payload into a [`DhcpInfo`]:
//! the fields that identify a device (client MAC, host name, client
//! identifier, vendor class, requested address, parameter request list) and
//! the message type.
//!
//! Decoding uses `dhcproto`'s lazy v4 decoder (`dhcproto::v4::borrowed`),
//! which checks the magic cookie, walks the options (joining split options
//! per RFC 3396) and decodes the few options read here. The owned decoder
//! (`dhcproto::v4::Message::decode`) is deliberately not used: it stops at
//! the first option it cannot decode, losing every option after it, and some
//! malformed option lengths (options 80, 81, 94, 151–155) trip
//! `debug_assert!`s or subtraction overflows, i.e. panics in debug builds.
//! Options are only decoded for the codes this module reads.
//!
//! Not handled: option overload (option 52, options carried in the `sname`
//! and `file` fields) — those options are not seen.

use std::net::Ipv4Addr;

use dhcproto::v4::{borrowed, DhcpOption, MessageType, Opcode, OptionCode};
use serde::Serialize;

/// Offset and size of the `chaddr` field.
const CHADDR_OFFSET: usize = 28;
const CHADDR_LEN: usize = 16;

/// Errors from DHCP parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhcpError {
    /// Shorter than the fixed BOOTP header plus magic cookie.
    #[error("DHCP message too short: {0} bytes, at least 240 needed")]
    TooShort(usize),
}

/// Identifying fields of one DHCPv4 message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DhcpInfo {
    /// BOOTP op: `"request"`, `"reply"`, or `"unknown(<n>)"`.
    pub op: String,
    /// Option 53 as `"DISCOVER"`, `"OFFER"`, `"REQUEST"`, `"DECLINE"`,
    /// `"ACK"`, `"NAK"`, `"RELEASE"`, `"INFORM"`, … or `"UNKNOWN(<n>)"`;
    /// `None` for plain BOOTP.
    pub message_type: Option<String>,
    /// Transaction ID.
    pub xid: u32,
    /// Client hardware address (`chaddr`, `hlen` bytes, at most 16) as
    /// lower-case `aa:bb:cc:dd:ee:ff`; empty if `hlen` is 0.
    pub client_mac: String,
    /// Option 12 (invalid UTF-8 replaced by U+FFFD).
    pub hostname: Option<String>,
    /// Option 61, whole value (type byte included) as lower-case hex bytes
    /// separated by `:`.
    pub client_id: Option<String>,
    /// Option 60 (invalid UTF-8 replaced by U+FFFD).
    pub vendor_class: Option<String>,
    /// Option 50 (ignored unless exactly 4 bytes).
    pub requested_ip: Option<Ipv4Addr>,
    /// `yiaddr`, if not 0.0.0.0.
    pub your_ip: Option<Ipv4Addr>,
    /// Option 55 (parameter request list) codes, in order.
    pub params: Vec<u8>,
}

/// Parses one DHCPv4 (or BOOTP) message, the payload of a UDP datagram.
///
/// When the same option appears more than once (not adjacent), the first
/// one is used. Options after a truncated option are not seen.
pub fn parse_dhcp(payload: &[u8]) -> Result<DhcpInfo, DhcpError> {
    let msg = borrowed::Message::new(payload).map_err(|_| DhcpError::TooShort(payload.len()))?;
    let op = match msg.opcode() {
        Opcode::BootRequest => "request".to_string(),
        Opcode::BootReply => "reply".to_string(),
        Opcode::Unknown(n) => format!("unknown({n})"),
    };
    // `borrowed::Message::chaddr` trusts `hlen` (up to 255); cap it at the
    // 16-byte field.
    let hlen = usize::from(msg.hlen()).min(CHADDR_LEN);
    let chaddr = payload
        .get(CHADDR_OFFSET..CHADDR_OFFSET + hlen)
        .unwrap_or_default();
    let your_ip = Some(msg.yiaddr()).filter(|ip| !ip.is_unspecified());

    let mut info = DhcpInfo {
        op,
        message_type: None,
        xid: msg.xid(),
        client_mac: hex_bytes(chaddr),
        hostname: None,
        client_id: None,
        vendor_class: None,
        requested_ip: None,
        your_ip,
        params: Vec::new(),
    };
    for opt in msg.opts() {
        match opt.code() {
            OptionCode::Hostname if info.hostname.is_none() => {
                let lossy = String::from_utf8_lossy(opt.data()).into_owned();
                info.hostname = Some(match opt.into_option() {
                    Ok(DhcpOption::Hostname(name)) => name,
                    _ => lossy,
                });
            }
            OptionCode::ClientIdentifier if info.client_id.is_none() => {
                if let Ok(DhcpOption::ClientIdentifier(id)) = opt.into_option() {
                    info.client_id = Some(hex_bytes(&id));
                }
            }
            OptionCode::ClassIdentifier if info.vendor_class.is_none() => {
                if let Ok(DhcpOption::ClassIdentifier(class)) = opt.into_option() {
                    info.vendor_class = Some(String::from_utf8_lossy(&class).into_owned());
                }
            }
            OptionCode::RequestedIpAddress if info.requested_ip.is_none() => {
                if let Ok(DhcpOption::RequestedIpAddress(ip)) = opt.into_option() {
                    info.requested_ip = Some(ip);
                }
            }
            OptionCode::MessageType if info.message_type.is_none() => {
                if let Ok(DhcpOption::MessageType(t)) = opt.into_option() {
                    info.message_type = Some(message_type_name(t));
                }
            }
            OptionCode::ParameterRequestList if info.params.is_empty() => {
                if let Ok(DhcpOption::ParameterRequestList(codes)) = opt.into_option() {
                    info.params = codes.into_iter().map(u8::from).collect();
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Upper-case DHCP message type name (RFC 2132, 3203, 4388, 6926, 7724).
fn message_type_name(t: MessageType) -> String {
    let name = match t {
        MessageType::Discover => "DISCOVER",
        MessageType::Offer => "OFFER",
        MessageType::Request => "REQUEST",
        MessageType::Decline => "DECLINE",
        MessageType::Ack => "ACK",
        MessageType::Nak => "NAK",
        MessageType::Release => "RELEASE",
        MessageType::Inform => "INFORM",
        MessageType::ForceRenew => "FORCERENEW",
        MessageType::LeaseQuery => "LEASEQUERY",
        MessageType::LeaseUnassigned => "LEASEUNASSIGNED",
        MessageType::LeaseUnknown => "LEASEUNKNOWN",
        MessageType::LeaseActive => "LEASEACTIVE",
        MessageType::BulkLeaseQuery => "BULKLEASEQUERY",
        MessageType::LeaseQueryDone => "LEASEQUERYDONE",
        MessageType::ActiveLeaseQuery => "ACTIVELEASEQUERY",
        MessageType::LeaseQueryStatus => "LEASEQUERYSTATUS",
        MessageType::Tls => "TLS",
        MessageType::Unknown(n) => return format!("UNKNOWN({n})"),
    };
    name.to_string()
}

/// Lower-case hex bytes separated by `:`.
fn hex_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let mut digits = [0u8; 2];
        // Cannot fail: the output is exactly twice the input.
        let _ = hex::encode_to_slice([*b], &mut digits);
        out.extend(digits.map(char::from));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{Message, MAGIC};
    use dhcproto::{Encodable, Encoder};

    const MAC: [u8; 6] = [0x02, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e];

    fn encode(msg: &Message) -> Vec<u8> {
        let mut buf = Vec::new();
        msg.encode(&mut Encoder::new(&mut buf)).unwrap();
        buf
    }

    /// A BOOTP header with the magic cookie, followed by raw option bytes.
    fn raw(op: u8, hlen: u8, options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 236];
        m[0] = op;
        m[1] = 1; // Ethernet
        m[2] = hlen;
        m[4..8].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        m[CHADDR_OFFSET..CHADDR_OFFSET + 6].copy_from_slice(&MAC);
        m.extend_from_slice(&MAGIC);
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn discover_built_with_dhcproto() {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(
            0x1234_5678,
            unspecified,
            unspecified,
            unspecified,
            unspecified,
            &MAC,
        );
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(MessageType::Discover));
        opts.insert(DhcpOption::Hostname("Jane-Doe-Phone".into()));
        opts.insert(DhcpOption::ClientIdentifier(vec![
            1, 2, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e,
        ]));
        opts.insert(DhcpOption::ClassIdentifier(b"android-dhcp-14".to_vec()));
        opts.insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(
            192, 168, 1, 23,
        )));
        opts.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::Unknown(252),
        ]));
        let info = parse_dhcp(&encode(&msg)).unwrap();
        assert_eq!(
            info,
            DhcpInfo {
                op: "request".into(),
                message_type: Some("DISCOVER".into()),
                xid: 0x1234_5678,
                client_mac: "02:1a:2b:3c:4d:5e".into(),
                hostname: Some("Jane-Doe-Phone".into()),
                client_id: Some("01:02:1a:2b:3c:4d:5e".into()),
                vendor_class: Some("android-dhcp-14".into()),
                requested_ip: Some(Ipv4Addr::new(192, 168, 1, 23)),
                your_ip: None,
                params: vec![1, 3, 6, 252],
            }
        );
    }

    #[test]
    fn ack_built_with_dhcproto() {
        let yi = Ipv4Addr::new(10, 0, 0, 42);
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(7, unspecified, yi, unspecified, unspecified, &MAC);
        msg.set_opcode(Opcode::BootReply);
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Ack));
        msg.opts_mut()
            .insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        let info = parse_dhcp(&encode(&msg)).unwrap();
        assert_eq!(info.op, "reply");
        assert_eq!(info.message_type.as_deref(), Some("ACK"));
        assert_eq!(info.your_ip, Some(yi));
        assert_eq!(info.hostname, None);
        assert!(info.params.is_empty());
    }

    #[test]
    fn message_type_names() {
        for (n, name) in [
            (1, "DISCOVER"),
            (3, "REQUEST"),
            (6, "NAK"),
            (8, "INFORM"),
            (200, "UNKNOWN(200)"),
        ] {
            let info = parse_dhcp(&raw(1, 6, &[53, 1, n, 255])).unwrap();
            assert_eq!(info.message_type.as_deref(), Some(name));
        }
    }

    #[test]
    fn hand_built_options() {
        // Pad bytes, hostname split in two adjacent options (RFC 3396),
        // vendor class, client id, then End and trailing garbage.
        let mut opts = vec![0, 0, 53, 1, 3];
        opts.extend_from_slice(&[12, 5]);
        opts.extend_from_slice(b"kids-");
        opts.extend_from_slice(&[12, 6]);
        opts.extend_from_slice(b"tablet");
        opts.extend_from_slice(&[60, 8]);
        opts.extend_from_slice(b"MSFT 5.0");
        opts.extend_from_slice(&[61, 3, 0, 0xab, 0xcd]);
        opts.extend_from_slice(&[255, 12, 99, 1, 2]);
        let info = parse_dhcp(&raw(1, 6, &opts)).unwrap();
        assert_eq!(info.message_type.as_deref(), Some("REQUEST"));
        assert_eq!(info.hostname.as_deref(), Some("kids-tablet"));
        assert_eq!(info.vendor_class.as_deref(), Some("MSFT 5.0"));
        assert_eq!(info.client_id.as_deref(), Some("00:ab:cd"));
        assert_eq!(info.xid, 0xdead_beef);
        assert_eq!(info.client_mac, "02:1a:2b:3c:4d:5e");
    }

    #[test]
    fn malformed_options_do_not_hide_later_ones() {
        // Options that make dhcproto's owned decoder stop (bad IP length,
        // non-UTF-8 domain name) or panic in debug builds (client FQDN with
        // length 1, bulk lease query status with length 0, rapid commit with
        // data), followed by the options we want.
        let mut opts = vec![50, 3, 1, 2, 3];
        opts.extend_from_slice(&[15, 2, 0xff, 0xfe]);
        opts.extend_from_slice(&[81, 1, 0]);
        opts.extend_from_slice(&[151, 0]);
        opts.extend_from_slice(&[80, 1, 9]);
        opts.extend_from_slice(&[152, 1, 0]);
        opts.extend_from_slice(&[12, 4, b'n', 0xff, b'a', b's']);
        opts.extend_from_slice(&[55, 2, 1, 3]);
        let info = parse_dhcp(&raw(1, 6, &opts)).unwrap();
        assert_eq!(info.requested_ip, None, "length 3 is not an address");
        assert_eq!(info.hostname.as_deref(), Some("n\u{fffd}as"));
        assert_eq!(info.params, [1, 3]);
    }

    #[test]
    fn truncated_option_stops_parsing() {
        // Message type, then a hostname claiming 20 bytes with 3 present.
        let opts = [53, 1, 1, 12, 20, b'a', b'b', b'c'];
        let info = parse_dhcp(&raw(1, 6, &opts)).unwrap();
        assert_eq!(info.message_type.as_deref(), Some("DISCOVER"));
        assert_eq!(info.hostname, None);
        // Empty message-type option: ignored, no panic.
        let info = parse_dhcp(&raw(1, 6, &[53, 0, 12, 1, b'x'])).unwrap();
        assert_eq!(info.message_type, None);
        assert_eq!(info.hostname.as_deref(), Some("x"));
    }

    #[test]
    fn bootp_and_odd_headers() {
        // Wrong magic cookie: plain BOOTP, options not read.
        let mut m = raw(2, 6, &[53, 1, 5, 255]);
        m[236] = 0;
        let info = parse_dhcp(&m).unwrap();
        assert_eq!(info.message_type, None);
        assert_eq!(info.op, "reply");
        // hlen larger than chaddr: capped at 16 bytes, no panic.
        let info = parse_dhcp(&raw(1, 200, &[255])).unwrap();
        assert_eq!(info.client_mac.split(':').count(), 16);
        assert!(info.client_mac.starts_with("02:1a:2b:3c:4d:5e:00"));
        // hlen 0 and unknown op.
        let info = parse_dhcp(&raw(9, 0, &[])).unwrap();
        assert_eq!(
            (info.client_mac.as_str(), info.op.as_str()),
            ("", "unknown(9)")
        );
    }

    #[test]
    fn too_short_is_error() {
        let m = raw(1, 6, &[]);
        for len in [0, 100, 239] {
            assert_eq!(parse_dhcp(&m[..len]), Err(DhcpError::TooShort(len)));
        }
        assert!(parse_dhcp(&m[..240]).is_ok());
    }

    #[test]
    fn junk_never_panics() {
        let mut seed = 0x2545_f491_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 120) as usize;
            let opts: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut m = raw(1, next() as u8, &opts);
            let cut = 240 + next() as usize % (opts.len() + 1);
            m.truncate(cut);
            let _ = parse_dhcp(&m);
        }
    }
}
