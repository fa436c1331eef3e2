//! Reading whole inputs: each file in blocks of whole lines (or of framed records), each
//! block parsed in parallel pieces, each piece a [`SpanSink`] of its own. Pieces are merged
//! in input order: their dictionary codes remapped into the shared dictionaries, their
//! problems' line numbers shifted, and their columns handed to the caller at once, so that
//! row-wise buffers never outlive a piece.

use mqtrace_vocab::limits::MAX_LINE_BYTES;
use rayon::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::columns::{Dictionaries, SpanParts, StreamName, split_stream_key};
use crate::files::{Compression, Format, InputFile, fill, open};
use crate::json::{LONG_LINE_MARK, Readers, read_line};
use crate::ledgers::LedgerBook;
use crate::malformed::Location;
use crate::semconv::SemSpan;
use crate::sink::SpanSink;
use crate::stats::InputStats;

/// Bytes read from a file per step; each step is split across the worker threads.
const BLOCK: usize = 32 << 20;

/// A UTF-8 byte order mark, which some writers put before the first line.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why reading stopped (bad records never stop it: they are counted and reported).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The input holds more of something than the analyzer's keys can tell apart.
    #[error("{0}")]
    TooLarge(String),
}

/// What was read besides the spans.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Stream names by code.
    pub streams: Vec<StreamName>,
    /// Group names by code.
    pub groups: Vec<String>,
    /// Partition names by code.
    pub partitions: Vec<String>,
    /// Counts, problems and the time window.
    pub stats: InputStats,
    /// The ledger spans, as ranges: [`LedgerBook::settle`] turns them into rows and clean
    /// seqs.
    pub ledgers: LedgerBook,
    /// Messaging spans without mqtrace's numbering (SPEC §4b), in input order.
    pub semconv: Vec<SemSpan>,
    /// (trace id, span id) of every numbered `produce` span and of its parent.
    pub numbered_sends: Vec<(u128, u64)>,
}

/// Reads `files`; `spans` is handed each piece's columns (codes shared across the input) in
/// input order; `progress` is told how many input bytes each step consumed.
pub fn load(
    files: &[InputFile],
    progress: &(dyn Fn(u64) + Sync),
    spans: &mut (dyn FnMut(SpanParts) + Send),
) -> Result<Loaded, LoadError> {
    let mut dictionaries = Dictionaries::default();
    let mut totals = InputStats::default();
    let mut ledgers = LedgerBook::default();
    let mut semconv = Vec::new();
    let mut numbered_sends = Vec::new();
    for file in files {
        let mut file_stats = InputStats::default();
        let mut take = |mut piece: SpanSink, lines_before: u64| {
            for ledger in piece.take_ledgers() {
                ledgers.push(dictionaries.ledger_entry(ledger));
            }
            let (spans_of_others, sends) = piece.take_semconv();
            semconv.extend(spans_of_others);
            numbered_sends.extend(sends);
            let (mut columns, stats) = piece.into_parts();
            file_stats.merge_piece(stats, lines_before);
            if !columns.is_empty() {
                columns.remap_into(&mut dictionaries);
                spans(columns.into_parts());
            }
        };
        match file.format {
            Format::JsonLines => read_json_lines(file, progress, &mut take),
            Format::Protobuf => match open(file) {
                Ok(opened) => crate::proto::read(opened.reader, progress, &mut |p| take(p, 0)),
                Err(e) => take(problem(Location::default(), format!("cannot open: {e}")), 0),
            },
        }
        if file_stats.records == 0 && file_stats.malformed_total == 0 {
            file_stats.malformed(crate::malformed::Malformed::new(
                Location::default(),
                "empty file: no OTLP records",
            ));
        }
        file_stats.finish_file(&file.path.display().to_string());
        totals.merge(file_stats);
    }
    dictionaries.fit_keys().map_err(LoadError::TooLarge)?;
    totals.files = files.len() as u64;
    Ok(Loaded {
        streams: dictionaries
            .streams
            .values()
            .iter()
            .map(|k| split_stream_key(k))
            .collect(),
        groups: dictionaries.groups.values().to_vec(),
        partitions: dictionaries.partitions.values().to_vec(),
        stats: totals,
        ledgers,
        semconv,
        numbered_sends,
    })
}

fn problem(at: Location, reason: impl Into<String>) -> SpanSink {
    let mut sink = SpanSink::default();
    sink.reject_rest(at, reason);
    sink
}

/// A run of whole lines read from a file (`bytes[..len]`). Its lines are numbered while
/// they are parsed: counting them here would be a second pass over every byte.
struct Block {
    bytes: Vec<u8>,
    len: usize,
    eof: bool,
}

/// Cuts a file into blocks of whole lines, reusing the buffers it is given back (so their
/// pages are touched once, not once per block). A line longer than [`MAX_LINE_BYTES`] is
/// dropped as it is read and replaced by [`LONG_LINE_MARK`]; a read error (damage in a
/// compressed stream) ends the file after the last whole line before it.
struct Blocks {
    input: Box<dyn std::io::Read + Send>,
    compression: Compression,
    /// Bytes of the file itself read so far (differs from `offset` when compressed).
    raw_read: Arc<AtomicU64>,
    /// The bytes after the last newline of the previous block.
    carry: Vec<u8>,
    /// (Decompressed) bytes read so far.
    offset: u64,
    first: bool,
    /// Inside a line too long to keep: bytes are dropped until its newline.
    skipping: bool,
    /// A read error, reported once the whole lines before it are out.
    failed: Option<SpanSink>,
    spare: Vec<u8>,
    /// Bytes read per step ([`BLOCK`]; small in tests).
    step: usize,
    /// The longest line kept ([`MAX_LINE_BYTES`]; small in tests).
    max_line: usize,
}

impl Blocks {
    fn new(input: Box<dyn std::io::Read + Send>, file: &InputFile, raw: Arc<AtomicU64>) -> Self {
        Blocks {
            input,
            compression: file.compression,
            raw_read: raw,
            carry: Vec::new(),
            offset: 0,
            first: true,
            skipping: false,
            failed: None,
            spare: Vec::with_capacity(BLOCK + (1 << 20)),
            step: BLOCK,
            max_line: MAX_LINE_BYTES,
        }
    }

    /// The next block; `Err` is a problem with (the rest of) the file, as a record to report.
    fn next(&mut self, progress: &(dyn Fn(u64) + Sync)) -> Result<Option<Block>, Box<SpanSink>> {
        if let Some(failed) = self.failed.take() {
            return Err(Box::new(failed));
        }
        let mut bytes = std::mem::take(&mut self.spare);
        let mut len = self.carry.len();
        let step = self.step;
        if bytes.len() < len + step {
            bytes.resize(len + step, 0);
        }
        bytes[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        loop {
            if bytes.len() < len + step {
                bytes.resize(len + step, 0); // a line longer than a block
            }
            let (got, error) = fill(&mut self.input, &mut bytes[len..len + step]);
            let before = len;
            len += got;
            self.offset += got as u64;
            progress(got as u64);
            if std::mem::take(&mut self.first) {
                if bytes[..len].starts_with(BOM) {
                    bytes.copy_within(BOM.len()..len, 0);
                    len -= BOM.len();
                }
                if len == 0 && error.is_none() {
                    self.spare = bytes;
                    return Ok(None); // empty: the caller says so
                }
                if bytes[..len.min(4096)].contains(&0) {
                    return Err(Box::new(problem(
                        Location::default(),
                        "binary data, not OTLP JSON lines (an OTLP protobuf file should be \
                         named .binpb or .pb)",
                    )));
                }
            }
            if self.skipping {
                match memchr::memchr(b'\n', &bytes[before..len]) {
                    Some(i) => {
                        // The long line ends here: its mark stands in for it.
                        let rest = bytes[before + i..len].to_vec(); // from its newline on
                        bytes[..LONG_LINE_MARK.len()].copy_from_slice(LONG_LINE_MARK);
                        bytes[LONG_LINE_MARK.len()..LONG_LINE_MARK.len() + rest.len()]
                            .copy_from_slice(&rest);
                        len = LONG_LINE_MARK.len() + rest.len();
                        self.skipping = false;
                    }
                    None if got == 0 => {
                        // A torn long last line.
                        bytes[..LONG_LINE_MARK.len()].copy_from_slice(LONG_LINE_MARK);
                        len = LONG_LINE_MARK.len();
                        self.skipping = false;
                    }
                    None => {
                        len = 0;
                        continue;
                    }
                }
            }
            if let Some(e) = error {
                self.failed = Some(self.damage(&bytes[..len], e));
                // Whole lines only: the part line before the damage is part of it.
                let cut = memchr::memrchr(b'\n', &bytes[..len]).map_or(0, |i| i + 1);
                return Ok(Some(Block {
                    bytes,
                    len: cut,
                    eof: true,
                }));
            }
            let eof = got == 0;
            if eof && len == 0 {
                self.spare = bytes;
                return Ok(None);
            }
            // Whole lines only; at the end of the file, everything.
            let cut = if eof {
                len
            } else {
                match memchr::memrchr(b'\n', &bytes[..len]) {
                    Some(i) => i + 1,
                    None if len > self.max_line => {
                        self.skipping = true;
                        len = 0;
                        continue;
                    }
                    None => continue,
                }
            };
            self.carry.extend_from_slice(&bytes[cut..len]);
            return Ok(Some(Block {
                bytes,
                len: cut,
                eof,
            }));
        }
    }

    /// The problem a read error is reported as: where in the file, and what was kept.
    fn damage(&self, read: &[u8], e: std::io::Error) -> SpanSink {
        let torn = read.len() - memchr::memrchr(b'\n', read).map_or(0, |i| i + 1);
        let kept = self.offset - torn as u64;
        let raw = self.raw_read.load(Ordering::Relaxed);
        let (what, at) = match self.compression {
            Compression::None => ("read error".to_owned(), Location::offset(self.offset)),
            Compression::Gzip => (
                format!("damaged gzip data (at or before byte {raw} of the file)"),
                Location::offset(raw),
            ),
            Compression::Zstd => (
                format!("damaged zstd data (at or before byte {raw} of the file)"),
                Location::offset(raw),
            ),
        };
        problem(
            at,
            format!(
                "{what}: {e}; the {kept} bytes of whole lines before it were read, the rest of \
                 the file was not"
            ),
        )
    }
}

/// Reads a file of JSON lines in blocks. While the worker threads parse one block, the next
/// is read and the previous one's pieces go to `take`: the two cores never wait on I/O or on
/// the frame building.
fn read_json_lines(
    file: &InputFile,
    progress: &(dyn Fn(u64) + Sync),
    take: &mut (dyn FnMut(SpanSink, u64) + Send),
) {
    let opened = match open(file) {
        Ok(r) => r,
        Err(e) => return take(problem(Location::default(), format!("cannot open: {e}")), 0),
    };
    let mut blocks = Blocks::new(opened.reader, file, opened.raw_read);
    let mut current = match blocks.next(progress) {
        Ok(Some(block)) => block,
        Ok(None) => return,
        Err(problem) => return take(*problem, 0),
    };
    let mut parsed: Vec<(SpanSink, u64)> = Vec::new();
    let mut first_line = 1;
    loop {
        let eof = current.eof;
        let (pieces, next) = rayon::join(
            || parse_block(&current.bytes[..current.len], first_line, eof),
            || {
                for (piece, before) in parsed.drain(..) {
                    take(piece, before);
                }
                if eof {
                    blocks.next(progress).map(|_| None)
                } else {
                    blocks.next(progress)
                }
            },
        );
        (parsed, first_line) = pieces;
        blocks.spare = std::mem::take(&mut current.bytes);
        match next {
            Ok(Some(block)) => current = block,
            Ok(None) => break,
            Err(problem) => {
                parsed.push((*problem, 0));
                break;
            }
        }
    }
    for (piece, before) in parsed {
        take(piece, before);
    }
}

/// Parses whole lines in parallel pieces, returned in order, each with the number of lines
/// before it in the file; and the number of the line after the block. Each piece numbers its
/// lines from 1 as it goes; the merge shifts them.
fn parse_block(block: &[u8], first_line: u64, ends_file: bool) -> (Vec<(SpanSink, u64)>, u64) {
    let pieces = rayon::current_num_threads().max(1) * 4;
    let target = block.len() / pieces + 1;
    let mut bounds = Vec::with_capacity(pieces + 1);
    let mut start = 0;
    while start < block.len() {
        let mut end = (start + target).min(block.len());
        if end < block.len() {
            end = memchr::memchr(b'\n', &block[end..]).map_or(block.len(), |i| end + i + 1);
        }
        bounds.push((start, end));
        start = end;
    }
    let last = bounds.len().saturating_sub(1);
    let pieces: Vec<(SpanSink, u64)> = bounds
        .into_par_iter()
        .enumerate()
        .map(|(i, (s, e))| parse_lines(&block[s..e], ends_file && i == last))
        .collect();
    let mut before = first_line - 1;
    let mut out = Vec::with_capacity(pieces.len());
    for (piece, lines) in pieces {
        out.push((piece, before));
        before += lines;
    }
    (out, before + 1)
}

/// Parses a piece of whole lines, numbered from 1; returns how many lines it held.
/// `ends_file`: the piece's last line is the file's.
fn parse_lines(bytes: &[u8], ends_file: bool) -> (SpanSink, u64) {
    let mut sink = SpanSink::default();
    let mut scratch = Vec::with_capacity(16);
    let mut line_no = 1;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, next, torn) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..], false),
            None => (rest, &rest[rest.len()..], ends_file),
        };
        read_line(line, line_no, torn, &mut sink, &mut scratch, Readers::Fast);
        rest = next;
        line_no += 1;
    }
    (sink, line_no - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: Vec<u8>, step: usize, max_line: usize) -> Blocks {
        let file = InputFile {
            path: "t".into(),
            format: Format::JsonLines,
            compression: Compression::None,
            id: (0, 0),
        };
        let mut b = Blocks::new(Box::new(std::io::Cursor::new(text)), &file, Arc::default());
        b.step = step;
        b.max_line = max_line;
        b.spare = Vec::new();
        b
    }

    fn all(mut b: Blocks) -> Vec<u8> {
        let mut all = Vec::new();
        while let Ok(Some(block)) = b.next(&|_| {}) {
            let bytes = &block.bytes[..block.len];
            assert!(block.eof || bytes.ends_with(b"\n"));
            all.extend_from_slice(bytes);
            b.spare = block.bytes;
        }
        all
    }

    /// Problems keep their file's line numbers whichever piece found them.
    #[test]
    fn problems_are_numbered_by_the_files_lines_across_pieces() {
        let mut block = String::new();
        for i in 1..=300 {
            if i % 7 == 0 {
                block.push_str(&format!("not json {i}\n"));
            } else {
                block.push('\n');
            }
        }
        let (pieces, next_line) = parse_block(block.as_bytes(), 1001, false);
        assert!(pieces.len() > 1, "one piece would not test the shifting");
        let mut stats = InputStats::default();
        for (piece, before) in pieces {
            stats.merge_piece(piece.into_parts().1, before);
        }
        let lines: Vec<u64> = stats.malformed.iter().filter_map(|m| m.at.line).collect();
        let expected: Vec<u64> = (1..=300).filter(|i| i % 7 == 0).map(|i| 1000 + i).collect();
        assert_eq!(lines, expected);
        assert_eq!(next_line, 1301);
    }

    /// Every byte comes back once, in whole lines, whatever the step and however long a
    /// line is.
    #[test]
    fn blocks_cut_a_file_into_whole_lines() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&"x".repeat(i % 37));
            text.push_str(&format!(" line {}\n", i + 1));
        }
        text.push_str("a torn last line without a newline");
        for step in [7, 64, 1000, 1 << 20] {
            let got = all(blocks(text.clone().into_bytes(), step, 1 << 20));
            assert_eq!(String::from_utf8_lossy(&got), text, "step {step}");
        }
    }

    #[test]
    fn a_line_over_the_limit_is_replaced_by_its_mark_and_a_bom_dropped() {
        let mut text = b"\xEF\xBB\xBFfirst\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5000));
        text.extend_from_slice(b"\nlast\n");
        text.extend(std::iter::repeat_n(b'y', 5000)); // a torn long last line
        // Steps below the limit: a long line inside one block is bounded by the block, and
        // the line reader reports it (`json::read_line`).
        for step in [7, 100, 999] {
            let got = all(blocks(text.clone(), step, 1000));
            let mut want = b"first\n".to_vec();
            want.extend_from_slice(LONG_LINE_MARK);
            want.extend_from_slice(b"\nlast\n");
            want.extend_from_slice(LONG_LINE_MARK);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{step}"
            );
        }
    }

    /// zstd damage mid-file keeps the lines of the blocks before it: the decoder drops what a
    /// failing read had decoded, so it is never asked for more than a block at a time (in
    /// one 32 MiB read, it decoded the whole small file and lost all of it).
    #[test]
    fn a_damaged_zstd_block_keeps_the_lines_before_it() {
        let line = b"{\"resourceSpans\":[]}\n";
        let per_block = 100_000 / line.len();
        // A frame (no content size, 128 KiB window) of 5 raw blocks of whole lines, then a
        // block of the reserved type: "corrupted block".
        let mut zst = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38];
        let block_header = |size: usize, kind: usize| {
            let h = (size << 3 | kind << 1) as u32;
            h.to_le_bytes()[..3].to_vec()
        };
        for _ in 0..5 {
            zst.extend(block_header(per_block * line.len(), 0));
            zst.extend(line.repeat(per_block));
        }
        zst.extend(block_header(10, 3));
        zst.extend([0; 10]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("damaged.jsonl.zst");
        std::fs::write(&path, &zst).expect("write");
        let file = InputFile {
            path,
            format: Format::JsonLines,
            compression: Compression::Zstd,
            id: (0, 0),
        };
        let stats = load(&[file], &|_| {}, &mut |_| {}).expect("load").stats;
        assert!(
            stats.records as usize >= 4 * per_block && stats.records as usize <= 5 * per_block,
            "{} records of {}",
            stats.records,
            5 * per_block
        );
        assert_eq!(stats.malformed_total, 1);
        assert!(
            stats.malformed[0].error.contains("damaged zstd"),
            "{:?}",
            stats.malformed
        );
    }
}
