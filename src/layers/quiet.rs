//! The quiet-input test: a fast proof that the decoding graph cannot decode anything from an input that is not
//! already its own bytes, so that [`super::graph::explore`] can skip it.
//!
//! An input is *quiet* when every byte is printable ASCII or a line feed, none of the bytes a text layer treats
//! specially occurs (`%` `+` for percent-encoding, `\` for JSON escapes, `&` `<` for XML entities and markup, `=`
//! for forms, cookies, quoted-printable and base64 padding; a tab, a carriage return or any other control byte),
//! and no run of an encoding alphabet (`A–Z a–z 0–9 + / - _`) reaches [`MIN_RUN`] bytes. For such an input, layer
//! by layer:
//! - multipart, JSON, XML, cookies and forms yield only substrings of the input (no escape, entity, `%`, `+` or
//!   transfer encoding to undo), which the caller has already searched as part of the input;
//! - base64, base64url, base32 and hex need a run of [`MIN_RUN`] alphabet characters (`text::runs`);
//! - compression, zip and tar need a magic or a header with bytes outside printable ASCII, and the structured
//!   walkers (protobuf, MessagePack, CBOR) can only read numbers or byte strings out of such bytes where their
//!   tags and values are control bytes or ≥ 0x80 (a 64-bit value made of printable bytes is at least
//!   0x2020…20, more digits than any canary; carriage returns and tabs, the other tags, are loud);
//! - single-byte XOR opens only binary input (a quarter of its bytes not printable).
//!
//! Most uploads are JSON or text telemetry that is quiet, so this keeps the graph's cost on traffic without
//! layers to one pass at SIMD speed (SSE2, part of every x86-64 CPU; a scalar loop elsewhere) instead of a
//! dozen detector passes. The two implementations are tested against each other.

#![allow(unsafe_code)]

/// Alphabet runs shorter than this are not decoded (the same bound as `text::runs`).
pub const MIN_RUN: usize = super::text::MIN_RUN;

/// A byte that can start or be part of a layer (see the module documentation).
fn loud(c: u8) -> bool {
    c >= 0x7f || (c < 0x20 && c != b'\n') || matches!(c, b'%' | b'+' | b'\\' | b'&' | b'<' | b'=')
}

/// A byte of one of the encoding alphabets (base64, base64url, base32, hex).
fn alpha(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_')
}

/// Whether no layer of the decoding graph can open anything in `b` (see the module documentation).
pub fn is_quiet(b: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: SSE2 is part of the x86-64 baseline; every x86-64 CPU has it.
        unsafe { sse2::is_quiet(b) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        scalar(b, 0)
    }
}

/// The reference implementation; `run` is the length of the alphabet run that ends just before `b`.
fn scalar(b: &[u8], mut run: usize) -> bool {
    for &c in b {
        if loud(c) {
            return false;
        }
        if alpha(c) {
            run += 1;
            if run >= MIN_RUN {
                return false;
            }
        } else {
            run = 0;
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
        _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    const _: () = assert!(super::MIN_RUN == 16, "has_run below tests for runs of 16");

    #[target_feature(enable = "sse2")]
    pub(super) fn is_quiet(b: &[u8]) -> bool {
        let mut chunks = b.chunks_exact(64);
        // Bit i: byte i of the previous 64 is in an encoding alphabet.
        let mut prev: u64 = 0;
        for ch in &mut chunks {
            let mut loud = 0u64;
            let mut alpha = 0u64;
            for (k, v16) in ch.chunks_exact(16).enumerate() {
                // SAFETY: `v16` is 16 readable bytes (chunks_exact); the load has no alignment requirement.
                let v = unsafe { _mm_loadu_si128(v16.as_ptr().cast::<__m128i>()) };
                let (l, a) = classify(v);
                loud |= u64::from(l) << (16 * k);
                alpha |= u64::from(a) << (16 * k);
            }
            if loud != 0 || has_run(prev, alpha) {
                return false;
            }
            prev = alpha;
        }
        super::scalar(chunks.remainder(), prev.leading_ones() as usize)
    }

    /// Whether 16 consecutive bits are set in the 128 bits `cur:prev` (bytes in order).
    fn has_run(prev: u64, cur: u64) -> bool {
        let mut m = (u128::from(cur) << 64) | u128::from(prev);
        m &= m >> 1;
        m &= m >> 2;
        m &= m >> 4;
        m &= m >> 8;
        m != 0
    }

    #[target_feature(enable = "sse2")]
    fn set(c: u8) -> __m128i {
        _mm_set1_epi8(c as i8)
    }

    /// (loud, alphabet) masks of 16 bytes, bit i for byte i.
    #[target_feature(enable = "sse2")]
    fn classify(v: __m128i) -> (u16, u16) {
        macro_rules! eq {
            ($c:expr) => {
                _mm_cmpeq_epi8(v, set($c))
            };
        }
        // Signed compare: below 0x20, or 0x80 and above (negative).
        let low = _mm_cmplt_epi8(v, set(0x20));
        let ctrl = _mm_andnot_si128(eq!(b'\n'), low);
        let specials = _mm_or_si128(
            _mm_or_si128(
                _mm_or_si128(eq!(0x7f), eq!(b'%')),
                _mm_or_si128(eq!(b'+'), eq!(b'\\')),
            ),
            _mm_or_si128(_mm_or_si128(eq!(b'&'), eq!(b'<')), eq!(b'=')),
        );
        let loud = _mm_or_si128(ctrl, specials);
        let digit = _mm_and_si128(
            _mm_cmpgt_epi8(v, set(b'0' - 1)),
            _mm_cmplt_epi8(v, set(b'9' + 1)),
        );
        let folded = _mm_or_si128(v, set(0x20));
        let letter = _mm_and_si128(
            _mm_cmpgt_epi8(folded, set(b'a' - 1)),
            _mm_cmplt_epi8(folded, set(b'z' + 1)),
        );
        let alpha = _mm_or_si128(
            _mm_or_si128(digit, letter),
            _mm_or_si128(
                _mm_or_si128(eq!(b'/'), eq!(b'-')),
                _mm_or_si128(eq!(b'_'), eq!(b'+')),
            ),
        );
        (
            _mm_movemask_epi8(loud) as u16,
            _mm_movemask_epi8(alpha) as u16,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    #[test]
    fn the_fast_test_agrees_with_the_reference_on_every_kind_of_input() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        // Alphabets that make quiet and loud inputs and runs of every length around the bound.
        let alphabets: [&[u8]; 5] = [
            b"abc.,: {}[]\"\n",
            b"abcdefghijklmnopqrstuvwxyz0123456789 ,.",
            b"aZ09/_- ,",
            b"abcdef ,.%+=&<\\\t\r",
            &[0x00, 0x7f, 0x80, 0xff, b'a', b' '],
        ];
        let mut agree = 0;
        for i in 0..20_000 {
            let alphabet = alphabets[i % alphabets.len()];
            let len = (rng.next() % 300) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(
                is_quiet(&input),
                scalar(&input, 0),
                "disagree on {:?}",
                String::from_utf8_lossy(&input)
            );
            agree += 1;
        }
        assert_eq!(agree, 20_000);
        // Every position of a run of exactly 15 and 16 alphabet bytes, across 64-byte block edges.
        for at in 0..140 {
            for len in [15usize, 16] {
                let mut v = vec![b' '; 200];
                v[at..at + len].fill(b'A');
                assert_eq!(is_quiet(&v), len < MIN_RUN, "run of {len} at {at}");
            }
        }
        // Each loud byte anywhere in a long quiet text.
        for c in 0..=255u8 {
            let mut v = b"{\"k\": \"v\", \"n\": 12}\n".repeat(10);
            v[150] = c;
            assert_eq!(is_quiet(&v), !loud(c), "byte {c:#04x}");
        }
    }

    #[test]
    fn telemetry_json_is_quiet_and_every_encoding_is_not() {
        let json = br#"{"device":"model-x","events":[{"t":1700000123,"metric":"cpu.temperature","value":12.5,"tags":["temperature","3456789012"]}]}"#;
        assert!(is_quiet(json));
        for loud in [
            &br#"{"id":"MzU2OTM4MDM1NjQzODA5"}"#[..], // base64 without padding, 20 characters
            br#"{"id":"3335363933383033353634"}"#,    // hex
            b"imei=356938035643809",                  // a form
            br#"{"n":"Alice\u0020Canary"}"#,          // a JSON escape
            b"name=Alice%20Canary",                   // percent-encoding
            b"<a>&#51;56938035643809</a>",            // an XML entity
            b"\x1f\x8b\x08\x00",                      // gzip
        ] {
            assert!(!is_quiet(loud), "{:?}", String::from_utf8_lossy(loud));
        }
    }
}
