//! `--stream` and `--group`, applied in one place: which streams' spans are analysed, and
//! which groups' findings are reported (message-level findings are always kept).

use polars::prelude::*;

use crate::report::Report;
use mqtrace_reader::columns::StreamName;

/// The streams and groups asked for (each empty: all).
pub(crate) struct Selection<'a> {
    pub(crate) streams: &'a [String],
    pub(crate) groups: &'a [String],
}

impl Selection<'_> {
    pub(crate) fn keeps_stream(&self, name: &StreamName) -> bool {
        self.keeps(&name.1)
    }

    /// Whether `--stream` selects the stream named `stream` (whatever its producer).
    pub(crate) fn keeps(&self, stream: &str) -> bool {
        self.streams.is_empty() || self.streams.iter().any(|s| s == stream)
    }

    /// Only the selected streams' spans (by their codes in `names`).
    pub(crate) fn spans(&self, spans: LazyFrame, names: &[StreamName]) -> LazyFrame {
        if self.streams.is_empty() {
            return spans;
        }
        let keep: Vec<u32> = (0..names.len() as u32)
            .filter(|&i| self.keeps_stream(&names[i as usize]))
            .collect();
        spans.filter(
            col("stream").is_in(lit(Series::new("keep".into(), keep)).implode(false), false),
        )
    }

    /// Only the selected groups' findings, and the streams counted as selected.
    /// The streams of messages judged on the conventions alone come already selected (their
    /// count is in the summary as [`Report::new`] made it).
    pub(crate) fn report(&self, report: &mut Report, names: &[StreamName]) {
        let semconv = report.summary.streams.saturating_sub(names.len() as u64);
        report.summary.streams =
            names.iter().filter(|n| self.keeps_stream(n)).count() as u64 + semconv;
        if !self.groups.is_empty() {
            report.retain_findings(|f| {
                f.consumer_group
                    .as_ref()
                    .is_none_or(|g| self.groups.contains(g))
            });
        }
    }
}
