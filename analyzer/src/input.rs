//! Reading traces ([`mqtrace_reader`]) into one polars frame of keyed spans.

pub use mqtrace_reader::{
    Compression, Format, InputFile, InputStats, Location, Malformed, TelemetryHealth, WindowEdge,
    discover,
};

use mqtrace_reader::columns::SpanParts;
use polars::prelude::*;

/// Everything read from the input.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// The keyed spans (see [`frame`]).
    pub frame: DataFrame,
    /// The names behind the frame's codes, and the counts, problems and window.
    pub read: mqtrace_reader::Loaded,
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
    let frame = match all {
        Some(mut f) => {
            f.rechunk_mut_par();
            f
        }
        None => frame(SpanParts::default())?,
    };
    Ok(Loaded {
        frame,
        read: loaded,
    })
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
        ],
    )
}
