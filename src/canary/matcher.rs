//! One-pass multi-pattern matcher for all encoded forms of all canaries.
//!
//! Every [`Form`](super::forms::Form) of every canary is lower-cased and put into ONE
//! ASCII-case-insensitive, leftmost-longest Aho-Corasick automaton (a DFA when it builds), or, for
//! identities of thousands of canaries, into one hash index of the patterns stored once (an
//! automaton's states grow with every pattern byte: 3,000 contacts cost 340 MB).
//! Patterns equal after lower-casing share one automaton pattern; each automaton pattern maps
//! to a short list of targets `(canary, encoding, exact bytes, case-sensitive?)`, and a match is
//! verified against the exact bytes only for case-sensitive targets (base64 text). The
//! no-match path is just the automaton's search.
//!
//! The base64 text of the gzip magic (`H4sI`) is one more pattern: on it the base64 run is
//! decoded, inflated (capped) and searched again, and canary hits inside are reported with
//! encoding `<inner>>gzip>base64` over the span of the whole run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, Input, MatchKind, StartKind};

use super::forms::encoded_forms;
use super::identity::Identity;
use super::nested::{
    decode_b64, gunzip_capped, B64Run, NestedStats, GZIP_B64_MAGIC, INFLATE_BUDGET, INFLATE_CAP,
    MAX_DEPTH,
};

/// One canary occurrence in a buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hit {
    /// Index into [`Identity::canaries`].
    pub canary: usize,
    /// Encoding chain label, e.g. `raw`, `sha256>hex`, `gzip>base64`, `url>gzip>base64`.
    pub encoding: Arc<str>,
    /// Start offset in the buffer (for nested hits: start of the base64 run).
    pub start: usize,
    /// End offset (exclusive; for nested hits: end of the base64 run).
    pub end: usize,
}

/// Error building a [`Matcher`].
#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    /// The automaton could not be built (far too many or too long patterns).
    #[error("cannot build the canary automaton: {0}")]
    Build(#[from] aho_corasick::BuildError),
}

#[derive(Debug)]
struct Target {
    canary: usize,
    encoding: Arc<str>,
    exact: Box<[u8]>,
    case_sensitive: bool,
}

impl Target {
    fn accepts(&self, bytes: &[u8]) -> bool {
        !self.case_sensitive || *self.exact == *bytes
    }
}

/// A match found by [`Matcher::scan`], offsets relative to the scanned buffer.
pub(super) enum Event<'m> {
    Hit {
        canary: usize,
        encoding: &'m Arc<str>,
        start: usize,
        end: usize,
    },
    Trigger {
        start: usize,
    },
}

/// A strided q-gram filter over the case-folded 4-byte substrings of every pattern (a 2^16-bit hashed bitmap,
/// 8 KiB: it stays in L1 cache).
///
/// Every pattern is at least `min_len` bytes long, so with a stride `k = min_len - 3` a match starting at `s`
/// covers the position `j` that ends `s`'s block of `k` starts, and the 4 bytes at `j` are the pattern's bytes
/// at offset `j - s < k`. The bitmap holds the hashes of every pattern's 4-grams at offsets `0..k`; only blocks
/// whose checkpoint passes are searched (anchored, at each of their `k` starts). `x | 0x20` folds ASCII
/// letters and keeps case-insensitive equality of any two bytes (letters differ only in that bit; other bytes
/// must be equal anyway), so no case-insensitive match is ever filtered out.
#[derive(Debug)]
struct QGram {
    bits: Box<[u64; 1024]>,
    stride: usize,
}

impl QGram {
    fn new(patterns: &[Box<[u8]>]) -> Option<QGram> {
        let min_len = patterns.iter().map(|p| p.len()).min()?;
        if min_len < 4 {
            return None;
        }
        let stride = (min_len - 3).min(16);
        let mut bits = Box::new([0u64; 1024]);
        for p in patterns {
            for o in 0..stride {
                if let Some(w) = p.get(o..o + 4) {
                    let h = Self::hash(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
                    bits[h >> 6] |= 1 << (h & 63);
                }
            }
        }
        Some(QGram { bits, stride })
    }

    #[inline(always)]
    fn hash(v: u32) -> usize {
        ((v | 0x2020_2020).wrapping_mul(0x9E37_79B1) >> 16) as usize & 0xffff
    }

    /// The first match `verify(s)` returns for a start `s` in `from..=last_start` that the filter lets through.
    #[inline]
    fn find<M>(
        &self,
        hay: &[u8],
        from: usize,
        last_start: usize,
        mut verify: impl FnMut(usize) -> Option<M>,
    ) -> Option<M> {
        let k = self.stride;
        let mut block = from;
        while block <= last_start {
            let j = block + k - 1;
            let Some(w) = hay.get(j..j + 4) else {
                return None; // no pattern fits from here on (see the type's documentation)
            };
            let h = Self::hash(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            if self.bits[h >> 6] & (1 << (h & 63)) != 0 {
                for s in block..(block + k).min(last_start + 1) {
                    if let Some(m) = verify(s) {
                        return Some(m);
                    }
                }
            }
            block += k;
        }
        None
    }
}

/// The searcher of large identities (more than [`DFA_MAX_PATTERN_BYTES`] of patterns, thousands of
/// canaries): instead of an automaton, whose states grow with every pattern byte (about 340 MB for 3,000
/// contacts' 170,000 patterns, built as a non-contiguous NFA first), two hash tables over the lower-cased
/// patterns stored once: the first `key_len` bytes of a candidate start give the distinct lengths of the
/// patterns that begin so, and each length is then one exact lookup of the whole lower-cased pattern.
/// Memory is the pattern bytes plus two table entries per pattern. It runs only behind the q-gram
/// filter, at each start it lets through, and answers what the anchored leftmost-longest automaton
/// would there, except that it gives the longest pattern that also verifies (exact case where needed).
#[derive(Debug)]
struct PrefixIndex {
    /// Bytes of the bucket key: the shortest pattern's length, at most 8.
    key_len: usize,
    /// Lower-cased first `key_len` bytes -> lengths of the patterns beginning so, longest first.
    lengths: HashMap<u64, Box<[u32]>>,
    /// Lower-cased pattern -> its pattern id.
    ids: HashMap<Box<[u8]>, u32>,
}

impl PrefixIndex {
    fn new(patterns: &[Box<[u8]>]) -> Option<PrefixIndex> {
        let key_len = patterns.iter().map(|p| p.len()).min()?.min(8);
        if key_len == 0 || u32::try_from(patterns.len()).is_err() {
            return None;
        }
        let mut lengths: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut ids = HashMap::with_capacity(patterns.len());
        for (pid, p) in patterns.iter().enumerate() {
            let key = Self::key(p.get(..key_len)?);
            let len = u32::try_from(p.len()).ok()?;
            let l = lengths.entry(key).or_default();
            if !l.contains(&len) {
                l.push(len);
            }
            ids.insert(p.clone(), pid as u32);
        }
        let lengths = lengths
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_unstable_by(|a, b| b.cmp(a));
                (k, v.into_boxed_slice())
            })
            .collect();
        Some(PrefixIndex {
            key_len,
            lengths,
            ids,
        })
    }

    #[inline]
    fn key(bytes: &[u8]) -> u64 {
        let mut k = [0u8; 8];
        for (d, b) in k.iter_mut().zip(bytes) {
            *d = b.to_ascii_lowercase();
        }
        u64::from_le_bytes(k)
    }

    /// The longest pattern at `start` that `accepts` verifies: (end, pattern id).
    fn find_at(
        &self,
        hay: &[u8],
        start: usize,
        buf: &mut Vec<u8>,
        accepts: impl Fn(usize, &[u8]) -> bool,
    ) -> Option<(usize, usize)> {
        let rest = hay.get(start..)?;
        let head = rest.get(..self.key_len)?;
        let lengths = self.lengths.get(&Self::key(head))?;
        for &len in lengths.iter() {
            let Some(cand) = rest.get(..len as usize) else {
                continue;
            };
            buf.clear();
            buf.extend(cand.iter().map(u8::to_ascii_lowercase));
            if let Some(&pid) = self.ids.get(buf.as_slice()) {
                if accepts(pid as usize, cand) {
                    return Some((start + cand.len(), pid as usize));
                }
            }
        }
        None
    }

    /// About how many heap bytes the tables hold.
    fn memory_usage(&self) -> usize {
        let lengths: usize = self.lengths.values().map(|v| 4 * v.len() + 32).sum();
        let ids: usize = self.ids.keys().map(|k| k.len() + 28).sum();
        lengths + ids
    }
}

/// How the patterns are searched.
#[derive(Debug)]
enum Engine {
    /// One Aho-Corasick automaton (a DFA for small identities).
    Automaton(AhoCorasick),
    /// Large identities: hash tables behind the q-gram filter.
    Index(PrefixIndex),
}

#[derive(Debug, Default)]
struct AtomicStats {
    blobs: AtomicU64,
    undecodable: AtomicU64,
    inflate_truncated: AtomicU64,
    run_truncated: AtomicU64,
}

/// Largest total length of the automaton's patterns for which it is built as a DFA (fastest, but
/// memory per state); above it, a contiguous NFA.
const DFA_MAX_PATTERN_BYTES: usize = 64 << 10;

/// The compiled canary searcher. Built once per identity; `Send + Sync`.
#[derive(Debug)]
pub struct Matcher {
    identity: Identity,
    engine: Engine,
    /// Lower-cased bytes per automaton pattern.
    lower: Vec<Box<[u8]>>,
    /// Targets per automaton pattern (empty for the pure trigger pattern).
    targets: Vec<Vec<Target>>,
    /// Automaton pattern whose exact form `H4sI` triggers nested decoding.
    trigger: usize,
    /// Pattern ids by decreasing length, for re-checking after a failed verification.
    by_len_desc: Vec<usize>,
    max_len: usize,
    /// Candidate filter on the first four bytes of every pattern (None if a pattern is shorter).
    prefilter: Option<QGram>,
    /// SIMD search for the gzip trigger, used with the prefilter.
    trigger_finder: memchr::memmem::Finder<'static>,
    /// The forms shorter than [`SHORT_FORM`] (used with the prefilter, which then covers only the longer ones),
    /// with the matcher's pattern id of each of the engine's patterns.
    short: Option<(AhoCorasick, Vec<usize>)>,
    /// The values under a single-byte XOR (see [`Matcher::xor_keys`]).
    xor: super::xor::XorFinder,
    stats: AtomicStats,
}

/// Forms shorter than this are searched apart from the q-gram filter (see [`Matcher::build`]).
const SHORT_FORM: usize = 8;

impl Matcher {
    /// Build the matcher for all canaries of `identity`.
    ///
    /// # Panics
    /// Only if the automaton cannot be built at all, which needs patterns totalling
    /// gigabytes; use [`Matcher::try_new`] to get an error instead.
    pub fn new(identity: &Identity) -> Matcher {
        match Matcher::try_new(identity) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// Build the matcher, reporting automaton construction failure as an error.
    pub fn try_new(identity: &Identity) -> Result<Matcher, MatcherError> {
        Matcher::build(identity, false)
    }

    /// Build the matcher; `force_index` uses the hash index whatever the identity's size (tests).
    fn build(identity: &Identity, force_index: bool) -> Result<Matcher, MatcherError> {
        let mut index: HashMap<Box<[u8]>, usize> = HashMap::new();
        let mut lower: Vec<Box<[u8]>> = Vec::new();
        let mut targets: Vec<Vec<Target>> = Vec::new();
        let mut labels: HashMap<&'static str, Arc<str>> = HashMap::new();
        let mut pid_of =
            |bytes: &[u8], lower: &mut Vec<Box<[u8]>>, targets: &mut Vec<Vec<Target>>| {
                let key: Box<[u8]> = bytes.to_ascii_lowercase().into();
                *index.entry(key.clone()).or_insert_with(|| {
                    lower.push(key);
                    targets.push(Vec::new());
                    lower.len() - 1
                })
            };
        for (ci, c) in identity.canaries.iter().enumerate() {
            for f in encoded_forms(&c.value) {
                let pid = pid_of(&f.bytes, &mut lower, &mut targets);
                let encoding = labels
                    .entry(f.encoding)
                    .or_insert_with(|| Arc::from(f.encoding))
                    .clone();
                if let Some(list) = targets.get_mut(pid) {
                    if !list.iter().any(|t| t.canary == ci && *t.exact == *f.bytes) {
                        list.push(Target {
                            canary: ci,
                            encoding,
                            exact: f.bytes.into(),
                            case_sensitive: f.case_sensitive,
                        });
                    }
                }
            }
        }
        let trigger = pid_of(GZIP_B64_MAGIC, &mut lower, &mut targets);
        // The gzip trigger is found by a SIMD substring search instead of the automaton when it has a pattern id
        // of its own (the last): then every automaton pattern is a canary form, all at least `min_len` long,
        // which lets the prefilter test only every k-th position.
        let separate_trigger =
            trigger + 1 == lower.len() && targets.get(trigger).is_some_and(|t| t.is_empty());
        // Short forms (binary numbers, under SHORT_FORM bytes) get an engine of their own: the q-gram filter tests
        // every (min_len − 3)-th position, so one 4-byte form among 15-byte ones would make it test every position.
        // Long forms are reordered to come first, so that both engines' pattern ids stay the matcher's.
        let mut split = trigger;
        if separate_trigger {
            let long = lower[..trigger]
                .iter()
                .filter(|p| p.len() >= SHORT_FORM)
                .count();
            if long > 0 && long < trigger {
                let mut order: Vec<usize> = (0..trigger).collect();
                order.sort_by_key(|&p| lower.get(p).is_none_or(|x| x.len() < SHORT_FORM));
                let mut new_lower = Vec::with_capacity(lower.len());
                let mut new_targets = Vec::with_capacity(targets.len());
                for &p in &order {
                    new_lower.push(std::mem::take(&mut lower[p]));
                    new_targets.push(std::mem::take(&mut targets[p]));
                }
                new_lower.extend(lower.drain(trigger..));
                new_targets.extend(targets.drain(trigger..));
                lower = new_lower;
                targets = new_targets;
                split = long;
            }
        }
        let short = if separate_trigger && split < trigger {
            // Exact bytes (the short forms are case-sensitive binary), unless one of them is not.
            let mut pats: Vec<Vec<u8>> = Vec::new();
            let mut pids: Vec<usize> = Vec::new();
            let any_ci = targets[split..trigger]
                .iter()
                .flatten()
                .any(|t| !t.case_sensitive);
            for pid in split..trigger {
                if any_ci {
                    pats.push(lower[pid].to_vec());
                    pids.push(pid);
                    continue;
                }
                for t in &targets[pid] {
                    if !pats
                        .iter()
                        .zip(&pids)
                        .any(|(b, &q)| q == pid && **b == *t.exact)
                    {
                        pats.push(t.exact.to_vec());
                        pids.push(pid);
                    }
                }
            }
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(any_ci)
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::DFA))
                .build(&pats)
                .or_else(|_| {
                    AhoCorasick::builder()
                        .ascii_case_insensitive(any_ci)
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&pats)
                })?;
            Some((ac, pids))
        } else {
            None
        };
        let ac_patterns = if separate_trigger {
            &lower[..split]
        } else {
            &lower[..]
        };
        let build = |kind: Option<AhoCorasickKind>| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .start_kind(StartKind::Both)
                .kind(kind)
                .build(ac_patterns)
        };
        let prefilter = if separate_trigger {
            QGram::new(ac_patterns)
        } else {
            None
        };
        // A DFA costs a full transition table per state (about 0.75 MB per canary with its ~57 forms), so it is
        // used only for identities of a few dozen canaries. Larger ones get the hash index (memory: the pattern
        // bytes and two table entries per pattern) behind the q-gram filter, or, when a pattern is too short for
        // the filter, the contiguous NFA (memory grows with every pattern byte).
        let pattern_bytes: usize = ac_patterns.iter().map(|p| p.len()).sum();
        let small = pattern_bytes <= DFA_MAX_PATTERN_BYTES && !force_index;
        let index = match (&prefilter, small) {
            (Some(_), false) => PrefixIndex::new(ac_patterns),
            _ => None,
        };
        let engine = match index {
            Some(i) => Engine::Index(i),
            None => {
                let kind = if small {
                    AhoCorasickKind::DFA
                } else {
                    AhoCorasickKind::ContiguousNFA
                };
                Engine::Automaton(build(Some(kind)).or_else(|_| build(None))?)
            }
        };
        let trigger_finder = memchr::memmem::Finder::new(GZIP_B64_MAGIC).into_owned();
        let mut by_len_desc: Vec<usize> = (0..lower.len()).collect();
        by_len_desc.sort_by_key(|&p| std::cmp::Reverse(lower.get(p).map_or(0, |x| x.len())));
        let max_len = lower.iter().map(|p| p.len()).max().unwrap_or(1).max(1);
        Ok(Matcher {
            identity: identity.clone(),
            engine,
            lower,
            targets,
            trigger,
            by_len_desc,
            max_len,
            prefilter,
            trigger_finder,
            short,
            xor: super::xor::XorFinder::new(identity),
            stats: AtomicStats::default(),
        })
    }

    /// The keys (never 0) under which a canary's value (as planted, at least [`super::xor::MIN_VALUE`] bytes)
    /// stands in `input` XORed with one byte, ascending; the caller searches `input ^ key` for each.
    pub fn xor_keys(&self, input: &[u8]) -> Vec<u8> {
        self.xor.keys(input)
    }

    /// The identity this matcher was built from.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Every distinct searched byte string with its exact case (including the `H4sI` trigger).
    pub fn patterns(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for (pid, list) in self.targets.iter().enumerate() {
            for t in list {
                if !out.iter().any(|o| **o == *t.exact) {
                    out.push(t.exact.to_vec());
                }
            }
            if pid == self.trigger {
                out.push(GZIP_B64_MAGIC.to_vec());
            }
        }
        out
    }

    /// Number of automaton patterns (distinct after ASCII lower-casing).
    pub fn automaton_patterns(&self) -> usize {
        self.lower.len()
    }

    /// Which automaton implementation was built (DFA for small identities), or None when large
    /// identities are searched with the hash index instead.
    pub fn automaton_kind(&self) -> Option<AhoCorasickKind> {
        match &self.engine {
            Engine::Automaton(ac) => Some(ac.kind()),
            Engine::Index(_) => None,
        }
    }

    /// About how many heap bytes the search structures hold (automaton or index, patterns, targets).
    pub fn memory_usage(&self) -> usize {
        let engine = match &self.engine {
            Engine::Automaton(ac) => ac.memory_usage(),
            Engine::Index(i) => i.memory_usage(),
        };
        let patterns: usize = self.lower.iter().map(|p| p.len() + 16).sum();
        let targets: usize = self
            .targets
            .iter()
            .map(|l| {
                24 + l
                    .iter()
                    .map(|t| std::mem::size_of::<Target>() + t.exact.len())
                    .sum::<usize>()
            })
            .sum();
        engine + patterns + targets + 8 * self.by_len_desc.len()
    }

    /// Length of the longest pattern.
    pub fn max_pattern_len(&self) -> usize {
        self.max_len
    }

    /// Counters of nested blob handling done by [`Matcher::find_all`] so far (all threads).
    pub fn nested_stats(&self) -> NestedStats {
        NestedStats {
            blobs: self.stats.blobs.load(Ordering::Relaxed),
            undecodable: self.stats.undecodable.load(Ordering::Relaxed),
            inflate_truncated: self.stats.inflate_truncated.load(Ordering::Relaxed),
            run_truncated: self.stats.run_truncated.load(Ordering::Relaxed),
            run_interrupted: 0,
        }
    }

    /// All canary hits in one buffer (non-overlapping, leftmost-longest), including hits
    /// inside base64-of-gzip blobs, appended to `out` in order of discovery.
    pub fn find_all(&self, hay: &[u8], out: &mut Vec<Hit>) {
        let mut stats = NestedStats::default();
        let mut budget = INFLATE_BUDGET;
        self.find_all_depth(hay, out, 0, &mut budget, &mut stats);
        if stats != NestedStats::default() {
            let s = &self.stats;
            s.blobs.fetch_add(stats.blobs, Ordering::Relaxed);
            s.undecodable
                .fetch_add(stats.undecodable, Ordering::Relaxed);
            s.inflate_truncated
                .fetch_add(stats.inflate_truncated, Ordering::Relaxed);
            s.run_truncated
                .fetch_add(stats.run_truncated, Ordering::Relaxed);
        }
    }

    fn find_all_depth(
        &self,
        hay: &[u8],
        out: &mut Vec<Hit>,
        depth: usize,
        budget: &mut usize,
        stats: &mut NestedStats,
    ) {
        let mut run_skip = 0usize;
        self.scan(hay, 0, true, |ev| match ev {
            Event::Hit {
                canary,
                encoding,
                start,
                end,
            } => out.push(Hit {
                canary,
                encoding: encoding.clone(),
                start,
                end,
            }),
            Event::Trigger { start } => {
                if start < run_skip || depth >= MAX_DEPTH {
                    return;
                }
                let mut run = B64Run::new();
                run.push(hay.get(start..).unwrap_or(&[]));
                run.finish();
                run_skip = start.saturating_add(run.raw_len);
                let end = start.saturating_add(run.data_end);
                if depth == 0 {
                    *budget = INFLATE_BUDGET;
                }
                for (canary, encoding) in self.open_blob(&run, depth, budget, stats) {
                    out.push(Hit {
                        canary,
                        encoding,
                        start,
                        end,
                    });
                }
            }
        });
    }

    /// Decode, inflate and search one collected run; returns distinct (canary, nested label).
    pub(super) fn open_blob(
        &self,
        run: &B64Run,
        depth: usize,
        budget: &mut usize,
        stats: &mut NestedStats,
    ) -> Vec<(usize, Arc<str>)> {
        stats.blobs += 1;
        if run.capped {
            stats.run_truncated += 1;
        }
        let Some(gz) = decode_b64(&run.data) else {
            stats.undecodable += 1;
            return Vec::new();
        };
        let cap = INFLATE_CAP.min(*budget);
        let (inflated, truncated) = gunzip_capped(&gz, cap);
        *budget = budget.saturating_sub(inflated.len());
        if truncated {
            stats.inflate_truncated += 1;
        }
        if inflated.is_empty() {
            stats.undecodable += 1;
            return Vec::new();
        }
        let mut inner = Vec::new();
        self.find_all_depth(&inflated, &mut inner, depth + 1, budget, stats);
        let mut found: Vec<(usize, Arc<str>)> = Vec::new();
        for h in inner {
            let label: Arc<str> = if &*h.encoding == "raw" {
                Arc::from("gzip>base64")
            } else {
                Arc::from(format!("{}>gzip>base64", h.encoding))
            };
            if !found.iter().any(|(c, l)| *c == h.canary && *l == label) {
                found.push((h.canary, label));
            }
        }
        found
    }

    /// The greedy leftmost-longest loop shared by [`Matcher::find_all`] and the stream
    /// scanner. Reports matches starting at or after `from`. When `at_end` is false, `hay`
    /// may continue: only matches that start more than `max_len - 1` bytes before its end are
    /// reported (they cannot change with more data). Returns the position up to which the
    /// buffer is settled: scanning must resume there once more bytes are appended.
    pub(super) fn scan<'m>(
        &'m self,
        hay: &[u8],
        from: usize,
        at_end: bool,
        mut on: impl FnMut(Event<'m>),
    ) -> usize {
        let safe = if at_end {
            hay.len()
        } else {
            hay.len().saturating_sub(self.max_len - 1)
        };
        let mut pos = from.min(hay.len());
        let mut next_trigger = None;
        let mut next_short = None;
        while pos < hay.len() {
            let Some((start, end, pid)) =
                self.find_from(hay, pos, &mut next_trigger, &mut next_short)
            else {
                break;
            };
            if start >= safe {
                break;
            }
            match self.resolve(hay, start, pid, end) {
                Some((pid, end)) => {
                    self.emit(pid, hay.get(start..end).unwrap_or(&[]), start, end, &mut on);
                    pos = end.max(start + 1);
                }
                None => pos = start + 1,
            }
        }
        if at_end {
            hay.len()
        } else {
            pos.max(safe)
        }
    }

    /// The leftmost-longest match (start, end, pattern id) starting at or after `pos`.
    ///
    /// With the prefilter, the automaton runs only where the q-gram filter lets a match start, anchored: the
    /// first start with a match is the leftmost, and the anchored leftmost-longest search gives the longest
    /// there — the same answer as an unanchored leftmost-longest search, at a fraction of the cost (the
    /// automaton has no prefilter of its own for many case-insensitive patterns). The gzip trigger comes from
    /// the SIMD substring search; `next_trigger` caches its position between calls of one scan.
    fn find_from(
        &self,
        hay: &[u8],
        pos: usize,
        next_trigger: &mut Option<Option<usize>>,
        next_short: &mut Option<Option<(usize, usize, usize)>>,
    ) -> Option<(usize, usize, usize)> {
        let Some(q) = &self.prefilter else {
            // No filter (a pattern shorter than 4 bytes, or the trigger shares a pattern): always an automaton.
            let Engine::Automaton(ac) = &self.engine else {
                return None;
            };
            let m = ac.try_find(Input::new(hay).range(pos..)).ok().flatten()?;
            return Some((m.start(), m.end(), m.pattern().as_usize()));
        };
        let trig = match *next_trigger {
            Some(t) if t.is_none_or(|t| t >= pos) => t,
            _ => {
                let t = hay
                    .get(pos..)
                    .and_then(|h| self.trigger_finder.find(h))
                    .map(|i| pos + i);
                *next_trigger = Some(t);
                t
            }
        };
        // The next short form, cached like the trigger.
        let short = match (&self.short, *next_short) {
            (None, _) => None,
            (Some(_), Some(s)) if s.is_none_or(|s| s.0 >= pos) => s,
            (Some((ac, pids)), _) => {
                let s = ac
                    .find(Input::new(hay).range(pos..))
                    .and_then(|m| Some((m.start(), m.end(), *pids.get(m.pattern().as_usize())?)));
                *next_short = Some(s);
                s
            }
        };
        // A long match must start no later than the trigger and the next short form to come first (at the same
        // start it is longer).
        let last_start = trig
            .unwrap_or(hay.len())
            .min(short.map_or(hay.len(), |s| s.0));
        let hit = match &self.engine {
            Engine::Automaton(ac) => q.find(hay, pos, last_start, |s| {
                let input = Input::new(hay).range(s..).anchored(Anchored::Yes);
                let m = ac.try_find(input).ok().flatten()?;
                Some((m.start(), m.end(), m.pattern().as_usize()))
            }),
            Engine::Index(index) => {
                let mut buf = Vec::with_capacity(self.max_len);
                q.find(hay, pos, last_start, |s| {
                    index
                        .find_at(hay, s, &mut buf, |pid, b| self.pattern_accepts(pid, b))
                        .map(|(end, pid)| (s, end, pid))
                })
            }
        };
        let trig = trig.map(|t| (t, t + GZIP_B64_MAGIC.len(), self.trigger));
        match (hit, trig, short) {
            (Some(m), _, _) => Some(m),
            (None, Some(t), Some(s)) => Some(if (s.0, t.1) < (t.0, s.1) { s } else { t }),
            (None, t, s) => t.or(s),
        }
    }

    fn pattern_accepts(&self, pid: usize, bytes: &[u8]) -> bool {
        (pid == self.trigger && bytes == GZIP_B64_MAGIC)
            || self
                .targets
                .get(pid)
                .is_some_and(|l| l.iter().any(|t| t.accepts(bytes)))
    }

    /// Verify the automaton's match; if its exact case is wrong, fall back to the longest
    /// shorter pattern at the same start that does verify.
    fn resolve(&self, hay: &[u8], start: usize, pid: usize, end: usize) -> Option<(usize, usize)> {
        if self.pattern_accepts(pid, hay.get(start..end)?) {
            return Some((pid, end));
        }
        let rest = hay.get(start..)?;
        let found_len = end - start;
        self.by_len_desc.iter().find_map(|&q| {
            let p = self.lower.get(q)?;
            if p.len() >= found_len || p.len() > rest.len() {
                return None;
            }
            let cand = rest.get(..p.len())?;
            (cand.eq_ignore_ascii_case(p) && self.pattern_accepts(q, cand))
                .then_some((q, start + p.len()))
        })
    }

    fn emit<'m>(
        &'m self,
        pid: usize,
        bytes: &[u8],
        start: usize,
        end: usize,
        on: &mut impl FnMut(Event<'m>),
    ) {
        if let Some(list) = self.targets.get(pid) {
            for (i, t) in list.iter().enumerate() {
                if t.accepts(bytes)
                    && !list
                        .iter()
                        .take(i)
                        .any(|u| u.canary == t.canary && u.accepts(bytes))
                {
                    on(Event::Hit {
                        canary: t.canary,
                        encoding: &t.encoding,
                        start,
                        end,
                    });
                }
            }
        }
        if pid == self.trigger && bytes == GZIP_B64_MAGIC {
            on(Event::Trigger { start });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    use md5::Md5;
    use sha1::{Digest, Sha1};
    use sha2::{Sha256, Sha512};
    use std::io::Write;

    use crate::canary::forms::{hex, json_unicode, url_encode, utf16};

    pub use crate::testing::Rng;

    pub const IMEI: &str = "356938035643809";
    pub const PHONE: &str = "+1 (555) 555-0123";
    pub const NAME: &str = "Alice Canary";
    pub const EMAIL: &str = "alice.canary@example.invalid";

    pub fn identity() -> Identity {
        Identity::from_pairs(&[
            ("imei", IMEI),
            ("phone", PHONE),
            ("contact", NAME),
            ("email", EMAIL),
        ])
    }

    pub fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn hits(m: &Matcher, hay: &[u8]) -> Vec<Hit> {
        let mut out = Vec::new();
        m.find_all(hay, &mut out);
        out
    }

    /// Embed `form` in filler text and assert exactly one hit for `canary` with `label`
    /// covering the form.
    fn assert_found(m: &Matcher, canary: usize, label: &str, form: &[u8]) {
        let mut hay = b"GET /x?a=1&zz=".to_vec();
        let at = hay.len();
        hay.extend_from_slice(form);
        hay.extend_from_slice(b"&q=2 HTTP/1.1\r\n\r\n");
        let h = hits(m, &hay);
        assert!(
            h.iter().any(|h| h.canary == canary
                && &*h.encoding == label
                && h.start == at
                && h.end == at + form.len()),
            "canary {canary} {label} {:?} not found: {h:?}",
            String::from_utf8_lossy(form)
        );
    }

    #[test]
    fn every_form_is_found_for_each_kind_of_value() {
        let m = Matcher::new(&identity());
        for (ci, v) in [IMEI, PHONE, NAME, EMAIL].iter().enumerate() {
            let b = v.as_bytes();
            assert_found(&m, ci, "raw", b);
            assert_found(&m, ci, "raw", v.to_ascii_uppercase().as_bytes());
            if url_encode(b, true) != b {
                assert_found(&m, ci, "url", &url_encode(b, true));
                assert_found(&m, ci, "url", &url_encode(b, false));
                assert_found(
                    &m,
                    ci,
                    "url",
                    url_encode(b, false).to_ascii_lowercase().as_slice(),
                );
            }
            assert_found(&m, ci, "base64", STANDARD.encode(b).as_bytes());
            assert_found(&m, ci, "base64", STANDARD_NO_PAD.encode(b).as_bytes());
            let u = URL_SAFE.encode(b);
            let ul = if u == STANDARD.encode(b) {
                "base64"
            } else {
                "base64url"
            };
            assert_found(&m, ci, ul, u.as_bytes());
            assert_found(&m, ci, ul, URL_SAFE_NO_PAD.encode(b).as_bytes());
            assert_found(&m, ci, "hex", &hex(b));
            assert_found(&m, ci, "hex", &hex(b).to_ascii_uppercase());
            type Dig = fn(&[u8]) -> Vec<u8>;
            let ds: [(&str, Dig); 4] = [
                ("md5", |x| Md5::digest(x).to_vec()),
                ("sha1", |x| Sha1::digest(x).to_vec()),
                ("sha256", |x| Sha256::digest(x).to_vec()),
                ("sha512", |x| Sha512::digest(x).to_vec()),
            ];
            for (name, f) in ds {
                let d = f(b);
                assert_found(&m, ci, &format!("{name}>hex"), &hex(&d));
                assert_found(
                    &m,
                    ci,
                    &format!("{name}>hex"),
                    &hex(&d).to_ascii_uppercase(),
                );
                assert_found(
                    &m,
                    ci,
                    &format!("{name}>base64"),
                    STANDARD.encode(&d).as_bytes(),
                );
                assert_found(
                    &m,
                    ci,
                    &format!("{name}>base64"),
                    STANDARD_NO_PAD.encode(&d).as_bytes(),
                );
                let u = URL_SAFE.encode(&d);
                let ul = if u == STANDARD.encode(&d) {
                    "base64"
                } else {
                    "base64url"
                };
                assert_found(&m, ci, &format!("{name}>{ul}"), u.as_bytes());
                assert_found(
                    &m,
                    ci,
                    &format!("{name}>{ul}"),
                    URL_SAFE_NO_PAD.encode(&d).as_bytes(),
                );
            }
            assert_found(&m, ci, "json-unicode", &json_unicode(v, true));
            assert_found(
                &m,
                ci,
                "json-unicode",
                &json_unicode(v, true).to_ascii_uppercase(),
            );
            assert_found(&m, ci, "utf16le", &utf16(v, true));
            assert_found(&m, ci, "utf16be", &utf16(v, false));
            // Nested base64 of gzip, std and url-safe.
            let blob = STANDARD.encode(gz(format!("{{\"v\":\"{v}\"}}").as_bytes()));
            assert_found(&m, ci, "gzip>base64", blob.as_bytes());
            let blob = URL_SAFE_NO_PAD.encode(gz(&hex(b)));
            assert_found(&m, ci, "hex>gzip>base64", blob.as_bytes());
        }
        // Phone normalisations and their hashes.
        assert_found(&m, 1, "raw", b"15555550123");
        assert_found(&m, 1, "raw", b"+15555550123");
        assert_found(&m, 1, "raw", b"5555550123");
        assert_found(&m, 1, "sha256>hex", &hex(&Sha256::digest(b"15555550123")));
        assert_found(
            &m,
            1,
            "md5>base64",
            STANDARD.encode(Md5::digest(b"5555550123")).as_bytes(),
        );
        assert_found(&m, 1, "url", b"%2B15555550123");
        // Lower-cased e-mail/name hashed (common ad-tech normalisation).
        assert_found(&m, 2, "sha256>hex", &hex(&Sha256::digest(b"alice canary")));
    }

    #[test]
    fn short_forms_are_found_by_their_own_engine_with_the_long_ones_around() {
        let id = identity();
        let m = Matcher::new(&id);
        assert!(
            m.prefilter.is_some() && m.short.is_some(),
            "the identity has short binary forms"
        );
        let mut short_seen = 0;
        for (ci, c) in id.canaries.iter().enumerate() {
            for f in encoded_forms(&c.value) {
                // In binary filler, next to a long form of another canary, at every offset modulo the stride.
                for pad in 0..17 {
                    let mut hay = vec![0xa5u8; pad];
                    hay.extend_from_slice(&f.bytes);
                    hay.extend_from_slice(&[0xa5; 9]);
                    hay.extend_from_slice(EMAIL.as_bytes());
                    let h = hits(&m, &hay);
                    assert!(
                        h.iter()
                            .any(|x| x.canary == ci && x.start == pad && x.end > pad),
                        "{} ({}) at {pad}: {h:?}",
                        c.name,
                        f.encoding
                    );
                    assert!(h.iter().any(
                        |x| x.encoding.as_ref() == "raw" && x.start == pad + f.bytes.len() + 9
                    ));
                }
                short_seen += usize::from(f.bytes.len() < SHORT_FORM);
            }
        }
        assert!(short_seen > 0);
    }

    #[test]
    fn case_sensitive_forms_reject_wrong_case() {
        let m = Matcher::new(&identity());
        let b64 = STANDARD.encode(EMAIL);
        let swapped: String = b64
            .chars()
            .map(|c| {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        let h = hits(&m, format!("x={swapped};").as_bytes());
        assert!(h.is_empty(), "{h:?}");
        let d = Sha1::digest(IMEI.as_bytes());
        let h = hits(
            &m,
            format!("x={};", STANDARD.encode(d).to_ascii_lowercase()).as_bytes(),
        );
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn failed_verification_falls_back_to_shorter_pattern() {
        // Value whose base64 starts with the raw text of another canary, in wrong case.
        let id = Identity::from_pairs(&[("a", "QUJDREVG"), ("b", "ABCDEFGH")]);
        let m = Matcher::new(&id);
        // base64("ABCDEFGH") = "QUJDREVGR0g=", a case-sensitive form of `b`.
        let h = hits(&m, b"[qujdrevgr0g=]");
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(
            (h[0].canary, &*h[0].encoding, h[0].start, h[0].end),
            (0, "raw", 1, 9)
        );
        let h = hits(&m, b"[QUJDREVGR0g=]");
        assert_eq!((h[0].canary, &*h[0].encoding, h[0].end), (1, "base64", 13));
    }

    #[test]
    fn embedded_base64_in_json_at_every_alignment() {
        let m = Matcher::new(&identity());
        for ci in 0..4 {
            let v = m.identity().canaries[ci].value.clone();
            for pad in 0..3 {
                let doc = format!(
                    "{{\"device\":\"pixel{}\",\"owner\":{{\"field\":\"{v}\"}},\"ts\":1712345678}}",
                    "x".repeat(pad)
                );
                let off = doc.find(&v).unwrap();
                for (enc, label) in [
                    (STANDARD.encode(&doc), "base64"),
                    (URL_SAFE_NO_PAD.encode(&doc), "base64url"),
                ] {
                    let hay = format!("POST /t HTTP/1.1\r\n\r\npayload={enc}");
                    let h = hits(&m, hay.as_bytes());
                    let any = h.iter().any(|h| {
                        h.canary == ci && (&*h.encoding == label || &*h.encoding == "base64")
                    });
                    // Values with fewer than 8 stable characters at an alignment are skipped.
                    if crate::canary::forms::embedded_base64(v.as_bytes(), off % 3).is_some() {
                        assert!(any, "canary {ci} align {} {label}: {h:?}", off % 3);
                    }
                    assert!(h.iter().all(|h| h.canary == ci), "{h:?}");
                }
            }
        }
        // Our IMEI, name and e-mail are long enough for all three alignments.
        for v in [IMEI, NAME, EMAIL] {
            for k in 0..3 {
                assert!(
                    crate::canary::forms::embedded_base64(v.as_bytes(), k).is_some(),
                    "{v} {k}"
                );
            }
        }
    }

    #[test]
    fn base64_of_gzip_inside_json_field() {
        let m = Matcher::new(&identity());
        let inner = format!(
            "{{\"contacts\":[{{\"n\":\"{NAME}\",\"p\":\"{}\"}}],\"mail\":\"{}\"}}",
            "5555550123",
            STANDARD.encode(EMAIL)
        );
        let blob = STANDARD.encode(gz(inner.as_bytes()));
        // JSON with escaped slashes, as PHP/Java encoders write.
        let field = blob.replace('/', "\\/");
        let hay = format!("{{\"event\":\"sync\",\"data\":\"{field}\",\"n\":1}}");
        let h = hits(&m, hay.as_bytes());
        let start = hay.find("H4sI").unwrap();
        let end = start + field.len();
        let mut nested: Vec<(usize, &str)> = h
            .iter()
            .filter(|h| h.start == start && h.end == end)
            .map(|h| (h.canary, &*h.encoding))
            .collect();
        nested.sort();
        assert_eq!(
            nested,
            vec![
                (1, "gzip>base64"),
                (2, "gzip>base64"),
                (3, "base64>gzip>base64")
            ]
        );
        assert_eq!(m.nested_stats().blobs, 1);
        // Doubly nested.
        let outer = STANDARD.encode(gz(format!("x={blob}&y=1").as_bytes()));
        let h = hits(&m, format!("d={outer}").as_bytes());
        assert!(
            h.iter()
                .any(|h| h.canary == 2 && &*h.encoding == "gzip>base64>gzip>base64"),
            "{h:?}"
        );
    }

    #[test]
    fn gzip_inflate_cap_is_reported() {
        let m = Matcher::new(&identity());
        let mut big = vec![b'a'; INFLATE_CAP + 100];
        big.extend_from_slice(NAME.as_bytes());
        let blob = STANDARD.encode(gz(&big));
        let h = hits(&m, blob.as_bytes());
        assert!(h.is_empty());
        let s = m.nested_stats();
        assert_eq!((s.blobs, s.inflate_truncated), (1, 1));
    }

    #[test]
    fn no_hits_in_unrelated_data() {
        let m = Matcher::new(&identity());
        let hay = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test/1.0\r\nCookie: sid=QUJDREVGR0hJSktM; t=356938035643808\r\n\r\n";
        assert!(hits(&m, hay).is_empty());
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let random = rng.bytes(10 << 20);
        assert!(hits(&m, &random).is_empty());
        let printable = rng.printable(1 << 20);
        assert!(hits(&m, &printable).is_empty());
    }

    #[test]
    fn patterns_and_lengths() {
        let m = Matcher::new(&identity());
        let p = m.patterns();
        assert!(p.iter().any(|x| x == EMAIL.as_bytes()));
        assert!(p.iter().any(|x| x == GZIP_B64_MAGIC));
        assert_eq!(m.max_pattern_len(), p.iter().map(Vec::len).max().unwrap());
        assert!(m.automaton_patterns() <= p.len());
        assert_eq!(m.automaton_kind(), Some(AhoCorasickKind::DFA));
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Matcher>();
    }

    /// The strided q-gram prefilter and the separate trigger search change nothing: on haystacks full of planted
    /// forms (in every case, touching each other, at every offset), hits equal those of the plain automaton.
    #[test]
    fn prefiltered_search_equals_plain_automaton_search() {
        let m = Matcher::new(&identity());
        assert!(
            m.prefilter.is_some(),
            "the test identity must enable the prefilter"
        );
        assert_eq!(m.automaton_kind(), Some(AhoCorasickKind::DFA));
        same_hits_as_plain_automaton(&m);
    }

    /// The hash index of large identities finds what the automaton finds.
    #[test]
    fn index_search_equals_plain_automaton_search() {
        let m = Matcher::build(&identity(), true).unwrap();
        assert_eq!(m.automaton_kind(), None, "the index is used");
        same_hits_as_plain_automaton(&m);
        // A case-sensitive form in the wrong case falls back to the shorter pattern that verifies.
        let b64 = STANDARD.encode(IMEI);
        let h = hits(&m, format!("x{}y", b64.to_ascii_lowercase()).as_bytes());
        assert!(h.iter().all(|h| &*h.encoding != "base64"), "{h:?}");
        let h = hits(&m, format!("x{b64}y").as_bytes());
        assert!(h.iter().any(|h| &*h.encoding == "base64"), "{h:?}");
    }

    /// Planted forms (in every case, touching each other, at every offset): hits equal those of the plain,
    /// unfiltered automaton.
    fn same_hits_as_plain_automaton(m: &Matcher) {
        let mut plain = Matcher::new(&identity());
        plain.prefilter = None;
        plain.engine = super::Engine::Automaton(
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&plain.lower)
                .unwrap(),
        );
        let forms: Vec<Vec<u8>> = m.patterns();
        let mut rng = Rng(0xfeed_beef);
        for round in 0..300 {
            let mut hay = Vec::new();
            for _ in 0..rng.below(12) {
                let n = rng.below(40);
                hay.extend(rng.printable(n));
                let f = &forms[rng.below(forms.len())];
                let mut f = f.clone();
                if round % 3 == 1 {
                    f.make_ascii_uppercase();
                }
                hay.extend_from_slice(&f);
                if rng.below(4) == 0 {
                    hay.extend_from_slice(b"H4sI");
                }
            }
            let mut a = Vec::new();
            let mut b = Vec::new();
            m.find_all(&hay, &mut a);
            plain.find_all(&hay, &mut b);
            assert_eq!(a, b, "round {round}: {:?}", String::from_utf8_lossy(&hay));
        }
    }

    /// 3,000 contacts (about 170,000 patterns) cost a few tens of MB, not 0.75 MB each (issue 18), and a
    /// planted contact is still found in its encodings.
    #[test]
    fn thousands_of_contacts_stay_small() {
        let mut yaml = String::from("imei: \"356938035643809\"\ncontacts:\n");
        let syl = [
            "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "shu", "dra", "gen",
        ];
        let mut rng = Rng(7);
        let mut names = std::collections::BTreeSet::new();
        while names.len() < 3000 {
            let mut n = String::new();
            for i in 0..7 {
                if i == 3 {
                    n.push(' ');
                }
                n.push_str(syl[rng.below(syl.len())]);
            }
            names.insert(n[..1].to_uppercase() + &n[1..]);
        }
        for n in &names {
            yaml.push_str(&format!("  - \"{n}\"\n"));
        }
        let id = Identity::from_yaml(&yaml, "contacts.yaml").unwrap();
        let m = Matcher::new(&id);
        assert!(
            m.automaton_patterns() > 100_000,
            "{}",
            m.automaton_patterns()
        );
        assert_eq!(m.automaton_kind(), None);
        let mb = m.memory_usage() as f64 / (1 << 20) as f64;
        // Informational (other tests share the process): the peak RSS so far, for BENCHMARKS.md.
        let hwm = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM"))
                    .map(str::to_owned)
            });
        eprintln!("{} patterns, {mb:.1} MB; {hwm:?}", m.automaton_patterns());
        assert!(mb < 64.0, "{mb:.1} MB");
        let last = names.iter().last().unwrap();
        let hay = format!(
            "{{\"n\":\"{}\",\"h\":\"{}\"}}",
            STANDARD.encode(last),
            String::from_utf8_lossy(&hex(&Sha256::digest(last.as_bytes())))
        );
        let h = hits(&m, hay.as_bytes());
        let want = id.canaries.iter().position(|c| c.value == *last).unwrap();
        assert!(
            h.iter()
                .any(|h| h.canary == want && &*h.encoding == "base64"),
            "{h:?}"
        );
        assert!(
            h.iter()
                .any(|h| h.canary == want && &*h.encoding == "sha256>hex"),
            "{h:?}"
        );
    }

    #[test]
    fn non_overlapping_leftmost_longest() {
        let m = Matcher::new(&identity());
        let h = hits(&m, b"tel=+15555550123;");
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].start, h[0].end), (4, 16));
        let h = hits(&m, format!("{IMEI}{IMEI}").as_bytes());
        assert_eq!(h.len(), 2);
    }
}
