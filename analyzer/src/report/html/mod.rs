//! `--format html`: one self-contained page (styles, script and plots inline; no network
//! needed) with the summary, totals, the table by stream and group, a loss timeline per
//! stream, per-hop latency histograms, and the findings table, sortable and filterable.
//!
//! The page is an [askama] template, so markup is checked at compile time and every value
//! from the report is escaped by the template engine; plots come from the typed writer in
//! [`svg`], which escapes its own text; the findings reach the script as JSON inside a
//! `<script type="application/json">` element with `<`, `>` and `&` escaped, and the script
//! writes them with `textContent` only.

mod latency;
pub mod svg;
mod table;
mod timeline;

use askama::Template;
use mqtrace_vocab::finding;

use super::{FINDING_KEYS, Finding, Report, WindowEnd};
pub use table::{FIRST_PAGE, TABLE_MAX};

/// How to render the page.
#[derive(Clone, Debug, Default)]
pub struct HtmlOptions {
    /// A link to the user's tracing backend for each trace id: a URL with `{trace_id}` in it,
    /// e.g. `http://jaeger:16686/trace/{trace_id}`. No links without it.
    pub trace_url: Option<String>,
}

/// A `--trace-url` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceUrlError {
    /// No place for the id.
    #[error(
        "--trace-url {0:?} has no {{trace_id}}: write e.g. 'http://jaeger:16686/trace/{{trace_id}}'"
    )]
    NoPlaceholder(String),
    /// Not a web address (a `javascript:` URL would run in the reader's browser).
    #[error("--trace-url {0:?} is not an http:// or https:// address")]
    NotHttp(String),
}

/// Checks a `--trace-url` template.
pub fn check_trace_url(url: &str) -> Result<(), TraceUrlError> {
    let lower = url.trim_start().to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(TraceUrlError::NotHttp(url.to_owned()));
    }
    if !url.contains("{trace_id}") {
        return Err(TraceUrlError::NoPlaceholder(url.to_owned()));
    }
    Ok(())
}

/// The page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// The trace URL template.
    #[error(transparent)]
    TraceUrl(#[from] TraceUrlError),
    /// The template engine (writing to a string does not fail otherwise).
    #[error("rendering the HTML report: {0}")]
    Template(#[from] askama::Error),
    /// Encoding the findings for the page's script.
    #[error("encoding the findings for the HTML report: {0}")]
    Json(#[from] serde_json::Error),
}

/// Style classes per kind, by [`Finding::key_index`] (static, so no report data reaches a
/// class).
const KIND_CLASSES: [&str; finding::KEYS.len()] =
    ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];

/// The place of a finding's `kind/stage` in [`finding::KEYS`].
fn kind_index(f: &Finding) -> usize {
    f.key_index()
}

fn kind_class(index: usize) -> &'static str {
    KIND_CLASSES.get(index).copied().unwrap_or("k0")
}

/// A duration in ms, in the unit that reads best.
/// Negative gaps (two hosts' clocks disagreeing) keep their sign.
fn ms_text(ms: f64) -> String {
    let size = ms.abs();
    if !ms.is_finite() {
        "–".to_owned()
    } else if size < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if size < 1_000.0 {
        let digits = if size < 10.0 { 1 } else { 0 };
        format!("{ms:.digits$} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// ns since the epoch as RFC 3339 (UTC).
fn time_text(ns: i64) -> String {
    let Ok(ns) = u64::try_from(ns) else {
        return ns.to_string();
    };
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A plot with its heading.
pub struct Plot {
    /// Heading.
    pub title: String,
    /// One line under the heading.
    pub caption: String,
    /// The SVG markup (from [`svg::Svg`], escaped there).
    pub svg: String,
    /// How the plot was simplified, when it was.
    pub note: Option<String>,
}

struct Total {
    key: String,
    class: &'static str,
    count: u64,
    problem: bool,
}

struct GroupRow {
    producer: String,
    stream: String,
    group: String,
    /// Each key's count and its cell's class (zeros shown faint).
    counts: Vec<(u64, &'static str)>,
}

struct LatencyRow {
    producer: String,
    stream: String,
    group: String,
    hop: String,
    count: u64,
    p50: String,
    p90: String,
    p99: String,
    max: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    version: &'static str,
    report: &'a Report,
    problems: u64,
    window: String,
    window_end: String,
    malformed: Vec<String>,
    malformed_more: u64,
    totals: Vec<Total>,
    keys: &'a [String],
    groups: Vec<GroupRow>,
    latency_rows: Vec<LatencyRow>,
    timelines: Vec<Plot>,
    timelines_note: Option<String>,
    histograms: Vec<Plot>,
    histograms_note: Option<String>,
    table: table::Table,
    legend: Vec<(String, &'static str)>,
    /// An exporter's telemetry stopped without its final report.
    incomplete: bool,
    /// Those exporters: instance id and last report time.
    stopped: Vec<(String, String)>,
    /// Reports from instances that could not be tracked.
    untracked: u64,
    /// Messaging spans that could not be analysed (SPEC §4b).
    unanalysed: u64,
}

/// Renders `report` as one HTML page.
pub fn render_html(report: &Report, options: &HtmlOptions) -> Result<String, HtmlError> {
    if let Some(url) = &options.trace_url {
        check_trace_url(url)?;
    }
    let s = &report.summary;
    let totals: Vec<Total> = FINDING_KEYS
        .iter()
        .enumerate()
        .map(|(i, key)| Total {
            key: key.clone(),
            class: kind_class(i),
            count: s.findings.get(key).copied().unwrap_or(0),
            problem: finding::KEYS[i].0.is_problem(),
        })
        .collect();
    let problems = report.findings.iter().filter(|f| f.is_problem()).count() as u64;

    let groups = report
        .counts_by_stream_and_group()
        .into_iter()
        .map(|((p, st, g), counts)| GroupRow {
            producer: p.to_owned(),
            stream: st.to_owned(),
            group: g.unwrap_or("–").to_owned(),
            counts: counts
                .into_iter()
                .map(|n| (n, if n == 0 { "num zero" } else { "num" }))
                .collect(),
        })
        .collect();
    let latency_rows = s
        .latency
        .iter()
        .map(|l| LatencyRow {
            producer: l.producer_id.clone(),
            stream: l.stream.clone(),
            group: l.consumer_group.clone().unwrap_or_else(|| "–".to_owned()),
            hop: l.hop.clone(),
            count: l.count,
            p50: ms_text(l.p50_ms),
            p90: ms_text(l.p90_ms),
            p99: ms_text(l.p99_ms),
            max: ms_text(l.max_ms),
        })
        .collect();

    let w = &report.window;
    let secs = (w.end_unix_nano.saturating_sub(w.start_unix_nano)) as f64 / 1e9;
    let window = format!(
        "{} to {} ({secs:.1} s)",
        time_text(w.start_unix_nano),
        time_text(w.end_unix_nano)
    );
    let window_end = match &w.end_set_by {
        WindowEnd::Span(edge) => format!(
            "ends with span {:?} of trace {} ({})",
            edge.name, edge.trace_id, edge.at
        ),
        WindowEnd::Until => "ends at --until".to_owned(),
        WindowEnd::Nothing => "no messaging span had an end time".to_owned(),
    };
    let malformed: Vec<String> = report
        .input
        .malformed
        .iter()
        .take(100)
        .map(ToString::to_string)
        .collect();
    let malformed_more = report
        .input
        .malformed_total
        .saturating_sub(malformed.len() as u64);

    let (timelines, timelines_note) = timeline::timelines(&report.findings);
    let (histograms, histograms_note) = latency::histograms(&s.latency);
    let legend = FINDING_KEYS
        .iter()
        .enumerate()
        .filter(|(i, _)| totals[*i].count > 0)
        .map(|(i, k)| (k.clone(), kind_class(i)))
        .collect();
    let page = Page {
        version: env!("CARGO_PKG_VERSION"),
        report,
        problems,
        window,
        window_end,
        malformed,
        malformed_more,
        totals,
        keys: &FINDING_KEYS,
        groups,
        latency_rows,
        timelines,
        timelines_note,
        histograms,
        histograms_note,
        table: table::Table::new(&report.findings, options.trace_url.as_deref())?,
        legend,
        incomplete: s.telemetry.incomplete(),
        stopped: s
            .telemetry
            .stopped_instances()
            .into_iter()
            .take(100)
            .map(|i| (i.instance, time_text(i.last_report_unix_nano)))
            .collect(),
        untracked: s.telemetry.untracked_reports,
        unanalysed: s.unanalysed_total(),
    };
    Ok(page.render()?)
}

#[cfg(test)]
mod tests;
