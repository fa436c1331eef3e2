//! Length-prefixed OTLP protobuf: any bytes, read as a `.binpb` file is, must not panic.
//!
//! Covers the framing (4-byte big-endian lengths: torn prefixes, torn records, lengths over
//! the limit) and prost's decoding of each record into the sink. Run with
//! `-rss_limit_mb=512 -malloc_limit_mb=256`: a length prefix claiming a huge record must not
//! allocate by what it claims, only by the bytes that are there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtrace_reader::fuzzing::read_protobuf;

fuzz_target!(|data: &[u8]| {
    let pieces = read_protobuf(data);
    // Everything read is accounted for: each piece's records were framed from the input.
    let records: u64 = pieces.into_iter().map(|p| p.into_parts().1.records).sum();
    assert!(
        records <= data.len() as u64 / 4,
        "{records} records from {} bytes",
        data.len()
    );
});
