//! The vnet's DHCPv4 server.
//!
//! This module owns address leases on the segment: one address per client MAC, handed out
//! in order of first appearance from the configured first lease address (so the same
//! scenario gets the same addresses), with telltale's gateway as router and DNS server.
//! Parsing of the client's message is `proto::dhcp` (the same code that reads DHCP in
//! captures); replies are built with `dhcproto`. Sans-IO: a request payload in, a reply
//! payload out.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::prefix_mask;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode};
use dhcproto::{Encodable, Encoder};

use crate::proto::dhcp::parse_dhcp;

/// Leases and options of the segment.
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    /// telltale's own address: server id, router and DNS server.
    pub gateway: Ipv4Addr,
    /// Prefix length of the segment.
    pub prefix_len: u8,
    /// First address handed out.
    pub first_lease: Ipv4Addr,
    /// Lease time in seconds.
    pub lease_secs: u32,
}

/// A lease given (or confirmed) by the server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    /// Client MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Address leased.
    pub ip: Ipv4Addr,
    /// Host name the client sent (option 12).
    pub hostname: Option<String>,
    /// Client identifier (option 61) as hex bytes.
    pub client_id: Option<String>,
    /// Vendor class (option 60).
    pub vendor_class: Option<String>,
}

/// What the server did with one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpReply {
    /// The reply payload (UDP from port 67 to 68), if any.
    pub payload: Option<Vec<u8>>,
    /// Send to the broadcast address (the client has no address yet).
    pub broadcast: bool,
    /// Unicast destination when `broadcast` is false.
    pub to: Ipv4Addr,
    /// Message type received (`DISCOVER`, `REQUEST`, …).
    pub received: String,
    /// Message type sent (`OFFER`, `ACK`, `NAK`), if any.
    pub sent: Option<&'static str>,
    /// The lease confirmed by an ACK.
    pub lease: Option<Lease>,
}

/// DHCP server state.
#[derive(Debug)]
pub struct DhcpServer {
    config: DhcpConfig,
    leases: HashMap<[u8; 6], Ipv4Addr>,
    next: u32,
}

impl DhcpServer {
    /// A server with no leases.
    pub fn new(config: DhcpConfig) -> DhcpServer {
        let next = u32::from(config.first_lease);
        DhcpServer {
            config,
            leases: HashMap::new(),
            next,
        }
    }

    /// The address leased to `mac`, allocating the next free one.
    pub fn lease_for(&mut self, mac: [u8; 6]) -> Ipv4Addr {
        if let Some(ip) = self.leases.get(&mac) {
            return *ip;
        }
        let mut ip = Ipv4Addr::from(self.next);
        while ip == self.config.gateway || ip.octets()[3] == 0 || ip.octets()[3] == 255 {
            self.next = self.next.wrapping_add(1);
            ip = Ipv4Addr::from(self.next);
        }
        self.next = self.next.wrapping_add(1);
        self.leases.insert(mac, ip);
        ip
    }

    /// Handles one client payload (UDP to port 67). `None` when it is not a client DHCP
    /// message at all.
    pub fn handle(&mut self, payload: &[u8]) -> Option<DhcpReply> {
        let info = parse_dhcp(payload).ok()?;
        if info.op != "request" || payload.len() < 34 {
            return None;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(payload.get(28..34)?);
        let ciaddr = Ipv4Addr::new(payload[12], payload[13], payload[14], payload[15]);
        let received = info.message_type.clone().unwrap_or_else(|| "BOOTP".into());
        let leased = self.lease_for(mac);
        let (kind, yiaddr) = match received.as_str() {
            "DISCOVER" => (Some(MessageType::Offer), leased),
            "REQUEST" => {
                let wanted = info.requested_ip.unwrap_or(ciaddr);
                if wanted == leased {
                    (Some(MessageType::Ack), leased)
                } else {
                    (Some(MessageType::Nak), Ipv4Addr::UNSPECIFIED)
                }
            }
            "INFORM" => (Some(MessageType::Ack), Ipv4Addr::UNSPECIFIED),
            _ => (None, leased),
        };
        let mut reply = DhcpReply {
            payload: None,
            broadcast: ciaddr.is_unspecified(),
            to: ciaddr,
            received,
            sent: None,
            lease: None,
        };
        let Some(kind) = kind else {
            return Some(reply);
        };
        let mut msg = Message::new_with_id(
            info.xid,
            ciaddr,
            yiaddr,
            self.config.gateway,
            Ipv4Addr::UNSPECIFIED,
            &mac,
        );
        msg.set_opcode(Opcode::BootReply);
        if reply.broadcast {
            msg.set_flags(Flags::default().set_broadcast());
        }
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(self.config.gateway));
        if kind != MessageType::Nak {
            let mask = Ipv4Addr::from(prefix_mask(self.config.prefix_len));
            opts.insert(DhcpOption::SubnetMask(mask));
            opts.insert(DhcpOption::Router(vec![self.config.gateway]));
            opts.insert(DhcpOption::DomainNameServer(vec![self.config.gateway]));
            let bcast = u32::from(self.config.gateway) | !prefix_mask(self.config.prefix_len);
            opts.insert(DhcpOption::BroadcastAddr(Ipv4Addr::from(bcast)));
            if kind != MessageType::Ack || !yiaddr.is_unspecified() {
                opts.insert(DhcpOption::AddressLeaseTime(self.config.lease_secs));
                opts.insert(DhcpOption::Renewal(self.config.lease_secs / 2));
                opts.insert(DhcpOption::Rebinding(self.config.lease_secs / 8 * 7));
            }
        }
        let mut buf = Vec::with_capacity(300);
        msg.encode(&mut Encoder::new(&mut buf)).ok()?;
        // Pad to the BOOTP minimum of 300 bytes; some clients insist on it.
        if buf.len() < 300 {
            buf.resize(300, 0);
        }
        reply.payload = Some(buf);
        reply.sent = Some(match kind {
            MessageType::Offer => "OFFER",
            MessageType::Ack => "ACK",
            _ => "NAK",
        });
        if kind == MessageType::Ack && !yiaddr.is_unspecified() {
            reply.lease = Some(Lease {
                mac: info.client_mac.clone(),
                ip: yiaddr,
                hostname: info.hostname.clone(),
                client_id: info.client_id.clone(),
                vendor_class: info.vendor_class.clone(),
            });
        }
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::Message;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

    fn config() -> DhcpConfig {
        DhcpConfig {
            gateway: Ipv4Addr::new(10, 77, 0, 1),
            prefix_len: 24,
            first_lease: Ipv4Addr::new(10, 77, 0, 10),
            lease_secs: 3600,
        }
    }

    fn client(kind: MessageType, mac: &[u8; 6], requested: Option<Ipv4Addr>) -> Vec<u8> {
        let u = Ipv4Addr::UNSPECIFIED;
        let mut m = Message::new_with_id(0xabcd, u, u, u, u, mac);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut()
            .insert(DhcpOption::Hostname("kestrel-phone".into()));
        m.opts_mut().insert(DhcpOption::ClientIdentifier(vec![
            1, 0x52, 0x54, 0, 0x12, 0x34, 0x56,
        ]));
        if let Some(r) = requested {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(r));
        }
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        buf
    }

    #[test]
    fn discover_request_ack() {
        let mut s = DhcpServer::new(config());
        let offer = s
            .handle(&client(MessageType::Discover, &MAC, None))
            .unwrap();
        assert_eq!(offer.sent, Some("OFFER"));
        assert!(offer.broadcast);
        let parsed = parse_dhcp(offer.payload.as_ref().unwrap()).unwrap();
        assert_eq!(parsed.op, "reply");
        assert_eq!(parsed.xid, 0xabcd);
        assert_eq!(parsed.your_ip, Some(Ipv4Addr::new(10, 77, 0, 10)));
        let ack = s
            .handle(&client(
                MessageType::Request,
                &MAC,
                Some(Ipv4Addr::new(10, 77, 0, 10)),
            ))
            .unwrap();
        assert_eq!(ack.sent, Some("ACK"));
        let lease = ack.lease.unwrap();
        assert_eq!(lease.ip, Ipv4Addr::new(10, 77, 0, 10));
        assert_eq!(lease.hostname.as_deref(), Some("kestrel-phone"));
        assert_eq!(lease.client_id.as_deref(), Some("01:52:54:00:12:34:56"));
        assert_eq!(lease.mac, "52:54:00:12:34:56");
        // Router and DNS are the gateway.
        use dhcproto::Decodable;
        let m =
            Message::decode(&mut dhcproto::Decoder::new(ack.payload.as_ref().unwrap())).unwrap();
        let gw = Ipv4Addr::new(10, 77, 0, 1);
        assert_eq!(
            m.opts().get(dhcproto::v4::OptionCode::Router),
            Some(&DhcpOption::Router(vec![gw]))
        );
        assert_eq!(
            m.opts().get(dhcproto::v4::OptionCode::DomainNameServer),
            Some(&DhcpOption::DomainNameServer(vec![gw]))
        );
    }

    #[test]
    fn second_client_gets_next_address_and_wrong_request_is_naked() {
        let mut s = DhcpServer::new(config());
        let other = [2, 0, 0, 0, 0, 9];
        s.handle(&client(MessageType::Discover, &MAC, None));
        let o2 = s
            .handle(&client(MessageType::Discover, &other, None))
            .unwrap();
        assert_eq!(
            parse_dhcp(o2.payload.as_ref().unwrap()).unwrap().your_ip,
            Some(Ipv4Addr::new(10, 77, 0, 11))
        );
        let nak = s
            .handle(&client(
                MessageType::Request,
                &other,
                Some(Ipv4Addr::new(192, 168, 1, 5)),
            ))
            .unwrap();
        assert_eq!(nak.sent, Some("NAK"));
        assert!(nak.lease.is_none());
    }

    #[test]
    fn non_dhcp_is_ignored() {
        let mut s = DhcpServer::new(config());
        assert!(s.handle(b"hello").is_none());
    }
}
