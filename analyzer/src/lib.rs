//! # mqtrace-analyzer: which messages were lost or duplicated, and where
//!
//! ## Overview
//!
//! Reads exported traces (OTLP JSON lines as the OpenTelemetry Collector's file exporter and
//! `mqtrace-export` write them, or OTLP protobuf), keeps the spans mqtrace's instrumentation
//! recorded, joins them per message on (producer id, stream, seq), and decides for every
//! message and consumer group whether it was lost or duplicated, and at which stage — with the
//! evidence. The binary is `mqtrace analyze`; this crate is its engine.
//!
//! ## Concepts
//!
//! - [`input`] reads files with [`mqtrace_reader`] in parallel pieces into one frame of
//!   keyed spans; every record it cannot use is named (file:line) in the report, never
//!   dropped silently.
//! - The verdicts are polars lazy plans on integer keys, collected once, then decoded into
//!   typed [`Finding`]s whose [`Evidence`] is built from fields.
//! - [`report`] renders SPEC §6's JSON, a terminal table, CSV or Parquet from those.
//!
//! ## Usage
//!
//! ```
//! use mqtrace_analyzer::{Options, analyze, input};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"send orders","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"mqtrace.stage","value":{"stringValue":"produce"}},{"key":"mqtrace.producer.id","value":{"stringValue":"p"}},{"key":"mqtrace.stream","value":{"stringValue":"orders"}},{"key":"mqtrace.seq","value":{"intValue":"1"}}]}]}]}]}"#;
//! std::fs::write(dir.path().join("spans.jsonl"), format!("{line}\n"))?;
//!
//! let files = input::discover(&[dir.path().to_path_buf()])?;
//! let report = analyze(&files, &Options::default(), &|_| {})?;
//! // One attempt, never acked, never delivered: lost at the producer.
//! assert_eq!(report.summary.findings["lost/produce"], 1);
//! # Ok(()) }
//! ```

pub mod clickhouse;
pub mod error;
mod findings;
pub mod input;
mod keys;
pub mod report;
mod select;
mod semconv;

pub use error::AnalyzeError;
pub use findings::{Evidence, LATENCY_EDGES_MS, MAX_EXPANDED_GAP, Passed, Stopped};
pub use mqtrace_vocab::finding::Basis;
pub use mqtrace_vocab::finding::{Kind, Where};
pub use report::{Finding, Latency, Report};
pub use semconv::SemEvidence;

use polars::prelude::*;
use std::time::Duration;

/// Default `--grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// What to analyze and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// A message whose last span ended this long before the end of the window counts as
    /// passed by every group.
    pub grace: Duration,
    /// Only these streams (all when empty).
    pub streams: Vec<String>,
    /// Only findings of these groups, plus message-level findings (all when empty).
    pub groups: Vec<String>,
    /// The end of the trace window, ns since the epoch (default: the latest end among the
    /// messaging spans read); for a ClickHouse source also the end of the scan.
    pub until: Option<i64>,
    /// A ClickHouse source's scan starts here, ns since the epoch (files are read whole).
    pub since: Option<i64>,
    /// Print how long reading and analysing took to standard error.
    pub timings: bool,
    /// Also count each hop's latencies per bucket ([`Latency::histogram`], for the HTML
    /// report's plots): a comparison and a sum per bucket and message.
    pub histograms: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
            streams: Vec::new(),
            groups: Vec::new(),
            until: None,
            since: None,
            timings: false,
            histograms: false,
        }
    }
}

/// Reads `files` and reports every finding. `progress` is told the input bytes read.
pub fn analyze(
    files: &[input::InputFile],
    options: &Options,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Report, AnalyzeError> {
    if options.since.is_some() {
        return Err(AnalyzeError::Usage(
            "--since bounds the scan of a ClickHouse source; files are read whole (use \
             --until to end the window)"
                .to_owned(),
        ));
    }
    let started = std::time::Instant::now();
    let loaded = input::load(files, progress)?;
    let read = started.elapsed();
    let mut input = loaded.read;
    let semconv_spans = std::mem::take(&mut input.semconv);
    let numbered_sends = std::mem::take(&mut input.numbered_sends);
    let (streams, groups, partitions) = (input.streams, input.groups, input.partitions);
    let selection = select::Selection {
        streams: &options.streams,
        groups: &options.groups,
    };
    let spans = selection.spans(loaded.frame.clone().lazy(), &streams);
    let (covered, clean) = input::covered(&loaded.clean, &|s| {
        streams
            .get(s as usize)
            .is_some_and(|name| selection.keeps_stream(name))
    })?;
    let window = report::Window::new(&input.stats, options.until);
    let passing = findings::Passing {
        window_end_ns: window.end_unix_nano,
        grace_ns: i64::try_from(options.grace.as_nanos()).unwrap_or(i64::MAX),
    };
    let numbered = semconv::numbered(&semconv_spans, numbered_sends, &loaded.frame, &streams)?;
    let mut judged = semconv::judge(
        &semconv_spans,
        &numbered,
        passing.window_end_ns,
        passing.grace_ns,
    );
    drop(semconv_spans);
    judged.findings.retain(|f| selection.keeps(&f.stream));
    judged.streams.retain(|s, _| selection.keeps_stream(s));
    let mut collected = findings::find(spans, covered.lazy(), passing, options.histograms)?;
    // Clean ledger seqs are messages seen, judged without rows.
    collected.messages += clean;
    if options.timings {
        eprintln!(
            "mqtrace: read {} spans in {:.2} s, analysed in {:.2} s",
            input.stats.spans,
            read.as_secs_f64(),
            (started.elapsed() - read).as_secs_f64()
        );
    }
    let mut report = Report::new(
        input.stats,
        window,
        &streams,
        &groups,
        &partitions,
        &collected,
        judged,
    )?;
    selection.report(&mut report, &streams);
    Ok(report)
}
