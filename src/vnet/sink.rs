//! What the TCP catch-all says back: the per-connection application of the vnet.
//!
//! This module owns the server side of every accepted connection, sans-IO: bytes from the
//! client in, bytes to the client and events out. It decides what the client speaks from
//! its first bytes (the device talks first in every protocol that matters here):
//! - HTTP/1.x: the sink reads whole requests, bodies included (Content-Length, chunked,
//!   keep-alive, pipelining, `Expect: 100-continue`) with the same streaming parser the
//!   analysis uses, and answers each with the configured response for its host and path
//!   (default `200` with `{}`), so that uploaders finish their uploads;
//! - TLS: ended here with the run's CA ([`super::tls`]) and the plaintext served by a
//!   nested application, the same as a cleartext connection; where TLS is not intercepted
//!   (policy, or a destination that refused telltale's certificate) the ClientHello is read
//!   (SNI recorded) and the connection closed;
//! - DNS over TCP (port 53): answered by the vnet's DNS server;
//! - anything else: read, acknowledged, never answered.

use std::net::SocketAddrV4;

use sha2::{Digest, Sha256};

use super::dns::{host_matches, DnsServer};
use super::event::VnetEvent;
use super::tls::{Session, TlsInterceptor};
use crate::proto::http::{looks_like_http_request, HeadKind, HttpEvent, HttpParser, Role};
use crate::proto::tls::{HandshakeReader, TlsProgress};

/// A configured answer of the HTTP sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkResponse {
    /// Host pattern (as for DNS overrides: exact, `*.suffix`, `*`); `None` = any host.
    pub host: Option<String>,
    /// Path pattern: exact, or a prefix ending in `*`; `None` = any path.
    pub path: Option<String>,
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
    /// Content-Type header.
    pub content_type: String,
}

impl SinkResponse {
    /// The default answer: `200` with `{}` as JSON.
    pub fn default_ok() -> SinkResponse {
        SinkResponse {
            host: None,
            path: None,
            status: 200,
            body: b"{}".to_vec(),
            content_type: "application/json".into(),
        }
    }

    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = self.host.as_deref().is_none_or(|p| host_matches(p, host));
        let path_ok = self
            .path
            .as_deref()
            .is_none_or(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => p == path,
            });
        host_ok && path_ok
    }
}

/// Everything a connection's application may touch besides its own state.
pub(crate) struct Ctx<'a> {
    pub now: u64,
    pub conn: u64,
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    pub name: Option<String>,
    pub dns: &'a mut DnsServer,
    pub responses: &'a [SinkResponse],
    pub events: &'a mut Vec<VnetEvent>,
    pub keep_body: usize,
    /// The segment's TLS interception (none: TLS is read up to the ClientHello and closed).
    pub tls: Option<&'a mut TlsInterceptor>,
}

/// What the connection should do after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Keep the connection open.
    Continue,
    /// Close it once everything written has been sent.
    Close,
}

/// The server side of one connection.
pub(crate) struct App {
    proto: Proto,
    /// Bytes buffered while the protocol is not known yet.
    probe: Vec<u8>,
    /// The plaintext of an intercepted TLS connection: TLS inside is not intercepted again.
    nested: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

enum Proto {
    Detect,
    Http(Box<HttpSink>),
    Tls(HandshakeReader),
    Dns(Vec<u8>),
    Opaque,
    Intercepted(Box<Session>),
}

impl App {
    pub(crate) fn new() -> App {
        App {
            proto: Proto::Detect,
            probe: Vec::new(),
            nested: false,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// The application of an intercepted TLS connection's plaintext.
    pub(crate) fn nested() -> App {
        App {
            nested: true,
            ..App::new()
        }
    }

    /// Name of the protocol the connection turned out to speak.
    pub(crate) fn protocol(&self) -> &'static str {
        match self.proto {
            Proto::Detect if self.bytes_in == 0 => "none",
            Proto::Detect | Proto::Opaque => "opaque",
            Proto::Http(_) => "http",
            Proto::Tls(_) | Proto::Intercepted(_) => "tls",
            Proto::Dns(_) => "dns",
        }
    }

    /// Bytes from the client; what to answer is appended to `tx`.
    pub(crate) fn on_data(&mut self, data: &[u8], cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        self.bytes_in += data.len() as u64;
        let before = tx.len();
        let after = self.dispatch(data, cx, tx);
        self.bytes_out += (tx.len() - before) as u64;
        after
    }

    fn dispatch(&mut self, data: &[u8], cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        if let Proto::Detect = self.proto {
            self.probe.extend_from_slice(data);
            let Some(mut proto) = detect(&self.probe, cx.server.port()) else {
                return After::Continue;
            };
            if matches!(proto, Proto::Tls(_)) && !self.nested && cx.tls.is_some() {
                proto = Proto::Intercepted(Box::new(Session::new()));
            }
            self.proto = proto;
            let probe = std::mem::take(&mut self.probe);
            return self.dispatch_known(&probe, cx, tx);
        }
        self.dispatch_known(data, cx, tx)
    }

    fn dispatch_known(&mut self, data: &[u8], cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        match &mut self.proto {
            Proto::Detect => After::Continue,
            Proto::Opaque => After::Continue,
            Proto::Intercepted(session) => session.on_data(data, cx, tx),
            Proto::Http(sink) => {
                let (after, tunnel) = sink.feed(data, cx, tx);
                if let Some(rest) = tunnel {
                    // A CONNECT was accepted: what follows is a new stream to recognise.
                    self.proto = Proto::Detect;
                    if !rest.is_empty() {
                        return self.dispatch(&rest, cx, tx);
                    }
                }
                after
            }
            Proto::Tls(reader) => match reader.push(data) {
                TlsProgress::NeedMore => After::Continue,
                TlsProgress::ClientHello(hello) => {
                    cx.events.push(VnetEvent::TlsHello {
                        ts: cx.now,
                        conn: cx.conn,
                        server: cx.server,
                        name: cx.name.clone(),
                        sni: hello.sni,
                    });
                    After::Close
                }
                _ => {
                    cx.events.push(VnetEvent::TlsHello {
                        ts: cx.now,
                        conn: cx.conn,
                        server: cx.server,
                        name: cx.name.clone(),
                        sni: None,
                    });
                    After::Close
                }
            },
            Proto::Dns(buf) => {
                buf.extend_from_slice(data);
                while let Some(len) = buf
                    .get(..2)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                {
                    let Some(msg) = buf.get(2..2 + len) else {
                        break;
                    };
                    let (resp, answered) = cx.dns.answer(msg);
                    for a in answered {
                        cx.events.push(VnetEvent::Dns {
                            ts: cx.now,
                            client: cx.client,
                            server: *cx.server.ip(),
                            transport: "tcp".into(),
                            name: a.name,
                            qtype: a.qtype,
                            outcome: a.outcome,
                        });
                    }
                    if let Some(resp) = resp {
                        tx.extend_from_slice(&(resp.len() as u16).to_be_bytes());
                        tx.extend_from_slice(&resp);
                    }
                    buf.drain(..2 + len);
                }
                if buf.len() > 70_000 {
                    return After::Close;
                }
                After::Continue
            }
        }
    }

    /// The client closed its side (FIN): finish what is pending. Always closes.
    pub(crate) fn on_eof(&mut self, cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        if let Proto::Detect = self.proto {
            if !self.probe.is_empty() {
                // A short message that never looked like anything: keep it as opaque.
                self.proto = Proto::Opaque;
            }
        }
        let before = tx.len();
        match &mut self.proto {
            Proto::Http(sink) => sink.finish(cx, tx),
            Proto::Intercepted(session) => {
                session.on_eof(cx, tx);
            }
            _ => {}
        }
        self.bytes_out += (tx.len() - before) as u64;
        After::Close
    }

    /// The connection is gone (reset, timed out, or closed): record an unfinished request.
    pub(crate) fn on_gone(&mut self, cx: &mut Ctx<'_>) {
        match &mut self.proto {
            Proto::Http(sink) => sink.abandon(cx),
            Proto::Intercepted(session) => session.on_gone(cx),
            _ => {}
        }
    }
}

/// Decides the protocol from the first bytes; `None` = need more.
fn detect(probe: &[u8], port: u16) -> Option<Proto> {
    let first = *probe.first()?;
    if port == 53 {
        return Some(Proto::Dns(Vec::new()));
    }
    if first == 0x16 {
        return Some(Proto::Tls(HandshakeReader::new()));
    }
    if looks_like_http_request(probe) {
        return Some(Proto::Http(Box::new(HttpSink::new())));
    }
    // A method token may still be arriving ("POS"): wait for a line's worth of bytes.
    let token_so_far = probe
        .iter()
        .all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_');
    if token_so_far && probe.len() < 32 {
        return None;
    }
    Some(Proto::Opaque)
}

/// A request being read.
struct Request {
    method: String,
    target: String,
    path: String,
    host: Option<String>,
    body_start: u64,
    appended_to: u64,
    body: Vec<u8>,
    body_len: u64,
    sha: Sha256,
    close: bool,
    connect: bool,
    head_only: bool,
}

/// HTTP side of a connection.
struct HttpSink {
    parser: HttpParser,
    offset: u64,
    current: Option<Request>,
    closing: bool,
}

/// A parser event, reduced to what the sink needs (the parser's events borrow its buffers).
enum Ev {
    Head(Box<Request>, bool),
    End { body_wire_len: u64, complete: bool },
    Desync,
}

impl HttpSink {
    fn new() -> HttpSink {
        HttpSink {
            parser: HttpParser::new(Role::Client),
            offset: 0,
            current: None,
            closing: false,
        }
    }

    /// Feeds client bytes. Returns what to do next and, after an accepted CONNECT, the bytes
    /// that belong to the tunnel.
    fn feed(
        &mut self,
        data: &[u8],
        cx: &mut Ctx<'_>,
        tx: &mut Vec<u8>,
    ) -> (After, Option<Vec<u8>>) {
        if self.closing {
            return (After::Close, None);
        }
        let chunk_start = self.offset;
        self.offset += data.len() as u64;
        let mut evs = Vec::new();
        self.parser.feed(data, &mut |e| match e {
            HttpEvent::Head(head) => {
                if let HeadKind::Request {
                    method,
                    target,
                    path,
                    version,
                    ..
                } = head.kind
                {
                    let header = |name: &str| {
                        head.headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.to_ascii_lowercase())
                    };
                    let expect = header("expect").is_some_and(|v| v.contains("100-continue"));
                    let conn = header("connection").unwrap_or_default();
                    let close =
                        conn.contains("close") || (version == 0 && !conn.contains("keep-alive"));
                    let body_start = head.stream_offset + head.head_len as u64;
                    let req = Request {
                        connect: method.eq_ignore_ascii_case("CONNECT"),
                        head_only: method.eq_ignore_ascii_case("HEAD"),
                        method,
                        target,
                        path,
                        host: head.host.clone(),
                        body_start,
                        appended_to: body_start,
                        body: Vec::new(),
                        body_len: 0,
                        sha: Sha256::new(),
                        close,
                    };
                    evs.push(Ev::Head(Box::new(req), expect));
                }
            }
            HttpEvent::End {
                body_wire_len,
                complete,
                ..
            } => evs.push(Ev::End {
                body_wire_len,
                complete,
            }),
            HttpEvent::Desync { .. } => evs.push(Ev::Desync),
            HttpEvent::Body { .. } => {}
        });
        let chunk_end = self.offset;
        for ev in evs {
            match ev {
                Ev::Head(req, expect) => {
                    if expect {
                        tx.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    self.current = Some(*req);
                }
                Ev::End {
                    body_wire_len,
                    complete,
                } => {
                    let Some(mut req) = self.current.take() else {
                        continue;
                    };
                    let body_end = req.body_start + body_wire_len;
                    append_body(
                        &mut req,
                        data,
                        chunk_start,
                        body_end.min(chunk_end),
                        cx.keep_body,
                    );
                    let connect = req.connect;
                    let close = req.close;
                    self.respond(req, complete, cx, tx);
                    if connect {
                        let from = usize::try_from(body_end.saturating_sub(chunk_start))
                            .unwrap_or(usize::MAX);
                        let rest = data.get(from..).unwrap_or_default().to_vec();
                        return (After::Continue, Some(rest));
                    }
                    if close {
                        self.closing = true;
                        return (After::Close, None);
                    }
                }
                Ev::Desync => {
                    // Not HTTP any more: read on silently.
                    self.abandon(cx);
                    self.closing = true;
                    return (After::Close, None);
                }
            }
        }
        if let Some(req) = self.current.as_mut() {
            append_body(req, data, chunk_start, chunk_end, cx.keep_body);
        }
        (After::Continue, None)
    }

    fn finish(&mut self, cx: &mut Ctx<'_>, tx: &mut Vec<u8>) {
        let mut evs = Vec::new();
        self.parser.finish(&mut |e| {
            if let HttpEvent::End { complete, .. } = e {
                evs.push(complete)
            }
        });
        if evs.first() == Some(&true) {
            if let Some(req) = self.current.take() {
                // A body delimited by the end of the stream (HTTP/1.0 style) ends here.
                self.respond(req, true, cx, tx);
            }
        }
        self.abandon(cx);
    }

    fn abandon(&mut self, cx: &mut Ctx<'_>) {
        if let Some(req) = self.current.take() {
            record(req, false, 0, cx);
        }
    }

    fn respond(&mut self, req: Request, complete: bool, cx: &mut Ctx<'_>, tx: &mut Vec<u8>) {
        if req.connect {
            tx.extend_from_slice(b"HTTP/1.1 200 Connection established\r\n\r\n");
            record(req, complete, 200, cx);
            return;
        }
        let host = req
            .host
            .as_deref()
            .map(strip_port)
            .map(str::to_string)
            .or_else(|| cx.name.clone())
            .unwrap_or_else(|| cx.server.ip().to_string());
        let default = SinkResponse::default_ok();
        let resp = cx
            .responses
            .iter()
            .find(|r| r.matches(&host, &req.path))
            .unwrap_or(&default);
        let status = resp.status;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nServer: telltale-sink\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            status,
            reason(status),
            resp.content_type,
            resp.body.len()
        );
        head.push_str(if req.close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        tx.extend_from_slice(head.as_bytes());
        if !req.head_only {
            tx.extend_from_slice(&resp.body);
        }
        record(req, complete, status, cx);
    }
}

/// Appends the body bytes of `chunk` (which starts at stream offset `chunk_start`) up to
/// stream offset `until` to the request.
fn append_body(req: &mut Request, chunk: &[u8], chunk_start: u64, until: u64, keep: usize) {
    let from = req.appended_to.max(req.body_start).max(chunk_start);
    if until <= from {
        return;
    }
    let a = usize::try_from(from - chunk_start).unwrap_or(usize::MAX);
    let b = usize::try_from(until - chunk_start).unwrap_or(usize::MAX);
    let Some(piece) = chunk.get(a..b.min(chunk.len())) else {
        return;
    };
    req.sha.update(piece);
    req.body_len += piece.len() as u64;
    let room = keep.saturating_sub(req.body.len());
    req.body.extend_from_slice(&piece[..piece.len().min(room)]);
    req.appended_to = from + piece.len() as u64;
}

fn record(req: Request, complete: bool, status: u16, cx: &mut Ctx<'_>) {
    let hex = hex::encode(req.sha.finalize());
    cx.events.push(VnetEvent::Http {
        ts: cx.now,
        conn: cx.conn,
        server: cx.server,
        name: cx.name.clone(),
        method: req.method,
        target: req.target,
        host: req.host,
        body_len: req.body_len,
        body_sha256: hex,
        body: req.body,
        complete,
        status,
    });
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host;
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vnet::dns::DnsConfig;
    use std::net::Ipv4Addr;

    struct Harness {
        dns: DnsServer,
        responses: Vec<SinkResponse>,
        events: Vec<VnetEvent>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                dns: DnsServer::new(DnsConfig::default()),
                responses: vec![SinkResponse {
                    host: Some("*.kestrel.example".into()),
                    path: Some("/v1/*".into()),
                    status: 201,
                    body: b"{\"ok\":true}".to_vec(),
                    content_type: "application/json".into(),
                }],
                events: Vec::new(),
            }
        }
        fn run(
            &mut self,
            app: &mut App,
            port: u16,
            pieces: &[&[u8]],
            eof: bool,
        ) -> (Vec<u8>, After) {
            let mut tx = Vec::new();
            let mut after = After::Continue;
            let mut cx = Ctx {
                now: 1,
                conn: 7,
                client: SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 10), 40000),
                server: SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 4), port),
                name: None,
                dns: &mut self.dns,
                responses: &self.responses,
                events: &mut self.events,
                keep_body: 1 << 20,
                tls: None,
            };
            for p in pieces {
                after = app.on_data(p, &mut cx, &mut tx);
            }
            if eof {
                after = app.on_eof(&mut cx, &mut tx);
            }
            (tx, after)
        }
        fn http(&self) -> Vec<(String, String, Vec<u8>, u64, bool, u16)> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    VnetEvent::Http {
                        method,
                        target,
                        body,
                        body_len,
                        complete,
                        status,
                        ..
                    } => Some((
                        method.clone(),
                        target.clone(),
                        body.clone(),
                        *body_len,
                        *complete,
                        *status,
                    )),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn keep_alive_requests_split_anywhere_get_answers_and_full_bodies() {
        let stream: &[u8] = b"POST /v1/register HTTP/1.1\r\nHost: api.account.kestrel.example\r\nContent-Length: 11\r\n\r\nimei=123456GET /health HTTP/1.1\r\nHost: other.example\r\n\r\nPOST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        for split in 1..stream.len() {
            let mut h = Harness::new();
            let mut app = App::new();
            let (tx, after) = h.run(&mut app, 80, &[&stream[..split], &stream[split..]], false);
            assert_eq!(after, After::Continue);
            let tx = String::from_utf8(tx).unwrap();
            assert_eq!(tx.matches("HTTP/1.1 ").count(), 3, "split {split}: {tx}");
            assert!(tx.starts_with("HTTP/1.1 201 Created"), "{tx}");
            assert!(tx.contains("{\"ok\":true}"));
            assert!(tx.ends_with("\r\n\r\n{}"));
            let reqs = h.http();
            assert_eq!(reqs.len(), 3, "split {split}");
            assert_eq!(reqs[0].2, b"imei=123456");
            assert_eq!(reqs[1].0, "GET");
            assert_eq!(reqs[1].3, 0);
            assert_eq!(reqs[2].2, b"5\r\nhello\r\n0\r\n\r\n");
            assert!(reqs.iter().all(|r| r.4));
            assert_eq!(app.protocol(), "http");
        }
    }

    #[test]
    fn expect_continue_and_connection_close() {
        let mut h = Harness::new();
        let mut app = App::new();
        let (tx, after) = h.run(
            &mut app,
            8080,
            &[b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: 3\r\n\r\n", b"abc"],
            false,
        );
        let tx = String::from_utf8(tx).unwrap();
        assert!(
            tx.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"),
            "{tx}"
        );
        assert!(tx.contains("Connection: close"));
        assert_eq!(after, After::Close);
        assert_eq!(h.http()[0].2, b"abc");
    }

    #[test]
    fn unfinished_upload_is_recorded_as_incomplete() {
        let mut h = Harness::new();
        let mut app = App::new();
        h.run(
            &mut app,
            80,
            &[b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\npartial"],
            true,
        );
        let r = &h.http()[0];
        assert_eq!(r.2, b"partial");
        assert!(!r.4);
        assert_eq!(r.5, 0);
    }

    #[test]
    fn tls_hello_is_read_then_closed_and_opaque_stays_silent() {
        let mut h = Harness::new();
        let mut app = App::new();
        let (tx, after) = h.run(
            &mut app,
            443,
            &[&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0, 0, 1, 0]],
            false,
        );
        assert!(tx.is_empty());
        assert_eq!(after, After::Close);
        assert!(matches!(h.events[0], VnetEvent::TlsHello { .. }));

        let mut app = App::new();
        let (tx, after) = h.run(&mut app, 5555, &[b"\x00\x01binary upload"], false);
        assert!(tx.is_empty());
        assert_eq!(after, After::Continue);
        assert_eq!(app.protocol(), "opaque");
        assert_eq!(app.bytes_in, 15);
    }

    #[test]
    fn dns_over_tcp_is_answered() {
        let mut h = Harness::new();
        let mut app = App::new();
        let q = crate::synth::dns_query(9, "api.kestrel.example");
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        let (tx, _) = h.run(&mut app, 53, &[&framed[..5], &framed[5..]], false);
        let len = usize::from(u16::from_be_bytes([tx[0], tx[1]]));
        let resp = crate::proto::dns::parse_dns(&tx[2..2 + len]).unwrap();
        assert_eq!(resp.id, 9);
        assert_eq!(resp.answers.len(), 1);
        assert!(matches!(
            &h.events[0],
            VnetEvent::Dns { transport, .. } if transport == "tcp"
        ));
    }

    #[test]
    fn connect_tunnel_then_tls() {
        let mut h = Harness::new();
        let mut app = App::new();
        let mut stream =
            b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n".to_vec();
        stream.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0, 0, 1, 0]);
        let (tx, after) = h.run(&mut app, 3128, &[&stream], false);
        assert!(String::from_utf8_lossy(&tx).starts_with("HTTP/1.1 200 Connection established"));
        assert_eq!(after, After::Close);
        assert!(h
            .events
            .iter()
            .any(|e| matches!(e, VnetEvent::TlsHello { .. })));
    }
}
