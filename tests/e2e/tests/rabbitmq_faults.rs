//! Real faults on the RabbitMQ at 127.0.0.1:5672, traced by `mqtrace-lapin` and named by the
//! analyzer: exactly the injected messages, at the injected stage, and nothing more.
//!
//! Each test declares its own exchanges and queues under unique names (with `x-expires` as a
//! safety net) and deletes them, so the tests run in parallel. A broker that is not up fails
//! the test: `scripts/test` starts it first.

mod support;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use mqtrace::names::metric;
use mqtrace::{Consumer, Mode, Producer};
use mqtrace_lapin::{SYSTEM, TracedConsumer, TracedDelivery, TracedPublisher, TracedQueue};
use std::collections::{BTreeSet, HashSet};
use support::rabbit::{confirming_channel, connect};
use support::{BROKER_TIMEOUT, Traces, count, expect, unique, verdicts};
use tokio::time::timeout;

/// Declares a queue that the broker removes a minute after its last use, should the test
/// die before deleting it; `extra` adds arguments (e.g. a length cap).
async fn declare_queue(channel: &Channel, name: &str, extra: &[(&str, AMQPValue)]) {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    for (k, v) in extra {
        args.insert((*k).into(), v.clone());
    }
    channel
        .queue_declare(name.into(), QueueDeclareOptions::default(), args)
        .await
        .expect("queue_declare");
}

/// Declares an exchange the broker removes once its last queue is unbound.
async fn declare_exchange(channel: &Channel, name: &str, kind: ExchangeKind) {
    let options = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    channel
        .exchange_declare(name.into(), kind, options, FieldTable::default())
        .await
        .expect("exchange_declare");
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, routing_key: &str) {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("queue_bind");
}

async fn delete_queues(channel: &Channel, names: &[&str]) {
    for name in names {
        channel
            .queue_delete((*name).into(), QueueDeleteOptions::default())
            .await
            .expect("queue_delete");
    }
}

fn producer(traces: &Traces, id: &str) -> Producer {
    Producer::builder(SYSTEM)
        .producer_id(id)
        .tracer_provider(traces.provider())
        .mode(traces.mode())
        .build()
}

fn queue(traces: &Traces, name: &str) -> TracedQueue {
    queue_with_window(traces, name, mqtrace::DEFAULT_REORDER_WINDOW)
}

/// [`queue`], counting its live signals with reorder window `window`.
fn queue_with_window(traces: &Traces, name: &str, window: u64) -> TracedQueue {
    TracedQueue::new(
        name,
        Consumer::builder(SYSTEM, name)
            .tracer_provider(traces.provider())
            .meter_provider(traces.meter_provider())
            .reorder_window(window)
            .mode(traces.mode())
            .build(),
    )
}

/// Publishes one new message and waits for its confirm, which must be an ack.
async fn publish_ok(publisher: &TracedPublisher, exchange: &str, routing_key: &str) {
    let confirm = publisher
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    let confirmation = timeout(BROKER_TIMEOUT, confirm)
        .await
        .expect("confirm in time")
        .expect("confirm");
    assert!(confirmation.is_ack());
}

/// Takes `n` deliveries from `consumer`.
async fn take(consumer: &mut TracedConsumer, n: usize) -> Vec<TracedDelivery> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = timeout(BROKER_TIMEOUT, consumer.next())
            .await
            .expect("a delivery in time")
            .expect("consumer open")
            .expect("delivery");
        out.push(next);
    }
    out
}

async fn consume(channel: &Channel, queue: TracedQueue, no_ack: bool) -> TracedConsumer {
    let name = queue.tracer().group().to_owned();
    let inner = channel
        .basic_consume(
            name.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("basic_consume");
    let tracer = queue.tracer().clone();
    TracedConsumer::new(inner, tracer).auto_ack(no_ack)
}

fn seqs(deliveries: &[TracedDelivery]) -> Vec<u64> {
    deliveries
        .iter()
        .map(|d| d.key().expect("numbered").seq)
        .collect()
}

async fn publishes_the_broker_returns_or_refuses_are_lost_at_produce_when_the_app_ignores_them(
    mode: Mode,
) {
    let traces = Traces::in_mode("rabbitmq-produce", mode);
    let conn = connect().await;
    let admin = conn.create_channel().await.expect("channel");
    let (exchange, q, missing) = (unique("orders"), unique("shipping"), unique("no-such"));
    declare_exchange(&admin, &exchange, ExchangeKind::Direct).await;
    declare_queue(&admin, &q, &[]).await;
    bind(&admin, &q, &exchange, "orders").await;

    // Seqs 3 and 6 go out with a mistyped routing key and `mandatory`: the broker returns
    // them. The app ignores what the confirm says.
    let publisher = TracedPublisher::new(
        confirming_channel(&conn).await,
        producer(&traces, "orders-api"),
    );
    for seq in 1..=8u64 {
        let key = if seq == 3 || seq == 6 {
            "ordrs"
        } else {
            "orders"
        };
        let confirm = publisher
            .basic_publish(
                exchange.as_str().into(),
                key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                b"{}",
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        let _ignored = confirm.wait_for(BROKER_TIMEOUT).await;
    }
    // A publish to an exchange that does not exist: the broker closes the channel.
    let doomed = TracedPublisher::new(
        confirming_channel(&conn).await,
        producer(&traces, "orders-api"),
    );
    if let Ok(confirm) = doomed
        .basic_publish(
            missing.as_str().into(),
            "orders".into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await
    {
        let _ignored = confirm.wait_for(BROKER_TIMEOUT).await;
    }

    let mut consumer = consume(&admin, queue(&traces, &q), false).await;
    let got = take(&mut consumer, 6).await;
    assert_eq!(seqs(&got), vec![1, 2, 4, 5, 7, 8]);
    for d in got {
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
    delete_queues(&admin, &[&q]).await;

    let report = traces.analyze();
    let mut want = expect("lost/produce", &exchange, None, [3, 6]);
    want.extend(expect("lost/produce", &missing, None, [1]));
    assert_eq!(verdicts(&report), want);
}

async fn a_capped_queue_that_drops_its_head_loses_at_store(mode: Mode) {
    let traces = Traces::in_mode("rabbitmq-store", mode);
    let conn = connect().await;
    let channel = confirming_channel(&conn).await;
    let q = unique("capped");
    declare_queue(
        &channel,
        &q,
        &[
            ("x-max-length", AMQPValue::LongInt(5)),
            ("x-overflow", AMQPValue::LongString("drop-head".into())),
        ],
    )
    .await;
    let publisher = TracedPublisher::new(channel.clone(), producer(&traces, "orders-api"));
    // The live signals must see 4..=18 missing by the last delivery (23 − 18 = 5 > 4).
    let shipping = queue_with_window(&traces, &q, 4);
    let get = |queue: TracedQueue, channel: Channel| async move {
        let mut got = Vec::new();
        while let Some(d) = queue
            .basic_get(&channel, BasicGetOptions::default())
            .await
            .expect("basic_get")
        {
            got.push(d);
        }
        got
    };

    // The consumer keeps up with 1..=3, then falls behind while 4..=23 arrive: every
    // publish is confirmed, but the queue keeps only the last five.
    for _ in 1..=3 {
        publish_ok(&publisher, "", &q).await;
    }
    let first = get(shipping.clone(), channel.clone()).await;
    assert_eq!(seqs(&first), vec![1, 2, 3]);
    for d in first {
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
    for _ in 4..=23 {
        publish_ok(&publisher, "", &q).await;
    }
    let rest = get(shipping, channel.clone()).await;
    assert_eq!(seqs(&rest), (19..=23).collect::<Vec<_>>());
    for d in rest {
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
    delete_queues(&channel, &[&q]).await;

    // SPEC §7: the consumer counted the holes as they appeared, and nothing else (each
    // message was delivered once).
    let live = traces.live(&q);
    let report = traces.analyze();
    let dropped = 4..=18u64;
    assert_eq!(
        verdicts(&report),
        expect("lost/store", &q, Some(&q), dropped.clone())
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

async fn an_auto_ack_consumer_that_dies_before_processing_loses_at_consume(mode: Mode) {
    let traces = Traces::in_mode("rabbitmq-consume", mode);
    let conn = connect().await;
    let channel = confirming_channel(&conn).await;
    let q = unique("auto-ack");
    declare_queue(&channel, &q, &[]).await;
    let publisher = TracedPublisher::new(channel.clone(), producer(&traces, "orders-api"));
    for _ in 1..=5 {
        publish_ok(&publisher, "", &q).await;
    }

    // Auto-ack: the broker forgets each message as it sends it. The consumer processes four
    // and dies on the fifth before processing it.
    let doomed = conn.create_channel().await.expect("channel");
    let mut consumer = consume(&doomed, queue(&traces, &q), true).await;
    let mut got = take(&mut consumer, 5).await;
    assert_eq!(seqs(&got), vec![1, 2, 3, 4, 5]);
    let dying = got.pop();
    for d in got {
        d.ack(BasicAckOptions::default()).await.expect("recorded");
    }
    drop(dying);
    drop(consumer);
    doomed.close(200, "crash".into()).await.expect("close");

    // A new instance takes over and processes what comes next.
    for _ in 6..=8 {
        publish_ok(&publisher, "", &q).await;
    }
    let mut consumer = consume(&channel, queue(&traces, &q), true).await;
    let got = take(&mut consumer, 3).await;
    assert_eq!(seqs(&got), vec![6, 7, 8]);
    for d in got {
        d.ack(BasicAckOptions::default()).await.expect("recorded");
    }
    delete_queues(&channel, &[&q]).await;

    let report = traces.analyze();
    assert_eq!(verdicts(&report), expect("lost/consume", &q, Some(&q), [5]));
}

/// A fanout exchange into a naive and an idempotent consumer's queues.
struct Fanout {
    exchange: String,
    naive: String,
    idempotent: String,
}

impl Fanout {
    async fn declare(channel: &Channel) -> Self {
        let f = Fanout {
            exchange: unique("events"),
            naive: unique("naive"),
            idempotent: unique("idempotent"),
        };
        declare_exchange(channel, &f.exchange, ExchangeKind::Fanout).await;
        for q in [&f.naive, &f.idempotent] {
            declare_queue(channel, q, &[]).await;
            bind(channel, q, &f.exchange, "").await;
        }
        f
    }
}

/// Settles `d` as a naive consumer (always processes) or an idempotent one (skips a key it
/// has processed before).
async fn settle(d: TracedDelivery, seen: Option<&mut HashSet<u64>>) {
    if support::processed_before(seen, d.key().expect("numbered").seq) {
        d.skip_duplicate(BasicAckOptions::default())
            .await
            .expect("ack");
    } else {
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
}

async fn a_retry_after_a_lost_confirm_is_stored_twice_and_processed_twice_unless_idempotent(
    mode: Mode,
) {
    let traces = Traces::in_mode("rabbitmq-retry", mode);
    let conn = connect().await;
    let channel = confirming_channel(&conn).await;
    let f = Fanout::declare(&channel).await;
    let publisher = TracedPublisher::new(channel.clone(), producer(&traces, "events-api"));

    // Seq 2's first confirm is lost: the app's deadline passes before it comes (the broker
    // stored the message all the same), and it sends again.
    for seq in 1..=3u64 {
        let mut message = publisher.message(&f.exchange, "");
        loop {
            let confirm = publisher
                .publish_attempt(
                    &mut message,
                    f.exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    b"{}",
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            if seq == 2 && message.attempts() == 1 {
                confirm.give_up();
                continue;
            }
            let c = confirm.await.expect("confirm");
            assert!(c.is_ack());
            break;
        }
    }

    for (q, idempotent) in [(&f.naive, false), (&f.idempotent, true)] {
        let mut consumer = consume(&channel, queue(&traces, q), false).await;
        let got = take(&mut consumer, 4).await;
        assert_eq!(seqs(&got), vec![1, 2, 2, 3], "both copies of 2 reach {q}");
        let mut seen = HashSet::new();
        for d in got {
            settle(d, idempotent.then_some(&mut seen)).await;
        }
    }
    delete_queues(&channel, &[&f.naive, &f.idempotent]).await;

    let report = traces.analyze();
    let mut want = expect("duplicate/produce", &f.exchange, None, [2]);
    want.extend(expect(
        "duplicate/consume",
        &f.exchange,
        Some(&f.naive),
        [2],
    ));
    assert_eq!(verdicts(&report), want);
}

async fn a_consumer_that_dies_before_acking_gets_the_message_again(mode: Mode) {
    let traces = Traces::in_mode("rabbitmq-redeliver", mode);
    let conn = connect().await;
    let channel = confirming_channel(&conn).await;
    let f = Fanout::declare(&channel).await;
    let publisher = TracedPublisher::new(channel.clone(), producer(&traces, "events-api"));
    for _ in 1..=5 {
        publish_ok(&publisher, &f.exchange, "").await;
    }

    for (q, idempotent) in [(&f.naive, false), (&f.idempotent, true)] {
        // The idempotent consumer's record of what it processed outlives the crash.
        let mut seen = HashSet::new();
        let doomed = conn.create_channel().await.expect("channel");
        doomed
            .basic_qos(1, BasicQosOptions::default())
            .await
            .expect("qos");
        let mut consumer = consume(&doomed, queue(&traces, q), false).await;
        for want in 1..=3u64 {
            let d = take(&mut consumer, 1).await.remove(0);
            assert_eq!(d.key().map(|k| k.seq), Some(want));
            seen.insert(want);
            if want < 3 {
                d.ack(BasicAckOptions::default()).await.expect("ack");
            } else {
                // Processed 3, then died before acking it: the broker requeues it.
                drop(d);
            }
        }
        drop(consumer);
        doomed.close(200, "crash".into()).await.expect("close");

        let mut consumer = consume(&channel, queue(&traces, q), false).await;
        let got = take(&mut consumer, 3).await;
        assert_eq!(seqs(&got), vec![3, 4, 5]);
        assert!(got[0].delivery().redelivered);
        for d in got {
            settle(d, idempotent.then_some(&mut seen)).await;
        }
    }
    delete_queues(&channel, &[&f.naive, &f.idempotent]).await;

    // The first processing of 3 was never settled, so the analyzer sees one processing and
    // two deliveries of the same copy: redelivered, in both groups.
    let report = traces.analyze();
    let mut want: BTreeSet<_> = expect("redelivered", &f.exchange, Some(&f.naive), [3]);
    want.extend(expect("redelivered", &f.exchange, Some(&f.idempotent), [3]));
    assert_eq!(verdicts(&report), want);
}

support::in_both_modes!(
    publishes_the_broker_returns_or_refuses_are_lost_at_produce_when_the_app_ignores_them,
    a_capped_queue_that_drops_its_head_loses_at_store,
    an_auto_ack_consumer_that_dies_before_processing_loses_at_consume,
    a_retry_after_a_lost_confirm_is_stored_twice_and_processed_twice_unless_idempotent,
    a_consumer_that_dies_before_acking_gets_the_message_again,
);
