//! Damaged compressed JSON lines: every whole line the decoder delivers before the damage is
//! read, exactly as if it had come from a plain file, and the damage is reported once.
//!
//! The input is `[flags, pos_hi, pos_lo, byte, split, text...]`. The text is compressed
//! (gzip or zstd, with or without a checksum, in one or two members/frames), then damaged:
//! truncated at `pos`, a byte flipped or inserted there, or left whole. It is read by
//! `mqtrace_reader::load` as a `.jsonl.gz` / `.jsonl.zst` file. The expectation is computed
//! independently: the same decoder (`mqtrace_reader::open`) is read with the loader's read
//! pattern until it ends or fails; what it delivered (`D`) — all of it, or only its whole
//! lines when it failed — is read with `read_lines`. The load must have the same records,
//! spans, messaging spans, rows (seq, times, trace ids), window, telemetry and malformed
//! line numbers, plus one damage report (by byte offset; counted, and listed unless the
//! file's list of 100 problems is full) when the decoder failed, or the "empty file" note
//! when the file yielded neither a record nor a problem.
//!
//! Why not "every line compressed before the damaged byte": both decoders drop what a read
//! that fails had decoded (`open` asks them for at most 128 KiB per read, so that this is
//! little), and deflate may deliver garbage before it notices anything, so some lines just
//! before the damage may never be delivered intact; the loader cannot read what the decoder
//! withholds. The exact property is about what was delivered.
#![no_main]

use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use mqtrace_reader::fuzzing::fill;
use mqtrace_reader::fuzzing::{Readers, read_lines};
use mqtrace_reader::{Compression, Format, InputFile, load, open};
use std::io::Write;

/// The loader's block: the first read fills up to this much.
const STEP: usize = 32 << 20;

#[path = "tempdir.rs"]
mod tempdir;
use tempdir::dir;

fn compress(text: &[u8], zstd: bool, checksum: bool) -> Vec<u8> {
    if zstd {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
        e.include_checksum(checksum).expect("zstd");
        e.write_all(text).expect("zstd");
        e.finish().expect("zstd")
    } else {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).expect("gzip");
        e.finish().expect("gzip")
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, hi, lo, byte, split, text @ ..] = data else {
        return;
    };
    let zstd = flags & 1 != 0;
    let checksum = flags & 2 != 0;
    let two = flags & 4 != 0;
    let damage = (flags >> 3) & 3;
    let pos = usize::from(u16::from_be_bytes([*hi, *lo]));

    let mut file = if two {
        let at = text.len() * usize::from(*split) / 256;
        let mut both = compress(&text[..at], zstd, checksum);
        both.extend(compress(&text[at..], zstd, checksum));
        both
    } else {
        compress(text, zstd, checksum)
    };
    match damage {
        1 => file.truncate(pos % (file.len() + 1)),
        2 => {
            let at = pos % file.len();
            file[at] ^= byte.max(&1);
        }
        3 => file.insert(pos % (file.len() + 1), *byte),
        _ => {}
    }
    let path = dir().join(if zstd { "d.jsonl.zst" } else { "d.jsonl.gz" });
    std::fs::write(&path, &file).expect("write the input");
    let input = InputFile {
        path,
        format: Format::JsonLines,
        compression: if zstd {
            Compression::Zstd
        } else {
            Compression::Gzip
        },
        id: (0, 0),
    };

    // What the decoder delivers, read as the loader reads it: fills of a block until one
    // brings nothing or fails.
    let mut reader = open(&input).expect("open").reader;
    let mut buf = vec![0u8; STEP];
    let (first, mut failed) = fill(&mut reader, &mut buf);
    let mut delivered = buf[..first].to_vec();
    let mut last = first;
    while last > 0 && !failed && delivered.len() < STEP {
        (last, failed) = fill(&mut reader, &mut buf);
        delivered.extend_from_slice(&buf[..last]);
    }
    drop(buf);

    let mut seq = Vec::new();
    let mut times = Vec::new();
    let mut trace_ids = Vec::new();
    let loaded = load(&[input], &|_| {}, &mut |p| {
        seq.extend(p.seq);
        times.extend(p.start_ns.into_iter().zip(p.end_ns));
        trace_ids.extend(p.trace_id);
    })
    .expect("a few KiB cannot hold too many keys");
    let got = loaded.stats;
    if delivered.len() >= STEP {
        return; // more than one block: not modelled here
    }

    // The first block: a byte order mark dropped; nothing, or binary data, is one problem.
    let mut first_block = &delivered[..first];
    let mut rest = &delivered[first..];
    if let Some(b) = first_block.strip_prefix(b"\xEF\xBB\xBF") {
        first_block = b;
    }
    if first_block.is_empty() && !failed && rest.is_empty() {
        assert_eq!((got.records, got.malformed_total), (0, 1), "empty: {got:?}");
        return;
    }
    if first_block[..first_block.len().min(4096)].contains(&0) {
        assert_eq!(
            (got.records, got.malformed_total),
            (0, 1),
            "binary: {got:?}"
        );
        return;
    }
    let mut text = first_block.to_vec();
    text.extend_from_slice(std::mem::take(&mut rest));
    if failed {
        // Whole lines only: the part line before the damage is part of it.
        text.truncate(text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1));
    }
    let (columns, want) = read_lines(&text, Readers::Fast).into_parts();
    let want_rows = columns.into_parts();

    let lines = |s: &mqtrace_reader::InputStats| -> Vec<u64> {
        s.malformed.iter().filter_map(|m| m.at.line).collect()
    };
    let damage_reports = got
        .malformed
        .iter()
        .filter(|m| m.at.line.is_none() && m.at.offset.is_some())
        .count() as u64;
    let context = || {
        format!(
            "failed: {failed}, {} bytes delivered\ngot:  {got:?}\nwant: {want:?}",
            delivered.len()
        )
    };
    assert_eq!(got.records, want.records, "{}", context());
    assert_eq!(got.spans, want.spans, "{}", context());
    assert_eq!(got.messaging_spans, want.messaging_spans, "{}", context());
    // A file that yields neither a record nor a problem (blank lines) is reported as empty.
    let empty = want.records == 0 && want.malformed_total == 0 && !failed;
    assert_eq!(
        got.malformed_total,
        want.malformed_total + u64::from(failed) + u64::from(empty),
        "{}",
        context()
    );
    // Listed while the file's list is short (it is capped; the damage comes last).
    if want.malformed_total + u64::from(failed) <= 100 {
        assert_eq!(damage_reports, u64::from(failed), "{}", context());
    }
    assert_eq!(lines(&got), lines(&want), "{}", context());
    assert_eq!(got.window_start, want.window_start, "{}", context());
    assert_eq!(
        got.window_end
            .as_ref()
            .map(|e| (e.end_unix_nano, &e.name, &e.trace_id, e.at.line)),
        want.window_end
            .as_ref()
            .map(|e| (e.end_unix_nano, &e.name, &e.trace_id, e.at.line)),
        "{}",
        context()
    );
    assert_eq!(got.telemetry, want.telemetry, "{}", context());
    assert_eq!(seq, want_rows.seq, "{}", context());
    assert_eq!(
        times,
        want_rows
            .start_ns
            .into_iter()
            .zip(want_rows.end_ns)
            .collect::<Vec<_>>(),
        "{}",
        context()
    );
    assert_eq!(trace_ids, want_rows.trace_id, "{}", context());
});
