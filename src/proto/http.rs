//! Sans-IO, streaming HTTP/1.x parser for one direction of a reassembled TCP stream.
//!
//! This module owns HTTP/1.x message framing (RFC 9112) and body decoding for canary search:
//!
//! * it reports every request / response head ([`HttpEvent::Head`]) with its stream offset;
//! * it undoes `Transfer-Encoding: chunked` and content codings (`gzip`/`x-gzip`, `deflate`
//!   zlib-wrapped or raw, `br`, `zstd`, stacked codings, plus gzip bodies sent without a
//!   `Content-Encoding` header) and delivers the decoded bytes in bounded pieces
//!   ([`HttpEvent::Body`]) as they are produced — bodies are never buffered whole;
//! * it ends every message ([`HttpEvent::End`]) and reports loss of sync ([`HttpEvent::Desync`]),
//!   after which it scans for the next request line / status line and carries on;
//! * capture gaps inside a body of known length (or a chunk of known size) are skipped
//!   without losing sync;
//! * it reports what clients really send, not only what RFC 9112 allows: any token method,
//!   request lines split on whitespace words (RFC 9112 §3), and — for a known method at a
//!   message boundary — HTTP/0.9-form lines without version, a malformed `HTTP/1.` version
//!   or a line holding only the method; obsolete line folding in requests is replaced by
//!   spaces (RFC 9112 §5.2). Each tolerated deviation is listed in [`Head::anomalies`].
//!   Lengths (Content-Length, chunk sizes) above 2^63 − 1 are invalid framing, so the bytes
//!   after them are searched for the next message instead of being swallowed as body.
//!
//! Bodies that are not transformed (plain `Content-Length` or read-until-close bodies without
//! content coding) produce no `Body` events: the caller scans the raw stream itself, and such
//! bytes are only counted down (O(1) per [`HttpParser::feed`]).
//!
//! Memory is bounded: heads and trailer sections are capped at 64 KiB, chunk-size lines at 4 KiB,
//! decoders work in 32 KiB output steps, the zstd window is limited to 16 MiB, brotli
//! large-window streams are refused, and decoded output per message is capped
//! (64 MiB by default, see [`HttpParser::set_decoded_cap`]).

use std::collections::VecDeque;

use memchr::{memchr, memchr2, memmem};
use serde::Serialize;

/// Largest head (request/status line plus header section) accepted, in bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// Default cap on decoded body bytes delivered per message.
pub const DEFAULT_DECODED_CAP: u64 = 64 * 1024 * 1024;

const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 64 * 1024;
const MAX_PENDING_METHODS: usize = 1024;
const MAX_METHOD_LEN: usize = 31;
const OUT_CHUNK: usize = 32 * 1024;
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Registered and widely deployed methods (RFC 9110, WebDAV and its extensions, UPnP/SSDP,
/// Microsoft RPC-over-HTTP and SSTP, Cisco CCM): recognised by [`looks_like_http_request`] and
/// when resynchronising a client stream, and the only methods accepted on a degraded request
/// line (missing or malformed HTTP version, see [`Head::anomalies`]).
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "POST",
    "PUT",
    "HEAD",
    "DELETE",
    "OPTIONS",
    "PATCH",
    "CONNECT",
    "TRACE",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "QUERY",
    "ACL",
    "BIND",
    "REBIND",
    "UNBIND",
    "LINK",
    "UNLINK",
    "LABEL",
    "MERGE",
    "UPDATE",
    "CHECKIN",
    "CHECKOUT",
    "UNCHECKOUT",
    "MKACTIVITY",
    "MKWORKSPACE",
    "MKCALENDAR",
    "MKREDIRECTREF",
    "UPDATEREDIRECTREF",
    "ORDERPATCH",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
    "BCOPY",
    "BMOVE",
    "BDELETE",
    "BPROPFIND",
    "BPROPPATCH",
    "POLL",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "M-SEARCH",
    "M-POST",
    "CCM_POST",
    "RPC_CONNECT",
    "RPC_IN_DATA",
    "RPC_OUT_DATA",
    "SSTP_DUPLEX_POST",
];

/// How many of [`KNOWN_METHODS`] (the first ones) are common enough that
/// [`looks_like_http_request`] trusts them alone on a line.
const CORE_METHODS: usize = 17;

fn is_known_method(m: &[u8]) -> bool {
    KNOWN_METHODS.iter().any(|k| k.as_bytes() == m)
}

/// Which side of the connection produced the bytes fed to a parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Client → server: the stream carries requests.
    Client,
    /// Server → client: the stream carries responses.
    Server,
}

/// A parsed request or response head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Offset of the first byte of the head within this direction's stream.
    pub stream_offset: u64,
    /// Bytes of the head, including the final empty line.
    pub head_len: usize,
    /// The head bytes (at most [`MAX_HEAD_LEN`]).
    pub raw: Vec<u8>,
    /// Request line or status line.
    pub kind: HeadKind,
    /// Header fields in order: names as sent, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// `Host` header, or the authority of an absolute-form / authority-form target.
    pub host: Option<String>,
    /// First `Content-Type` header.
    pub content_type: Option<String>,
    /// Valid `Content-Length` (all values present agree, are decimal digits and at most
    /// 2^63 − 1).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding` ends in `chunked`.
    pub chunked: bool,
    /// Content codings, lower-cased, in the order they were applied.
    pub content_encoding: Vec<String>,
    /// Deviations from RFC 9112 tolerated while parsing this head, e.g. a request line without
    /// HTTP version (HTTP/0.9 form), a malformed version, extra words in the request line, or
    /// obsolete line folding (replaced by spaces, RFC 9112 §5.2). Empty for a well-formed head.
    pub anomalies: Vec<String>,
}

/// The first line of a head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HeadKind {
    /// A request line.
    Request {
        /// Method as sent.
        method: String,
        /// Request target as sent (empty when the request line has only a method).
        target: String,
        /// Target path (up to `?`/`#`; for absolute-form targets the path part, `/` if empty).
        path: String,
        /// Text after `?`, without any fragment.
        query: Option<String>,
        /// HTTP/1.x minor version (0 or 1); 0 also for a request line without HTTP version
        /// (HTTP/0.9 form, listed in [`Head::anomalies`]).
        version: u8,
    },
    /// A status line.
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// HTTP/1.x minor version (0 or 1).
        version: u8,
    },
}

/// Something the parser found; see [`HttpParser::feed`].
// `Head` is large, but events are handed to a callback one at a time, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum HttpEvent<'a> {
    /// A complete head.
    Head(Head),
    /// Decoded body bytes — emitted only when the body is transformed (chunked and/or
    /// content-encoded), because the caller already scans the raw stream.
    Body {
        /// The decoded bytes of this piece.
        decoded: &'a [u8],
        /// Offset of `decoded[0]` within the decoded body.
        decoded_offset: u64,
        /// Stream offset of the wire byte that produced this piece (approximate when compressed).
        wire_offset: u64,
        /// What was undone, in order, e.g. `chunked`, `gzip`, `chunked+gzip`, `gzip-sniffed`.
        layers: &'a str,
    },
    /// Message finished.
    End {
        /// Body bytes on the wire (including chunk framing and trailers, and skipped gaps).
        body_wire_len: u64,
        /// Decoded body bytes (equal to `body_wire_len` when the body is not transformed).
        body_decoded_len: u64,
        /// False when the stream ended, gapped or lost sync inside the message.
        complete: bool,
        /// Why decoding failed or stopped (corrupt/truncated data, unsupported coding, gap).
        decode_error: Option<String>,
        /// Decoded output reached the per-message cap and decoding stopped.
        decoded_capped: bool,
    },
    /// The parser lost sync; it now looks for the next request line / status line.
    Desync {
        /// Stream offset where sync was lost.
        stream_offset: u64,
        /// Human-readable cause.
        reason: String,
    },
}

/// Why the parser lost sync.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SyncError {
    #[error("not an HTTP/1.x {0}")]
    NotHttp(&'static str),
    #[error("head exceeds {MAX_HEAD_LEN} bytes")]
    HeadTooLarge,
    #[error("malformed head: {0}")]
    BadHead(String),
    #[error("invalid Content-Length")]
    BadContentLength,
    #[error("request Transfer-Encoding does not end in chunked")]
    BadTransferEncoding,
    #[error("invalid chunk size line")]
    BadChunkSize,
    #[error("chunk size line exceeds {MAX_CHUNK_LINE} bytes")]
    ChunkLineTooLong,
    #[error("missing CRLF after chunk data")]
    MissingChunkCrlf,
    #[error("trailer section exceeds {MAX_TRAILERS} bytes")]
    TrailersTooLarge,
    #[error("capture gap of {0} bytes where the framing is unknown")]
    Gap(u64),
    #[error("capture gap of {0} bytes runs past the end of the message")]
    GapPastEnd(u64),
    #[error("stream ended inside a message head")]
    TruncatedHead,
    #[error("internal: parser made no progress")]
    Stuck,
}

/// Why body decoding failed or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DecodeError {
    #[error("gzip: {0}")]
    Gzip(String),
    #[error("deflate: {0}")]
    Deflate(String),
    #[error("br: {0}")]
    Brotli(String),
    #[error("zstd: {0}")]
    Zstd(String),
    #[error("unsupported coding {0:?}")]
    Unsupported(String),
    #[error("capture gap inside an encoded body")]
    Gap,
}

/// Streaming HTTP/1.x parser for one direction of a connection.
pub struct HttpParser {
    role: Role,
    offset: u64,
    state: State,
    /// Probe bytes / head bytes collected so far.
    head_buf: Vec<u8>,
    /// Stream offset of `head_buf[0]`.
    head_start: u64,
    /// Methods of requests seen on the other direction (Server role).
    methods: VecDeque<String>,
    decoded_cap: u64,
    /// Stream offset where tunnelled (non-HTTP) bytes start, once a tunnel is entered.
    tunnel_start: Option<u64>,
}

enum State {
    /// At a message start (`strict == false`) or at a line start while resynchronising
    /// (`strict == true`): collecting the first bytes of a request/status line.
    Probe { strict: bool },
    /// Resynchronising: skipping to the next line feed.
    MidLine,
    /// Collecting a head until the empty line. `in_sync`: the head starts at a message
    /// boundary (not found while resynchronising), so degraded request lines are accepted.
    Head { eoh: Eoh, in_sync: bool },
    /// Inside a body.
    Body(Box<Body>),
    /// After CONNECT / 101 Switching Protocols: not HTTP any more; bytes are ignored.
    Tunnel,
    /// After [`HttpParser::finish`].
    Closed,
}

/// End-of-head scanner state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Eoh {
    InLine,
    LineStart,
    LineStartCr,
}

enum Verdict {
    Undecided,
    Match,
    Reject,
}

impl HttpParser {
    /// A parser for the stream sent by `role`.
    pub fn new(role: Role) -> Self {
        HttpParser {
            role,
            offset: 0,
            state: State::Probe { strict: false },
            head_buf: Vec::new(),
            head_start: 0,
            methods: VecDeque::new(),
            decoded_cap: DEFAULT_DECODED_CAP,
            tunnel_start: None,
        }
    }

    /// Stream offset of the first byte after the head that started a tunnel (a CONNECT
    /// request, a 2xx answer to CONNECT, or 101 Switching Protocols), if the stream entered one.
    /// Bytes from there on are not HTTP; the parser only counts them, so a caller that wants to
    /// dissect the tunnelled protocol (e.g. TLS through a proxy) should hand them elsewhere.
    pub fn tunnel_start(&self) -> Option<u64> {
        self.tunnel_start
    }

    /// Sets the cap on decoded bytes delivered per message (default [`DEFAULT_DECODED_CAP`]);
    /// applies to messages whose head is parsed afterwards.
    pub fn set_decoded_cap(&mut self, cap: u64) {
        self.decoded_cap = cap;
    }

    /// Stream bytes consumed so far (fed bytes plus gap lengths).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// For a Server-role parser: record the method of the next request seen on the other
    /// direction, in order. Responses consume them (1xx excepted) to know that a response to
    /// HEAD has no body and that a 2xx to CONNECT starts a tunnel. Without a recorded method a
    /// response is treated as answering GET. At most 1024 are kept (oldest dropped).
    pub fn push_request_method(&mut self, method: &str) {
        if self.methods.len() >= MAX_PENDING_METHODS {
            self.methods.pop_front();
        }
        self.methods.push_back(method.to_owned());
    }

    /// Feeds the next bytes of the stream; events are passed to `out` as they are found.
    /// After [`finish`](Self::finish), fed bytes are only counted.
    pub fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(HttpEvent<'_>)) {
        let mut pos = 0usize;
        let mut idle = 0u32;
        while pos < data.len() {
            let rest = data.get(pos..).unwrap_or_default();
            let n = self.step(rest, out).min(rest.len());
            pos += n;
            self.offset = self.offset.saturating_add(n as u64);
            if n == 0 {
                idle += 1;
                if idle > 8 {
                    // Defensive: every state transition chain consumes within a few steps.
                    out(HttpEvent::Desync {
                        stream_offset: self.offset,
                        reason: SyncError::Stuck.to_string(),
                    });
                    self.head_buf.clear();
                    self.state = State::MidLine;
                    idle = 0;
                    pos += 1;
                    self.offset = self.offset.saturating_add(1);
                }
            } else {
                idle = 0;
            }
        }
    }

    /// `len` bytes of the stream are missing (capture loss). Inside a body of known length
    /// (or a chunk of known size) or a read-until-close body the parser skips them and stays
    /// in sync; otherwise it reports [`HttpEvent::Desync`] and resynchronises.
    pub fn gap(&mut self, len: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if len == 0 {
            return;
        }
        let at = self.offset;
        let state = std::mem::replace(&mut self.state, State::Closed);
        self.state = match state {
            State::Closed => State::Closed,
            State::Tunnel => State::Tunnel,
            State::MidLine => State::Probe { strict: true },
            State::Probe { strict: true } => {
                self.head_buf.clear();
                State::Probe { strict: true }
            }
            State::Probe { strict: false } | State::Head { .. } => {
                let start = if self.head_buf.is_empty() {
                    at
                } else {
                    self.head_start
                };
                self.head_buf.clear();
                out(HttpEvent::Desync {
                    stream_offset: start,
                    reason: SyncError::Gap(len).to_string(),
                });
                State::Probe { strict: true }
            }
            State::Body(mut body) => match body.gap(len, out) {
                GapOutcome::Inside => State::Body(body),
                GapOutcome::EndsMessage => {
                    body.end(false, out);
                    State::Probe { strict: false }
                }
                GapOutcome::PastEnd(skipped) => {
                    body.end(false, out);
                    out(HttpEvent::Desync {
                        stream_offset: at.saturating_add(skipped),
                        reason: SyncError::GapPastEnd(len).to_string(),
                    });
                    State::Probe { strict: true }
                }
                GapOutcome::Unknown(skipped) => {
                    body.end(false, out);
                    out(HttpEvent::Desync {
                        stream_offset: at.saturating_add(skipped),
                        reason: SyncError::Gap(len).to_string(),
                    });
                    State::Probe { strict: true }
                }
            },
        };
        self.offset = self.offset.saturating_add(len);
    }

    /// End of stream (FIN/RST/end of capture): ends a read-until-close body (complete), ends a
    /// partial message (incomplete), reports a partial head as [`HttpEvent::Desync`].
    /// A request line without HTTP version (HTTP/0.9 form) is complete at its line end, so a
    /// stream that ends after it still reports the request.
    pub fn finish(&mut self, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if let State::Head { in_sync: true, .. } = self.state {
            if self.role == Role::Client && memchr(b'\n', &self.head_buf).is_some() {
                self.complete_head(true, true, out);
            }
        }
        let state = std::mem::replace(&mut self.state, State::Closed);
        match state {
            State::Probe { strict: false } | State::Head { .. } if !self.head_buf.is_empty() => {
                out(HttpEvent::Desync {
                    stream_offset: self.head_start,
                    reason: SyncError::TruncatedHead.to_string(),
                });
            }
            State::Body(body) => {
                let until_close = matches!(body.framing, Framing::UntilClose);
                body.end(until_close, out);
            }
            _ => {}
        }
        self.head_buf.clear();
    }

    fn step(&mut self, data: &[u8], out: &mut dyn FnMut(HttpEvent<'_>)) -> usize {
        let base = self.offset;
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Probe { strict } => self.step_probe(data, base, strict, out),
            State::MidLine => match memchr(b'\n', data) {
                Some(i) => {
                    self.state = State::Probe { strict: true };
                    i + 1
                }
                None => {
                    self.state = State::MidLine;
                    data.len()
                }
            },
            State::Head { eoh, in_sync } => self.step_head(data, eoh, in_sync, out),
            State::Body(body) => self.step_body(body, data, base, out),
            State::Tunnel => {
                self.state = State::Tunnel;
                data.len()
            }
            State::Closed => data.len(),
        }
    }

    fn step_probe(
        &mut self,
        data: &[u8],
        base: u64,
        strict: bool,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) -> usize {
        self.state = State::Probe { strict };
        for (i, &b) in data.iter().enumerate() {
            if self.head_buf.is_empty() && (b == b'\r' || b == b'\n') {
                // Empty lines before a message (RFC 9112 §2.2) / line starts while resyncing.
                continue;
            }
            if self.head_buf.is_empty() {
                self.head_start = base.saturating_add(i as u64);
            }
            self.head_buf.push(b);
            match probe_verdict(self.role, &self.head_buf, strict) {
                Verdict::Undecided => {}
                Verdict::Match => {
                    // A method-only request line ends at the byte that matched.
                    let eoh = if b == b'\n' {
                        Eoh::LineStart
                    } else {
                        Eoh::InLine
                    };
                    self.state = State::Head {
                        eoh,
                        in_sync: !strict,
                    };
                    return i + 1;
                }
                Verdict::Reject => {
                    self.head_buf.clear();
                    if !strict {
                        out(HttpEvent::Desync {
                            stream_offset: self.head_start,
                            reason: SyncError::NotHttp(match self.role {
                                Role::Client => "request",
                                Role::Server => "response",
                            })
                            .to_string(),
                        });
                    }
                    self.state = if b == b'\n' {
                        State::Probe { strict: true }
                    } else {
                        State::MidLine
                    };
                    return i + 1;
                }
            }
        }
        data.len()
    }

    fn step_head(
        &mut self,
        data: &[u8],
        mut eoh: Eoh,
        in_sync: bool,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) -> usize {
        let (n, done) = scan_eoh(&mut eoh, data);
        let room = MAX_HEAD_LEN.saturating_sub(self.head_buf.len());
        if n > room {
            let start = self.head_start;
            self.head_buf.clear();
            out(HttpEvent::Desync {
                stream_offset: start,
                reason: SyncError::HeadTooLarge.to_string(),
            });
            self.state = State::MidLine;
            return room;
        }
        self.head_buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if done {
            self.complete_head(in_sync, false, out);
        } else {
            self.state = State::Head { eoh, in_sync };
        }
        n
    }

    /// Parses the collected head and sets up the body. `at_eof`: the stream ended before the
    /// empty line; only a request line without HTTP version (HTTP/0.9 form, which has no
    /// header section) is then complete.
    fn complete_head(&mut self, in_sync: bool, at_eof: bool, out: &mut dyn FnMut(HttpEvent<'_>)) {
        let raw = std::mem::take(&mut self.head_buf);
        let start = self.head_start;
        let body_start = start.saturating_add(raw.len() as u64);
        let mode = ParseMode { in_sync, at_eof };
        let (head, info) = match parse_head(self.role, raw, start, mode) {
            Ok(v) => v,
            Err(e) => {
                out(HttpEvent::Desync {
                    stream_offset: start,
                    reason: e.to_string(),
                });
                self.state = State::Probe { strict: true };
                return;
            }
        };
        let plan = self.plan_body(&head, &info);
        let chunked = head.chunked;
        // Codings in the order applied: content codings, then transfer codings before chunked.
        let mut applied = head.content_encoding.clone();
        applied.extend(info.te_codings.iter().cloned());
        out(HttpEvent::Head(head));
        let end_empty = |out: &mut dyn FnMut(HttpEvent<'_>), complete: bool| {
            out(HttpEvent::End {
                body_wire_len: 0,
                body_decoded_len: 0,
                complete,
                decode_error: None,
                decoded_capped: false,
            })
        };
        let framing = match plan {
            Plan::NoBody => {
                end_empty(out, true);
                self.state = State::Probe { strict: false };
                return;
            }
            Plan::Tunnel => {
                end_empty(out, true);
                self.tunnel_start = Some(body_start);
                self.state = State::Tunnel;
                return;
            }
            Plan::Invalid(e) => {
                end_empty(out, false);
                out(HttpEvent::Desync {
                    stream_offset: body_start,
                    reason: e.to_string(),
                });
                self.state = State::Probe { strict: true };
                return;
            }
            Plan::Fixed(n) => Framing::Fixed { remaining: n },
            Plan::Chunked => Framing::Chunked(Chunk::Size { line: Vec::new() }),
            Plan::UntilClose => Framing::UntilClose,
        };
        let (decode, error) = build_decode(chunked, &applied, self.decoded_cap);
        self.state = State::Body(Box::new(Body {
            framing,
            wire_len: 0,
            end_offset: body_start,
            gapped: false,
            decode,
            error,
            cap: self.decoded_cap,
        }));
    }

    fn plan_body(&mut self, head: &Head, info: &FramingInfo) -> Plan {
        match &head.kind {
            HeadKind::Request { method, .. } => {
                if method.eq_ignore_ascii_case("CONNECT") {
                    return Plan::Tunnel;
                }
                if info.te_present {
                    return if head.chunked {
                        Plan::Chunked
                    } else {
                        Plan::Invalid(SyncError::BadTransferEncoding)
                    };
                }
                match info.content_length {
                    Cl::Absent | Cl::Valid(0) => Plan::NoBody,
                    Cl::Valid(n) => Plan::Fixed(n),
                    Cl::Invalid => Plan::Invalid(SyncError::BadContentLength),
                }
            }
            HeadKind::Response { status, .. } => {
                let status = *status;
                if (100..200).contains(&status) {
                    if status == 101 {
                        self.methods.pop_front();
                        return Plan::Tunnel;
                    }
                    return Plan::NoBody;
                }
                let method = self.methods.pop_front();
                let is = |m: &str| method.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(m));
                if is("HEAD") {
                    return Plan::NoBody;
                }
                if is("CONNECT") && (200..300).contains(&status) {
                    return Plan::Tunnel;
                }
                if status == 204 || status == 304 {
                    return Plan::NoBody;
                }
                if info.te_present {
                    return if head.chunked {
                        Plan::Chunked
                    } else {
                        Plan::UntilClose
                    };
                }
                match info.content_length {
                    Cl::Valid(0) => Plan::NoBody,
                    Cl::Valid(n) => Plan::Fixed(n),
                    Cl::Invalid => Plan::Invalid(SyncError::BadContentLength),
                    Cl::Absent => Plan::UntilClose,
                }
            }
        }
    }

    fn step_body(
        &mut self,
        mut body: Box<Body>,
        data: &[u8],
        base: u64,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) -> usize {
        let (n, outcome) = body.advance(data, base, out);
        match outcome {
            Outcome::More => self.state = State::Body(body),
            Outcome::Done => {
                body.end(true, out);
                self.state = State::Probe { strict: false };
            }
            Outcome::Bad(e, at) => {
                body.end(false, out);
                out(HttpEvent::Desync {
                    stream_offset: at,
                    reason: e.to_string(),
                });
                self.state = State::Probe { strict: true };
            }
        }
        n
    }
}

/// Decides whether the first bytes of a line can start a request line / status line.
fn probe_verdict(role: Role, buf: &[u8], strict: bool) -> Verdict {
    match role {
        Role::Server => {
            const PAT: &[u8; 12] = b"HTTP/1.# ###";
            for (i, &b) in buf.iter().enumerate() {
                let ok = match PAT.get(i) {
                    Some(b'#') => b.is_ascii_digit(),
                    Some(&p) => b == p,
                    None => return Verdict::Match,
                };
                if !ok {
                    return Verdict::Reject;
                }
            }
            if buf.len() >= PAT.len() {
                Verdict::Match
            } else {
                Verdict::Undecided
            }
        }
        Role::Client if strict => {
            let mut possible = false;
            for m in KNOWN_METHODS {
                let m = m.as_bytes();
                let k = buf.len().min(m.len());
                if buf.get(..k) != m.get(..k) {
                    continue;
                }
                match buf.get(m.len()) {
                    Some(b' ') => return Verdict::Match,
                    Some(_) => {}
                    None => possible = true,
                }
            }
            if possible {
                Verdict::Undecided
            } else {
                Verdict::Reject
            }
        }
        Role::Client => {
            for (i, &b) in buf.iter().enumerate() {
                if b == b' ' {
                    return if i > 0 {
                        Verdict::Match
                    } else {
                        Verdict::Reject
                    };
                }
                if (b == b'\r' || b == b'\n') && is_known_method(buf.get(..i).unwrap_or_default()) {
                    // A request line holding only a method (tolerated when in sync).
                    return Verdict::Match;
                }
                if !is_tchar(b) || i >= MAX_METHOD_LEN {
                    return Verdict::Reject;
                }
            }
            Verdict::Undecided
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Scans for the empty line that ends a head or trailer section. Returns the bytes consumed
/// and whether the end was found (the consumed bytes then end with its line feed).
fn scan_eoh(eoh: &mut Eoh, data: &[u8]) -> (usize, bool) {
    let mut i = 0;
    while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
        match *eoh {
            Eoh::InLine => match memchr(b'\n', rest) {
                Some(j) => {
                    i += j + 1;
                    *eoh = Eoh::LineStart;
                }
                None => return (data.len(), false),
            },
            Eoh::LineStart | Eoh::LineStartCr => {
                let b = rest.first().copied().unwrap_or_default();
                i += 1;
                match (b, *eoh) {
                    (b'\n', _) => return (i, true),
                    (b'\r', Eoh::LineStart) => *eoh = Eoh::LineStartCr,
                    _ => *eoh = Eoh::InLine,
                }
            }
        }
    }
    (i, false)
}

/// What the headers say about framing.
struct FramingInfo {
    te_present: bool,
    /// Transfer codings other than the final `chunked`, in the order applied.
    te_codings: Vec<String>,
    content_length: Cl,
}

enum Cl {
    Absent,
    Valid(u64),
    Invalid,
}

enum Plan {
    NoBody,
    Tunnel,
    Fixed(u64),
    Chunked,
    UntilClose,
    Invalid(SyncError),
}

fn split_list(value: &str, out: &mut Vec<String>) {
    for item in value.split(',') {
        let item = item.split(';').next().unwrap_or_default().trim();
        if !item.is_empty() {
            out.push(item.to_ascii_lowercase());
        }
    }
}

/// How a head was delimited.
#[derive(Clone, Copy)]
struct ParseMode {
    /// The head starts at a message boundary (not found while resynchronising).
    in_sync: bool,
    /// The stream ended before the empty line.
    at_eof: bool,
}

/// A request line parsed on whitespace-delimited word boundaries (RFC 9112 §3).
struct RequestLine {
    method: String,
    target: String,
    /// HTTP/1.x minor version; `None` when the line has no version (HTTP/0.9 form).
    version: Option<u8>,
    anomalies: Vec<String>,
}

/// Whitespace a recipient may treat as the request-line separator (RFC 9112 §3).
fn is_line_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c | b'\r')
}

/// Parses a request line (without its LF) leniently, the way a recipient may (RFC 9112 §3):
/// words separated by any run of whitespace; the first word after the method is the target and
/// the last word the HTTP version, which must be `HTTP/1.x`. Words in between are tolerated (and
/// reported). A malformed version (`HTTP/1.`), a missing version (HTTP/0.9 form `GET /`) or a
/// missing target are accepted only for a known method at a message boundary (`in_sync`).
fn parse_request_line(line: &[u8], in_sync: bool) -> Option<RequestLine> {
    let end = line
        .iter()
        .rposition(|b| !is_line_ws(*b))
        .map_or(0, |i| i + 1);
    let line = line.get(..end)?;
    let mlen = line.iter().take_while(|b| is_tchar(**b)).count();
    if mlen == 0 || mlen > MAX_METHOD_LEN {
        return None;
    }
    let (method, rest) = line.split_at(mlen);
    if rest.first().is_some_and(|b| !is_line_ws(*b)) {
        return None;
    }
    let words: Vec<&[u8]> = rest
        .split(|b| is_line_ws(*b))
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| w.iter().any(|b| b.is_ascii_control())) {
        return None;
    }
    let degraded_ok = in_sync && is_known_method(method);
    let mut anomalies = Vec::new();
    let (target, version): (&[u8], Option<u8>) = match words.as_slice() {
        [] if degraded_ok => {
            anomalies.push("request line has no request target and no HTTP version".to_owned());
            (b"", None)
        }
        [target] if degraded_ok => {
            anomalies.push("request line has no HTTP version (HTTP/0.9 form)".to_owned());
            (target, None)
        }
        [target, middle @ .., version] => {
            let minor = version.strip_prefix(b"HTTP/1.")?;
            let minor = match minor {
                b"0" => 0,
                b"1" => 1,
                _ if degraded_ok => {
                    anomalies.push(format!(
                        "malformed HTTP version {:?}",
                        String::from_utf8_lossy(version)
                    ));
                    u8::from(minor != b"0")
                }
                _ => return None,
            };
            if !middle.is_empty() {
                let extra: Vec<String> = middle
                    .iter()
                    .map(|w| String::from_utf8_lossy(w).into_owned())
                    .collect();
                anomalies.push(format!(
                    "extra words in request line: {:?}",
                    extra.join(" ")
                ));
            }
            (target, Some(minor))
        }
        _ => return None,
    };
    Some(RequestLine {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        version,
        anomalies,
    })
}

/// Replaces each obs-fold (a line break followed by SP/HTAB continuing a header field) in a
/// request head with spaces, as RFC 9112 §5.2 allows a server to do. A whitespace-led line right
/// after the request line continues no field and is left alone (httparse ignores it).
/// Returns `None` when there is nothing to unfold.
fn unfold_request_head(raw: &[u8]) -> Option<Vec<u8>> {
    let mut pos = memchr(b'\n', raw)? + 1;
    let mut out: Option<Vec<u8>> = None;
    let mut prev_is_field = false;
    while let Some(rest) = raw.get(pos..).filter(|r| !r.is_empty()) {
        let len = memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..len).unwrap_or_default();
        if line.is_empty() || line == b"\r" {
            break;
        }
        let ws_led = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if ws_led && prev_is_field {
            let buf = out.get_or_insert_with(|| raw.to_vec());
            // The previous line's terminator: LF at pos - 1, possibly CR before it.
            for i in [pos.wrapping_sub(1), pos.wrapping_sub(2)] {
                if let Some(b) = buf.get_mut(i).filter(|b| **b == b'\n' || **b == b'\r') {
                    *b = b' ';
                }
            }
        } else {
            prev_is_field = !ws_led;
        }
        pos = pos.saturating_add(len).saturating_add(1);
    }
    out
}

/// A parsed request head.
struct ParsedRequest {
    method: String,
    target: String,
    version: u8,
    headers: Vec<(String, String)>,
    anomalies: Vec<String>,
}

/// Runs httparse's request parser.
fn httparse_request(cfg: &httparse::ParserConfig, input: &[u8]) -> Result<ParsedRequest, String> {
    let lines = memchr::memchr_iter(b'\n', input).count().max(1);
    let mut slots = vec![httparse::EMPTY_HEADER; lines];
    let mut req = httparse::Request::new(&mut slots);
    match cfg.parse_request(&mut req, input) {
        Ok(httparse::Status::Complete(_)) => Ok(ParsedRequest {
            method: req.method.unwrap_or_default().to_owned(),
            target: req.path.unwrap_or_default().to_owned(),
            version: req.version.unwrap_or(1),
            headers: collect_headers(req.headers),
            anomalies: Vec::new(),
        }),
        Ok(httparse::Status::Partial) => Err("incomplete".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a request head: httparse first; when it rejects the request line, the lenient
/// [`parse_request_line`] decides and httparse parses the header section behind a stand-in
/// request line.
fn parse_request_head(raw: &[u8], mode: ParseMode) -> Result<ParsedRequest, SyncError> {
    let mut anomalies = Vec::new();
    let unfolded = unfold_request_head(raw);
    if unfolded.is_some() {
        anomalies.push("obsolete line folding replaced by spaces".to_owned());
    }
    let mut input = unfolded.unwrap_or_else(|| raw.to_vec());
    let first_len = memchr(b'\n', &input).unwrap_or(input.len());
    let first = input.get(..first_len).unwrap_or_default();
    if mode.at_eof {
        // Only an HTTP/0.9-form request is complete without the empty line.
        match parse_request_line(first, mode.in_sync) {
            Some(RequestLine { version: None, .. }) => {}
            _ => return Err(SyncError::TruncatedHead),
        }
        match input.last() {
            Some(b'\n') => {}
            Some(b'\r') => input.push(b'\n'),
            _ => input.extend_from_slice(b"\r\n"),
        }
        input.extend_from_slice(b"\r\n");
    }
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_request_line_delimiters(true)
        .ignore_invalid_headers_in_requests(true);
    let mut parsed = match httparse_request(&cfg, &input) {
        Ok(v) => v,
        Err(e) => {
            let first = input.get(..first_len).unwrap_or_default();
            let Some(rl) = parse_request_line(first, mode.in_sync) else {
                return Err(SyncError::BadHead(e));
            };
            let mut stand_in = b"GET / HTTP/1.1".to_vec();
            stand_in.extend_from_slice(input.get(first_len..).unwrap_or_default());
            let headers = httparse_request(&cfg, &stand_in)
                .map_err(SyncError::BadHead)?
                .headers;
            ParsedRequest {
                method: rl.method,
                target: rl.target,
                version: rl.version.unwrap_or(0),
                headers,
                anomalies: rl.anomalies,
            }
        }
    };
    anomalies.append(&mut parsed.anomalies);
    parsed.anomalies = anomalies;
    Ok(parsed)
}

fn parse_head(
    role: Role,
    raw: Vec<u8>,
    stream_offset: u64,
    mode: ParseMode,
) -> Result<(Head, FramingInfo), SyncError> {
    let lines = memchr::memchr_iter(b'\n', &raw).count().max(1);
    let mut slots = vec![httparse::EMPTY_HEADER; lines];
    let mut cfg = httparse::ParserConfig::default();
    let mut anomalies = Vec::new();
    let (kind, headers) = match role {
        Role::Client => {
            let req = parse_request_head(&raw, mode)?;
            anomalies = req.anomalies;
            let (path, query) = split_target(&req.method, &req.target);
            let kind = HeadKind::Request {
                method: req.method,
                target: req.target,
                path,
                query,
                version: req.version,
            };
            (kind, req.headers)
        }
        Role::Server => {
            cfg.allow_spaces_after_header_name_in_responses(true)
                .allow_obsolete_multiline_headers_in_responses(true)
                .allow_multiple_spaces_in_response_status_delimiters(true)
                .ignore_invalid_headers_in_responses(true);
            let mut resp = httparse::Response::new(&mut slots);
            match cfg.parse_response(&mut resp, &raw) {
                Ok(httparse::Status::Complete(_)) => {}
                Ok(httparse::Status::Partial) => {
                    return Err(SyncError::BadHead("incomplete".into()));
                }
                Err(e) => return Err(SyncError::BadHead(e.to_string())),
            }
            let kind = HeadKind::Response {
                status: resp.code.unwrap_or_default(),
                reason: resp.reason.unwrap_or_default().to_owned(),
                version: resp.version.unwrap_or(1),
            };
            (kind, collect_headers(resp.headers))
        }
    };

    let mut host = None;
    let mut content_type = None;
    let mut cl = Cl::Absent;
    let mut te: Vec<String> = Vec::new();
    let mut te_present = false;
    let mut content_encoding = Vec::new();
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("host") {
            host.get_or_insert_with(|| value.trim().to_owned());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type.get_or_insert_with(|| value.trim().to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            for item in value.split(',') {
                let item = item.trim();
                // Above 2^63 - 1 no implementation can represent the length (off_t and most
                // servers' parsers are signed 64-bit) and such a body can never be sent: invalid.
                let parsed = if !item.is_empty() && item.bytes().all(|b| b.is_ascii_digit()) {
                    item.parse::<u64>()
                        .ok()
                        .filter(|n| i64::try_from(*n).is_ok())
                } else {
                    None
                };
                cl = match (cl, parsed) {
                    (Cl::Invalid, _) | (_, None) => Cl::Invalid,
                    (Cl::Absent, Some(n)) => Cl::Valid(n),
                    (Cl::Valid(a), Some(n)) if a == n => Cl::Valid(a),
                    (Cl::Valid(_), Some(_)) => Cl::Invalid,
                };
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_present = true;
            split_list(value, &mut te);
        } else if name.eq_ignore_ascii_case("content-encoding") {
            split_list(value, &mut content_encoding);
        }
    }
    let chunked = te.last().is_some_and(|c| c == "chunked");
    if chunked {
        te.pop();
    }
    if host.is_none() {
        if let HeadKind::Request { method, target, .. } = &kind {
            host = target_authority(method, target);
        }
    }
    let content_length = match cl {
        Cl::Valid(n) => Some(n),
        _ => None,
    };
    let head = Head {
        stream_offset,
        head_len: raw.len(),
        raw,
        kind,
        headers,
        host,
        content_type,
        content_length,
        chunked,
        content_encoding,
        anomalies,
    };
    let info = FramingInfo {
        te_present,
        te_codings: te,
        content_length: cl,
    };
    Ok((head, info))
}

fn collect_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Length of a `scheme://` prefix of an absolute-form target, if it has one.
fn scheme_len(target: &str) -> Option<usize> {
    let i = target.find("://")?;
    let scheme = target.get(..i)?;
    let valid = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    valid.then_some(i + 3)
}

/// `(path, query)` of a request target.
fn split_target(method: &str, target: &str) -> (String, Option<String>) {
    if method.eq_ignore_ascii_case("CONNECT") {
        return (target.to_owned(), None);
    }
    let rest = match scheme_len(target) {
        Some(n) => {
            let after = target.get(n..).unwrap_or_default();
            let auth_end = after.find(['/', '?', '#']).unwrap_or(after.len());
            after.get(auth_end..).unwrap_or_default()
        }
        None => target,
    };
    let without_fragment = rest.split('#').next().unwrap_or_default();
    let (path, query) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (without_fragment, None),
    };
    let path = if path.is_empty() && scheme_len(target).is_some() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    (path, query)
}

/// Host from an absolute-form (`http://host/...`) or authority-form (CONNECT) target.
fn target_authority(method: &str, target: &str) -> Option<String> {
    if method.eq_ignore_ascii_case("CONNECT") {
        return (!target.is_empty()).then(|| target.to_owned());
    }
    let after = target.get(scheme_len(target)?..)?;
    let auth = after.get(..after.find(['/', '?', '#']).unwrap_or(after.len()))?;
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    (!auth.is_empty()).then(|| auth.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Bodies

struct Body {
    framing: Framing,
    wire_len: u64,
    /// Stream offset just past the body bytes seen so far.
    end_offset: u64,
    gapped: bool,
    decode: Decode,
    /// Error found while setting up decoding (unsupported coding).
    error: Option<DecodeError>,
    cap: u64,
}

enum Framing {
    Fixed { remaining: u64 },
    Chunked(Chunk),
    UntilClose,
}

enum Chunk {
    Size { line: Vec<u8> },
    Data { remaining: u64 },
    DataEnd { got_cr: bool },
    Trailers { eoh: Eoh, len: usize },
}

enum Outcome {
    More,
    Done,
    Bad(SyncError, u64),
}

enum GapOutcome {
    /// The gap lies inside the body; still in sync.
    Inside,
    /// The gap ends exactly at the end of the body; still in sync.
    EndsMessage,
    /// The gap runs this many bytes to the end of the body, then past it.
    PastEnd(u64),
    /// The framing at the gap (after skipping this many body bytes) is unknown.
    Unknown(u64),
}

fn clamp_len(remaining: u64, avail: usize) -> usize {
    usize::try_from(remaining).map_or(avail, |r| r.min(avail))
}

impl Body {
    fn advance(
        &mut self,
        data: &[u8],
        base: u64,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) -> (usize, Outcome) {
        let (n, outcome) = self.advance_inner(data, base, out);
        self.wire_len = self.wire_len.saturating_add(n as u64);
        self.end_offset = base.saturating_add(n as u64);
        (n, outcome)
    }

    fn advance_inner(
        &mut self,
        data: &[u8],
        base: u64,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) -> (usize, Outcome) {
        let cap = self.cap;
        match &mut self.framing {
            Framing::Fixed { remaining } => {
                let n = clamp_len(*remaining, data.len());
                *remaining -= n as u64;
                self.decode
                    .feed(data.get(..n).unwrap_or_default(), base, cap, out);
                let outcome = if *remaining == 0 {
                    Outcome::Done
                } else {
                    Outcome::More
                };
                (n, outcome)
            }
            Framing::UntilClose => {
                self.decode.feed(data, base, cap, out);
                (data.len(), Outcome::More)
            }
            Framing::Chunked(cs) => {
                let mut i = 0usize;
                while let Some(rest) = data.get(i..).filter(|r| !r.is_empty()) {
                    let here = base.saturating_add(i as u64);
                    match cs {
                        Chunk::Size { line } => {
                            let (seg, complete) = match memchr(b'\n', rest) {
                                Some(j) => (j + 1, true),
                                None => (rest.len(), false),
                            };
                            if line.len().saturating_add(seg) > MAX_CHUNK_LINE {
                                return (i, Outcome::Bad(SyncError::ChunkLineTooLong, here));
                            }
                            line.extend_from_slice(rest.get(..seg).unwrap_or_default());
                            i += seg;
                            if !complete {
                                continue;
                            }
                            let line_start = base
                                .saturating_add(i as u64)
                                .saturating_sub(line.len() as u64);
                            match parse_chunk_line(std::mem::take(line)) {
                                ChunkLine::Blank => {}
                                ChunkLine::Size(0) => {
                                    *cs = Chunk::Trailers {
                                        eoh: Eoh::LineStart,
                                        len: 0,
                                    }
                                }
                                ChunkLine::Size(n) => *cs = Chunk::Data { remaining: n },
                                ChunkLine::Invalid => {
                                    return (i, Outcome::Bad(SyncError::BadChunkSize, line_start));
                                }
                            }
                        }
                        Chunk::Data { remaining } => {
                            let n = clamp_len(*remaining, rest.len());
                            self.decode
                                .feed(rest.get(..n).unwrap_or_default(), here, cap, out);
                            *remaining -= n as u64;
                            i += n;
                            if *remaining == 0 {
                                *cs = Chunk::DataEnd { got_cr: false };
                            }
                        }
                        Chunk::DataEnd { got_cr } => {
                            match rest.first().copied().unwrap_or_default() {
                                b'\n' => {
                                    i += 1;
                                    *cs = Chunk::Size { line: Vec::new() };
                                }
                                b'\r' if !*got_cr => {
                                    i += 1;
                                    *got_cr = true;
                                }
                                _ => return (i, Outcome::Bad(SyncError::MissingChunkCrlf, here)),
                            }
                        }
                        Chunk::Trailers { eoh, len } => {
                            let (n, done) = scan_eoh(eoh, rest);
                            *len = len.saturating_add(n);
                            i += n;
                            if *len > MAX_TRAILERS {
                                return (i, Outcome::Bad(SyncError::TrailersTooLarge, here));
                            }
                            if done {
                                return (i, Outcome::Done);
                            }
                        }
                    }
                }
                (i, Outcome::More)
            }
        }
    }

    /// Skips `len` missing bytes if the framing allows.
    fn gap(&mut self, len: u64, out: &mut dyn FnMut(HttpEvent<'_>)) -> GapOutcome {
        let inside = match &mut self.framing {
            Framing::UntilClose => len,
            Framing::Fixed { remaining } | Framing::Chunked(Chunk::Data { remaining }) => {
                (*remaining).min(len)
            }
            Framing::Chunked(_) => 0,
        };
        if inside > 0 {
            self.gapped = true;
            self.wire_len = self.wire_len.saturating_add(inside);
            self.end_offset = self.end_offset.saturating_add(inside);
            self.decode.gap(inside, self.cap, out);
        }
        match &mut self.framing {
            Framing::UntilClose => GapOutcome::Inside,
            Framing::Fixed { remaining } => {
                *remaining -= inside;
                if inside < len {
                    GapOutcome::PastEnd(inside)
                } else if *remaining == 0 {
                    GapOutcome::EndsMessage
                } else {
                    GapOutcome::Inside
                }
            }
            Framing::Chunked(cs) => match cs {
                Chunk::Data { remaining } if inside == len => {
                    *remaining -= inside;
                    if *remaining == 0 {
                        *cs = Chunk::DataEnd { got_cr: false };
                    }
                    GapOutcome::Inside
                }
                _ => GapOutcome::Unknown(inside),
            },
        }
    }

    /// Finishes decoding and emits [`HttpEvent::End`].
    fn end(mut self: Box<Self>, complete: bool, out: &mut dyn FnMut(HttpEvent<'_>)) {
        self.decode.resolve_sniff(self.cap, out);
        let (decoded_len, capped, err) = match &mut self.decode {
            Decode::Pipe(p) => {
                p.finish(out);
                (p.decoded_pos, p.capped, p.error.take())
            }
            _ => (self.wire_len, false, None),
        };
        out(HttpEvent::End {
            body_wire_len: self.wire_len,
            body_decoded_len: decoded_len,
            complete: complete && !self.gapped,
            decode_error: err.or(self.error.take()).map(|e| e.to_string()),
            decoded_capped: capped,
        });
    }
}

enum ChunkLine {
    Blank,
    Size(u64),
    Invalid,
}

/// Parses a chunk-size line (ending in LF or CRLF) with httparse, tolerating bare LF.
fn parse_chunk_line(mut line: Vec<u8>) -> ChunkLine {
    if line.last() != Some(&b'\n') {
        return ChunkLine::Invalid;
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.iter().all(|b| *b == b' ' || *b == b'\t') {
        return ChunkLine::Blank;
    }
    line.extend_from_slice(b"\r\n");
    match httparse::parse_chunk_size(&line) {
        // Like Content-Length: a size above 2^63 - 1 is not representable in practice.
        Ok(httparse::Status::Complete((_, size))) if i64::try_from(size).is_ok() => {
            ChunkLine::Size(size)
        }
        _ => ChunkLine::Invalid,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

enum Decode {
    /// Not transformed: bytes are only counted.
    Raw,
    /// No coding declared: holding the first bytes to look for the gzip magic.
    Sniff {
        held: [u8; 3],
        n: usize,
        first_wire: u64,
        chunked: bool,
    },
    /// Transformed: decoded bytes are emitted.
    Pipe(Pipeline),
}

/// Sets up decoding for a body: `applied` lists codings in the order they were applied.
fn build_decode(chunked: bool, applied: &[String], cap: u64) -> (Decode, Option<DecodeError>) {
    let codings: Vec<&str> = applied
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "identity")
        .collect();
    if codings.is_empty() {
        let decode = Decode::Sniff {
            held: [0; 3],
            n: 0,
            first_wire: 0,
            chunked,
        };
        return (decode, None);
    }
    let mut stages = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    if chunked {
        names.push("chunked");
    }
    let mut error = None;
    for c in codings.iter().rev() {
        let made = match *c {
            "gzip" | "x-gzip" => Ok((Decoder::Gzip(GzipDec::new()), "gzip")),
            "deflate" => Ok((Decoder::Deflate(DeflateDec::new()), "deflate")),
            "br" => Ok((Decoder::Brotli(Box::new(BrotliDec::new())), "br")),
            "zstd" => ZstdDec::new().map(|d| (Decoder::Zstd(d), "zstd")),
            other => Err(DecodeError::Unsupported(other.to_owned())),
        };
        match made {
            Ok((dec, name)) => {
                stages.push(Stage::new(dec));
                names.push(name);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let decode = if names.is_empty() {
        Decode::Raw
    } else {
        Decode::Pipe(Pipeline::new(names.join("+"), stages, cap))
    };
    (decode, error)
}

impl Decode {
    fn feed(&mut self, bytes: &[u8], wire: u64, cap: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        match self {
            Decode::Raw => {}
            Decode::Pipe(p) => p.push(bytes, wire, out),
            Decode::Sniff {
                held,
                n,
                first_wire,
                chunked,
            } => {
                if bytes.is_empty() {
                    return;
                }
                if *n == 0 {
                    *first_wire = wire;
                }
                let mut used = 0usize;
                while let (Some(slot), Some(&b)) = (held.get_mut(*n), bytes.get(used)) {
                    *slot = b;
                    *n += 1;
                    used += 1;
                    if held.get(..*n) != GZIP_MAGIC.get(..*n) {
                        break;
                    }
                }
                let is_gzip = held.get(..*n) == GZIP_MAGIC.get(..*n);
                if is_gzip && *n < GZIP_MAGIC.len() {
                    return;
                }
                let (h, hn, fw, ch) = (*held, *n, *first_wire, *chunked);
                *self = Decode::after_sniff(is_gzip, ch, cap);
                if let Decode::Pipe(p) = self {
                    p.push(h.get(..hn).unwrap_or_default(), fw, out);
                    p.push(
                        bytes.get(used..).unwrap_or_default(),
                        wire.saturating_add(used as u64),
                        out,
                    );
                }
            }
        }
    }

    fn after_sniff(is_gzip: bool, chunked: bool, cap: u64) -> Decode {
        match (is_gzip, chunked) {
            (true, true) => Decode::Pipe(Pipeline::new(
                "chunked+gzip-sniffed".into(),
                vec![Stage::new(Decoder::Gzip(GzipDec::new()))],
                cap,
            )),
            (true, false) => Decode::Pipe(Pipeline::new(
                "gzip-sniffed".into(),
                vec![Stage::new(Decoder::Gzip(GzipDec::new()))],
                cap,
            )),
            (false, true) => Decode::Pipe(Pipeline::new("chunked".into(), Vec::new(), cap)),
            (false, false) => Decode::Raw,
        }
    }

    /// Ends sniffing early (body ended or gapped before three bytes): not gzip.
    fn resolve_sniff(&mut self, cap: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if let Decode::Sniff {
            held,
            n,
            first_wire,
            chunked,
        } = self
        {
            let (h, hn, fw, ch) = (*held, *n, *first_wire, *chunked);
            *self = Decode::after_sniff(false, ch, cap);
            if let Decode::Pipe(p) = self {
                p.push(h.get(..hn).unwrap_or_default(), fw, out);
            }
        }
    }

    fn gap(&mut self, len: u64, cap: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        self.resolve_sniff(cap, out);
        if let Decode::Pipe(p) = self {
            p.gap(len);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

struct Stage {
    dec: Decoder,
    out: Vec<u8>,
    produced: u64,
}

impl Stage {
    fn new(dec: Decoder) -> Self {
        Stage {
            dec,
            out: Vec::new(),
            produced: 0,
        }
    }
}

/// A stack of decoders (in undo order) whose final output is emitted as [`HttpEvent::Body`].
struct Pipeline {
    layers: String,
    stages: Vec<Stage>,
    /// Decoded offset of the next emitted byte (gaps in un-compressed bodies advance it).
    decoded_pos: u64,
    /// Decoded bytes emitted (counted against the cap).
    emitted: u64,
    cap: u64,
    capped: bool,
    stopped: bool,
    fed: bool,
    error: Option<DecodeError>,
    last_wire: u64,
}

impl Pipeline {
    fn new(layers: String, stages: Vec<Stage>, cap: u64) -> Self {
        Pipeline {
            layers,
            stages,
            decoded_pos: 0,
            emitted: 0,
            cap,
            capped: false,
            stopped: false,
            fed: false,
            error: None,
            last_wire: 0,
        }
    }

    fn push(&mut self, input: &[u8], wire: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if self.stopped || input.is_empty() {
            return;
        }
        self.fed = true;
        self.last_wire = wire.saturating_add(input.len() as u64);
        let Pipeline {
            layers,
            stages,
            decoded_pos,
            emitted,
            cap,
            ..
        } = self;
        let cap = *cap;
        let mut sink =
            |piece: &[u8], w: u64| emit(piece, w, layers, decoded_pos, emitted, cap, out);
        let result = run_stages(stages, input, wire, true, cap, &mut sink);
        self.settle(
            result
                .map(|f| (f, None))
                .unwrap_or_else(|e| (Flow::Go, Some(e))),
        );
    }

    fn finish(&mut self, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if self.stopped || !self.fed {
            return;
        }
        let Pipeline {
            layers,
            stages,
            decoded_pos,
            emitted,
            cap,
            last_wire,
            ..
        } = self;
        let cap = *cap;
        let mut sink =
            |piece: &[u8], w: u64| emit(piece, w, layers, decoded_pos, emitted, cap, out);
        let result = finish_stages(stages, *last_wire, cap, &mut sink);
        self.settle(result);
        self.stopped = true;
    }

    fn settle(&mut self, (flow, err): (Flow, Option<DecodeError>)) {
        if let Some(e) = err {
            self.error.get_or_insert(e);
            self.stopped = true;
            self.stages.clear();
        }
        if flow == Flow::Stop {
            self.capped = true;
            self.stopped = true;
            self.stages.clear();
        }
    }

    fn gap(&mut self, len: u64) {
        if self.stopped {
            return;
        }
        if self.stages.is_empty() {
            self.decoded_pos = self.decoded_pos.saturating_add(len);
        } else {
            self.error.get_or_insert(DecodeError::Gap);
            self.stopped = true;
            self.stages.clear();
        }
    }
}

/// Emits one decoded piece, respecting the cap. `Stop` when output was cut off by the cap.
fn emit(
    piece: &[u8],
    wire: u64,
    layers: &str,
    decoded_pos: &mut u64,
    emitted: &mut u64,
    cap: u64,
    out: &mut dyn FnMut(HttpEvent<'_>),
) -> Flow {
    let room = cap.saturating_sub(*emitted);
    let take = clamp_len(room, piece.len());
    if take > 0 {
        out(HttpEvent::Body {
            decoded: piece.get(..take).unwrap_or_default(),
            decoded_offset: *decoded_pos,
            wire_offset: wire,
            layers,
        });
        *emitted = emitted.saturating_add(take as u64);
        *decoded_pos = decoded_pos.saturating_add(take as u64);
    }
    if take < piece.len() {
        Flow::Stop
    } else {
        Flow::Go
    }
}

type Sink<'s> = dyn FnMut(&[u8], u64) -> Flow + 's;

/// Pushes `input` through `stages`, forwarding each stage's bounded output to the next stage
/// and the last stage's output to `sink`. `top`: `wire` is the offset of `input[0]`.
fn run_stages(
    stages: &mut [Stage],
    input: &[u8],
    wire: u64,
    top: bool,
    cap: u64,
    sink: &mut Sink<'_>,
) -> Result<Flow, DecodeError> {
    let Some((first, rest)) = stages.split_first_mut() else {
        return Ok(sink(input, wire));
    };
    let mut pos = 0usize;
    loop {
        let remaining = input.get(pos..).unwrap_or_default();
        first.out.clear();
        let (consumed, progress) = first.dec.decode(remaining, &mut first.out)?;
        let piece_wire = if top {
            wire.saturating_add(pos as u64)
        } else {
            wire
        };
        pos += consumed.min(remaining.len());
        if !first.out.is_empty() {
            if let Flow::Stop = forward(first, rest, piece_wire, cap, sink)? {
                return Ok(Flow::Stop);
            }
        }
        if !progress {
            return Ok(Flow::Go);
        }
    }
}

/// Sends `first.out` on to the remaining stages (or the sink), enforcing the cap on
/// intermediate stages.
fn forward(
    first: &mut Stage,
    rest: &mut [Stage],
    wire: u64,
    cap: u64,
    sink: &mut Sink<'_>,
) -> Result<Flow, DecodeError> {
    first.produced = first.produced.saturating_add(first.out.len() as u64);
    if !rest.is_empty() && first.produced > cap {
        return Ok(Flow::Stop);
    }
    run_stages(rest, &first.out, wire, false, cap, sink)
}

/// Flushes every stage at the end of the body. Returns the flow and the first error.
fn finish_stages(
    stages: &mut [Stage],
    wire: u64,
    cap: u64,
    sink: &mut Sink<'_>,
) -> (Flow, Option<DecodeError>) {
    let Some((first, rest)) = stages.split_first_mut() else {
        return (Flow::Go, None);
    };
    let mut err = None;
    loop {
        first.out.clear();
        match first.dec.finish_step(&mut first.out) {
            Ok(more) => {
                if !first.out.is_empty() {
                    match forward(first, rest, wire, cap, sink) {
                        Ok(Flow::Go) => {}
                        Ok(Flow::Stop) => return (Flow::Stop, None),
                        Err(e) => return (Flow::Go, Some(e)),
                    }
                }
                if !more {
                    break;
                }
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let (flow, later) = finish_stages(rest, wire, cap, sink);
    (flow, err.or(later))
}

enum Decoder {
    Gzip(GzipDec),
    Deflate(DeflateDec),
    Brotli(Box<BrotliDec>),
    Zstd(ZstdDec),
}

impl Decoder {
    /// Decodes some of `input` into `out` (empty on entry; at most about [`OUT_CHUNK`] bytes
    /// are added). Returns the input bytes consumed and whether anything happened; call again
    /// (with the rest, possibly empty) while it reports progress.
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        match self {
            Decoder::Gzip(d) => d.decode(input, out),
            Decoder::Deflate(d) => d.decode(input, out),
            Decoder::Brotli(d) => d.decode(input, out),
            Decoder::Zstd(d) => d.decode(input, out),
        }
    }

    /// No more input: flushes pending output into `out`. Returns whether to call again.
    /// Errors when the stream is truncated or corrupt.
    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        match self {
            Decoder::Gzip(d) => d.finish_step(out),
            Decoder::Deflate(d) => d.finish_step(out),
            Decoder::Brotli(d) => d.finish_step(out),
            Decoder::Zstd(d) => d.finish_step(out),
        }
    }
}

/// gzip (RFC 1952, multi-member): the member framing (header, CRC-32 and length trailer) is read here, the
/// deflate data by `flate2::Decompress` into a scratch buffer that is allocated and zeroed once. (flate2's
/// `Vec`-based APIs zero their spare capacity on every call: for a body fed one TCP segment at a time that was
/// 22 times the data in `memset`.)
struct GzipDec {
    state: GzState,
    inflate: flate2::Decompress,
    crc: flate2::Crc,
    scratch: Box<[u8]>,
    members: u32,
}

enum GzState {
    /// Expecting a member (the first one, or after a complete member).
    Between,
    /// Collecting a member header (bounded).
    Header(Vec<u8>),
    Body,
    /// Collecting the 8-byte trailer.
    Trailer(Vec<u8>),
    /// Bytes after the last member that are not another member: ignored.
    Trailing,
}

/// Longest gzip header accepted (the optional name, comment and extra fields included).
const MAX_GZIP_HEADER: usize = 64 * 1024;

/// Length of a complete gzip member header at the start of `b`, `Ok(None)` while more bytes are needed.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, DecodeError> {
    if b.len() < 10 {
        return Ok(None);
    }
    if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
        return Err(DecodeError::Gzip("invalid gzip header".into()));
    }
    let flags = b[3];
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let Some(x) = b.get(at..at + 2) else {
            return Ok(None);
        };
        at += 2 + usize::from(u16::from_le_bytes([x[0], x[1]]));
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            match b.get(at..).and_then(|r| r.iter().position(|&c| c == 0)) {
                Some(nul) => at += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Ok((at <= b.len()).then_some(at))
}

impl GzipDec {
    fn new() -> Self {
        GzipDec {
            state: GzState::Between,
            inflate: flate2::Decompress::new(false),
            crc: flate2::Crc::new(),
            scratch: vec![0u8; OUT_CHUNK].into_boxed_slice(),
            members: 0,
        }
    }

    /// Inflates from `input` into `out`; returns (input consumed, output produced, stream end).
    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, usize, bool), DecodeError> {
        let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self
            .inflate
            .decompress(input, &mut self.scratch, flate2::FlushDecompress::None)
            .map_err(|e| DecodeError::Gzip(e.to_string()))?;
        let cin = usize::try_from(self.inflate.total_in() - in0)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let cout = usize::try_from(self.inflate.total_out() - out0)
            .unwrap_or(0)
            .min(self.scratch.len());
        let produced = self.scratch.get(..cout).unwrap_or_default();
        self.crc.update(produced);
        out.extend_from_slice(produced);
        Ok((cin, cout, status == flate2::Status::StreamEnd))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        match &mut self.state {
            GzState::Trailing => Ok((input.len(), !input.is_empty())),
            GzState::Between => match input.first() {
                None => Ok((0, false)),
                Some(&0x1f) => {
                    self.state = GzState::Header(Vec::new());
                    Ok((0, true))
                }
                Some(_) if self.members > 0 => {
                    self.state = GzState::Trailing;
                    Ok((input.len(), true))
                }
                Some(_) => Err(DecodeError::Gzip("invalid gzip header".into())),
            },
            GzState::Header(buf) => {
                let before = buf.len();
                let take = input.len().min(MAX_GZIP_HEADER + 1 - before);
                buf.extend_from_slice(&input[..take]);
                match gzip_header_len(buf)? {
                    Some(hlen) => {
                        let used = hlen - before;
                        self.state = GzState::Body;
                        Ok((used, true))
                    }
                    None if buf.len() > MAX_GZIP_HEADER => {
                        Err(DecodeError::Gzip("gzip header too long".into()))
                    }
                    None => Ok((take, take > 0)),
                }
            }
            GzState::Body => {
                let (cin, cout, end) = self.inflate(input, out)?;
                if end {
                    self.state = GzState::Trailer(Vec::with_capacity(8));
                }
                Ok((cin, cin > 0 || cout > 0 || end))
            }
            GzState::Trailer(t) => {
                let take = input.len().min(8 - t.len());
                t.extend_from_slice(&input[..take]);
                if t.len() < 8 {
                    return Ok((take, take > 0));
                }
                let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                if crc != self.crc.sum() || size != self.crc.amount() {
                    return Err(DecodeError::Gzip(
                        "corrupt gzip member (CRC or length mismatch)".into(),
                    ));
                }
                self.members = self.members.saturating_add(1);
                self.inflate.reset(false);
                self.crc.reset();
                self.state = GzState::Between;
                Ok((take, true))
            }
        }
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        match &self.state {
            GzState::Between | GzState::Trailing => Ok(false),
            GzState::Header(_) => Err(DecodeError::Gzip("truncated gzip header".into())),
            GzState::Trailer(_) => Err(DecodeError::Gzip(
                "truncated or corrupt stream (missing CRC trailer)".into(),
            )),
            GzState::Body => {
                let (_, cout, end) = self.inflate(&[], out)?;
                if end {
                    self.state = GzState::Trailer(Vec::with_capacity(8));
                    return Ok(true);
                }
                if cout > 0 {
                    return Ok(true);
                }
                Err(DecodeError::Gzip("truncated or corrupt stream".into()))
            }
        }
    }
}

/// deflate: zlib-wrapped or raw (decided from the first two bytes, as browsers do).
struct DeflateDec {
    hdr: [u8; 2],
    hdr_len: usize,
    /// How many of `hdr` have been fed to the decompressor.
    hdr_fed: usize,
    dec: Option<flate2::Decompress>,
    done: bool,
    scratch: Option<Box<[u8]>>,
}

impl DeflateDec {
    fn new() -> Self {
        DeflateDec {
            hdr: [0; 2],
            hdr_len: 0,
            hdr_fed: 0,
            dec: None,
            done: false,
            scratch: None,
        }
    }

    fn is_zlib(h: [u8; 2]) -> bool {
        let [cmf, flg] = h;
        cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
        let Some(d) = &mut self.dec else {
            return Ok((0, 0));
        };
        // Into a scratch buffer zeroed once: flate2's `decompress_vec` zeroes spare capacity on every call.
        let scratch = self
            .scratch
            .get_or_insert_with(|| vec![0u8; OUT_CHUNK].into_boxed_slice());
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d
            .decompress(input, scratch, flate2::FlushDecompress::None)
            .map_err(|e| DecodeError::Deflate(e.to_string()))?;
        if status == flate2::Status::StreamEnd {
            self.done = true;
        }
        let cin = usize::try_from(d.total_in().saturating_sub(in0)).unwrap_or(usize::MAX);
        let cout = usize::try_from(d.total_out().saturating_sub(out0))
            .unwrap_or(usize::MAX)
            .min(scratch.len());
        out.extend_from_slice(scratch.get(..cout).unwrap_or_default());
        Ok((cin.min(input.len()), cout))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        if self.done {
            // Data after the end of the deflate stream is ignored.
            return Ok((input.len(), !input.is_empty()));
        }
        let mut used = 0usize;
        if self.dec.is_none() {
            while self.hdr_len < 2 {
                let Some(&b) = input.get(used) else { break };
                if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                    *slot = b;
                }
                self.hdr_len += 1;
                used += 1;
            }
            if self.hdr_len < 2 {
                return Ok((used, used > 0));
            }
            self.dec = Some(flate2::Decompress::new(Self::is_zlib(self.hdr)));
        }
        if self.hdr_fed < 2 {
            let hdr = self.hdr;
            let pending = hdr.get(self.hdr_fed..).unwrap_or_default();
            let (cin, cout) = self.run(pending, out)?;
            self.hdr_fed += cin;
            return Ok((used, used > 0 || cin > 0 || cout > 0));
        }
        let (cin, cout) = self.run(input.get(used..).unwrap_or_default(), out)?;
        used += cin;
        Ok((used, used > 0 || cout > 0))
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(false);
        }
        if self.dec.is_none() {
            return if self.hdr_len == 0 {
                Ok(false)
            } else {
                Err(DecodeError::Deflate("truncated stream".into()))
            };
        }
        let (_, progress) = self.decode(&[], out)?;
        if progress {
            return Ok(true);
        }
        if self.done {
            Ok(false)
        } else {
            Err(DecodeError::Deflate("truncated stream".into()))
        }
    }
}

type BrotliState = brotli_decompressor::BrotliState<
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
>;

/// br via brotli-decompressor's streaming state machine (large-window streams refused).
struct BrotliDec {
    state: BrotliState,
    total_out: usize,
    done: bool,
}

impl BrotliDec {
    fn new() -> Self {
        use brotli_decompressor::StandardAlloc;
        BrotliDec {
            state: BrotliState::new_strict(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ),
            total_out: 0,
            done: false,
        }
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
        use brotli_decompressor::BrotliResult;
        out.resize(OUT_CHUNK, 0);
        let mut avail_in = input.len();
        let mut in_off = 0usize;
        let mut avail_out = out.len();
        let mut out_off = 0usize;
        let result = brotli_decompressor::BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            input,
            &mut avail_out,
            &mut out_off,
            out.as_mut_slice(),
            &mut self.total_out,
            &mut self.state,
        );
        out.truncate(out_off);
        match result {
            BrotliResult::ResultFailure => {
                return Err(DecodeError::Brotli(format!("{:?}", self.state.error_code)));
            }
            BrotliResult::ResultSuccess => self.done = true,
            BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => {}
        }
        Ok((in_off.min(input.len()), out_off))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        if self.done {
            // Data after the end of the brotli stream is ignored.
            return Ok((input.len(), !input.is_empty()));
        }
        let (cin, cout) = self.run(input, out)?;
        Ok((cin, cin > 0 || cout > 0 || self.done))
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(false);
        }
        let (_, cout) = self.run(&[], out)?;
        if cout > 0 {
            Ok(true)
        } else if self.done {
            Ok(false)
        } else {
            Err(DecodeError::Brotli("truncated stream".into()))
        }
    }
}

/// zstd via the crate's raw streaming decoder (window limited to 16 MiB).
struct ZstdDec {
    dec: zstd::stream::raw::Decoder<'static>,
    in_frame: bool,
}

impl ZstdDec {
    fn new() -> Result<Self, DecodeError> {
        let mut dec =
            zstd::stream::raw::Decoder::new().map_err(|e| DecodeError::Zstd(e.to_string()))?;
        dec.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
            ZSTD_WINDOW_LOG_MAX,
        ))
        .map_err(|e| DecodeError::Zstd(e.to_string()))?;
        Ok(ZstdDec {
            dec,
            in_frame: false,
        })
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
        use zstd::stream::raw::Operation as _;
        out.resize(OUT_CHUNK, 0);
        let status = self
            .dec
            .run_on_buffers(input, out.as_mut_slice())
            .map_err(|e| DecodeError::Zstd(e.to_string()));
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                out.clear();
                return Err(e);
            }
        };
        let written = status.bytes_written.min(OUT_CHUNK);
        out.truncate(written);
        let read = status.bytes_read.min(input.len());
        if read > 0 || written > 0 {
            self.in_frame = status.remaining != 0;
        }
        Ok((read, written))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        let (read, written) = self.run(input, out)?;
        Ok((read, read > 0 || written > 0))
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        let (_, written) = self.run(&[], out)?;
        if written > 0 {
            Ok(true)
        } else if self.in_frame {
            Err(DecodeError::Zstd("truncated frame".into()))
        } else {
            Ok(false)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sniffing and URL helpers

/// Cheap sniff for the start of a request: a known method (see the list in the source)
/// followed by SP, a common one (`GET`, `POST`, `PUT`, `HEAD`, `DELETE`, `OPTIONS`, `PATCH`,
/// `CONNECT`, `TRACE` or a core WebDAV method) followed by a line end, or a method token of
/// 3 to 31 characters starting with an upper-case letter and without lower-case letters
/// (e.g. `CCM_POST`, `M-SEARCH`) followed by SP, a target and ` HTTP/1.` on the same line.
pub fn looks_like_http_request(prefix: &[u8]) -> bool {
    for (i, m) in KNOWN_METHODS.iter().enumerate() {
        let m = m.as_bytes();
        let ok = match prefix.get(m.len()) {
            Some(b' ') => true,
            Some(b'\r' | b'\n') => i < CORE_METHODS,
            _ => false,
        };
        if ok && prefix.starts_with(m) {
            return true;
        }
    }
    let n = prefix
        .iter()
        .take_while(|b| is_tchar(**b) && !b.is_ascii_lowercase())
        .count();
    if !(3..=MAX_METHOD_LEN).contains(&n)
        || !prefix.first().is_some_and(u8::is_ascii_uppercase)
        || prefix.get(n) != Some(&b' ')
    {
        return false;
    }
    let rest = prefix.get(n + 1..).unwrap_or_default();
    let line = rest
        .get(..memchr2(b'\r', b'\n', rest).unwrap_or(rest.len()))
        .unwrap_or_default();
    match memmem::find(line, b" HTTP/1.") {
        Some(i) => i > 0 && !line.get(..i).unwrap_or_default().contains(&b' '),
        None => false,
    }
}

/// Parses the first head in `data`, a self-contained message such as an SSDP `M-SEARCH` or
/// `NOTIFY` datagram (an HTTP/1.1 head sent over UDP). `None` when `data` does not start with a
/// request line / status line or the head is malformed or incomplete (a request line without
/// HTTP version excepted, see [`HttpParser::finish`]). Bytes after the head are ignored.
pub fn parse_datagram(role: Role, data: &[u8]) -> Option<Head> {
    let mut parser = HttpParser::new(role);
    let mut head = None;
    let mut keep = |e: HttpEvent<'_>| {
        if let HttpEvent::Head(h) = e {
            head.get_or_insert(h);
        }
    };
    parser.feed(data, &mut keep);
    parser.finish(&mut keep);
    head
}

/// Cheap sniff for the start of a response: `HTTP/1.x NNN`.
pub fn looks_like_http_response(prefix: &[u8]) -> bool {
    matches!(probe_verdict(Role::Server, prefix, true), Verdict::Match)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `input`; malformed escapes (`%zz`, a trailing `%4`) are kept literally.
/// With `plus_as_space`, `+` becomes a space (form encoding).
pub fn percent_decode(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0usize;
    while let Some(&b) = input.get(i) {
        match b {
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_val);
                let lo = input.get(i + 2).copied().and_then(hex_val);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// Splits a query string or `application/x-www-form-urlencoded` body on `&` into
/// `(name, value)` pairs, percent-decoded with `+` as space (names lossily as UTF-8).
/// Empty pieces are skipped; a piece without `=` has an empty value.
pub fn split_query(query: &str) -> Vec<(String, Vec<u8>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name = String::from_utf8_lossy(&percent_decode(name.as_bytes(), true)).into_owned();
            (name, percent_decode(value.as_bytes(), true))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    // Test-only mirror of `HttpEvent`; size does not matter here.
    #[allow(clippy::large_enum_variant)]
    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        Head(Head),
        Body {
            data: Vec<u8>,
            off: u64,
            wire: u64,
            layers: String,
        },
        End {
            wire: u64,
            decoded: u64,
            complete: bool,
            err: Option<String>,
            capped: bool,
        },
        Desync {
            off: u64,
            reason: String,
        },
    }

    fn own(ev: HttpEvent<'_>) -> Ev {
        match ev {
            HttpEvent::Head(h) => Ev::Head(h),
            HttpEvent::Body {
                decoded,
                decoded_offset,
                wire_offset,
                layers,
            } => Ev::Body {
                data: decoded.to_vec(),
                off: decoded_offset,
                wire: wire_offset,
                layers: layers.to_owned(),
            },
            HttpEvent::End {
                body_wire_len,
                body_decoded_len,
                complete,
                decode_error,
                decoded_capped,
            } => Ev::End {
                wire: body_wire_len,
                decoded: body_decoded_len,
                complete,
                err: decode_error,
                capped: decoded_capped,
            },
            HttpEvent::Desync {
                stream_offset,
                reason,
            } => Ev::Desync {
                off: stream_offset,
                reason,
            },
        }
    }

    fn feed(p: &mut HttpParser, data: &[u8], evs: &mut Vec<Ev>) {
        p.feed(data, &mut |e| evs.push(own(e)));
    }

    fn run(role: Role, data: &[u8], finish: bool) -> Vec<Ev> {
        let mut p = HttpParser::new(role);
        let mut evs = Vec::new();
        feed(&mut p, data, &mut evs);
        if finish {
            p.finish(&mut |e| evs.push(own(e)));
        }
        assert_eq!(p.offset(), data.len() as u64);
        evs
    }

    /// Merges consecutive Body events (checking that offsets are contiguous).
    fn merged(evs: &[Ev]) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in evs {
            if let (
                Some(Ev::Body {
                    data, off, layers, ..
                }),
                Ev::Body {
                    data: d2,
                    off: o2,
                    layers: l2,
                    ..
                },
            ) = (out.last_mut(), e)
            {
                assert_eq!(*off + data.len() as u64, *o2, "decoded offsets contiguous");
                assert_eq!(layers, l2);
                data.extend_from_slice(d2);
                continue;
            }
            let mut e = e.clone();
            if let Ev::Body { wire, .. } = &mut e {
                *wire = 0;
            }
            out.push(e);
        }
        out
    }

    fn heads(evs: &[Ev]) -> Vec<&Head> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Head(h) => Some(h),
                _ => None,
            })
            .collect()
    }

    fn bodies(evs: &[Ev]) -> Vec<(Vec<u8>, String)> {
        merged(evs)
            .into_iter()
            .filter_map(|e| match e {
                Ev::Body { data, layers, .. } => Some((data, layers)),
                _ => None,
            })
            .collect()
    }

    fn ends(evs: &[Ev]) -> Vec<(u64, u64, bool, Option<String>, bool)> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::End {
                    wire,
                    decoded,
                    complete,
                    err,
                    capped,
                } => Some((*wire, *decoded, *complete, err.clone(), *capped)),
                _ => None,
            })
            .collect()
    }

    fn desyncs(evs: &[Ev]) -> Vec<(u64, String)> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Desync { off, reason } => Some((*off, reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        let mut x: u32 = 12345;
        while v.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let words: [&[u8]; 5] = [
                b"imei=356938035643809 ",
                b"phone=+15551234567 ",
                b"contact ",
                b"alice ",
                b"\n",
            ];
            v.extend_from_slice(words[(x >> 16) as usize % words.len()]);
        }
        v.truncate(n);
        v
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn deflate_raw(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn brotli_enc(data: &[u8]) -> Vec<u8> {
        let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
        w.write_all(data).unwrap();
        w.into_inner()
    }

    fn zstd_enc(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).unwrap()
    }

    fn chunk(body: &[u8], size: usize, ext: bool, trailers: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for c in body.chunks(size) {
            if ext {
                v.extend_from_slice(format!("{:x};name=\"v\"\r\n", c.len()).as_bytes());
            } else {
                v.extend_from_slice(format!("{:X}\r\n", c.len()).as_bytes());
            }
            v.extend_from_slice(c);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\n");
        v.extend_from_slice(trailers.as_bytes());
        v.extend_from_slice(b"\r\n");
        v
    }

    fn response(headers: &str, body: &[u8]) -> Vec<u8> {
        let mut v = format!("HTTP/1.1 200 OK\r\n{headers}\r\n").into_bytes();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn get_without_body() {
        let req = b"GET /a/b?x=1&y=%41#frag HTTP/1.1\r\nHost: ex.com\r\nUser-Agent: t\r\n\r\n";
        let evs = run(Role::Client, req, false);
        assert_eq!(evs.len(), 2);
        let h = heads(&evs)[0];
        assert_eq!(
            h.kind,
            HeadKind::Request {
                method: "GET".into(),
                target: "/a/b?x=1&y=%41#frag".into(),
                path: "/a/b".into(),
                query: Some("x=1&y=%41".into()),
                version: 1,
            }
        );
        assert_eq!(h.stream_offset, 0);
        assert_eq!(h.head_len, req.len());
        assert_eq!(h.raw, req.to_vec());
        assert_eq!(h.host.as_deref(), Some("ex.com"));
        assert_eq!(h.headers[1], ("User-Agent".to_string(), "t".to_string()));
        assert_eq!(ends(&evs), vec![(0, 0, true, None, false)]);
    }

    #[test]
    fn post_content_length_then_get() {
        let mut data = b"POST /up HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world".to_vec();
        let second = data.len() as u64;
        data.extend_from_slice(b"GET /next HTTP/1.0\r\n\r\n");
        let evs = run(Role::Client, &data, false);
        let hs = heads(&evs);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].content_length, Some(11));
        assert_eq!(hs[0].content_type.as_deref(), Some("text/plain"));
        assert_eq!(hs[1].stream_offset, second);
        assert!(matches!(hs[1].kind, HeadKind::Request { version: 0, .. }));
        assert!(
            bodies(&evs).is_empty(),
            "untransformed body is not re-emitted"
        );
        assert_eq!(ends(&evs)[0], (11, 11, true, None, false));
    }

    #[test]
    fn chunked_request_with_extensions_and_trailers() {
        let payload = sample(1000);
        let mut data = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let head_len = data.len() as u64;
        let body = chunk(&payload, 100, true, "X-Trailer: 1\r\n");
        data.extend_from_slice(&body);
        data.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let evs = run(Role::Client, &data, false);
        assert!(heads(&evs)[0].chunked);
        assert_eq!(bodies(&evs), vec![(payload, "chunked".to_string())]);
        // The first piece starts right after the first chunk-size line.
        let first_wire = evs.iter().find_map(|e| match e {
            Ev::Body { wire, .. } => Some(*wire),
            _ => None,
        });
        assert_eq!(
            first_wire,
            Some(head_len + b"64;name=\"v\"\r\n".len() as u64)
        );
        assert_eq!(ends(&evs)[0], (body.len() as u64, 1000, true, None, false));
        assert_eq!(heads(&evs).len(), 2);
        assert!(desyncs(&evs).is_empty());
    }

    #[test]
    fn chunked_gzip_response() {
        let payload = sample(5000);
        let body = chunk(&gzip(&payload), 300, false, "");
        let data = response(
            "Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n",
            &body,
        );
        let evs = run(Role::Server, &data, false);
        assert_eq!(heads(&evs)[0].content_encoding, vec!["gzip".to_string()]);
        assert_eq!(bodies(&evs), vec![(payload, "chunked+gzip".to_string())]);
        assert_eq!(
            ends(&evs),
            vec![(body.len() as u64, 5000, true, None, false)]
        );
    }

    fn encoded_response(ce: &str, body: &[u8]) -> Vec<Ev> {
        let data = response(
            &format!(
                "Content-Encoding: {ce}\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body,
        );
        run(Role::Server, &data, false)
    }

    #[test]
    fn content_encodings_decode() {
        let payload = sample(100_000);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("gzip", gzip(&payload), "gzip"),
            ("x-gzip", gzip(&payload), "gzip"),
            ("deflate", deflate_raw(&payload), "deflate"),
            ("deflate", zlib(&payload), "deflate"),
            ("br", brotli_enc(&payload), "br"),
            ("zstd", zstd_enc(&payload), "zstd"),
            ("identity, gzip", gzip(&payload), "gzip"),
        ];
        for (ce, enc, layers) in cases {
            let evs = encoded_response(ce, &enc);
            assert_eq!(
                bodies(&evs),
                vec![(payload.clone(), layers.to_string())],
                "{ce}"
            );
            assert_eq!(
                ends(&evs),
                vec![(enc.len() as u64, payload.len() as u64, true, None, false)],
                "{ce}"
            );
            // Pieces are bounded.
            for e in &evs {
                if let Ev::Body { data, .. } = e {
                    assert!(data.len() <= OUT_CHUNK);
                }
            }
        }
    }

    #[test]
    fn stacked_encodings_undone_in_reverse() {
        let payload = sample(20_000);
        let enc = brotli_enc(&gzip(&payload));
        let evs = encoded_response("gzip, br", &enc);
        assert_eq!(bodies(&evs), vec![(payload, "br+gzip".to_string())]);
        assert_eq!(ends(&evs)[0].3, None);
    }

    #[test]
    fn multi_member_gzip() {
        let mut enc = gzip(b"first member ");
        enc.extend_from_slice(&gzip(b"second member"));
        let evs = encoded_response("gzip", &enc);
        assert_eq!(
            bodies(&evs),
            vec![(b"first member second member".to_vec(), "gzip".to_string())]
        );
        assert_eq!(ends(&evs)[0].3, None);
    }

    #[test]
    fn pipelined_requests_in_one_feed() {
        let mut data = Vec::new();
        let mut starts = Vec::new();
        for i in 0..3 {
            starts.push(data.len() as u64);
            data.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        }
        starts.push(data.len() as u64);
        data.extend_from_slice(b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        starts.push(data.len() as u64);
        data.extend_from_slice(
            b"POST /q HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
        );
        let evs = run(Role::Client, &data, false);
        let got: Vec<u64> = heads(&evs).iter().map(|h| h.stream_offset).collect();
        assert_eq!(got, starts);
        assert_eq!(ends(&evs).len(), 5);
        assert!(ends(&evs).iter().all(|e| e.2));
        assert_eq!(bodies(&evs), vec![(b"xyz".to_vec(), "chunked".to_string())]);
    }

    #[test]
    fn every_split_position_of_chunked_gzip_request() {
        let payload = b"imei=356938035643809&phone=%2B15551234567".repeat(3);
        let mut data = b"POST /u?a=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
        data.extend_from_slice(&chunk(&gzip(&payload), 7, true, "T: v\r\n"));
        data.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
        let reference = merged(&run(Role::Client, &data, true));
        assert_eq!(
            bodies(&reference),
            vec![(payload.clone(), "chunked+gzip".to_string())]
        );
        assert_eq!(heads(&reference).len(), 2);
        for i in 0..=data.len() {
            let mut p = HttpParser::new(Role::Client);
            let mut evs = Vec::new();
            feed(&mut p, &data[..i], &mut evs);
            feed(&mut p, &data[i..], &mut evs);
            p.finish(&mut |e| evs.push(own(e)));
            assert_eq!(merged(&evs), reference, "split at {i}");
        }
        let mut p = HttpParser::new(Role::Client);
        let mut evs = Vec::new();
        for b in &data {
            feed(&mut p, std::slice::from_ref(b), &mut evs);
        }
        p.finish(&mut |e| evs.push(own(e)));
        assert_eq!(merged(&evs), reference, "byte by byte");
    }

    #[test]
    fn head_response_has_no_body() {
        let mut p = HttpParser::new(Role::Server);
        p.push_request_method("HEAD");
        p.push_request_method("GET");
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Encoding: gzip\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut evs = Vec::new();
        feed(&mut p, data, &mut evs);
        assert_eq!(heads(&evs).len(), 2);
        assert_eq!(
            ends(&evs),
            vec![(0, 0, true, None, false), (2, 2, true, None, false)]
        );
        assert!(desyncs(&evs).is_empty());
    }

    #[test]
    fn status_204_304_and_1xx_have_no_body() {
        let data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let evs = run(Role::Server, data, false);
        let statuses: Vec<u16> = heads(&evs)
            .iter()
            .map(|h| match h.kind {
                HeadKind::Response { status, .. } => status,
                _ => 0,
            })
            .collect();
        assert_eq!(statuses, vec![100, 204, 304, 200]);
        assert_eq!(ends(&evs).last(), Some(&(2, 2, true, None, false)));
        assert!(desyncs(&evs).is_empty());
    }

    #[test]
    fn read_until_close_body_with_finish() {
        let data = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body data";
        let mut p = HttpParser::new(Role::Server);
        let mut evs = Vec::new();
        feed(&mut p, data, &mut evs);
        assert!(ends(&evs).is_empty(), "no End before the stream closes");
        p.finish(&mut |e| evs.push(own(e)));
        assert_eq!(ends(&evs), vec![(14, 14, true, None, false)]);

        let payload = sample(3000);
        let data = response("Content-Encoding: gzip\r\n", &gzip(&payload));
        let evs = run(Role::Server, &data, true);
        assert_eq!(bodies(&evs), vec![(payload, "gzip".to_string())]);
        assert!(ends(&evs)[0].2);
    }

    #[test]
    fn gap_inside_known_length_body_keeps_sync() {
        let head = b"POST /up HTTP/1.1\r\nContent-Length: 20\r\n\r\n";
        let mut p = HttpParser::new(Role::Client);
        let mut evs = Vec::new();
        feed(&mut p, head, &mut evs);
        feed(&mut p, b"01234", &mut evs);
        p.gap(10, &mut |e| evs.push(own(e)));
        feed(&mut p, b"56789GET /next HTTP/1.1\r\n\r\n", &mut evs);
        assert!(desyncs(&evs).is_empty());
        assert_eq!(ends(&evs)[0], (20, 20, false, None, false));
        let hs = heads(&evs);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[1].stream_offset, head.len() as u64 + 20);
        assert_eq!(p.offset(), head.len() as u64 + 20 + 22);
    }

    #[test]
    fn gap_ending_a_body_and_gap_inside_chunk() {
        let mut p = HttpParser::new(Role::Client);
        let mut evs = Vec::new();
        feed(
            &mut p,
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab",
            &mut evs,
        );
        p.gap(2, &mut |e| evs.push(own(e)));
        feed(
            &mut p,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123",
            &mut evs,
        );
        p.gap(3, &mut |e| evs.push(own(e)));
        feed(&mut p, b"789\r\n2\r\nAB\r\n0\r\n\r\n", &mut evs);
        assert!(desyncs(&evs).is_empty());
        let mut got: Vec<(Vec<u8>, u64)> = Vec::new();
        for e in &evs {
            if let Ev::Body { data, off, .. } = e {
                match got.last_mut() {
                    Some((d, o)) if *o + d.len() as u64 == *off => d.extend_from_slice(data),
                    _ => got.push((data.clone(), *off)),
                }
            }
        }
        assert_eq!(got, vec![(b"0123".to_vec(), 0), (b"789AB".to_vec(), 7)]);
        let e = ends(&evs);
        assert_eq!(e[0], (4, 4, false, None, false));
        assert_eq!((e[1].1, e[1].2), (12, false));
    }

    #[test]
    fn gap_inside_compressed_body_stops_decoding() {
        let enc = gzip(&sample(50_000));
        let mut data = response(
            &format!(
                "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
                enc.len()
            ),
            &enc[..100],
        );
        let mut p = HttpParser::new(Role::Server);
        let mut evs = Vec::new();
        feed(&mut p, &data, &mut evs);
        p.gap(50, &mut |e| evs.push(own(e)));
        data.clear();
        data.extend_from_slice(&enc[150..]);
        data.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        feed(&mut p, &data, &mut evs);
        let e = ends(&evs);
        assert_eq!(e.len(), 2);
        assert!(!e[0].2);
        assert!(e[0].3.as_deref().unwrap().contains("gap"));
        assert_eq!(heads(&evs).len(), 2);
    }

    #[test]
    fn gap_in_head_desyncs_and_resyncs() {
        let mut p = HttpParser::new(Role::Client);
        let mut evs = Vec::new();
        feed(&mut p, b"GET /a HTTP/1.1\r\nHo", &mut evs);
        p.gap(7, &mut |e| evs.push(own(e)));
        feed(
            &mut p,
            b"st: x\r\n\r\nbody junk\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n",
            &mut evs,
        );
        let d = desyncs(&evs);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, 0);
        assert!(d[0].1.contains("gap"));
        let hs = heads(&evs);
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].host.as_deref(), Some("y"));
        assert!(matches!(&hs[0].kind, HeadKind::Request { path, .. } if path == "/b"));
    }

    #[test]
    fn oversized_head_desyncs() {
        let mut data = b"GET / HTTP/1.1\r\nX-A: ".to_vec();
        data.extend_from_slice(&[b'a'; 70_000]);
        data.extend_from_slice(b"\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        let evs = run(Role::Client, &data, false);
        let d = desyncs(&evs);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, 0);
        assert!(d[0].1.contains("exceeds"));
        let hs = heads(&evs);
        assert_eq!(hs.len(), 1);
        assert!(matches!(&hs[0].kind, HeadKind::Request { path, .. } if path == "/next"));
    }

    #[test]
    fn garbage_desyncs_once_then_resyncs() {
        let data = b"\x16\x03\x01\x02\x00garbage\nmore GET x\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
        let evs = run(Role::Client, data, false);
        assert_eq!(
            desyncs(&evs),
            vec![(0, "not an HTTP/1.x request".to_string())]
        );
        assert_eq!(heads(&evs).len(), 1);
        let evs = run(
            Role::Server,
            b"SSH-2.0-OpenSSH\r\n\x00\x01\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(desyncs(&evs).len(), 1);
        assert_eq!(heads(&evs).len(), 1);
    }

    #[test]
    fn malformed_head_and_invalid_lengths() {
        let evs = run(
            Role::Client,
            b"GET / HTTP/9.9\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
            false,
        );
        assert_eq!(desyncs(&evs).len(), 1);
        assert_eq!(heads(&evs).len(), 1);
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello\r\nGET /ok HTTP/1.1\r\n\r\n",
            false,
        );
        assert_eq!(heads(&evs).len(), 2);
        assert_eq!(heads(&evs)[0].content_length, None);
        assert!(!ends(&evs)[0].2);
        assert_eq!(desyncs(&evs)[0].1, "invalid Content-Length");
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /ok HTTP/1.1\r\n\r\n",
            false,
        );
        assert_eq!(desyncs(&evs)[0].1, "invalid chunk size line");
        assert_eq!(heads(&evs).len(), 2);
        // Repeated equal Content-Length values are fine; "+5" is not a length.
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
            false,
        );
        assert_eq!(ends(&evs), vec![(2, 2, true, None, false)]);
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            false,
        );
        assert_eq!(desyncs(&evs).len(), 1);
    }

    #[test]
    fn decompression_bomb_is_capped() {
        let zeros = vec![0u8; 8 << 20];
        let enc = gzip(&zeros);
        assert!(enc.len() < 100_000);
        let data = response(
            &format!(
                "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
                enc.len()
            ),
            &enc,
        );
        let mut p = HttpParser::new(Role::Server);
        p.set_decoded_cap(1 << 20);
        let mut total = 0u64;
        let mut max_piece = 0usize;
        let mut end = None;
        p.feed(&data, &mut |e| match e {
            HttpEvent::Body { decoded, .. } => {
                total += decoded.len() as u64;
                max_piece = max_piece.max(decoded.len());
            }
            HttpEvent::End { .. } => end = Some(own(e)),
            _ => {}
        });
        assert_eq!(total, 1 << 20);
        assert!(max_piece <= OUT_CHUNK);
        assert_eq!(
            end,
            Some(Ev::End {
                wire: enc.len() as u64,
                decoded: 1 << 20,
                complete: true,
                err: None,
                capped: true
            })
        );
    }

    #[test]
    fn corrupt_and_truncated_compressed_bodies() {
        let mut bad = gzip(b"x")[..10].to_vec();
        bad.extend_from_slice(&[0xff; 40]);
        let mut data = response(
            &format!(
                "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
                bad.len()
            ),
            &bad,
        );
        data.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        let evs = run(Role::Server, &data, false);
        assert!(ends(&evs)[0].3.as_deref().unwrap().starts_with("gzip"));
        assert_eq!(heads(&evs).len(), 2);

        for (ce, enc) in [
            ("gzip", gzip(&sample(20_000))),
            ("deflate", zlib(&sample(20_000))),
            ("br", brotli_enc(&sample(20_000))),
            ("zstd", zstd_enc(&sample(20_000))),
        ] {
            let half = &enc[..enc.len() / 2];
            let evs = encoded_response(ce, half);
            let e = ends(&evs);
            assert!(e[0].3.is_some(), "{ce} truncation reported");
            let got = bodies(&evs)
                .into_iter()
                .next()
                .map(|b| b.0)
                .unwrap_or_default();
            assert!(
                sample(20_000).starts_with(&got),
                "{ce} partial output is a prefix"
            );
            // Corrupt bytes in every decoder: an error, never a panic.
            let mut corrupt = enc.clone();
            for b in corrupt.iter_mut().skip(4).step_by(7) {
                *b ^= 0x5a;
            }
            let evs = encoded_response(ce, &corrupt);
            assert_eq!(ends(&evs).len(), 1);
        }
    }

    #[test]
    fn gzip_sniffed_without_content_encoding() {
        let payload = sample(4000);
        let enc = gzip(&payload);
        let mut data = format!(
            "POST /upload HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            enc.len()
        )
        .into_bytes();
        data.extend_from_slice(&enc);
        let evs = run(Role::Client, &data, false);
        assert_eq!(
            bodies(&evs),
            vec![(payload.clone(), "gzip-sniffed".to_string())]
        );
        // Byte-by-byte feeding sniffs the same.
        let mut p = HttpParser::new(Role::Client);
        let mut evs2 = Vec::new();
        for b in &data {
            feed(&mut p, std::slice::from_ref(b), &mut evs2);
        }
        assert_eq!(merged(&evs2), merged(&evs));
        // Chunked, too.
        let mut data = b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        data.extend_from_slice(&chunk(&enc, 1, false, ""));
        let evs = run(Role::Client, &data, false);
        assert_eq!(
            bodies(&evs),
            vec![(payload, "chunked+gzip-sniffed".to_string())]
        );
        // A body that merely starts with 0x1f is left alone.
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\x1f\x8b\x00",
            false,
        );
        assert!(bodies(&evs).is_empty());
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(
            bodies(&evs),
            vec![(b"\x1f\x8b".to_vec(), "chunked".to_string())]
        );
    }

    #[test]
    fn unsupported_coding_reports_error_and_keeps_dechunked_bytes() {
        let data = response(
            "Transfer-Encoding: chunked\r\nContent-Encoding: compress\r\n",
            b"3\r\nabc\r\n0\r\n\r\n",
        );
        let evs = run(Role::Server, &data, false);
        assert_eq!(bodies(&evs), vec![(b"abc".to_vec(), "chunked".to_string())]);
        assert!(ends(&evs)[0].3.as_deref().unwrap().contains("compress"));
    }

    #[test]
    fn absolute_form_and_connect_targets() {
        let evs = run(
            Role::Client,
            b"GET http://user@Example.com:8080/p/q?x=1#f HTTP/1.1\r\n\r\n",
            false,
        );
        let h = heads(&evs)[0];
        assert_eq!(h.host.as_deref(), Some("Example.com:8080"));
        assert!(
            matches!(&h.kind, HeadKind::Request { path, query, .. } if path == "/p/q" && query.as_deref() == Some("x=1"))
        );
        let evs = run(
            Role::Client,
            b"GET http://h?y HTTP/1.1\r\nHost: other\r\n\r\n",
            false,
        );
        let h = heads(&evs)[0];
        assert_eq!(h.host.as_deref(), Some("other"));
        assert!(
            matches!(&h.kind, HeadKind::Request { path, query, .. } if path == "/" && query.as_deref() == Some("y"))
        );

        // CONNECT: the rest of the client stream is a tunnel.
        let mut data = b"CONNECT h.example:443 HTTP/1.1\r\n\r\n".to_vec();
        data.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x05, b'\n', b'G']);
        let evs = run(Role::Client, &data, true);
        assert_eq!(heads(&evs)[0].host.as_deref(), Some("h.example:443"));
        assert!(desyncs(&evs).is_empty());
        let mut p = HttpParser::new(Role::Server);
        p.push_request_method("CONNECT");
        let mut evs = Vec::new();
        feed(
            &mut p,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03garbage",
            &mut evs,
        );
        assert!(desyncs(&evs).is_empty());
        assert_eq!(ends(&evs), vec![(0, 0, true, None, false)]);
    }

    #[test]
    fn switching_protocols_starts_a_tunnel() {
        let mut p = HttpParser::new(Role::Server);
        p.push_request_method("GET");
        p.push_request_method("GET");
        let mut evs = Vec::new();
        feed(
            &mut p,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello\nHTTP/1.1 200 OK\r\n\r\n",
            &mut evs,
        );
        p.finish(&mut |e| evs.push(own(e)));
        assert_eq!(heads(&evs).len(), 1);
        assert!(desyncs(&evs).is_empty());
        assert_eq!(ends(&evs), vec![(0, 0, true, None, false)]);
    }

    #[test]
    fn leading_blank_lines_and_lf_only_heads() {
        let evs = run(
            Role::Client,
            b"\r\n\nGET / HTTP/1.1\nHost: a\n\nGET /2 HTTP/1.1\r\n\n",
            false,
        );
        let hs = heads(&evs);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].stream_offset, 3);
        assert_eq!(hs[0].host.as_deref(), Some("a"));
        assert!(desyncs(&evs).is_empty());
    }

    #[test]
    fn finish_ends_partial_messages() {
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            true,
        );
        assert_eq!(ends(&evs), vec![(3, 3, false, None, false)]);
        let evs = run(Role::Client, b"GET / HTTP/1.1\r\nHost:", true);
        assert_eq!(
            desyncs(&evs),
            vec![(0, "stream ended inside a message head".to_string())]
        );
        let evs = run(Role::Client, b"", true);
        assert!(evs.is_empty());
    }

    #[test]
    fn sniff_helpers() {
        assert!(looks_like_http_request(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http_request(b"POST "));
        assert!(looks_like_http_request(b"FOOBAR /x HTTP/1.0\r\n"));
        assert!(!looks_like_http_request(b"FOOBAR /x y HTTP/1.0\r\n"));
        assert!(!looks_like_http_request(b"FOOBAR /x\r\n HTTP/1.0"));
        assert!(!looks_like_http_request(b"GE"));
        assert!(!looks_like_http_request(b"get / HTTP/1.1"));
        assert!(!looks_like_http_request(b"\x16\x03\x01"));
        assert!(looks_like_http_response(b"HTTP/1.1 200 OK"));
        assert!(looks_like_http_response(b"HTTP/1.0 404"));
        assert!(!looks_like_http_response(b"HTTP/1.1 20"));
        assert!(!looks_like_http_response(b"HTTP/2 200 OK"));
        assert!(!looks_like_http_response(b"HTTP/1.1 2x0"));
    }

    #[test]
    fn percent_decode_edge_cases() {
        assert_eq!(percent_decode(b"%41%42c", false), b"ABc");
        assert_eq!(percent_decode(b"%6a%6A", false), b"jj");
        assert_eq!(percent_decode(b"%zz", false), b"%zz");
        assert_eq!(percent_decode(b"%4", false), b"%4");
        assert_eq!(percent_decode(b"%", false), b"%");
        assert_eq!(percent_decode(b"%%41", false), b"%A");
        assert_eq!(percent_decode(b"a+b", true), b"a b");
        assert_eq!(percent_decode(b"a+b", false), b"a+b");
        assert_eq!(percent_decode(b"%2B", true), b"+");
        assert_eq!(percent_decode(b"%ff", false), vec![0xff]);
    }

    #[test]
    fn split_query_edge_cases() {
        let got = split_query("a=1&b=%zz&&c&d=x+y&=v&e=%4&f=a=b&n%61me=%41");
        let want: Vec<(String, Vec<u8>)> = vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"%zz".to_vec()),
            ("c".into(), b"".to_vec()),
            ("d".into(), b"x y".to_vec()),
            ("".into(), b"v".to_vec()),
            ("e".into(), b"%4".to_vec()),
            ("f".into(), b"a=b".to_vec()),
            ("name".into(), b"A".to_vec()),
        ];
        assert_eq!(got, want);
        assert!(split_query("").is_empty());
    }

    fn request_heads(data: &[u8], finish: bool) -> Vec<(String, String, Option<String>, u8)> {
        heads(&run(Role::Client, data, finish))
            .into_iter()
            .filter_map(|h| match &h.kind {
                HeadKind::Request {
                    method,
                    target,
                    version,
                    ..
                } => Some((method.clone(), target.clone(), h.host.clone(), *version)),
                HeadKind::Response { .. } => None,
            })
            .collect()
    }

    fn req(m: &str, t: &str, host: Option<&str>, v: u8) -> (String, String, Option<String>, u8) {
        (m.to_owned(), t.to_owned(), host.map(str::to_owned), v)
    }

    #[test]
    fn unusual_method_tokens() {
        // Any RFC 9110 token is a method when the request line carries an HTTP/1.x version.
        for m in ["CCM_POST", "M-SEARCH", "X.Y~Z!", "RPC_IN_DATA"] {
            let data = format!("{m} /a HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(
                request_heads(data.as_bytes(), false),
                vec![req(m, "/a", Some("h"), 1)],
                "{m}"
            );
            assert!(looks_like_http_request(data.as_bytes()), "{m} sniffed");
        }
        // No separator after the method, or bytes outside the token set: not a request.
        for bad in [
            &b"GET/ HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            b"CCM_POST/HTTP/1.1\r\nHost: h\r\n\r\n",
            b"\xc3\x83\xc2 / HTTP/1.1\r\nHost: h\r\n\r\n",
        ] {
            let evs = run(Role::Client, bad, true);
            assert!(heads(&evs).is_empty());
            assert_eq!(desyncs(&evs).len(), 1);
            assert!(!looks_like_http_request(bad));
        }
        assert!(!looks_like_http_request(b"CCM_POST/ HTTP/1.1\r\n"));
        assert!(looks_like_http_request(b"OPTIONS\r\nHost: h\r\n"));
    }

    #[test]
    fn degraded_request_lines_of_known_methods() {
        // Target that looks like a version ("GET /HTTP/1.1", "OPTIONS HTTP/1.1"): no version.
        let data = b"GET /HTTP/1.1\r\nHost: www.example\r\n\r\nOPTIONS HTTP/1.1\r\nHost: b\r\n\r\n";
        let evs = run(Role::Client, data, false);
        assert_eq!(
            request_heads(data, false),
            vec![
                req("GET", "/HTTP/1.1", Some("www.example"), 0),
                req("OPTIONS", "HTTP/1.1", Some("b"), 0)
            ]
        );
        assert!(desyncs(&evs).is_empty());
        assert!(heads(&evs)[0].anomalies[0].contains("no HTTP version"));
        // Malformed version, and a request line holding only the method.
        let data =
            b"CCM_POST / HTTP/1.\r\nHost: h\r\n\r\nOPTIONS\r\nHost: h\r\n\r\nHEAD\nHost: i\n\n";
        let evs = run(Role::Client, data, false);
        assert_eq!(
            request_heads(data, false),
            vec![
                req("CCM_POST", "/", Some("h"), 1),
                req("OPTIONS", "", Some("h"), 0),
                req("HEAD", "", Some("i"), 0)
            ]
        );
        assert!(heads(&evs)[0].anomalies[0].contains("malformed HTTP version"));
        assert!(desyncs(&evs).is_empty());
        // An unknown token gets no such leniency; neither does another major version.
        for bad in [
            &b"FOO /x\r\n\r\n"[..],
            b"FOO / HTTP/1.\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1 trailing\r\n\r\n",
        ] {
            let evs = run(Role::Client, bad, true);
            assert!(heads(&evs).is_empty(), "{:?}", String::from_utf8_lossy(bad));
        }
        // While resynchronising, a request line must carry its version.
        let data = b"\x00junk\r\nGET /a\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        assert_eq!(request_heads(data, true), vec![req("GET", "/b", None, 1)]);
    }

    #[test]
    fn http09_request_lines() {
        // "GET /" ended by an empty line (Content-Length confusion attempts send it so).
        let evs = run(Role::Client, b"GET /\r\n\r\n", false);
        assert_eq!(
            request_heads(b"GET /\r\n\r\n", false),
            vec![req("GET", "/", None, 0)]
        );
        assert_eq!(ends(&evs), vec![(0, 0, true, None, false)]);
        // A lone HTTP/0.9 request line is complete at the end of the stream ...
        let evs = run(Role::Client, b"GET /zeek.html\n", true);
        assert_eq!(heads(&evs).len(), 1);
        assert_eq!(heads(&evs)[0].head_len, 15);
        assert_eq!(ends(&evs), vec![(0, 0, true, None, false)]);
        assert!(desyncs(&evs).is_empty());
        // ... but not before it, and an HTTP/1.x head cut short is still a truncated head.
        let evs = run(Role::Client, b"GET /zeek.html\n", false);
        assert!(heads(&evs).is_empty());
        let evs = run(Role::Client, b"GET / HTTP/1.1\r\n", true);
        assert!(heads(&evs).is_empty());
        assert_eq!(desyncs(&evs)[0].1, "stream ended inside a message head");
        // "GET HTTP/1.1" (no target): the word after the method is the target.
        let data = b"GET HTTP/1.1\r\n123User-Agent: Wget\r\nHost: bro.org\r\n\r\n";
        let evs = run(Role::Client, data, false);
        assert_eq!(
            request_heads(data, false),
            vec![req("GET", "HTTP/1.1", Some("bro.org"), 0)]
        );
        assert_eq!(heads(&evs)[0].headers.len(), 2);
        assert_eq!(
            parse_datagram(Role::Client, b"GET /x"),
            None,
            "no line end: incomplete"
        );
    }

    #[test]
    fn chunk_size_overflow_desyncs_and_reports_next_request() {
        // 2^64 cannot be a chunk size (RFC 9112 §7.1): the framing is invalid, and the complete
        // request that follows is reported rather than hidden as chunk data.
        let data = b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding: chunked\r\n\r\n\
            10000000000000000\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: target\r\n\r\n";
        let evs = run(Role::Client, data, false);
        assert_eq!(
            request_heads(data, false),
            vec![
                req("POST", "/", Some("target"), 1),
                req("GET", "/smuggled", Some("target"), 1)
            ]
        );
        assert_eq!(desyncs(&evs)[0].1, "invalid chunk size line");
        // So is 2^64 - 1, which no implementation can represent as a signed 64-bit length.
        let data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            ffffffffffffffff\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n";
        assert_eq!(request_heads(data, false).len(), 2);
        // 2^32 is a valid (large) size: what follows is chunk data.
        let data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            100000000\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n";
        assert_eq!(request_heads(data, false).len(), 1);
    }

    #[test]
    fn content_length_beyond_i64_is_invalid() {
        let data =
            b"POST / HTTP/1.1\r\nHost: target\r\nContent-Length: 18446744073709551615\r\n\r\n\
            GET /smuggled HTTP/1.1\r\nHost: target\r\n\r\n";
        let evs = run(Role::Client, data, false);
        let hs = heads(&evs);
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].content_length, None);
        assert!(matches!(&hs[1].kind, HeadKind::Request { path, .. } if path == "/smuggled"));
        assert_eq!(desyncs(&evs)[0].1, "invalid Content-Length");
        // The largest signed 64-bit length is still a length.
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
            false,
        );
        assert_eq!(heads(&evs).len(), 1);
        assert_eq!(heads(&evs)[0].content_length, Some(i64::MAX as u64));
        assert!(desyncs(&evs).is_empty());
    }

    #[test]
    fn obs_fold_in_request_is_unfolded() {
        // RFC 9112 §5.2: a server may replace obs-fold by SP; then the body is chunked and the
        // GET is the next request, parsed in sync.
        let data = b"POST / HTTP/1.1\r\nHost: target\r\nTransfer-Encoding:\r\n chunked\r\n\r\n\
            0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: target\r\n\r\n";
        let evs = run(Role::Client, data, false);
        let hs = heads(&evs);
        assert_eq!(hs.len(), 2);
        assert!(hs[0].chunked);
        assert_eq!(
            hs[0].raw,
            data[..hs[0].head_len].to_vec(),
            "raw bytes unchanged"
        );
        assert!(hs[0].anomalies.iter().any(|a| a.contains("folding")));
        assert!(hs[1].anomalies.is_empty());
        assert!(desyncs(&evs).is_empty());
        // LF-only folds, several continuation lines.
        let evs = run(
            Role::Client,
            b"GET / HTTP/1.1\nX-A: a\n\tb\n  c\nHost: h\n\n",
            false,
        );
        let h = heads(&evs)[0];
        assert_eq!(h.headers[0].1, "a \tb   c");
        assert_eq!(h.host.as_deref(), Some("h"));
        // A whitespace-led line right after the request line continues nothing: ignored.
        let evs = run(
            Role::Client,
            b"GET / HTTP/1.1\r\n X: y\r\nHost: h\r\n\r\n",
            false,
        );
        let h = heads(&evs)[0];
        assert_eq!(h.host.as_deref(), Some("h"));
        assert!(matches!(&h.kind, HeadKind::Request { target, .. } if target == "/"));
        assert!(h.anomalies.is_empty());
    }

    #[test]
    fn connect_with_extra_words_and_colonless_header() {
        let head =
            b"CONNECT mail.example:25 / HTTP/1.0\r\nMozilla 4.0 (compatible; MSIE 5.01)\r\n\r\n";
        let mut data = head.to_vec();
        data.extend_from_slice(b"HELO x\r\n");
        let mut p = HttpParser::new(Role::Client);
        let mut evs = Vec::new();
        feed(&mut p, &data, &mut evs);
        assert_eq!(
            request_heads(&data, false),
            vec![req(
                "CONNECT",
                "mail.example:25",
                Some("mail.example:25"),
                0
            )]
        );
        assert!(heads(&evs)[0].anomalies[0].contains("extra words"));
        assert!(heads(&evs)[0].headers.is_empty());
        assert!(desyncs(&evs).is_empty());
        assert_eq!(p.tunnel_start(), Some(head.len() as u64));
        let mut p = HttpParser::new(Role::Server);
        p.push_request_method("GET");
        feed(
            &mut p,
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81",
            &mut Vec::new(),
        );
        assert_eq!(p.tunnel_start(), Some(36));
        assert_eq!(HttpParser::new(Role::Client).tunnel_start(), None);
    }

    #[test]
    fn ssdp_datagram() {
        let h = parse_datagram(
            Role::Client,
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.host.as_deref(), Some("239.255.255.250:1900"));
        assert!(
            matches!(&h.kind, HeadKind::Request { method, target, .. } if method == "M-SEARCH" && target == "*")
        );
        let h = parse_datagram(
            Role::Server,
            b"HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\n\r\n",
        )
        .unwrap();
        assert!(matches!(h.kind, HeadKind::Response { status: 200, .. }));
        assert_eq!(parse_datagram(Role::Client, b"\x00\x01binary"), None);
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let fragments: [&[u8]; 8] = [
            b"GET / HTTP/1.1\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Length: 5\r\n",
            b"Content-Encoding: gzip, br, zstd, deflate\r\n",
            b"\r\n",
            b"\x1f\x8b\x08\x00",
            b"ffffffffffffffff\r\n",
        ];
        for round in 0..200 {
            let role = if round % 2 == 0 {
                Role::Client
            } else {
                Role::Server
            };
            let mut p = HttpParser::new(role);
            p.set_decoded_cap(1 << 16);
            let mut total = 0u64;
            let mut sink = |_: HttpEvent<'_>| {};
            for _ in 0..60 {
                let r = next();
                let mut buf: Vec<u8> = if r % 3 == 0 {
                    fragments[(r >> 8) as usize % fragments.len()].to_vec()
                } else {
                    (0..(r >> 20) % 40).map(|_| next() as u8).collect()
                };
                if r % 17 == 0 {
                    buf.clear();
                    let g = (r >> 32) % 100;
                    p.gap(g, &mut sink);
                    total += g;
                }
                p.feed(&buf, &mut sink);
                total += buf.len() as u64;
            }
            p.finish(&mut sink);
            assert_eq!(p.offset(), total);
        }
    }
}
