//! What parsing one piece of input yields, and how pieces are merged in order.

use mqtrace::names::TELEMETRY_SPAN_NAME;

use super::extract::{Key, Scalar};
use super::malformed::Malformed;
use crate::columns::SpanColumns;

/// The telemetry-health reports (`mqtrace telemetry` spans) found in the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TelemetryHealth {
    /// Reports seen.
    pub reports: u64,
    /// Shutdown reports seen (one per exporting process that shut down cleanly).
    pub final_reports: u64,
    /// Spans the exporters dropped: the sum over shutdown reports, or, without any, the
    /// largest count any report gave (counts are cumulative per process).
    pub dropped_spans: u64,
    #[serde(skip)]
    final_dropped: u64,
    #[serde(skip)]
    max_dropped: u64,
}

impl TelemetryHealth {
    pub(crate) fn merge(&mut self, o: TelemetryHealth) {
        self.reports += o.reports;
        self.final_reports += o.final_reports;
        self.final_dropped += o.final_dropped;
        self.max_dropped = self.max_dropped.max(o.max_dropped);
        self.dropped_spans = if self.final_reports > 0 {
            self.final_dropped
        } else {
            self.max_dropped
        };
    }
}

/// Counts, problems and the time window of (a piece of) the input.
#[derive(Debug, Default, Clone)]
pub struct InputStats {
    /// Files read.
    pub files: u64,
    /// Records (requests) read.
    pub records: u64,
    /// Spans read.
    pub spans: u64,
    /// Spans with `mqtrace.stage` or messaging attributes.
    pub messaging_spans: u64,
    /// What could not be used, in input order (the reader fills in the file).
    pub malformed: Vec<Malformed>,
    /// Earliest span start, ns.
    pub window_start: Option<i64>,
    /// Latest span end, ns.
    pub window_end: Option<i64>,
    /// Telemetry-health reports of the exporters.
    pub telemetry: TelemetryHealth,
}

impl InputStats {
    /// Adds a later piece's counts.
    pub fn merge(&mut self, other: InputStats) {
        self.files += other.files;
        self.records += other.records;
        self.spans += other.spans;
        self.messaging_spans += other.messaging_spans;
        self.malformed.extend(other.malformed);
        if let Some(s) = other.window_start {
            self.window_start = Some(self.window_start.map_or(s, |w| w.min(s)));
        }
        if let Some(e) = other.window_end {
            self.window_end = Some(self.window_end.map_or(e, |w| w.max(e)));
        }
        self.telemetry.merge(other.telemetry);
    }
}

/// Spans and counts from one piece of one file.
#[derive(Debug, Default)]
pub struct ChunkOutput {
    /// The keyed spans.
    pub columns: SpanColumns,
    /// Counts and problems.
    pub stats: InputStats,
}

impl ChunkOutput {
    pub(crate) fn malformed_line(&mut self, line: u64, error: String) {
        self.stats.malformed.push(Malformed {
            file: String::new(),
            line: Some(line),
            offset: None,
            error,
        });
    }

    pub(crate) fn malformed_at(&mut self, offset: u64, error: String) {
        self.stats.malformed.push(Malformed {
            file: String::new(),
            line: None,
            offset: Some(offset),
            error,
        });
    }

    pub(crate) fn observe_window(&mut self, start: i64, end: i64) {
        if start > 0 {
            self.stats.window_start = Some(self.stats.window_start.map_or(start, |w| w.min(start)));
        }
        if end > 0 {
            self.stats.window_end = Some(self.stats.window_end.map_or(end, |w| w.max(end)));
        }
    }

    pub(crate) fn telemetry_report(&mut self, name: &str, values: &[(Key, Scalar<'_>)]) {
        if name != TELEMETRY_SPAN_NAME {
            return;
        }
        let mut dropped = None;
        let mut is_final = false;
        for (k, v) in values {
            match (*k, v) {
                (Key::TelemetryDropped, Scalar::Int(n)) => dropped = Some(*n),
                (Key::TelemetryDropped, Scalar::IntText(t)) => dropped = t.parse().ok(),
                (Key::TelemetryFinal, Scalar::Bool(b)) => is_final = *b,
                _ => {}
            }
        }
        let Some(dropped) = dropped.and_then(|d| u64::try_from(d).ok()) else {
            return;
        };
        let mut one = TelemetryHealth {
            reports: 1,
            max_dropped: dropped,
            ..TelemetryHealth::default()
        };
        if is_final {
            one.final_reports = 1;
            one.final_dropped = dropped;
        }
        self.stats.telemetry.merge(one);
    }
}
