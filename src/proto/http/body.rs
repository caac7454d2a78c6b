//! Body framing (RFC 9112 §6): deciding how a message's body is delimited (none, tunnel,
//! Content-Length, chunked, until close), walking chunk-size lines, chunk data and trailers, and
//! skipping capture gaps where the framing allows. Body bytes are handed to the decoder
//! ([`super::coding`]) as they arrive.

use std::collections::VecDeque;

use memchr::memchr;

use super::coding::{Decode, DecodeError};
use super::head::{scan_eoh, Cl, Eoh, FramingInfo, Head, HeadKind};
use super::{HttpEvent, SyncError};

pub(super) const MAX_CHUNK_LINE: usize = 4 * 1024;
pub(super) const MAX_TRAILERS: usize = 64 * 1024;

pub(super) enum Plan {
    NoBody,
    Tunnel,
    Fixed(u64),
    Chunked,
    UntilClose,
    Invalid(SyncError),
}

/// How the body of the message with head `head` is delimited. For a response, `methods`
/// holds the methods of the requests not answered yet (oldest first); a final response
/// (or 101) consumes one.
pub(super) fn plan_body(head: &Head, info: &FramingInfo, methods: &mut VecDeque<String>) -> Plan {
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
                    methods.pop_front();
                    return Plan::Tunnel;
                }
                return Plan::NoBody;
            }
            let method = methods.pop_front();
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

pub(super) struct Body {
    pub(super) framing: Framing,
    pub(super) wire_len: u64,
    /// Stream offset just past the body bytes seen so far.
    pub(super) end_offset: u64,
    pub(super) gapped: bool,
    pub(super) decode: Decode,
    /// Error found while setting up decoding (unsupported coding).
    pub(super) error: Option<DecodeError>,
    pub(super) cap: u64,
}

pub(super) enum Framing {
    Fixed { remaining: u64 },
    Chunked(Chunk),
    UntilClose,
}

pub(super) enum Chunk {
    Size { line: Vec<u8> },
    Data { remaining: u64 },
    DataEnd { got_cr: bool },
    Trailers { eoh: Eoh, len: usize },
}

pub(super) enum Outcome {
    More,
    Done,
    Bad(SyncError, u64),
}

pub(super) enum GapOutcome {
    /// The gap lies inside the body; still in sync.
    Inside,
    /// The gap ends exactly at the end of the body; still in sync.
    EndsMessage,
    /// The gap runs this many bytes to the end of the body, then past it.
    PastEnd(u64),
    /// The framing at the gap (after skipping this many body bytes) is unknown.
    Unknown(u64),
}

#[inline]
pub(super) fn clamp_len(remaining: u64, avail: usize) -> usize {
    usize::try_from(remaining).map_or(avail, |r| r.min(avail))
}

impl Body {
    pub(super) fn advance(
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
    pub(super) fn gap(&mut self, len: u64, out: &mut dyn FnMut(HttpEvent<'_>)) -> GapOutcome {
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
    pub(super) fn end(mut self: Box<Self>, complete: bool, out: &mut dyn FnMut(HttpEvent<'_>)) {
        let (decoded_len, capped, err) = self.decode.finish(self.wire_len, self.cap, out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::testutil::*;
    use crate::proto::http::{HttpParser, Role};

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
}
