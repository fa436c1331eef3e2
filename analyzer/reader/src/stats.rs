//! What reading yields besides the spans: counts, the problems found, the time window and
//! the exporters' own health reports. Pieces of a file are merged in order.

use mqtrace_vocab::limits::{
    MALFORMED_LISTED_PER_FILE, MAX_INSTANCE_ID_BYTES, MAX_TRACKED_INSTANCES,
};
use std::collections::BTreeMap;

use crate::malformed::{Location, Malformed};

/// The telemetry-health reports (`mqtrace telemetry` spans) found in the input.
///
/// Reports that name their exporting instance (`mqtrace.telemetry.instance`, one per export
/// batch) are also kept per instance: when it last reported and whether a final (shutdown)
/// report was seen. An instance with reports and no final one stopped without shutting down
/// (a killed process): the spans it had not exported yet are missing, and the analyzer must
/// not state a stage as certain where they could matter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TelemetryHealth {
    /// Reports seen.
    pub reports: u64,
    /// Shutdown reports seen (one per exporting process that shut down cleanly).
    pub final_reports: u64,
    /// Spans the exporters dropped: the sum over shutdown reports, or, without any, the
    /// largest count any report gave (counts are cumulative per process).
    pub dropped_spans: u64,
    /// Reports of instances not tracked one by one: beyond
    /// [`MAX_TRACKED_INSTANCES`], with an id longer than [`MAX_INSTANCE_ID_BYTES`], or with
    /// an id that is not a string. Whether those instances stopped cannot be told.
    pub untracked_reports: u64,
    final_dropped: u64,
    max_dropped: u64,
    /// Per instance id (bounded: [`MAX_TRACKED_INSTANCES`]).
    instances: BTreeMap<String, InstanceHealth>,
}

/// What the reports of one exporting instance said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct InstanceHealth {
    reports: u64,
    /// The latest report's end time (its export time), ns since the epoch, on that host's
    /// clock; 0 when no report gave one.
    last_unix_nano: i64,
    saw_final: bool,
}

impl InstanceHealth {
    fn merge(&mut self, o: InstanceHealth) {
        self.reports += o.reports;
        self.last_unix_nano = self.last_unix_nano.max(o.last_unix_nano);
        self.saw_final |= o.saw_final;
    }
}

/// An exporting instance whose reports stopped without its final one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoppedInstance {
    /// Its id (`mqtrace.telemetry.instance`).
    pub instance: String,
    /// The end of its last report (the last export that reached the input), ns since the
    /// epoch on its own clock.
    pub last_report_unix_nano: i64,
    /// Reports seen from it.
    pub reports: u64,
}

/// Who a telemetry report came from, as the report named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reporter<'a> {
    /// No `mqtrace.telemetry.instance` (an exporter older than the heartbeat).
    Anonymous,
    /// The id.
    Instance(&'a str),
    /// An instance attribute that cannot be tracked (not a string, or too long).
    Untrackable,
}

impl TelemetryHealth {
    /// One report of `dropped` spans from `reporter`, which ended at `end_unix_nano` (merge
    /// reports with [`TelemetryHealth::merge`]).
    pub fn report(
        dropped: u64,
        is_final: bool,
        reporter: Reporter<'_>,
        end_unix_nano: i64,
    ) -> Self {
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
        match reporter {
            Reporter::Anonymous => {}
            Reporter::Instance(id) if id.len() <= MAX_INSTANCE_ID_BYTES => {
                one.instances.insert(
                    id.to_owned(),
                    InstanceHealth {
                        reports: 1,
                        last_unix_nano: end_unix_nano,
                        saw_final: is_final,
                    },
                );
            }
            Reporter::Instance(_) | Reporter::Untrackable => one.untracked_reports = 1,
        }
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
        self.untracked_reports += o.untracked_reports;
        for (id, health) in o.instances {
            if let Some(mine) = self.instances.get_mut(&id) {
                mine.merge(health);
            } else if self.instances.len() < MAX_TRACKED_INSTANCES {
                self.instances.insert(id, health);
            } else {
                self.untracked_reports += health.reports;
            }
        }
    }

    /// Instances tracked one by one.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// The instances whose reports stopped without a final one, by the time they stopped
    /// (then by id).
    pub fn stopped_instances(&self) -> Vec<StoppedInstance> {
        let mut out: Vec<StoppedInstance> = self
            .instances
            .iter()
            .filter(|(_, h)| !h.saw_final)
            .map(|(id, h)| StoppedInstance {
                instance: id.clone(),
                last_report_unix_nano: h.last_unix_nano,
                reports: h.reports,
            })
            .collect();
        out.sort_by(|a, b| {
            (a.last_report_unix_nano, &a.instance).cmp(&(b.last_report_unix_nano, &b.instance))
        });
        out
    }

    /// Whether some exporter's telemetry may be incomplete without a drop count saying so:
    /// an instance stopped without its final report, or reports could not be tracked.
    pub fn incomplete(&self) -> bool {
        self.untracked_reports > 0 || self.instances.values().any(|h| !h.saw_final)
    }
}

impl serde::Serialize for TelemetryHealth {
    /// `summary.telemetry`: the counts, and (additive) `instances`, `stopped_instances` and
    /// `untracked_reports`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut t = s.serialize_struct("TelemetryHealth", 6)?;
        t.serialize_field("reports", &self.reports)?;
        t.serialize_field("final_reports", &self.final_reports)?;
        t.serialize_field("dropped_spans", &self.dropped_spans)?;
        t.serialize_field("instances", &self.instances.len())?;
        t.serialize_field("stopped_instances", &self.stopped_instances())?;
        t.serialize_field("untracked_reports", &self.untracked_reports)?;
        t.end()
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
    pub fn malformed(&mut self, m: Malformed) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(id: &str, at: i64, is_final: bool) -> TelemetryHealth {
        TelemetryHealth::report(0, is_final, Reporter::Instance(id), at)
    }

    /// Merging is order-free: the latest time and any final report win, whatever order the
    /// pieces come in.
    #[test]
    fn an_instance_is_stopped_until_a_final_report_is_seen_in_any_order() {
        let mut a = TelemetryHealth::default();
        a.merge(one("x", 30, true));
        a.merge(one("x", 10, false));
        a.merge(one("y", 20, false));
        a.merge(one("y", 5, false));
        a.merge(TelemetryHealth::report(3, false, Reporter::Anonymous, 1));
        assert_eq!(a.reports, 5);
        assert_eq!(
            a.stopped_instances(),
            vec![StoppedInstance {
                instance: "y".into(),
                last_report_unix_nano: 20,
                reports: 2,
            }]
        );
        assert!(a.incomplete());
        let mut b = TelemetryHealth::default();
        b.merge(one("x", 1, false));
        assert!(b.incomplete());
        b.merge(one("x", 2, true));
        assert!(!b.incomplete(), "a final report vouches for its instance");
    }

    /// At most MAX_TRACKED_INSTANCES instances are kept; the reports of the rest are counted
    /// and make the telemetry incomplete (their finals cannot be checked). Ids too long to
    /// track count the same way.
    #[test]
    fn tracking_is_bounded_and_what_is_left_out_is_counted() {
        let mut h = TelemetryHealth::default();
        for i in 0..MAX_TRACKED_INSTANCES + 3 {
            h.merge(one(&format!("{i:032x}"), 1, true));
        }
        assert_eq!(h.instances(), MAX_TRACKED_INSTANCES);
        assert_eq!(h.untracked_reports, 3);
        assert!(h.incomplete());
        assert!(h.stopped_instances().is_empty());
        let long = "x".repeat(MAX_INSTANCE_ID_BYTES + 1);
        let t = TelemetryHealth::report(0, true, Reporter::Instance(&long), 1);
        assert_eq!((t.instances(), t.untracked_reports), (0, 1));
    }
}
