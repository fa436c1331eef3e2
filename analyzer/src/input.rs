//! Reading traces ([`mqtrace_reader`]) into one polars frame of keyed spans.

pub use mqtrace_reader::{
    Compression, Format, InputFile, InputStats, Location, Malformed, TelemetryHealth, WindowEdge,
    discover,
};

use mqtrace_reader::columns::SpanParts;
use mqtrace_reader::ledgers::RowFacts;
use mqtrace_vocab::seqs::SeqRanges;
use polars::prelude::*;
use std::collections::BTreeMap;

/// Everything read from the input.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// The keyed spans (see [`frame`]).
    pub frame: DataFrame,
    /// The names behind the frame's codes, and the counts, problems and window.
    pub read: mqtrace_reader::Loaded,
    /// Clean ledger seqs per stream code: counted, observed, never rows
    /// ([`mqtrace_reader::ledgers`]).
    pub clean: BTreeMap<u32, SeqRanges>,
}

/// Reads `files`; `progress` is told how many input bytes each step consumed. Each piece's
/// columns become a frame as soon as they are read, so the row-wise buffers never outlive it.
pub(crate) fn load(
    files: &[InputFile],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Loaded, crate::AnalyzeError> {
    let mut all: Option<DataFrame> = None;
    let mut error: Option<PolarsError> = None;
    let loaded = mqtrace_reader::load(files, progress, &mut |parts| {
        if error.is_some() {
            return;
        }
        let result = frame(parts).and_then(|f| match &mut all {
            Some(all) => all.vstack_mut_owned(f).map(|_| ()),
            None => {
                all = Some(f);
                Ok(())
            }
        });
        if let Err(e) = result {
            error = Some(e);
        }
    })
    .map_err(|e| crate::AnalyzeError::TooLarge(e.to_string()))?;
    if let Some(e) = error {
        return Err(e.into());
    }
    let mut frame = match all {
        Some(f) => f,
        None => frame(SpanParts::default())?,
    };
    let mut clean = BTreeMap::new();
    if !loaded.ledgers.is_empty() {
        let facts = row_facts(&frame, &loaded.ledgers.streams())?;
        let settled = loaded.ledgers.settle(&facts);
        frame.vstack_mut_owned(self::frame(settled.parts)?)?;
        clean = settled.clean;
    }
    frame.rechunk_mut_par();
    Ok(Loaded {
        frame,
        read: loaded,
        clean,
    })
}

/// What the ledgers' arithmetic needs from the rows of the streams in `of`.
fn row_facts(frame: &DataFrame, of: &std::collections::BTreeSet<u32>) -> PolarsResult<RowFacts> {
    let stream = frame.column("stream")?.u32()?;
    let seq = frame.column("seq")?.i64()?;
    let stage = frame.column("stage")?.u8()?;
    let group = frame.column("group")?.u32()?;
    let rows = stream
        .iter()
        .zip(seq.iter())
        .zip(stage.iter())
        .zip(group.iter())
        .filter_map(|(((s, q), st), g)| Some((s?, q?, st?, g)));
    Ok(RowFacts::from_columns(of, rows))
}

/// The clean ledger runs of the streams `keep` selects, as the frame `unobserved` reads
/// (`stream`, `seq`, `last`), and how many seqs they hold.
pub(crate) fn covered(
    clean: &BTreeMap<u32, SeqRanges>,
    keep: &dyn Fn(u32) -> bool,
) -> PolarsResult<(DataFrame, u64)> {
    let (mut stream, mut seq, mut last) = (Vec::new(), Vec::new(), Vec::new());
    let mut count = 0;
    for (&s, set) in clean.iter().filter(|(s, _)| keep(**s)) {
        count += set.count();
        for &(a, b) in set.ranges() {
            stream.push(s);
            seq.push(i64::try_from(a).unwrap_or(i64::MAX));
            last.push(i64::try_from(b).unwrap_or(i64::MAX));
        }
    }
    let height = stream.len();
    let frame = DataFrame::new(
        height,
        vec![
            Column::new("stream".into(), stream),
            Column::new("seq".into(), seq),
            Column::new("last".into(), last),
        ],
    )?;
    Ok((frame, count))
}

/// The span columns as a frame: `msg` (u64, see [`mqtrace_vocab::keys`]), `stream` (u32),
/// `seq` (i64), `stage` (u8), `attempt` (i64), `outcome` (u8), `position` (str),
/// `position_key` (u64), `group` (u32), `pair` (u64: (stream, group, seq)), `partition`
/// (u32), `delivery_count` (i64), `start_ns`, `end_ns`, `trace_id` (i128), `message_id`.
pub(crate) fn frame(parts: SpanParts) -> PolarsResult<DataFrame> {
    let height = parts.seq.len();
    let mut start = 0;
    let positions: Vec<Option<&str>> = (0..height).map(|i| parts.position(i, &mut start)).collect();
    let position =
        StringChunked::from_iter_options("position".into(), positions.into_iter()).into_column();
    DataFrame::new(
        height,
        vec![
            Column::new("msg".into(), &parts.msg),
            Column::new("stream".into(), &parts.stream),
            Column::new("seq".into(), &parts.seq),
            Column::new("stage".into(), &parts.stage),
            Column::new("attempt".into(), &parts.attempt),
            Column::new("outcome".into(), &parts.outcome),
            position,
            Column::new("position_key".into(), &parts.position_key),
            Column::new("group".into(), &parts.group),
            Column::new("pair".into(), &parts.pair),
            Column::new("partition".into(), &parts.partition),
            Column::new("delivery_count".into(), &parts.delivery_count),
            Column::new("start_ns".into(), &parts.start_ns),
            Column::new("end_ns".into(), &parts.end_ns),
            Column::new("trace_id".into(), &parts.trace_id),
            Column::new("message_id".into(), &parts.message_id),
            Column::new("ledger".into(), &parts.ledger),
        ],
    )
}
