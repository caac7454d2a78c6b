//! The stream protocols inside TCP conversations: HTTP/2 in cleartext (prior knowledge, or h2c after an HTTP/1.1
//! upgrade), WebSocket after an HTTP/1.1 upgrade, and MQTT 3.1/3.1.1/5 (recognised by its CONNECT).
//!
//! [`detect`] names the protocol from a conversation's first bytes; [`upgrade_of`] from a request's `Upgrade`
//! header (the switch happens when the server answers 101). [`feed`] is the one entry of a direction's in-order
//! bytes: the direction's [`StreamParser`] turns them into units (header values, bodies, gRPC messages, WebSocket
//! messages, MQTT fields and payloads), and each unit goes through [`Analyzer::search_unit`] with the layers the
//! reader undid as the finding's chain prefix (`h2>hpack`, `grpc`, `websocket>deflate`, `mqtt`) and the unit's
//! place as its field (`header:x-device`, `grpc[0]`, `text`, `mqtt.password`).
//!
//! What a reader could not read becomes an unread span: a cap it hit (`stream_cap`), and bytes it could not
//! decode — a corrupt compressed message, a header block after the HPACK state was lost, and everything after the
//! reader lost the framing or the stream had a gap (`stream_undecoded`). The raw stream scan still runs on every
//! byte; its hits are reported only when no unit of the direction reported the canary (the units name the field).

use super::super::{Analyzer, At, Judge, Unit};
use super::{Parser, TcpConn};
use crate::canary::StreamHit;
use crate::layers::Hint;
use crate::proto::h2::PREFACE;
use crate::proto::mqtt::looks_like_connect;
use crate::proto::stream::{SkipReason, StreamEvent, StreamKind, StreamParser};
use crate::report::{HttpRequest, UnreadReason};

/// One direction of a conversation read by a stream-protocol reader.
pub(super) struct StreamState {
    parser: StreamParser,
    /// The reader lost the framing (or the stream had a gap): later bytes are unread, raw hits reported as such.
    pub(super) failed: bool,
    /// Canaries the units of this direction reported (raw hits of these are not reported again).
    pub(super) found: Vec<usize>,
    /// HTTP/2 streams' request records: (stream id, report index, method, path).
    requests: Vec<(u32, usize, String, String)>,
}

impl StreamState {
    pub(super) fn new(kind: StreamKind, client: bool) -> Box<StreamState> {
        Box::new(StreamState {
            parser: StreamParser::new(kind, client),
            failed: false,
            found: Vec::new(),
            requests: Vec::new(),
        })
    }
}

/// Streams kept per direction for naming a unit's HTTP/2 request.
const REQUESTS_KEPT: usize = 64;

/// The stream protocol a conversation starts with, from direction `dir`'s first bytes: the HTTP/2 preface (prior
/// knowledge), a server's HTTP/2 SETTINGS frame, an MQTT CONNECT.
pub(super) fn detect(dir: usize, first: &[u8]) -> Option<StreamKind> {
    if dir == 0 {
        let n = first.len().min(PREFACE.len());
        // A delivery may be short: a prefix of the preface is enough (a wrong guess fails the reader, which
        // leaves the rest unread, never silently passed).
        if n >= 4 && first.get(..n) == PREFACE.get(..n) {
            return Some(StreamKind::H2);
        }
        let connect = looks_like_connect(first);
        if connect == Some(true) || (connect.is_none() && first.first() == Some(&0x10)) {
            return Some(StreamKind::Mqtt);
        }
    }
    if dir == 1 {
        // A server speaking first with a SETTINGS frame on stream 0 (prior knowledge, the preface not seen yet).
        if let [0, hi, lo, 4, 0, 0, 0, 0, 0, ..] = first {
            let len = usize::from(*hi) << 8 | usize::from(*lo);
            if len % 6 == 0 && len <= 6 * 16 && first.len() >= 9 + len {
                return Some(StreamKind::H2);
            }
        }
    }
    None
}

/// The stream protocol an HTTP/1.1 request asks to upgrade to (`Upgrade: websocket` or `h2c`).
pub(super) fn upgrade_of(headers: &[(String, String)]) -> Option<StreamKind> {
    let value = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("upgrade"))
        .map(|(_, v)| v.to_ascii_lowercase())?;
    let mut kinds = value.split(',').map(str::trim);
    kinds.find_map(|k| match k {
        "websocket" => Some(StreamKind::WebSocket),
        "h2c" => Some(StreamKind::H2),
        _ => None,
    })
}

/// Switches both directions to the stream protocol `kind` after the server's 101 (the client waits for it before
/// sending in the new protocol, so its direction switches at the same moment).
pub(super) fn switch(an: &mut Analyzer, fi: usize, conn: &mut TcpConn, kind: StreamKind) {
    for (i, d) in conn.dirs.iter_mut().enumerate() {
        d.base = d.offset;
        d.parser = Parser::Stream(StreamState::new(kind, i == conn.client_dir));
    }
    an.flows[fi].app = crate::analysis::stream_app(kind);
}

/// Reads `bytes` (in order) of direction `dir` with its stream reader and searches every unit it hands out.
pub(super) fn feed(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    bytes: &[u8],
    at: At,
) {
    let Parser::Stream(s) = &mut conn.dirs[dir].parser else {
        return;
    };
    if s.failed {
        an.out.unread(
            fi,
            dir,
            UnreadReason::StreamUndecoded,
            bytes.len() as u64,
            at.ts,
        );
        return;
    }
    let mut events = Vec::new();
    s.parser.feed(bytes, &mut events);
    let kind = s.parser.kind();
    // The server's MQTT direction reads PUBLISH properties only when it knows the client's protocol level.
    let level = s.parser.mqtt_level();
    if level != 0 {
        if let Parser::Stream(other) = &mut conn.dirs[1 - dir].parser {
            other.parser.set_mqtt_level(level);
        }
    }
    handle(an, fi, dir, conn, kind, events, bytes.len(), at);
}

/// The direction ended (or had a gap): the reader hands out what it holds.
pub(super) fn finish(an: &mut Analyzer, fi: usize, dir: usize, conn: &mut TcpConn, at: At) {
    let Parser::Stream(s) = &mut conn.dirs[dir].parser else {
        return;
    };
    if s.failed {
        return;
    }
    let mut events = Vec::new();
    s.parser.finish(&mut events);
    let kind = s.parser.kind();
    handle(an, fi, dir, conn, kind, events, 0, at);
}

/// A gap in a stream-protocol direction: what the reader held is handed out, and the framing is lost.
pub(super) fn gap(an: &mut Analyzer, fi: usize, dir: usize, conn: &mut TcpConn, at: At) {
    finish(an, fi, dir, conn, at);
    if let Parser::Stream(s) = &mut conn.dirs[dir].parser {
        if !s.failed {
            s.failed = true;
            let msg = format!(
                "flow {fi} ({}): a gap in the {} stream; the rest of the direction is not decoded (searched raw)",
                an.flows[fi].destination(),
                s.parser.kind().name()
            );
            an.out.warn("stream-desync", msg, None);
        }
    }
}

/// Whether a raw stream hit of a stream-protocol direction is reported: when the reader failed, or (at the end)
/// when no unit reported its canary. `None`: wait (a later unit may report it).
pub(super) fn keep_raw_hit(s: &StreamState, h: &StreamHit, last: bool) -> Option<bool> {
    if s.found.contains(&h.canary) {
        return Some(false);
    }
    if last || s.failed {
        return Some(true);
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn handle(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    kind: StreamKind,
    events: Vec<StreamEvent>,
    fed: usize,
    at: At,
) {
    let protocol = kind.name();
    let mut found = Vec::new();
    for e in events {
        let Parser::Stream(s) = &mut conn.dirs[dir].parser else {
            return;
        };
        match e {
            StreamEvent::Unit(u) => {
                let http = s
                    .requests
                    .iter()
                    .rev()
                    .find(|r| u.stream != 0 && r.0 == u.stream)
                    .map(|r| (r.2.clone(), r.3.clone()));
                let reported = an.search_unit(Unit {
                    flow: fi,
                    dir,
                    protocol,
                    field: Some(&u.field),
                    prefix: Some(&u.chain),
                    decoded_from: None,
                    http,
                    bytes: &u.bytes,
                    hint: Hint::None,
                    at,
                    report_root: true,
                    found: &[],
                    zone: None,
                    judge: Judge::Whole,
                });
                found.extend(reported);
            }
            StreamEvent::Request(r) => {
                let f = &mut an.flows[fi];
                if f.host.is_none() && !r.authority.is_empty() {
                    f.host = Some(r.authority.clone());
                }
                let idx = an.out.http_request(HttpRequest {
                    method: r.method.clone(),
                    host: r.authority.clone(),
                    path: r.path.clone(),
                    query: r.query.clone(),
                    target: r.target.clone(),
                    content_type: r.content_type.clone(),
                    content_encoding: r.content_encoding.clone(),
                    headers: r
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
                });
                s.requests.push((r.stream, idx, r.method, r.path));
                if s.requests.len() > REQUESTS_KEPT {
                    s.requests.remove(0);
                }
            }
            StreamEvent::Response { stream, status } => {
                // The request is recorded by the other direction's reader.
                if let Parser::Stream(o) = &conn.dirs[1 - dir].parser {
                    if let Some(r) = o.requests.iter().rev().find(|r| r.0 == stream) {
                        if let Some(req) = an.out.http_request_mut(r.1) {
                            req.status = Some(status);
                        }
                    }
                }
            }
            StreamEvent::Skipped {
                reason,
                what,
                bytes,
            } => {
                let why = match reason {
                    SkipReason::Cap => UnreadReason::StreamCap,
                    SkipReason::Failure => UnreadReason::StreamUndecoded,
                };
                an.out.unread(fi, dir, why, bytes, at.ts);
                let msg = format!(
                    "flow {fi} ({}): {bytes} bytes not decoded: {what}",
                    an.flows[fi].destination()
                );
                an.out.warn("stream-unread", msg, None);
            }
            StreamEvent::Failed { reason, consumed } => {
                s.failed = true;
                let rest = fed.saturating_sub(consumed) as u64;
                an.out
                    .unread(fi, dir, UnreadReason::StreamUndecoded, rest, at.ts);
                let msg = format!(
                    "flow {fi} ({}): {reason}; the rest of the direction is not decoded (searched raw)",
                    an.flows[fi].destination()
                );
                an.out.warn("stream-desync", msg, None);
            }
        }
    }
    if let Parser::Stream(s) = &mut conn.dirs[dir].parser {
        for c in found {
            if !s.found.contains(&c) {
                s.found.push(c);
            }
        }
    }
}
