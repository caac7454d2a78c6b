//! Nested base64-of-gzip blobs: collecting the base64 run that starts at a `H4sI` trigger
//! (the base64 text of the gzip magic), decoding it and inflating it with an output cap.
//!
//! The run collector is incremental ([`B64Run::push`] may be called once per chunk) so the
//! stream scanner and the one-buffer matcher share exactly the same run boundaries.

use std::io::Read;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// The base64 text of the gzip header start `1f 8b 08`.
pub const GZIP_B64_MAGIC: &[u8] = b"H4sI";
/// A base64 run is cut after this many raw bytes (it is then decoded as far as it goes).
pub const RUN_CAP: usize = 1 << 20;
/// Inflated output per blob is cut at this many bytes.
pub const INFLATE_CAP: usize = 4 << 20;
/// Total inflated bytes allowed for one top-level blob including blobs nested inside it.
pub const INFLATE_BUDGET: usize = 16 << 20;
/// Levels of base64-of-gzip that are opened (a blob inside a blob is level 2).
pub const MAX_DEPTH: usize = 2;

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Counters for nested blobs; every cap that was hit is counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NestedStats {
    /// Blobs (base64 runs starting with `H4sI`) that were decoded.
    pub blobs: u64,
    /// Blobs that did not decode/inflate to anything.
    pub undecodable: u64,
    /// Blobs whose inflated output hit [`INFLATE_CAP`] or the per-blob [`INFLATE_BUDGET`].
    pub inflate_truncated: u64,
    /// Runs cut at [`RUN_CAP`] raw bytes.
    pub run_truncated: u64,
    /// Runs cut by a capture gap or the end of the stream (stream scanner only).
    pub run_interrupted: u64,
}

impl NestedStats {
    /// Add another set of counters to this one.
    pub fn add(&mut self, o: &NestedStats) {
        self.blobs += o.blobs;
        self.undecodable += o.undecodable;
        self.inflate_truncated += o.inflate_truncated;
        self.run_truncated += o.run_truncated;
        self.run_interrupted += o.run_interrupted;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Normal,
    /// Saw `\`.
    Backslash,
    /// Saw `%`.
    Pct0,
    /// Saw `%` and one hex digit (the digit as sent).
    Pct1(u8),
}

/// Incremental collector of one base64 run. Accepts both alphabets, optional `=` padding,
/// JSON `\/`, URL-encoded `%2B %2F %3D`, and line breaks (`\r`, `\n`, or the JSON escapes
/// `\r`, `\n`) after a multiple of 4 characters, as MIME/Android encoders produce.
#[derive(Debug, Clone)]
pub struct B64Run {
    /// Normalised standard-alphabet characters, padding removed.
    pub data: Vec<u8>,
    /// Raw bytes accepted into the run.
    pub raw_len: usize,
    /// Raw length up to and including the last data or padding character.
    pub data_end: usize,
    /// The run is complete.
    pub done: bool,
    /// The run was cut at [`RUN_CAP`].
    pub capped: bool,
    state: St,
    padded: bool,
    line_chars: usize,
    in_break: bool,
}

impl Default for B64Run {
    fn default() -> Self {
        Self::new()
    }
}

impl B64Run {
    /// An empty run.
    pub fn new() -> B64Run {
        B64Run {
            data: Vec::new(),
            raw_len: 0,
            data_end: 0,
            done: false,
            capped: false,
            state: St::Normal,
            padded: false,
            line_chars: 0,
            in_break: false,
        }
    }

    fn pending(&self) -> usize {
        match self.state {
            St::Normal => 0,
            St::Backslash | St::Pct0 => 1,
            St::Pct1(_) => 2,
        }
    }

    fn can_break(&self) -> bool {
        !self.padded && (self.in_break || (self.line_chars > 0 && self.line_chars % 4 == 0))
    }

    /// Accept a data character (already normalised) that took `raw` raw bytes.
    fn data_char(&mut self, c: u8, raw: usize) {
        if self.padded {
            self.done = true;
            return;
        }
        self.data.push(c);
        self.raw_len += raw;
        self.data_end = self.raw_len;
        self.line_chars += 1;
        self.in_break = false;
        self.state = St::Normal;
    }

    fn pad_char(&mut self, raw: usize) {
        self.padded = true;
        self.raw_len += raw;
        self.data_end = self.raw_len;
        self.state = St::Normal;
    }

    fn line_break(&mut self, raw: usize) {
        if self.can_break() {
            self.raw_len += raw;
            self.line_chars = 0;
            self.in_break = true;
            self.state = St::Normal;
        } else {
            self.done = true;
        }
    }

    /// Feed the next bytes of the run. Returns how many bytes were examined (all of them
    /// unless the run ended inside `bytes`).
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            if self.done {
                return i;
            }
            if self.raw_len.saturating_add(self.pending()) >= RUN_CAP {
                self.done = true;
                self.capped = true;
                return i;
            }
            match self.state {
                St::Normal => match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => self.data_char(b, 1),
                    b'-' => self.data_char(b'+', 1),
                    b'_' => self.data_char(b'/', 1),
                    b'=' => self.pad_char(1),
                    b'\\' => self.state = St::Backslash,
                    b'%' => self.state = St::Pct0,
                    b'\r' | b'\n' => self.line_break(1),
                    _ => self.done = true,
                },
                St::Backslash => match b {
                    b'/' => self.data_char(b'/', 2),
                    b'n' | b'r' => self.line_break(2),
                    _ => self.done = true,
                },
                St::Pct0 if b.is_ascii_hexdigit() => self.state = St::Pct1(b),
                St::Pct0 => self.done = true,
                St::Pct1(hi) => match pct_byte(hi, b) {
                    Some(b'+') => self.data_char(b'+', 3),
                    Some(b'/') => self.data_char(b'/', 3),
                    Some(b'=') => self.pad_char(3),
                    _ => self.done = true,
                },
            }
        }
        bytes.len()
    }

    /// No more bytes will come: the run ends here (a pending escape is dropped).
    pub fn finish(&mut self) {
        self.done = true;
    }
}

/// The byte a `%` escape with hex digits `hi` and `lo` stands for, if both are hex digits.
fn pct_byte(hi: u8, lo: u8) -> Option<u8> {
    let mut out = [0u8; 1];
    hex::decode_to_slice([hi, lo], &mut out).ok()?;
    let [byte] = out;
    Some(byte)
}

/// Decode normalised base64 characters (standard alphabet, no padding) as far as they go.
pub fn decode_b64(data: &[u8]) -> Option<Vec<u8>> {
    let n = if data.len() % 4 == 1 {
        data.len() - 1
    } else {
        data.len()
    };
    LENIENT.decode(data.get(..n)?).ok()
}

/// Inflate a gzip member, keeping at most `cap` output bytes. Corrupt or truncated input
/// yields what was inflated before the problem. Returns `(output, truncated_at_cap)`.
pub fn gunzip_capped(gz: &[u8], cap: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let dec = flate2::read::GzDecoder::new(gz);
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    // Errors (corrupt data, early end) keep the bytes read so far.
    let _ = dec.take(limit).read_to_end(&mut out);
    let truncated = out.len() > cap;
    out.truncate(cap);
    (out, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn run_of(bytes: &[u8]) -> B64Run {
        let mut r = B64Run::new();
        r.push(bytes);
        r.finish();
        r
    }

    #[test]
    fn run_boundaries() {
        let r = run_of(b"QUJD\"rest");
        assert_eq!(
            (r.raw_len, r.data_end, r.data.as_slice()),
            (4, 4, b"QUJD".as_slice())
        );
        let r = run_of(b"QUI=QUJD");
        assert_eq!((r.raw_len, r.data.as_slice()), (4, b"QUI".as_slice()));
        let r = run_of(b"ab-_%2b%2F%3d%3D,");
        assert_eq!((r.raw_len, r.data.as_slice()), (16, b"ab+/+/".as_slice()));
        let r = run_of(b"ab\\/cd\\x");
        assert_eq!((r.raw_len, r.data.as_slice()), (6, b"ab/cd".as_slice()));
        // Line breaks only after a multiple of 4 characters.
        let r = run_of(b"QUJD\r\nQUJD\\nQU\nxx");
        assert_eq!((r.raw_len, r.data_end), (14, 14));
        assert_eq!(r.data, b"QUJDQUJDQU");
        // Trailing break is accepted but not part of the data end.
        let r = run_of(b"QUJD\n}");
        assert_eq!((r.raw_len, r.data_end), (5, 4));
    }

    #[test]
    fn run_is_chunking_independent() {
        let text = b"H4sIQUJD\\/ab%2Bcd\r\nQUJDQUJD\\nQUJD%3d%3D tail";
        let whole = run_of(text);
        for split in 1..text.len() {
            let mut r = B64Run::new();
            let n = r.push(&text[..split]);
            if !r.done {
                assert_eq!(n, split);
                r.push(&text[split..]);
            }
            r.finish();
            assert_eq!(
                (r.raw_len, r.data_end, &r.data),
                (whole.raw_len, whole.data_end, &whole.data),
                "split {split}"
            );
        }
    }

    #[test]
    fn run_cap() {
        let big = vec![b'A'; RUN_CAP + 10];
        let r = run_of(&big);
        assert!(r.capped);
        assert_eq!(r.raw_len, RUN_CAP);
    }

    #[test]
    fn decode_and_inflate() {
        let z = gz(b"hello canary world");
        let txt = STANDARD.encode(&z);
        assert!(txt.starts_with("H4sI"));
        let r = run_of(txt.as_bytes());
        let bytes = decode_b64(&r.data).unwrap();
        assert_eq!(
            gunzip_capped(&bytes, 100),
            (b"hello canary world".to_vec(), false)
        );
        assert_eq!(gunzip_capped(&bytes, 5), (b"hello".to_vec(), true));
        // Url-safe, unpadded, truncated in the middle: partial output.
        let big: Vec<u8> = (0..20000u32).flat_map(|i| i.to_le_bytes()).collect();
        let z = gz(&big);
        let txt = URL_SAFE_NO_PAD.encode(&z);
        let r = run_of(&txt.as_bytes()[..txt.len() / 2]);
        let bytes = decode_b64(&r.data).unwrap();
        let (out, trunc) = gunzip_capped(&bytes, INFLATE_CAP);
        assert!(!trunc);
        assert!(!out.is_empty() && out.len() < big.len());
        assert_eq!(&big[..out.len()], out.as_slice());
        // Garbage.
        assert_eq!(gunzip_capped(b"\x1f\x8b\x08garbage", 10).0, b"");
        assert_eq!(decode_b64(b"A"), Some(Vec::new()));
    }
}
