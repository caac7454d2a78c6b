//! The h2 stream reader (`telltale::proto::stream`): both directions, fed in pieces whose sizes come from the
//! input, must never panic or hang, and must end every byte in a unit, a skipped span or a failure.
//! Run: `cargo fuzz run stream_h2 -- -max_total_time=60`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telltale::proto::stream::{StreamKind, StreamParser};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    for client in [true, false] {
        let mut p = StreamParser::new(StreamKind::H2, client);
        p.set_mqtt_level(if split & 1 == 1 { 5 } else { 4 });
        let mut out = Vec::new();
        let step = usize::from(split >> 1).max(1);
        for piece in rest.chunks(step) {
            p.feed(piece, &mut out);
            out.clear();
        }
        p.finish(&mut out);
    }
});
