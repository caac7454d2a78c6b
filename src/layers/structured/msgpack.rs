//! MessagePack without a schema, through rmp's low-level marker and length readers (no allocation: strings and
//! binaries are slices of the input, every declared length and count is checked against the bytes left).
//!
//! Strings, binaries and extension data are handed on as children labelled `msgpack`; integers, and floats that
//! hold an integer exactly (JavaScript numbers), as decimal text labelled `msgpack>int` / `msgpack>float`. A value
//! inside a map has the path of its keys (`user.phone`) as its `field`.

use rmp::decode as rd;
use rmp::Marker;

use super::{join_path, Limit, Opened, Sink, Stop, MAX_NESTING};
use crate::layers::Child;

/// The strings and numbers of `input` as children, when the whole input is one plausible MessagePack map or
/// array (see [`examine`]); `None` otherwise.
pub fn open(input: &[u8]) -> Option<Vec<Child>> {
    examine(input).into_children()
}

/// Walks one value. Not this format unless the top is a map or an array, the value ends exactly at the end of
/// the input, text strings are UTF-8, map keys are strings or integers, and no reserved marker (0xc1) occurs.
/// Bounded by [`MAX_NESTING`], [`MAX_VALUES`](super::MAX_VALUES) and [`MAX_CHILDREN`](super::MAX_CHILDREN).
pub fn examine(input: &[u8]) -> Opened {
    let top = input.first().copied().unwrap_or(0);
    let container = matches!(top, 0x80..=0x9f | 0xdc..=0xdf);
    if !container {
        return Opened::NotThisFormat;
    }
    let mut sink = Sink::default();
    let mut rest = input;
    let r = value(&mut rest, &mut sink, 0, None)
        .and_then(|_| rest.is_empty().then_some(()).ok_or(Stop::Invalid));
    // A malformed input hands on nothing, even what came before the fault.
    if r == Err(Stop::Invalid) {
        return Opened::NotThisFormat;
    }
    sink.finish(r)
}

/// What a map key was, for the paths of the values under it.
enum Key {
    Text(String),
    None,
}

fn value(rest: &mut &[u8], sink: &mut Sink, depth: usize, path: Option<&str>) -> Result<Key, Stop> {
    sink.value()?;
    let start = *rest;
    let marker = rd::read_marker(rest).map_err(|_| Stop::Invalid)?;
    let field = || path.map(str::to_string);
    match marker {
        Marker::Reserved => Err(Stop::Invalid),
        Marker::Null | Marker::True | Marker::False => Ok(Key::None),
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => {
            *rest = start;
            let text = if matches!(marker, Marker::U64) {
                rd::read_int::<u64, _>(rest)
                    .map_err(|_| Stop::Invalid)?
                    .to_string()
            } else {
                rd::read_int::<i64, _>(rest)
                    .map_err(|_| Stop::Invalid)?
                    .to_string()
            };
            sink.number("msgpack>int".into(), field(), text.clone())?;
            Ok(Key::Text(text))
        }
        Marker::F32 | Marker::F64 => {
            *rest = start;
            let f = if marker == Marker::F32 {
                f64::from(rd::read_f32(rest).map_err(|_| Stop::Invalid)?)
            } else {
                rd::read_f64(rest).map_err(|_| Stop::Invalid)?
            };
            if let Some(t) = super::integral_float(f) {
                sink.number("msgpack>float".into(), field(), t)?;
            }
            Ok(Key::None)
        }
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            *rest = start;
            let n = rd::read_str_len(rest).map_err(|_| Stop::Invalid)?;
            let bytes = take(rest, n)?;
            let text = std::str::from_utf8(bytes).map_err(|_| Stop::Invalid)?;
            if !bytes.is_empty() {
                sink.push("msgpack".into(), field(), bytes.to_vec())?;
            }
            Ok(Key::Text(text.to_string()))
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            *rest = start;
            let n = rd::read_bin_len(rest).map_err(|_| Stop::Invalid)?;
            let bytes = take(rest, n)?;
            if !bytes.is_empty() {
                sink.push("msgpack".into(), field(), bytes.to_vec())?;
            }
            Ok(Key::None)
        }
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => {
            *rest = start;
            let meta = rd::read_ext_meta(rest).map_err(|_| Stop::Invalid)?;
            let bytes = take(rest, meta.size)?;
            if !bytes.is_empty() {
                sink.push("msgpack".into(), field(), bytes.to_vec())?;
            }
            Ok(Key::None)
        }
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            *rest = start;
            let n = rd::read_array_len(rest).map_err(|_| Stop::Invalid)?;
            enter(depth)?;
            // Every element takes at least one byte: a count larger than what is left is malformed.
            if n as usize > rest.len() {
                return Err(Stop::Invalid);
            }
            for _ in 0..n {
                value(rest, sink, depth + 1, path)?;
            }
            Ok(Key::None)
        }
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => {
            *rest = start;
            let n = rd::read_map_len(rest).map_err(|_| Stop::Invalid)?;
            enter(depth)?;
            if (n as usize).saturating_mul(2) > rest.len() {
                return Err(Stop::Invalid);
            }
            for _ in 0..n {
                let key_marker = rest.first().copied().ok_or(Stop::Invalid)?;
                let key_ok = matches!(key_marker, 0x00..=0x7f | 0xa0..=0xbf | 0xcc..=0xd3 | 0xd9..=0xdb | 0xe0..=0xff);
                if !key_ok {
                    return Err(Stop::Invalid);
                }
                let key = value(rest, sink, depth + 1, path)?;
                let sub = match &key {
                    Key::Text(k) => Some(join_path(path, k)),
                    Key::None => path.map(str::to_string),
                };
                value(rest, sink, depth + 1, sub.as_deref())?;
            }
            Ok(Key::None)
        }
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
fn take<'a>(rest: &mut &'a [u8], n: u32) -> Result<&'a [u8], Stop> {
    let n = n as usize;
    let (Some(head), Some(tail)) = (rest.get(..n), rest.get(n..)) else {
        return Err(Stop::Invalid);
    };
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmp::encode as en;

    fn doc() -> Vec<u8> {
        let mut m = Vec::new();
        en::write_map_len(&mut m, 4).unwrap();
        en::write_str(&mut m, "imei").unwrap();
        en::write_uint(&mut m, 356_938_035_643_809).unwrap();
        en::write_str(&mut m, "user").unwrap();
        en::write_map_len(&mut m, 2).unwrap();
        en::write_str(&mut m, "mail").unwrap();
        en::write_str(&mut m, "alice.canary@example.invalid").unwrap();
        en::write_str(&mut m, "phone").unwrap();
        en::write_f64(&mut m, 15_555_550_123.0).unwrap();
        en::write_str(&mut m, "blob").unwrap();
        en::write_bin(&mut m, b"\x00\x01binary").unwrap();
        en::write_str(&mut m, "n").unwrap();
        en::write_array_len(&mut m, 3).unwrap();
        en::write_sint(&mut m, -5).unwrap();
        en::write_sint(&mut m, -356_938_035_643_809).unwrap();
        en::write_nil(&mut m).unwrap();
        m
    }

    fn find<'a>(c: &'a [Child], field: &str, label: &str) -> Option<&'a Child> {
        c.iter()
            .find(|c| c.field.as_deref() == Some(field) && c.label == label)
    }

    #[test]
    fn strings_binaries_and_numbers_become_children_with_their_key_paths() {
        let c = open(&doc()).expect("msgpack");
        assert_eq!(
            find(&c, "imei", "msgpack>int").unwrap().bytes,
            b"356938035643809"
        );
        assert_eq!(
            find(&c, "user.mail", "msgpack").unwrap().bytes,
            b"alice.canary@example.invalid"
        );
        assert_eq!(
            find(&c, "user.phone", "msgpack>float").unwrap().bytes,
            b"15555550123"
        );
        assert_eq!(
            find(&c, "blob", "msgpack").unwrap().bytes,
            b"\x00\x01binary"
        );
        assert_eq!(
            find(&c, "n", "msgpack>int").unwrap().bytes,
            b"-356938035643809"
        );
        // -5 is too short to be a canary.
        assert_eq!(
            c.iter().filter(|c| c.field.as_deref() == Some("n")).count(),
            1
        );
        // Keys are handed on too (a map keyed by phone number).
        assert!(c.iter().any(|c| c.bytes == b"imei" && c.field.is_none()));
    }

    #[test]
    fn near_misses_text_and_scalars_are_refused() {
        let d = doc();
        assert_eq!(examine(&d[..d.len() - 1]), Opened::NotThisFormat);
        let mut extra = d.clone();
        extra.push(0xc0);
        assert_eq!(examine(&extra), Opened::NotThisFormat);
        // A scalar at the top, text, the reserved marker, a bad UTF-8 string, a map with a map as key.
        let mut s = Vec::new();
        en::write_str(&mut s, "alice.canary@example.invalid").unwrap();
        assert_eq!(examine(&s), Opened::NotThisFormat);
        assert_eq!(examine(b"{\"a\":1}"), Opened::NotThisFormat);
        assert_eq!(examine(&[0x91, 0xc1]), Opened::NotThisFormat);
        assert_eq!(examine(&[0x91, 0xa2, 0xff, 0xfe]), Opened::NotThisFormat);
        assert_eq!(examine(&[0x81, 0x80, 0x01]), Opened::NotThisFormat);
        assert_eq!(examine(&[]), Opened::NotThisFormat);
        // Valid but nothing worth searching: no children.
        assert_eq!(examine(&[0x92, 0x01, 0x02]), Opened::Children(Vec::new()));
        assert!(open(&[0x92, 0x01, 0x02]).is_none());
    }

    #[test]
    fn hostile_nesting_and_declared_sizes_are_bounded() {
        // 10 000 nested arrays: the nesting bound, named.
        let mut deep = vec![0x91; 10_000];
        deep.push(0x01);
        assert_eq!(examine(&deep), Opened::Exceeded(Limit::Nesting));
        // An array32 declaring 4 billion elements, a str32 declaring 4 GiB: refused without allocating.
        assert_eq!(
            examine(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Opened::NotThisFormat
        );
        assert_eq!(
            examine(&[0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
            Opened::NotThisFormat
        );
        assert_eq!(
            examine(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01]),
            Opened::NotThisFormat
        );
        // More values than the bound.
        let n = super::super::MAX_VALUES as u32 + 1;
        let mut many = Vec::new();
        en::write_array_len(&mut many, n).unwrap();
        many.extend(std::iter::repeat_n(0x01, n as usize));
        assert_eq!(examine(&many), Opened::Exceeded(Limit::Values));
    }

    #[test]
    fn random_binary_is_rarely_msgpack() {
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
            // Half of them start like a container, to test more than the first byte.
            if i % 2 == 0 {
                buf[0] = 0x80 | (buf[0] & 0x1f);
            }
            if open(&buf).is_some() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 0);
    }
}
