//! Reading traces: finding the files, decoding them in parallel pieces straight into span
//! columns, and accounting for every record that could not be used.

mod chunk;
mod extract;
mod files;
mod malformed;
mod otlp_json;
mod otlp_proto;
mod otlp_scan;

pub use chunk::{ChunkOutput, InputStats, TelemetryHealth};
pub use extract::Scalar;
pub use files::{Compression, Format, InputFile, classify, discover, open, read_full};
pub use malformed::Malformed;

use polars::prelude::{DataFrame, PolarsError, PolarsResult};
use rayon::prelude::*;
use std::io::Read;

use crate::columns::{Dict, SpanColumns, StreamName};

/// Bytes read from a file per step; each step is split across the worker threads.
const BLOCK: usize = 32 << 20;

/// Everything read from the input.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The keyed spans, as built by [`SpanColumns::into_frame`], dictionary codes shared.
    pub frame: DataFrame,
    /// Stream names by code.
    pub streams: Vec<StreamName>,
    /// Group names by code.
    pub groups: Vec<String>,
    /// Partition names by code.
    pub partitions: Vec<String>,
    /// Counts, problems and the time window.
    pub stats: InputStats,
}

/// Takes parsed pieces in input order: shares their dictionaries, turns their columns into
/// polars frames at once (so the row-wise buffers never outlive a piece), adds up the counts.
#[derive(Default)]
struct Sink {
    streams: Dict,
    groups: Dict,
    partitions: Dict,
    frame: Option<DataFrame>,
    totals: InputStats,
    file: String,
    error: Option<PolarsError>,
}

impl Sink {
    fn take(&mut self, mut piece: ChunkOutput) {
        let mut columns = std::mem::take(&mut piece.columns);
        for m in &mut piece.stats.malformed {
            m.file.clone_from(&self.file);
        }
        self.totals.merge(piece.stats);
        if columns.is_empty() || self.error.is_some() {
            return;
        }
        columns.remap_into(&mut self.streams, &mut self.groups, &mut self.partitions);
        let result = columns.into_frame().and_then(|f| match &mut self.frame {
            Some(all) => all.vstack_mut_owned(f).map(|_| ()),
            None => {
                self.frame = Some(f);
                Ok(())
            }
        });
        if let Err(e) = result {
            self.error = Some(e);
        }
    }
}

/// Reads `files`; `progress` is told how many input bytes each step consumed.
pub fn load(files: &[InputFile], progress: &(dyn Fn(u64) + Sync)) -> PolarsResult<Loaded> {
    let mut sink = Sink::default();
    for file in files {
        sink.file = file.path.display().to_string();
        match file.format {
            Format::JsonLines => read_json_lines(file, progress, &mut |p| sink.take(p)),
            Format::Protobuf => read_protobuf(file, progress, &mut |p| sink.take(p)),
        }
    }
    if let Some(e) = sink.error {
        return Err(e);
    }
    let frame = match sink.frame {
        Some(mut f) => {
            f.rechunk_mut_par();
            f
        }
        None => SpanColumns::default().into_frame()?,
    };
    let mut stats = sink.totals;
    stats.files = files.len() as u64;
    Ok(Loaded {
        frame,
        streams: sink
            .streams
            .values()
            .iter()
            .map(|k| crate::columns::split_stream_key(k))
            .collect(),
        groups: sink.groups.values().to_vec(),
        partitions: sink.partitions.values().to_vec(),
        stats,
    })
}

fn file_problem(error: String) -> ChunkOutput {
    let mut out = ChunkOutput::default();
    out.stats.malformed.push(Malformed {
        file: String::new(),
        line: None,
        offset: None,
        error,
    });
    out
}

fn read_protobuf(
    file: &InputFile,
    progress: &(dyn Fn(u64) + Sync),
    sink: &mut dyn FnMut(ChunkOutput),
) {
    let input = match open(file) {
        Ok(r) => r,
        Err(e) => return sink(file_problem(format!("cannot open: {e}"))),
    };
    let mut counted = CountingReader { inner: input, n: 0 };
    let mut out = ChunkOutput::default();
    otlp_proto::read(&mut counted, &mut out);
    progress(counted.n);
    if out.stats.records == 0 && out.stats.malformed.is_empty() {
        return sink(file_problem("empty file: no OTLP records".to_owned()));
    }
    sink(out);
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// A run of whole lines read from a file (`bytes[..len]`), with the number of its first line.
struct Block {
    bytes: Vec<u8>,
    len: usize,
    first_line: u64,
    eof: bool,
}

/// Cuts a file into blocks of whole lines, reusing the buffers it is given back (so their
/// pages are touched once, not once per block).
struct Blocks {
    input: Box<dyn std::io::Read + Send>,
    /// The bytes after the last newline of the previous block.
    carry: Vec<u8>,
    next_line: u64,
    first: bool,
    spare: Vec<u8>,
    /// Bytes read per step ([`BLOCK`]; small in tests).
    step: usize,
}

impl Blocks {
    /// The next block; `Err` is a problem with the whole file, as a record to report.
    fn next(&mut self, progress: &(dyn Fn(u64) + Sync)) -> Result<Option<Block>, Box<ChunkOutput>> {
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
            let got = match read_full(&mut self.input, &mut bytes[len..len + step]) {
                Ok(n) => n,
                Err(e) => {
                    let mut out = ChunkOutput::default();
                    out.malformed_line(self.next_line, format!("read error: {e}"));
                    return Err(Box::new(out));
                }
            };
            len += got;
            progress(got as u64);
            if std::mem::take(&mut self.first) {
                if len == 0 {
                    return Err(Box::new(file_problem(
                        "empty file: no OTLP records".to_owned(),
                    )));
                }
                if bytes[..len.min(4096)].contains(&0) {
                    return Err(Box::new(file_problem(
                        "binary data, not OTLP JSON lines (an OTLP protobuf file should be \
                         named .binpb or .pb)"
                            .to_owned(),
                    )));
                }
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
                    None => continue,
                }
            };
            self.carry.extend_from_slice(&bytes[cut..len]);
            let first_line = self.next_line;
            self.next_line += count_lines(&bytes[..cut]);
            return Ok(Some(Block {
                bytes,
                len: cut,
                first_line,
                eof,
            }));
        }
    }
}

/// Reads a file of JSON lines in blocks. While the worker threads parse one block, the next
/// is read and the previous one's pieces go to `sink`: the two cores never wait on I/O or on
/// the frame building.
fn read_json_lines(
    file: &InputFile,
    progress: &(dyn Fn(u64) + Sync),
    sink: &mut (dyn FnMut(ChunkOutput) + Send),
) {
    let input = match open(file) {
        Ok(r) => r,
        Err(e) => return sink(file_problem(format!("cannot open: {e}"))),
    };
    let mut blocks = Blocks {
        input,
        carry: Vec::new(),
        next_line: 1,
        first: true,
        spare: Vec::with_capacity(BLOCK + (1 << 20)),
        step: BLOCK,
    };
    let mut current = match blocks.next(progress) {
        Ok(Some(block)) => block,
        Ok(None) => return,
        Err(problem) => return sink(*problem),
    };
    let mut parsed: Vec<ChunkOutput> = Vec::new();
    loop {
        let eof = current.eof;
        let (pieces, next) = rayon::join(
            || {
                parse_block(
                    &current.bytes[..current.len],
                    current.first_line,
                    current.eof,
                )
            },
            || {
                for piece in parsed.drain(..) {
                    sink(piece);
                }
                if eof { Ok(None) } else { blocks.next(progress) }
            },
        );
        parsed = pieces;
        blocks.spare = std::mem::take(&mut current.bytes);
        match next {
            Ok(Some(block)) => current = block,
            Ok(None) => break,
            Err(problem) => {
                parsed.push(*problem);
                break;
            }
        }
    }
    for piece in parsed {
        sink(piece);
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Parses whole lines in parallel pieces, returned in order.
fn parse_block(block: &[u8], first_line: u64, ends_file: bool) -> Vec<ChunkOutput> {
    let pieces = rayon::current_num_threads().max(1) * 4;
    let target = block.len() / pieces + 1;
    let mut bounds = Vec::with_capacity(pieces + 1);
    let mut start = 0;
    let mut line = first_line;
    while start < block.len() {
        let mut end = (start + target).min(block.len());
        if end < block.len() {
            end = memchr::memchr(b'\n', &block[end..]).map_or(block.len(), |i| end + i + 1);
        }
        bounds.push((start, end, line));
        line += count_lines(&block[start..end]);
        start = end;
    }
    let last_piece = bounds.len().saturating_sub(1);
    bounds
        .into_par_iter()
        .enumerate()
        .map(|(i, (s, e, line))| parse_lines(&block[s..e], line, ends_file && i == last_piece))
        .collect()
}

fn parse_lines(bytes: &[u8], first_line: u64, ends_file: bool) -> ChunkOutput {
    let mut out = ChunkOutput::default();
    let mut scratch = Vec::with_capacity(16);
    let mut line_no = first_line;
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, next, has_newline) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        if !line.iter().all(u8::is_ascii_whitespace) {
            if let Err(reason) = otlp_json::parse_line(line, line_no, &mut out, &mut scratch) {
                let reason = if ends_file && !has_newline && next.is_empty() {
                    format!("torn last line (the writer was killed mid-write?): {reason}")
                } else {
                    reason
                };
                out.malformed_line(line_no, reason);
            }
        }
        rest = next;
        line_no += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte comes back once, in whole lines, with the right line numbers, whatever
    /// the step and however long a line is.
    #[test]
    fn blocks_cut_a_file_into_whole_lines_with_their_numbers() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&"x".repeat(i % 37));
            text.push_str(&format!(" line {}\n", i + 1));
        }
        text.push_str("a torn last line without a newline");
        for step in [7, 64, 1000, 1 << 20] {
            let mut blocks = Blocks {
                input: Box::new(std::io::Cursor::new(text.clone().into_bytes())),
                carry: Vec::new(),
                next_line: 1,
                first: true,
                spare: Vec::new(),
                step,
            };
            let mut all = Vec::new();
            while let Ok(Some(block)) = blocks.next(&|_| {}) {
                let bytes = &block.bytes[..block.len];
                let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
                if !first.starts_with(b"a torn") {
                    let first = String::from_utf8_lossy(first);
                    let number = first.rsplit(' ').next().unwrap_or_default();
                    assert_eq!(number, block.first_line.to_string(), "step {step}");
                }
                assert!(block.eof || bytes.ends_with(b"\n"), "step {step}");
                all.extend_from_slice(bytes);
                blocks.spare = block.bytes;
            }
            assert_eq!(String::from_utf8_lossy(&all), text, "step {step}");
        }
    }
}
