//! Deterministic fake identity values from a seed (`identity: { seed: 2014 }`).
//!
//! Each kind draws from its own SplitMix64 stream (seed mixed with a per-kind constant), so adding
//! or removing a kind never changes the others' values. Values are fictional by construction:
//!
//! * `imei`: 15 digits, `35` + 6 digits (a TAC-like 8-digit prefix) + a 6-digit serial + the
//!   Luhn check digit, so firmware that validates IMEIs accepts it.
//! * `phone`: `+1 555 555-01xx` written `+155555501xx`: the North American 555-0100…555-0199
//!   block is reserved for fictional use, and area code 555 is not a geographic code.
//! * `email`: `firstname.lastname@<word>.invalid`: `.invalid` is a reserved top-level domain
//!   (RFC 2606), so the address can never reach anyone.
//! * `contacts`: N distinct `Firstname Lastname` names from lists of uncommon names (never
//!   ordinary words), none equal to the e-mail owner's name.
//!
//! Changing the name lists or the algorithm changes every scenario's values: treat them as
//! frozen (a unit test pins the values of one seed).

use super::template::VarValue;

/// Contacts generated when `contacts` is named without a count.
pub const DEFAULT_CONTACTS: usize = 3;
/// Most contacts that may be generated.
pub const MAX_CONTACTS: usize = 64;

/// One kind of generated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Generate {
    /// A Luhn-valid IMEI, key `imei`.
    Imei,
    /// A fictional phone number, key `phone`.
    Phone,
    /// An e-mail address under `.invalid`, key `email`.
    Email,
    /// This many contact names, key `contacts` (a list).
    Contacts(usize),
}

impl Generate {
    /// The names accepted in `generate:`.
    pub const NAMES: [&'static str; 4] = ["imei", "phone", "email", "contacts"];

    /// The identity key the values are stored under.
    pub fn key(&self) -> &'static str {
        match self {
            Generate::Imei => "imei",
            Generate::Phone => "phone",
            Generate::Email => "email",
            Generate::Contacts(_) => "contacts",
        }
    }

    /// The value(s) for `seed`.
    pub fn value(&self, seed: u64) -> VarValue {
        match *self {
            Generate::Imei => VarValue::One(imei(seed)),
            Generate::Phone => VarValue::One(phone(seed)),
            Generate::Email => VarValue::One(email(seed)),
            Generate::Contacts(n) => VarValue::List(contacts(seed, n)),
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to pick fake values.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64, stream: u64) -> SplitMix64 {
        let mut s = SplitMix64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        s.next();
        s
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    fn digits(&mut self, count: usize) -> String {
        (0..count)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

const STREAM_IMEI: u64 = 1;
const STREAM_PHONE: u64 = 2;
const STREAM_EMAIL: u64 = 3;
const STREAM_CONTACTS: u64 = 4;

const FIRST: [&str; 32] = [
    "Ottoline",
    "Perpetua",
    "Leopoldine",
    "Thaddeus",
    "Evander",
    "Philippa",
    "Barnaby",
    "Wilhelmina",
    "Cornelius",
    "Araminta",
    "Peregrine",
    "Hieronymus",
    "Isolde",
    "Fenella",
    "Lucasta",
    "Ignatius",
    "Octavia",
    "Rosamund",
    "Casimir",
    "Ermengarde",
    "Florian",
    "Griselda",
    "Hortensia",
    "Jolyon",
    "Lysander",
    "Mehitabel",
    "Leocadia",
    "Quirinus",
    "Seraphina",
    "Tancredi",
    "Ulrika",
    "Zenobia",
];

const LAST: [&str; 32] = [
    "Quenneville",
    "Abernethy",
    "Fotheringay",
    "Pettigrew",
    "Thistlewood",
    "Wolstenholme",
    "Ravenscroft",
    "Hazelrigg",
    "Underhay",
    "Vanstone",
    "Kettleborough",
    "Marchbanks",
    "Oakenshaw",
    "Pennycuick",
    "Gillingwater",
    "Brackenbury",
    "Cholmondeley",
    "Dunsterville",
    "Entwhistle",
    "Featherstonhaugh",
    "Higginbottom",
    "Lampwick",
    "Jellicoe",
    "Mountjoy",
    "Nettlefold",
    "Ormsby",
    "Prendergast",
    "Rattenbury",
    "Sackville",
    "Tolliver",
    "Wetherall",
    "Yardley",
];

const MAIL_DOMAINS: [&str; 4] = [
    "quillpost.invalid",
    "larkmail.invalid",
    "inkwell-mail.invalid",
    "postbox-canary.invalid",
];

/// The Luhn check digit for a string of decimal digits (`None` if any character is not a digit).
pub fn luhn_check_digit(body: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10)?;
        // The rightmost body digit sits next to the check digit: it is doubled.
        let v = if i % 2 == 0 { d * 2 } else { d };
        sum += if v > 9 { v - 9 } else { v };
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Does `number` (decimal digits, check digit last) pass the Luhn check?
pub fn luhn_valid(number: &str) -> bool {
    let Some(last) = number.chars().last() else {
        return false;
    };
    let body = &number[..number.len() - last.len_utf8()];
    matches!((luhn_check_digit(body), last.to_digit(10)), (Some(c), Some(l)) if u32::from(c) == l)
}

/// A 15-digit, Luhn-valid IMEI.
pub fn imei(seed: u64) -> String {
    let mut r = SplitMix64::new(seed, STREAM_IMEI);
    let mut body = String::from("35");
    body.push_str(&r.digits(12));
    let check = luhn_check_digit(&body).unwrap_or(0);
    body.push(char::from(b'0' + check));
    body
}

/// A fictional North American number, `+155555501xx`.
pub fn phone(seed: u64) -> String {
    let mut r = SplitMix64::new(seed, STREAM_PHONE);
    format!("+155555501{:02}", r.below(100))
}

/// The (first, last) name pair of the e-mail owner.
fn owner(seed: u64) -> (usize, usize) {
    let mut r = SplitMix64::new(seed, STREAM_EMAIL);
    (r.below(FIRST.len()), r.below(LAST.len()))
}

/// `firstname.lastname@<word>.invalid`, lower case.
pub fn email(seed: u64) -> String {
    let (f, l) = owner(seed);
    let mut r = SplitMix64::new(seed, STREAM_EMAIL ^ 0x100);
    let domain = MAIL_DOMAINS[r.below(MAIL_DOMAINS.len())];
    format!(
        "{}.{}@{domain}",
        FIRST[f].to_ascii_lowercase(),
        LAST[l].to_ascii_lowercase()
    )
}

/// `n` distinct `Firstname Lastname` contacts (at most [`MAX_CONTACTS`]), never the e-mail
/// owner's name.
pub fn contacts(seed: u64, n: usize) -> Vec<String> {
    let n = n.min(MAX_CONTACTS);
    let (of, ol) = owner(seed);
    let owner_idx = of * LAST.len() + ol;
    let mut pairs: Vec<usize> = (0..FIRST.len() * LAST.len())
        .filter(|&i| i != owner_idx)
        .collect();
    let mut r = SplitMix64::new(seed, STREAM_CONTACTS);
    // Partial Fisher-Yates: the first n entries become a uniform sample without repetition.
    for i in 0..n {
        let j = i + r.below(pairs.len() - i);
        pairs.swap(i, j);
    }
    pairs[..n]
        .iter()
        .map(|&p| format!("{} {}", FIRST[p / LAST.len()], LAST[p % LAST.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("490154203237518"));
        assert!(luhn_valid("356938035643809"));
        assert!(!luhn_valid("356938035643808"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("12a4"));
        assert_eq!(luhn_check_digit("7992739871"), Some(3));
        assert_eq!(luhn_check_digit("x"), None);
    }

    #[test]
    fn values_are_pinned_for_one_seed() {
        // Changing these breaks every scenario's accepted snapshots: see the module docs.
        assert_eq!(imei(2014), "353604416773002");
        assert!(luhn_valid(&imei(2014)));
        assert_eq!(phone(2014), "+15555550141");
        assert_eq!(email(2014), "ignatius.hazelrigg@larkmail.invalid");
        assert_eq!(
            contacts(2014, 3),
            [
                "Jolyon Underhay",
                "Griselda Oakenshaw",
                "Hortensia Prendergast"
            ]
        );
    }

    #[test]
    fn shapes_hold_for_many_seeds() {
        for seed in 0..500u64 {
            let i = imei(seed);
            assert_eq!(i.len(), 15);
            assert!(i.starts_with("35"));
            assert!(luhn_valid(&i), "{i}");
            let p = phone(seed);
            assert!(p.starts_with("+155555501") && p.len() == 12, "{p}");
            let e = email(seed);
            assert!(
                e.ends_with(".invalid") && e.contains('.') && e.contains('@'),
                "{e}"
            );
            let c = contacts(seed, 10);
            assert_eq!(c.len(), 10);
            for (k, name) in c.iter().enumerate() {
                assert!(name.len() >= 6);
                assert!(!c[..k].contains(name), "duplicate {name}");
                let as_mail = name.to_ascii_lowercase().replace(' ', ".");
                assert!(
                    !e.starts_with(&format!("{as_mail}@")),
                    "{name} is the owner"
                );
            }
        }
    }

    #[test]
    fn kinds_are_independent_and_seeds_differ() {
        assert_ne!(imei(1), imei(2));
        assert_ne!(contacts(1, 3), contacts(2, 3));
        // Asking for more contacts keeps the earlier ones.
        assert_eq!(contacts(7, 5)[..3], contacts(7, 3)[..]);
        assert_eq!(contacts(7, MAX_CONTACTS + 10).len(), MAX_CONTACTS);
        assert_eq!(
            Generate::Contacts(2).value(7),
            VarValue::List(contacts(7, 2))
        );
        assert_eq!(Generate::Imei.value(7), VarValue::One(imei(7)));
        assert_eq!(Generate::Contacts(2).key(), "contacts");
    }
}
