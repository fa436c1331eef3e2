//! A process whose telemetry stopped without its final report (killed): the spans it had not
//! exported are missing, so no loss may name a stage as certain, and the report may never
//! read as a clean bill. Traces from tracegen, with the exporters' reports as mqtrace-export
//! writes them (one at start, one per export, the final one at shutdown).

use mqtrace_analyzer::report::render_table;
use mqtrace_analyzer::{Evidence, Kind, Options, Report, Where, analyze, input};
use mqtrace_tracegen::{Host, Msg, Traces};

fn report_of(t: Traces) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("spans.jsonl"), t.finish()).expect("write");
    let files = input::discover(&[dir.path().to_path_buf()]).expect("files");
    analyze(&files, &Options::default(), &|_| {}).expect("analysis")
}

/// Seqs 1..=10 acked; a first consumer run settles 1..=4, takes 5 (its delivery exported)
/// and 6 (nothing exported), and is killed unless `first_run_shuts_down`; a second run
/// settles 7..=10 and shuts down cleanly.
fn killed_consumer(first_run_shuts_down: bool) -> Traces {
    let mut t = Traces::new();
    t.telemetry("producer-run", 0, false, Host::PRODUCER);
    t.telemetry("consumer-run-1", 0, false, Host::CONSUMER);
    for seq in 1..=10 {
        let m = Msg::new("p1", "orders", seq);
        t.produce(&m, 1, Host::PRODUCER);
        t.store_ack(&m, 1, "ok", Some(&format!("0/{seq}")), Host::PRODUCER);
    }
    t.telemetry("producer-run", 0, true, Host::PRODUCER);
    for seq in 1..=4 {
        let m = Msg::new("p1", "orders", seq);
        t.deliver(&m, "shipping", Some(&format!("0/{seq}")), 1, Host::CONSUMER);
        t.settle(&m, "shipping", "ack", Host::CONSUMER);
    }
    t.telemetry("consumer-run-1", 0, false, Host::CONSUMER);
    t.deliver(
        &Msg::new("p1", "orders", 5),
        "shipping",
        Some("0/5"),
        1,
        Host::CONSUMER,
    );
    t.telemetry("consumer-run-1", 0, first_run_shuts_down, Host::CONSUMER);
    t.telemetry("consumer-run-2", 0, false, Host::CONSUMER);
    for seq in 7..=10 {
        let m = Msg::new("p1", "orders", seq);
        t.deliver(&m, "shipping", Some(&format!("0/{seq}")), 1, Host::CONSUMER);
        t.settle(&m, "shipping", "ack", Host::CONSUMER);
    }
    t.telemetry("consumer-run-2", 0, true, Host::CONSUMER);
    t
}

fn keys(report: &Report) -> Vec<(String, i64)> {
    report
        .findings
        .iter()
        .map(|f| (f.key(), f.seq.unwrap_or(0)))
        .collect()
}

#[test]
fn with_every_final_report_the_stages_are_certain() {
    let report = report_of(killed_consumer(true));
    assert_eq!(
        keys(&report),
        [("lost/consume".to_owned(), 5), ("lost/store".to_owned(), 6)]
    );
    assert!(report.summary.telemetry.stopped_instances().is_empty());
    assert!(!report.summary.telemetry.incomplete());
}

#[test]
fn a_killed_consumer_leaves_its_losses_without_a_certain_stage() {
    let report = report_of(killed_consumer(false));
    // Both are named, as losses, and neither names a stage.
    assert_eq!(
        keys(&report),
        [("lost".to_owned(), 5), ("lost".to_owned(), 6)]
    );
    let said: Vec<Option<Where>> = report
        .findings
        .iter()
        .map(|f| match &f.evidence {
            Evidence::TelemetryStopped { spans_say, .. } => *spans_say,
            other => panic!("evidence without the stopped telemetry: {other:?}"),
        })
        .collect();
    assert_eq!(said, [Some(Where::Consume), Some(Where::Store)]);
    for f in &report.findings {
        assert_eq!((f.kind, f.stage), (Kind::Lost, None));
        let text = f.evidence_text();
        assert!(
            text.contains("consumer-run-1 last reported at 20")
                && text.contains("stopped without a final report")
                && text.contains("the stage is not certain"),
            "{text}"
        );
    }
    let stopped = report.summary.telemetry.stopped_instances();
    assert_eq!(stopped.len(), 1);
    assert_eq!(
        (stopped[0].instance.as_str(), stopped[0].reports),
        ("consumer-run-1", 3)
    );
    assert_eq!(report.summary.findings.get("lost"), Some(&2));
    assert_eq!(report.summary.findings.get("lost/store"), Some(&0));
    assert!(report.has_problems());

    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(
        json["summary"]["telemetry"]["stopped_instances"][0]["instance"],
        "consumer-run-1"
    );
    assert_eq!(json["findings"][0]["kind"], "lost");
    assert!(json["findings"][0]["stage"].is_null());
    let table = render_table(&report, 100);
    assert!(table.contains("telemetry INCOMPLETE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("lost ") && l.ends_with(" 2")),
        "{table}"
    );
}

#[test]
fn a_stopped_instance_is_never_a_clean_bill() {
    let mut t = Traces::new();
    t.telemetry("only-run", 0, false, Host::PRODUCER);
    t.healthy(&Msg::new("p1", "orders", 1), "0/1", &["shipping"]);
    t.telemetry("only-run", 0, false, Host::PRODUCER);
    let report = report_of(t);
    assert!(report.findings.is_empty());
    // SPEC §5: the exit status counts findings; the report itself says it cannot vouch.
    assert!(!report.has_problems());
    assert!(report.summary.telemetry.incomplete());
    let table = render_table(&report, 100);
    assert!(!table.contains("no findings: every message"), "{table}");
    assert!(table.contains("cannot be judged"), "{table}");
}

#[test]
fn duplicates_rest_on_events_seen_and_keep_their_stage() {
    let mut t = Traces::new();
    t.telemetry("killed", 0, false, Host::CONSUMER);
    let m = Msg::new("p1", "orders", 1);
    t.produce(&m, 1, Host::PRODUCER);
    t.store_ack(&m, 1, "ok", Some("0/1"), Host::PRODUCER);
    for _ in 0..2 {
        t.deliver(&m, "shipping", Some("0/1"), 1, Host::CONSUMER);
        t.settle(&m, "shipping", "ack", Host::CONSUMER);
    }
    let report = report_of(t);
    assert_eq!(keys(&report), [("duplicate/consume".to_owned(), 1)]);
    assert!(!report.findings[0].evidence_text().contains("stopped"));
    assert!(report.has_problems());
}
