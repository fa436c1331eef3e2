//! The report as text for a terminal: summary by kind, by stream and group, then findings.

use std::fmt::Write as _;

use super::text::printable;
use super::{FINDING_KEYS, Report, WindowEnd};

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        for (cell, w) in cells.zip(&widths) {
            if !first {
                out.push_str("  ");
            }
            first = false;
            let cell = printable(cell);
            let _ = write!(out, "{cell:<w$}");
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// Renders `report`, listing at most `max_rows` findings.
pub fn render_table(report: &Report, max_rows: usize) -> String {
    let mut out = String::new();
    let input = &report.input;
    let secs = (report.window.end_unix_nano - report.window.start_unix_nano) as f64 / 1e9;
    let _ = writeln!(
        out,
        "mqtrace: {} file(s), {} spans ({} messaging), {} messages in {} stream(s), window {secs:.1} s",
        input.files,
        input.spans,
        input.messaging_spans,
        report.summary.messages,
        report.summary.streams
    );
    match &report.window.end_set_by {
        WindowEnd::Span(edge) => {
            let _ = writeln!(
                out,
                "window ends with span {:?} of trace {} ({})",
                printable(&edge.name),
                printable(&edge.trace_id),
                printable(&edge.at.to_string())
            );
        }
        WindowEnd::Until => out.push_str("window ends at --until\n"),
        WindowEnd::Nothing => {}
    }
    let t = &report.summary.telemetry;
    if t.reports > 0 {
        let _ = writeln!(
            out,
            "telemetry: exporters reported {} dropped span(s) ({} report(s), {} at shutdown)",
            t.dropped_spans, t.reports, t.final_reports
        );
    }
    if let Some(stopped) = crate::findings::Stopped::of(t) {
        let _ = writeln!(
            out,
            "telemetry INCOMPLETE: no loss names a stage as certain: {}",
            printable(&stopped.to_string())
        );
    }
    let unanalysed = report.summary.unanalysed_total();
    if unanalysed > 0 {
        let reasons: Vec<String> = report
            .summary
            .unanalysed
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        let _ = writeln!(
            out,
            "NOT ANALYSED: {unanalysed} messaging span(s) could not be tied to a message ({}): \
             what happened to their messages is unknown",
            reasons.join(", ")
        );
    }
    if input.malformed_total > 0 {
        let _ = writeln!(
            out,
            "\nskipped {} malformed record(s):",
            input.malformed_total
        );
        for m in input.malformed.iter().take(max_rows) {
            let _ = writeln!(out, "  {}", printable(&m.to_string()));
        }
        if input.malformed.len() > max_rows {
            let _ = writeln!(out, "  … and {} more", input.malformed.len() - max_rows);
        }
    }

    out.push_str("\nfindings by kind\n");
    // Every key the analyzer reports (`lost` without a stage included: see `finding::KEYS`).
    let keys: Vec<&String> = FINDING_KEYS.iter().collect();
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|&k| {
            vec![
                k.clone(),
                report
                    .summary
                    .findings
                    .get(k)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            ]
        })
        .collect();
    table(&mut out, &["kind", "count"], &rows);

    let by_group = report.counts_by_stream_and_group();
    if !by_group.is_empty() {
        out.push_str("\nby stream and group\n");
        let mut header = vec!["producer", "stream", "group"];
        header.extend(keys.iter().map(|k| k.as_str()));
        let rows: Vec<Vec<String>> = by_group
            .into_iter()
            .map(|((p, s, g), counts)| {
                let mut row = vec![p.to_owned(), s.to_owned(), g.unwrap_or("-").to_owned()];
                row.extend(counts.iter().map(u64::to_string));
                row
            })
            .collect();
        table(&mut out, &header, &rows);
    }

    if !report.summary.latency.is_empty() {
        out.push_str("\nlatency (ms)\n");
        let rows: Vec<Vec<String>> = report
            .summary
            .latency
            .iter()
            .map(|l| {
                vec![
                    l.producer_id.clone(),
                    l.stream.clone(),
                    l.consumer_group.clone().unwrap_or_else(|| "-".to_owned()),
                    l.hop.clone(),
                    l.count.to_string(),
                    format!("{:.1}", l.p50_ms),
                    format!("{:.1}", l.p90_ms),
                    format!("{:.1}", l.p99_ms),
                    format!("{:.1}", l.max_ms),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "producer", "stream", "group", "hop", "count", "p50", "p90", "p99", "max",
            ],
            &rows,
        );
    }

    if report.findings.is_empty() {
        if unanalysed > 0 {
            // Never a clean bill while spans were left out of the verdicts.
            let _ = writeln!(
                out,
                "\nno findings in the messages analysed, but {unanalysed} messaging span(s) \
                 could not be analysed (above): their messages are not accounted for"
            );
        } else if t.incomplete() {
            // Never a clean bill for a run whose telemetry is known to be incomplete.
            out.push_str(
                "\nno findings in the spans read, but some telemetry stopped without its final \
                 report (above): messages whose spans it never exported cannot be judged\n",
            );
        } else {
            out.push_str("\nno findings: every message was produced, stored and consumed once\n");
        }
        return out;
    }
    if max_rows == 0 {
        return out;
    }
    let _ = writeln!(
        out,
        "\nfindings ({} of {})",
        report.findings.len().min(max_rows),
        report.findings.len()
    );
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .take(max_rows)
        .map(|f| {
            vec![
                f.key(),
                f.producer_id.clone(),
                f.stream.clone(),
                // A message judged on the conventions alone has no seq: its id names it.
                f.seq
                    .map_or_else(|| format!("id {}", f.message_id), |s| s.to_string()),
                f.consumer_group.clone().unwrap_or_else(|| "-".to_owned()),
                f.partition.clone().unwrap_or_else(|| "-".to_owned()),
                f.evidence_text(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "finding",
            "producer",
            "stream",
            "seq",
            "group",
            "partition",
            "evidence",
        ],
        &rows,
    );
    if report.findings.len() > max_rows {
        let _ = writeln!(
            out,
            "… and {} more (--max-rows, or --format json/csv for all)",
            report.findings.len() - max_rows
        );
    }
    out
}
