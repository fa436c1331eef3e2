//! The findings table: its first page written into the HTML (so the page reads and prints
//! without its script), and every finding up to [`TABLE_MAX`] as JSON for the script that
//! sorts, filters and pages it.

use serde::Serialize;

use super::{HtmlError, kind_class, kind_index};
use crate::report::Finding;

/// Findings written into the page for the script; the rest are counted, and the page says
/// where to find them (`--format json` or `csv`).
pub const TABLE_MAX: usize = 100_000;
/// Rows written as HTML, before the script takes over.
pub const FIRST_PAGE: usize = 100;

/// A trace id and, with `--trace-url`, its link.
pub struct TraceLink {
    /// The id.
    pub id: String,
    /// Its first characters, as the table shows it (the whole id on hover).
    pub short: String,
    /// The address, the id percent-encoded into the template.
    pub url: Option<String>,
}

/// One row of the first page.
pub struct Row {
    /// `kind/stage`.
    pub key: String,
    /// Its style class.
    pub class: &'static str,
    /// Producer id.
    pub producer: String,
    /// Stream.
    pub stream: String,
    /// Seq, or the message id where there is none (SPEC §4b).
    pub seq: String,
    /// Group, or a dash.
    pub group: String,
    /// Partition, or a dash.
    pub partition: String,
    /// Message id.
    pub message_id: String,
    /// Trace ids.
    pub traces: Vec<TraceLink>,
    /// Evidence.
    pub evidence: String,
}

/// The table: the first rows as HTML, all (up to [`TABLE_MAX`]) as JSON.
pub struct Table {
    /// The first [`FIRST_PAGE`] rows.
    pub rows: Vec<Row>,
    /// Findings in the report.
    pub total: usize,
    /// Findings in the page's data.
    pub embedded: usize,
    /// The data for the script: JSON with `<`, `>` and `&` escaped, safe inside `<script>`.
    pub json: String,
}

/// One finding for the script: `[kind index, producer, stream, seq, group, partition,
/// message id, trace ids, evidence]`, an array, not an object, so 100,000 rows stay small.
type DataRow<'a> = (
    usize,
    &'a str,
    &'a str,
    Option<i64>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a [String],
    String,
);

/// The JSON the script reads.
#[derive(Serialize)]
struct Data<'a> {
    keys: &'a [String],
    trace_url: Option<&'a str>,
    total: usize,
    rows: Vec<DataRow<'a>>,
}

/// Trace ids shown in the table: their first 12 characters, then an ellipsis.
pub fn short_id(id: &str) -> String {
    match id.char_indices().nth(12) {
        Some((end, _)) => format!("{}…", &id[..end]),
        None => id.to_owned(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JSON made safe to sit inside a `<script>` element: no `</script>`, no `<!--`, no entity.
/// The escapes are JSON's own, so `JSON.parse` reads back the same strings.
pub fn script_safe_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

impl Table {
    /// The table of `findings`, linking trace ids through `trace_url` when given.
    pub fn new(findings: &[Finding], trace_url: Option<&str>) -> Result<Table, HtmlError> {
        let link = |id: &str| TraceLink {
            id: id.to_owned(),
            short: short_id(id),
            url: trace_url.map(|t| t.replace("{trace_id}", &percent_encode(id))),
        };
        let rows = findings
            .iter()
            .take(FIRST_PAGE)
            .map(|f| {
                let index = kind_index(f);
                Row {
                    key: f.key(),
                    class: kind_class(index),
                    producer: f.producer_id.clone(),
                    stream: f.stream.clone(),
                    seq: f
                        .seq
                        .map_or_else(|| format!("id {}", f.message_id), |s| s.to_string()),
                    group: f.consumer_group.clone().unwrap_or_else(|| "–".to_owned()),
                    partition: f.partition.clone().unwrap_or_else(|| "–".to_owned()),
                    message_id: f.message_id.clone(),
                    traces: f.trace_ids.iter().map(|t| link(t)).collect(),
                    evidence: f.evidence_text(),
                }
            })
            .collect();
        let embedded = findings.len().min(TABLE_MAX);
        let data = Data {
            keys: &super::FINDING_KEYS,
            trace_url,
            total: findings.len(),
            rows: findings
                .iter()
                .take(TABLE_MAX)
                .map(|f| {
                    (
                        kind_index(f),
                        f.producer_id.as_str(),
                        f.stream.as_str(),
                        f.seq,
                        f.consumer_group.as_deref(),
                        f.partition.as_deref(),
                        f.message_id.as_str(),
                        f.trace_ids.as_slice(),
                        f.evidence_text(),
                    )
                })
                .collect(),
        };
        Ok(Table {
            rows,
            total: findings.len(),
            embedded,
            json: script_safe_json(&serde_json::to_string(&data)?),
        })
    }
}
