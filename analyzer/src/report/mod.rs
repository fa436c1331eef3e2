//! The report: SPEC §6's JSON, and the same content as a terminal table, CSV or Parquet.

mod table;
mod text;

pub use table::render_table;
pub use text::printable;

use mqtrace_vocab::finding;
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

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `lost`, `duplicate`, `unobserved`, `telemetry_gap`, `redelivered`, `in_flight`.
    pub kind: String,
    /// `produce`, `store`, `consume`, or none.
    pub stage: Option<String>,
    /// The producer id.
    pub producer_id: String,
    /// The stream.
    pub stream: String,
    /// The seq.
    pub seq: i64,
    /// The consumer group, for per-group findings.
    pub consumer_group: Option<String>,
    /// The message id.
    pub message_id: String,
    /// The partition, where known.
    pub partition: Option<String>,
    /// The traces the message's spans belong to.
    pub trace_ids: Vec<String>,
    /// Why.
    pub evidence: String,
}

impl Finding {
    /// `kind/stage`, or `kind` where there is no stage.
    pub fn key(&self) -> String {
        match &self.stage {
            Some(stage) => format!("{}/{stage}", self.kind),
            None => self.kind.clone(),
        }
    }

    /// The same finding with control characters in its text escaped (for text outputs).
    pub fn printable(&self) -> Finding {
        let p = |s: &str| printable(s).into_owned();
        Finding {
            producer_id: p(&self.producer_id),
            stream: p(&self.stream),
            consumer_group: self.consumer_group.as_deref().map(p),
            message_id: p(&self.message_id),
            partition: self.partition.as_deref().map(p),
            trace_ids: self.trace_ids.iter().map(|t| p(t)).collect(),
            evidence: p(&self.evidence),
            ..self.clone()
        }
    }

    /// A loss, a duplicate or an unobserved seq: what makes the exit status 1.
    pub fn is_problem(&self) -> bool {
        matches!(self.kind.as_str(), "lost" | "duplicate" | "unobserved")
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
    /// Any loss, duplicate or unobserved seq.
    pub fn has_problems(&self) -> bool {
        self.findings.iter().any(Finding::is_problem)
    }

    /// Assembles the report from the collected findings and the input's counts.
    pub fn new(
        stats: InputStats,
        window: Window,
        streams: &[(String, String)],
        groups: &[String],
        partitions: &[String],
        collected: &crate::findings::Collected,
    ) -> PolarsResult<Report> {
        let crate::findings::Collected {
            findings,
            messages,
            latency,
        } = collected;
        let messages = *messages;
        let mut list = findings_from_frame(findings, streams, groups, partitions)?;
        list.sort_by(|a, b| {
            (&a.producer_id, &a.stream, a.seq, &a.consumer_group, &a.kind).cmp(&(
                &b.producer_id,
                &b.stream,
                b.seq,
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
                streams: streams.len() as u64,
                messages,
                findings: count_by_key(&list),
                telemetry: stats.telemetry,
                latency: latency_from_frame(latency, streams, groups)?,
            },
            findings: list,
        })
    }

    /// Keeps the findings `keep` accepts, and counts again.
    pub fn retain_findings(&mut self, keep: impl FnMut(&Finding) -> bool) {
        self.findings.retain(keep);
        self.summary.findings = count_by_key(&self.findings);
    }

    /// The findings as a frame with names (for CSV and Parquet).
    /// With `escape_text`, control characters in the text are escaped (CSV is read by people
    /// too); Parquet keeps the values exact.
    pub fn findings_frame(
        &self,
        trace_ids_as_list: bool,
        escape_text: bool,
    ) -> PolarsResult<DataFrame> {
        let escaped: Vec<Finding>;
        let f = if escape_text {
            escaped = self.findings.iter().map(Finding::printable).collect();
            &escaped
        } else {
            &self.findings
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
                f.iter().map(|x| x.trace_ids.join(";")).collect::<Vec<_>>(),
            )
        };
        DataFrame::new(
            f.len(),
            vec![
                Column::new(
                    "kind".into(),
                    f.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "stage".into(),
                    f.iter().map(|x| x.stage.as_deref()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "producer_id".into(),
                    f.iter().map(|x| x.producer_id.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "stream".into(),
                    f.iter().map(|x| x.stream.as_str()).collect::<Vec<_>>(),
                ),
                Column::new("seq".into(), f.iter().map(|x| x.seq).collect::<Vec<_>>()),
                Column::new(
                    "consumer_group".into(),
                    f.iter()
                        .map(|x| x.consumer_group.as_deref())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "message_id".into(),
                    f.iter().map(|x| x.message_id.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    "partition".into(),
                    f.iter().map(|x| x.partition.as_deref()).collect::<Vec<_>>(),
                ),
                trace_ids,
                Column::new(
                    "evidence".into(),
                    f.iter().map(|x| x.evidence.as_str()).collect::<Vec<_>>(),
                ),
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
    let mut out: Vec<Latency> = (0..df.height())
        .map(|i| {
            let (producer_id, stream) = stream
                .get(i)
                .and_then(|c| streams.get(c as usize))
                .cloned()
                .unwrap_or_default();
            Latency {
                hop: hop.get(i).unwrap_or_default().to_owned(),
                producer_id,
                stream,
                consumer_group: name(groups, group.get(i)),
                count: count.get(i).unwrap_or(0),
                p50_ms: p50.get(i).unwrap_or(0.0),
                p90_ms: p90.get(i).unwrap_or(0.0),
                p99_ms: p99.get(i).unwrap_or(0.0),
                max_ms: max.get(i).unwrap_or(0.0),
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

fn findings_from_frame(
    df: &DataFrame,
    streams: &[(String, String)],
    groups: &[String],
    partitions: &[String],
) -> PolarsResult<Vec<Finding>> {
    let kind = df.column("kind")?.str()?;
    let stage = df.column("stage")?.str()?;
    let stream = df.column("stream")?.u32()?;
    let seq = df.column("seq")?.i64()?;
    let group = df.column("group")?.u32()?;
    let evidence = df.column("evidence")?.str()?;
    let message_id = df.column("message_id")?.str()?;
    let partition = df.column("partition")?.u32()?;
    let trace_ids = df.column("trace_ids")?.list()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (producer_id, stream_name) = stream
            .get(i)
            .and_then(|c| streams.get(c as usize))
            .cloned()
            .unwrap_or_default();
        let seq = seq.get(i).unwrap_or(0);
        let ids: Vec<String> = match trace_ids.get_as_series(i) {
            Some(s) => s
                .i128()
                .map(|s| {
                    s.iter()
                        .flatten()
                        .map(mqtrace_reader::columns::trace_hex)
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        out.push(Finding {
            kind: kind.get(i).unwrap_or_default().to_owned(),
            stage: stage.get(i).map(str::to_owned),
            message_id: message_id
                .get(i)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{producer_id}:{stream_name}:{seq}")),
            producer_id,
            stream: stream_name,
            seq,
            consumer_group: name(groups, group.get(i)),
            partition: name(partitions, partition.get(i)),
            trace_ids: ids,
            evidence: evidence.get(i).unwrap_or_default().to_owned(),
        });
    }
    Ok(out)
}
