//! Request and response heads: recognising the first bytes of a request line / status line,
//! finding the empty line that ends a header section, and parsing a head with httparse (plus the
//! lenient request-line rules and obs-fold unfolding of RFC 9112) into a [`Head`] and what its
//! headers say about framing.

use memchr::{memchr, memchr2, memmem};
use serde::Serialize;

use super::url::{split_target, target_authority};
use super::{Role, SyncError};

/// Largest head (request/status line plus header section) accepted, in bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

const MAX_METHOD_LEN: usize = 31;

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

/// End-of-head scanner state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Eoh {
    InLine,
    LineStart,
    LineStartCr,
}

pub(super) enum Verdict {
    Undecided,
    Match,
    Reject,
}

/// Decides whether the first bytes of a line can start a request line / status line.
// Called per byte while probing, from the parser in `mod.rs`.
#[inline]
pub(super) fn probe_verdict(role: Role, buf: &[u8], strict: bool) -> Verdict {
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
#[inline]
pub(super) fn scan_eoh(eoh: &mut Eoh, data: &[u8]) -> (usize, bool) {
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
pub(super) struct FramingInfo {
    pub(super) te_present: bool,
    /// Transfer codings other than the final `chunked`, in the order applied.
    pub(super) te_codings: Vec<String>,
    pub(super) content_length: Cl,
}

pub(super) enum Cl {
    Absent,
    Valid(u64),
    Invalid,
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
pub(super) struct ParseMode {
    /// The head starts at a message boundary (not found while resynchronising).
    pub(super) in_sync: bool,
    /// The stream ended before the empty line.
    pub(super) at_eof: bool,
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

pub(super) fn parse_head(
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

/// Cheap sniff for the start of a response: `HTTP/1.x NNN`.
pub fn looks_like_http_response(prefix: &[u8]) -> bool {
    matches!(probe_verdict(Role::Server, prefix, true), Verdict::Match)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::testutil::*;
    use crate::proto::http::{parse_datagram, HttpParser};

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
}
