//! A trace with a known fault of every kind SPEC §4 defines, and the confounders real traces
//! have (recovered retries, renamed destinations, linked traces, skewed clocks, unrelated
//! spans, a group that joins late, partitions): the analyzer must report exactly the expected
//! findings, nothing more.

use mqtrace_analyzer::{Evidence, Kind, Options, Passed, Where, analyze, input};
use mqtrace_tracegen::Traces;
use std::collections::BTreeSet;
use std::time::Duration;

type Expected = BTreeSet<(String, String, u64, Option<String>)>;

fn scenario() -> Traces {
    mqtrace_tracegen::cases::every_kind()
}

fn finding(
    kind: &str,
    p: &str,
    s: &str,
    seq: u64,
    g: Option<&str>,
) -> (String, String, u64, Option<String>) {
    (
        format!("{kind}|{p}"),
        s.to_owned(),
        seq,
        g.map(str::to_owned),
    )
}

fn run(grace: Duration) -> (Expected, mqtrace_analyzer::Report) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("spans.jsonl"), scenario().finish()).expect("write");
    let files = input::discover(&[dir.path().to_path_buf()]).expect("files");
    let options = Options {
        grace,
        ..Options::default()
    };
    let report = analyze(&files, &options, &|_| {}).expect("analysis");
    let got = report
        .findings
        .iter()
        .map(|f| {
            (
                format!("{}|{}", f.key(), f.producer_id),
                f.stream.clone(),
                f.seq.unwrap_or(0) as u64,
                f.consumer_group.clone(),
            )
        })
        .collect();
    (got, report)
}

fn assert_same(expected: &Expected, got: &Expected) {
    let missing: Vec<_> = expected.difference(got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
}

fn expected_common() -> Vec<(String, String, u64, Option<String>)> {
    vec![
        finding("lost/produce", "p1", "orders", 3, None),
        finding("unobserved", "p1", "orders", 4, None),
        finding("lost/store", "p1", "orders", 6, Some("shipping")),
        finding("lost/consume", "p1", "orders", 7, Some("shipping")),
        finding("duplicate/produce", "p1", "orders", 8, None),
        finding("duplicate/consume", "p1", "orders", 8, Some("billing")),
        finding("redelivered", "p1", "orders", 9, Some("shipping")),
        finding("duplicate/consume", "p1", "orders", 10, Some("shipping")),
        finding("redelivered", "p1", "orders", 11, Some("shipping")),
        finding("telemetry_gap", "p1", "orders", 12, None),
    ]
}

#[test]
fn every_kind_of_finding_is_reported_exactly_once_and_nothing_else() {
    let (got, report) = run(Duration::from_secs(30));
    let mut expected: Expected = expected_common().into_iter().collect();
    expected.extend([
        // shipping delivered 16: it passed 15, which it never got.
        finding("lost/store", "p1", "orders", 15, Some("shipping")),
        finding("in_flight", "p1", "orders", 15, Some("billing")),
        finding("in_flight", "p1", "orders", 16, Some("shipping")),
        finding("in_flight", "p1", "orders", 16, Some("billing")),
        // shipping delivered higher seqs on partition 0 only: not passed on partition 1.
        finding("in_flight", "p2", "payments", 3, Some("shipping")),
    ]);
    assert_same(&expected, &got);

    assert_eq!(report.summary.streams, 2);
    assert_eq!(
        report.summary.messages, 20,
        "orders 1..=16 but 4, and payments 1..=5"
    );
    assert!(report.input.malformed.is_empty());
    assert_eq!(
        report.input.spans,
        report.input.messaging_spans + 2,
        "2 unrelated spans"
    );
    let linked = report
        .findings
        .iter()
        .find(|f| f.seq == Some(8) && f.kind == Kind::Duplicate && f.stage == Some(Where::Produce))
        .expect("duplicate/produce of 8");
    // The evidence is built from the fields: the positions come as values, then as text.
    let Evidence::StoredAt { positions } = &linked.evidence else {
        panic!("{:?}", linked.evidence);
    };
    assert_eq!(positions.len(), 2);
    assert!(
        positions.iter().any(|p| p.ends_with("8a")) && positions.iter().any(|p| p.ends_with("8b"))
    );
    assert!(
        linked
            .evidence
            .to_string()
            .starts_with("stored 2 times: positions "),
        "{}",
        linked.evidence
    );
    let store = report
        .findings
        .iter()
        .find(|f| f.seq == Some(6))
        .expect("lost/store of 6");
    assert_eq!(
        store.evidence,
        Evidence::LostStore {
            acked_at: Some(vec!["6".to_owned()]),
            passed: Passed::AtSeq(16)
        }
    );
    assert_eq!(
        store.evidence.to_string(),
        "acked ok at position 6; never delivered to this group; group passed it at seq 16"
    );
    assert_eq!(store.message_id, "p1:orders:6");
}

#[test]
fn without_grace_old_undelivered_messages_are_losses_not_in_flight() {
    let (got, _) = run(Duration::ZERO);
    let mut expected: Expected = expected_common().into_iter().collect();
    expected.extend([
        finding("lost/store", "p1", "orders", 15, Some("shipping")),
        finding("lost/store", "p1", "orders", 15, Some("billing")),
        // 16's last span is the window's end: even with no grace, not passed yet.
        finding("in_flight", "p1", "orders", 16, Some("shipping")),
        finding("in_flight", "p1", "orders", 16, Some("billing")),
        finding("lost/store", "p2", "payments", 3, Some("shipping")),
    ]);
    assert_same(&expected, &got);
}

#[test]
fn a_finding_joins_linked_traces_and_renamed_destinations_on_the_seq() {
    let (_, report) = run(Duration::from_secs(30));
    let lost = report
        .findings
        .iter()
        .find(|f| f.seq == Some(7) && f.stream == "orders")
        .expect("lost/consume of 7");
    assert_eq!(lost.key(), "lost/consume");
    assert_eq!(
        lost.trace_ids.len(),
        2,
        "the producer's trace and the linked consumer trace"
    );
    assert_eq!(
        lost.evidence.to_string(),
        "delivered 1 time(s) (at 7), never settled; group passed it at seq 14"
    );
}
