//! DNS message parsing (UDP payloads and DNS-over-TCP framing).
//!
//! This module owns turning one DNS message into a [`DnsMessage`]: header
//! fields, the question section and the answer section (A, AAAA, CNAME, PTR
//! and TXT data; other record types are kept as [`DnsData::Other`]).
//! [`DnsTcpFramer`] splits a DNS-over-TCP byte stream (RFC 1035 §4.2.2,
//! 2-byte length prefix) into messages.
//!
//! Parsing is done by `simple-dns`. That crate is strict: it rejects, for
//! example, unknown query types (`TYPE65534`), unknown classes, forward
//! compression pointers, names of 254+ characters and a set reserved header
//! bit. When it rejects a message, a small fallback parser in this module
//! still extracts the header, the questions and the answers, so that a query
//! name is reported wherever Wireshark reports one.
//!
//! # Name rendering (matches `tshark -T fields -e dns.qry.name`)
//!
//! Names are rendered the way Wireshark 4.x renders `dns.qry.name`,
//! `dns.resp.name`, `dns.cname` and `dns.ptr.domain_name`
//! (`epan/dissectors/packet-dns.c`: `expand_dns_name` + `get_dns_name`, then
//! `format_text` from `wsutil/str_util.c`). This was checked against
//! `tshark` 4.0.17 on hand-made captures:
//!
//! * labels are joined with `.`, with no trailing dot; case is preserved
//!   (DNS 0x20 randomisation stays visible);
//! * a `.` or `\` **inside** a label is *not* escaped (`a.b` as one label
//!   renders exactly like two labels `a` and `b`);
//! * printable ASCII (0x20..=0x7e) is kept; other ASCII bytes become C
//!   escapes: `\a \b \f \n \r \t \v`, otherwise three octal digits (`\000`,
//!   `\001`, `\177`);
//! * bytes >= 0x80 are decoded as (permissive) UTF-8: printable characters
//!   are kept as themselves, invalid sequences become U+FFFD, and
//!   non-printable characters (controls, format characters, non-characters)
//!   become `\uXXXX` / `\UXXXXXXXX` (upper-case hex);
//! * the root name is [`ROOT_NAME`] (`<Root>`); a name of 254 or more
//!   characters is [`NAME_TOO_LONG`]; more than 255 compression pointers (or
//!   a pointer to 2 bytes past its own end, Wireshark's test) is
//!   [`NAME_POINTER_LOOP`]; an RFC 2673 extended label other than a
//!   bit-string is [`NAME_UNKNOWN_EXTENDED_LABEL`]. These pseudo-names are
//!   Wireshark's exact strings. A reserved `0x80` label type is an error, as
//!   it is for Wireshark (malformed packet, no name shown);
//! * Wireshark's corner cases are kept: bit-string labels print as
//!   `\[x<hex>/<bits>]` but are not counted in the visible length (so they
//!   push the name's tail out of view), a bare pointer to a name whose first
//!   byte is NUL is `<Root>`, forward pointers are followed.
//!
//! Printability of non-ASCII characters follows a table taken from GLib
//! 2.74.6 (Unicode 15.0), the GLib of Debian 12's tshark 4.0.17; a tshark
//! linked with another GLib may differ for code points assigned since.
//! Compared with that tshark on about 50 000 generated messages (random
//! bytes and UTF-8 in labels, compression pointers, loops, extended labels,
//! truncation), the query names were identical. Answer names differ only
//! where Wireshark's type-specific data dissection (e.g. of HTTPS records)
//! rejects a record and stops, while this module keeps reading.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// Rendering of the root name (a zero-length name), as in Wireshark.
pub const ROOT_NAME: &str = "<Root>";
/// Rendering of a name of 254 or more characters, as in Wireshark.
pub const NAME_TOO_LONG: &str = "<Name too long>";
/// Rendering of a name whose compression pointers loop, as in Wireshark.
pub const NAME_POINTER_LOOP: &str = "<Name contains a pointer that loops>";
/// Rendering of a name using an RFC 2673 extended label type, as in Wireshark.
pub const NAME_UNKNOWN_EXTENDED_LABEL: &str = "<Unknown extended label>";

/// Length of the fixed DNS header.
const HEADER_LEN: usize = 12;
/// Wireshark's `MAX_DNAME_LEN`: size of its name buffer and its pointer limit.
const MAX_DNAME_LEN: usize = 255;
/// Upper bound on label/pointer steps spent decompressing names in one
/// message, so that crafted pointer chains cannot make parsing quadratic.
const NAME_WORK_LIMIT: usize = 1 << 20;

/// Errors from DNS parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Fewer bytes than the 12-byte header.
    #[error("DNS message too short: {0} bytes, header needs 12")]
    TooShort(usize),
    /// The message ended inside a name or record.
    #[error("DNS message truncated at offset {0}")]
    Truncated(usize),
    /// The message is not a well-formed DNS message.
    #[error("malformed DNS message: {0}")]
    Malformed(&'static str),
    /// A DNS-over-TCP frame announced a length of zero.
    #[error("DNS-over-TCP frame with length 0")]
    EmptyFrame,
    /// A TCP gap cut a DNS-over-TCP frame; its bytes were discarded.
    #[error("TCP gap: {0} buffered bytes of a DNS-over-TCP frame discarded")]
    Gap(usize),
}

/// One parsed DNS message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsMessage {
    /// Transaction ID.
    pub id: u16,
    /// QR bit: `true` for responses.
    pub is_response: bool,
    /// 4-bit OPCODE from the header.
    pub opcode: u8,
    /// 4-bit RCODE from the header (the EDNS extended bits are not added).
    pub rcode: u8,
    /// Question section, in wire order.
    pub questions: Vec<DnsQuestion>,
    /// Answer section, in wire order.
    pub answers: Vec<DnsAnswer>,
    /// `true` if part of the message could not be decoded: the sections hold
    /// what was decoded before the first error.
    pub malformed: bool,
}

/// One entry of the question section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsQuestion {
    /// Query name, rendered as described in the module docs.
    pub name: String,
    /// Query type mnemonic (`"A"`, `"AAAA"`, `"HTTPS"`, `"PTR"`...), or
    /// `"TYPE<n>"` (RFC 3597) for unknown values.
    pub qtype: String,
}

/// One resource record of the answer section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsAnswer {
    /// Owner name, rendered as described in the module docs.
    pub name: String,
    /// Record type mnemonic, as for [`DnsQuestion::qtype`].
    pub rtype: String,
    /// Time to live, in seconds, as on the wire.
    pub ttl: u32,
    /// Decoded record data.
    pub data: DnsData,
}

/// Decoded record data of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum DnsData {
    /// IPv4 address (type A).
    A(Ipv4Addr),
    /// IPv6 address (type AAAA).
    Aaaa(Ipv6Addr),
    /// Canonical name (type CNAME), rendered like query names.
    Cname(String),
    /// Pointer target (type PTR), rendered like query names.
    Ptr(String),
    /// Text (type TXT): the character-strings concatenated without
    /// separator, decoded as UTF-8 with invalid bytes replaced by U+FFFD.
    Txt(String),
    /// Any other type, or data of the wrong size for its type.
    Other,
}

/// Parses one DNS message (a UDP payload, or one DNS-over-TCP frame without
/// its length prefix).
///
/// Returns an error if the header is incomplete, or if the header announces
/// records but not a single question or answer could be decoded. Otherwise
/// returns what could be decoded, with [`DnsMessage::malformed`] set if some
/// of it could not.
pub fn parse_dns(payload: &[u8]) -> Result<DnsMessage, DnsError> {
    if payload.len() < HEADER_LEN {
        return Err(DnsError::TooShort(payload.len()));
    }
    match simple_dns::Packet::parse(payload) {
        // A name starting with a NUL byte can render as `<Root>` in
        // Wireshark depending on its encoding, which only the fallback
        // parser sees; such names never occur in legitimate traffic.
        Ok(packet) if !has_nul_led_name(&packet) => Ok(from_simple_dns(payload, &packet)),
        _ => parse_fallback(payload),
    }
}

fn has_nul_led_name(packet: &simple_dns::Packet<'_>) -> bool {
    use simple_dns::rdata::RData;
    let nul_led = |name: &simple_dns::Name<'_>| {
        name.get_labels()
            .first()
            .is_some_and(|l| l.as_ref().first() == Some(&0))
    };
    packet.questions.iter().any(|q| nul_led(&q.qname))
        || packet.answers.iter().any(|rr| {
            nul_led(&rr.name)
                || match &rr.rdata {
                    RData::CNAME(c) => nul_led(&c.0),
                    RData::PTR(p) => nul_led(&p.0),
                    _ => false,
                }
        })
}

/// Header fields read directly from the first 12 bytes (shared by both
/// parsing paths so they always agree).
struct Header {
    id: u16,
    is_response: bool,
    opcode: u8,
    rcode: u8,
    qdcount: u16,
    ancount: u16,
}

fn read_header(payload: &[u8]) -> Result<Header, DnsError> {
    let h: &[u8; HEADER_LEN] = payload
        .get(..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(DnsError::TooShort(payload.len()))?;
    Ok(Header {
        id: u16::from_be_bytes([h[0], h[1]]),
        is_response: h[2] & 0x80 != 0,
        opcode: (h[2] >> 3) & 0x0f,
        rcode: h[3] & 0x0f,
        qdcount: u16::from_be_bytes([h[4], h[5]]),
        ancount: u16::from_be_bytes([h[6], h[7]]),
    })
}

fn from_simple_dns(payload: &[u8], packet: &simple_dns::Packet<'_>) -> DnsMessage {
    use simple_dns::rdata::RData;

    // `Packet::parse` succeeded, so the header is there.
    let (id, is_response, opcode, rcode) = match read_header(payload) {
        Ok(h) => (h.id, h.is_response, h.opcode, h.rcode),
        Err(_) => (packet.id(), false, 0, 0),
    };
    let questions = packet
        .questions
        .iter()
        .map(|q| DnsQuestion {
            name: render_labels(q.qname.get_labels()),
            qtype: type_name(u16::from(q.qtype)),
        })
        .collect();
    let answers = packet
        .answers
        .iter()
        .map(|rr| {
            let data = match &rr.rdata {
                RData::A(a) => DnsData::A(Ipv4Addr::from(a.address)),
                RData::AAAA(a) => DnsData::Aaaa(Ipv6Addr::from(a.address)),
                RData::CNAME(c) => DnsData::Cname(render_labels(c.0.get_labels())),
                RData::PTR(p) => DnsData::Ptr(render_labels(p.0.get_labels())),
                RData::TXT(t) => DnsData::Txt(match String::try_from(t.clone()) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                }),
                _ => DnsData::Other,
            };
            DnsAnswer {
                name: render_labels(rr.name.get_labels()),
                rtype: type_name(u16::from(rr.rdata.type_code())),
                ttl: rr.ttl,
                data,
            }
        })
        .collect();
    DnsMessage {
        id,
        is_response,
        opcode,
        rcode,
        questions,
        answers,
        malformed: false,
    }
}

/// Renders a name given as labels (from `simple-dns`), applying the same
/// rules as [`NameReader`]: no label can be longer than 63 bytes there, and
/// `simple-dns` has already rejected names of 254+ characters.
fn render_labels(labels: &[simple_dns::Label<'_>]) -> String {
    if labels.is_empty() {
        return ROOT_NAME.to_string();
    }
    let mut raw = Vec::with_capacity(64);
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            raw.push(b'.');
        }
        raw.extend_from_slice(label.as_ref());
    }
    if raw.len() >= MAX_DNAME_LEN - 1 {
        return NAME_TOO_LONG.to_string();
    }
    format_text(&raw)
}

/// Fallback parser: header, questions and answers, tolerant of everything
/// `simple-dns` rejects that Wireshark accepts.
fn parse_fallback(payload: &[u8]) -> Result<DnsMessage, DnsError> {
    let header = read_header(payload)?;
    let mut reader = NameReader {
        msg: payload,
        work_left: NAME_WORK_LIMIT,
    };
    // Every question takes at least 5 bytes and every record at least 11, so
    // the remaining length bounds what is worth reserving.
    let rest = payload.len().saturating_sub(HEADER_LEN);
    let mut questions = Vec::with_capacity(usize::from(header.qdcount).min(rest / 5));
    let mut answers = Vec::with_capacity(usize::from(header.ancount).min(rest / 11));
    let mut pos = HEADER_LEN;
    let mut first_error = None;

    for _ in 0..header.qdcount {
        match read_question(&mut reader, pos) {
            Ok((q, next)) => {
                questions.push(q);
                pos = next;
            }
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
    }
    if first_error.is_none() {
        for _ in 0..header.ancount {
            match read_answer(&mut reader, pos) {
                Ok((a, Ok(next))) => {
                    answers.push(a);
                    pos = next;
                }
                Ok((a, Err(e))) => {
                    answers.push(a);
                    first_error = Some(e);
                    break;
                }
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
    }
    if let Some(e) = &first_error {
        if questions.is_empty() && answers.is_empty() {
            return Err(e.clone());
        }
    }
    Ok(DnsMessage {
        id: header.id,
        is_response: header.is_response,
        opcode: header.opcode,
        rcode: header.rcode,
        questions,
        answers,
        malformed: first_error.is_some(),
    })
}

fn read_u16(msg: &[u8], pos: usize) -> Result<u16, DnsError> {
    msg.get(pos..pos.saturating_add(2))
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map(u16::from_be_bytes)
        .ok_or(DnsError::Truncated(pos))
}

fn read_u32(msg: &[u8], pos: usize) -> Result<u32, DnsError> {
    msg.get(pos..pos.saturating_add(4))
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or(DnsError::Truncated(pos))
}

fn read_question(
    reader: &mut NameReader<'_>,
    pos: usize,
) -> Result<(DnsQuestion, usize), DnsError> {
    let (name, pos) = reader.read(pos)?;
    let qtype = read_u16(reader.msg, pos)?;
    let _qclass = read_u16(reader.msg, pos.saturating_add(2))?;
    Ok((
        DnsQuestion {
            name,
            qtype: type_name(qtype),
        },
        pos.saturating_add(4),
    ))
}

/// Reads one resource record. Like Wireshark, a record that lies within the
/// message is reported even if its data then turns out to be bad: the inner
/// result is the offset of the next record, or that error.
fn read_answer(
    reader: &mut NameReader<'_>,
    pos: usize,
) -> Result<(DnsAnswer, Result<usize, DnsError>), DnsError> {
    let (name, pos) = reader.read(pos)?;
    let msg = reader.msg;
    let rtype = read_u16(msg, pos)?;
    let _class = read_u16(msg, pos.saturating_add(2))?;
    let ttl = read_u32(msg, pos.saturating_add(4))?;
    let rdlen = usize::from(read_u16(msg, pos.saturating_add(8))?);
    let start = pos.saturating_add(10);
    let end = start.saturating_add(rdlen);
    // Wireshark drops the whole record when its data runs past the end.
    let rdata = msg.get(start..end).ok_or(DnsError::Truncated(start))?;
    let (data, next) = match read_rdata(reader, rtype, start, rdata) {
        Ok(data) => (data, Ok(end)),
        Err(e) => (DnsData::Other, Err(e)),
    };
    let answer = DnsAnswer {
        name,
        rtype: type_name(rtype),
        ttl,
        data,
    };
    Ok((answer, next))
}

fn read_rdata(
    reader: &mut NameReader<'_>,
    rtype: u16,
    start: usize,
    rdata: &[u8],
) -> Result<DnsData, DnsError> {
    Ok(match rtype {
        1 => <[u8; 4]>::try_from(rdata).map_or(DnsData::Other, |b| DnsData::A(Ipv4Addr::from(b))),
        28 => {
            <[u8; 16]>::try_from(rdata).map_or(DnsData::Other, |b| DnsData::Aaaa(Ipv6Addr::from(b)))
        }
        5 | 12 if !rdata.is_empty() => {
            let (target, _) = reader.read(start)?;
            if rtype == 5 {
                DnsData::Cname(target)
            } else {
                DnsData::Ptr(target)
            }
        }
        16 => DnsData::Txt(txt_strings(rdata)?),
        _ => DnsData::Other,
    })
}

/// Concatenates the character-strings of TXT record data.
fn txt_strings(rdata: &[u8]) -> Result<String, DnsError> {
    let mut out = Vec::with_capacity(rdata.len());
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len);
        let s = tail
            .get(..len)
            .ok_or(DnsError::Malformed("TXT character-string overruns record"))?;
        out.extend_from_slice(s);
        rest = tail.get(len..).unwrap_or_default();
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Name decompression following Wireshark's `expand_dns_name` and
/// `get_dns_name`, including their corner cases (see the module docs).
struct NameReader<'a> {
    msg: &'a [u8],
    work_left: usize,
}

/// Wireshark's name buffer: everything written to it, how much of it is the
/// visible name, and how much room is left (its `maxname`).
struct NameBuf {
    bytes: Vec<u8>,
    /// Wireshark's `name_len`: counts label bytes and dots, but not the text
    /// of bit-string labels, so only the first `visible` bytes are shown.
    visible: usize,
    room: usize,
}

impl NameBuf {
    /// Appends one byte of a label or a separating dot.
    fn push_counted(&mut self, b: u8) {
        if self.room > 0 {
            self.bytes.push(b);
            self.visible += 1;
            self.room -= 1;
        }
    }

    /// Appends text the way Wireshark's `snprintf(np, maxname, ...)` does:
    /// cut to `room - 1` bytes plus a NUL when it exactly fills the room, and
    /// nothing (but no room left) when it does not fit.
    fn push_printed(&mut self, text: &[u8]) {
        if self.room == 0 {
            return;
        }
        if text.len() < self.room {
            self.bytes.extend_from_slice(text);
            self.room -= text.len();
        } else if text.len() == self.room {
            self.bytes
                .extend_from_slice(text.get(..text.len() - 1).unwrap_or_default());
            self.bytes.push(0);
            self.room = 0;
        } else {
            self.room = 0;
        }
    }
}

impl NameReader<'_> {
    /// Reads the (possibly compressed) name starting at `start`; returns its
    /// rendering and the offset just after it in the message.
    fn read(&mut self, start: usize) -> Result<(String, usize), DnsError> {
        let msg = self.msg;
        let mut pos = start;
        // Offset after the first pointer: where the record continues.
        let mut end = None;
        let mut buf = NameBuf {
            bytes: Vec::with_capacity(64),
            visible: 0,
            room: MAX_DNAME_LEN,
        };
        let mut pointers = 0usize;
        loop {
            self.work_left = self.work_left.checked_sub(1).ok_or(DnsError::Malformed(
                "name decompression work limit exceeded",
            ))?;
            let len = *msg.get(pos).ok_or(DnsError::Truncated(pos))?;
            pos += 1;
            if len == 0 {
                break;
            }
            match len & 0xc0 {
                0x00 => {
                    if buf.bytes.is_empty() {
                        // First label: room for the terminating NUL.
                        buf.room = buf.room.saturating_sub(1);
                    } else {
                        buf.push_counted(b'.');
                    }
                    let label_end = pos.saturating_add(usize::from(len));
                    let label = msg.get(pos..label_end).ok_or(DnsError::Truncated(pos))?;
                    for &b in label {
                        buf.push_counted(b);
                    }
                    pos = label_end;
                }
                0x40 if len == 0x41 => {
                    // RFC 2673 bit-string label, printed as `\[x<hex>/<bits>]`.
                    let bits = *msg.get(pos).ok_or(DnsError::Truncated(pos))?;
                    pos += 1;
                    let count = usize::from(bits).saturating_sub(1) / 8 + 1;
                    buf.push_printed(b"\\[x");
                    for _ in 0..count {
                        // Wireshark only reads the byte while there is room.
                        if buf.room > 0 {
                            let b = *msg.get(pos).ok_or(DnsError::Truncated(pos))?;
                            buf.push_printed(format!("{b:02x}").as_bytes());
                        }
                        pos += 1;
                    }
                    buf.push_printed(format!("/{bits}]").as_bytes());
                }
                0x40 => {
                    // Other extended label: Wireshark gives up on the name
                    // and, even after a pointer, takes the current offset as
                    // the end of the name; less than 2 bytes is malformed.
                    if pos < start.saturating_add(2) {
                        return Err(DnsError::Malformed("extended label"));
                    }
                    return Ok((NAME_UNKNOWN_EXTENDED_LABEL.to_string(), pos));
                }
                0x80 => return Err(DnsError::Malformed("reserved label type 0x80")),
                _ => {
                    let low = *msg.get(pos).ok_or(DnsError::Truncated(pos))?;
                    pos += 1;
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    pointers += 1;
                    let after = *end.get_or_insert(pos);
                    // Wireshark's test, kept as is: besides counting, it
                    // takes a pointer to 2 bytes past its own end as a loop.
                    if pointers > MAX_DNAME_LEN || target == pos.saturating_add(2) {
                        return Ok((NAME_POINTER_LOOP.to_string(), after));
                    }
                    pos = target;
                }
            }
        }
        let end = end.unwrap_or(pos);
        let used = end.saturating_sub(start);
        let name = if buf.room == 0 {
            NAME_TOO_LONG.to_string()
        } else if buf.bytes.first().is_none_or(|&b| b == 0) && used <= 2 {
            // Wireshark tests the C string: empty (or NUL-led) and at most
            // 2 bytes long (a 0 byte, or a pointer) is the root.
            ROOT_NAME.to_string()
        } else if used < 2 || (used > 2 && buf.visible == 0) {
            return Err(DnsError::Malformed("empty name"));
        } else {
            format_text(buf.bytes.get(..buf.visible).unwrap_or_default())
        };
        Ok((name, end))
    }
}

/// Port of Wireshark's `format_text` (wsutil/str_util.c): printable text is
/// kept, everything else is escaped. See the module docs.
fn format_text(raw: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        i += 1;
        if (0x20..=0x7e).contains(&c) {
            out.push(char::from(c));
            continue;
        }
        if c < 0x80 {
            out.push('\\');
            match c {
                0x07 => out.push('a'),
                0x08 => out.push('b'),
                0x0c => out.push('f'),
                b'\n' => out.push('n'),
                b'\r' => out.push('r'),
                b'\t' => out.push('t'),
                0x0b => out.push('v'),
                _ => {
                    for shift in [6u8, 3, 0] {
                        out.push(char::from(b'0' + ((c >> shift) & 7)));
                    }
                }
            }
            continue;
        }
        // First byte of a multi-byte sequence; decode permissively like
        // Wireshark (overlong forms accepted, 5/6-byte forms decoded).
        let (more, mask): (usize, u8) = match c {
            _ if c & 0xe0 == 0xc0 => (1, 0x1f),
            _ if c & 0xf0 == 0xe0 => (2, 0x0f),
            _ if c & 0xf8 == 0xf0 => (3, 0x07),
            _ if c & 0xfc == 0xf8 => (4, 0x03),
            _ if c & 0xfe == 0xfc => (5, 0x01),
            _ => (0, 0),
        };
        let mut uc = if more == 0 {
            0xfffd
        } else {
            let mut uc = u32::from(c & mask);
            for _ in 0..more {
                match raw.get(i) {
                    Some(&n) if n & 0xc0 == 0x80 => {
                        i += 1;
                        uc = (uc << 6) | u32::from(n & 0x3f);
                    }
                    // Missing or non-continuation byte: U+FFFD, and the byte
                    // (if any) starts the next character.
                    _ => {
                        uc = 0xfffd;
                        break;
                    }
                }
            }
            uc
        };
        if uc >= 0x11_0000 || (uc & 0xffff_f800) == 0xd800 {
            uc = 0xfffd;
        }
        match char::from_u32(uc) {
            Some(ch) if is_printable(ch) => out.push(ch),
            _ => {
                let digits = if uc <= 0xffff {
                    out.push_str("\\u");
                    4
                } else {
                    out.push_str("\\U");
                    8
                };
                for k in (0..digits).rev() {
                    let nibble = (uc >> (4 * k)) & 0xf;
                    out.push(char::from(HEX[nibble as usize]));
                }
            }
        }
    }
    out
}

/// GLib's `g_unichar_isprint`, which Wireshark's `format_text` uses for
/// non-ASCII characters: false for controls, format characters, unassigned
/// code points and non-characters.
fn is_printable(ch: char) -> bool {
    let u = u32::from(ch);
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    // Index of the first range end >= u; u is inside that range if the range
    // start (the element before, at an even index) is <= u.
    let i = NON_PRINTABLE.partition_point(|&bound| bound < u);
    !(i % 2 == 1 || NON_PRINTABLE.get(i) == Some(&u))
}

/// Inclusive ranges `[start, end, start, end, ...]` of the code points >= 0x80
/// for which `g_unichar_isprint` is false, generated by calling it for every
/// code point in GLib 2.74.6 (Unicode 15.0; the `libglib2.0-0` of Debian 12,
/// used by its tshark 4.0.17). Surrogates cannot occur in a `char`.
const NON_PRINTABLE: [u32; 1426] = [
    0x80, 0x9F, 0xAD, 0xAD, 0x378, 0x379, 0x380, 0x383, 0x38B, 0x38B, 0x38D, 0x38D, 0x3A2, 0x3A2,
    0x530, 0x530, 0x557, 0x558, 0x58B, 0x58C, 0x590, 0x590, 0x5C8, 0x5CF, 0x5EB, 0x5EE, 0x5F5,
    0x605, 0x61C, 0x61C, 0x6DD, 0x6DD, 0x70E, 0x70F, 0x74B, 0x74C, 0x7B2, 0x7BF, 0x7FB, 0x7FC,
    0x82E, 0x82F, 0x83F, 0x83F, 0x85C, 0x85D, 0x85F, 0x85F, 0x86B, 0x86F, 0x88F, 0x897, 0x8E2,
    0x8E2, 0x984, 0x984, 0x98D, 0x98E, 0x991, 0x992, 0x9A9, 0x9A9, 0x9B1, 0x9B1, 0x9B3, 0x9B5,
    0x9BA, 0x9BB, 0x9C5, 0x9C6, 0x9C9, 0x9CA, 0x9CF, 0x9D6, 0x9D8, 0x9DB, 0x9DE, 0x9DE, 0x9E4,
    0x9E5, 0x9FF, 0xA00, 0xA04, 0xA04, 0xA0B, 0xA0E, 0xA11, 0xA12, 0xA29, 0xA29, 0xA31, 0xA31,
    0xA34, 0xA34, 0xA37, 0xA37, 0xA3A, 0xA3B, 0xA3D, 0xA3D, 0xA43, 0xA46, 0xA49, 0xA4A, 0xA4E,
    0xA50, 0xA52, 0xA58, 0xA5D, 0xA5D, 0xA5F, 0xA65, 0xA77, 0xA80, 0xA84, 0xA84, 0xA8E, 0xA8E,
    0xA92, 0xA92, 0xAA9, 0xAA9, 0xAB1, 0xAB1, 0xAB4, 0xAB4, 0xABA, 0xABB, 0xAC6, 0xAC6, 0xACA,
    0xACA, 0xACE, 0xACF, 0xAD1, 0xADF, 0xAE4, 0xAE5, 0xAF2, 0xAF8, 0xB00, 0xB00, 0xB04, 0xB04,
    0xB0D, 0xB0E, 0xB11, 0xB12, 0xB29, 0xB29, 0xB31, 0xB31, 0xB34, 0xB34, 0xB3A, 0xB3B, 0xB45,
    0xB46, 0xB49, 0xB4A, 0xB4E, 0xB54, 0xB58, 0xB5B, 0xB5E, 0xB5E, 0xB64, 0xB65, 0xB78, 0xB81,
    0xB84, 0xB84, 0xB8B, 0xB8D, 0xB91, 0xB91, 0xB96, 0xB98, 0xB9B, 0xB9B, 0xB9D, 0xB9D, 0xBA0,
    0xBA2, 0xBA5, 0xBA7, 0xBAB, 0xBAD, 0xBBA, 0xBBD, 0xBC3, 0xBC5, 0xBC9, 0xBC9, 0xBCE, 0xBCF,
    0xBD1, 0xBD6, 0xBD8, 0xBE5, 0xBFB, 0xBFF, 0xC0D, 0xC0D, 0xC11, 0xC11, 0xC29, 0xC29, 0xC3A,
    0xC3B, 0xC45, 0xC45, 0xC49, 0xC49, 0xC4E, 0xC54, 0xC57, 0xC57, 0xC5B, 0xC5C, 0xC5E, 0xC5F,
    0xC64, 0xC65, 0xC70, 0xC76, 0xC8D, 0xC8D, 0xC91, 0xC91, 0xCA9, 0xCA9, 0xCB4, 0xCB4, 0xCBA,
    0xCBB, 0xCC5, 0xCC5, 0xCC9, 0xCC9, 0xCCE, 0xCD4, 0xCD7, 0xCDC, 0xCDF, 0xCDF, 0xCE4, 0xCE5,
    0xCF0, 0xCF0, 0xCF4, 0xCFF, 0xD0D, 0xD0D, 0xD11, 0xD11, 0xD45, 0xD45, 0xD49, 0xD49, 0xD50,
    0xD53, 0xD64, 0xD65, 0xD80, 0xD80, 0xD84, 0xD84, 0xD97, 0xD99, 0xDB2, 0xDB2, 0xDBC, 0xDBC,
    0xDBE, 0xDBF, 0xDC7, 0xDC9, 0xDCB, 0xDCE, 0xDD5, 0xDD5, 0xDD7, 0xDD7, 0xDE0, 0xDE5, 0xDF0,
    0xDF1, 0xDF5, 0xE00, 0xE3B, 0xE3E, 0xE5C, 0xE80, 0xE83, 0xE83, 0xE85, 0xE85, 0xE8B, 0xE8B,
    0xEA4, 0xEA4, 0xEA6, 0xEA6, 0xEBE, 0xEBF, 0xEC5, 0xEC5, 0xEC7, 0xEC7, 0xECF, 0xECF, 0xEDA,
    0xEDB, 0xEE0, 0xEFF, 0xF48, 0xF48, 0xF6D, 0xF70, 0xF98, 0xF98, 0xFBD, 0xFBD, 0xFCD, 0xFCD,
    0xFDB, 0xFFF, 0x10C6, 0x10C6, 0x10C8, 0x10CC, 0x10CE, 0x10CF, 0x1249, 0x1249, 0x124E, 0x124F,
    0x1257, 0x1257, 0x1259, 0x1259, 0x125E, 0x125F, 0x1289, 0x1289, 0x128E, 0x128F, 0x12B1, 0x12B1,
    0x12B6, 0x12B7, 0x12BF, 0x12BF, 0x12C1, 0x12C1, 0x12C6, 0x12C7, 0x12D7, 0x12D7, 0x1311, 0x1311,
    0x1316, 0x1317, 0x135B, 0x135C, 0x137D, 0x137F, 0x139A, 0x139F, 0x13F6, 0x13F7, 0x13FE, 0x13FF,
    0x169D, 0x169F, 0x16F9, 0x16FF, 0x1716, 0x171E, 0x1737, 0x173F, 0x1754, 0x175F, 0x176D, 0x176D,
    0x1771, 0x1771, 0x1774, 0x177F, 0x17DE, 0x17DF, 0x17EA, 0x17EF, 0x17FA, 0x17FF, 0x180E, 0x180E,
    0x181A, 0x181F, 0x1879, 0x187F, 0x18AB, 0x18AF, 0x18F6, 0x18FF, 0x191F, 0x191F, 0x192C, 0x192F,
    0x193C, 0x193F, 0x1941, 0x1943, 0x196E, 0x196F, 0x1975, 0x197F, 0x19AC, 0x19AF, 0x19CA, 0x19CF,
    0x19DB, 0x19DD, 0x1A1C, 0x1A1D, 0x1A5F, 0x1A5F, 0x1A7D, 0x1A7E, 0x1A8A, 0x1A8F, 0x1A9A, 0x1A9F,
    0x1AAE, 0x1AAF, 0x1ACF, 0x1AFF, 0x1B4D, 0x1B4F, 0x1B7F, 0x1B7F, 0x1BF4, 0x1BFB, 0x1C38, 0x1C3A,
    0x1C4A, 0x1C4C, 0x1C89, 0x1C8F, 0x1CBB, 0x1CBC, 0x1CC8, 0x1CCF, 0x1CFB, 0x1CFF, 0x1F16, 0x1F17,
    0x1F1E, 0x1F1F, 0x1F46, 0x1F47, 0x1F4E, 0x1F4F, 0x1F58, 0x1F58, 0x1F5A, 0x1F5A, 0x1F5C, 0x1F5C,
    0x1F5E, 0x1F5E, 0x1F7E, 0x1F7F, 0x1FB5, 0x1FB5, 0x1FC5, 0x1FC5, 0x1FD4, 0x1FD5, 0x1FDC, 0x1FDC,
    0x1FF0, 0x1FF1, 0x1FF5, 0x1FF5, 0x1FFF, 0x1FFF, 0x200B, 0x200F, 0x202A, 0x202E, 0x2060, 0x206F,
    0x2072, 0x2073, 0x208F, 0x208F, 0x209D, 0x209F, 0x20C1, 0x20CF, 0x20F1, 0x20FF, 0x218C, 0x218F,
    0x2427, 0x243F, 0x244B, 0x245F, 0x2B74, 0x2B75, 0x2B96, 0x2B96, 0x2CF4, 0x2CF8, 0x2D26, 0x2D26,
    0x2D28, 0x2D2C, 0x2D2E, 0x2D2F, 0x2D68, 0x2D6E, 0x2D71, 0x2D7E, 0x2D97, 0x2D9F, 0x2DA7, 0x2DA7,
    0x2DAF, 0x2DAF, 0x2DB7, 0x2DB7, 0x2DBF, 0x2DBF, 0x2DC7, 0x2DC7, 0x2DCF, 0x2DCF, 0x2DD7, 0x2DD7,
    0x2DDF, 0x2DDF, 0x2E5E, 0x2E7F, 0x2E9A, 0x2E9A, 0x2EF4, 0x2EFF, 0x2FD6, 0x2FEF, 0x2FFC, 0x2FFF,
    0x3040, 0x3040, 0x3097, 0x3098, 0x3100, 0x3104, 0x3130, 0x3130, 0x318F, 0x318F, 0x31E4, 0x31EF,
    0x321F, 0x321F, 0xA48D, 0xA48F, 0xA4C7, 0xA4CF, 0xA62C, 0xA63F, 0xA6F8, 0xA6FF, 0xA7CB, 0xA7CF,
    0xA7D2, 0xA7D2, 0xA7D4, 0xA7D4, 0xA7DA, 0xA7F1, 0xA82D, 0xA82F, 0xA83A, 0xA83F, 0xA878, 0xA87F,
    0xA8C6, 0xA8CD, 0xA8DA, 0xA8DF, 0xA954, 0xA95E, 0xA97D, 0xA97F, 0xA9CE, 0xA9CE, 0xA9DA, 0xA9DD,
    0xA9FF, 0xA9FF, 0xAA37, 0xAA3F, 0xAA4E, 0xAA4F, 0xAA5A, 0xAA5B, 0xAAC3, 0xAADA, 0xAAF7, 0xAB00,
    0xAB07, 0xAB08, 0xAB0F, 0xAB10, 0xAB17, 0xAB1F, 0xAB27, 0xAB27, 0xAB2F, 0xAB2F, 0xAB6C, 0xAB6F,
    0xABEE, 0xABEF, 0xABFA, 0xABFF, 0xD7A4, 0xD7AF, 0xD7C7, 0xD7CA, 0xD7FC, 0xD7FF, 0xFA6E, 0xFA6F,
    0xFADA, 0xFAFF, 0xFB07, 0xFB12, 0xFB18, 0xFB1C, 0xFB37, 0xFB37, 0xFB3D, 0xFB3D, 0xFB3F, 0xFB3F,
    0xFB42, 0xFB42, 0xFB45, 0xFB45, 0xFBC3, 0xFBD2, 0xFD90, 0xFD91, 0xFDC8, 0xFDCE, 0xFDD0, 0xFDEF,
    0xFE1A, 0xFE1F, 0xFE53, 0xFE53, 0xFE67, 0xFE67, 0xFE6C, 0xFE6F, 0xFE75, 0xFE75, 0xFEFD, 0xFF00,
    0xFFBF, 0xFFC1, 0xFFC8, 0xFFC9, 0xFFD0, 0xFFD1, 0xFFD8, 0xFFD9, 0xFFDD, 0xFFDF, 0xFFE7, 0xFFE7,
    0xFFEF, 0xFFFB, 0xFFFE, 0xFFFF, 0x1000C, 0x1000C, 0x10027, 0x10027, 0x1003B, 0x1003B, 0x1003E,
    0x1003E, 0x1004E, 0x1004F, 0x1005E, 0x1007F, 0x100FB, 0x100FF, 0x10103, 0x10106, 0x10134,
    0x10136, 0x1018F, 0x1018F, 0x1019D, 0x1019F, 0x101A1, 0x101CF, 0x101FE, 0x1027F, 0x1029D,
    0x1029F, 0x102D1, 0x102DF, 0x102FC, 0x102FF, 0x10324, 0x1032C, 0x1034B, 0x1034F, 0x1037B,
    0x1037F, 0x1039E, 0x1039E, 0x103C4, 0x103C7, 0x103D6, 0x103FF, 0x1049E, 0x1049F, 0x104AA,
    0x104AF, 0x104D4, 0x104D7, 0x104FC, 0x104FF, 0x10528, 0x1052F, 0x10564, 0x1056E, 0x1057B,
    0x1057B, 0x1058B, 0x1058B, 0x10593, 0x10593, 0x10596, 0x10596, 0x105A2, 0x105A2, 0x105B2,
    0x105B2, 0x105BA, 0x105BA, 0x105BD, 0x105FF, 0x10737, 0x1073F, 0x10756, 0x1075F, 0x10768,
    0x1077F, 0x10786, 0x10786, 0x107B1, 0x107B1, 0x107BB, 0x107FF, 0x10806, 0x10807, 0x10809,
    0x10809, 0x10836, 0x10836, 0x10839, 0x1083B, 0x1083D, 0x1083E, 0x10856, 0x10856, 0x1089F,
    0x108A6, 0x108B0, 0x108DF, 0x108F3, 0x108F3, 0x108F6, 0x108FA, 0x1091C, 0x1091E, 0x1093A,
    0x1093E, 0x10940, 0x1097F, 0x109B8, 0x109BB, 0x109D0, 0x109D1, 0x10A04, 0x10A04, 0x10A07,
    0x10A0B, 0x10A14, 0x10A14, 0x10A18, 0x10A18, 0x10A36, 0x10A37, 0x10A3B, 0x10A3E, 0x10A49,
    0x10A4F, 0x10A59, 0x10A5F, 0x10AA0, 0x10ABF, 0x10AE7, 0x10AEA, 0x10AF7, 0x10AFF, 0x10B36,
    0x10B38, 0x10B56, 0x10B57, 0x10B73, 0x10B77, 0x10B92, 0x10B98, 0x10B9D, 0x10BA8, 0x10BB0,
    0x10BFF, 0x10C49, 0x10C7F, 0x10CB3, 0x10CBF, 0x10CF3, 0x10CF9, 0x10D28, 0x10D2F, 0x10D3A,
    0x10E5F, 0x10E7F, 0x10E7F, 0x10EAA, 0x10EAA, 0x10EAE, 0x10EAF, 0x10EB2, 0x10EFC, 0x10F28,
    0x10F2F, 0x10F5A, 0x10F6F, 0x10F8A, 0x10FAF, 0x10FCC, 0x10FDF, 0x10FF7, 0x10FFF, 0x1104E,
    0x11051, 0x11076, 0x1107E, 0x110BD, 0x110BD, 0x110C3, 0x110CF, 0x110E9, 0x110EF, 0x110FA,
    0x110FF, 0x11135, 0x11135, 0x11148, 0x1114F, 0x11177, 0x1117F, 0x111E0, 0x111E0, 0x111F5,
    0x111FF, 0x11212, 0x11212, 0x11242, 0x1127F, 0x11287, 0x11287, 0x11289, 0x11289, 0x1128E,
    0x1128E, 0x1129E, 0x1129E, 0x112AA, 0x112AF, 0x112EB, 0x112EF, 0x112FA, 0x112FF, 0x11304,
    0x11304, 0x1130D, 0x1130E, 0x11311, 0x11312, 0x11329, 0x11329, 0x11331, 0x11331, 0x11334,
    0x11334, 0x1133A, 0x1133A, 0x11345, 0x11346, 0x11349, 0x1134A, 0x1134E, 0x1134F, 0x11351,
    0x11356, 0x11358, 0x1135C, 0x11364, 0x11365, 0x1136D, 0x1136F, 0x11375, 0x113FF, 0x1145C,
    0x1145C, 0x11462, 0x1147F, 0x114C8, 0x114CF, 0x114DA, 0x1157F, 0x115B6, 0x115B7, 0x115DE,
    0x115FF, 0x11645, 0x1164F, 0x1165A, 0x1165F, 0x1166D, 0x1167F, 0x116BA, 0x116BF, 0x116CA,
    0x116FF, 0x1171B, 0x1171C, 0x1172C, 0x1172F, 0x11747, 0x117FF, 0x1183C, 0x1189F, 0x118F3,
    0x118FE, 0x11907, 0x11908, 0x1190A, 0x1190B, 0x11914, 0x11914, 0x11917, 0x11917, 0x11936,
    0x11936, 0x11939, 0x1193A, 0x11947, 0x1194F, 0x1195A, 0x1199F, 0x119A8, 0x119A9, 0x119D8,
    0x119D9, 0x119E5, 0x119FF, 0x11A48, 0x11A4F, 0x11AA3, 0x11AAF, 0x11AF9, 0x11AFF, 0x11B0A,
    0x11BFF, 0x11C09, 0x11C09, 0x11C37, 0x11C37, 0x11C46, 0x11C4F, 0x11C6D, 0x11C6F, 0x11C90,
    0x11C91, 0x11CA8, 0x11CA8, 0x11CB7, 0x11CFF, 0x11D07, 0x11D07, 0x11D0A, 0x11D0A, 0x11D37,
    0x11D39, 0x11D3B, 0x11D3B, 0x11D3E, 0x11D3E, 0x11D48, 0x11D4F, 0x11D5A, 0x11D5F, 0x11D66,
    0x11D66, 0x11D69, 0x11D69, 0x11D8F, 0x11D8F, 0x11D92, 0x11D92, 0x11D99, 0x11D9F, 0x11DAA,
    0x11EDF, 0x11EF9, 0x11EFF, 0x11F11, 0x11F11, 0x11F3B, 0x11F3D, 0x11F5A, 0x11FAF, 0x11FB1,
    0x11FBF, 0x11FF2, 0x11FFE, 0x1239A, 0x123FF, 0x1246F, 0x1246F, 0x12475, 0x1247F, 0x12544,
    0x12F8F, 0x12FF3, 0x12FFF, 0x13430, 0x1343F, 0x13456, 0x143FF, 0x14647, 0x167FF, 0x16A39,
    0x16A3F, 0x16A5F, 0x16A5F, 0x16A6A, 0x16A6D, 0x16ABF, 0x16ABF, 0x16ACA, 0x16ACF, 0x16AEE,
    0x16AEF, 0x16AF6, 0x16AFF, 0x16B46, 0x16B4F, 0x16B5A, 0x16B5A, 0x16B62, 0x16B62, 0x16B78,
    0x16B7C, 0x16B90, 0x16E3F, 0x16E9B, 0x16EFF, 0x16F4B, 0x16F4E, 0x16F88, 0x16F8E, 0x16FA0,
    0x16FDF, 0x16FE5, 0x16FEF, 0x16FF2, 0x16FFF, 0x187F8, 0x187FF, 0x18CD6, 0x18CFF, 0x18D09,
    0x1AFEF, 0x1AFF4, 0x1AFF4, 0x1AFFC, 0x1AFFC, 0x1AFFF, 0x1AFFF, 0x1B123, 0x1B131, 0x1B133,
    0x1B14F, 0x1B153, 0x1B154, 0x1B156, 0x1B163, 0x1B168, 0x1B16F, 0x1B2FC, 0x1BBFF, 0x1BC6B,
    0x1BC6F, 0x1BC7D, 0x1BC7F, 0x1BC89, 0x1BC8F, 0x1BC9A, 0x1BC9B, 0x1BCA0, 0x1CEFF, 0x1CF2E,
    0x1CF2F, 0x1CF47, 0x1CF4F, 0x1CFC4, 0x1CFFF, 0x1D0F6, 0x1D0FF, 0x1D127, 0x1D128, 0x1D173,
    0x1D17A, 0x1D1EB, 0x1D1FF, 0x1D246, 0x1D2BF, 0x1D2D4, 0x1D2DF, 0x1D2F4, 0x1D2FF, 0x1D357,
    0x1D35F, 0x1D379, 0x1D3FF, 0x1D455, 0x1D455, 0x1D49D, 0x1D49D, 0x1D4A0, 0x1D4A1, 0x1D4A3,
    0x1D4A4, 0x1D4A7, 0x1D4A8, 0x1D4AD, 0x1D4AD, 0x1D4BA, 0x1D4BA, 0x1D4BC, 0x1D4BC, 0x1D4C4,
    0x1D4C4, 0x1D506, 0x1D506, 0x1D50B, 0x1D50C, 0x1D515, 0x1D515, 0x1D51D, 0x1D51D, 0x1D53A,
    0x1D53A, 0x1D53F, 0x1D53F, 0x1D545, 0x1D545, 0x1D547, 0x1D549, 0x1D551, 0x1D551, 0x1D6A6,
    0x1D6A7, 0x1D7CC, 0x1D7CD, 0x1DA8C, 0x1DA9A, 0x1DAA0, 0x1DAA0, 0x1DAB0, 0x1DEFF, 0x1DF1F,
    0x1DF24, 0x1DF2B, 0x1DFFF, 0x1E007, 0x1E007, 0x1E019, 0x1E01A, 0x1E022, 0x1E022, 0x1E025,
    0x1E025, 0x1E02B, 0x1E02F, 0x1E06E, 0x1E08E, 0x1E090, 0x1E0FF, 0x1E12D, 0x1E12F, 0x1E13E,
    0x1E13F, 0x1E14A, 0x1E14D, 0x1E150, 0x1E28F, 0x1E2AF, 0x1E2BF, 0x1E2FA, 0x1E2FE, 0x1E300,
    0x1E4CF, 0x1E4FA, 0x1E7DF, 0x1E7E7, 0x1E7E7, 0x1E7EC, 0x1E7EC, 0x1E7EF, 0x1E7EF, 0x1E7FF,
    0x1E7FF, 0x1E8C5, 0x1E8C6, 0x1E8D7, 0x1E8FF, 0x1E94C, 0x1E94F, 0x1E95A, 0x1E95D, 0x1E960,
    0x1EC70, 0x1ECB5, 0x1ED00, 0x1ED3E, 0x1EDFF, 0x1EE04, 0x1EE04, 0x1EE20, 0x1EE20, 0x1EE23,
    0x1EE23, 0x1EE25, 0x1EE26, 0x1EE28, 0x1EE28, 0x1EE33, 0x1EE33, 0x1EE38, 0x1EE38, 0x1EE3A,
    0x1EE3A, 0x1EE3C, 0x1EE41, 0x1EE43, 0x1EE46, 0x1EE48, 0x1EE48, 0x1EE4A, 0x1EE4A, 0x1EE4C,
    0x1EE4C, 0x1EE50, 0x1EE50, 0x1EE53, 0x1EE53, 0x1EE55, 0x1EE56, 0x1EE58, 0x1EE58, 0x1EE5A,
    0x1EE5A, 0x1EE5C, 0x1EE5C, 0x1EE5E, 0x1EE5E, 0x1EE60, 0x1EE60, 0x1EE63, 0x1EE63, 0x1EE65,
    0x1EE66, 0x1EE6B, 0x1EE6B, 0x1EE73, 0x1EE73, 0x1EE78, 0x1EE78, 0x1EE7D, 0x1EE7D, 0x1EE7F,
    0x1EE7F, 0x1EE8A, 0x1EE8A, 0x1EE9C, 0x1EEA0, 0x1EEA4, 0x1EEA4, 0x1EEAA, 0x1EEAA, 0x1EEBC,
    0x1EEEF, 0x1EEF2, 0x1EFFF, 0x1F02C, 0x1F02F, 0x1F094, 0x1F09F, 0x1F0AF, 0x1F0B0, 0x1F0C0,
    0x1F0C0, 0x1F0D0, 0x1F0D0, 0x1F0F6, 0x1F0FF, 0x1F1AE, 0x1F1E5, 0x1F203, 0x1F20F, 0x1F23C,
    0x1F23F, 0x1F249, 0x1F24F, 0x1F252, 0x1F25F, 0x1F266, 0x1F2FF, 0x1F6D8, 0x1F6DB, 0x1F6ED,
    0x1F6EF, 0x1F6FD, 0x1F6FF, 0x1F777, 0x1F77A, 0x1F7DA, 0x1F7DF, 0x1F7EC, 0x1F7EF, 0x1F7F1,
    0x1F7FF, 0x1F80C, 0x1F80F, 0x1F848, 0x1F84F, 0x1F85A, 0x1F85F, 0x1F888, 0x1F88F, 0x1F8AE,
    0x1F8AF, 0x1F8B2, 0x1F8FF, 0x1FA54, 0x1FA5F, 0x1FA6E, 0x1FA6F, 0x1FA7D, 0x1FA7F, 0x1FA89,
    0x1FA8F, 0x1FABE, 0x1FABE, 0x1FAC6, 0x1FACD, 0x1FADC, 0x1FADF, 0x1FAE9, 0x1FAEF, 0x1FAF9,
    0x1FAFF, 0x1FB93, 0x1FB93, 0x1FBCB, 0x1FBEF, 0x1FBFA, 0x1FFFF, 0x2A6E0, 0x2A6FF, 0x2B73A,
    0x2B73F, 0x2B81E, 0x2B81F, 0x2CEA2, 0x2CEAF, 0x2EBE1, 0x2F7FF, 0x2FA1E, 0x2FFFF, 0x3134B,
    0x3134F, 0x323B0, 0xE00FF, 0xE01F0, 0xEFFFF, 0xFFFFE, 0xFFFFF, 0x10FFFE, 0x10FFFF,
];

/// Mnemonic of a TYPE/QTYPE value (IANA registry), `TYPE<n>` if unknown.
fn type_name(t: u16) -> String {
    let name = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        257 => "CAA",
        258 => "AVC",
        259 => "DOA",
        260 => "AMTRELAY",
        32768 => "TA",
        32769 => "DLV",
        _ => return format!("TYPE{t}"),
    };
    name.to_string()
}

/// Splits a DNS-over-TCP byte stream (one direction) into messages.
///
/// Sans-IO push parser: feed bytes in order with [`DnsTcpFramer::push`];
/// each complete frame is parsed with [`parse_dns`] and its result appended
/// to `out`. At most one frame (≤ 65535 bytes, the largest length the 2-byte
/// prefix can announce) is buffered.
#[derive(Debug, Default)]
pub struct DnsTcpFramer {
    /// Bytes of the length prefix received so far.
    prefix: [u8; 2],
    prefix_len: usize,
    /// Length announced by the current prefix (valid when `prefix_len == 2`).
    frame_len: usize,
    /// Body bytes of the current frame received so far.
    frame: Vec<u8>,
    /// Bytes discarded by the last [`DnsTcpFramer::gap`], reported at the next push.
    discarded: usize,
}

impl DnsTcpFramer {
    /// Creates a framer positioned at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream; appends one result per completed
    /// frame to `out` (plus [`DnsError::Gap`] first if the previous
    /// [`DnsTcpFramer::gap`] discarded a partial frame).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Result<DnsMessage, DnsError>>) {
        if self.discarded > 0 {
            out.push(Err(DnsError::Gap(self.discarded)));
            self.discarded = 0;
        }
        let mut rest = data;
        while !rest.is_empty() {
            if self.prefix_len < 2 {
                let take = (2 - self.prefix_len).min(rest.len());
                let (head, tail) = rest.split_at(take);
                for &b in head {
                    self.prefix[self.prefix_len] = b;
                    self.prefix_len += 1;
                }
                rest = tail;
                if self.prefix_len == 2 {
                    self.frame_len = usize::from(u16::from_be_bytes(self.prefix));
                    if self.frame_len == 0 {
                        out.push(Err(DnsError::EmptyFrame));
                        self.prefix_len = 0;
                    }
                }
                continue;
            }
            let missing = self.frame_len.saturating_sub(self.frame.len());
            if self.frame.is_empty() && rest.len() >= missing {
                // Whole frame available: parse in place, no copy.
                let (body, tail) = rest.split_at(missing);
                out.push(parse_dns(body));
                rest = tail;
                self.prefix_len = 0;
                continue;
            }
            let take = missing.min(rest.len());
            let (head, tail) = rest.split_at(take);
            if self.frame.capacity() < self.frame_len {
                self.frame.reserve_exact(self.frame_len - self.frame.len());
            }
            self.frame.extend_from_slice(head);
            rest = tail;
            if self.frame.len() == self.frame_len {
                out.push(parse_dns(&self.frame));
                self.frame.clear();
                self.prefix_len = 0;
            }
        }
    }

    /// Signals missing bytes in the stream (TCP gap). The partial frame, if
    /// any, is dropped (reported as [`DnsError::Gap`] at the next push), and
    /// the next pushed byte is taken as the start of a new length prefix.
    pub fn gap(&mut self) {
        let buffered = self.prefix_len + self.frame.len();
        if buffered > 0 {
            self.discarded = self.discarded.saturating_add(buffered);
        }
        self.prefix_len = 0;
        self.frame_len = 0;
        self.frame.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes labels as an uncompressed wire name.
    fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in labels {
            out.push(l.len() as u8);
            out.extend_from_slice(l);
        }
        out.push(0);
        out
    }

    fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
        let mut h = Vec::new();
        for v in [id, flags, qd, an, 0, 0] {
            h.extend_from_slice(&v.to_be_bytes());
        }
        h
    }

    fn query(labels: &[&[u8]], qtype: u16) -> Vec<u8> {
        let mut m = header(0xbeef, 0x0100, 1, 0);
        m.extend(wire_name(labels));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m
    }

    fn rr(name: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut out = name.to_vec();
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        out
    }

    #[test]
    fn a_query() {
        let msg = parse_dns(&query(&[b"www", b"example", b"com"], 1)).unwrap();
        assert_eq!(msg.id, 0xbeef);
        assert!(!msg.is_response);
        assert_eq!(msg.opcode, 0);
        assert_eq!(msg.rcode, 0);
        assert!(!msg.malformed);
        assert_eq!(
            msg.questions,
            vec![DnsQuestion {
                name: "www.example.com".into(),
                qtype: "A".into()
            }]
        );
        assert!(msg.answers.is_empty());
    }

    #[test]
    fn query_types_named() {
        for (t, name) in [
            (28, "AAAA"),
            (65, "HTTPS"),
            (12, "PTR"),
            (64, "SVCB"),
            (65534, "TYPE65534"),
        ] {
            let msg = parse_dns(&query(&[b"x", b"com"], t)).unwrap();
            assert_eq!(msg.questions[0].qtype, name, "type {t}");
            assert_eq!(msg.questions[0].name, "x.com");
        }
    }

    #[test]
    fn random_case_preserved() {
        let msg = parse_dns(&query(&[b"wWw", b"ExAmPlE", b"CoM"], 1)).unwrap();
        assert_eq!(msg.questions[0].name, "wWw.ExAmPlE.CoM");
    }

    #[test]
    fn root_name() {
        let msg = parse_dns(&query(&[], 2)).unwrap();
        assert_eq!(msg.questions[0].name, "<Root>");
        assert_eq!(msg.questions[0].qtype, "NS");
    }

    #[test]
    fn response_with_cname_chain_and_compression() {
        // Question www.example.com at offset 12; answers use pointers to it
        // and to each other's rdata.
        let mut m = header(7, 0x8180, 1, 4);
        m.extend(wire_name(&[b"www", b"example", b"com"]));
        m.extend_from_slice(&[0, 1, 0, 1]);
        // CNAME www.example.com -> cdn.example.net
        let cname1_rdata_off = m.len() + 12;
        m.extend(rr(
            &[0xc0, 12],
            5,
            300,
            &wire_name(&[b"cdn", b"example", b"net"]),
        ));
        // CNAME cdn.example.net -> edge.cdn.example.net (edge + pointer)
        let mut rdata = vec![4];
        rdata.extend_from_slice(b"edge");
        rdata.extend_from_slice(&[0xc0, cname1_rdata_off as u8]);
        let cname2_rdata_off = m.len() + 12;
        m.extend(rr(&[0xc0, cname1_rdata_off as u8], 5, 60, &rdata));
        m.extend(rr(&[0xc0, cname2_rdata_off as u8], 1, 20, &[192, 0, 2, 1]));
        m.extend(rr(
            &[0xc0, cname2_rdata_off as u8],
            28,
            20,
            &Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets(),
        ));
        let msg = parse_dns(&m).unwrap();
        assert!(msg.is_response);
        assert!(!msg.malformed);
        assert_eq!(msg.questions[0].name, "www.example.com");
        let got: Vec<_> = msg
            .answers
            .iter()
            .map(|a| (a.name.as_str(), a.rtype.as_str(), a.ttl, a.data.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "www.example.com",
                    "CNAME",
                    300,
                    DnsData::Cname("cdn.example.net".into())
                ),
                (
                    "cdn.example.net",
                    "CNAME",
                    60,
                    DnsData::Cname("edge.cdn.example.net".into())
                ),
                (
                    "edge.cdn.example.net",
                    "A",
                    20,
                    DnsData::A(Ipv4Addr::new(192, 0, 2, 1))
                ),
                (
                    "edge.cdn.example.net",
                    "AAAA",
                    20,
                    DnsData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
                ),
            ]
        );
    }

    #[test]
    fn txt_ptr_and_other_answers() {
        let mut m = header(9, 0x8400, 1, 3);
        m.extend(wire_name(&[b"4", b"3", b"2", b"1", b"in-addr", b"arpa"]));
        m.extend_from_slice(&[0, 12, 0, 1]);
        m.extend(rr(&[0xc0, 12], 12, 5, &wire_name(&[b"host", b"lan"])));
        m.extend(rr(&[0xc0, 12], 16, 5, b"\x05hello\x06 world"));
        m.extend(rr(&[0xc0, 12], 15, 5, b"\x00\x0a\xc0\x0c"));
        let msg = parse_dns(&m).unwrap();
        assert_eq!(msg.questions[0].name, "4.3.2.1.in-addr.arpa");
        assert_eq!(msg.answers[0].data, DnsData::Ptr("host.lan".into()));
        assert_eq!(msg.answers[1].data, DnsData::Txt("hello world".into()));
        assert_eq!(msg.answers[2].rtype, "MX");
        assert_eq!(msg.answers[2].data, DnsData::Other);
    }

    #[test]
    fn opcode_rcode_from_header() {
        // Response, opcode 5 (UPDATE), rcode 3 (NXDOMAIN).
        let mut m = header(1, 0x8000 | (5 << 11) | 3, 1, 0);
        m.extend(wire_name(&[b"a", b"b"]));
        m.extend_from_slice(&[0, 6, 0, 1]);
        let msg = parse_dns(&m).unwrap();
        assert_eq!((msg.opcode, msg.rcode), (5, 3));
    }

    #[test]
    fn fallback_keeps_names_simple_dns_rejects() {
        // Unknown class 0x1234 and reserved Z bit: simple-dns rejects both.
        let mut m = header(1, 0x0140, 1, 0);
        m.extend(wire_name(&[b"odd", b"example"]));
        m.extend_from_slice(&[0xff, 0xfe, 0x12, 0x34]);
        assert!(simple_dns::Packet::parse(&m).is_err());
        let msg = parse_dns(&m).unwrap();
        assert_eq!(msg.questions[0].name, "odd.example");
        assert_eq!(msg.questions[0].qtype, "TYPE65534");
        assert!(!msg.malformed);
    }

    #[test]
    fn forward_pointer_followed() {
        // Question name "fwd" + pointer to a name stored after the question.
        let mut m = header(1, 0x0100, 1, 0);
        m.extend_from_slice(b"\x03fwd\xc0\x16");
        m.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(m.len(), 22);
        m.extend(wire_name(&[b"target", b"org"]));
        let msg = parse_dns(&m).unwrap();
        assert_eq!(msg.questions[0].name, "fwd.target.org");
    }

    #[test]
    fn pointer_loops_named_like_wireshark() {
        // Self pointer.
        let mut m = header(1, 0x0100, 1, 0);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_dns(&m).unwrap().questions[0].name, NAME_POINTER_LOOP);
        // Label then pointer back to the label: a.a.a.… forever.
        let mut m = header(1, 0x0100, 1, 0);
        m.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        let msg = parse_dns(&m).unwrap();
        assert_eq!(msg.questions[0].name, NAME_POINTER_LOOP);
        assert_eq!(
            msg.questions[0].qtype, "A",
            "type read after the first pointer"
        );
        // Two pointers pointing at each other, in the answer section.
        let mut m = header(1, 0x8000, 1, 1);
        m.extend(wire_name(&[b"q"]));
        m.extend_from_slice(&[0, 1, 0, 1]);
        let p = m.len() as u8;
        m.extend(rr(&[0xc0, p + 2, 0xc0, p], 1, 1, &[1, 2, 3, 4]));
        let msg = parse_dns(&m).unwrap();
        assert_eq!(msg.answers[0].name, NAME_POINTER_LOOP);
    }

    #[test]
    fn pointer_loops_bounded_work() {
        // Many questions all pointing into a long looping chain of labels:
        // must finish quickly (work limit), not hang.
        let qd = 2000u16;
        let mut m = header(1, 0x0100, qd, 0);
        let chain_start = 12 + usize::from(qd) * 6;
        for _ in 0..qd {
            m.extend_from_slice(&[
                0xc0 | (chain_start >> 8) as u8,
                chain_start as u8,
                0,
                1,
                0,
                1,
            ]);
        }
        for _ in 0..3000 {
            m.extend_from_slice(&[1, b'x']);
        }
        m.extend_from_slice(&[0xc0 | (chain_start >> 8) as u8, chain_start as u8]);
        let start = std::time::Instant::now();
        let msg = parse_dns(&m).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert!(msg.malformed, "work limit reached");
        assert!(!msg.questions.is_empty());
        assert_eq!(msg.questions[0].name, NAME_POINTER_LOOP);
    }

    #[test]
    fn name_length_limits() {
        let a63 = [b'a'; 63];
        let b61 = [b'b'; 61];
        let b62 = [b'b'; 62];
        // 253 characters: shown in full.
        let msg = parse_dns(&query(&[&a63, &a63, &a63, &b61], 1)).unwrap();
        assert_eq!(msg.questions[0].name.len(), 253);
        // 254 characters: Wireshark's "<Name too long>".
        let msg = parse_dns(&query(&[&a63, &a63, &a63, &b62], 1)).unwrap();
        assert_eq!(msg.questions[0].name, NAME_TOO_LONG);
    }

    #[test]
    fn escaping_matches_wireshark() {
        // Expected strings are tshark 4.0.17 output for the same labels.
        let cases: &[(&[&[u8]], &str)] = &[
            (&[b"a.b", b"com"], "a.b.com"),
            (&[b"a\\b", b"com"], "a\\b.com"),
            (&[b"sp ace", b"com"], "sp ace.com"),
            (
                &[b"ctl\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f", b"com"],
                "ctl\\001\\a\\b\\t\\n\\v\\f\\r\\037\\177.com",
            ),
            (&[b"nul\x00x", b"com"], "nul\\000x.com"),
            (&["caf\u{e9}".as_bytes(), b"com"], "caf\u{e9}.com"),
            (&[b"bad\xff\xfe", b"com"], "bad\u{fffd}\u{fffd}.com"),
            (&[b"trunc\xc3", b"com"], "trunc\u{fffd}.com"),
            (&[b"cont\x80x", b"com"], "cont\u{fffd}x.com"),
            (&["zw\u{200b}j".as_bytes(), b"com"], "zw\\u200Bj.com"),
            (&["x\u{85}y".as_bytes(), b"com"], "x\\u0085y.com"),
            (&["pu\u{e000}a".as_bytes(), b"com"], "pu\u{e000}a.com"),
            (&[b"over\xc0\xaelong", b"com"], "over.long.com"),
            (&[b"ovc\xc0\x81", b"com"], "ovc\\u0001.com"),
            (&[b"sur\xed\xa0\x80", b"com"], "sur\u{fffd}.com"),
            (&["\u{1f600}e".as_bytes(), b"com"], "\u{1f600}e.com"),
            (&["tag\u{e0041}".as_bytes()], "tag\\U000E0041"),
        ];
        for (labels, want) in cases {
            let msg = parse_dns(&query(labels, 1)).unwrap();
            assert_eq!(&msg.questions[0].name, want, "labels {labels:?}");
            // The fallback parser renders identically.
            let mut reader = NameReader {
                msg: &query(labels, 1),
                work_left: NAME_WORK_LIMIT,
            };
            assert_eq!(&reader.read(12).unwrap().0, want);
        }
    }

    #[test]
    fn wireshark_corner_cases() {
        // Expected values are tshark 4.0.17 output for the same bytes.
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len() / 2)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
                .collect()
        };
        let names = |m: &DnsMessage| -> Vec<String> {
            m.questions.iter().map(|q| q.name.clone()).collect()
        };
        // Bit-string label: printed, but not counted in the visible length.
        let m = parse_dns(&hex("0001010000010000000000004110abcd016101620000010001")).unwrap();
        assert_eq!(names(&m), ["\\[xa"]);
        // A bare pointer to a name whose first byte is NUL is "<Root>".
        let m = parse_dns(&hex("0001010000020000000000000200780000010001c00c00010001")).unwrap();
        assert_eq!(names(&m), ["\\000x", "<Root>"]);
        // A pointer to 2 bytes past its own end counts as a loop.
        let m = parse_dns(&hex("0001010000010000000000000161c01200010001")).unwrap();
        assert_eq!(names(&m), [NAME_POINTER_LOOP]);
    }

    #[test]
    fn truncated_messages() {
        let full = query(&[b"www", b"example", b"com"], 1);
        for cut in 0..full.len() {
            let r = parse_dns(&full[..cut]);
            assert!(r.is_err(), "cut at {cut} gave {r:?}");
        }
        assert_eq!(parse_dns(&full[..5]), Err(DnsError::TooShort(5)));
        // Header only with zero counts is a valid (empty) message.
        let msg = parse_dns(&header(3, 0, 0, 0)).unwrap();
        assert!(msg.questions.is_empty() && !msg.malformed);
    }

    #[test]
    fn truncated_answers_keep_question() {
        let mut m = header(1, 0x8180, 1, 2);
        m.extend(wire_name(&[b"kept", b"example"]));
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend(rr(&[0xc0, 12], 1, 9, &[10, 0, 0, 1]));
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0]); // second answer cut short
        let msg = parse_dns(&m).unwrap();
        assert!(msg.malformed);
        assert_eq!(msg.questions[0].name, "kept.example");
        assert_eq!(msg.answers.len(), 1);
        assert_eq!(msg.answers[0].data, DnsData::A(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn reserved_label_type_is_error() {
        let mut m = header(1, 0x0100, 1, 0);
        m.extend_from_slice(&[1, b'a', 0x80, 0, 0, 1, 0, 1]);
        assert_eq!(
            parse_dns(&m),
            Err(DnsError::Malformed("reserved label type 0x80"))
        );
        // Unknown extended label type: Wireshark's pseudo-name, and the name
        // ends right after that label byte (here: label "a", then 0x42).
        let mut m = header(1, 0x0100, 1, 0);
        m.extend_from_slice(&[1, b'a', 0x42, 0, 28, 0, 1]);
        let msg = parse_dns(&m).unwrap();
        assert_eq!(msg.questions[0].name, NAME_UNKNOWN_EXTENDED_LABEL);
        assert_eq!(msg.questions[0].qtype, "AAAA");
        // ... but as the very first byte it is malformed (name shorter than 2).
        let mut m = header(1, 0x0100, 1, 0);
        m.extend_from_slice(&[0x42, 0, 1, 0, 1]);
        assert_eq!(parse_dns(&m), Err(DnsError::Malformed("extended label")));
    }

    #[test]
    fn junk_never_panics() {
        // Deterministic pseudo-random junk, plus mutations of a valid response.
        let mut seed = 0x1234_5678_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..3000 {
            let len = (next() % 300) as usize;
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse_dns(&junk);
        }
        let mut base = header(7, 0x8180, 1, 1);
        base.extend(wire_name(&[b"www", b"example", b"com"]));
        base.extend_from_slice(&[0, 1, 0, 1]);
        base.extend(rr(&[0xc0, 12], 1, 300, &[1, 2, 3, 4]));
        for _ in 0..3000 {
            let mut m = base.clone();
            for _ in 0..3 {
                let i = next() as usize % m.len();
                m[i] = next() as u8;
            }
            let _ = parse_dns(&m);
        }
        assert!(parse_dns(&[0xff; 11]).is_err());
    }

    fn frames(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut stream = Vec::new();
        for m in msgs {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        stream
    }

    #[test]
    fn tcp_framing_split_at_every_position() {
        let m1 = query(&[b"one", b"example"], 1);
        let m2 = query(&[b"two", b"example"], 28);
        let stream = frames(&[m1, m2]);
        for split in 0..=stream.len() {
            let mut framer = DnsTcpFramer::new();
            let mut out = Vec::new();
            framer.push(&stream[..split], &mut out);
            framer.push(&stream[split..], &mut out);
            let names: Vec<_> = out
                .iter()
                .map(|r| r.as_ref().unwrap().questions[0].name.clone())
                .collect();
            assert_eq!(names, ["one.example", "two.example"], "split {split}");
        }
        // Byte by byte.
        let mut framer = DnsTcpFramer::new();
        let mut out = Vec::new();
        for b in &stream {
            framer.push(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].as_ref().unwrap().questions[0].qtype, "AAAA");
    }

    #[test]
    fn tcp_framing_errors_and_gaps() {
        let m1 = query(&[b"one", b"example"], 1);
        let mut framer = DnsTcpFramer::new();
        let mut out = Vec::new();
        // Empty frame, then a junk frame, then a good one.
        framer.push(&[0, 0, 0, 3, 1, 2, 3], &mut out);
        framer.push(&frames(std::slice::from_ref(&m1)), &mut out);
        assert_eq!(out[0], Err(DnsError::EmptyFrame));
        assert_eq!(out[1], Err(DnsError::TooShort(3)));
        assert_eq!(out[2].as_ref().unwrap().questions[0].name, "one.example");
        // Gap in the middle of a frame: discarded, reported, then resync on
        // the next pushed frame.
        out.clear();
        let stream = frames(std::slice::from_ref(&m1));
        framer.push(&stream[..10], &mut out);
        framer.gap();
        framer.push(&stream, &mut out);
        assert_eq!(out[0], Err(DnsError::Gap(10)));
        assert_eq!(out[1].as_ref().unwrap().questions[0].name, "one.example");
        assert_eq!(out.len(), 2);
        // Largest possible frame is buffered and parsed.
        out.clear();
        let mut big = query(&[b"big"], 1);
        big.resize(65535, 0);
        let stream = frames(&[big]);
        framer.push(&stream[..30000], &mut out);
        framer.push(&stream[30000..], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().questions[0].name, "big");
        assert!(framer.frame.capacity() <= 65535);
    }
}

/// Whether a UDP payload on a port with no known protocol looks like a DNS message.
///
/// The same rules as Wireshark's DNS heuristic (tshark applies it to UDP ports that no dissector claims), so
/// that both tools recognise DNS on non-standard ports alike: a header plus something; a query is a standard
/// query with exactly one question and no answer or authority records; a response has at most one question
/// and at most 10 answer and 10 authority records; at most 10 additional records; questions and answers are not
/// both absent; and the message is long enough to hold the records it announces.
pub fn looks_like_dns(payload: &[u8]) -> bool {
    let Some(h) = payload.get(..12) else {
        return false;
    };
    if payload.len() <= 12 {
        return false;
    }
    let word = |i: usize| u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
    let (flags, quest, ans, auth, add) = (word(2), word(4), word(6), word(8), word(10));
    if flags & 0x8000 == 0 {
        if (flags >> 11) & 0xf != 0 || quest != 1 || ans != 0 || auth != 0 {
            return false;
        }
    } else if quest > 1 || ans > 10 || auth > 10 {
        return false;
    }
    if add > 10 || quest + ans == 0 {
        return false;
    }
    (quest * 6 + (ans + auth + add) * 11) as usize <= payload.len() - 12
}

#[cfg(test)]
mod heuristic_tests {
    use super::looks_like_dns;

    #[test]
    fn heuristic_accepts_queries_and_rejects_noise() {
        // id, flags (RD), 1 question, no records, "a.example" A IN
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x01a\x07example\x00\x00\x01\x00\x01");
        assert!(looks_like_dns(&q));
        let mut two = q.clone();
        two[5] = 2;
        assert!(!looks_like_dns(&two), "a query with two questions");
        assert!(!looks_like_dns(&q[..12]), "a bare header");
        assert!(
            !looks_like_dns(&[0u8; 64]),
            "zeros: no question and no answer"
        );
        let mut resp = q.clone();
        resp[2] = 0x81;
        resp[7] = 11;
        assert!(!looks_like_dns(&resp), "eleven answers");
    }
}
