//! Compressed JSON lines: any bytes, as the contents of a `.jsonl.gz` and of a `.jsonl.zst`
//! file, read by `mqtrace_reader::load` as the analyzer reads them. It must not panic and
//! must return: damaged or truncated gzip/zstd data, trailing garbage, several members or
//! frames are all reported as records or damage, never a crash or a hang.
//!
//! The file is written to a directory of this process under `std::env::temp_dir()` (set
//! `TMPDIR` to put it on a tmpfs); `load` reads from paths only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtrace_reader::{Compression, Format, InputFile, load};

#[path = "tempdir.rs"]
mod tempdir;
use tempdir::dir;

fuzz_target!(|data: &[u8]| {
    for (name, compression) in [
        ("x.jsonl.gz", Compression::Gzip),
        ("x.jsonl.zst", Compression::Zstd),
    ] {
        let path = dir().join(name);
        std::fs::write(&path, data).expect("write the input");
        let file = InputFile {
            path,
            format: Format::JsonLines,
            compression,
            id: (0, 0),
        };
        let mut rows = 0;
        let loaded = load(&[file], &|_| {}, &mut |spans| rows += spans.seq.len())
            .expect("a few KiB cannot hold too many keys");
        let stats = loaded.stats;
        // Something is said about every file: records, or why there are none.
        assert!(stats.records > 0 || stats.malformed_total > 0, "{stats:?}");
        assert!(
            rows as u64 <= stats.spans,
            "{rows} rows of {} spans",
            stats.spans
        );
    }
});
