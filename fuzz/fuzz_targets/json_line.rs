//! Differential: the JSON-lines readers must agree on any bytes.
//!
//! The input is read as OTLP JSON lines twice: by the fast path (the hand-written scanner,
//! falling back to serde for any line it does not take whole) and by the serde reader alone.
//! Everything the two sinks hold (columns, dictionaries, counts, window, telemetry, every
//! malformed record with its line and reason) must be the same: the scanner may not accept
//! a line serde_json rejects, reject one it accepts, or read any value differently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtrace_reader::fuzzing::{Readers, read_lines};

fuzz_target!(|data: &[u8]| {
    let fast = read_lines(data, Readers::Fast).comparable();
    let serde = read_lines(data, Readers::SerdeOnly).comparable();
    if fast != serde {
        panic!(
            "the readers disagree on {:?}\nfast:  {fast}\nserde: {serde}",
            String::from_utf8_lossy(data)
        );
    }
});
