//! Test helpers shared by the DNS unit tests: building wire names, headers, queries and records.

/// Encodes labels as an uncompressed wire name.
pub(crate) fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

pub(crate) fn header(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
    let mut h = Vec::new();
    for v in [id, flags, qd, an, 0, 0] {
        h.extend_from_slice(&v.to_be_bytes());
    }
    h
}

pub(crate) fn query(labels: &[&[u8]], qtype: u16) -> Vec<u8> {
    let mut m = header(0xbeef, 0x0100, 1, 0);
    m.extend(wire_name(labels));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m
}

pub(crate) fn rr(name: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut out = name.to_vec();
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
    out
}
