//! The one `process_once` call over the Kafka adapter's deliveries (librdkafka's in-process
//! mock cluster: no server): a producer's retry stored twice reaches the consumer twice, the
//! copy is settled `skip_duplicate`, and the analyzer finds the message stored twice
//! (`duplicate/produce`) but never processed twice. RabbitMQ's deliveries go through the same
//! call in `dedup_crashes.rs`, JetStream's in the `dedup_redis` example.

mod support;

use mqtrace::{Mode, Producer};
use mqtrace_analyzer::{Options, analyze, input};
use mqtrace_dedup::{Outcome, WindowStore, process_once};
use mqtrace_examples::demo::cluster::{self, Commits};
use mqtrace_export::{Overflow, Telemetry};
use mqtrace_kafka::{SYSTEM, TracedProducer};
use std::time::Duration;
use support::{expect, verdicts};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_deliveries_go_through_the_same_call_and_a_copy_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let telemetry = Telemetry::builder()
        .file(dir.path())
        .service_name("dedup-kafka")
        .overflow(Overflow::Block)
        .build()
        .expect("file exporter");
    let cluster = cluster::cluster().expect("mock cluster");
    cluster::start_group_at_beginning(&cluster).expect("group start");
    let tracer = Producer::builder(SYSTEM)
        .producer_id("orders-api")
        .tracer_provider(telemetry.provider())
        .build();
    let producer = TracedProducer::new(
        cluster::producer_config(&cluster)
            .create()
            .expect("producer"),
        tracer,
    );

    // Seqs 1..=3, then seq 2 again with the same seq (a retry after a lost delivery report).
    let mut sent = cluster::send_new(&producer, 3).await;
    assert!(sent.iter().all(|(_, r)| r.is_ok()), "sends: {sent:?}");
    let (message, _) = sent.remove(1);
    let retried = message.key().seq;
    let (_, again) = cluster::resend(&producer, message).await;
    again.expect("resend");

    let consumer = cluster::consumer(
        &cluster,
        &telemetry,
        Mode::Full,
        "dedup-1",
        Commits::AfterProcessing,
    )
    .expect("consumer");
    let store = WindowStore::new();
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let message = timeout(Duration::from_secs(10), consumer.recv())
            .await
            .expect("a message in time")
            .expect("message");
        let seq = message.key().expect("numbered").seq;
        let outcome = process_once(message, &store, async |_, _| Ok::<_, String>(()))
            .await
            .expect("processed or skipped");
        outcomes.push((seq, outcome));
    }
    // The three first copies in whatever order the concurrent sends were stored, then the
    // retry's copy, skipped.
    assert_eq!(outcomes.last(), Some(&(retried, Outcome::Skipped)));
    let mut processed: Vec<u64> = outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Processed(()))
        .map(|(seq, _)| *seq)
        .collect();
    processed.sort_unstable();
    assert_eq!(processed, [1, 2, 3]);

    drop(consumer);
    telemetry.shutdown().expect("exporter shutdown");
    let files = input::discover(&[dir.path().to_path_buf()]).expect("trace files");
    let report = analyze(&files, &Options::default(), &|_| {}).expect("analysis");
    assert_eq!(
        verdicts(&report),
        expect("duplicate/produce", cluster::TOPIC, None, [retried])
    );
}
