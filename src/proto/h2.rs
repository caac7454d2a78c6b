//! HTTP/2 in cleartext, one direction at a time: the connection preface, frames (HEADERS, CONTINUATION,
//! PUSH_PROMISE, DATA with padding, GOAWAY, unknown types), header blocks through HPACK (Huffman coding and the
//! dynamic table, by the `fluke-hpack` crate), per-stream request heads, bodies with their `content-encoding`
//! undone, and gRPC messages (5-byte length prefix, compressed flag, `grpc-encoding`).
//!
//! Every payload byte ends in a [`Unit`] (header values, bodies, gRPC messages, GOAWAY debug data, padding that is
//! not zero, unknown frames) or in a [`StreamEvent::Skipped`] naming the cap or failure that hid it. Caps:
//! [`MAX_FRAME_PAYLOAD`], [`MAX_HEADER_BLOCK`], [`MAX_HPACK_TABLE`], [`MAX_DECODED_HEADERS`], [`MAX_BODY`],
//! [`MAX_DECODED_BODY`], [`MAX_STREAMS`]. Panic-free on hostile input: the one panic left in the HPACK crate (a
//! size update cut short) is caught and turned into a failure of the header block.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::http::decode_whole;
use super::stream::{take_into, Request, SkipReason, StreamEvent, Unit};

/// The client's connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frames with a larger payload are skipped (the protocol allows 16 MiB after SETTINGS; the default is 16 KiB).
pub const MAX_FRAME_PAYLOAD: usize = 1 << 20;
/// A header block (HEADERS/PUSH_PROMISE + CONTINUATIONs) larger than this is not decoded.
pub const MAX_HEADER_BLOCK: usize = 256 << 10;
/// The largest HPACK dynamic table an encoder may ask for (the protocol's default is 4 KiB).
pub const MAX_HPACK_TABLE: usize = 64 << 10;
/// Decoded header bytes kept per header block (indexed fields can expand a small block a thousandfold).
pub const MAX_DECODED_HEADERS: usize = 1 << 20;
/// Body bytes (DATA payloads) collected per stream.
pub const MAX_BODY: usize = 8 << 20;
/// Decoded bytes per body or gRPC message.
pub const MAX_DECODED_BODY: u64 = 16 << 20;
/// Streams with state kept at once; the oldest is handed out when a new one would exceed it.
pub const MAX_STREAMS: usize = 256;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// Reads one direction of an HTTP/2 connection.
pub struct H2Parser {
    /// Bytes of the preface still expected (client direction only).
    preface: usize,
    /// The current frame: 9 header bytes, then its payload.
    buf: Vec<u8>,
    /// Payload bytes of an oversized frame still to pass over.
    skip: u64,
    /// No frame seen yet (the server's first frame must be SETTINGS).
    first: bool,
    failed: bool,
    hpack: fluke_hpack::Decoder<'static>,
    /// The dynamic table can no longer be trusted (a block was skipped or failed): later blocks are not decoded.
    hpack_lost: bool,
    block: Option<Block>,
    streams: BTreeMap<u32, Stream>,
}

struct Block {
    stream: u32,
    push: bool,
    end_stream: bool,
    bytes: Vec<u8>,
    /// Over [`MAX_HEADER_BLOCK`]: only counted.
    dropped: u64,
}

#[derive(Default)]
struct Stream {
    grpc: bool,
    codings: Vec<String>,
    grpc_encoding: Vec<String>,
    body: Vec<u8>,
    dropped: u64,
}

impl H2Parser {
    /// A reader of the client's direction (which starts with the preface) or of the server's.
    pub fn new(client: bool) -> H2Parser {
        let mut hpack = fluke_hpack::Decoder::new();
        hpack.set_max_allowed_table_size(MAX_HPACK_TABLE);
        H2Parser {
            preface: if client { PREFACE.len() } else { 0 },
            buf: Vec::new(),
            skip: 0,
            first: !client,
            failed: false,
            hpack,
            hpack_lost: false,
            block: None,
            streams: BTreeMap::new(),
        }
    }

    /// Reads the next bytes of the direction.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        let total = bytes.len();
        let mut b = bytes;
        while !b.is_empty() && !self.failed {
            if self.preface > 0 {
                let off = PREFACE.len() - self.preface;
                let n = self.preface.min(b.len());
                if b.get(..n) != PREFACE.get(off..off + n) {
                    self.fail(
                        "the stream does not start with the HTTP/2 preface",
                        total - b.len(),
                        out,
                    );
                    return;
                }
                self.preface -= n;
                b = &b[n..];
                continue;
            }
            if self.skip > 0 {
                let n = (self.skip.min(b.len() as u64)) as usize;
                self.skip -= n as u64;
                b = &b[n..];
                continue;
            }
            if !take_into(&mut self.buf, 9, &mut b) {
                break;
            }
            let len = frame_len(&self.buf);
            let kind = self.buf[3];
            if self.first && kind != SETTINGS {
                self.fail(
                    "the first frame is not SETTINGS",
                    (total - b.len()).saturating_sub(9),
                    out,
                );
                return;
            }
            self.first = false;
            if len > MAX_FRAME_PAYLOAD {
                out.push(StreamEvent::Skipped {
                    reason: SkipReason::Cap,
                    what: format!("h2 frame size cap ({} KiB)", MAX_FRAME_PAYLOAD >> 10),
                    bytes: len as u64,
                });
                if matches!(kind, HEADERS | CONTINUATION | PUSH_PROMISE) {
                    self.lose_hpack();
                }
                self.buf.clear();
                self.skip = len as u64;
                continue;
            }
            if !take_into(&mut self.buf, 9 + len, &mut b) {
                break;
            }
            let frame = std::mem::take(&mut self.buf);
            self.frame(&frame, out);
        }
    }

    /// The direction ended: a partial frame and every stream's body so far are handed out.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        let held = std::mem::take(&mut self.buf);
        if held.len() > 9 {
            out.push(unit("h2", "truncated frame", 0, held[9..].to_vec()));
        }
        if let Some(b) = self.block.take() {
            self.end_block(b, out);
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.end_stream(id, out);
        }
    }

    fn fail(&mut self, reason: &str, consumed: usize, out: &mut Vec<StreamEvent>) {
        self.failed = true;
        out.push(StreamEvent::Failed {
            reason: format!("HTTP/2: {reason}"),
            consumed,
        });
    }

    fn lose_hpack(&mut self) {
        self.hpack_lost = true;
    }

    fn frame(&mut self, frame: &[u8], out: &mut Vec<StreamEvent>) {
        let (Some(head), Some(payload)) = (frame.get(..9), frame.get(9..)) else {
            return;
        };
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if self.block.is_some() && kind != CONTINUATION {
            // A header block must be continued right away; decode what there is and read on.
            if let Some(b) = self.block.take() {
                self.end_block(b, out);
            }
        }
        match kind {
            DATA => {
                let Some(data) = self.unpad(flags, payload, 0, out) else {
                    return;
                };
                self.data(stream, data, out);
                if flags & END_STREAM != 0 {
                    self.end_stream(stream, out);
                }
            }
            HEADERS => {
                let skip = if flags & PRIORITY_FLAG != 0 { 5 } else { 0 };
                let Some(fragment) = self.unpad(flags, payload, skip, out) else {
                    return;
                };
                self.start_block(stream, false, flags, fragment, out);
            }
            PUSH_PROMISE => {
                let Some(rest) = self.unpad(flags, payload, 4, out) else {
                    return;
                };
                self.start_block(stream, true, flags, rest, out);
            }
            CONTINUATION => match &mut self.block {
                Some(b) if b.stream == stream => {
                    add_fragment(b, payload, out);
                    if flags & END_HEADERS != 0 {
                        if let Some(b) = self.block.take() {
                            self.end_block(b, out);
                        }
                    }
                }
                _ => out.push(unit("h2", "continuation", stream, payload.to_vec())),
            },
            GOAWAY => {
                if let Some(debug) = payload.get(8..).filter(|d| !d.is_empty()) {
                    out.push(unit("h2", "goaway", 0, debug.to_vec()));
                }
            }
            PRIORITY | RST_STREAM | SETTINGS | PING | WINDOW_UPDATE => {}
            other => {
                if !payload.is_empty() {
                    out.push(unit(
                        "h2",
                        &format!("frame[0x{other:02x}]"),
                        stream,
                        payload.to_vec(),
                    ));
                }
            }
        }
    }

    /// The payload without padding (and without `skip` bytes after the pad length); padding that is not zero is
    /// handed out as a unit.
    fn unpad<'a>(
        &mut self,
        flags: u8,
        payload: &'a [u8],
        skip: usize,
        out: &mut Vec<StreamEvent>,
    ) -> Option<&'a [u8]> {
        let (pad, body) = if flags & PADDED != 0 {
            let (&p, rest) = payload.split_first()?;
            (usize::from(p), rest)
        } else {
            (0, payload)
        };
        let Some(end) = body.len().checked_sub(pad).filter(|&e| e >= skip) else {
            out.push(unit("h2", "malformed frame", 0, payload.to_vec()));
            return None;
        };
        let padding = &body[end..];
        if padding.iter().any(|&b| b != 0) {
            out.push(unit("h2", "padding", 0, padding.to_vec()));
        }
        body.get(skip..end)
    }

    fn start_block(
        &mut self,
        stream: u32,
        push: bool,
        flags: u8,
        fragment: &[u8],
        out: &mut Vec<StreamEvent>,
    ) {
        let mut b = Block {
            stream,
            push,
            end_stream: flags & END_STREAM != 0,
            bytes: Vec::new(),
            dropped: 0,
        };
        add_fragment(&mut b, fragment, out);
        if flags & END_HEADERS != 0 {
            self.end_block(b, out);
        } else {
            self.block = Some(b);
        }
    }

    fn end_block(&mut self, b: Block, out: &mut Vec<StreamEvent>) {
        if b.dropped > 0 {
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Cap,
                what: format!("h2 header block cap ({} KiB)", MAX_HEADER_BLOCK >> 10),
                bytes: b.dropped,
            });
            self.lose_hpack();
        }
        if self.hpack_lost {
            // The block is still searched as it was sent (literal values are often not Huffman-coded).
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Failure,
                what: "h2 header block after the HPACK state was lost".into(),
                bytes: b.bytes.len() as u64,
            });
            out.push(unit("h2", "header block", b.stream, b.bytes));
        } else {
            self.decode_block(b, out);
        }
    }

    fn decode_block(&mut self, b: Block, out: &mut Vec<StreamEvent>) {
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        let mut kept = 0usize;
        let mut over = 0u64;
        let hpack = &mut self.hpack;
        let result = catch_unwind(AssertUnwindSafe(|| {
            hpack.decode_with_cb(&b.bytes, |n: Cow<[u8]>, v: Cow<[u8]>| {
                let size = n.len() + v.len();
                if kept + size > MAX_DECODED_HEADERS {
                    over += size as u64;
                    return;
                }
                kept += size;
                headers.push((
                    String::from_utf8_lossy(&n).to_ascii_lowercase(),
                    v.into_owned(),
                ));
            })
        }));
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:?}")),
            Err(_) => Some("the HPACK decoder panicked".into()),
        };
        if over > 0 {
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Cap,
                what: format!("h2 decoded header cap ({} KiB)", MAX_DECODED_HEADERS >> 10),
                bytes: over,
            });
        }
        if let Some(e) = error {
            self.lose_hpack();
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Failure,
                what: format!("h2 header block HPACK could not decode ({e})"),
                bytes: b.bytes.len() as u64,
            });
            out.push(unit("h2", "header block", b.stream, b.bytes.clone()));
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| {
                    v.split(',')
                        .map(|c| c.trim().to_ascii_lowercase())
                        .filter(|c| !c.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        if !b.push {
            if let Some(method) = get(":method") {
                let target = get(":path").unwrap_or_default();
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                    None => (target.clone(), None),
                };
                out.push(StreamEvent::Request(Box::new(Request {
                    stream: b.stream,
                    method,
                    authority: get(":authority")
                        .or_else(|| get("host"))
                        .unwrap_or_default(),
                    path,
                    query,
                    target,
                    content_type: get("content-type"),
                    content_encoding: list("content-encoding"),
                    headers: headers
                        .iter()
                        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                        .collect(),
                })));
            }
            if let Some(status) = get(":status").and_then(|s| s.trim().parse().ok()) {
                out.push(StreamEvent::Response {
                    stream: b.stream,
                    status,
                });
            }
            let grpc = get("content-type").is_some_and(|c| c.starts_with("application/grpc"));
            let codings = list("content-encoding");
            let grpc_encoding = list("grpc-encoding");
            if grpc || !codings.is_empty() || !grpc_encoding.is_empty() {
                let s = self.stream(b.stream, out);
                s.grpc |= grpc;
                if !codings.is_empty() {
                    s.codings = codings;
                }
                if !grpc_encoding.is_empty() {
                    s.grpc_encoding = grpc_encoding;
                }
            }
        }
        for (name, value) in headers {
            out.push(unit("h2>hpack", &format!("header:{name}"), b.stream, value));
        }
        if b.end_stream && !b.push {
            self.end_stream(b.stream, out);
        }
    }

    fn stream(&mut self, id: u32, out: &mut Vec<StreamEvent>) -> &mut Stream {
        if !self.streams.contains_key(&id) && self.streams.len() >= MAX_STREAMS {
            if let Some(oldest) = self.streams.keys().next().copied() {
                self.end_stream(oldest, out);
            }
        }
        self.streams.entry(id).or_default()
    }

    fn data(&mut self, id: u32, data: &[u8], out: &mut Vec<StreamEvent>) {
        let s = self.stream(id, out);
        let room = MAX_BODY.saturating_sub(s.body.len());
        let keep = data.len().min(room);
        s.body.extend_from_slice(&data[..keep]);
        s.dropped += (data.len() - keep) as u64;
    }

    fn end_stream(&mut self, id: u32, out: &mut Vec<StreamEvent>) {
        let Some(s) = self.streams.remove(&id) else {
            return;
        };
        if s.dropped > 0 {
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Cap,
                what: format!("h2 body cap ({} MiB)", MAX_BODY >> 20),
                bytes: s.dropped,
            });
        }
        if s.body.is_empty() {
            return;
        }
        if s.grpc {
            grpc_messages(id, &s.body, &s.grpc_encoding, out);
        } else {
            decoded_unit(id, "h2", "body", &s.codings, &s.body, out);
        }
    }
}

fn frame_len(head: &[u8]) -> usize {
    match head {
        [a, b, c, ..] => (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c),
        _ => 0,
    }
}

fn add_fragment(b: &mut Block, fragment: &[u8], _out: &mut [StreamEvent]) {
    let room = MAX_HEADER_BLOCK.saturating_sub(b.bytes.len());
    let keep = fragment.len().min(room);
    b.bytes.extend_from_slice(&fragment[..keep]);
    b.dropped += (fragment.len() - keep) as u64;
}

fn unit(chain: &str, field: &str, stream: u32, bytes: Vec<u8>) -> StreamEvent {
    StreamEvent::Unit(Unit {
        field: field.to_owned(),
        chain: chain.to_owned(),
        stream,
        bytes,
    })
}

/// Hands out `body` with `codings` undone (a gzip magic is sniffed when none is declared); what cannot be
/// decoded is handed out as sent and reported as skipped.
fn decoded_unit(
    stream: u32,
    chain: &str,
    field: &str,
    codings: &[String],
    body: &[u8],
    out: &mut Vec<StreamEvent>,
) {
    let d = decode_whole(codings, body, MAX_DECODED_BODY);
    if d.capped {
        out.push(StreamEvent::Skipped {
            reason: SkipReason::Cap,
            what: format!("{chain} decoded body cap ({} MiB)", MAX_DECODED_BODY >> 20),
            bytes: body.len() as u64,
        });
    }
    if let Some(e) = &d.error {
        out.push(StreamEvent::Skipped {
            reason: SkipReason::Failure,
            what: format!("{chain} {field} could not be decoded ({e})"),
            bytes: body.len() as u64,
        });
        out.push(unit(chain, field, stream, body.to_vec()));
    }
    let chain = if d.layers.is_empty() {
        chain.to_owned()
    } else {
        format!("{chain}>{}", d.layers)
    };
    if !d.bytes.is_empty() && (d.error.is_none() || d.bytes != body) {
        out.push(unit(&chain, field, stream, d.bytes));
    }
}

/// Splits a gRPC body into its length-prefixed messages (RFC-less: the gRPC over HTTP/2 protocol), each handed out
/// as a unit `grpc[n]`, decompressed per `grpc-encoding` when its flag says so.
fn grpc_messages(stream: u32, body: &[u8], encoding: &[String], out: &mut Vec<StreamEvent>) {
    let mut rest = body;
    let mut n = 0usize;
    while !rest.is_empty() {
        let field = format!("grpc[{n}]");
        let (flag, len, after) = match rest {
            [flag, a, b, c, d, after @ ..] => {
                (*flag, u32::from_be_bytes([*a, *b, *c, *d]) as usize, after)
            }
            _ => {
                out.push(unit(
                    "grpc",
                    &format!("{field} truncated"),
                    stream,
                    rest.to_vec(),
                ));
                return;
            }
        };
        let take = len.min(after.len());
        let msg = &after[..take];
        if flag & 1 == 1 {
            let codings: Vec<String> = encoding.to_vec();
            if codings.is_empty() {
                out.push(StreamEvent::Skipped {
                    reason: SkipReason::Failure,
                    what: format!("{field} is compressed without a grpc-encoding"),
                    bytes: msg.len() as u64,
                });
            }
            decoded_unit(stream, "grpc", &field, &codings, msg, out);
        } else {
            out.push(unit("grpc", &field, stream, msg.to_vec()));
        }
        rest = &after[take..];
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn units(events: &[StreamEvent]) -> Vec<(String, String, Vec<u8>)> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Unit(u) => Some((u.chain.clone(), u.field.clone(), u.bytes.clone())),
                _ => None,
            })
            .collect()
    }

    fn request_block(enc: &mut fluke_hpack::Encoder<'_>, path: &str) -> Vec<u8> {
        enc.encode(vec![
            (&b":method"[..], &b"POST"[..]),
            (&b":scheme"[..], &b"http"[..]),
            (&b":authority"[..], &b"api.example"[..]),
            (&b":path"[..], path.as_bytes()),
            (&b"x-device"[..], &b"356938035643809"[..]),
        ])
    }

    #[test]
    fn a_request_with_continuation_padding_and_a_body_is_read_byte_by_byte() {
        let mut enc = fluke_hpack::Encoder::new();
        let block = request_block(&mut enc, "/v1?imei=1");
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(SETTINGS, 0, 0, &[]));
        let (a, b) = block.split_at(block.len() / 2);
        let mut padded = vec![3u8];
        padded.extend_from_slice(a);
        padded.extend_from_slice(&[0, 0, 0]);
        wire.extend(frame(HEADERS, PADDED, 1, &padded));
        wire.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        wire.extend(frame(DATA, 0, 1, b"hello "));
        wire.extend(frame(DATA, END_STREAM, 1, b"world"));
        let mut p = H2Parser::new(true);
        let mut ev = Vec::new();
        for byte in wire.chunks(1) {
            p.feed(byte, &mut ev);
        }
        let u = units(&ev);
        assert!(
            u.contains(&(
                "h2>hpack".into(),
                "header:x-device".into(),
                b"356938035643809".to_vec()
            )),
            "{u:?}"
        );
        assert!(
            u.contains(&("h2".into(), "body".into(), b"hello world".to_vec())),
            "{u:?}"
        );
        let req = ev.iter().find_map(|e| match e {
            StreamEvent::Request(r) => Some(r.clone()),
            _ => None,
        });
        let req = req.expect("a request");
        assert_eq!(
            (req.method.as_str(), req.path.as_str(), req.query.as_deref()),
            ("POST", "/v1", Some("imei=1"))
        );
        assert!(!ev
            .iter()
            .any(|e| matches!(e, StreamEvent::Failed { .. } | StreamEvent::Skipped { .. })));
    }

    #[test]
    fn not_a_preface_fails_and_hostile_blocks_do_not_panic() {
        let mut p = H2Parser::new(true);
        let mut ev = Vec::new();
        p.feed(b"GET / HTTP/1.1\r\n", &mut ev);
        assert!(matches!(
            ev.last(),
            Some(StreamEvent::Failed { consumed: 0, .. })
        ));
        // A size update cut short (the crate's panic), then an index out of range.
        for block in [
            &[0x3fu8][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x3f, 0xe1, 0xff, 0xff, 0x7f],
        ] {
            let mut p = H2Parser::new(false);
            let mut ev = Vec::new();
            let mut wire = frame(SETTINGS, 0, 0, &[]);
            wire.extend(frame(HEADERS, END_HEADERS, 1, block));
            p.feed(&wire, &mut ev);
            assert!(
                ev.iter().any(|e| matches!(
                    e,
                    StreamEvent::Skipped {
                        reason: SkipReason::Failure,
                        ..
                    }
                )),
                "{ev:?}"
            );
        }
    }

    #[test]
    fn oversized_frames_are_skipped_and_counted() {
        let mut p = H2Parser::new(false);
        let mut ev = Vec::new();
        let mut wire = frame(SETTINGS, 0, 0, &[]);
        let big = vec![b'a'; MAX_FRAME_PAYLOAD + 1];
        wire.extend(frame(DATA, END_STREAM, 1, &big));
        wire.extend(frame(GOAWAY, 0, 0, b"\0\0\0\0\0\0\0\0bye"));
        p.feed(&wire, &mut ev);
        assert!(ev.contains(&StreamEvent::Skipped {
            reason: SkipReason::Cap,
            what: "h2 frame size cap (1024 KiB)".into(),
            bytes: big.len() as u64
        }));
        assert_eq!(
            units(&ev),
            vec![("h2".into(), "goaway".into(), b"bye".to_vec())]
        );
    }
}
