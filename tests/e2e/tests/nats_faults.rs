//! Real faults on the NATS JetStream at 127.0.0.1:4222, traced by `mqtrace-nats` and named by
//! the analyzer: exactly the injected messages, at the injected stage, and nothing more.
//!
//! Each test creates its own in-memory streams, subjects and durable consumers under unique
//! names and deletes them, so the tests run in parallel. A server that is not up fails the
//! test: `scripts/test` starts it first.

mod support;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::jetstream::{self, Context as JetStream};
use futures::StreamExt;
use mqtrace::names::metric;
use mqtrace::{Consumer, Mode, Producer};
use mqtrace_nats::{SYSTEM, TracedDurable, TracedJetStream, TracedMessage};
use std::collections::HashSet;
use std::time::Duration;
use support::{BROKER_TIMEOUT, Traces, count, expect, unique, verdicts};
use tokio::time::timeout;

const NATS_URL: &str = "127.0.0.1:4222";

async fn connect() -> JetStream {
    match timeout(BROKER_TIMEOUT, async_nats::connect(NATS_URL)).await {
        Ok(Ok(client)) => jetstream::new(client),
        Ok(Err(e)) => panic!("NATS at {NATS_URL}: {e} (start it with scripts/services)"),
        Err(_) => panic!("NATS at {NATS_URL} did not answer (start it with scripts/services)"),
    }
}

/// An in-memory stream capturing `subject`, with `max_messages` (negative: no cap).
async fn create_stream(js: &JetStream, subject: &str, max_messages: i64) -> String {
    let name = unique("S").replace('-', "_");
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.to_owned()],
        max_messages,
        discard: DiscardPolicy::Old,
        storage: StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("create_stream (is JetStream on? scripts/services starts it with -js)");
    name
}

async fn durable(js: &JetStream, stream: &str, name: &str, ack: AckPolicy) -> PullConsumer {
    js.get_stream(stream)
        .await
        .expect("get_stream")
        .create_consumer(pull::Config {
            durable_name: Some(name.to_owned()),
            ack_policy: ack,
            ack_wait: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .expect("create_consumer")
}

fn producer(traces: &Traces, js: &JetStream, dedup: bool) -> TracedJetStream {
    let tracer = Producer::builder(SYSTEM)
        .producer_id("orders-api")
        .tracer_provider(traces.provider())
        .mode(traces.mode())
        .build();
    TracedJetStream::new(js.clone(), tracer).dedup_ids(dedup)
}

fn traced(traces: &Traces, group: &str) -> TracedDurable {
    traced_with_window(traces, group, mqtrace::DEFAULT_REORDER_WINDOW)
}

/// [`traced`], counting its live signals with reorder window `window`.
fn traced_with_window(traces: &Traces, group: &str, window: u64) -> TracedDurable {
    TracedDurable::new(
        Consumer::builder(SYSTEM, group)
            .tracer_provider(traces.provider())
            .meter_provider(traces.meter_provider())
            .reorder_window(window)
            .mode(traces.mode())
            .build(),
    )
}

/// Takes `n` messages from `consumer` (waiting up to the broker timeout for them).
async fn take(consumer: &PullConsumer, group: &TracedDurable, n: usize) -> Vec<TracedMessage> {
    let batch = consumer
        .batch()
        .max_messages(n)
        .expires(BROKER_TIMEOUT)
        .messages()
        .await
        .expect("pull request");
    let got: Vec<TracedMessage> = group
        .messages(batch)
        .map(|m| m.expect("message"))
        .collect()
        .await;
    assert_eq!(got.len(), n, "{n} messages within {BROKER_TIMEOUT:?}");
    got
}

fn seqs(messages: &[TracedMessage]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m.key().expect("numbered").seq)
        .collect()
}

async fn publish_ok(publisher: &TracedJetStream, subject: &str) {
    publisher
        .publish(subject, "{}".into())
        .await
        .expect("publish")
        .await
        .expect("PubAck");
}

async fn ack_all(messages: Vec<TracedMessage>) {
    for m in messages {
        m.ack().await.expect("ack");
    }
}

async fn a_publish_no_stream_captures_is_lost_at_produce_when_the_app_ignores_it(mode: Mode) {
    let traces = Traces::in_mode("nats-produce", mode);
    let js = connect().await;
    let prefix = unique("orders");
    let subject = format!("{prefix}.new");
    let stream = create_stream(&js, &subject, -1).await;
    let publisher = producer(&traces, &js, false);
    let orders = publisher.tracer().stream("orders");

    // Seq 3 goes to a mistyped subject that no stream captures; the app ignores the error.
    for seq in 1..=6u64 {
        let to = if seq == 3 {
            format!("{prefix}.nwe")
        } else {
            subject.clone()
        };
        let mut message = publisher.tracer().message_on(&orders, &to);
        let ack = publisher
            .publish_attempt(
                &mut message,
                &to,
                PublishMessage::build().payload("{}".into()),
            )
            .await
            .expect("sent");
        let _ignored = ack.wait_for(BROKER_TIMEOUT).await;
    }

    let shipping = durable(&js, &stream, "shipping", AckPolicy::Explicit).await;
    let got = take(&shipping, &traced(&traces, "shipping"), 5).await;
    assert_eq!(seqs(&got), vec![1, 2, 4, 5, 6]);
    ack_all(got).await;
    js.delete_stream(&stream).await.expect("delete_stream");

    let report = traces.analyze();
    assert_eq!(
        verdicts(&report),
        expect("lost/produce", "orders", None, [3])
    );
}

async fn a_stream_capped_by_max_msgs_that_discards_old_loses_at_store(mode: Mode) {
    let traces = Traces::in_mode("nats-store", mode);
    let js = connect().await;
    let subject = format!("{}.new", unique("orders"));
    let stream = create_stream(&js, &subject, 5).await;
    let publisher = producer(&traces, &js, false);
    let shipping = durable(&js, &stream, "shipping", AckPolicy::Explicit).await;
    // The live signals must see 4..=18 missing by the last delivery (23 − 18 = 5 > 4).
    let group = traced_with_window(&traces, "shipping", 4);

    // The consumer keeps up with 1..=3, then falls behind while 4..=23 arrive: every
    // publish gets its PubAck, but the stream keeps only the last five.
    for _ in 1..=3 {
        publish_ok(&publisher, &subject).await;
    }
    let first = take(&shipping, &group, 3).await;
    assert_eq!(seqs(&first), vec![1, 2, 3]);
    ack_all(first).await;
    for _ in 4..=23 {
        publish_ok(&publisher, &subject).await;
    }
    let rest = take(&shipping, &group, 5).await;
    assert_eq!(seqs(&rest), (19..=23).collect::<Vec<_>>());
    ack_all(rest).await;
    js.delete_stream(&stream).await.expect("delete_stream");

    // SPEC §7: the consumer counted the holes as they appeared, and nothing else (each
    // message was delivered once).
    let live = traces.live(&subject);
    let report = traces.analyze();
    let dropped = 4..=18u64;
    assert_eq!(
        verdicts(&report),
        expect("lost/store", &subject, Some("shipping"), dropped.clone())
    );
    assert_eq!(
        live.get(metric::CONSUMER_MISSING).copied(),
        Some(count(&report, "lost/store")),
        "live missing = the analyzer's lost/store: {live:?}"
    );
    assert_eq!(count(&report, "lost/store"), dropped.count() as u64);
    assert_eq!(
        live.len(),
        1,
        "no late, redelivered or duplicate count: {live:?}"
    );
}

async fn a_consumer_without_acks_that_dies_before_processing_loses_at_consume(mode: Mode) {
    let traces = Traces::in_mode("nats-consume", mode);
    let js = connect().await;
    let subject = format!("{}.new", unique("orders"));
    let stream = create_stream(&js, &subject, -1).await;
    let publisher = producer(&traces, &js, false);
    // AckPolicy::None: the server counts a message done once it sends it.
    let shipping = durable(&js, &stream, "shipping", AckPolicy::None).await;
    for _ in 1..=5 {
        publish_ok(&publisher, &subject).await;
    }

    let mut got = take(&shipping, &traced(&traces, "shipping"), 5).await;
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5]);
    let dying = got.pop();
    ack_all(got).await;
    drop(dying); // died before processing 5

    for _ in 6..=8 {
        publish_ok(&publisher, &subject).await;
    }
    let got = take(&shipping, &traced(&traces, "shipping"), 3).await;
    assert_eq!(seqs(&got), vec![6, 7, 8]);
    ack_all(got).await;
    js.delete_stream(&stream).await.expect("delete_stream");

    let report = traces.analyze();
    assert_eq!(
        verdicts(&report),
        expect("lost/consume", &subject, Some("shipping"), [5])
    );
}

/// Settles `m` as a naive consumer (always processes) or an idempotent one (skips a key it
/// has processed before).
async fn settle(m: TracedMessage, seen: Option<&mut HashSet<u64>>) {
    if support::processed_before(seen, m.key().expect("numbered").seq) {
        m.skip_duplicate().await.expect("ack");
    } else {
        m.ack().await.expect("ack");
    }
}

/// Publishes 1..=3 with seq 2's first PubAck lost (the app's deadline passes before it
/// comes, and it retries), then lets a naive and an idempotent durable consume `expect_copies` messages.
async fn retry_after_a_lost_puback(
    mode: Mode,
    dedup: bool,
    expect_copies: Vec<u64>,
) -> (Traces, String) {
    let traces = Traces::in_mode("nats-retry", mode);
    let js = connect().await;
    let subject = format!("{}.new", unique("events"));
    let stream = create_stream(&js, &subject, -1).await;
    let publisher = producer(&traces, &js, dedup);
    for seq in 1..=3u64 {
        let mut message = publisher.message(&subject);
        loop {
            let ack = publisher
                .publish_attempt(
                    &mut message,
                    &subject,
                    PublishMessage::build().payload("{}".into()),
                )
                .await
                .expect("sent");
            if seq == 2 && message.attempts() == 1 {
                ack.give_up();
                continue;
            }
            let ack = ack.await.expect("PubAck");
            assert_eq!(ack.duplicate, dedup && seq == 2);
            break;
        }
    }
    for (name, idempotent) in [("naive", false), ("idempotent", true)] {
        let consumer = durable(&js, &stream, name, AckPolicy::Explicit).await;
        let got = take(&consumer, &traced(&traces, name), expect_copies.len()).await;
        assert_eq!(seqs(&got), expect_copies);
        let mut seen = HashSet::new();
        for m in got {
            settle(m, idempotent.then_some(&mut seen)).await;
        }
    }
    js.delete_stream(&stream).await.expect("delete_stream");
    (traces, subject)
}

async fn with_the_dedup_window_a_retry_after_a_lost_puback_is_stored_once(mode: Mode) {
    let (traces, _subject) = retry_after_a_lost_puback(mode, true, vec![1, 2, 3]).await;
    let report = traces.analyze();
    assert_eq!(verdicts(&report), Default::default());
}

async fn without_the_dedup_window_a_retry_after_a_lost_puback_is_stored_twice(mode: Mode) {
    let (traces, subject) = retry_after_a_lost_puback(mode, false, vec![1, 2, 2, 3]).await;
    let report = traces.analyze();
    let mut want = expect("duplicate/produce", &subject, None, [2]);
    want.extend(expect("duplicate/consume", &subject, Some("naive"), [2]));
    assert_eq!(verdicts(&report), want);
}

async fn a_consumer_that_dies_before_acking_gets_the_message_again(mode: Mode) {
    let traces = Traces::in_mode("nats-redeliver", mode);
    let js = connect().await;
    let subject = format!("{}.new", unique("events"));
    let stream = create_stream(&js, &subject, -1).await;
    let publisher = producer(&traces, &js, false);
    for _ in 1..=5 {
        publish_ok(&publisher, &subject).await;
    }

    for (name, idempotent) in [("naive", false), ("idempotent", true)] {
        let consumer = durable(&js, &stream, name, AckPolicy::Explicit).await;
        let group = traced(&traces, name);
        // The idempotent consumer's record of what it processed outlives the crash.
        let mut seen = HashSet::new();
        let mut got = take(&consumer, &group, 3).await;
        assert_eq!(seqs(&got), vec![1, 2, 3]);
        seen.extend([1, 2, 3]);
        let dying = got.pop();
        ack_all(got).await;
        drop(dying); // processed 3, then died before acking: redelivered after ack_wait

        let mut got = take(&consumer, &group, 3).await;
        got.sort_by_key(|m| m.key().map(|k| k.seq));
        assert_eq!(seqs(&got), vec![3, 4, 5]);
        let info = got[0].message().info().expect("ack subject");
        assert_eq!(info.delivered, 2);
        for m in got {
            settle(m, idempotent.then_some(&mut seen)).await;
        }
    }
    js.delete_stream(&stream).await.expect("delete_stream");

    // The first processing of 3 was never settled: one processing, two deliveries of the
    // same stored copy.
    let report = traces.analyze();
    let mut want = expect("redelivered", &subject, Some("naive"), [3]);
    want.extend(expect("redelivered", &subject, Some("idempotent"), [3]));
    assert_eq!(verdicts(&report), want);
}

support::in_both_modes!(
    a_publish_no_stream_captures_is_lost_at_produce_when_the_app_ignores_it,
    a_stream_capped_by_max_msgs_that_discards_old_loses_at_store,
    a_consumer_without_acks_that_dies_before_processing_loses_at_consume,
    with_the_dedup_window_a_retry_after_a_lost_puback_is_stored_once,
    without_the_dedup_window_a_retry_after_a_lost_puback_is_stored_twice,
    a_consumer_that_dies_before_acking_gets_the_message_again,
);
