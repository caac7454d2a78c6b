//! TCP conversations inside the engine: reassembly → protocol parser → canary scan, per direction.
//!
//! Each direction's in-order bytes go first to the parser chosen for the conversation (HTTP/1.x, TLS handshake,
//! DNS over TCP, or none) and then to the raw stream scanner. Hits of the raw scan inside HTTP messages are
//! attributed to the message (method, path, and the field: path, query parameter, header or body) once the parser
//! has seen the message's head; hits inside bodies that the parser decodes (chunked, compressed) are left to the
//! decoded-body scan, which sees the same bytes without chunk framing.

use std::collections::VecDeque;

use super::collect::{excerpt, Raw, Sent};
use super::{Analyzer, At, Judge, Unit};
use crate::canary::{Matcher, StreamHit, StreamScanner};
use crate::decode::TcpInfo;
use crate::flow::reassembly::{Chunk, Reassembler, ReassemblyStats, Segment};
use crate::layers::opaque::{OpaqueKind, Sniffer};
use crate::layers::Hint;
use crate::proto::dns::DnsTcpFramer;
use crate::proto::http::{self, HeadKind, HttpEvent, HttpParser, Role};
use crate::proto::tls::{self, HandshakeReader, TlsProgress};
use crate::report::{App, HttpRequest, UnreadReason};

mod streams;

/// How far back (in stream bytes) a raw hit may wait for the head of its HTTP message.
const MAX_PENDING_BACK: u64 = 128 << 10;
/// HTTP message spans remembered per direction for attribution.
const SPANS_KEPT: usize = 32;
/// Bytes of one HTTP body explored through the decoding graph; the rest is accounted as unread when it could
/// hide a layer (a magic or a long encoding-alphabet run), else only searched as a stream.
const BODY_WINDOW: usize = 1 << 20;
/// Bytes at the start of each direction of an unknown TCP protocol explored through the decoding graph; later
/// deliveries are explored one by one when they show a magic or a long encoding-alphabet run.
const PLAIN_WINDOW: usize = 64 << 10;

/// Bytes of a message body kept for the decoding graph.
#[derive(Default)]
struct BodyBuf {
    buf: Vec<u8>,
    /// Bytes beyond the window, and whether any of them could hide a layer.
    over: u64,
    hide: bool,
}

impl BodyBuf {
    fn push(&mut self, b: &[u8]) {
        let room = BODY_WINDOW.saturating_sub(self.buf.len());
        let (keep, rest) = b.split_at(room.min(b.len()));
        self.buf.extend_from_slice(keep);
        if !rest.is_empty() {
            self.over += rest.len() as u64;
            self.hide = self.hide || crate::layers::graph::could_hide_layers(rest);
        }
    }
}

enum Parser {
    Undecided,
    Http(Box<HttpParser>),
    Tls(Box<HandshakeReader>),
    Dns(DnsTcpFramer),
    /// A SOCKS 4/4a/5 handshake; the tunnelled protocol is chosen after it.
    Socks(Box<Socks>),
    /// Encrypted or otherwise unsearchable: counted, not scanned.
    Opaque,
    /// Unknown protocol: scanned raw only.
    Plain,
    /// A stream protocol (HTTP/2, WebSocket, MQTT), read into units (see `streams`).
    Stream(Box<streams::StreamState>),
}

/// An HTTP message's place in its direction's stream.
struct Span {
    start: u64,
    head_end: u64,
    end: Option<u64>,
    method: String,
    path: String,
    raw_head: Vec<u8>,
    /// The parser decodes the body (chunked/compressed) and it decoded cleanly.
    decoded_body: bool,
    content_type: Option<String>,
    /// The raw body (when the parser does not decode it), for the decoding graph; None once explored.
    body: Option<BodyBuf>,
    /// How the body's decoded layers are judged for an encrypted payload (set when the body ends).
    judge: Judge,
}

struct BodyScan {
    scanner: StreamScanner,
    layers: String,
    body: BodyBuf,
    found: Vec<usize>,
}

struct Dir {
    scanner: StreamScanner,
    parser: Parser,
    /// (stream offset, frame number, time) of recent deliveries, to name the frame of a hit.
    recent: VecDeque<(u64, u64, u64)>,
    spans: VecDeque<Span>,
    pending: Vec<StreamHit>,
    body: Option<BodyScan>,
    offset: u64,
    /// Stream offset where the current parser started (after a SOCKS handshake or a CONNECT, not 0).
    base: u64,
    /// The first bytes of an unknown protocol, for the decoding graph (None once explored).
    window: Option<Vec<u8>>,
    /// The body of the current upload, watched for an encrypted payload (see [`sniff_event`]).
    sniff: Option<BodySniff>,
}

/// An HTTP body being classified by `layers::opaque`: its decoded bytes when the parser decodes it, else its
/// raw bytes from the stream (`start`: stream offset of the body's first byte; `fed`: fed up to here).
struct BodySniff {
    sniffer: Sniffer,
    decoded: bool,
    start: u64,
    fed: u64,
    /// A multipart body: its parts, and the bytes between them, are judged one by one where the decoding graph
    /// opens them (`analysis::units`), so a compressed part does not make the whole body "high entropy". An
    /// encryption format's own marker at the body's start is still one, and so is a high-entropy body larger
    /// than the exploration window (its parts past the window are never opened).
    multipart: bool,
}

/// State of one live TCP conversation.
pub(super) struct TcpConn {
    reasm: [Reassembler; 2],
    dirs: [Dir; 2],
    /// Request methods not yet handed to the response parser (HEAD has no response body).
    methods: Vec<String>,
    /// Report indices of requests waiting for their response.
    awaiting: VecDeque<usize>,
    pub(super) tls_index: Option<usize>,
    /// Report index of the request whose body is being read.
    current_request: Option<usize>,
    /// The direction that sends requests (0 unless the side that answered the SYN sends HTTP requests).
    client_dir: usize,
    /// Decryption of the conversation's TLS with logged keys, and the plaintext's own pipeline.
    pub(super) tls: Option<Box<super::tls_decrypt::TlsDecrypt>>,
    /// The stream protocol the last HTTP/1.1 request asked to upgrade to (switched to on the server's 101).
    upgrade: Option<crate::proto::stream::StreamKind>,
}

impl TcpConn {
    pub fn new(m: &Matcher, cap: usize) -> Self {
        let dir = || Dir {
            scanner: StreamScanner::new(m),
            parser: Parser::Undecided,
            recent: VecDeque::new(),
            spans: VecDeque::new(),
            pending: Vec::new(),
            body: None,
            offset: 0,
            base: 0,
            window: Some(Vec::new()),
            sniff: None,
        };
        TcpConn {
            reasm: [Reassembler::new(cap), Reassembler::new(cap)],
            dirs: [dir(), dir()],
            methods: Vec::new(),
            awaiting: VecDeque::new(),
            tls_index: None,
            current_request: None,
            client_dir: 0,
            tls: None,
            upgrade: None,
        }
    }

    pub fn finished(&self) -> bool {
        self.reasm[0].finished() && self.reasm[1].finished()
    }

    pub fn stats(&self) -> [ReassemblyStats; 2] {
        [self.reasm[0].stats(), self.reasm[1].stats()]
    }
}

/// Feeds one segment of direction `dir` of flow `fi`.
pub(super) fn segment(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    t: TcpInfo,
    payload: &[u8],
    missing: u32,
    at: At,
) {
    let Some(mut conn) = an.flows[fi].tcp.take() else {
        return;
    };
    let seg = Segment {
        seq: t.seq,
        syn: t.syn,
        fin: t.fin,
        payload,
        missing,
        packet: at.packet,
    };
    let mut out = Vec::new();
    conn.reasm[dir].segment(seg, &mut |c| out.push(Delivery::of(c, payload)));
    deliver(an, fi, dir, &mut conn, payload, out, at.ts);
    an.flows[fi].tcp = Some(conn);
}

/// What the reassembler delivered, held until the engine can act on it (the reassembler lends data only inside
/// its callback, while the engine is borrowed).
enum Delivery {
    /// `payload[from..to]` of the segment being fed: no copy on the in-order path.
    InSegment { from: usize, to: usize, packet: u64 },
    /// Bytes that waited out of order.
    Owned { bytes: Vec<u8>, packet: u64 },
    /// Bytes never seen.
    Gap(u64),
}

impl Delivery {
    fn of(c: Chunk<'_>, payload: &[u8]) -> Delivery {
        match c {
            Chunk::Gap(n) => Delivery::Gap(n),
            Chunk::Data { data, packet } => {
                let from = (data.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
                match from.checked_add(data.len()) {
                    Some(to)
                        if from <= payload.len() && to <= payload.len() && !payload.is_empty() =>
                    {
                        Delivery::InSegment { from, to, packet }
                    }
                    _ => Delivery::Owned {
                        bytes: data.to_vec(),
                        packet,
                    },
                }
            }
        }
    }
}

/// Hands deliveries of direction `dir` to the parsers and the scanner, in order.
fn deliver(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    payload: &[u8],
    out: Vec<Delivery>,
    ts: u64,
) {
    for d in out {
        match d {
            Delivery::Gap(n) => gap(an, fi, dir, conn, n),
            Delivery::InSegment { from, to, packet } => {
                let bytes = payload.get(from..to).unwrap_or_default();
                data(an, fi, dir, conn, bytes, At { packet, ts });
            }
            Delivery::Owned { bytes, packet } => data(an, fi, dir, conn, &bytes, At { packet, ts }),
        }
    }
}

/// Flushes both directions at the end of the conversation.
pub(super) fn flush(an: &mut Analyzer, fi: usize) {
    let Some(mut conn) = an.flows[fi].tcp.take() else {
        return;
    };
    let ts = an.flows[fi].last_ns;
    for dir in 0..2 {
        let mut out = Vec::new();
        conn.reasm[dir].flush(&mut |c| out.push(Delivery::of(c, &[])));
        deliver(an, fi, dir, &mut conn, &[], out, ts);
        finish_dir(an, fi, &mut conn, dir, ts);
    }
    super::tls_decrypt::finish(an, fi, &mut conn, ts);
    an.flows[fi].tcp = Some(conn);
}

/// End of direction `dir` for the parser and scanners of `conn`.
pub(super) fn finish_dir(an: &mut Analyzer, fi: usize, conn: &mut TcpConn, dir: usize, ts: u64) {
    {
        // End of stream for the parser.
        let d = &mut conn.dirs[dir];
        if let Parser::Http(p) = &mut d.parser {
            let mut evs = Vec::new();
            p.finish(&mut |e| evs.push(own_event(e)));
            let at = At {
                packet: d.recent.back().map(|r| r.1).unwrap_or(0),
                ts,
            };
            for e in evs {
                sniff_event(an, fi, dir, conn, &e, (&[], 0), at);
                http_event(an, fi, dir, conn, e, at);
            }
        }
        let at = At {
            packet: conn.dirs[dir].recent.back().map(|r| r.1).unwrap_or(0),
            ts,
        };
        streams::finish(an, fi, dir, conn, at);
        let d = &mut conn.dirs[dir];
        let mut tail_hits = Vec::new();
        d.scanner.finish(&an.matcher, &mut tail_hits);
        if let Some(b) = d.body.take() {
            finish_body(an, fi, dir, &conn.dirs[dir], b, At { packet: 0, ts });
        }
        explore_window(an, fi, dir, &mut conn.dirs[dir], ts);
        for i in 0..conn.dirs[dir].spans.len() {
            explore_span_body(an, fi, dir, &mut conn.dirs[dir], i, ts);
        }
        let d = &mut conn.dirs[dir];
        d.pending.extend(tail_hits);
        let pending = std::mem::take(&mut d.pending);
        for h in pending {
            report_stream_hit(an, fi, dir, &conn.dirs[dir], h, true);
        }
    }
}

fn gap(an: &mut Analyzer, fi: usize, dir: usize, conn: &mut TcpConn, n: u64) {
    let ts = an.flows[fi].last_ns;
    super::tls_decrypt::gap(an, fi, dir, conn, n, ts);
    if matches!(conn.dirs[dir].parser, Parser::Stream(_)) {
        let packet = conn.dirs[dir].recent.back().map(|r| r.1).unwrap_or(0);
        streams::gap(an, fi, dir, conn, At { packet, ts });
    }
    an.out
        .unread(fi, dir, crate::report::UnreadReason::TcpGap, n, ts);
    let d = &mut conn.dirs[dir];
    d.scanner.gap(n);
    d.offset += n;
    if let Some(b) = &mut d.body {
        // The decoded body continues only if the parser stays in sync; a fresh scanner avoids false joins.
        b.scanner.gap(0);
    }
    match &mut d.parser {
        Parser::Http(p) => {
            let mut evs = Vec::new();
            p.gap(n, &mut |e| evs.push(own_event(e)));
            let packet = d.recent.back().map(|r| r.1).unwrap_or(0);
            let ts = an.flows[fi].last_ns;
            for e in evs {
                let at = At { packet, ts };
                sniff_event(an, fi, dir, conn, &e, (&[], 0), at);
                http_event(an, fi, dir, conn, e, at);
            }
        }
        Parser::Dns(f) => f.gap(),
        Parser::Tls(_) => d.parser = Parser::Opaque,
        _ => {}
    }
}

/// Chooses the parser of a conversation from its first bytes.
fn decide(an: &mut Analyzer, fi: usize, dir: usize, conn: &mut TcpConn, first: &[u8]) {
    let f = &mut an.flows[fi];
    let (cport, sport) = (f.client.1, f.server.1);
    let on = |p: u16| cport == p || sport == p;
    let midstream = conn.reasm[dir].stats().started_midstream;
    let request = http::looks_like_http_request(first);
    let response = http::looks_like_http_response(first);
    let stream = streams::detect(dir, first);
    let app = if let Some(k) = stream {
        crate::analysis::stream_app(k)
    } else if (dir == 0 && request) || (dir == 1 && response) {
        App::Http
    } else if dir == 1 && request {
        // The side that answered the SYN sends requests (seen in the wild, and in Zeek's tests).
        conn.client_dir = 1;
        App::Http
    } else if dir == 0 && on(1080) && matches!(first.first(), Some(4 | 5)) {
        App::Socks
    } else if dir == 0 && tls::looks_like_tls_client(first) {
        App::Tls
    } else if on(53) {
        App::Dns
    } else if dir == 1 && first.len() >= 3 && first[0] == 0x16 && first[1] == 3 {
        App::Tls
    } else if midstream && (on(80) || on(8080) || on(8000)) {
        App::Http
    } else {
        App::Unknown
    };
    f.app = app;
    let client_dir = conn.client_dir;
    for (i, d) in conn.dirs.iter_mut().enumerate() {
        if !matches!(d.parser, Parser::Undecided) {
            continue;
        }
        d.base = d.offset;
        if let Some(k) = stream {
            d.parser = Parser::Stream(streams::StreamState::new(k, i == client_dir));
            continue;
        }
        d.parser = match app {
            App::Http => Parser::Http(Box::new(HttpParser::new(if i == client_dir {
                Role::Client
            } else {
                Role::Server
            }))),
            App::Tls => Parser::Tls(Box::default()),
            App::Dns => Parser::Dns(DnsTcpFramer::new()),
            App::Socks => Parser::Socks(Box::new(Socks::new(
                first.first().copied().unwrap_or(5),
                i == 0,
            ))),
            _ => Parser::Plain,
        };
    }
}

pub(super) fn data(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    bytes: &[u8],
    at: At,
) {
    let start = conn.dirs[dir].offset;
    let opaque_before = matches!(conn.dirs[dir].parser, Parser::Opaque);
    let tls_before = matches!(conn.dirs[dir].parser, Parser::Tls(_));
    // 1. The protocol parser.
    parse(an, fi, dir, conn, bytes, start, at);
    // A delivery that ended the TLS handshake reader (records after the hellos) is ciphertext too.
    let opaque = opaque_before || (tls_before && matches!(conn.dirs[dir].parser, Parser::Opaque));
    // With logged keys, the TLS bytes are also decrypted (their plaintext goes through its own pipeline).
    if matches!(conn.dirs[dir].parser, Parser::Tls(_)) || opaque {
        let base = conn.dirs[dir].base;
        super::tls_decrypt::feed(an, fi, dir, conn, bytes, start, base, at);
    }
    scan(an, fi, dir, conn, bytes, start, opaque, at);
}

/// Hands `bytes` (at stream offset `start`) to the direction's protocol parser, choosing it first if needed.
fn parse(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    bytes: &[u8],
    start: u64,
    at: At,
) {
    if matches!(conn.dirs[dir].parser, Parser::Undecided) {
        decide(an, fi, dir, conn, bytes);
        conn.dirs[dir].base = start;
    }
    match &mut conn.dirs[dir].parser {
        Parser::Http(_) => {
            if dir != conn.client_dir {
                let methods = std::mem::take(&mut conn.methods);
                if let Parser::Http(p) = &mut conn.dirs[dir].parser {
                    for m in &methods {
                        p.push_request_method(m);
                    }
                }
            }
            let mut evs = Vec::new();
            let mut tunnel = None;
            if let Parser::Http(p) = &mut conn.dirs[dir].parser {
                p.feed(bytes, &mut |e| evs.push(own_event(e)));
                tunnel = p.tunnel_start();
            }
            for e in evs {
                sniff_event(an, fi, dir, conn, &e, (bytes, start), at);
                http_event(an, fi, dir, conn, e, at);
            }
            if let Some(s) = &mut conn.dirs[dir].sniff {
                s.feed(bytes, start, u64::MAX);
            }
            if let Some(t) = tunnel {
                // CONNECT or an upgrade: what follows is another protocol (often TLS through a proxy).
                let cut = (conn.dirs[dir].base + t).saturating_sub(start);
                conn.dirs[dir].parser = Parser::Undecided;
                if dir != conn.client_dir {
                    if let Some(k) = conn.upgrade.take() {
                        // A 101 to an upgrade to WebSocket or h2c: both directions switch now.
                        streams::switch(an, fi, conn, k);
                    }
                }
                if let Some(rest) = bytes.get(cut as usize..).filter(|r| !r.is_empty()) {
                    parse(an, fi, dir, conn, rest, start + cut, at);
                }
            }
        }
        Parser::Tls(r) => match r.push(bytes) {
            TlsProgress::NeedMore => {}
            TlsProgress::ClientHello(ch) => {
                // The delivery that completed the hello stands for its bytes.
                let sent = Sent::new(fi, dir, bytes.len(), at);
                conn.tls_index = Some(an.record_hello(fi, ch, sent));
            }
            TlsProgress::ServerHello(sh) => {
                if let Some(t) = conn.tls_index.and_then(|i| an.out.tls_mut(i)) {
                    t.negotiated_version = Some(sh.version);
                }
            }
            TlsProgress::Done => conn.dirs[dir].parser = Parser::Opaque,
            TlsProgress::NotTls | TlsProgress::Error(_) => conn.dirs[dir].parser = Parser::Plain,
        },
        Parser::Dns(framer) => {
            let mut msgs = Vec::new();
            framer.push(bytes, &mut msgs);
            // The bytes of each message, for a record past its cap: this delivery's, shared among them.
            let share = bytes.len() / msgs.len().max(1);
            for m in msgs.into_iter().flatten() {
                for q in &m.questions {
                    an.scan_dns_name(fi, dir, &q.name, at);
                }
                an.out.dns(&m, Sent::new(fi, dir, share, at));
                an.learn_names(&m);
            }
        }
        Parser::Socks(socks) => match socks.push(bytes) {
            SocksStep::NeedMore => {}
            SocksStep::Invalid => conn.dirs[dir].parser = Parser::Plain,
            SocksStep::Done { used, target } => {
                if let Some(t) = target {
                    an.flows[fi].host.get_or_insert(t);
                }
                conn.dirs[dir].parser = Parser::Undecided;
                if let Some(rest) = bytes.get(used..).filter(|r| !r.is_empty()) {
                    parse(an, fi, dir, conn, rest, start + used as u64, at);
                }
            }
        },
        Parser::Stream(_) => streams::feed(an, fi, dir, conn, bytes, at),
        Parser::Plain if starts_tls_handshake(bytes) => {
            // TLS started inside a cleartext protocol (STARTTLS in SMTP/IMAP/POP3/XMPP, FTP's AUTH TLS, LDAP's
            // StartTLS, PostgreSQL's SSLRequest, after an unrecognised proxy handshake): read as TLS from here on.
            conn.dirs[dir].parser = Parser::Tls(Box::default());
            conn.dirs[dir].base = start;
            if an.flows[fi].app.is_unknown() {
                an.flows[fi].app = App::Tls;
            }
            parse(an, fi, dir, conn, bytes, start, at);
        }
        Parser::Opaque | Parser::Plain | Parser::Undecided => {}
    }
}

/// A delivery that starts with a TLS handshake record carrying a ClientHello or a ServerHello.
fn starts_tls_handshake(b: &[u8]) -> bool {
    match b {
        [0x16, 0x03, minor, hi, lo, kind, ..] if *minor <= 4 && matches!(kind, 1 | 2) => {
            let len = u16::from_be_bytes([*hi, *lo]);
            (4..=18432).contains(&len)
        }
        _ => false,
    }
}

/// Searches the raw bytes for canaries (unless the direction was already opaque) and attributes the hits.
#[allow(clippy::too_many_arguments)]
fn scan(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    bytes: &[u8],
    start: u64,
    opaque_before: bool,
    at: At,
) {
    let d = &mut conn.dirs[dir];
    d.offset = start + bytes.len() as u64;
    if opaque_before && conn.tls.as_ref().is_some_and(|t| t.owns(dir)) {
        // The decryptor accounts these bytes (read, or unread with its reason).
        d.scanner.gap(bytes.len() as u64);
        return;
    }
    if opaque_before {
        an.flows[fi].opaque_bytes += bytes.len() as u64;
        // Attributed to the time these bytes were sent, not to the flow's start.
        an.out.unread(
            fi,
            dir,
            crate::report::UnreadReason::TlsCiphertext,
            bytes.len() as u64,
            at.ts,
        );
        d.scanner.gap(bytes.len() as u64);
        return;
    }
    // 2. The raw scan.
    d.recent.push_back((start, at.packet, at.ts));
    if d.recent.len() > 64 {
        d.recent.pop_front();
    }
    let mut hits = Vec::new();
    d.scanner.feed(&an.matcher, bytes, &mut hits);
    d.pending.extend(hits);
    // 3. The decoding graph: the first bytes of an unknown protocol, and raw (undecoded) HTTP bodies.
    if matches!(d.parser, Parser::Plain | Parser::Undecided) {
        let mut rest: &[u8] = bytes;
        if let Some(w) = &mut d.window {
            let room = PLAIN_WINDOW.saturating_sub(w.len());
            let (keep, after) = bytes.split_at(room.min(bytes.len()));
            w.extend_from_slice(keep);
            rest = after;
            if w.len() >= PLAIN_WINDOW {
                explore_window(an, fi, dir, d, at.ts);
            }
        }
        if !rest.is_empty() && crate::layers::graph::could_hide_layers(rest) {
            explore_plain(an, fi, dir, rest, at);
        }
    } else if let Parser::Http(_) = d.parser {
        let end_of_delivery = start + bytes.len() as u64;
        for i in 0..d.spans.len() {
            let s = &mut d.spans[i];
            let Some(body) = &mut s.body else {
                continue;
            };
            let from = s.head_end.max(start);
            let to = s.end.unwrap_or(u64::MAX).min(end_of_delivery);
            if from < to {
                let a = usize::try_from(from - start).unwrap_or(usize::MAX);
                let z = usize::try_from(to - start).unwrap_or(usize::MAX);
                if let Some(piece) = bytes.get(a..z) {
                    body.push(piece);
                }
            }
            if s.end.is_some_and(|e| e <= end_of_delivery) {
                explore_span_body(an, fi, dir, d, i, at.ts);
            }
        }
    }
    let d = &mut conn.dirs[dir];
    if !d.pending.is_empty() {
        let pending = std::mem::take(&mut conn.dirs[dir].pending);
        for h in pending {
            report_stream_hit(an, fi, dir, &conn.dirs[dir], h, false)
                .into_iter()
                .for_each(|h| conn.dirs[dir].pending.push(h));
        }
    }
}

/// Explores the window kept at the start of an unknown protocol's direction.
fn explore_window(an: &mut Analyzer, fi: usize, dir: usize, d: &mut Dir, ts: u64) {
    let Some(w) = d.window.take() else {
        return;
    };
    let at = At {
        packet: d.recent.front().map(|r| r.1).unwrap_or(0),
        ts,
    };
    explore_plain(an, fi, dir, &w, at);
}

/// Explores bytes of an unknown TCP protocol (its raw stream scan already reported what they show as such).
fn explore_plain(an: &mut Analyzer, fi: usize, dir: usize, bytes: &[u8], at: At) {
    let protocol = match an.flows[fi].app {
        App::Unknown => "tcp",
        a => a.as_str(),
    };
    an.search_unit(Unit {
        flow: fi,
        dir,
        protocol,
        field: None,
        prefix: None,
        decoded_from: None,
        http: None,
        bytes,
        hint: Hint::None,
        at,
        report_root: false,
        found: &[],
        zone: None,
        judge: Judge::Layers,
    });
}

/// Explores the raw body of span `i` (once it is complete, or at the end of the stream).
fn explore_span_body(an: &mut Analyzer, fi: usize, dir: usize, d: &mut Dir, i: usize, ts: u64) {
    let packet = d.recent.back().map(|r| r.1).unwrap_or(0);
    let Some(s) = d.spans.get_mut(i) else {
        return;
    };
    let Some(body) = s.body.take() else {
        return;
    };
    let http = Some((s.method.clone(), s.path.clone()));
    let ct = s.content_type.clone();
    let judge = s.judge;
    explore_body(
        an,
        fi,
        dir,
        body,
        (ct.as_deref(), judge),
        None,
        http,
        &[],
        At { packet, ts },
    );
}

/// Explores an HTTP body through the decoding graph; bytes beyond the window that could hide a layer are unread.
/// `(content_type, judge)`: the body's Content-Type, and how its layers are judged for an encrypted payload
/// (set by [`sniff_event`] when the body ended).
#[allow(clippy::too_many_arguments)]
fn explore_body(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    body: BodyBuf,
    (content_type, judge): (Option<&str>, Judge),
    decoded_from: Option<&str>,
    http: Option<(String, String)>,
    found: &[usize],
    at: At,
) {
    if body.buf.is_empty() {
        return;
    }
    an.search_unit(Unit {
        flow: fi,
        dir,
        protocol: "http",
        field: Some("body"),
        prefix: None,
        decoded_from,
        http,
        bytes: &body.buf,
        hint: content_type.map_or(Hint::None, Hint::ContentType),
        at,
        report_root: false,
        found,
        zone: None,
        judge,
    });
    if body.over > 0 && body.hide {
        an.out.unread(
            fi,
            dir,
            crate::report::UnreadReason::DecodeBudget,
            body.over,
            at.ts,
        );
    }
}

/// Skips one direction of a SOCKS handshake (RFC 1928 / 1929, SOCKS 4 and 4a).
struct Socks {
    buf: Vec<u8>,
    version: u8,
    client: bool,
    /// Messages of the handshake already consumed in this direction.
    stage: u8,
    target: Option<String>,
}

enum SocksStep {
    NeedMore,
    Invalid,
    /// The handshake ended after `used` bytes of the last chunk; `target` is the requested destination.
    Done {
        used: usize,
        target: Option<String>,
    },
}

impl Socks {
    fn new(version: u8, client: bool) -> Self {
        Socks {
            buf: Vec::new(),
            version,
            client,
            stage: 0,
            target: None,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> SocksStep {
        let before = self.buf.len();
        self.buf.extend_from_slice(&bytes[..bytes.len().min(1024)]);
        let mut at = 0;
        loop {
            let b = &self.buf[at..];
            // Username/password sub-negotiation (RFC 1929): a message starting with 1 before the request.
            let auth = self.version == 5 && self.stage == 1 && b.first() == Some(&1);
            let len = match (self.version, self.client, self.stage) {
                (4, true, 0) => self.socks4_request(at),
                (4, false, 0) => (b.len() >= 8).then_some(8),
                (5, false, 0) => (b.len() >= 2).then_some(2),
                (5, true, 0) => b
                    .get(1)
                    .and_then(|&n| (b.len() >= 2 + usize::from(n)).then_some(2 + usize::from(n))),
                (5, true, 1) if auth => socks5_auth_len(b),
                (5, false, 1) if auth => (b.len() >= 2).then_some(2),
                (5, _, 1) => self.socks5_request(at),
                _ => return SocksStep::Invalid,
            };
            let Some(len) = len else {
                if self.buf.len() >= 1024 {
                    return SocksStep::Invalid;
                }
                return SocksStep::NeedMore;
            };
            at += len;
            if !auth {
                self.stage += 1;
            }
            let last = if self.version == 4 { 1 } else { 2 };
            if self.stage >= last {
                let used = at.saturating_sub(before);
                return SocksStep::Done {
                    used,
                    target: self.target.take(),
                };
            }
        }
    }

    fn socks4_request(&mut self, at: usize) -> Option<usize> {
        let b = self.buf.get(at..)?;
        let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
        let ip = b.get(4..8)?;
        let user_end = 8 + b.get(8..)?.iter().position(|&c| c == 0)?;
        if ip[..3] == [0, 0, 0] && ip[3] != 0 {
            // SOCKS 4a: a host name follows.
            let name_start = user_end + 1;
            let name_end = name_start + b.get(name_start..)?.iter().position(|&c| c == 0)?;
            self.target = Some(format!(
                "{}:{port}",
                String::from_utf8_lossy(&b[name_start..name_end])
            ));
            return Some(name_end + 1);
        }
        self.target = Some(format!("{}.{}.{}.{}:{port}", ip[0], ip[1], ip[2], ip[3]));
        Some(user_end + 1)
    }

    fn socks5_request(&mut self, at: usize) -> Option<usize> {
        let b = self.buf.get(at..)?;
        let (addr_len, name) = match *b.get(3)? {
            1 => (4, None),
            3 => {
                let n = usize::from(*b.get(4)?);
                (
                    1 + n,
                    b.get(5..5 + n)
                        .map(|d| String::from_utf8_lossy(d).into_owned()),
                )
            }
            4 => (16, None),
            _ => return None,
        };
        let len = 4 + addr_len + 2;
        if b.len() < len {
            return None;
        }
        if self.client {
            let port = u16::from_be_bytes([b[len - 2], b[len - 1]]);
            self.target = name.map(|n| format!("{n}:{port}"));
        }
        Some(len)
    }
}

fn socks5_auth_len(b: &[u8]) -> Option<usize> {
    let ulen = usize::from(*b.get(1)?);
    let plen = usize::from(*b.get(2 + ulen)?);
    let len = 3 + ulen + plen;
    (b.len() >= len).then_some(len)
}

/// An HTTP event with its body bytes owned (events are collected, then handled with the engine borrowed).
enum OwnedEvent {
    Head(Box<http::Head>),
    Body {
        decoded: Vec<u8>,
        decoded_offset: u64,
        layers: String,
    },
    End {
        body_wire_len: u64,
        body_decoded_len: u64,
        decode_error: Option<String>,
        decoded_capped: bool,
    },
    Desync(String),
}

fn own_event(e: HttpEvent<'_>) -> OwnedEvent {
    match e {
        HttpEvent::Head(h) => OwnedEvent::Head(Box::new(h)),
        HttpEvent::Body {
            decoded,
            decoded_offset,
            layers,
            ..
        } => OwnedEvent::Body {
            decoded: decoded.to_vec(),
            decoded_offset,
            layers: layers.to_string(),
        },
        HttpEvent::End {
            body_wire_len,
            body_decoded_len,
            decode_error,
            decoded_capped,
            ..
        } => OwnedEvent::End {
            body_wire_len,
            body_decoded_len,
            decode_error,
            decoded_capped,
        },
        HttpEvent::Desync { reason, .. } => OwnedEvent::Desync(reason),
    }
}

fn http_event(an: &mut Analyzer, fi: usize, dir: usize, conn: &mut TcpConn, e: OwnedEvent, at: At) {
    match e {
        OwnedEvent::Head(mut h) => {
            let decoded_body = h.chunked || !h.content_encoding.is_empty();
            let (method, path) = match &h.kind {
                HeadKind::Request {
                    method,
                    path,
                    query,
                    ..
                } => {
                    let f = &mut an.flows[fi];
                    if f.host.is_none() {
                        f.host.clone_from(&h.host);
                    }
                    let Some(req) = request_record(&h, fi, at) else {
                        return;
                    };
                    // Its head: what the record holds (the body is searched and accounted on its own).
                    let idx = an.out.http_request_from(req, dir, h.head_len as u64);
                    conn.current_request = Some(idx);
                    conn.awaiting.push_back(idx);
                    conn.methods.push(method.clone());
                    if let Some(k) = streams::upgrade_of(&h.headers) {
                        conn.upgrade = Some(k);
                    }
                    if let Some(q) = query {
                        scan_query(an, fi, dir, q, method, path, at);
                    }
                    (method.clone(), path.clone())
                }
                HeadKind::Response { status, .. } => {
                    let req = conn.awaiting.pop_front();
                    let mut mp = (String::new(), String::new());
                    if let Some(r) = req.and_then(|i| an.out.http_request_mut(i)) {
                        r.status = Some(*status);
                        mp = (r.method.clone(), r.path.clone());
                    }
                    mp
                }
            };
            let d = &mut conn.dirs[dir];
            if let Some(b) = d.body.take() {
                finish_body(an, fi, dir, &conn.dirs[dir], b, at);
            }
            let d = &mut conn.dirs[dir];
            let head_start = d.base + h.stream_offset;
            d.spans.push_back(Span {
                start: head_start,
                head_end: head_start + h.head_len as u64,
                end: None,
                method,
                path,
                raw_head: std::mem::take(&mut h.raw),
                decoded_body,
                content_type: h.content_type.clone(),
                body: (!decoded_body).then(BodyBuf::default),
                judge: Judge::Layers,
            });
            // A span whose raw body was not explored yet (its bytes come with this delivery, after the parser
            // saw every head in it) is kept past the limit: pipelined requests keep their bodies.
            while d.spans.len() > SPANS_KEPT && d.spans.front().is_some_and(|s| s.body.is_none()) {
                d.spans.pop_front();
            }
            // Header values through the decoding graph (the raw scan reported what they show as such).
            let http_mp = d.spans.back().map(|s| (s.method.clone(), s.path.clone()));
            for (name, value) in &h.headers {
                if value.len() < 8 {
                    continue;
                }
                let field = format!("header:{name}");
                an.search_unit(Unit {
                    flow: fi,
                    dir,
                    protocol: "http",
                    field: Some(&field),
                    prefix: None,
                    decoded_from: None,
                    http: http_mp.clone(),
                    bytes: value.as_bytes(),
                    hint: if name.eq_ignore_ascii_case("cookie") {
                        Hint::Cookie
                    } else {
                        Hint::None
                    },
                    at,
                    report_root: false,
                    found: &[],
                    zone: None,
                    judge: Judge::Layers,
                });
            }
        }
        OwnedEvent::Body {
            decoded,
            decoded_offset,
            layers,
        } => {
            let d = &mut conn.dirs[dir];
            let body = d.body.get_or_insert_with(|| BodyScan {
                scanner: StreamScanner::new(&an.matcher),
                layers: layers.clone(),
                body: BodyBuf::default(),
                found: Vec::new(),
            });
            body.body.push(&decoded);
            if body.scanner.offset() < decoded_offset {
                body.scanner.gap(decoded_offset - body.scanner.offset());
            }
            let mut hits = Vec::new();
            body.scanner.feed(&an.matcher, &decoded, &mut hits);
            body.found.extend(hits.iter().map(|h| h.canary));
            let layers = body.layers.clone();
            report_body_hits(an, fi, dir, &conn.dirs[dir], hits, &layers, at);
        }
        OwnedEvent::End {
            body_wire_len,
            body_decoded_len,
            decode_error,
            decoded_capped,
        } => {
            let d = &mut conn.dirs[dir];
            let what = d
                .spans
                .back()
                .map(|s| format!("{} {}", s.method, s.path))
                .unwrap_or_default();
            if let Some(s) = d.spans.back_mut() {
                s.end = Some(s.head_end + body_wire_len);
                if decode_error.is_some() {
                    s.decoded_body = false;
                }
            }
            let where_ = format!("flow {fi} ({}), {what}", an.flows[fi].destination());
            if let Some(e) = &decode_error {
                let msg = format!("{where_}: the body could not be decoded ({e}); its raw bytes are still searched");
                an.out.warn("http-decode-error", msg, None);
            }
            if decoded_capped {
                let msg = format!(
                    "{where_}: decoding stopped at the cap of {} MiB of decoded body; the rest is searched raw only",
                    http::DEFAULT_DECODED_CAP >> 20
                );
                an.out.warn("http-decode-cap", msg, None);
            }
            if let Some(b) = d.body.take() {
                finish_body(an, fi, dir, &conn.dirs[dir], b, at);
            }
            if dir == conn.client_dir {
                if let Some(r) = conn
                    .current_request
                    .take()
                    .and_then(|i| an.out.http_request_mut(i))
                {
                    r.body_bytes = body_wire_len;
                    r.body_decoded_bytes = body_decoded_len;
                }
            }
        }
        OwnedEvent::Desync(reason) => {
            let f = &an.flows[fi];
            let msg = format!(
                "HTTP parsing lost sync in flow {fi} ({} → {}): {reason}; the stream is still searched raw",
                super::sockaddr(f.client),
                super::sockaddr(f.server)
            );
            an.out.warn("http-desync", msg, None);
        }
    }
}

impl BodySniff {
    /// Feeds the raw bytes of a delivery (`bytes` at stream offset `start`) that fall in the body, below `upto`.
    fn feed(&mut self, bytes: &[u8], start: u64, upto: u64) {
        if self.decoded {
            return;
        }
        let from = self.fed.max(self.start).max(start);
        let end = upto.min(start + bytes.len() as u64);
        if end <= from {
            return;
        }
        let piece = bytes.get((from - start) as usize..(end - start) as usize);
        self.sniffer.push(piece.unwrap_or_default());
        self.fed = end;
    }
}

/// Watches upload bodies for encrypted payloads (`layers::opaque`): a body that is PGP, CMS, age, JWE or
/// high-entropy bytes of no known format is framed but not read, an unread span of reason `encrypted_payload`
/// with the body's wire bytes, so a rule or claim over it is INCONCLUSIVE. Also makes the HTTP parser's cap hits
/// unread spans (`http_cap`). Only the device's direction (0) is watched: downloads are not leaks.
/// `delivery`: the bytes of the delivery the event came from, at their stream offset (empty at a gap or the end).
fn sniff_event(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    e: &OwnedEvent,
    delivery: (&[u8], u64),
    at: At,
) {
    if dir != 0 {
        return;
    }
    let d = &mut conn.dirs[dir];
    match e {
        OwnedEvent::Head(h) => {
            let start = d.base + h.stream_offset + h.head_len as u64;
            d.sniff = Some(BodySniff {
                sniffer: Sniffer::new(),
                decoded: h.chunked || !h.content_encoding.is_empty(),
                start,
                fed: start,
                multipart: h.content_type.as_deref().is_some_and(|c| {
                    c.trim_start()
                        .get(..10)
                        .is_some_and(|p| p.eq_ignore_ascii_case("multipart/"))
                }),
            });
        }
        OwnedEvent::Body { decoded, .. } => {
            if let Some(s) = d.sniff.as_mut().filter(|s| s.decoded) {
                s.sniffer.push(decoded);
            }
        }
        OwnedEvent::End {
            body_wire_len,
            decoded_capped,
            ..
        } => {
            let Some(mut s) = d.sniff.take() else {
                return;
            };
            s.feed(delivery.0, delivery.1, s.start + body_wire_len);
            let what = d
                .spans
                .back()
                .map(|s| format!("{} {}", s.method, s.path))
                .unwrap_or_default();
            let where_ = format!("flow {fi} ({}), {what}", an.flows[fi].destination());
            let by_parts = s.multipart && s.sniffer.len() <= BODY_WINDOW as u64;
            let whole = s
                .sniffer
                .finish()
                .filter(|o| !(by_parts && o.kind == OpaqueKind::HighEntropy));
            if let Some(span) = d.spans.back_mut() {
                span.judge = if *decoded_capped || whole.is_some() {
                    Judge::Done
                } else if by_parts {
                    Judge::Parts
                } else {
                    Judge::Layers
                };
            }
            if *decoded_capped {
                // The decoded body past the cap was never searched: the whole body is counted unread.
                an.out
                    .unread(fi, dir, UnreadReason::HttpCap, *body_wire_len, at.ts);
            } else if let Some(o) = whole {
                an.out.unread(
                    fi,
                    dir,
                    UnreadReason::EncryptedPayload,
                    *body_wire_len,
                    at.ts,
                );
                let msg = format!(
                    "{where_}: the body ({body_wire_len} bytes) is an encrypted payload ({}, {:.2} bits/byte); it was not read",
                    o.kind.as_str(),
                    o.entropy
                );
                an.out.warn("encrypted-payload", msg, None);
            }
        }
        OwnedEvent::Desync(reason) => {
            d.sniff = None;
            if reason.contains("exceeds") {
                // A head or chunk line past the parser's cap: skipped, searched raw only.
                an.out.unread(
                    fi,
                    dir,
                    UnreadReason::HttpCap,
                    http::MAX_HEAD_LEN as u64,
                    at.ts,
                );
            }
        }
    }
}

/// The report record of a request head (None for a response head).
pub(super) fn request_record(h: &http::Head, fi: usize, at: At) -> Option<HttpRequest> {
    let HeadKind::Request {
        method,
        target,
        path,
        query,
        ..
    } = &h.kind
    else {
        return None;
    };
    Some(HttpRequest {
        method: method.clone(),
        host: h.host.clone().unwrap_or_default(),
        path: path.clone(),
        query: query.clone(),
        target: target.clone(),
        content_type: h.content_type.clone(),
        content_encoding: h.content_encoding.clone(),
        headers: h
            .headers
            .iter()
            .take(64)
            .map(|(n, v)| [n.clone(), v.chars().take(512).collect()])
            .collect(),
        body_bytes: 0,
        body_decoded_bytes: 0,
        status: None,
        destination: String::new(),
        flow: fi,
        packet: at.packet,
        time_ns: at.ts,
    })
}

/// Flushes a decoded-body scanner at the end of its message.
fn finish_body(an: &mut Analyzer, fi: usize, dir: usize, d: &Dir, mut b: BodyScan, at: At) {
    let mut hits = Vec::new();
    b.scanner.finish(&an.matcher, &mut hits);
    let at = if at.packet == 0 {
        At {
            packet: d.recent.back().map(|r| r.1).unwrap_or(0),
            ts: at.ts,
        }
    } else {
        at
    };
    b.found.extend(hits.iter().map(|h| h.canary));
    report_body_hits(an, fi, dir, d, hits, &b.layers, at);
    let span = d.spans.back();
    let http = span.map(|s| (s.method.clone(), s.path.clone()));
    let ct = span.and_then(|s| s.content_type.clone());
    let judge = span.map_or(Judge::Layers, |s| s.judge);
    explore_body(
        an,
        fi,
        dir,
        b.body,
        (ct.as_deref(), judge),
        Some(&b.layers),
        http,
        &b.found,
        at,
    );
}

fn report_body_hits(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    d: &Dir,
    hits: Vec<StreamHit>,
    layers: &str,
    at: At,
) {
    let http = d.spans.back().map(|s| (s.method.clone(), s.path.clone()));
    for h in hits {
        an.out.finding(Raw {
            flow: fi,
            canary: h.canary,
            encoding: h.encoding.to_string(),
            dir,
            protocol: "http",
            field: Some("body".into()),
            decoded_from: Some(layers.to_string()),
            http: http.clone(),
            packet: at.packet,
            ts: at.ts,
            offset: h.start,
            excerpt: h.excerpt,
            zone: None,
        });
    }
}

/// Searches percent-decoded query parameters for canaries the raw query does not show as such.
fn scan_query(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    query: &str,
    method: &str,
    path: &str,
    at: At,
) {
    let mut hits = Vec::new();
    let mut raw_hits = Vec::new();
    for (name, value) in http::split_query(query) {
        hits.clear();
        an.matcher.find_all(&value, &mut hits);
        let field = format!("query:{name}");
        let found: Vec<usize> = hits.iter().map(|h| h.canary).collect();
        an.search_unit(Unit {
            flow: fi,
            dir,
            protocol: "http",
            field: Some(&field),
            prefix: None,
            decoded_from: None,
            http: Some((method.to_string(), path.to_string())),
            bytes: &value,
            hint: Hint::None,
            at,
            report_root: false,
            found: &found,
            zone: None,
            judge: Judge::Layers,
        });
        if hits.is_empty() {
            continue;
        }
        // Skip canaries that the raw scan finds in this parameter already.
        let raw_value = query
            .split('&')
            .find(|kv| {
                kv.split('=')
                    .next()
                    .map(|k| http::percent_decode(k.as_bytes(), true))
                    == Some(name.as_bytes().to_vec())
            })
            .and_then(|kv| kv.split_once('=').map(|(_, v)| v))
            .unwrap_or("");
        raw_hits.clear();
        an.matcher.find_all(raw_value.as_bytes(), &mut raw_hits);
        for h in &hits {
            if raw_hits.iter().any(|r| r.canary == h.canary) {
                continue;
            }
            let enc = h.encoding.to_string();
            an.out.finding(Raw {
                flow: fi,
                canary: h.canary,
                encoding: if enc == "raw" {
                    "url".into()
                } else {
                    format!("{enc}>url")
                },
                dir,
                protocol: "http",
                field: Some(format!("query:{name}")),
                decoded_from: None,
                http: Some((method.to_string(), path.to_string())),
                packet: at.packet,
                ts: at.ts,
                offset: h.start as u64,
                excerpt: excerpt(&value, h.start, h.end),
                zone: None,
            });
        }
    }
}

/// Reports a raw stream hit, attributed to its HTTP message when there is one. Returns the hit back when its
/// message head has not been parsed yet (it is retried after the next chunk, or reported plainly at the end).
fn report_stream_hit(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    d: &Dir,
    h: StreamHit,
    last: bool,
) -> Option<StreamHit> {
    if let Parser::Stream(s) = &d.parser {
        // The units name the field of what the raw scan sees; a raw hit stands only where no unit showed it.
        match streams::keep_raw_hit(s, &h, last) {
            None => return Some(h),
            Some(false) => return None,
            Some(true) => {}
        }
    }
    let (packet, ts) = d
        .recent
        .iter()
        .rev()
        .find(|(off, _, _)| *off <= h.start)
        .or(d.recent.front())
        .map(|r| (r.1, r.2))
        .unwrap_or((0, an.flows[fi].last_ns));
    let mut protocol = match an.flows[fi].app {
        App::Unknown => "tcp",
        a => a.as_str(),
    };
    let mut field = None;
    let mut http_mp = None;
    if let Parser::Http(_) = d.parser {
        match d.spans.iter().rev().find(|s| s.start <= h.start) {
            Some(s) if h.start < s.head_end => {
                field = Some(head_field(&s.raw_head, (h.start - s.start) as usize));
                http_mp = Some((s.method.clone(), s.path.clone()));
            }
            Some(s) if s.end.is_none_or(|e| h.start < e) => {
                if s.decoded_body {
                    return None; // the decoded-body scan sees these bytes without chunk framing and reports them
                }
                field = Some("body".into());
                http_mp = Some((s.method.clone(), s.path.clone()));
            }
            _ if !last && h.start + MAX_PENDING_BACK > d.offset => return Some(h),
            _ => protocol = "tcp",
        }
    }
    an.out.finding(Raw {
        flow: fi,
        canary: h.canary,
        encoding: h.encoding.to_string(),
        dir,
        protocol,
        field,
        decoded_from: None,
        http: http_mp,
        packet,
        ts,
        offset: h.start,
        excerpt: h.excerpt,
        zone: None,
    });
    None
}

/// Names the part of an HTTP head at `rel`: "path", "query:NAME", "header:NAME" or "request-line".
fn head_field(raw: &[u8], rel: usize) -> String {
    let rel = rel.min(raw.len());
    let line_start = raw[..rel]
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let line_end = raw[line_start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| line_start + p)
        .unwrap_or(raw.len());
    let line = &raw[line_start..line_end];
    let at = rel - line_start;
    if line_start == 0 {
        // Request line: METHOD SP target SP version
        let sp1 = line.iter().position(|&b| b == b' ');
        let sp2 = sp1.and_then(|a| {
            line[a + 1..]
                .iter()
                .position(|&b| b == b' ')
                .map(|p| a + 1 + p)
        });
        if let (Some(a), Some(b)) = (sp1, sp2.or(Some(line.len()))) {
            if at > a && at < b {
                let target = &line[a + 1..b];
                let pos = at - a - 1;
                if let Some(q) = target.iter().position(|&c| c == b'?') {
                    if pos > q {
                        // Which parameter?
                        let qs = &target[q + 1..];
                        let qpos = pos - q - 1;
                        let pstart = qs[..qpos.min(qs.len())]
                            .iter()
                            .rposition(|&c| c == b'&')
                            .map(|p| p + 1)
                            .unwrap_or(0);
                        let param = &qs[pstart..];
                        let name_end = param
                            .iter()
                            .position(|&c| c == b'=' || c == b'&')
                            .unwrap_or(param.len());
                        return format!(
                            "query:{}",
                            String::from_utf8_lossy(&http::percent_decode(
                                &param[..name_end],
                                true
                            ))
                        );
                    }
                }
                return "path".into();
            }
        }
        return "request-line".into();
    }
    match line.iter().position(|&b| b == b':') {
        Some(c) => format!("header:{}", String::from_utf8_lossy(&line[..c]).trim()),
        None => "header".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::head_field;

    #[test]
    fn head_fields_are_named() {
        let head = b"POST /v2/sync?imei=356938035643809&x=1 HTTP/1.1\r\nHost: api.example\r\nX-Device: abc\r\n\r\n";
        let find = |needle: &[u8]| {
            head.windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        assert_eq!(head_field(head, find(b"sync")), "path");
        assert_eq!(head_field(head, find(b"3569")), "query:imei");
        assert_eq!(head_field(head, find(b"api.")), "header:Host");
        assert_eq!(head_field(head, find(b"abc")), "header:X-Device");
        assert_eq!(head_field(head, 0), "request-line");
    }
}
