//! Schema-less structured binary layers: protobuf (wire format), MessagePack and CBOR.
//!
//! Each format's module has `open(input) -> Option<Vec<Child>>` (the decoding graph's detector interface) and
//! `examine(input) -> Opened`, which also says *why* nothing was opened: not this format, or a named bound
//! ([`Limit`]) ran out on input that looked like it, which the caller must report as unread rather than drop.
//!
//! What the walkers hand on: byte strings and text strings as children (to be searched and opened again),
//! and numbers as their decimal text (so a numeric canary, an IMEI or a phone number's digits, matches them as
//! raw text). Numbers with fewer than [`MIN_NUMBER_DIGITS`] digits are not handed on: no canary is that short.
//!
//! Plausibility (false positives on random binary and text cost work and misleading chains): the whole input must
//! parse with nothing left over, MessagePack and CBOR must have a map or an array at the top, text strings must be
//! UTF-8, and protobuf input must not be all printable ASCII. Work is bounded: nesting by [`MAX_NESTING`], values
//! visited by [`MAX_VALUES`], children by [`MAX_CHILDREN`]; a declared length or count is checked against the
//! bytes left before anything is read or allocated.

pub mod cbor;
pub mod msgpack;
pub mod protobuf;

use super::Child;

/// Deepest nesting of maps/arrays (MessagePack, CBOR) a walker follows; deeper input is [`Limit::Nesting`].
pub const MAX_NESTING: usize = 32;
/// Most values (scalars, strings, containers; protobuf: fields) one walk visits; more is [`Limit::Values`].
pub const MAX_VALUES: usize = 100_000;
/// Most children one walk hands on; more is [`Limit::Children`].
pub const MAX_CHILDREN: usize = 4_096;
/// Numbers shorter than this many decimal digits are not handed on as children (the identity rules make every
/// canary value at least 6 bytes long, so a shorter number cannot be one).
pub const MIN_NUMBER_DIGITS: usize = 6;

/// A bound of the structured walkers that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Nesting deeper than [`MAX_NESTING`].
    Nesting,
    /// More than [`MAX_VALUES`] values.
    Values,
    /// More than [`MAX_CHILDREN`] children.
    Children,
}

impl Limit {
    /// The reason's name, for `report.unread`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Nesting => "structured_nesting",
            Limit::Values => "structured_values",
            Limit::Children => "structured_children",
        }
    }
}

/// What a structured walker made of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The input is this format; these are its children (possibly none worth searching).
    Children(Vec<Child>),
    /// The input is not (plausibly) this format.
    NotThisFormat,
    /// The input parsed as this format so far, but a bound ran out: it was not fully read.
    Exceeded(Limit),
}

impl Opened {
    /// The children, if any were found (the `open` interface: `None` for no format, a bound, or nothing to hand on).
    pub fn into_children(self) -> Option<Vec<Child>> {
        match self {
            Opened::Children(c) if !c.is_empty() => Some(c),
            _ => None,
        }
    }
}

/// Children and counters shared by the walkers.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub children: Vec<Child>,
    pub values: usize,
}

/// Why a walk stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Malformed: not this format.
    Invalid,
    /// A bound ran out.
    Limit(Limit),
}

impl Sink {
    /// Count one visited value.
    pub fn value(&mut self) -> Result<(), Stop> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(Stop::Limit(Limit::Values));
        }
        Ok(())
    }

    /// Hand on one child.
    pub fn push(
        &mut self,
        label: String,
        field: Option<String>,
        bytes: Vec<u8>,
    ) -> Result<(), Stop> {
        if self.children.len() >= MAX_CHILDREN {
            return Err(Stop::Limit(Limit::Children));
        }
        self.children.push(Child {
            label,
            field,
            bytes,
        });
        Ok(())
    }

    /// Hand on a number as decimal text, when it is long enough to hold a canary.
    pub fn number(
        &mut self,
        label: String,
        field: Option<String>,
        text: String,
    ) -> Result<(), Stop> {
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        if digits < MIN_NUMBER_DIGITS {
            return Ok(());
        }
        self.push(label, field, text.into_bytes())
    }

    /// The outcome of a walk.
    pub fn finish(self, result: Result<(), Stop>) -> Opened {
        match result {
            Ok(()) => Opened::Children(self.children),
            Err(Stop::Invalid) => Opened::NotThisFormat,
            Err(Stop::Limit(l)) => Opened::Exceeded(l),
        }
    }
}

/// The decimal text of a float that holds an integer exactly (JavaScript numbers: an IMEI written by a JS SDK
/// into MessagePack or CBOR is a float64); `None` for fractions, infinities and NaN.
pub(crate) fn integral_float(f: f64) -> Option<String> {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18 {
        Some(format!("{}", f as i64))
    } else {
        None
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join_path(parent: Option<&str>, key: &str) -> String {
    match parent {
        Some(p) if !p.is_empty() => format!("{p}.{key}"),
        _ => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_too_short_for_a_canary_are_not_handed_on() {
        let mut s = Sink::default();
        s.number("x".into(), None, "12345".into()).unwrap();
        s.number("x".into(), None, "-12345".into()).unwrap();
        assert!(s.children.is_empty());
        s.number("x".into(), None, "123456".into()).unwrap();
        assert_eq!(s.children.len(), 1);
        assert_eq!(
            integral_float(356938035643809.0).as_deref(),
            Some("356938035643809")
        );
        assert_eq!(integral_float(1.5), None);
        assert_eq!(integral_float(f64::NAN), None);
        assert_eq!(integral_float(f64::INFINITY), None);
    }

    #[test]
    fn bounds_are_counted() {
        let mut s = Sink::default();
        for _ in 0..MAX_CHILDREN {
            s.push("x".into(), None, vec![1]).unwrap();
        }
        assert_eq!(
            s.push("x".into(), None, vec![1]),
            Err(Stop::Limit(Limit::Children))
        );
        let mut s = Sink::default();
        for _ in 0..MAX_VALUES {
            s.value().unwrap();
        }
        assert_eq!(s.value(), Err(Stop::Limit(Limit::Values)));
        assert_eq!(
            Sink::default().finish(Err(Stop::Limit(Limit::Nesting))),
            Opened::Exceeded(Limit::Nesting)
        );
        assert_eq!(Limit::Nesting.as_str(), "structured_nesting");
    }
}
