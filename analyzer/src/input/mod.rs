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

use polars::prelude::{DataFrame, PolarsError};
use rayon::prelude::*;
use std::io::Read;

use crate::columns::{Dictionaries, SpanColumns, StreamName};

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
    dictionaries: Dictionaries,
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
        columns.remap_into(&mut self.dictionaries);
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
pub fn load(
    files: &[InputFile],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Loaded, crate::AnalyzeError> {
    let mut sink = Sink::default();
    for file in files {
        sink.file = file.path.display().to_string();
        match file.format {
            Format::JsonLines => read_json_lines(file, progress, &mut |p| sink.take(p)),
            Format::Protobuf => read_protobuf(file, progress, &mut |p| sink.take(p)),
        }
    }
    if let Some(e) = sink.error {
        return Err(e.into());
    }
    sink.dictionaries
        .fit_keys()
        .map_err(crate::AnalyzeError::TooLarge)?;
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
            .dictionaries
            .streams
            .values()
            .iter()
            .map(|k| crate::columns::split_stream_key(k))
            .collect(),
        groups: sink.dictionaries.groups.values().to_vec(),
        partitions: sink.dictionaries.partitions.values().to_vec(),
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

/// A run of whole lines read from a file (`bytes[..len]`). Its lines are numbered while
/// they are parsed: counting them here would be a second pass over every byte.
struct Block {
    bytes: Vec<u8>,
    len: usize,
    eof: bool,
}

/// Cuts a file into blocks of whole lines, reusing the buffers it is given back (so their
/// pages are touched once, not once per block).
struct Blocks {
    input: Box<dyn std::io::Read + Send>,
    /// The bytes after the last newline of the previous block.
    carry: Vec<u8>,
    /// Bytes read so far, to say where a read failed.
    offset: u64,
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
                    out.stats.malformed.push(Malformed {
                        file: String::new(),
                        line: None,
                        offset: Some(self.offset),
                        error: format!("read error: {e}"),
                    });
                    return Err(Box::new(out));
                }
            };
            len += got;
            self.offset += got as u64;
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
            return Ok(Some(Block {
                bytes,
                len: cut,
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
        offset: 0,
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
    let mut first_line = 1;
    loop {
        let eof = current.eof;
        let (pieces, next) = rayon::join(
            || parse_block(&current.bytes[..current.len], first_line, current.eof),
            || {
                for piece in parsed.drain(..) {
                    sink(piece);
                }
                if eof { Ok(None) } else { blocks.next(progress) }
            },
        );
        (parsed, first_line) = pieces;
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

/// Parses whole lines in parallel pieces, returned in order, with the number of the line
/// after the block. Each piece numbers its lines from 1 as it goes; the numbers of the
/// problems it found are shifted once all pieces are done.
fn parse_block(block: &[u8], first_line: u64, ends_file: bool) -> (Vec<ChunkOutput>, u64) {
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
    let last_piece = bounds.len().saturating_sub(1);
    let mut pieces: Vec<(ChunkOutput, u64)> = bounds
        .into_par_iter()
        .enumerate()
        .map(|(i, (s, e))| parse_lines(&block[s..e], ends_file && i == last_piece))
        .collect();
    let mut before = first_line - 1;
    for (piece, lines) in &mut pieces {
        for line in piece
            .stats
            .malformed
            .iter_mut()
            .filter_map(|m| m.line.as_mut())
        {
            *line += before;
        }
        before += *lines;
    }
    (pieces.into_iter().map(|(p, _)| p).collect(), before + 1)
}

/// Parses a piece of whole lines, numbered from 1; returns how many lines it held.
fn parse_lines(bytes: &[u8], ends_file: bool) -> (ChunkOutput, u64) {
    let mut out = ChunkOutput::default();
    let mut scratch = Vec::with_capacity(16);
    let mut line_no = 1;
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
    (out, line_no - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Problems keep their file's line numbers whichever piece found them: lines numbered
    /// within each piece are shifted by the lines of the pieces before.
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
        let lines: Vec<u64> = pieces
            .iter()
            .flat_map(|p| p.stats.malformed.iter().filter_map(|m| m.line))
            .collect();
        let expected: Vec<u64> = (1..=300).filter(|i| i % 7 == 0).map(|i| 1000 + i).collect();
        assert_eq!(lines, expected);
        assert_eq!(next_line, 1301);
    }

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
                offset: 0,
                first: true,
                spare: Vec::new(),
                step,
            };
            let mut all = Vec::new();
            while let Ok(Some(block)) = blocks.next(&|_| {}) {
                let bytes = &block.bytes[..block.len];
                assert!(block.eof || bytes.ends_with(b"\n"), "step {step}");
                all.extend_from_slice(bytes);
                blocks.spare = block.bytes;
            }
            assert_eq!(String::from_utf8_lossy(&all), text, "step {step}");
        }
    }
}
