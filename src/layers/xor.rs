//! Single-byte XOR: the cheapest obfuscation there is (a fixed key XORed over a short payload), and one SDKs use
//! to keep identifiers out of plain sight in telemetry datagrams.
//!
//! Keys below 0x80 mostly keep text printable, so such input is taken for text and searched as it is; the
//! opener is for the keys that turn text into binary. Tried only on short binary input ([`MIN_LEN`]..=[`MAX_LEN`] bytes, less than 3/4 printable, at most 5 % zero
//! bytes) that no structure
//! or codec opened (it is the graph's last detector but one). Every key 0x01..=0xff is scored by the text it
//! yields; the best key is taken when its output is at least [`MIN_PRINTABLE_PCT`] % printable ASCII, and handed
//! on as one child labelled with the key, `xor[0x5a]`, so the finding names the key it was hidden with. The cost
//! is bounded: 255 passes over at most [`MAX_LEN`] bytes, each stopping as soon as the key cannot reach the bar.

use super::Child;

/// Shortest input tried (shorter, a key that yields text is found by chance too often).
pub const MIN_LEN: usize = 12;
/// Longest input tried (longer bodies are files and streams, which a single-byte key does not hide).
pub const MAX_LEN: usize = 4096;
/// Share of printable bytes (percent) the output must reach.
pub const MIN_PRINTABLE_PCT: usize = 95;

fn printable(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\r' | b'\n')
}

/// Text-likeness of one byte: lower-case letters, digits and spaces (what identifiers and documents are mostly
/// made of) count more than other printable bytes, so that case-flipping keys (0x20) lose to the real one.
fn weight(c: u8) -> usize {
    match c {
        b'a'..=b'z' | b'0'..=b'9' | b' ' | b'"' | b':' | b',' | b'.' | b'@' => 3,
        _ if printable(c) => 1,
        _ => 0,
    }
}

/// The input XORed with the best key, when one yields text (see the module docs); `None` otherwise.
pub fn open(input: &[u8]) -> Option<Vec<Child>> {
    let n = input.len();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return None;
    }
    let plain = input.iter().filter(|&&c| printable(c)).count();
    if plain * 4 >= n * 3 {
        return None;
    }
    // Zero-filled binary (padding, counters, NTP-style headers) turns into spaces under key 0x20 but hides
    // nothing: text XORed with a key has a zero byte only where the text held the key itself.
    let zeros = input.iter().filter(|&&c| c == 0).count();
    if zeros * 20 > n {
        return None;
    }
    // Non-printable bytes allowed in the output.
    let allowed = n * (100 - MIN_PRINTABLE_PCT) / 100;
    let mut best: Option<(usize, u8)> = None;
    for key in 1..=255u8 {
        let mut bad = 0;
        let mut score = 0;
        for &c in input {
            let w = weight(c ^ key);
            if w == 0 {
                bad += 1;
                if bad > allowed {
                    break;
                }
            }
            score += w;
        }
        if bad > allowed {
            continue;
        }
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, key));
        }
    }
    let (_, key) = best?;
    Some(vec![Child {
        label: format!("xor[{key:#04x}]"),
        field: None,
        bytes: input.iter().map(|&c| c ^ key).collect(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xor(d: &[u8], k: u8) -> Vec<u8> {
        d.iter().map(|&c| c ^ k).collect()
    }

    #[test]
    fn the_key_is_found_and_named() {
        let doc = br#"{"imei":"356938035643809","mail":"alice.canary@example.invalid"}"#;
        for key in [0x80, 0xa5, 0xc3, 0xff] {
            let c = open(&xor(doc, key)).expect("xor'd text");
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].label, format!("xor[{key:#04x}]"));
            assert_eq!(c[0].bytes, doc.to_vec(), "key {key:#04x}");
        }
    }

    #[test]
    fn text_short_long_and_random_input_are_refused() {
        // A key below 0x80 leaves most of a text printable: the input is taken for text (and searched as it is).
        assert!(open(&xor(b"{\"imei\":\"356938035643809\"}", 0x01)).is_none());
        assert!(open(b"plain text is searched as it is").is_none());
        assert!(open(&xor(b"short", 0x5a)).is_none());
        assert!(open(&xor(&[b'a'; MAX_LEN + 1], 0x5a)).is_none());
        let mut ntp = vec![0u8; 48];
        ntp[0] = 0x23;
        assert!(open(&ntp).is_none());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut accepted = 0;
        for _ in 0..2000 {
            let len = MIN_LEN + (x % 200) as usize;
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if open(&buf).is_some() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 0, "random buffers taken for XOR'd text");
    }
}
