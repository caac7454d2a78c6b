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
//!
//! Files: `mod.rs` is the per-direction state machine that ties the parts together; `head` parses
//! request/response heads (httparse plus the lenient request-line rules), `body` owns body framing
//! (Content-Length, chunked, until close, capture gaps), `coding` the content-coding decoders, and
//! `url` the request-target, percent-decoding and query helpers.

mod body;
mod coding;
mod head;
#[cfg(test)]
mod testutil;
mod url;

use std::collections::VecDeque;

use memchr::memchr;
use serde::Serialize;

use body::{
    plan_body, Body, Chunk, Framing, GapOutcome, Outcome, Plan, MAX_CHUNK_LINE, MAX_TRAILERS,
};
use coding::build_decode;
use head::{parse_head, probe_verdict, scan_eoh, Eoh, ParseMode, Verdict};

pub use coding::{decode_whole, Decoded, DEFAULT_DECODED_CAP};
pub use head::{looks_like_http_request, looks_like_http_response, Head, HeadKind, MAX_HEAD_LEN};
pub use url::{percent_decode, split_query};

const MAX_PENDING_METHODS: usize = 1024;

/// Which side of the connection produced the bytes fed to a parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Client → server: the stream carries requests.
    Client,
    /// Server → client: the stream carries responses.
    Server,
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
        let plan = plan_body(&head, &info, &mut self.methods);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::testutil::*;

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
