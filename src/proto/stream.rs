//! What the stream-protocol readers (`h2`, `websocket`, `mqtt`) hand back, and [`StreamParser`], the one type the
//! engine holds for a direction read by one of them.
//!
//! Each reader turns one direction of a reassembled TCP stream into *units*: pieces of readable bytes (a header
//! value, a body, a message, a topic) named by a field and by the chain of layers undone to get them. Every byte
//! the reader consumes ends up in some unit, so the engine may leave the raw scan's hits to the units. What a reader
//! cannot read — a cap it hit, or everything after it lost the framing — is reported as [`StreamEvent::Skipped`] or
//! [`StreamEvent::Failed`], never dropped silently.

use super::{h2, mqtt, websocket};

/// One piece of readable bytes of a stream protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Where in the protocol: `header:user-agent`, `body`, `grpc[0]`, `text`, `mqtt.client_id`, `mqtt.publish[t]`.
    pub field: String,
    /// The layers undone to get these bytes, outermost first, joined by `>`: `h2>hpack`, `websocket>deflate`.
    pub chain: String,
    /// HTTP/2 stream the unit belongs to (0 when none).
    pub stream: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// An HTTP request carried by a stream protocol (an HTTP/2 stream's request headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Stream identifier.
    pub stream: u32,
    /// `:method`.
    pub method: String,
    /// `:authority` (or the `host` header).
    pub authority: String,
    /// `:path` up to `?`.
    pub path: String,
    /// The query after `?`, if any.
    pub query: Option<String>,
    /// `:path` as sent.
    pub target: String,
    /// `content-type`.
    pub content_type: Option<String>,
    /// `content-encoding`, split at commas.
    pub content_encoding: Vec<String>,
    /// Every header (pseudo-headers included), values lossily decoded.
    pub headers: Vec<(String, String)>,
}

/// Why bytes were not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A named cap (frame size, header block, HPACK table, decoded size, inflate output) was reached.
    Cap,
    /// The reader could not decode them (a corrupt compressed message, HPACK state lost).
    Failure,
}

/// What a stream reader reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// Readable bytes, to be searched.
    Unit(Unit),
    /// An HTTP request (HTTP/2).
    Request(Box<Request>),
    /// The status of a stream's response (HTTP/2).
    Response {
        /// Stream identifier.
        stream: u32,
        /// `:status`.
        status: u16,
    },
    /// `bytes` could not be read, for `reason`; `what` names the cap or the failure.
    Skipped {
        /// Cap or failure.
        reason: SkipReason,
        /// The cap's or the failure's name, e.g. `h2 frame size cap (1 MiB)`.
        what: String,
        /// How many bytes.
        bytes: u64,
    },
    /// The reader lost the framing: the bytes from `consumed` of the chunk being fed on are not read by it any
    /// more (the engine searches them raw).
    Failed {
        /// Why.
        reason: String,
        /// Bytes of the chunk being fed that were consumed before the failure.
        consumed: usize,
    },
}

/// Which stream protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// HTTP/2 (cleartext prior knowledge, h2c upgrade, or ALPN `h2` after decryption).
    H2,
    /// WebSocket after an HTTP/1.1 upgrade.
    WebSocket,
    /// MQTT 3.1, 3.1.1 or 5.
    Mqtt,
}

impl StreamKind {
    /// The protocol's name in the report (a flow's `app`, a finding's `protocol`).
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::H2 => "http2",
            StreamKind::WebSocket => "websocket",
            StreamKind::Mqtt => "mqtt",
        }
    }
}

/// The reader of one direction of a stream protocol.
pub enum StreamParser {
    /// HTTP/2.
    H2(Box<h2::H2Parser>),
    /// WebSocket.
    WebSocket(Box<websocket::WsParser>),
    /// MQTT.
    Mqtt(Box<mqtt::MqttParser>),
}

impl StreamParser {
    /// A reader of `kind` for the client's (`client`) or the server's direction. An HTTP/2 client direction
    /// starts with the connection preface when `preface` is set (prior knowledge, h2c after the 101, ALPN).
    pub fn new(kind: StreamKind, client: bool) -> StreamParser {
        match kind {
            StreamKind::H2 => StreamParser::H2(Box::new(h2::H2Parser::new(client))),
            StreamKind::WebSocket => StreamParser::WebSocket(Box::default()),
            StreamKind::Mqtt => StreamParser::Mqtt(Box::new(mqtt::MqttParser::new(client))),
        }
    }

    /// Which protocol.
    pub fn kind(&self) -> StreamKind {
        match self {
            StreamParser::H2(_) => StreamKind::H2,
            StreamParser::WebSocket(_) => StreamKind::WebSocket,
            StreamParser::Mqtt(_) => StreamKind::Mqtt,
        }
    }

    /// Reads the next in-order bytes of the direction.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        match self {
            StreamParser::H2(p) => p.feed(bytes, out),
            StreamParser::WebSocket(p) => p.feed(bytes, out),
            StreamParser::Mqtt(p) => p.feed(bytes, out),
        }
    }

    /// The direction ended: what is held (a partial frame, an unfinished body or message) is handed out.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self {
            StreamParser::H2(p) => p.finish(out),
            StreamParser::WebSocket(p) => p.finish(out),
            StreamParser::Mqtt(p) => p.finish(out),
        }
    }

    /// The MQTT protocol level seen in the client's CONNECT (0 before it, and for other protocols).
    pub fn mqtt_level(&self) -> u8 {
        match self {
            StreamParser::Mqtt(p) => p.level(),
            _ => 0,
        }
    }

    /// Tells an MQTT server-direction reader the protocol level the client announced.
    pub fn set_mqtt_level(&mut self, level: u8) {
        if let StreamParser::Mqtt(p) = self {
            p.set_level(level);
        }
    }
}

/// A buffer that collects one frame/packet at a time (shared by the readers).
pub(crate) fn take_into(buf: &mut Vec<u8>, want: usize, input: &mut &[u8]) -> bool {
    let need = want.saturating_sub(buf.len());
    let n = need.min(input.len());
    let (now, rest) = input.split_at(n);
    buf.extend_from_slice(now);
    *input = rest;
    buf.len() >= want
}
