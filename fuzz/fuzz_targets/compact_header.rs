//! The compact header (SPEC §3 v2) and a ledger's seq ranges (SPEC §2b), as a consumer and
//! the analyzer read them from any bytes a publisher or a file can carry: never a panic, and
//! whatever is accepted writes back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtrace_vocab::compact::{decode, encode};
use mqtrace_vocab::seqs::SeqRanges;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = decode(data) {
        let again = encode(
            &c.producer_id,
            &c.stream,
            c.seq,
            c.attempt,
            c.message_id.as_deref(),
        );
        let back = decode(again.as_bytes()).expect("an encoded header decodes");
        assert_eq!(back.message_id(), c.message_id());
        assert_eq!(
            (back.producer_id, back.stream, back.seq, back.attempt),
            (c.producer_id, c.stream, c.seq, c.attempt)
        );
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(set) = text.parse::<SeqRanges>()
    {
        assert_eq!(set.to_string().parse::<SeqRanges>(), Ok(set));
    }
});
