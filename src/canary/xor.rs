//! Canaries hidden under a single-byte XOR, whatever the key, found without trying the keys.
//!
//! XOR with one key leaves the difference of neighbouring bytes as it was: `(a ^ k) ^ (b ^ k) == a ^ b`. So the
//! differences of the input (`d[i] = x[i] ^ x[i+1]`) hold the differences of a canary's value exactly where the
//! input holds the value under some key, and that key is `x[i] ^ value[0]`; no other check is needed (the first
//! byte and the differences fix every byte). One automaton over the values' differences finds every key in one
//! pass, low keys included: the graph's own XOR opener (`layers::xor`) guesses the key from how text-like the
//! output is, which works only for keys that turn text into binary (0x80 and above). A key below 0x80 keeps text
//! printable, so a body hidden with it looks like plain text and is searched as it is — where nothing is found.
//!
//! Only the values as planted (not their other encoded forms) are looked for, and only values of at least
//! [`MIN_VALUE`] bytes: a shorter value's differences are found by chance too often.

use aho_corasick::{AhoCorasick, MatchKind};

use super::Identity;

/// Shortest value looked for under XOR (its differences are one byte shorter).
pub const MIN_VALUE: usize = 8;

/// The automaton over the canaries' differences.
pub(crate) struct XorFinder {
    ac: Option<AhoCorasick>,
    /// First byte of each pattern's value.
    first: Vec<u8>,
}

impl std::fmt::Debug for XorFinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XorFinder({} values)", self.first.len())
    }
}

fn differences(bytes: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend(bytes.windows(2).map(|w| w[0] ^ w[1]));
}

impl XorFinder {
    /// The finder for the values of `identity` that are at least [`MIN_VALUE`] bytes long.
    pub(crate) fn new(identity: &Identity) -> XorFinder {
        let mut pats: Vec<Vec<u8>> = Vec::new();
        let mut first = Vec::new();
        let mut d = Vec::new();
        for c in &identity.canaries {
            let v = c.value.as_bytes();
            if v.len() < MIN_VALUE {
                continue;
            }
            differences(v, &mut d);
            if !pats.iter().zip(&first).any(|(p, &f)| *p == d && f == v[0]) {
                pats.push(d.clone());
                first.push(v[0]);
            }
        }
        let ac = if pats.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&pats)
                .ok()
        };
        XorFinder { ac, first }
    }

    /// The keys (never 0, which is no XOR at all) under which some canary's value stands in `input`, in
    /// ascending order without repeats.
    pub(crate) fn keys(&self, input: &[u8]) -> Vec<u8> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let mut d = Vec::with_capacity(input.len());
        differences(input, &mut d);
        let mut keys = Vec::new();
        for m in ac.find_overlapping_iter(&d) {
            let (Some(&x), Some(&v)) =
                (input.get(m.start()), self.first.get(m.pattern().as_usize()))
            else {
                continue;
            };
            let key = x ^ v;
            if key != 0 && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys.sort_unstable();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn identity(values: &[&str]) -> Identity {
        let yaml: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("v{i}: \"{v}\"\n"))
            .collect();
        Identity::from_yaml(&yaml, "id.yaml").unwrap()
    }

    fn xor(bytes: &[u8], key: u8) -> Vec<u8> {
        bytes.iter().map(|b| b ^ key).collect()
    }

    #[test]
    fn every_key_is_found_and_only_that_key() {
        let f = XorFinder::new(&identity(&["356938035643809", "jane.doe@example.com"]));
        let body = br#"{"device":{"imei":"356938035643809","v":3}}"#;
        for key in 1..=255u8 {
            assert_eq!(f.keys(&xor(body, key)), vec![key], "key {key:#04x}");
        }
        // In the clear: the value is there under key 0, which is not a key.
        assert!(f.keys(body).is_empty());
    }

    #[test]
    fn two_values_under_two_keys_give_both_keys() {
        let f = XorFinder::new(&identity(&["356938035643809", "jane.doe@example.com"]));
        let mut body = xor(b"id=356938035643809;", 0x05);
        body.extend(xor(b"mail=jane.doe@example.com", 0x41));
        assert_eq!(f.keys(&body), vec![0x05, 0x41]);
    }

    #[test]
    fn near_misses_and_random_bytes_give_no_key() {
        let f = XorFinder::new(&identity(&["356938035643809", "jane.doe@example.com"]));
        // One digit off, under a key: the differences differ at that digit.
        assert!(f.keys(&xor(b"imei=356938035643808", 0x13)).is_empty());
        assert!(f.keys(&xor(b"imei=35693803564380", 0x13)).is_empty());
        let mut rng = Rng(0x0005_eed0_f0dd_ba11);
        for _ in 0..2000 {
            let n = 12 + rng.below(4000);
            let b = rng.bytes(n);
            assert!(f.keys(&b).is_empty());
            let t = rng.printable(n);
            assert!(f.keys(&t).is_empty());
        }
    }

    #[test]
    fn short_values_are_not_looked_for() {
        let f = XorFinder::new(&identity(&["abc1234"]));
        assert!(f.keys(&xor(b"value=abc1234", 0x22)).is_empty());
    }
}
