//! The command line: `mqtrace analyze PATH... [options]`.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Did we lose a message, and where? Reads traces recorded by mqtrace's instrumentation and
/// names, for every message, the stage that lost or duplicated it.
#[derive(Debug, Parser)]
#[command(name = "mqtrace", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find lost and duplicated messages in exported traces.
    ///
    /// Exit status: 0 when no message was lost or duplicated and no seq is unobserved; 1 when
    /// some was; 2 on a usage or input error (or, with --strict, any malformed record).
    Analyze(AnalyzeArgs),
    /// ClickHouse helpers (SPEC §4c).
    #[command(subcommand)]
    Clickhouse(ClickhouseCommand),
}

/// `mqtrace clickhouse …`
#[derive(Debug, Subcommand)]
pub enum ClickhouseCommand {
    /// Print the DDL of an optional narrow table beside the Collector's table: only the spans
    /// mqtrace reads, ordered by (producer id, stream), fed by a materialized view from the
    /// Collector's inserts (on a cluster through a Distributed table sharded by
    /// cityHash64(producer id, stream)). `mqtrace analyze` reads it when it exists.
    Ddl {
        /// The Collector's database.
        #[arg(long, default_value = "otel")]
        database: String,
        /// The Collector's table.
        #[arg(long, default_value = "otel_traces")]
        table: String,
        /// Create the tables on every node of this cluster and shard the narrow table.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
    },
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A summary by kind, by stream and group, then the findings.
    Table,
    /// The full report (schema mqtrace.report/v1).
    Json,
    /// The findings, one row each (trace ids joined with ';').
    Csv,
    /// The findings, one row each (needs --output).
    Parquet,
    /// One self-contained page with plots and a sortable, filterable findings table.
    Html,
}

/// `mqtrace analyze` options.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Trace files or directories (read recursively): OTLP JSON lines (.json, .jsonl) or
    /// OTLP protobuf (.binpb, .pb), optionally compressed (.gz, .zst). Or one ClickHouse
    /// source (SPEC §4c), where the analysis runs:
    /// clickhouse://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE?table=TABLE (a server's HTTP
    /// interface) or chdb:DIRECTORY[?database=DB&table=TABLE] (ClickHouse's engine
    /// in-process, libchdb from $MQTRACE_LIBCHDB).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Write the report here instead of to standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// How long after a message's last span a consumer group counts as having passed it
    /// even without a later message (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub grace: Duration,

    /// End the trace window here instead of at the latest end among the messaging spans read:
    /// an RFC 3339 time (2026-12-01T10:00:00Z) or ns since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<i64>,

    /// With a ClickHouse source: scan only spans that start at or after this time (RFC 3339
    /// or ns since the epoch); --until also ends the scan.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<i64>,

    /// Exit with status 2 if any record is malformed (the report is still written).
    #[arg(long)]
    pub strict: bool,

    /// Only this stream (repeatable).
    #[arg(long = "stream", value_name = "STREAM")]
    pub streams: Vec<String>,

    /// Only findings of this consumer group, plus the per-message ones (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,

    /// Findings listed by --format table (the summary always counts all).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_rows: usize,

    /// With --format html: link each trace id to your tracing backend, e.g.
    /// 'http://jaeger:16686/trace/{trace_id}'.
    #[arg(long, value_name = "URL", value_parser = parse_trace_url)]
    pub trace_url: Option<String>,

    /// Never show a progress bar (it shows only on a terminal, for large inputs).
    #[arg(long)]
    pub no_progress: bool,

    /// Print how long reading and analysing took, to standard error.
    #[arg(long)]
    pub timings: bool,
}

/// An http(s) URL with `{trace_id}` in it.
pub fn parse_trace_url(s: &str) -> Result<String, String> {
    mqtrace_analyzer::report::html::check_trace_url(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

/// `30s`, `500ms`, `2m`, `1h`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 30s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "ns" => value / 1e9,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use ns, us, ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{s:?} is not a valid duration (negative, or beyond any clock)"))
}

/// An RFC 3339 time, or a number of ns since the epoch, as ns since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ns) = s.parse::<i64>() {
        return if ns >= 0 {
            Ok(ns)
        } else {
            Err(format!("{s:?} is before 1970"))
        };
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| {
        format!("{s:?} is not a time ({e}): use RFC 3339, e.g. 2026-12-01T10:00:00Z, or ns since the epoch")
    })?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| format!("{s:?} is outside 1970-2262"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 days").is_err());
        assert!(
            parse_duration("99999999999999999999999").is_err(),
            "no panic"
        );
        assert!(parse_duration("1e300h").is_err());
    }

    #[test]
    fn times_are_rfc3339_or_nanoseconds() {
        assert_eq!(
            parse_time("1700000000000000000"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000_000_000_000)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-5").is_err());
    }
}
