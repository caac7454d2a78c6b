//! TCP stream reassembly for one direction of a connection (sans-IO).
//!
//! Written for telltale because no maintained crate offers what the analysis needs: a pure, push-based
//! reassembler that accepts segments in capture order and delivers the byte stream in order, zero-copy on the
//! common in-order path, that survives everything real captures contain — out-of-order segments,
//! retransmissions, overlaps, streams that start mid-way, sequence wrap-around, snap-length truncation and
//! capture loss — and that reports gaps explicitly (so parsers can skip or resync) instead of stalling or buffering
//! without limit.
//!
//! Model: the stream has absolute 64-bit offsets; 32-bit sequence numbers are unwrapped against the next
//! expected offset. Data before the next expected offset has been delivered already (first data wins;
//! retransmitted bytes are counted and dropped). Data after it waits in a bounded map; when the map exceeds its
//! cap, or at the end of the stream, the hole before the first waiting segment is declared a gap.

use std::collections::BTreeMap;

/// One piece of the in-order stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Contiguous bytes starting at the stream's current offset, first carried by frame `packet`.
    Data {
        /// The bytes.
        data: &'a [u8],
        /// Frame number that carried them.
        packet: u64,
    },
    /// `len` bytes of the stream were never seen (capture loss, truncation, or skipped after the cap).
    Gap(u64),
}

/// Counters reported per flow direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReassemblyStats {
    /// Bytes delivered in order.
    pub delivered: u64,
    /// Bytes seen again (retransmissions and overlaps), dropped.
    pub retransmitted: u64,
    /// Segments that arrived ahead of a hole and had to wait.
    pub out_of_order: u64,
    /// Number of gaps declared.
    pub gaps: u64,
    /// Bytes lost in gaps.
    pub gap_bytes: u64,
    /// Times the out-of-order buffer hit its cap and a hole was skipped.
    pub cap_hits: u64,
    /// The stream began without a SYN (capture started mid-connection).
    pub started_midstream: bool,
    /// Segments ignored because their sequence number was implausibly far away.
    pub bogus_segments: u64,
}

/// One TCP segment as seen in the capture.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// SYN flag (consumes one sequence number; data starts after it).
    pub syn: bool,
    /// FIN flag (the stream ends after this segment's data).
    pub fin: bool,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Payload bytes that followed `payload` on the wire but were not captured (snap length).
    pub missing: u32,
    /// Frame number.
    pub packet: u64,
}

struct Piece {
    data: Vec<u8>,
    /// Bytes after `data` that were on the wire but not captured.
    missing: u64,
    packet: u64,
}

/// Segments farther than this ahead of the next expected byte are treated as bogus.
const MAX_AHEAD: u64 = 1 << 30;

/// Reassembles one direction of a TCP connection.
pub struct Reassembler {
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    /// Next expected stream offset.
    next: u64,
    pending: BTreeMap<u64, Piece>,
    pending_bytes: usize,
    cap: usize,
    fin_at: Option<u64>,
    stats: ReassemblyStats,
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("next", &self.next)
            .field("pending", &self.pending.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Reassembler {
    /// A reassembler whose out-of-order buffer holds at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Reassembler {
            base: None,
            next: 0,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            cap,
            fin_at: None,
            stats: ReassemblyStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Bytes currently waiting out of order.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Next expected stream offset (= bytes delivered + gap bytes).
    pub fn offset(&self) -> u64 {
        self.next
    }

    /// True once everything up to the FIN has been delivered.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.next >= f)
    }

    /// Feeds one segment.
    pub fn segment(&mut self, seg: Segment<'_>, out: &mut dyn FnMut(Chunk<'_>)) {
        let Segment {
            seq,
            syn,
            fin,
            payload,
            missing,
            packet,
        } = seg;
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let base = match self.base {
            Some(b) => b,
            None => {
                if !syn && payload.is_empty() && missing == 0 && !fin {
                    return; // a bare ACK says nothing about where the stream starts
                }
                self.stats.started_midstream = !syn;
                self.base = Some(data_seq);
                data_seq
            }
        };
        let rel = data_seq.wrapping_sub(base);
        // Unwrap the 32-bit relative sequence number against the next expected offset.
        let diff = i64::from(rel.wrapping_sub(self.next as u32) as i32);
        let start = self.next as i64 + diff;
        let len = payload.len() as u64 + u64::from(missing);
        if fin {
            let end = (start + len as i64).max(0) as u64;
            self.fin_at = Some(self.fin_at.map_or(end, |f| f.min(end)));
        }
        if len == 0 {
            return;
        }
        if start < 0 {
            // Entirely or partly before offset 0 (a mid-stream capture saw a later segment first).
            let skip = (-start) as u64;
            if skip >= len {
                self.stats.retransmitted += len;
                return;
            }
            self.stats.retransmitted += skip;
            return self.place(0, payload, u64::from(missing), skip, packet, out);
        }
        let start = start as u64;
        if start > self.next.saturating_add(MAX_AHEAD) {
            self.stats.bogus_segments += 1;
            return;
        }
        self.place(start, payload, u64::from(missing), 0, packet, out);
    }

    /// Places `payload[skip..]` (+ `missing` uncaptured bytes) at stream offset `start + skip`.
    fn place(
        &mut self,
        start: u64,
        payload: &[u8],
        missing: u64,
        skip: u64,
        packet: u64,
        out: &mut dyn FnMut(Chunk<'_>),
    ) {
        let mut start = start;
        let mut payload = payload;
        let mut missing = missing;
        // Trim what was already delivered.
        let already = self.next.saturating_sub(start).max(skip);
        if already > 0 {
            let total = payload.len() as u64 + missing;
            if already >= total {
                self.stats.retransmitted += total;
                return;
            }
            self.stats.retransmitted += already.saturating_sub(skip);
            let cut = already.min(payload.len() as u64) as usize;
            payload = &payload[cut..];
            missing -= already - cut as u64;
            start += already;
        }
        if start == self.next {
            self.emit(payload, missing, packet, out);
            self.drain(out);
        } else {
            self.stats.out_of_order += 1;
            let keep = match self.pending.get(&start) {
                Some(p) => (p.data.len() as u64 + p.missing) < payload.len() as u64 + missing,
                None => true,
            };
            if keep {
                if let Some(old) = self.pending.insert(
                    start,
                    Piece {
                        data: payload.to_vec(),
                        missing,
                        packet,
                    },
                ) {
                    self.pending_bytes -= old.data.len();
                }
                self.pending_bytes += payload.len();
            } else {
                self.stats.retransmitted += payload.len() as u64 + missing;
            }
            while self.pending_bytes > self.cap {
                self.stats.cap_hits += 1;
                if !self.skip_to_first_pending(out) {
                    break;
                }
            }
        }
    }

    fn emit(&mut self, data: &[u8], missing: u64, packet: u64, out: &mut dyn FnMut(Chunk<'_>)) {
        if !data.is_empty() {
            out(Chunk::Data { data, packet });
            self.next += data.len() as u64;
            self.stats.delivered += data.len() as u64;
        }
        if missing > 0 {
            out(Chunk::Gap(missing));
            self.next += missing;
            self.stats.gaps += 1;
            self.stats.gap_bytes += missing;
        }
    }

    /// Delivers waiting pieces that have become contiguous.
    fn drain(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let at = *entry.key();
            if at > self.next {
                break;
            }
            let piece = entry.remove();
            self.pending_bytes -= piece.data.len();
            let total = piece.data.len() as u64 + piece.missing;
            let already = self.next - at;
            if already >= total {
                self.stats.retransmitted += total;
                continue;
            }
            self.stats.retransmitted += already;
            let cut = already.min(piece.data.len() as u64) as usize;
            let missing = piece.missing - (already - cut as u64);
            self.emit(&piece.data[cut..], missing, piece.packet, out);
        }
    }

    /// Declares the hole before the first waiting piece a gap. Returns false when nothing waits.
    fn skip_to_first_pending(&mut self, out: &mut dyn FnMut(Chunk<'_>)) -> bool {
        let Some((&at, _)) = self.pending.first_key_value() else {
            return false;
        };
        if at > self.next {
            let hole = at - self.next;
            out(Chunk::Gap(hole));
            self.stats.gaps += 1;
            self.stats.gap_bytes += hole;
            self.next = at;
        }
        self.drain(out);
        true
    }

    /// End of the stream (FIN, RST or end of capture): skips every remaining hole and delivers what waits.
    pub fn flush(&mut self, out: &mut dyn FnMut(Chunk<'_>)) {
        while self.skip_to_first_pending(out) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects output as (bytes, gaps) with gaps rendered as '#' per byte for easy comparison.
    fn run(r: &mut Reassembler, segs: &[(u32, bool, bool, &[u8], u32)]) -> (Vec<u8>, u64) {
        let mut bytes = Vec::new();
        let mut gaps = 0;
        for (i, (seq, syn, fin, p, miss)) in segs.iter().enumerate() {
            let seg = Segment {
                seq: *seq,
                syn: *syn,
                fin: *fin,
                payload: p,
                missing: *miss,
                packet: i as u64 + 1,
            };
            r.segment(seg, &mut |c| match c {
                Chunk::Data { data, .. } => bytes.extend_from_slice(data),
                Chunk::Gap(n) => {
                    gaps += n;
                    bytes.extend(std::iter::repeat_n(b'#', n as usize));
                }
            });
        }
        r.flush(&mut |c| match c {
            Chunk::Data { data, .. } => bytes.extend_from_slice(data),
            Chunk::Gap(n) => {
                gaps += n;
                bytes.extend(std::iter::repeat_n(b'#', n as usize));
            }
        });
        (bytes, gaps)
    }

    #[test]
    fn in_order_with_syn() {
        let mut r = Reassembler::new(1 << 20);
        let (b, g) = run(
            &mut r,
            &[
                (100, true, false, b"", 0),
                (101, false, false, b"hello ", 0),
                (107, false, true, b"world", 0),
            ],
        );
        assert_eq!(b, b"hello world");
        assert_eq!(g, 0);
        assert!(r.finished());
        assert!(!r.stats().started_midstream);
    }

    #[test]
    fn reordered_and_retransmitted() {
        let mut r = Reassembler::new(1 << 20);
        let (b, g) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (7, false, false, b"world", 0),
                (1, false, false, b"hello ", 0),
                (1, false, false, b"hello ", 0),
                (7, false, false, b"world", 0),
                (12, false, false, b"!", 0),
            ],
        );
        assert_eq!(b, b"hello world!");
        assert_eq!(g, 0);
        assert_eq!(r.stats().retransmitted, 11);
        assert_eq!(r.stats().out_of_order, 1);
    }

    #[test]
    fn overlaps_keep_first_data() {
        let mut r = Reassembler::new(1 << 20);
        // "abcdef" then an overlapping "XXXghi" at offset 3: first data wins for "def".
        let (b, _) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (1, false, false, b"abcdef", 0),
                (4, false, false, b"XXXghi", 0),
            ],
        );
        assert_eq!(b, b"abcdefghi");
        // Pending overlap: two waiting pieces overlapping each other.
        let mut r = Reassembler::new(1 << 20);
        let (b, _) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (5, false, false, b"efgh", 0),
                (3, false, false, b"cdEF", 0),
                (1, false, false, b"ab", 0),
            ],
        );
        assert_eq!(b, b"abcdEFgh");
    }

    #[test]
    fn sequence_wraparound() {
        let mut r = Reassembler::new(1 << 20);
        let isn = u32::MAX - 3;
        let (b, g) = run(
            &mut r,
            &[
                (isn, true, false, b"", 0),
                (isn.wrapping_add(1), false, false, b"abcdef", 0),
                (isn.wrapping_add(7), false, false, b"ghij", 0),
            ],
        );
        assert_eq!(b, b"abcdefghij");
        assert_eq!(g, 0);
    }

    #[test]
    fn midstream_start() {
        let mut r = Reassembler::new(1 << 20);
        let (b, _) = run(
            &mut r,
            &[
                (5000, false, false, b"", 0),
                (5000, false, false, b"middle", 0),
                (5006, false, false, b"-end", 0),
            ],
        );
        assert_eq!(b, b"middle-end");
        assert!(r.stats().started_midstream);
    }

    #[test]
    fn gap_at_end_is_flushed_as_gap() {
        let mut r = Reassembler::new(1 << 20);
        let (b, g) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (1, false, false, b"ab", 0),
                (6, false, false, b"fg", 0),
            ],
        );
        assert_eq!(b, b"ab###fg");
        assert_eq!(g, 3);
        assert_eq!(r.stats().gaps, 1);
    }

    #[test]
    fn truncated_payload_becomes_gap_in_place() {
        let mut r = Reassembler::new(1 << 20);
        let (b, g) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (1, false, false, b"ab", 3),
                (6, false, false, b"fg", 0),
            ],
        );
        assert_eq!(b, b"ab###fg");
        assert_eq!(g, 3);
    }

    #[test]
    fn cap_forces_gap_and_reports() {
        let mut r = Reassembler::new(8);
        let (b, g) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (3, false, false, b"cdef", 0),
                (7, false, false, b"ghij", 0),
                (11, false, false, b"k", 0),
            ],
        );
        assert_eq!(b, b"##cdefghijk");
        assert_eq!(g, 2);
        assert!(r.stats().cap_hits >= 1);
        assert!(r.pending_bytes() == 0);
    }

    #[test]
    fn bogus_far_segment_ignored() {
        let mut r = Reassembler::new(1 << 20);
        let (b, _) = run(
            &mut r,
            &[
                (0, true, false, b"", 0),
                (1, false, false, b"ok", 0),
                (1u32 << 31, false, false, b"zz", 0),
            ],
        );
        assert_eq!(b, b"ok");
        assert_eq!(r.stats().bogus_segments, 1);
    }

    #[test]
    fn every_permutation_of_small_segments_yields_the_stream() {
        let text = b"the quick brown fox jumps";
        let segs: Vec<(u32, &[u8])> = text
            .chunks(5)
            .enumerate()
            .map(|(i, c)| (1 + 5 * i as u32, c))
            .collect();
        // All rotations and the reverse order.
        let n = segs.len();
        let mut orders: Vec<Vec<usize>> = (0..n)
            .map(|k| (0..n).map(|i| (i + k) % n).collect())
            .collect();
        orders.push((0..n).rev().collect());
        for order in orders {
            let mut r = Reassembler::new(1 << 20);
            let mut list: Vec<(u32, bool, bool, &[u8], u32)> = vec![(0, true, false, b"", 0)];
            list.extend(
                order
                    .iter()
                    .map(|&i| (segs[i].0, false, false, segs[i].1, 0)),
            );
            let (b, g) = run(&mut r, &list);
            assert_eq!(b, text, "order {order:?}");
            assert_eq!(g, 0);
        }
    }
}
