//! Stream scanning: the [`Matcher`]'s leftmost-longest matches over a byte stream that arrives
//! in chunks (one scanner per stream direction), with absolute offsets and bounded memory.
//!
//! Each chunk is searched in place. Only the seam is copied: the unsettled end of the previous
//! data (at most `max_len - 1` bytes) plus the first `max_len - 1` bytes of the new chunk. A
//! match is reported once no later byte could change it (it starts at least `max_len - 1`
//! bytes before the end of the data seen), so the hits equal [`Matcher::find_all`] on the
//! concatenated stream, whatever the chunking. Base64-of-gzip runs are collected across
//! chunks (up to [`RUN_CAP`](super::nested::RUN_CAP) raw bytes) and opened when they end;
//! their hits are reported at that point, possibly after hits that start later.

use std::sync::Arc;

use super::matcher::{Event, Matcher};
use super::nested::{B64Run, NestedStats, INFLATE_BUDGET};
use super::{excerpt, EXCERPT_CONTEXT};

/// A canary occurrence in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHit {
    /// Index into [`Identity::canaries`](super::Identity::canaries).
    pub canary: usize,
    /// Encoding chain label (see [`Hit::encoding`](super::Hit::encoding)).
    pub encoding: Arc<str>,
    /// Absolute stream offset of the first byte (nested hits: start of the base64 run).
    pub start: u64,
    /// Absolute stream offset after the last byte (nested hits: end of the base64 run).
    pub end: u64,
    /// Up to ~80 printable characters around the hit (`\xNN` escapes).
    pub excerpt: String,
}

enum Pending {
    Hit {
        canary: usize,
        encoding: Arc<str>,
        start: u64,
        end: u64,
    },
    Trigger {
        start: u64,
    },
}

impl Pending {
    fn from_event(ev: Event<'_>, base: u64) -> Pending {
        let abs = |x: usize| base.saturating_add(x as u64);
        match ev {
            Event::Hit {
                canary,
                encoding,
                start,
                end,
            } => Pending::Hit {
                canary,
                encoding: encoding.clone(),
                start: abs(start),
                end: abs(end),
            },
            Event::Trigger { start } => Pending::Trigger { start: abs(start) },
        }
    }
}

/// The bytes currently reachable: the retained tail followed by the current chunk.
struct Avail<'a> {
    tail: &'a [u8],
    t0: u64,
    chunk: &'a [u8],
    c0: u64,
}

impl Avail<'_> {
    fn end(&self) -> u64 {
        self.c0.saturating_add(self.chunk.len() as u64)
    }

    /// Contiguous bytes starting at absolute offset `at` (up to the end of its segment).
    fn slice_from(&self, at: u64) -> &[u8] {
        if at >= self.t0 && at < self.c0 {
            let i = usize::try_from(at - self.t0).unwrap_or(usize::MAX);
            self.tail.get(i..).unwrap_or(&[])
        } else if at >= self.c0 {
            let i = usize::try_from(at - self.c0).unwrap_or(usize::MAX);
            self.chunk.get(i..).unwrap_or(&[])
        } else {
            &[]
        }
    }

    /// Copy the available part of `[from, to)`.
    fn copy(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        let mut at = from.max(self.t0);
        let to = to.min(self.end());
        while at < to {
            let s = self.slice_from(at);
            if s.is_empty() {
                break;
            }
            let n = s.len().min(usize::try_from(to - at).unwrap_or(usize::MAX));
            out.extend_from_slice(s.get(..n).unwrap_or(s));
            at += n as u64;
        }
    }

    fn excerpt(&self, start: u64, end: u64) -> String {
        let ctx = EXCERPT_CONTEXT as u64;
        let (mut b, mut h, mut a) = (Vec::new(), Vec::new(), Vec::new());
        self.copy(start.saturating_sub(ctx), start, &mut b);
        self.copy(start, end, &mut h);
        self.copy(end, end.saturating_add(ctx), &mut a);
        excerpt(&b, &h, &a)
    }
}

struct Blob {
    start: u64,
    next: u64,
    run: B64Run,
    before: Vec<u8>,
}

impl Blob {
    /// Feed the run the available bytes in `[next, limit)`.
    fn advance(&mut self, limit: u64, avail: &Avail<'_>) {
        while !self.run.done && self.next < limit {
            let s = avail.slice_from(self.next);
            if s.is_empty() {
                break;
            }
            let n = s
                .len()
                .min(usize::try_from(limit - self.next).unwrap_or(usize::MAX));
            let used = self.run.push(s.get(..n).unwrap_or(s));
            self.next = self.next.saturating_add(used as u64);
        }
    }
}

/// Incremental scanner for one stream direction. Memory: a tail of
/// `max(max_pattern_len, EXCERPT_CONTEXT)` bytes, a seam buffer of twice the longest pattern,
/// and at most one base64 run being collected (capped).
pub struct StreamScanner {
    offset: u64,
    tail: Vec<u8>,
    tail_start: u64,
    /// Everything before `pos` is settled; `tail_start <= pos <= offset`.
    pos: u64,
    /// A gap (or the end) follows the tail; the tail must be settled before new data.
    closed: bool,
    scratch: Vec<u8>,
    events: Vec<Pending>,
    blob: Option<Blob>,
    /// Triggers before this offset lie inside the last opened base64 run.
    run_skip: u64,
    stats: NestedStats,
}

impl StreamScanner {
    /// A scanner at stream offset 0, for use with `m` (pass the same matcher to every call).
    pub fn new(m: &Matcher) -> Self {
        let keep = m.max_pattern_len().max(EXCERPT_CONTEXT);
        StreamScanner {
            offset: 0,
            tail: Vec::with_capacity(keep * 2),
            tail_start: 0,
            pos: 0,
            closed: false,
            scratch: Vec::with_capacity(m.max_pattern_len() * 2),
            events: Vec::new(),
            blob: None,
            run_skip: 0,
            stats: NestedStats::default(),
        }
    }

    /// Bytes consumed so far, including gaps.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Counters for base64-of-gzip blobs opened by this scanner.
    pub fn nested_stats(&self) -> NestedStats {
        self.stats
    }

    /// The bytes within `radius` of absolute offset `at` that are still held in the tail,
    /// with the absolute offset of the first returned byte; `None` if none are held.
    pub fn bytes_around(&self, at: u64, radius: usize) -> Option<(u64, &[u8])> {
        let lo = at.saturating_sub(radius as u64).max(self.tail_start);
        let hi = at
            .saturating_add(radius as u64)
            .min(self.tail_start.saturating_add(self.tail.len() as u64));
        if lo >= hi {
            return None;
        }
        let i = usize::try_from(lo - self.tail_start).ok()?;
        let j = usize::try_from(hi - self.tail_start).ok()?;
        self.tail.get(i..j).map(|s| (lo, s))
    }

    /// The stream skipped `len` bytes (capture loss): no hit may span the gap; offsets
    /// continue after it. A base64 run open at the gap is opened with what was collected.
    /// `gap(0)` just cuts the stream: nothing joins across it. Hits held back before the gap
    /// are reported by the next [`feed`](Self::feed) or [`finish`](Self::finish).
    pub fn gap(&mut self, len: u64) {
        self.closed = true;
        self.offset = self.offset.saturating_add(len);
    }

    /// The stream ended: report the hits still held back near the end (matches are only
    /// reported once `max_pattern_len - 1` further bytes were seen) and open a pending run.
    /// The scanner can be fed again afterwards, as if a zero-length gap had occurred.
    pub fn finish(&mut self, m: &Matcher, out: &mut Vec<StreamHit>) {
        let after_gap = self.closed;
        self.settle(m, out, after_gap);
    }

    /// Feed the next contiguous chunk. Hits report absolute offsets and are found exactly
    /// once even when they straddle chunk boundaries.
    pub fn feed(&mut self, m: &Matcher, chunk: &[u8], out: &mut Vec<StreamHit>) {
        if self.closed {
            self.settle(m, out, true);
        }
        if chunk.is_empty() {
            return;
        }
        let lm1 = m.max_pattern_len().saturating_sub(1);
        let keep = m.max_pattern_len().max(EXCERPT_CONTEXT);
        let c0 = self.offset;
        let c_end = c0.saturating_add(chunk.len() as u64);
        let mut tail = std::mem::take(&mut self.tail);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut events = std::mem::take(&mut self.events);
        let t0 = self.tail_start;
        {
            let avail = Avail {
                tail: &tail,
                t0,
                chunk,
                c0,
            };
            // The seam: unsettled tail bytes + the head of the chunk.
            let rel = usize::try_from(self.pos.saturating_sub(t0))
                .unwrap_or(usize::MAX)
                .min(tail.len());
            let h = chunk.len().min(lm1);
            scratch.clear();
            scratch.extend_from_slice(tail.get(rel..).unwrap_or(&[]));
            scratch.extend_from_slice(chunk.get(..h).unwrap_or(chunk));
            let base = t0.saturating_add(rel as u64);
            events.clear();
            let r = m.scan(&scratch, 0, false, |ev| {
                events.push(Pending::from_event(ev, base))
            });
            self.pos = base.saturating_add(r as u64);
            self.process(m, &avail, &mut events, out);
            if h < chunk.len() {
                // The seam settled everything before the chunk; search the chunk in place.
                let from = usize::try_from(self.pos.saturating_sub(c0)).unwrap_or(usize::MAX);
                let r = m.scan(chunk, from, false, |ev| {
                    events.push(Pending::from_event(ev, c0))
                });
                self.pos = c0.saturating_add(r as u64);
                self.process(m, &avail, &mut events, out);
            }
            if let Some(mut b) = self.blob.take() {
                b.advance(c_end, &avail);
                if b.run.done {
                    self.open(m, b, out, false);
                } else {
                    self.blob = Some(b);
                }
            }
        }
        // Keep the last `keep` bytes (always covering the unsettled part).
        if chunk.len() >= keep {
            tail.clear();
            tail.extend_from_slice(chunk.get(chunk.len() - keep..).unwrap_or(chunk));
        } else {
            tail.extend_from_slice(chunk);
            if tail.len() > keep {
                tail.drain(..tail.len() - keep);
            }
        }
        self.tail = tail;
        self.scratch = scratch;
        self.events = events;
        self.offset = c_end;
        self.tail_start = c_end.saturating_sub(self.tail.len() as u64);
        self.pos = self.pos.max(self.tail_start);
    }

    /// Settle the tail as the end of the data (before a gap or at the end of the stream).
    fn settle(&mut self, m: &Matcher, out: &mut Vec<StreamHit>, gap: bool) {
        let tail = std::mem::take(&mut self.tail);
        let mut events = std::mem::take(&mut self.events);
        let t0 = self.tail_start;
        let tail_end = t0.saturating_add(tail.len() as u64);
        {
            let avail = Avail {
                tail: &tail,
                t0,
                chunk: &[],
                c0: tail_end,
            };
            let rel = usize::try_from(self.pos.saturating_sub(t0))
                .unwrap_or(usize::MAX)
                .min(tail.len());
            let base = t0.saturating_add(rel as u64);
            events.clear();
            m.scan(tail.get(rel..).unwrap_or(&[]), 0, true, |ev| {
                events.push(Pending::from_event(ev, base))
            });
            self.process(m, &avail, &mut events, out);
            if let Some(mut b) = self.blob.take() {
                b.advance(tail_end, &avail);
                self.open(m, b, out, gap);
            }
        }
        self.tail = tail;
        self.tail.clear();
        self.events = events;
        self.tail_start = self.offset;
        self.pos = self.offset;
        self.run_skip = self.offset;
        self.closed = false;
    }

    fn process(
        &mut self,
        m: &Matcher,
        avail: &Avail<'_>,
        events: &mut Vec<Pending>,
        out: &mut Vec<StreamHit>,
    ) {
        for ev in events.drain(..) {
            match ev {
                Pending::Hit {
                    canary,
                    encoding,
                    start,
                    end,
                } => out.push(StreamHit {
                    canary,
                    encoding,
                    start,
                    end,
                    excerpt: avail.excerpt(start, end),
                }),
                Pending::Trigger { start } => self.trigger(m, start, avail, out),
            }
        }
    }

    fn trigger(&mut self, m: &Matcher, start: u64, avail: &Avail<'_>, out: &mut Vec<StreamHit>) {
        if start < self.run_skip {
            return;
        }
        if let Some(mut b) = self.blob.take() {
            // Is the trigger inside the run being collected?
            b.advance(start.saturating_add(1), avail);
            if !b.run.done {
                self.blob = Some(b);
                return;
            }
            self.open(m, b, out, false);
            if start < self.run_skip {
                return;
            }
        }
        let mut before = Vec::new();
        avail.copy(
            start.saturating_sub(EXCERPT_CONTEXT as u64),
            start,
            &mut before,
        );
        self.blob = Some(Blob {
            start,
            next: start,
            run: B64Run::new(),
            before,
        });
    }

    fn open(&mut self, m: &Matcher, mut b: Blob, out: &mut Vec<StreamHit>, interrupted: bool) {
        if !b.run.done {
            b.run.finish();
            if interrupted {
                self.stats.run_interrupted += 1;
            }
        }
        self.run_skip = b.start.saturating_add(b.run.raw_len as u64);
        let end = b.start.saturating_add(b.run.data_end as u64);
        let mut budget = INFLATE_BUDGET;
        let found = m.open_blob(&b.run, 0, &mut budget, &mut self.stats);
        if found.is_empty() {
            return;
        }
        let head = b.run.data.get(..40).unwrap_or(&b.run.data);
        let mut ex = excerpt(&b.before, head, &[]);
        if b.run.data.len() > head.len() {
            ex.push('…');
        }
        for (canary, encoding) in found {
            out.push(StreamHit {
                canary,
                encoding,
                start: b.start,
                end,
                excerpt: ex.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::matcher::tests::{gz, identity, Rng, EMAIL, IMEI, NAME, PHONE};
    use crate::canary::{Hit, Identity};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use sha2::{Digest, Sha256};

    type Key = (usize, String, u64, u64);

    fn key_all(h: &[Hit]) -> Vec<Key> {
        let mut v: Vec<Key> = h
            .iter()
            .map(|h| {
                (
                    h.canary,
                    h.encoding.to_string(),
                    h.start as u64,
                    h.end as u64,
                )
            })
            .collect();
        v.sort();
        v
    }

    fn key_stream(h: &[StreamHit]) -> Vec<Key> {
        let mut v: Vec<Key> = h
            .iter()
            .map(|h| (h.canary, h.encoding.to_string(), h.start, h.end))
            .collect();
        v.sort();
        v
    }

    fn stream_with(m: &Matcher, data: &[u8], sizes: &mut dyn FnMut() -> usize) -> Vec<StreamHit> {
        let mut s = StreamScanner::new(m);
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let n = sizes().max(1).min(data.len() - i);
            s.feed(m, &data[i..i + n], &mut out);
            i += n;
            assert_eq!(s.offset(), i as u64);
        }
        s.finish(m, &mut out);
        out
    }

    /// A haystack with hits of many kinds at random places, including back-to-back hits,
    /// hits at both ends, embedded base64, and base64-of-gzip blobs.
    fn rich_haystack(rng: &mut Rng) -> Vec<u8> {
        let mut pieces: Vec<Vec<u8>> = vec![
            IMEI.as_bytes().to_vec(),
            PHONE.as_bytes().to_vec(),
            b"+15555550123".to_vec(),
            NAME.to_ascii_uppercase().into_bytes(),
            EMAIL.as_bytes().to_vec(),
            STANDARD.encode(EMAIL).into_bytes(),
            URL_SAFE_NO_PAD.encode(NAME).into_bytes(),
            crate::canary::forms::hex(&Sha256::digest(IMEI.as_bytes())).to_ascii_uppercase(),
            STANDARD
                .encode(format!("{{\"x\":1,\"who\":\"{EMAIL}\"}}"))
                .into_bytes(),
            crate::canary::forms::json_unicode(NAME, true),
            crate::canary::forms::utf16(EMAIL, true),
            STANDARD
                .encode(gz(
                    format!("{{\"n\":\"{NAME}\",\"i\":\"{IMEI}\"}}").as_bytes()
                ))
                .into_bytes(),
            STANDARD.encode(gz(b"nothing to see here")).into_bytes(),
            b"H4sIH4sIH4sI not a blob".to_vec(),
            b"h4si lowercase trigger".to_vec(),
        ];
        // A wrapped (76-column) blob as Android's Base64.DEFAULT writes it.
        let wrapped: Vec<u8> = STANDARD
            .encode(gz(format!("phone={PHONE}").as_bytes()))
            .into_bytes()
            .chunks(76)
            .flat_map(|c| c.iter().copied().chain(*b"\n"))
            .collect();
        pieces.push(wrapped);
        let mut data = pieces[0].clone();
        for _ in 0..120 {
            let filler_len = rng.below(60);
            data.extend(rng.printable(filler_len));
            let p = &pieces[rng.below(pieces.len())];
            data.extend_from_slice(p);
        }
        data.extend_from_slice(EMAIL.as_bytes());
        data
    }

    #[test]
    fn stream_equals_find_all_for_any_chunking() {
        let m = Matcher::new(&identity());
        let mut rng = Rng(42);
        for round in 0..4 {
            let data = rich_haystack(&mut rng);
            let mut all = Vec::new();
            m.find_all(&data, &mut all);
            let want = key_all(&all);
            assert!(want.len() > 60, "too few hits: {}", want.len());
            assert!(want.iter().any(|k| k.1 == "gzip>base64"));
            for size in [1usize, 7, 1460] {
                let got = key_stream(&stream_with(&m, &data, &mut || size));
                assert_eq!(got, want, "round {round} chunk size {size}");
            }
            for seed in 0..3u64 {
                let mut r2 = Rng(seed * 7919 + round + 1);
                let max = [3usize, 50, 700][seed as usize];
                let got = key_stream(&stream_with(&m, &data, &mut || r2.below(max) + 1));
                assert_eq!(got, want, "round {round} random chunking seed {seed}");
            }
        }
    }

    #[test]
    fn hits_straddling_every_split_point() {
        let m = Matcher::new(&identity());
        let data = format!("ab{EMAIL}{}cd", STANDARD.encode(NAME));
        let mut all = Vec::new();
        m.find_all(data.as_bytes(), &mut all);
        assert_eq!(all.len(), 2);
        for split in 0..=data.len() {
            let mut s = StreamScanner::new(&m);
            let mut out = Vec::new();
            s.feed(&m, &data.as_bytes()[..split], &mut out);
            s.feed(&m, &data.as_bytes()[split..], &mut out);
            s.finish(&m, &mut out);
            assert_eq!(key_stream(&out), key_all(&all), "split {split}");
        }
    }

    #[test]
    fn gap_prevents_straddling_hit_and_offsets_continue() {
        let m = Matcher::new(&identity());
        let mut s = StreamScanner::new(&m);
        let mut out = Vec::new();
        let (a, b) = EMAIL.split_at(10);
        s.feed(&m, format!("x={a}").as_bytes(), &mut out);
        s.gap(1000);
        s.feed(&m, format!("{b}&").as_bytes(), &mut out);
        s.finish(&m, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.offset(), 2 + 10 + 1000 + (EMAIL.len() - 10) as u64 + 1);
        // A zero-length gap also cuts the stream.
        let mut s = StreamScanner::new(&m);
        s.feed(&m, a.as_bytes(), &mut out);
        s.gap(0);
        s.feed(&m, b.as_bytes(), &mut out);
        s.finish(&m, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.offset(), EMAIL.len() as u64);
        // A hit before the gap is reported (at the gap) and one after it has shifted offsets.
        let mut s = StreamScanner::new(&m);
        s.feed(&m, format!("..{IMEI}").as_bytes(), &mut out);
        assert!(out.is_empty(), "held back until more data or a gap");
        s.gap(5);
        s.feed(&m, IMEI.as_bytes(), &mut out);
        s.finish(&m, &mut out);
        let spans: Vec<(u64, u64)> = out.iter().map(|h| (h.start, h.end)).collect();
        assert_eq!(spans, vec![(2, 17), (22, 37)]);
        assert!(out[0].excerpt.contains(IMEI), "{}", out[0].excerpt);
    }

    #[test]
    fn gap_interrupts_a_blob() {
        let m = Matcher::new(&identity());
        // Incompressible data after the name: deflate stores it, so half a blob still
        // inflates to something that contains the name.
        let mut plain = format!("{NAME} ").into_bytes();
        plain.extend(Rng(5).bytes(3000));
        let blob = STANDARD.encode(gz(&plain));
        let mut s = StreamScanner::new(&m);
        let mut out = Vec::new();
        s.feed(&m, b"d=", &mut out);
        s.feed(&m, &blob.as_bytes()[..blob.len() / 2], &mut out);
        s.gap(100);
        s.feed(&m, &blob.as_bytes()[blob.len() / 2..], &mut out);
        s.finish(&m, &mut out);
        // (Stored deflate data also exposes the name as embedded base64.)
        let nested: Vec<&StreamHit> = out.iter().filter(|h| h.encoding.contains("gzip")).collect();
        assert_eq!(nested.len(), 1, "{out:?}");
        assert_eq!(
            (nested[0].canary, &*nested[0].encoding, nested[0].start),
            (2, "gzip>base64", 2)
        );
        assert_eq!(nested[0].end, 2 + (blob.len() / 2) as u64);
        assert!(
            nested[0].excerpt.starts_with("d=H4sI"),
            "{}",
            nested[0].excerpt
        );
        assert!(out.iter().all(|h| h.end <= 2 + (blob.len() / 2) as u64));
        assert_eq!(s.nested_stats().run_interrupted, 1);
    }

    #[test]
    fn blob_over_run_cap_decodes_what_it_has() {
        let m = Matcher::new(&identity());
        // Incompressible data after the canary makes the base64 run longer than RUN_CAP.
        let mut rng = Rng(7);
        let mut plain = format!("{EMAIL};").into_bytes();
        plain.extend(rng.bytes(crate::canary::nested::RUN_CAP));
        let blob = STANDARD.encode(gz(&plain));
        assert!(blob.len() > crate::canary::nested::RUN_CAP);
        let mut s = StreamScanner::new(&m);
        let mut out = Vec::new();
        for c in blob.as_bytes().chunks(1460) {
            s.feed(&m, c, &mut out);
        }
        s.finish(&m, &mut out);
        // Stored deflate blocks also expose the e-mail as embedded base64 text.
        assert!(out
            .iter()
            .any(|h| h.canary == 3 && &*h.encoding == "base64"));
        let nested: Vec<&StreamHit> = out.iter().filter(|h| h.encoding.contains("gzip")).collect();
        assert_eq!(nested.len(), 1, "{out:?}");
        assert_eq!((nested[0].canary, &*nested[0].encoding), (3, "gzip>base64"));
        assert_eq!(
            (nested[0].start, nested[0].end),
            (0, crate::canary::nested::RUN_CAP as u64)
        );
        assert_eq!(s.nested_stats().run_truncated, 1);
    }

    #[test]
    fn no_hits_in_random_stream() {
        let m = Matcher::new(&identity());
        let mut rng = Rng(99);
        let data = rng.bytes(2 << 20);
        let out = stream_with(&m, &data, &mut || 1460);
        assert!(out.is_empty());
    }

    #[test]
    fn bytes_around_and_empty_identity() {
        let m = Matcher::new(&identity());
        let mut s = StreamScanner::new(&m);
        let mut out = Vec::new();
        let data: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        s.feed(&m, &data, &mut out);
        let (at, bytes) = s.bytes_around(990, 5).unwrap();
        assert_eq!((at, bytes), (985, &data[985..995]));
        assert!(s.bytes_around(10, 5).is_none());
        // An identity without canaries still works (only the trigger pattern).
        let m = Matcher::new(&Identity::default());
        let mut s = StreamScanner::new(&m);
        s.feed(&m, b"H4sI", &mut out);
        s.finish(&m, &mut out);
        assert!(out.is_empty());
    }
}
