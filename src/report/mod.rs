//! The analysis report: one data model, rendered as JSON (a public contract) or as a text summary.
//!
//! Everything the engine learns ends up here. Field names of the JSON form are stable: consumers (CI gates, the
//! snapshot and claim checks, auditors' scripts) depend on them. Additions are allowed; renames are not.

pub mod kind;
pub mod text;

pub use kind::{App, Transport};

use serde::{Deserialize, Serialize};

/// Version of the report format; bumped only on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// A complete privacy report of one capture.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Report format version.
    pub format_version: u32,
    /// telltale's version.
    pub telltale_version: String,
    /// The capture analysed.
    pub capture: CaptureSummary,
    /// Names of the canaries searched for (values are not repeated here).
    pub canaries: Vec<String>,
    /// Canary findings, most important first.
    pub findings: Vec<Finding>,
    /// Every TCP/UDP conversation.
    pub flows: Vec<FlowRecord>,
    /// DNS questions seen (queries, and responses whose query was not captured).
    pub dns_queries: Vec<DnsQuery>,
    /// HTTP/1.x requests.
    pub http_requests: Vec<HttpRequest>,
    /// TLS ClientHellos.
    pub tls: Vec<TlsHello>,
    /// DHCP messages.
    pub dhcp: Vec<DhcpMessage>,
    /// Things the reader should know: damage, caps hit, undecodable traffic.
    pub warnings: Vec<Warning>,
    /// The visibility account: every span of bytes telltale could not read, with its reason, its time (when its
    /// bytes were sent) and its destination. Consecutive spans of one flow, direction, reason and phase are merged.
    #[serde(default)]
    pub unread: Vec<UnreadSpan>,
}

/// Why bytes could not be read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum UnreadReason {
    /// TLS records after the handshake, without keys.
    TlsCiphertext,
    /// QUIC packets, without keys (the client's Initial is decrypted for its ClientHello only).
    QuicCiphertext,
    /// A TCP stream's bytes that were never captured (lost, out-of-order cap, or snap length).
    TcpGap,
    /// Payload bytes of a non-TCP packet cut by the capture's snap length.
    SnapLength,
    /// Bytes of the capture file skipped after damage (flow unknown).
    CaptureDamage,
    /// Encapsulations nested deeper than the decapsulation bound (the payload was searched as raw bytes only).
    TunnelDepth,
    /// Encrypted link-layer frames (802.11 protected).
    EncryptedLink,
    /// A TLS client of the run's vnet refused telltale's certificate (an alert, a close right after the
    /// Certificate, silence after the handshake, or no common version or suite): pinned, or not trusting
    /// the run's CA; whatever it would have sent was never sent where telltale could read it.
    TlsRefused,
    /// Decoded layers left unopened because a decoding budget (per input or per capture) ran out.
    DecodeBudget,
    /// Encoded bytes decoded only in part: the decoded child reached the decompression cap.
    DecodeCap,
    /// Decoded bytes at the decoding depth limit that still look encoded.
    DecodeDepth,
    /// A payload inside a readable protocol (an HTTP body, a UDP datagram) that the device encrypted itself:
    /// OpenPGP, CMS/PKCS#7, age, JWE, or high-entropy bytes of no known format (`layers::opaque`).
    EncryptedPayload,
    /// Bytes past one of the HTTP parser's caps (decoded body per message, head, chunk line, trailers): framed
    /// or searched raw only, not decoded.
    HttpCap,
    /// TLS records whose logged key did not authenticate (a wrong key log): nothing of them was searched.
    TlsKeyFailed,
    /// TLS records of a negotiated cipher suite telltale does not decrypt (the report's TLS record names it).
    TlsUnsupportedSuite,
    /// TLS records with logged keys that could not be decrypted because bytes were lost or the record was cut.
    TlsTruncated,
    /// Bytes of a stream protocol (HTTP/2, WebSocket, MQTT) beyond one of its reader's caps (frame, header block,
    /// body, message, inflate output, packet size).
    StreamCap,
    /// Bytes of a stream protocol its reader could not decode: a corrupt compressed message, a header block after
    /// the HPACK state was lost, everything after the reader lost the framing or the stream had a gap.
    StreamUndecoded,
    /// A cap on the analysis's state or records was hit. Bytes a TCP conversation sent after telltale released
    /// its state early, because more conversations were live at once than
    /// [`crate::analysis::Config::max_live_tcp`]: searched as they came, but read again from the middle of the
    /// stream (a canary across the cut, or inside a message that began before it, is missed). Or the messages
    /// (DNS, DHCP, an HTTP head, a ClientHello) past the report's record caps
    /// ([`crate::analysis::Config::max_dns_records`] and the like): searched, but not listed, so a rule over their
    /// destinations cannot be shown.
    StateCap,
}

impl UnreadReason {
    /// The reason as the report (and a policy's `accept_unread`) names it.
    pub fn as_str(self) -> &'static str {
        match self {
            UnreadReason::TlsCiphertext => "tls_ciphertext",
            UnreadReason::QuicCiphertext => "quic_ciphertext",
            UnreadReason::TcpGap => "tcp_gap",
            UnreadReason::SnapLength => "snap_length",
            UnreadReason::CaptureDamage => "capture_damage",
            UnreadReason::TunnelDepth => "tunnel_depth",
            UnreadReason::EncryptedLink => "encrypted_link",
            UnreadReason::TlsRefused => "tls_refused",
            UnreadReason::DecodeBudget => "decode_budget",
            UnreadReason::DecodeCap => "decode_cap",
            UnreadReason::DecodeDepth => "decode_depth",
            UnreadReason::EncryptedPayload => "encrypted_payload",
            UnreadReason::HttpCap => "http_cap",
            UnreadReason::TlsKeyFailed => "tls_key_failed",
            UnreadReason::TlsUnsupportedSuite => "tls_unsupported_suite",
            UnreadReason::TlsTruncated => "tls_truncated",
            UnreadReason::StreamCap => "stream_cap",
            UnreadReason::StreamUndecoded => "stream_undecoded",
            UnreadReason::StateCap => "state_cap",
        }
    }
}

/// A span of bytes telltale could not read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UnreadSpan {
    /// Why.
    pub reason: UnreadReason,
    /// Index into `flows` (none for capture damage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<usize>,
    /// Direction of the bytes.
    pub direction: Direction,
    /// Best name of the server end (empty for capture damage).
    pub destination: String,
    /// Bytes not read.
    pub bytes: u64,
    /// When the first of these bytes was sent (capture time, ns since the epoch).
    pub first_ns: u64,
    /// When the last of these bytes was sent.
    pub last_ns: u64,
    /// The run phase the bytes were sent in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// For capture damage: byte offset in the capture file where skipping started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_offset: Option<u64>,
}

/// Facts about the capture file itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CaptureSummary {
    /// File name as given.
    pub file: String,
    /// "pcap" or "pcapng".
    pub format: String,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Frames read.
    pub packets: u64,
    /// Captured bytes of those frames.
    pub bytes: u64,
    /// Timestamp (ns since the epoch) of the first and last frame.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// Frames per link type, e.g. {"ethernet": 10, "linktype-147": 2}.
    pub link_types: std::collections::BTreeMap<String, u64>,
    /// Frames that carried no IPv4/IPv6 (ARP, LLDP...).
    pub non_ip_packets: u64,
    /// IP fragments (not reassembled; their payload is scanned as it is).
    pub ip_fragments: u64,
    /// Frames too malformed to decode.
    pub malformed_packets: u64,
    /// Reading stopped at this byte offset because of damage (see warnings).
    pub damaged_at: Option<u64>,
}

/// Direction of data relative to the device (the client of a flow).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the client (device) to the server.
    Up,
    /// From the server to the client.
    Down,
}

/// A canary value found in traffic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// Canary name from the identity file (e.g. "imei", "contacts[0]").
    pub canary: String,
    /// Encoding chain, transforms applied to the value in order (e.g. "raw", "sha1>hex", "gzip>base64").
    pub encoding: String,
    /// Best name of the remote end: TLS SNI, HTTP Host, DNS name, else its address.
    pub destination: String,
    /// Remote (server) address and port of the finding's conversation, as its flow's `server`.
    pub address: std::net::SocketAddr,
    /// Protocol in which it was found: "http", "dns", "tls", "dhcp", "tcp", "udp".
    pub protocol: String,
    /// "up" (sent by the device) or "down".
    pub direction: Direction,
    /// HTTP method of the message, when in HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// HTTP path of the request, when in HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_path: Option<String>,
    /// Where in the message: "path", "query:NAME", "header:NAME", "body", "query name"...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Layers undone before the match (e.g. "chunked+gzip").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded_from: Option<String>,
    /// Flow index in `flows`.
    pub flow: usize,
    /// Frame number of the first occurrence.
    pub packet: u64,
    /// Byte offset of the first occurrence within the direction's stream (or decoded body / datagram).
    pub offset: u64,
    /// Capture time of the first occurrence (ns since the epoch).
    pub time_ns: u64,
    /// Phase of the run the occurrences belong to (only when the analysis was given phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Occurrences with the same canary, encoding, flow, direction and field (and phase).
    pub count: u64,
    /// A short excerpt around the first occurrence; non-printable bytes escaped.
    pub excerpt: String,
    /// `"decrypted"` when found in TLS traffic decrypted with logged keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

impl Finding {
    /// `METHOD /path` of the HTTP message it was found in, if it was found in one.
    pub fn request(&self) -> Option<String> {
        match (&self.http_method, &self.http_path) {
            (Some(m), Some(p)) => Some(format!("{m} {p}")),
            _ => None,
        }
    }
}

/// A TCP or UDP conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowRecord {
    /// Index of this flow.
    pub id: usize,
    /// Transport: `"tcp"`, `"udp"`, `"icmp"`, `"icmpv6"`, `"sctp"`, `"link"` or `"ip-N"`.
    pub protocol: Transport,
    /// Application protocol recognised (`"http"`, `"tls"`, `"dns"`…), `""` when unknown.
    pub app: App,
    /// Client (device) address and port (`"ip:port"`, `"[ipv6]:port"`; port 0 where the transport has none).
    pub client: std::net::SocketAddr,
    /// Server address and port, as `client`. A folded record of many destinations has `0.0.0.0:0`.
    pub server: std::net::SocketAddr,
    /// Best name of the server (see `Finding::destination`).
    pub destination: String,
    /// Packets from the client.
    pub packets_up: u64,
    /// Packets from the server.
    pub packets_down: u64,
    /// Transport payload bytes from the client.
    pub bytes_up: u64,
    /// Transport payload bytes from the server.
    pub bytes_down: u64,
    /// First frame time (ns since the epoch).
    pub first_ns: u64,
    /// Last frame time (ns since the epoch).
    pub last_ns: u64,
    /// First frame number.
    pub first_packet: u64,
    /// Bytes not searched because they were encrypted application data (TLS after the handshake).
    pub opaque_bytes: u64,
    /// The flow's visibility account, client to server: transport payload bytes read (searched as cleartext
    /// or after decoding) — `bytes_up` minus `unread_up`.
    #[serde(default)]
    pub read_up: u64,
    /// Bytes from the client in the flow's unread spans (`Report::unread`, every reason).
    #[serde(default)]
    pub unread_up: u64,
    /// As `read_up`, server to client.
    #[serde(default)]
    pub read_down: u64,
    /// As `unread_up`, server to client.
    #[serde(default)]
    pub unread_down: u64,
    /// Conversations folded into this record (absent or 0: it is one conversation). Past
    /// `analysis::Config::max_flow_records`, finished conversations that nothing else in the report refers to are
    /// counted in one record per protocol, application, server address and destination (or, past that many
    /// destinations too, one per protocol and application with destination `(more destinations)`); their packets
    /// and bytes are summed here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub folded: u64,
    /// TCP reassembly counters, up then down (absent for UDP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<[crate::flow::reassembly::ReassemblyStats; 2]>,
}

/// One DNS question.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DnsQuery {
    /// The name asked for.
    pub name: String,
    /// Query type ("A", "AAAA", ...).
    pub qtype: String,
    /// Frame number of the query (or of the response, when the query was not seen).
    pub packet: u64,
    /// Flow index.
    pub flow: usize,
    /// Response code, when a response was seen ("NOERROR", "NXDOMAIN", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// Answers: addresses and CNAMEs, as text.
    pub answers: Vec<String>,
}

/// One HTTP/1.x request (and its response, when seen).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HttpRequest {
    /// Method.
    pub method: String,
    /// Host header (or absolute-form target host).
    pub host: String,
    /// Path, without the query.
    pub path: String,
    /// Query string, without '?'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The request target as sent.
    pub target: String,
    /// Content-Type of the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Content-Encoding of the request body.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub content_encoding: Vec<String>,
    /// Request headers as sent, `[name, value]` (at most 64, values cut at 512 bytes).
    #[serde(default)]
    pub headers: Vec<[String; 2]>,
    /// Body bytes on the wire.
    pub body_bytes: u64,
    /// Body bytes after undoing chunked/compression.
    pub body_decoded_bytes: u64,
    /// Response status, when seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Best name of the server.
    pub destination: String,
    /// Flow index.
    pub flow: usize,
    /// Frame number where the request head completed.
    pub packet: u64,
    /// Time of that frame.
    pub time_ns: u64,
}

/// One TLS ClientHello.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TlsHello {
    /// Server Name Indication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// TLS versions offered (supported_versions, else the legacy version).
    pub versions: Vec<String>,
    /// JA4 fingerprint.
    pub ja4: String,
    /// Version chosen by the server, when its ServerHello was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated_version: Option<String>,
    /// Best name of the server.
    pub destination: String,
    /// Flow index.
    pub flow: usize,
    /// Frame number where the ClientHello completed.
    pub packet: u64,
    /// What became of the connection's encrypted bytes (decryption with logged keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<TlsDecryption>,
}

/// The decryption state of one TLS (or QUIC) connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TlsDecryption {
    /// `decrypted`, `no_key`, `key_failed` (the logged key did not authenticate), `unsupported_suite`,
    /// `truncated` (bytes lost, or the handshake not seen), `unsupported` (QUIC 1-RTT).
    pub state: String,
    /// Why, in words (which record failed, which suite, what was lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where the keys came from: a key log file, a pcapng decryption secrets block, a run's key log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_source: Option<String>,
    /// The negotiated cipher suite, when its ServerHello was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// Records decrypted (both directions).
    #[serde(default)]
    pub records: u64,
    /// Application data bytes decrypted and searched (both directions).
    #[serde(default)]
    pub plaintext_bytes: u64,
    /// Ciphertext bytes left unread (both directions; also in `unread` as `tls_ciphertext`).
    #[serde(default)]
    pub unread_bytes: u64,
}

/// One DHCP message (devices leak host names and identifiers here).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DhcpMessage {
    /// DISCOVER, REQUEST, ACK...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Client hardware address.
    pub client_mac: String,
    /// Option 12.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Option 61, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Option 60.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_class: Option<String>,
    /// Frame number.
    pub packet: u64,
}

/// Something the reader of the report should know.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Warning {
    /// Machine-readable kind: "damaged-capture", "reassembly-cap", "unsupported-link", ...
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
    /// Byte offset in the file, when it concerns a place in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl FlowRecord {
    /// Whether the conversation is the network's own service rather than a device upload (see
    /// [`FlowRecord::network_service`]).
    pub fn is_network_service(&self) -> bool {
        self.network_service().is_some()
    }

    /// Which of the network's own services the conversation is, if any: ARP, DHCP (by application or UDP port
    /// 67/68), DNS to telltale's resolver (the gateway), NTP (UDP port 123: the vnet answers every NTP request
    /// itself, whatever the address). The device's traffic to anything else — DNS to another server included —
    /// is the device's own. These are listed apart, never counted as uploads or destinations.
    pub fn network_service(&self) -> Option<NetworkService> {
        use crate::net::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DNS_PORT, GATEWAY, NTP_PORT};
        match self.app {
            App::Arp => return Some(NetworkService::Arp),
            App::Dhcp => return Some(NetworkService::Dhcp),
            _ => {}
        }
        let udp = self.protocol == Transport::Udp;
        let dhcp_port = |p: u16| p == DHCP_SERVER_PORT || p == DHCP_CLIENT_PORT;
        if udp && (dhcp_port(self.client.port()) || dhcp_port(self.server.port())) {
            return Some(NetworkService::Dhcp);
        }
        if udp && self.server.port() == NTP_PORT {
            return Some(NetworkService::Ntp);
        }
        (self.server.ip() == std::net::IpAddr::V4(GATEWAY)
            && (self.server.port() == DNS_PORT || self.app == App::Dns))
            .then_some(NetworkService::Dns)
    }

    /// The application protocol's word, else the transport's (`"http"`, `"udp"`): what a person is shown.
    pub fn app_or_transport(&self) -> String {
        if self.app.is_unknown() {
            self.protocol.to_string()
        } else {
            self.app.as_str().to_string()
        }
    }
}

/// One of the network's own services (see [`FlowRecord::network_service`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetworkService {
    /// Address resolution on the segment.
    Arp,
    /// DHCP (the vnet's lease).
    Dhcp,
    /// DNS to telltale's resolver.
    Dns,
    /// NTP (answered by the vnet).
    Ntp,
}

impl NetworkService {
    /// Words for people.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkService::Arp => "ARP",
            NetworkService::Dhcp => "DHCP",
            NetworkService::Dns => "DNS to the network's resolver",
            NetworkService::Ntp => "NTP",
        }
    }
}

/// Traffic totals, in the one definition every view uses (terminal, HTML, JSON, snapshots): transport payload
/// bytes (TCP or UDP payload, no headers; for non-IP frames the frame payload), as in `FlowRecord::bytes_up`
/// and `bytes_down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traffic {
    /// Conversations.
    pub flows: u64,
    /// Bytes the device sent.
    pub up: u64,
    /// Bytes the device received.
    pub down: u64,
}

impl Traffic {
    fn add(&mut self, f: &FlowRecord) {
        self.flows += 1;
        self.up = self.up.saturating_add(f.bytes_up);
        self.down = self.down.saturating_add(f.bytes_down);
    }
}

impl Report {
    /// The device's traffic per destination (network services left out, see [`FlowRecord::network_service`]).
    pub fn traffic_by_destination(&self) -> std::collections::BTreeMap<&str, Traffic> {
        let mut out: std::collections::BTreeMap<&str, Traffic> = std::collections::BTreeMap::new();
        for f in self.flows.iter().filter(|f| !f.is_network_service()) {
            out.entry(f.destination.as_str()).or_default().add(f);
        }
        out
    }

    /// The network's own services used during the run, with their traffic: listed apart from the device's.
    pub fn network_services(&self) -> std::collections::BTreeMap<NetworkService, Traffic> {
        let mut out: std::collections::BTreeMap<NetworkService, Traffic> =
            std::collections::BTreeMap::new();
        for f in &self.flows {
            if let Some(s) = f.network_service() {
                out.entry(s).or_default().add(f);
            }
        }
        out
    }
}

impl Report {
    /// True when at least one canary was found.
    pub fn has_findings(&self) -> bool {
        !self.findings.is_empty()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
