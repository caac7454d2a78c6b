//! DNS message parsing (UDP payloads and DNS-over-TCP framing).
//!
//! This module owns turning one DNS message into a [`DnsMessage`]: header
//! fields, the question section and the answer section (A, AAAA, CNAME, PTR
//! and TXT data; other record types are kept as [`DnsData::Other`]).
//! [`DnsTcpFramer`] splits a DNS-over-TCP byte stream (RFC 1035 §4.2.2,
//! 2-byte length prefix) into messages.
//!
//! Files: `message` reads the header, questions and answers (and holds the
//! DNS-on-any-port heuristic), `name` decompresses and renders names, `tcp`
//! frames DNS over TCP.
//!
//! There is one parser, written here after Wireshark's DNS dissector, not
//! `simple-dns` (which telltale uses to build DNS messages): that crate is
//! strict and rejects, for example, unknown query types (`TYPE65534`),
//! unknown classes, forward compression pointers, names of 254+ characters
//! and a set reserved header bit, while Wireshark still reports the header,
//! the questions and the answers of such messages. The parser here reads
//! those as well as well-formed messages, so that a query name is reported
//! wherever Wireshark reports one.
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

mod message;
mod name;
mod tcp;
#[cfg(test)]
mod testutil;
pub mod zone;

pub use message::{looks_like_dns, parse_dns, DnsAnswer, DnsData, DnsMessage, DnsQuestion};
pub use name::{NAME_POINTER_LOOP, NAME_TOO_LONG, NAME_UNKNOWN_EXTENDED_LABEL, ROOT_NAME};
pub use tcp::DnsTcpFramer;
pub use zone::zone_of;

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
