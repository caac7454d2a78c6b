//! The decoding graph (`telltale::layers::explore`): any bytes, with any Content-Type hint, must be opened
//! without a panic or a hang, within the limits (every node's depth and size bounded, the budgets never
//! overdrawn), and the matcher's XOR search (`Matcher::xor_keys`) must hold for every key it names.
//! Run: `cargo fuzz run layers -- -max_total_time=60`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use telltale::layers::{explore, Budget, Hint, Limits};
use telltale::{Identity, Matcher};

static MATCHER: OnceLock<Matcher> = OnceLock::new();

const HINTS: [&str; 6] = [
    "",
    "multipart/form-data; boundary=b",
    "application/x-www-form-urlencoded",
    "application/json",
    "application/x-protobuf",
    "text/xml",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else {
        return;
    };
    let hint = match sel % 8 {
        7 => Hint::Cookie,
        6 => Hint::None,
        n => Hint::ContentType(HINTS[usize::from(n) % HINTS.len()]),
    };
    let limits = Limits {
        input_bytes: 4 << 20,
        input_work: 32 << 20,
        child_cap: 1 << 20,
        ..Limits::default()
    };
    let mut budget = Budget {
        bytes: 8 << 20,
        work: 64 << 20,
    };
    let (bytes0, work0) = (budget.bytes, budget.work);
    let mut decoded = 0u64;
    explore(input, hint, &limits, &mut budget, &mut |n| {
        assert!(n.depth >= 1 && n.depth <= limits.max_depth, "depth {}", n.depth);
        assert!(n.bytes.len() <= limits.child_cap, "a node over the child cap");
        decoded += n.bytes.len() as u64;
    });
    assert!(budget.bytes <= bytes0 && budget.work <= work0);

    let m = MATCHER.get_or_init(|| {
        Matcher::new(&Identity::from_pairs(&[
            ("imei", "356938035643809"),
            ("email", "alice.canary@example.invalid"),
        ]))
    });
    for key in m.xor_keys(input) {
        assert_ne!(key, 0);
        let plain: Vec<u8> = input.iter().map(|b| b ^ key).collect();
        let mut hits = Vec::new();
        m.find_all(&plain, &mut hits);
        assert!(!hits.is_empty(), "key {key:#04x} named, but no canary under it");
    }
});
