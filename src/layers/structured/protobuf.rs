//! Protobuf without a schema: the wire format's fields, one message level per call.
//!
//! Length-delimited fields (strings, bytes, sub-messages, packed arrays: the wire format does not say which) are
//! handed on as children labelled `protobuf[N]`, for the decoding graph to search and to open again (a sub-message
//! is opened by this same walker one level down). Varints, zigzag-decoded varints (`sint32`/`sint64`), fixed64
//! (as an integer and, when integral, as a double) and fixed32 are handed on as decimal text, labelled
//! `protobuf[N]>varint`, `>zigzag`, `>fixed64`, `>double`, `>fixed32`. The field number is the child's `field`.
//!
//! Hand-written (ARCHITECTURE.md): the wire format is a varint key and four value shapes; the crates' readers
//! (`prost::encoding`, `protobuf::CodedInputStream`) are made for generated message code and decode into typed
//! fields, which a walk that must *guess* at every length-delimited field does not have.

use super::{Limit, Opened, Sink, Stop, MAX_VALUES};
use crate::layers::Child;

/// Largest field number the wire format allows (2^29 - 1).
const MAX_FIELD: u64 = (1 << 29) - 1;

/// The fields of `input` as children, when the whole input is a plausible protobuf message (see
/// [`examine`]); `None` otherwise.
pub fn open(input: &[u8]) -> Option<Vec<Child>> {
    examine(input).into_children()
}

/// Walks one message. Not this format unless: at least 2 bytes, not all printable ASCII (text is searched as
/// text), every field has a valid number (1..2^29) and wire type (varint, fixed64, length-delimited, fixed32; the
/// deprecated groups are refused), every length fits in what is left, and the last field ends exactly at the end.
/// Bounded: at most [`MAX_VALUES`](super::MAX_VALUES) fields and [`MAX_CHILDREN`](super::MAX_CHILDREN) children.
pub fn examine(input: &[u8]) -> Opened {
    if input.len() < 2
        || input
            .iter()
            .all(|&b| b == b'\t' || b == b'\n' || b == b'\r' || (0x20..0x7f).contains(&b))
    {
        return Opened::NotThisFormat;
    }
    let mut sink = Sink::default();
    let r = walk(input, &mut sink);
    sink.finish(r)
}

fn walk(input: &[u8], sink: &mut Sink) -> Result<(), Stop> {
    let mut rest = input;
    // Validate everything first: a message that turns out malformed at its end hands on nothing.
    let mut fields: Vec<(u64, Value)> = Vec::new();
    while !rest.is_empty() {
        if fields.len() >= MAX_VALUES {
            return Err(Stop::Limit(Limit::Values));
        }
        let key = varint(&mut rest)?;
        let field = key >> 3;
        if field == 0 || field > MAX_FIELD {
            return Err(Stop::Invalid);
        }
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut rest)?),
            1 => Value::Fixed64(u64::from_le_bytes(take::<8>(&mut rest)?)),
            2 => {
                let len = usize::try_from(varint(&mut rest)?).map_err(|_| Stop::Invalid)?;
                let (bytes, tail) = (rest.get(..len), rest.get(len..));
                let (Some(bytes), Some(tail)) = (bytes, tail) else {
                    return Err(Stop::Invalid);
                };
                rest = tail;
                Value::Bytes(bytes)
            }
            5 => Value::Fixed32(u32::from_le_bytes(take::<4>(&mut rest)?)),
            _ => return Err(Stop::Invalid),
        };
        fields.push((field, value));
    }
    for (field, value) in fields {
        sink.value()?;
        let name = Some(field.to_string());
        match value {
            Value::Varint(v) => {
                sink.number(
                    format!("protobuf[{field}]>varint"),
                    name.clone(),
                    v.to_string(),
                )?;
                let z = ((v >> 1) as i64) ^ -((v & 1) as i64);
                sink.number(format!("protobuf[{field}]>zigzag"), name, z.to_string())?;
            }
            Value::Fixed64(v) => {
                sink.number(
                    format!("protobuf[{field}]>fixed64"),
                    name.clone(),
                    v.to_string(),
                )?;
                if let Some(t) = super::integral_float(f64::from_bits(v)) {
                    sink.number(format!("protobuf[{field}]>double"), name, t)?;
                }
            }
            Value::Fixed32(v) => {
                sink.number(format!("protobuf[{field}]>fixed32"), name, v.to_string())?
            }
            Value::Bytes(b) if !b.is_empty() => {
                sink.push(format!("protobuf[{field}]"), name, b.to_vec())?
            }
            Value::Bytes(_) => {}
        }
    }
    Ok(())
}

enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// A base-128 varint of at most 10 bytes (the 10th holding only the 64th bit).
fn varint(rest: &mut &[u8]) -> Result<u64, Stop> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, tail) = rest.split_first().ok_or(Stop::Invalid)?;
        *rest = tail;
        if i == 9 && b > 1 {
            return Err(Stop::Invalid);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Stop::Invalid)
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], Stop> {
    let head = rest.get(..N).ok_or(Stop::Invalid)?;
    let mut a = [0u8; N];
    a.copy_from_slice(head);
    *rest = rest.get(N..).unwrap_or(&[]);
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny protobuf writer (independent of the walker): key, then value.
    fn var(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    fn field_varint(f: u64, v: u64, out: &mut Vec<u8>) {
        var(f << 3, out);
        var(v, out);
    }
    fn field_bytes(f: u64, b: &[u8], out: &mut Vec<u8>) {
        var((f << 3) | 2, out);
        var(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn find<'a>(c: &'a [Child], label: &str) -> Option<&'a Child> {
        c.iter().find(|c| c.label == label)
    }

    #[test]
    fn varints_fixed_and_strings_become_children() {
        let mut inner = Vec::new();
        field_bytes(1, b"alice.canary@example.invalid", &mut inner);
        let mut m = Vec::new();
        field_varint(1, 356_938_035_643_809, &mut m);
        field_varint(2, 7, &mut m); // too short to be a canary: not handed on
        field_varint(3, 2 * 15_555_550_123, &mut m); // sint64
        var((4 << 3) | 1, &mut m);
        m.extend_from_slice(&356_938_035_643_809u64.to_le_bytes());
        var((5 << 3) | 5, &mut m);
        m.extend_from_slice(&3_555_550_123u32.to_le_bytes());
        field_bytes(6, &inner, &mut m);
        var((7 << 3) | 1, &mut m);
        m.extend_from_slice(&356_938_035_643_809f64.to_le_bytes());
        let c = open(&m).expect("a protobuf message");
        assert_eq!(
            find(&c, "protobuf[1]>varint").unwrap().bytes,
            b"356938035643809"
        );
        assert_eq!(
            find(&c, "protobuf[1]>varint").unwrap().field.as_deref(),
            Some("1")
        );
        assert!(find(&c, "protobuf[2]>varint").is_none());
        assert_eq!(
            find(&c, "protobuf[3]>zigzag").unwrap().bytes,
            b"15555550123"
        );
        assert_eq!(
            find(&c, "protobuf[4]>fixed64").unwrap().bytes,
            b"356938035643809"
        );
        assert_eq!(
            find(&c, "protobuf[5]>fixed32").unwrap().bytes,
            b"3555550123"
        );
        assert_eq!(
            find(&c, "protobuf[7]>double").unwrap().bytes,
            b"356938035643809"
        );
        let sub = find(&c, "protobuf[6]").unwrap();
        assert_eq!(sub.bytes, inner);
        // The sub-message opens one level down.
        let c2 = open(&sub.bytes).unwrap();
        assert_eq!(c2[0].label, "protobuf[1]");
        assert_eq!(c2[0].bytes, b"alice.canary@example.invalid");
    }

    #[test]
    fn near_misses_and_text_are_refused() {
        let mut m = Vec::new();
        field_bytes(1, b"hello world", &mut m);
        assert!(open(&m).is_some());
        // One byte short, one byte extra, a declared length past the end.
        assert_eq!(examine(&m[..m.len() - 1]), Opened::NotThisFormat);
        let mut extra = m.clone();
        extra.push(0x80);
        assert_eq!(examine(&extra), Opened::NotThisFormat);
        // Groups (wire types 3, 4), wire types 6 and 7, field number 0.
        for bad in [
            [0x0b, 0x00],
            [0x0c, 0x00],
            [0x0e, 0x00],
            [0x0f, 0x00],
            [0x00, 0x01],
        ] {
            assert_eq!(examine(&bad), Opened::NotThisFormat, "{bad:?}");
        }
        // Printable text, even when it happens to parse.
        assert_eq!(examine(b"hello"), Opened::NotThisFormat);
        assert_eq!(
            examine(b"{\"imei\":\"356938035643809\"}"),
            Opened::NotThisFormat
        );
        assert_eq!(examine(b""), Opened::NotThisFormat);
        // An 11-byte varint.
        let mut long = vec![0x08];
        long.extend(std::iter::repeat_n(0xff, 10));
        long.push(0x01);
        assert_eq!(examine(&long), Opened::NotThisFormat);
    }

    #[test]
    fn hostile_lengths_and_counts_are_bounded() {
        // A declared length of 2^63: refused without reading or allocating.
        let mut m = vec![0x0a];
        var(1 << 63, &mut m);
        m.extend_from_slice(b"abc");
        assert_eq!(examine(&m), Opened::NotThisFormat);
        // More fields than the bound: a named limit, not silence.
        let mut many = Vec::new();
        for _ in 0..(MAX_VALUES + 1) {
            field_varint(1, 1, &mut many);
        }
        assert_eq!(examine(&many), Opened::Exceeded(Limit::Values));
        // More children than the bound.
        let mut kids = Vec::new();
        for _ in 0..(super::super::MAX_CHILDREN + 1) {
            field_bytes(2, b"x", &mut kids);
        }
        assert_eq!(examine(&kids), Opened::Exceeded(Limit::Children));
    }

    #[test]
    fn random_binary_is_rarely_a_message() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut accepted = 0;
        for _ in 0..2000 {
            let len = 64 + (x % 512) as usize;
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
        assert_eq!(
            accepted, 0,
            "random buffers of 64..576 bytes taken for protobuf"
        );
    }
}
