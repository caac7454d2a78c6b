//! One DNS message: the header, the question section and the answer section (A, AAAA, CNAME,
//! PTR and TXT data; other types kept as [`DnsData::Other`]), read the way Wireshark reads them,
//! and the heuristic that recognises DNS on a port no other protocol claims.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::name::NameReader;
use super::DnsError;

/// Length of the fixed DNS header.
const HEADER_LEN: usize = 12;

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
    /// Any other type, empty data, or data of the wrong size for its type.
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
    let header = read_header(payload)?;
    let mut reader = NameReader::new(payload);
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

/// Header fields read from the first 12 bytes.
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
        // Empty data holds no value, whatever the type.
        _ if rdata.is_empty() => DnsData::Other,
        1 => <[u8; 4]>::try_from(rdata).map_or(DnsData::Other, |b| DnsData::A(Ipv4Addr::from(b))),
        28 => {
            <[u8; 16]>::try_from(rdata).map_or(DnsData::Other, |b| DnsData::Aaaa(Ipv6Addr::from(b)))
        }
        5 | 12 => {
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
mod tests {
    use super::*;
    use crate::proto::dns::testutil::*;

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
    fn data_of_the_wrong_size_or_empty_is_other() {
        let mut m = header(1, 0x8180, 1, 3);
        m.extend(wire_name(&[b"w", b"example"]));
        m.extend_from_slice(&[0, 1, 0, 1]);
        m.extend(rr(&[0xc0, 12], 1, 9, &[10, 0, 0, 1, 0]));
        m.extend(rr(&[0xc0, 12], 28, 9, &[1; 15]));
        m.extend(rr(&[0xc0, 12], 16, 9, b""));
        let msg = parse_dns(&m).unwrap();
        assert!(!msg.malformed);
        let data: Vec<_> = msg.answers.iter().map(|a| a.data.clone()).collect();
        assert_eq!(data, [DnsData::Other, DnsData::Other, DnsData::Other]);
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
    fn keeps_names_simple_dns_rejects() {
        // Unknown class 0x1234 and reserved Z bit: simple-dns (which builds DNS messages
        // elsewhere in telltale) rejects both, Wireshark reads the question.
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
