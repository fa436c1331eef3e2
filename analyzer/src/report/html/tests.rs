//! The page for a report built by hand: hostile names stay text, the numbers are there.

use super::*;
use crate::findings::Evidence;
use crate::report::{InputSection, Latency, Summary, Window};
use mqtrace_vocab::finding::{Kind, Where};
use std::collections::BTreeMap;

const HOSTILE: &str = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

fn finding(kind: Kind, stage: Option<Where>, stream: &str, seq: i64) -> Finding {
    Finding {
        kind,
        stage,
        producer_id: "p1".into(),
        stream: stream.into(),
        seq: Some(seq),
        consumer_group: Some(HOSTILE.into()),
        message_id: format!("m{seq}"),
        partition: Some(HOSTILE.into()),
        trace_ids: vec!["4bf92f3577b34da6a3ce929d0e0e4736".into(), HOSTILE.into()],
        evidence: Evidence::TelemetryGap { deliveries: 1 },
        ledger: false,
        basis: mqtrace_vocab::finding::Basis::Mqtrace,
    }
}

fn report(findings: Vec<Finding>) -> Report {
    let mut counts: BTreeMap<String, u64> = FINDING_KEYS.iter().map(|k| (k.clone(), 0)).collect();
    for f in &findings {
        *counts.entry(f.key()).or_default() += 1;
    }
    Report {
        schema: mqtrace_vocab::REPORT_SCHEMA,
        input: InputSection {
            files: 1,
            records: 2,
            spans: 3,
            messaging_spans: 3,
            malformed_total: 0,
            malformed: Vec::new(),
        },
        window: Window {
            start_unix_nano: 1_700_000_000_000_000_000,
            end_unix_nano: 1_700_000_060_000_000_000,
            end_set_by: WindowEnd::Until,
        },
        summary: Summary {
            streams: 1,
            messages: 42,
            findings: counts,
            telemetry: Default::default(),
            latency: vec![Latency {
                hop: "produce→store_ack".into(),
                producer_id: "p1".into(),
                stream: HOSTILE.into(),
                consumer_group: None,
                count: 10,
                p50_ms: 1.5,
                p90_ms: 3.0,
                p99_ms: 40.0,
                max_ms: 41.0,
                histogram: {
                    let mut h = vec![0; crate::LATENCY_EDGES_MS.len() + 1];
                    h[7] = 6;
                    h[8] = 3;
                    h[11] = 1;
                    h
                },
                negative: 0,
            }],
            unanalysed: BTreeMap::new(),
        },
        findings,
    }
}

/// Every place a report value lands: text, attributes, SVG tooltips, the script's JSON.
#[test]
fn hostile_names_stay_text_everywhere() {
    let r = report(vec![
        finding(Kind::Lost, Some(Where::Store), HOSTILE, 5),
        finding(Kind::Redelivered, None, HOSTILE, 9),
    ]);
    let options = HtmlOptions {
        trace_url: Some("https://jaeger.example/trace/{trace_id}?x=1".into()),
    };
    let page = render_html(&r, &options).expect("page");
    // The only elements are the page's own: two scripts (data and code), no image.
    assert_eq!(page.matches("<script").count(), 2, "{page}");
    assert_eq!(page.matches("</script>").count(), 2);
    assert!(!page.contains("<img"));
    assert!(!page.contains("onerror=alert(2)>"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // The JSON escapes its own way, and reads back as the same strings.
    let start = page.find(r#"id="findings-data">"#).expect("data") + r#"id="findings-data">"#.len();
    let end = start + page[start..].find("</script>").expect("end");
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).expect("json");
    assert_eq!(data["rows"][0][2], HOSTILE);
    assert_eq!(data["rows"].as_array().map(Vec::len), Some(2));
    // Links: the id percent-encoded into the template, inside an escaped attribute.
    assert!(
        page.contains(
            r#"href="https://jaeger.example/trace/4bf92f3577b34da6a3ce929d0e0e4736?x=1""#
        )
    );
    assert!(page.contains("https://jaeger.example/trace/%3C%2Fscript%3E"));
}

#[test]
fn totals_summary_and_plots_are_on_the_page() {
    let r = report(vec![
        finding(Kind::Lost, Some(Where::Store), "orders", 5),
        finding(Kind::Lost, Some(Where::Store), "orders", 6),
        finding(Kind::InFlight, None, "orders", 9),
    ]);
    let page = render_html(&r, &HtmlOptions::default()).expect("page");
    assert!(page.contains(r#"<td class="num" data-key="lost/store">2</td>"#));
    assert!(page.contains(r#"<td class="num" data-key="in_flight">1</td>"#));
    assert!(page.contains("42 message(s) in 1 stream(s)"));
    assert!(page.contains("2 finding(s) of lost, duplicated or unobserved messages"));
    assert!(page.contains("loss timeline of stream orders"));
    assert!(page.contains("latency histogram of produce→store_ack"));
    assert!(
        !page.contains("target=\"_blank\""),
        "no links without --trace-url"
    );
    // Offline: nothing is fetched.
    for remote in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!page.contains(remote), "{remote}");
    }
}

#[test]
fn many_findings_are_aggregated_and_capped() {
    let many: Vec<Finding> = (1..=(TABLE_MAX as i64 + 10))
        .map(|seq| finding(Kind::Lost, Some(Where::Store), "orders", seq))
        .collect();
    let page = render_html(&report(many), &HtmlOptions::default()).expect("page");
    assert!(page.contains(&format!(
        "The table holds the first {TABLE_MAX} of {} findings",
        TABLE_MAX + 10
    )));
    assert!(page.contains("drawn as 240 seq ranges per lane"));
    // One cell per seq range, not a mark per finding.
    assert!(page.matches("<rect").count() < 1_000);
}

#[test]
fn trace_url_templates_are_checked() {
    assert!(check_trace_url("http://jaeger:16686/trace/{trace_id}").is_ok());
    assert_eq!(
        check_trace_url("javascript:alert(1)//{trace_id}"),
        Err(TraceUrlError::NotHttp(
            "javascript:alert(1)//{trace_id}".into()
        ))
    );
    assert!(matches!(
        check_trace_url("http://jaeger/trace/"),
        Err(TraceUrlError::NoPlaceholder(_))
    ));
}

/// SPEC §4b: spans that could not be analysed turn the verdict away from a clean bill; a
/// finding without a seq is listed by its message id, and stays off the seq timeline.
#[test]
fn unanalysed_spans_are_no_clean_bill_and_semconv_findings_show_their_id() {
    let mut r = report(Vec::new());
    let page = render_html(&r, &HtmlOptions::default()).expect("page");
    assert!(page.contains("No findings: every message was produced"));
    r.summary
        .unanalysed
        .insert("delivery_without_identity".into(), 4);
    let page = render_html(&r, &HtmlOptions::default()).expect("page");
    assert!(!page.contains("No findings: every message"));
    assert!(page.contains("4 messaging span(s) could not be tied to a message"));
    assert!(page.contains("4 delivery_without_identity"));

    let mut semconv = finding(Kind::Duplicate, Some(Where::Consume), "orders", 1);
    semconv.seq = None;
    semconv.message_id = "order-21".into();
    semconv.basis = mqtrace_vocab::finding::Basis::Semconv;
    let page = render_html(&report(vec![semconv]), &HtmlOptions::default()).expect("page");
    assert!(
        page.contains(r#"<td class="num">id order-21</td>"#),
        "listed by its id"
    );
    assert!(!page.contains("loss timeline of stream orders"));
}
