//! Canary detection: the identity file of planted fake personal values, every wire encoding of
//! those values, and a one-pass matcher over buffers and reassembled byte streams.
//!
//! * [`identity`] — parse/validate the YAML identity file ([`Identity`], [`IdentityError`]).
//! * [`forms`] — the encoded forms of a value (raw, url, base64 incl. embedded fragments, hex,
//!   hashes, JSON `\u` escapes, UTF-16) with their encoding-chain labels.
//! * [`matcher`] — [`Matcher`]: ONE case-insensitive leftmost-longest Aho-Corasick automaton
//!   over all forms, with exact-case verification for base64 text and base64-of-gzip opening.
//! * [`xor`] — the canaries' values under a single-byte XOR, any key, found in one pass.
//! * [`stream`] — [`StreamScanner`]: the same matches over a chunked stream with absolute
//!   offsets, hits straddling chunk boundaries found exactly once, bounded memory.
//!
//! Sans-IO: everything takes byte slices and returns values.

pub mod forms;
pub mod identity;
pub mod matcher;
pub mod nested;
pub mod stream;
pub mod xor;

pub use identity::{Canary, Identity, IdentityError, IdentityErrorKind, MIN_VALUE_LEN};
pub use matcher::{Hit, Matcher, MatcherError};
pub use nested::NestedStats;
pub use stream::{StreamHit, StreamScanner};

/// Bytes of context shown before and after a hit in excerpts.
pub const EXCERPT_CONTEXT: usize = 24;
/// Upper bound on the characters of an excerpt (plus a `…` when something was elided).
pub const EXCERPT_MAX_CHARS: usize = 80;

fn escape_into(out: &mut Vec<String>, bytes: &[u8]) {
    for &b in bytes {
        out.push(match b {
            b'\\' => "\\\\".to_string(),
            0x20..=0x7e => char::from(b).to_string(),
            _ => format!("\\x{b:02x}"),
        });
    }
}

/// A short printable excerpt: `before` (its end), the `hit` (middle elided with `…` when long)
/// and `after` (its start); non-printable bytes are escaped as `\xNN`, `\` as `\\`. At most
/// about [`EXCERPT_MAX_CHARS`] characters.
pub fn excerpt(before: &[u8], hit: &[u8], after: &[u8]) -> String {
    let (mut b, mut h, mut a) = (Vec::new(), Vec::new(), Vec::new());
    escape_into(&mut b, before);
    escape_into(&mut h, hit);
    escape_into(&mut a, after);
    let width = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    let max_hit = EXCERPT_MAX_CHARS - 2 * 16;
    let hit_text = if width(&h) > max_hit {
        // Keep a head and a tail of the hit.
        let mut head = String::new();
        for t in &h {
            if head.len() + t.len() > max_hit * 2 / 3 {
                break;
            }
            head.push_str(t);
        }
        let mut tail: Vec<&String> = Vec::new();
        let mut tl = 0;
        for t in h.iter().rev() {
            if tl + t.len() > max_hit / 3 - 1 {
                break;
            }
            tl += t.len();
            tail.push(t);
        }
        let tail: String = tail.into_iter().rev().map(String::as_str).collect();
        format!("{head}…{tail}")
    } else {
        h.concat()
    };
    let hit_w = hit_text.chars().count();
    let room = EXCERPT_MAX_CHARS.saturating_sub(hit_w);
    let mut before_s = String::new();
    let mut used = 0;
    let mut parts: Vec<&String> = Vec::new();
    for t in b.iter().rev() {
        if used + t.len() > room / 2 {
            break;
        }
        used += t.len();
        parts.push(t);
    }
    for t in parts.into_iter().rev() {
        before_s.push_str(t);
    }
    let mut after_s = String::new();
    let room_after = room.saturating_sub(used);
    for t in &a {
        if after_s.len() + t.len() > room_after {
            break;
        }
        after_s.push_str(t);
    }
    format!("{before_s}{hit_text}{after_s}")
}

/// [`excerpt`] of `hay[start..end]` with [`EXCERPT_CONTEXT`] bytes either side (clamped).
pub fn excerpt_at(hay: &[u8], start: usize, end: usize) -> String {
    let end = end.min(hay.len());
    let start = start.min(end);
    let b0 = start.saturating_sub(EXCERPT_CONTEXT);
    let a1 = end.saturating_add(EXCERPT_CONTEXT).min(hay.len());
    excerpt(
        hay.get(b0..start).unwrap_or(&[]),
        hay.get(start..end).unwrap_or(&[]),
        hay.get(end..a1).unwrap_or(&[]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_escapes_and_bounds() {
        assert_eq!(
            excerpt(b"a=\x01", b"Alice", b"\\\n"),
            "a=\\x01Alice\\\\\\x0a"
        );
        let long = vec![b'x'; 500];
        let e = excerpt(&long, &[b'H'; 300], &long);
        assert!(e.chars().count() <= EXCERPT_MAX_CHARS + 1, "{e}");
        assert!(e.contains('…'));
        let e = excerpt_at(&[0u8; 100], 40, 50);
        assert!(e.chars().count() <= EXCERPT_MAX_CHARS + 1, "{e}");
        assert!(e.starts_with("\\x00"));
        assert_eq!(excerpt_at(b"abc", 5, 9), "abc");
    }
}
