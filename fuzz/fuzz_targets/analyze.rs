//! Capture bytes → report: the whole analysis path must never panic or hang, whatever the file holds.
//! Run: `cargo fuzz run analyze -- -max_total_time=60` (seed corpus: `cargo run --example gen_capture` output).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use telltale::{Config, Identity, Matcher};

static MATCHER: OnceLock<Arc<Matcher>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let matcher = MATCHER
        .get_or_init(|| {
            let identity = Identity::from_pairs(&[("imei", "356938035643809"), ("contact", "Alice Canary")]);
            Arc::new(Matcher::new(&identity))
        })
        .clone();
    let _ = telltale::analyze_bytes(data.to_vec(), "fuzz", matcher, Config::default());
});
