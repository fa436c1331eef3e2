//! The demo's five real faults on librdkafka's mock cluster, analyzed end to end: the
//! analyzer names exactly the injected messages, at the injected stage, and nothing more.

use mqtrace::Mode;
use mqtrace_analyzer::{Options, analyze, input};
use mqtrace_examples::demo;
use std::collections::{BTreeMap, BTreeSet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analyzer_names_every_injected_fault_and_nothing_else() {
    names_every_injected_fault(Mode::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_ledger_mode_the_analyzer_names_the_same_faults() {
    names_every_injected_fault(Mode::Ledger).await;
}

async fn names_every_injected_fault(mode: Mode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let injected = demo::run_in(dir.path(), mode).await.expect("demo scenario");
    for (key, seqs) in injected.by_key() {
        assert!(!seqs.is_empty(), "the scenario failed to inject {key}");
    }

    let files = input::discover(&[dir.path().join("traces")]).expect("trace files");
    let report = analyze(&files, &Options::default(), &|_| {}).expect("analysis");
    assert!(
        report.input.malformed.is_empty(),
        "{:?}",
        report.input.malformed
    );
    assert_eq!(report.summary.telemetry.dropped_spans, 0);

    let mut found: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for f in &report.findings {
        assert_eq!(f.producer_id, demo::PRODUCER_ID);
        if f.consumer_group.is_some() {
            assert_eq!(f.consumer_group.as_deref(), Some(demo::cluster::GROUP));
        }
        found
            .entry(f.key())
            .or_default()
            .insert(u64::try_from(f.seq.expect("a numbered finding")).expect("positive seq"));
    }
    let expected: BTreeMap<String, BTreeSet<u64>> = injected
        .by_key()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    assert_eq!(
        found, expected,
        "{mode} mode: findings differ from the injected faults"
    );
    assert!(report.has_problems());
}
