//! What the vnet did, as a log of typed events.
//!
//! This module owns the vnet's account of a run: every lease, DNS answer, connection,
//! HTTP request received by the sink (with its body), TLS hello, refused datagram and
//! ping. The capture holds the frames; this log holds telltale's side of the conversation
//! (what was answered), which the run report and the tests read. Timestamps are
//! nanoseconds since the Unix epoch, the same clock as the capture.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

use super::dhcp::Lease;
use super::dns::DnsOutcome;

/// One thing that happened on the segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum VnetEvent {
    /// A DHCP exchange; `lease` is set on ACK.
    Dhcp {
        /// When.
        ts: u64,
        /// Client MAC.
        mac: String,
        /// Message received (`DISCOVER`, `REQUEST`, `RELEASE`…).
        received: String,
        /// Message sent (`OFFER`, `ACK`, `NAK`), if any.
        sent: Option<String>,
        /// The lease confirmed by an ACK.
        lease: Option<Lease>,
    },
    /// A DNS question and its answer.
    Dns {
        /// When.
        ts: u64,
        /// Who asked.
        client: SocketAddrV4,
        /// The address the query was sent to (answered from that address).
        server: Ipv4Addr,
        /// `udp` or `tcp`.
        transport: Cow<'static, str>,
        /// Name as queried.
        name: String,
        /// Query type.
        qtype: String,
        /// What was answered.
        outcome: DnsOutcome,
    },
    /// A TCP connection accepted by the catch-all.
    TcpOpen {
        /// When the SYN arrived.
        ts: u64,
        /// Connection number (order of arrival, from 1).
        conn: u64,
        /// Client end.
        client: SocketAddrV4,
        /// The address and port the client connected to.
        server: SocketAddrV4,
        /// The name the server address was handed out for by the vnet's DNS, if any.
        name: Option<String>,
    },
    /// A whole HTTP request read by the sink (and the answer it got).
    Http {
        /// When the request was complete.
        ts: u64,
        /// Connection number.
        conn: u64,
        /// Server end of the connection.
        server: SocketAddrV4,
        /// DNS name of the server address, if any.
        name: Option<String>,
        /// Method.
        method: String,
        /// Request target as sent.
        target: String,
        /// Host header.
        host: Option<String>,
        /// Body bytes on the wire (chunk framing included).
        body_len: u64,
        /// SHA-256 of the body bytes on the wire, lower-case hex.
        body_sha256: String,
        /// The first bytes of the body (up to the configured cap).
        #[serde(skip)]
        body: Vec<u8>,
        /// False when the connection ended before the body did.
        complete: bool,
        /// Status answered (0 when the request was incomplete and nothing was answered).
        status: u16,
    },
    /// A TLS ClientHello read by the catch-all (the connection is then closed).
    TlsHello {
        /// When.
        ts: u64,
        /// Connection number.
        conn: u64,
        /// Server end.
        server: SocketAddrV4,
        /// DNS name of the server address, if any.
        name: Option<String>,
        /// Server name indication.
        sni: Option<String>,
    },
    /// A TCP connection ended.
    TcpClose {
        /// When.
        ts: u64,
        /// Connection number.
        conn: u64,
        /// What the catch-all took it for: `http`, `tls`, `dns`, `opaque`, `none` (no data).
        protocol: Cow<'static, str>,
        /// Payload bytes received from the client.
        bytes_in: u64,
        /// Payload bytes sent to the client.
        bytes_out: u64,
    },
    /// A UDP datagram nobody serves; answered with ICMP port unreachable (not for
    /// broadcast and multicast).
    UdpRefused {
        /// When.
        ts: u64,
        /// Sender.
        client: SocketAddrV4,
        /// Destination.
        server: SocketAddrV4,
        /// Payload length.
        len: usize,
    },
    /// An NTP request answered with telltale's clock.
    Ntp {
        /// When.
        ts: u64,
        /// Sender.
        client: SocketAddrV4,
        /// Server address asked.
        server: Ipv4Addr,
    },
    /// An ICMP echo request; only the gateway answers.
    Ping {
        /// When.
        ts: u64,
        /// Sender.
        client: Ipv4Addr,
        /// Address pinged.
        target: Ipv4Addr,
        /// Whether a reply was sent.
        answered: bool,
    },
    /// Something the vnet refused or could not handle (connection limit, unsupported
    /// protocol); the reason is in words.
    Refused {
        /// When.
        ts: u64,
        /// What and why.
        what: String,
    },
    /// A TLS connection ended by the vnet with the run's CA: the handshake completed.
    TlsIntercepted {
        /// When the handshake completed.
        ts: u64,
        /// Connection number.
        conn: u64,
        /// Server end.
        server: SocketAddrV4,
        /// Server name indication.
        sni: Option<String>,
        /// The name the leaf certificate was made for (SNI, else the vnet's DNS name, else
        /// the address).
        certificate_name: String,
        /// Negotiated protocol version (`TLSv1_3`…).
        version: String,
        /// Negotiated cipher suite.
        cipher_suite: String,
        /// Negotiated ALPN protocol, if any.
        alpn: Option<String>,
    },
    /// A client refused telltale's certificate; later connections to the destination are
    /// not intercepted.
    TlsRefused {
        /// When.
        ts: u64,
        /// Connection number.
        conn: u64,
        /// Server end.
        server: SocketAddrV4,
        /// Server name indication.
        sni: Option<String>,
        /// The destination (SNI, else the vnet's DNS name, else the address).
        destination: String,
        /// `alert`, `closed_after_certificate`, `silent_after_handshake`,
        /// `no_common_parameters`.
        kind: Cow<'static, str>,
        /// What was seen, in words (the alert, the error).
        detail: String,
    },
    /// A TLS connection the vnet did not intercept (read up to the ClientHello, then closed).
    TlsNotIntercepted {
        /// When.
        ts: u64,
        /// Connection number.
        conn: u64,
        /// Server end.
        server: SocketAddrV4,
        /// The destination (SNI, else the vnet's DNS name, else the address).
        destination: String,
        /// `off` (network.tls), `exception` (network.tls except), `refused_before` (this
        /// destination refused telltale's certificate earlier in the run).
        reason: Cow<'static, str>,
    },
}

impl VnetEvent {
    /// Timestamp of the event.
    pub fn ts(&self) -> u64 {
        match self {
            VnetEvent::Dhcp { ts, .. }
            | VnetEvent::Dns { ts, .. }
            | VnetEvent::TcpOpen { ts, .. }
            | VnetEvent::Http { ts, .. }
            | VnetEvent::TlsHello { ts, .. }
            | VnetEvent::TcpClose { ts, .. }
            | VnetEvent::UdpRefused { ts, .. }
            | VnetEvent::Ntp { ts, .. }
            | VnetEvent::Ping { ts, .. }
            | VnetEvent::Refused { ts, .. }
            | VnetEvent::TlsIntercepted { ts, .. }
            | VnetEvent::TlsRefused { ts, .. }
            | VnetEvent::TlsNotIntercepted { ts, .. } => *ts,
        }
    }
}

/// Most events a run's log keeps; later ones are counted ([`EventLog::dropped`], reported as
/// `vnet.stats.events_dropped`) and not kept. The capture still has every frame.
pub const EVENT_LOG_MAX_EVENTS: usize = 100_000;
/// Most bytes (events and what they hold, such as HTTP bodies) a run's log keeps; as
/// [`EVENT_LOG_MAX_EVENTS`].
pub const EVENT_LOG_MAX_BYTES: usize = 32 << 20;

impl VnetEvent {
    /// About how many bytes of memory the event holds.
    pub fn weight(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<VnetEvent>()
            + match self {
                VnetEvent::Dhcp {
                    mac,
                    received,
                    sent,
                    ..
                } => mac.len() + received.len() + opt(sent),
                VnetEvent::Dns {
                    name,
                    qtype,
                    transport,
                    outcome,
                    ..
                } => {
                    name.len()
                        + qtype.len()
                        + transport.len()
                        + match outcome {
                            DnsOutcome::Addresses(a) => 4 * a.len(),
                            _ => 0,
                        }
                }
                VnetEvent::TcpOpen { name, .. } => opt(name),
                VnetEvent::Http {
                    name,
                    method,
                    target,
                    host,
                    body_sha256,
                    body,
                    ..
                } => {
                    opt(name)
                        + method.len()
                        + target.len()
                        + opt(host)
                        + body_sha256.len()
                        + body.len()
                }
                VnetEvent::TlsHello { name, sni, .. } => opt(name) + opt(sni),
                VnetEvent::TcpClose { protocol, .. } => protocol.len(),
                VnetEvent::Refused { what, .. } => what.len(),
                VnetEvent::UdpRefused { .. } | VnetEvent::Ntp { .. } | VnetEvent::Ping { .. } => 0,
                VnetEvent::TlsIntercepted {
                    sni,
                    certificate_name,
                    version,
                    cipher_suite,
                    alpn,
                    ..
                } => {
                    opt(sni)
                        + certificate_name.len()
                        + version.len()
                        + cipher_suite.len()
                        + opt(alpn)
                }
                VnetEvent::TlsRefused {
                    sni,
                    destination,
                    detail,
                    ..
                } => opt(sni) + destination.len() + detail.len(),
                VnetEvent::TlsNotIntercepted { destination, .. } => destination.len(),
            }
    }
}

/// A run's event log, bounded by [`EVENT_LOG_MAX_EVENTS`] and [`EVENT_LOG_MAX_BYTES`]: it keeps
/// the first events (leases and the first answers, which a run needs to be read) and counts the
/// rest, so a target that floods the vnet (DNS queries, connections) cannot grow telltale's
/// memory. What is judged comes from the capture, not from this log.
#[derive(Debug, Default, Clone)]
pub struct EventLog {
    events: Vec<VnetEvent>,
    bytes: usize,
    dropped: u64,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// Keeps `e`, or counts it when the log is full. A TLS refusal is always kept: the run judges it (an unread
    /// span, `runner::tls`), and the capture alone does not show it; refusals are few (a destination that refused
    /// is not intercepted again).
    pub fn push(&mut self, e: VnetEvent) {
        let w = e.weight();
        let full =
            self.events.len() >= EVENT_LOG_MAX_EVENTS || self.bytes + w > EVENT_LOG_MAX_BYTES;
        if full && !matches!(e, VnetEvent::TlsRefused { .. }) {
            self.dropped += 1;
            return;
        }
        self.bytes += w;
        self.events.push(e);
    }

    /// Keeps or counts each event.
    pub fn extend(&mut self, events: impl IntoIterator<Item = VnetEvent>) {
        for e in events {
            self.push(e);
        }
    }

    /// The events kept, in order.
    pub fn events(&self) -> &[VnetEvent] {
        &self.events
    }

    /// Events not kept because the log was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// About how many bytes the kept events hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(i: u64) -> VnetEvent {
        VnetEvent::Dns {
            ts: i,
            client: "10.0.2.15:5353".parse().unwrap(),
            server: Ipv4Addr::new(10, 0, 2, 2),
            transport: Cow::Borrowed("udp"),
            name: format!("{i:0>200}.flood.example"),
            qtype: "A".into(),
            outcome: DnsOutcome::Addresses(vec![Ipv4Addr::new(198, 18, 0, 1)]),
        }
    }

    #[test]
    fn a_dns_flood_cannot_grow_the_log() {
        let mut log = EventLog::new();
        let n = 1_000_000u64;
        for i in 0..n {
            log.push(dns(i));
        }
        let kept = log.events().len();
        assert!(kept <= EVENT_LOG_MAX_EVENTS && kept > 1000, "{kept}");
        assert!(log.bytes() <= EVENT_LOG_MAX_BYTES);
        // The heap it holds: the events' slots plus their names.
        let held = log.events.capacity() * std::mem::size_of::<VnetEvent>() + kept * 230;
        assert!(held <= 2 * EVENT_LOG_MAX_BYTES, "{held}");
        assert_eq!(log.dropped(), n - kept as u64);
        // The first events are the ones kept.
        assert_eq!(log.events()[0].ts(), 0);
        assert_eq!(log.events()[kept - 1].ts(), kept as u64 - 1);
    }

    #[test]
    fn a_full_log_still_keeps_tls_refusals() {
        let mut log = EventLog::new();
        for i in 0..(EVENT_LOG_MAX_EVENTS as u64 + 10) {
            log.push(dns(i));
        }
        let dropped = log.dropped();
        assert!(dropped >= 10);
        log.push(VnetEvent::TlsRefused {
            ts: 1,
            conn: 7,
            server: "198.18.0.7:443".parse().unwrap(),
            sni: Some("pinned.example".into()),
            destination: "pinned.example".into(),
            kind: "alert".into(),
            detail: "unknown_ca".into(),
        });
        assert_eq!(log.dropped(), dropped);
        assert!(matches!(
            log.events().last(),
            Some(VnetEvent::TlsRefused { destination, .. }) if destination == "pinned.example"
        ));
    }

    #[test]
    fn big_bodies_count_by_bytes() {
        let mut log = EventLog::new();
        let http = |i| VnetEvent::Http {
            ts: i,
            conn: i,
            server: "198.18.0.1:80".parse().unwrap(),
            name: None,
            method: "POST".into(),
            target: "/".into(),
            host: None,
            body_len: 1 << 20,
            body_sha256: String::new(),
            body: vec![0; 1 << 20],
            complete: true,
            status: 200,
        };
        log.extend((0..100).map(http));
        assert!(log.events().len() < 32, "{}", log.events().len());
        assert_eq!(log.dropped(), 100 - log.events().len() as u64);
    }
}
