//! CBOR (RFC 8949) without a schema: the whole value is walked, every declared length and count checked against
//! the bytes left before anything is read.
//!
//! Byte strings and text strings (definite or indefinite length) are handed on as children labelled `cbor`;
//! integers, and floats that hold an integer exactly (JavaScript numbers), as decimal text labelled `cbor>int` /
//! `cbor>float`. A value inside a map has the path of its keys (`user.phone`) as its `field`. Tags are followed
//! (their content is walked like any value).
//!
//! Hand-written (ARCHITECTURE.md): the format is a 3-bit major type and a length per item; a walk that must
//! reject input at the first implausible byte (to keep false positives away) is shorter than driving a decoder
//! crate's typed API through every item kind.

use super::{join_path, Limit, Opened, Sink, Stop, MAX_NESTING};
use crate::layers::Child;

/// The strings and numbers of `input` as children, when the whole input is one plausible CBOR map or array (see
/// [`examine`]); `None` otherwise.
pub fn open(input: &[u8]) -> Option<Vec<Child>> {
    examine(input).into_children()
}

/// Walks one value. Not this format unless the top is a map or an array (definite or indefinite length), the
/// value ends exactly at the end of the input, text strings are UTF-8, map keys are strings or integers, and no
/// reserved additional information (28..30) occurs. Bounded by [`MAX_NESTING`],
/// [`MAX_VALUES`](super::MAX_VALUES) and [`MAX_CHILDREN`](super::MAX_CHILDREN).
pub fn examine(input: &[u8]) -> Opened {
    let top = input.first().copied().unwrap_or(0) >> 5;
    if top != 4 && top != 5 {
        return Opened::NotThisFormat;
    }
    let mut sink = Sink::default();
    let mut rest = input;
    let r = value(&mut rest, &mut sink, 0, None).and_then(|k| match (k, rest.is_empty()) {
        (Item::Value(_), true) => Ok(()),
        _ => Err(Stop::Invalid),
    });
    if r == Err(Stop::Invalid) {
        return Opened::NotThisFormat;
    }
    sink.finish(r)
}

/// What one item was.
enum Item {
    /// A value; `Some(text)` when it can name a map entry (a string or an integer).
    Value(Option<String>),
    /// The "break" stop code of an indefinite-length item.
    Break,
}

/// The item's argument: `Some(n)` for a definite value/length, `None` for indefinite length (additional info 31).
fn argument(rest: &mut &[u8], info: u8) -> Result<Option<u64>, Stop> {
    let n = match info {
        0..=23 => return Ok(Some(u64::from(info))),
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 => return Ok(None),
        _ => return Err(Stop::Invalid),
    };
    let head = take(rest, n)?;
    Ok(Some(
        head.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)),
    ))
}

fn value(
    rest: &mut &[u8],
    sink: &mut Sink,
    depth: usize,
    path: Option<&str>,
) -> Result<Item, Stop> {
    let (&first, tail) = rest.split_first().ok_or(Stop::Invalid)?;
    *rest = tail;
    if first == 0xff {
        return Ok(Item::Break);
    }
    sink.value()?;
    let (major, info) = (first >> 5, first & 0x1f);
    let field = || path.map(str::to_string);
    match major {
        0 | 1 => {
            let n = argument(rest, info)?.ok_or(Stop::Invalid)?;
            let text = if major == 0 {
                n.to_string()
            } else {
                format!("-{}", u128::from(n) + 1)
            };
            sink.number("cbor>int".into(), field(), text.clone())?;
            Ok(Item::Value(Some(text)))
        }
        2 | 3 => {
            let bytes = match argument(rest, info)? {
                Some(n) => take(rest, n)?.to_vec(),
                None => {
                    // Indefinite length: definite chunks of the same major type up to a break.
                    let mut all = Vec::new();
                    loop {
                        let (&b, tail) = rest.split_first().ok_or(Stop::Invalid)?;
                        *rest = tail;
                        if b == 0xff {
                            break;
                        }
                        if b >> 5 != major {
                            return Err(Stop::Invalid);
                        }
                        let n = argument(rest, b & 0x1f)?.ok_or(Stop::Invalid)?;
                        all.extend_from_slice(take(rest, n)?);
                    }
                    all
                }
            };
            let text = if major == 3 {
                Some(String::from_utf8(bytes.clone()).map_err(|_| Stop::Invalid)?)
            } else {
                None
            };
            if !bytes.is_empty() {
                sink.push("cbor".into(), field(), bytes)?;
            }
            Ok(Item::Value(text))
        }
        4 | 5 => {
            enter(depth)?;
            let count = argument(rest, info)?;
            let per = if major == 5 { 2 } else { 1 };
            if let Some(n) = count {
                // Every item takes at least one byte: a count larger than what is left is malformed.
                if n.saturating_mul(per) > rest.len() as u64 {
                    return Err(Stop::Invalid);
                }
            }
            let mut i = 0u64;
            loop {
                if count == Some(i) {
                    break;
                }
                i += 1;
                if major == 4 {
                    match value(rest, sink, depth + 1, path)? {
                        Item::Break if count.is_none() => break,
                        Item::Break => return Err(Stop::Invalid),
                        Item::Value(_) => {}
                    }
                    continue;
                }
                let key_major = rest.first().copied().map(|b| b >> 5);
                if !matches!(key_major, Some(0 | 1 | 3 | 7)) {
                    return Err(Stop::Invalid);
                }
                let sub = match value(rest, sink, depth + 1, path)? {
                    Item::Break if count.is_none() => break,
                    Item::Break => return Err(Stop::Invalid),
                    Item::Value(Some(k)) => Some(join_path(path, &k)),
                    // Only the break (0xff) is allowed of major type 7 as a key.
                    Item::Value(None) => return Err(Stop::Invalid),
                };
                match value(rest, sink, depth + 1, sub.as_deref())? {
                    Item::Break => return Err(Stop::Invalid),
                    Item::Value(_) => {}
                }
            }
            Ok(Item::Value(None))
        }
        6 => {
            argument(rest, info)?.ok_or(Stop::Invalid)?;
            enter(depth)?;
            match value(rest, sink, depth + 1, path)? {
                Item::Break => Err(Stop::Invalid),
                v => Ok(v),
            }
        }
        _ => {
            // Major type 7: simple values and floats.
            let f = match info {
                0..=24 => {
                    if info == 24 {
                        take(rest, 1)?;
                    }
                    return Ok(Item::Value(None));
                }
                25 => {
                    let b = take(rest, 2)?;
                    half(u16::from_be_bytes([b[0], b[1]]))
                }
                26 => {
                    let b = take(rest, 4)?;
                    f64::from(f32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                }
                27 => {
                    let b = take(rest, 8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    f64::from_be_bytes(a)
                }
                _ => return Err(Stop::Invalid),
            };
            if let Some(t) = super::integral_float(f) {
                sink.number("cbor>float".into(), field(), t)?;
            }
            Ok(Item::Value(None))
        }
    }
}

/// An IEEE 754 half-precision float.
fn half(h: u16) -> f64 {
    let exp = (h >> 10) & 0x1f;
    let mant = f64::from(h & 0x3ff);
    let v = match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mant / 1024.0) * 2f64.powi(i32::from(e) - 15),
    };
    if h & 0x8000 != 0 {
        -v
    } else {
        v
    }
}

fn enter(depth: usize) -> Result<(), Stop> {
    if depth >= MAX_NESTING {
        Err(Stop::Limit(Limit::Nesting))
    } else {
        Ok(())
    }
}

/// The next `n` bytes, when there are that many.
fn take<'a>(rest: &mut &'a [u8], n: u64) -> Result<&'a [u8], Stop> {
    let n = usize::try_from(n).map_err(|_| Stop::Invalid)?;
    let (Some(head), Some(tail)) = (rest.get(..n), rest.get(n..)) else {
        return Err(Stop::Invalid);
    };
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"imei": 356938035643809, "user": {"mail": "alice…", "phone": 15555550123.0}, "n": [-5, -356938035643809,
    /// null], "b": h'0001', "s": (_ "ab" "cd")}` written by hand from RFC 8949.
    fn doc() -> Vec<u8> {
        let mut d = vec![0xa5, 0x64];
        d.extend_from_slice(b"imei");
        d.push(0x1b);
        d.extend_from_slice(&356_938_035_643_809u64.to_be_bytes());
        d.extend_from_slice(&[
            0x64, b'u', b's', b'e', b'r', 0xa2, 0x64, b'm', b'a', b'i', b'l', 0x78, 28,
        ]);
        d.extend_from_slice(b"alice.canary@example.invalid");
        d.extend_from_slice(&[0x65, b'p', b'h', b'o', b'n', b'e', 0xfb]);
        d.extend_from_slice(&15_555_550_123f64.to_be_bytes());
        d.extend_from_slice(&[0x61, b'n', 0x83, 0x24, 0x3b]);
        d.extend_from_slice(&(356_938_035_643_809u64 - 1).to_be_bytes());
        d.push(0xf6);
        d.extend_from_slice(&[0x61, b'b', 0x42, 0x00, 0x01]);
        d.extend_from_slice(&[0x61, b's', 0x7f, 0x62, b'a', b'b', 0x62, b'c', b'd', 0xff]);
        d
    }

    fn find<'a>(c: &'a [Child], field: &str, label: &str) -> Option<&'a Child> {
        c.iter()
            .find(|c| c.field.as_deref() == Some(field) && c.label == label)
    }

    #[test]
    fn strings_and_numbers_become_children_with_their_key_paths() {
        let c = open(&doc()).expect("cbor");
        assert_eq!(
            find(&c, "imei", "cbor>int").unwrap().bytes,
            b"356938035643809"
        );
        assert_eq!(
            find(&c, "user.mail", "cbor").unwrap().bytes,
            b"alice.canary@example.invalid"
        );
        assert_eq!(
            find(&c, "user.phone", "cbor>float").unwrap().bytes,
            b"15555550123"
        );
        assert_eq!(
            find(&c, "n", "cbor>int").unwrap().bytes,
            b"-356938035643809"
        );
        assert_eq!(find(&c, "b", "cbor").unwrap().bytes, b"\x00\x01");
        assert_eq!(find(&c, "s", "cbor").unwrap().bytes, b"abcd");
        // -5 is too short to be a canary.
        assert_eq!(
            c.iter().filter(|c| c.field.as_deref() == Some("n")).count(),
            1
        );
    }

    #[test]
    fn near_misses_text_and_scalars_are_refused() {
        let d = doc();
        assert_eq!(examine(&d[..d.len() - 1]), Opened::NotThisFormat);
        let mut extra = d.clone();
        extra.push(0xf6);
        assert_eq!(examine(&extra), Opened::NotThisFormat);
        assert_eq!(examine(b"{\"a\":1}"), Opened::NotThisFormat);
        assert_eq!(
            examine(&[0x64, b'a', b'b', b'c', b'd']),
            Opened::NotThisFormat
        );
        // Reserved additional info, bad UTF-8, a map as a key, a break outside an indefinite item, a mixed chunk.
        assert_eq!(examine(&[0x81, 0x1c]), Opened::NotThisFormat);
        assert_eq!(examine(&[0x81, 0x62, 0xff, 0xfe]), Opened::NotThisFormat);
        assert_eq!(examine(&[0xa1, 0xa0, 0x01]), Opened::NotThisFormat);
        assert_eq!(examine(&[0x82, 0x01, 0xff]), Opened::NotThisFormat);
        assert_eq!(
            examine(&[0x81, 0x7f, 0x41, b'a', 0xff]),
            Opened::NotThisFormat
        );
        assert_eq!(examine(&[]), Opened::NotThisFormat);
        // Valid, nothing worth searching.
        assert_eq!(examine(&[0x82, 0x01, 0x02]), Opened::Children(Vec::new()));
        assert_eq!(examine(&[0x9f, 0x01, 0xff]), Opened::Children(Vec::new()));
    }

    #[test]
    fn hostile_nesting_and_declared_sizes_are_bounded() {
        let mut deep = vec![0x81; 10_000];
        deep.push(0x01);
        assert_eq!(examine(&deep), Opened::Exceeded(Limit::Nesting));
        // 2^64-1 elements, a 4 GiB string: refused without allocating.
        let mut huge = vec![0x9b];
        huge.extend_from_slice(&[0xff; 8]);
        huge.push(0x01);
        assert_eq!(examine(&huge), Opened::NotThisFormat);
        assert_eq!(
            examine(&[0x81, 0x5a, 0xff, 0xff, 0xff, 0xff, b'a']),
            Opened::NotThisFormat
        );
        let n = super::super::MAX_VALUES + 1;
        let mut many = vec![0x9a];
        many.extend_from_slice(&(n as u32).to_be_bytes());
        many.extend(std::iter::repeat_n(0x01, n));
        assert_eq!(examine(&many), Opened::Exceeded(Limit::Values));
    }

    #[test]
    fn random_binary_is_rarely_cbor() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut accepted = 0;
        for i in 0..4000 {
            let len = 16 + (x % 512) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if i % 2 == 0 {
                buf[0] = 0xa0 | (buf[0] & 0x17);
            }
            if open(&buf).is_some() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 0);
    }
}
