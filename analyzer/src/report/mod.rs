//! The report: SPEC §6's JSON, and the same content as a terminal table, CSV, Parquet or
//! one HTML page with plots.

pub mod html;
mod table;
mod text;

pub use table::render_table;
pub use text::printable;

use mqtrace_vocab::finding::{self, Basis, Kind, Where};

use crate::findings::{Evidence, Names};
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::input::{InputStats, Malformed, TelemetryHealth, WindowEdge};

/// Every kind/stage pair the analyzer can report, in the order summaries list them
/// ([`mqtrace_vocab::finding::KEYS`], as text).
pub static FINDING_KEYS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    finding::KEYS
        .iter()
        .map(|(kind, stage)| finding::key(*kind, *stage))
        .collect()
});

/// One finding, typed: its kind and stage are the contract's values, its evidence the facts
/// it rests on (written as text in the report, with [`Finding::evidence_text`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What happened to the message.
    pub kind: Kind,
    /// Where: `produce`, `store`, `consume`, or none.
    pub stage: Option<Where>,
    /// The producer id.
    pub producer_id: String,
    /// The stream.
    pub stream: String,
    /// The seq (none for a message judged on the conventions alone: [`Basis::Semconv`]).
    pub seq: Option<i64>,
    /// The consumer group, for per-group findings.
    pub consumer_group: Option<String>,
    /// The message id.
    pub message_id: String,
    /// The partition, where known.
    pub partition: Option<String>,
    /// The traces the message's spans belong to.
    pub trace_ids: Vec<String>,
    /// Why.
    pub evidence: Evidence,
    /// Some of the message's events were read from ledgers (SPEC §2b): seqs without positions
    /// or times of their own, which the evidence then says.
    pub ledger: bool,
    /// What the finding rests on: mqtrace's numbering, or the conventions alone.
    pub basis: Basis,
}

impl Serialize for Finding {
    /// SPEC §6: kind and stage as the contract's strings, the evidence as text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut f = s.serialize_struct("Finding", 11)?;
        f.serialize_field("kind", self.kind.as_str())?;
        f.serialize_field("stage", &self.stage.map(Where::as_str))?;
        f.serialize_field("producer_id", &self.producer_id)?;
        f.serialize_field("stream", &self.stream)?;
        f.serialize_field("seq", &self.seq)?;
        f.serialize_field("consumer_group", &self.consumer_group)?;
        f.serialize_field("message_id", &self.message_id)?;
        f.serialize_field("partition", &self.partition)?;
        f.serialize_field("trace_ids", &self.trace_ids)?;
        f.serialize_field("evidence", &self.evidence_text())?;
        f.serialize_field("basis", self.basis.as_str())?;
        f.end()
    }
}

impl Finding {
    /// The evidence as the report writes it: the facts, and whether they rest on ledgers.
    pub fn evidence_text(&self) -> String {
        if self.ledger {
            format!(
                "{}; rests on ledgers (events without positions or times of their own)",
                self.evidence
            )
        } else {
            self.evidence.to_string()
        }
    }

    /// The place of its `kind/stage` in [`finding::KEYS`] (and [`FINDING_KEYS`]).
    pub fn key_index(&self) -> usize {
        finding::KEYS
            .iter()
            .position(|(k, s)| *k == self.kind && *s == self.stage)
            .unwrap_or(0)
    }

    /// `kind/stage`, or `kind` where there is no stage.
    pub fn key(&self) -> String {
        finding::key(self.kind, self.stage)
    }

    /// A loss, a duplicate or an unobserved seq: what makes the exit status 1.
    pub fn is_problem(&self) -> bool {
        self.kind.is_problem()
    }
}

/// The `input` section.
#[derive(Clone, Debug, Serialize)]
pub struct InputSection {
    /// Files read.
    pub files: u64,
    /// Records read.
    pub records: u64,
    /// Spans read.
    pub spans: u64,
    /// Messaging spans.
    pub messaging_spans: u64,
    /// Records and spans that could not be used, all counted.
    pub malformed_total: u64,
    /// The first of them per file, and a note per file of how many more there were.
    pub malformed: Vec<Malformed>,
}

/// The `window` section: from the earliest start to the latest end among the messaging
/// spans read (SPEC §4), or to `--until`.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// Earliest messaging span start, ns since the epoch.
    pub start_unix_nano: i64,
    /// The end of the window, ns since the epoch.
    pub end_unix_nano: i64,
    /// What set the end: the span that ended last (so that a host whose clock runs ahead
    /// shows), or `--until`.
    pub end_set_by: WindowEnd,
}

/// What set the end of the window.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum WindowEnd {
    /// The messaging span that ended last.
    Span(WindowEdge),
    /// The `--until` option.
    Until,
    /// No messaging span had an end time.
    Nothing,
}

impl Window {
    /// The window of `stats`, ending at `until` when given.
    pub fn new(stats: &InputStats, until: Option<i64>) -> Window {
        let (end_unix_nano, end_set_by) = match (until, &stats.window_end) {
            (Some(t), _) => (t, WindowEnd::Until),
            (None, Some(edge)) => (edge.end_unix_nano, WindowEnd::Span(edge.clone())),
            (None, None) => (0, WindowEnd::Nothing),
        };
        Window {
            start_unix_nano: stats.window_start.unwrap_or(0),
            end_unix_nano,
            end_set_by,
        }
    }
}

/// The `summary` section.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Streams seen.
    pub streams: u64,
    /// Messages seen.
    pub messages: u64,
    /// Findings per `kind/stage` (every known key, zeros included).
    pub findings: BTreeMap<String, u64>,
    /// What the exporters reported about their own losses.
    pub telemetry: TelemetryHealth,
    /// Per-stage latency percentiles, per stream (and group, after the broker).
    pub latency: Vec<Latency>,
    /// Messaging spans that could not be analysed, by reason (SPEC §4b): while any are
    /// counted, no report says that every message was accounted for.
    pub unanalysed: BTreeMap<String, u64>,
}

impl Summary {
    /// Messaging spans that could not be analysed, all reasons together.
    pub fn unanalysed_total(&self) -> u64 {
        self.unanalysed.values().sum()
    }
}

/// Latency of one hop for one stream (and group).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// `produce→store_ack`, `store_ack→deliver` or `deliver→consume_ack`.
    pub hop: String,
    /// The producer id.
    pub producer_id: String,
    /// The stream.
    pub stream: String,
    /// The group, after the broker.
    pub consumer_group: Option<String>,
    /// Messages measured.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Messages per bucket of [`LATENCY_EDGES_MS`](crate::LATENCY_EDGES_MS) (one more bucket
    /// than edges), when [`Options::histograms`](crate::Options::histograms) asked for them;
    /// empty otherwise; bucket 0 holds the gaps from 0 to the first edge. Not part of the
    /// JSON report.
    #[serde(skip)]
    pub histogram: Vec<u64>,
    /// Gaps below zero, left out of the histogram: the two ends' clocks disagree.
    #[serde(skip)]
    pub negative: u64,
}

/// The whole report (schema `mqtrace.report/v1`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `mqtrace.report/v1`.
    pub schema: &'static str,
    /// What was read.
    pub input: InputSection,
    /// The time window.
    pub window: Window,
    /// Counts.
    pub summary: Summary,
    /// Every finding.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Any loss, duplicate or unobserved seq: SPEC §5's exit status 1. (Telemetry that
    /// stopped without its final report changes no exit status by itself: every report format
    /// says it, and no loss then names a stage as certain.)
    pub fn has_problems(&self) -> bool {
        self.findings.iter().any(Finding::is_problem)
    }

    /// Assembles the report from the collected findings and the input's counts.
    pub(crate) fn new(
        stats: InputStats,
        window: Window,
        streams: &[(String, String)],
        groups: &[String],
        partitions: &[String],
        collected: &crate::findings::Collected,
        semconv: crate::semconv::Judged,
    ) -> PolarsResult<Report> {
        let crate::findings::Collected {
            findings,
            messages,
            latency,
        } = collected;
        let messages = *messages;
        let names = Names {
            streams,
            groups,
            partitions,
        };
        let mut list = crate::findings::decode(findings, &names, window.end_unix_nano)?;
        // A killed exporter's unexported spans could change any verdict resting on an
        // event not seen: no loss names a stage as certain then (findings::stopped).
        if let Some(stopped) = crate::findings::Stopped::of(&stats.telemetry) {
            crate::findings::qualify(&mut list, &std::sync::Arc::new(stopped));
        }
        // Third-party spans carry no telemetry reports: their findings are added after.
        // Semconv streams named like a numbered one are counted once.
        let semconv_streams = semconv
            .streams
            .keys()
            .filter(|s| !streams.contains(s))
            .count() as u64;
        let semconv_messages: u64 = semconv.streams.values().sum();
        list.extend(semconv.findings);
        list.sort_by(|a, b| {
            (
                &a.producer_id,
                &a.stream,
                a.seq,
                &a.message_id,
                &a.consumer_group,
                &a.kind,
            )
                .cmp(&(
                    &b.producer_id,
                    &b.stream,
                    b.seq,
                    &b.message_id,
                    &b.consumer_group,
                    &b.kind,
                ))
        });
        Ok(Report {
            schema: mqtrace_vocab::REPORT_SCHEMA,
            input: InputSection {
                files: stats.files,
                records: stats.records,
                spans: stats.spans,
                messaging_spans: stats.messaging_spans,
                malformed_total: stats.malformed_total,
                malformed: stats.malformed,
            },
            window,
            summary: Summary {
                streams: streams.len() as u64 + semconv_streams,
                messages: messages + semconv_messages,
                findings: count_by_key(&list),
                telemetry: stats.telemetry,
                latency: latency_from_frame(latency, streams, groups)?,
                unanalysed: semconv.unanalysed,
            },
            findings: list,
        })
    }

    /// Findings per (producer id, stream, group: none for message-level findings), counted
    /// per key in the order of [`FINDING_KEYS`].
    pub fn counts_by_stream_and_group(&self) -> BTreeMap<(&str, &str, Option<&str>), Vec<u64>> {
        let mut out: BTreeMap<_, Vec<u64>> = BTreeMap::new();
        for f in &self.findings {
            let key = (
                f.producer_id.as_str(),
                f.stream.as_str(),
                f.consumer_group.as_deref(),
            );
            out.entry(key)
                .or_insert_with(|| vec![0; FINDING_KEYS.len()])[f.key_index()] += 1;
        }
        out
    }

    /// Keeps the findings `keep` accepts, and counts again.
    pub fn retain_findings(&mut self, keep: impl FnMut(&Finding) -> bool) {
        self.findings.retain(keep);
        self.summary.findings = count_by_key(&self.findings);
    }

    /// The findings as a frame with names (for CSV and Parquet). With `escape_text`, control
    /// characters in the text are escaped (CSV is read by people too); Parquet keeps the
    /// values exact.
    pub fn findings_frame(
        &self,
        trace_ids_as_list: bool,
        escape_text: bool,
    ) -> PolarsResult<DataFrame> {
        let f = &self.findings;
        let text = |s: &str| -> String {
            if escape_text {
                printable(s).into_owned()
            } else {
                s.to_owned()
            }
        };
        let strings =
            |get: &dyn Fn(&Finding) -> String| -> Vec<String> { f.iter().map(get).collect() };
        let optional = |get: &dyn Fn(&Finding) -> Option<String>| -> Vec<Option<String>> {
            f.iter().map(get).collect()
        };
        let trace_ids: Column = if trace_ids_as_list {
            let lists: Vec<Series> = f
                .iter()
                .map(|x| Series::new("".into(), x.trace_ids.clone()))
                .collect();
            Column::new("trace_ids".into(), lists)
        } else {
            Column::new(
                "trace_ids".into(),
                strings(&|x| text(&x.trace_ids.join(";"))),
            )
        };
        DataFrame::new(
            f.len(),
            vec![
                Column::new("kind".into(), strings(&|x| x.kind.as_str().to_owned())),
                Column::new(
                    "stage".into(),
                    optional(&|x| x.stage.map(|s| s.as_str().to_owned())),
                ),
                Column::new("producer_id".into(), strings(&|x| text(&x.producer_id))),
                Column::new("stream".into(), strings(&|x| text(&x.stream))),
                Column::new("seq".into(), f.iter().map(|x| x.seq).collect::<Vec<_>>()),
                Column::new(
                    "consumer_group".into(),
                    optional(&|x| x.consumer_group.as_deref().map(text)),
                ),
                Column::new("message_id".into(), strings(&|x| text(&x.message_id))),
                Column::new(
                    "partition".into(),
                    optional(&|x| x.partition.as_deref().map(text)),
                ),
                trace_ids,
                Column::new("evidence".into(), strings(&|x| text(&x.evidence_text()))),
                // Added in v1 (SPEC §6): last, so that readers by position keep working.
                Column::new("basis".into(), strings(&|x| x.basis.as_str().to_owned())),
            ],
        )
    }
}

/// Findings per `kind/stage`, every known key present (zeros included).
fn count_by_key(findings: &[Finding]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = FINDING_KEYS.iter().map(|k| (k.clone(), 0)).collect();
    for f in findings {
        *counts.entry(f.key()).or_default() += 1;
    }
    counts
}

fn name(dict: &[String], code: Option<u32>) -> Option<String> {
    code.and_then(|c| dict.get(c as usize)).cloned()
}

/// Per-bucket counts from the counts at or above each edge (a cumulative count from the top),
/// the `negative` gaps left out.
fn histogram(total: u64, negative: u64, at_least: &[UInt64Chunked], row: usize) -> Vec<u64> {
    if at_least.len() != crate::LATENCY_EDGES_MS.len() {
        return Vec::new();
    }
    let above: Vec<u64> = at_least.iter().map(|c| c.get(row).unwrap_or(0)).collect();
    let mut out = Vec::with_capacity(above.len() + 1);
    let mut previous = total.saturating_sub(negative);
    for n in above {
        out.push(previous.saturating_sub(n));
        previous = n;
    }
    out.push(previous);
    out
}

fn latency_from_frame(
    df: &DataFrame,
    streams: &[(String, String)],
    groups: &[String],
) -> PolarsResult<Vec<Latency>> {
    if df.height() == 0 {
        return Ok(Vec::new());
    }
    let hop = df.column("hop")?.str()?;
    let stream = df.column("stream")?.u32()?;
    let group = df.column("group")?.u32()?;
    let count = df.column("count")?.cast(&DataType::UInt64)?;
    let count = count.u64()?;
    let f = |name: &str| -> PolarsResult<Float64Chunked> {
        Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.clone())
    };
    let (p50, p90, p99, max) = (f("p50_ms")?, f("p90_ms")?, f("p99_ms")?, f("max_ms")?);
    // Counts at or above each edge, when the plan made them.
    let at_least: Vec<UInt64Chunked> = (0..crate::LATENCY_EDGES_MS.len())
        .map_while(|i| {
            let column = df.column(&crate::findings::at_least_column(i)).ok()?;
            Some(column.cast(&DataType::UInt64).ok()?.u64().ok()?.clone())
        })
        .collect();
    let negative = df
        .column(crate::findings::NEGATIVE_COLUMN)
        .ok()
        .and_then(|c| c.cast(&DataType::UInt64).ok())
        .and_then(|c| c.u64().ok().cloned());
    let mut out: Vec<Latency> = (0..df.height())
        .map(|i| {
            let (producer_id, stream) = stream
                .get(i)
                .and_then(|c| streams.get(c as usize))
                .cloned()
                .unwrap_or_default();
            let (total, below_zero) = (
                count.get(i).unwrap_or(0),
                negative.as_ref().and_then(|n| n.get(i)).unwrap_or(0),
            );
            Latency {
                hop: hop.get(i).unwrap_or_default().to_owned(),
                producer_id,
                stream,
                consumer_group: name(groups, group.get(i)),
                count: total,
                p50_ms: p50.get(i).unwrap_or(0.0),
                p90_ms: p90.get(i).unwrap_or(0.0),
                p99_ms: p99.get(i).unwrap_or(0.0),
                max_ms: max.get(i).unwrap_or(0.0),
                histogram: histogram(total, below_zero, &at_least, i),
                negative: below_zero,
            }
        })
        .collect();
    let order = |h: &str| match h {
        "produce→store_ack" => 0,
        "store_ack→deliver" => 1,
        _ => 2,
    };
    out.sort_by(|a, b| {
        (&a.producer_id, &a.stream, order(&a.hop), &a.consumer_group).cmp(&(
            &b.producer_id,
            &b.stream,
            order(&b.hop),
            &b.consumer_group,
        ))
    });
    Ok(out)
}
