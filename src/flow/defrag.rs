//! IPv4 fragment reassembly (sans-IO, bounded).
//!
//! Fragments are grouped by (source, destination, protocol, identification); when the last fragment has arrived
//! and the payload is covered without holes, the whole datagram is rebuilt (the first fragment's header with the
//! fragment fields cleared and the total length corrected) and handed back as a raw IPv4 packet, which the caller
//! decodes like any other. Memory is bounded: at most [`MAX_PENDING`] datagrams of at most 64 KiB each are held;
//! the oldest are dropped (and counted) beyond that.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

/// Datagrams held while waiting for their fragments.
pub const MAX_PENDING: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
}

#[derive(Debug, Default)]
struct Pending {
    header: Vec<u8>,
    /// (offset, bytes) of every fragment payload received.
    parts: Vec<(usize, Vec<u8>)>,
    /// Payload length, known once the last fragment (MF = 0) arrived.
    total: Option<usize>,
    bytes: usize,
}

/// Reassembles IPv4 fragments.
#[derive(Debug, Default)]
pub struct Defragmenter {
    pending: FxHashMap<Key, Pending>,
    order: VecDeque<Key>,
    /// Datagrams dropped because too many were pending or they were malformed.
    pub dropped: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
}

impl Defragmenter {
    /// Takes one IPv4 fragment as its header (options included) and captured payload. Returns the reassembled
    /// datagram (a raw IPv4 packet) when this fragment completes one; `None` while fragments are missing, or
    /// when it is not an IPv4 fragment.
    pub fn push(&mut self, ip: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
        let ihl = usize::from(*ip.first()? & 0x0f) * 4;
        if ip.first()? >> 4 != 4 || ihl < 20 || ip.len() < ihl {
            return None;
        }
        let flags_off = u16::from_be_bytes([ip[6], ip[7]]);
        let more = flags_off & 0x2000 != 0;
        let offset = usize::from(flags_off & 0x1fff) * 8;
        if !more && offset == 0 {
            return None; // not a fragment
        }
        let key = Key {
            src: [ip[12], ip[13], ip[14], ip[15]],
            dst: [ip[16], ip[17], ip[18], ip[19]],
            proto: ip[9],
            id: u16::from_be_bytes([ip[4], ip[5]]),
        };
        if offset + payload.len() > 65_535 {
            self.dropped += 1;
            return None;
        }
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_PENDING {
                if let Some(old) = self.order.pop_front() {
                    self.pending.remove(&old);
                    self.dropped += 1;
                }
            }
            self.order.push_back(key);
        }
        let p = self.pending.entry(key).or_default();
        if offset == 0 {
            p.header = ip.get(..ihl)?.to_vec();
        }
        if !more {
            p.total = Some(offset + payload.len());
        }
        p.bytes += payload.len();
        p.parts.push((offset, payload.to_vec()));
        let total = p.total?;
        if p.header.is_empty() || p.bytes < total {
            return None;
        }
        // Check coverage without holes, then assemble (first data wins on overlaps).
        p.parts.sort_by_key(|(o, _)| *o);
        let mut covered = 0;
        for (o, d) in &p.parts {
            if *o > covered {
                return None;
            }
            covered = covered.max(o + d.len());
        }
        if covered < total {
            return None;
        }
        let p = self.pending.remove(&key)?;
        self.order.retain(|k| *k != key);
        let mut out = p.header;
        let hl = out.len();
        out.resize(hl + total, 0);
        let mut filled = 0;
        for (o, d) in &p.parts {
            let end = (o + d.len()).min(total);
            if end > filled {
                let from = filled.max(*o);
                out[hl + from..hl + end].copy_from_slice(&d[from - o..end - o]);
                filled = end;
            }
        }
        let len = u16::try_from(out.len()).unwrap_or(u16::MAX);
        out[2..4].copy_from_slice(&len.to_be_bytes());
        out[6] = 0;
        out[7] = 0;
        out[10] = 0;
        out[11] = 0; // checksum not recomputed: nothing downstream verifies it
        self.reassembled += 1;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(id: u16, offset: usize, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (20 + payload.len()) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&id.to_be_bytes());
        let fo = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fo.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn push(d: &mut Defragmenter, f: &[u8]) -> Option<Vec<u8>> {
        d.push(&f[..20], &f[20..])
    }

    #[test]
    fn reassembles_in_any_order() {
        let data: Vec<u8> = (0..64u8).collect();
        let frags = [
            fragment(7, 0, true, &data[..24]),
            fragment(7, 24, true, &data[24..48]),
            fragment(7, 48, false, &data[48..]),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut d = Defragmenter::default();
            let mut out = None;
            for i in order {
                assert!(out.is_none());
                out = d.push(&frags[i][..20], &frags[i][20..]);
            }
            let ip = out.expect("complete");
            assert_eq!(&ip[20..], &data[..]);
            assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 84);
            assert_eq!(ip[6] & 0x3f, 0);
        }
    }

    #[test]
    fn holes_keep_waiting_and_pending_is_bounded() {
        let mut d = Defragmenter::default();
        assert!(push(&mut d, &fragment(1, 0, true, &[0; 16])).is_none());
        assert!(
            push(&mut d, &fragment(1, 24, false, &[0; 8])).is_none(),
            "bytes 16..24 missing"
        );
        for id in 2..(MAX_PENDING as u16 + 10) {
            push(&mut d, &fragment(id, 0, true, &[0; 8]));
        }
        // 1 + 264 datagrams started, 256 kept: the 9 oldest (id 1 first) were dropped.
        assert_eq!(d.pending.len(), MAX_PENDING);
        assert_eq!(d.dropped, 9);
        assert!(
            push(&mut d, &fragment(1, 16, true, &[0; 8])).is_none(),
            "id 1 was dropped: its hole being filled completes nothing"
        );
    }

    #[test]
    fn non_fragments_and_junk_are_ignored() {
        let mut d = Defragmenter::default();
        let whole = fragment(3, 0, false, b"abc");
        assert!(push(&mut d, &whole).is_none());
        assert!(d.push(&whole[..10], &[]).is_none());
        assert!(d.push(&[], &[]).is_none());
        assert!(d.push(&[0x46; 30], &[1, 2]).is_none());
    }
}
