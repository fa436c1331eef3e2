//! What reading yields besides the spans: counts, the problems found, the time window and
//! the exporters' own health reports. Pieces of a file are merged in order.

use mqtrace_vocab::limits::MALFORMED_LISTED_PER_FILE;

use crate::malformed::{Location, Malformed};

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
    /// One report of `dropped` spans.
    pub(crate) fn report(dropped: u64, is_final: bool) -> Self {
        let mut one = TelemetryHealth {
            reports: 1,
            max_dropped: dropped,
            ..TelemetryHealth::default()
        };
        if is_final {
            one.final_reports = 1;
            one.final_dropped = dropped;
        }
        one.dropped_spans = dropped;
        one
    }

    /// Adds `o`'s reports.
    pub fn merge(&mut self, o: TelemetryHealth) {
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

/// The messaging span whose end is the latest: it sets the end of the trace window (SPEC
/// §4), so the report names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowEdge {
    /// Its end, ns since the epoch.
    pub end_unix_nano: i64,
    /// Its name.
    pub name: String,
    /// Its trace id, as the input wrote it (hex).
    pub trace_id: String,
    /// Where it was read.
    #[serde(flatten)]
    pub at: Location,
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
    /// Every record or span that could not be used, counted.
    pub malformed_total: u64,
    /// The first of them per file ([`MALFORMED_LISTED_PER_FILE`]), each followed, where more
    /// were found, by a note of how many more.
    pub malformed: Vec<Malformed>,
    /// Earliest start among the messaging spans, ns.
    pub window_start: Option<i64>,
    /// The messaging span that ended last.
    pub window_end: Option<WindowEdge>,
    /// Telemetry-health reports of the exporters.
    pub telemetry: TelemetryHealth,
    /// How many of `malformed` end a file (listed beyond the per-file cap).
    ends_listed: usize,
}

impl InputStats {
    /// Records a problem: counted always, listed while the file's list is short.
    pub(crate) fn malformed(&mut self, m: Malformed) {
        self.malformed_total += 1;
        if m.ends_file {
            self.ends_listed += 1;
            self.malformed.push(m);
        } else if self.malformed.len() - self.ends_listed < MALFORMED_LISTED_PER_FILE {
            self.malformed.push(m);
        }
    }

    /// Adds a later piece's counts (same file; `lines_before` shifts its line numbers).
    pub(crate) fn merge_piece(&mut self, mut other: InputStats, lines_before: u64) {
        for m in &mut other.malformed {
            m.at.shift_lines(lines_before);
        }
        if let Some(edge) = &mut other.window_end {
            edge.at.shift_lines(lines_before);
        }
        let listed = other.malformed.len() as u64;
        let total = other.malformed_total;
        for m in other.malformed {
            self.malformed(m);
        }
        // Those the piece counted but did not list.
        self.malformed_total += total - listed;
        other.malformed = Vec::new();
        other.malformed_total = 0;
        other.ends_listed = 0;
        self.merge(other);
    }

    /// Adds another file's (or piece's) counts; its problems are appended as listed.
    pub fn merge(&mut self, other: InputStats) {
        self.files += other.files;
        self.records += other.records;
        self.spans += other.spans;
        self.messaging_spans += other.messaging_spans;
        self.malformed_total += other.malformed_total;
        self.malformed.extend(other.malformed);
        self.ends_listed += other.ends_listed;
        if let Some(s) = other.window_start {
            self.window_start = Some(self.window_start.map_or(s, |w| w.min(s)));
        }
        if let Some(e) = other.window_end
            && self
                .window_end
                .as_ref()
                .is_none_or(|w| e.end_unix_nano > w.end_unix_nano)
        {
            self.window_end = Some(e);
        }
        self.telemetry.merge(other.telemetry);
    }

    /// Names the file in every problem and window edge, and adds the note of how many
    /// problems were not listed.
    pub(crate) fn finish_file(&mut self, file: &str) {
        for m in &mut self.malformed {
            m.at.file = file.to_owned();
        }
        if let Some(e) = &mut self.window_end {
            e.at.file = file.to_owned();
        }
        let unlisted = self
            .malformed_total
            .saturating_sub(self.malformed.len() as u64);
        if unlisted > 0 {
            self.malformed.push(Malformed {
                at: Location {
                    file: file.to_owned(),
                    ..Location::default()
                },
                error: format!(
                    "… and {unlisted} more malformed record(s) in this file, not listed (the \
                     first {MALFORMED_LISTED_PER_FILE} are)"
                ),
                ends_file: false,
            });
        }
    }
}
