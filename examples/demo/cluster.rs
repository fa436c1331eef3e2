//! The Kafka side of the demo: librdkafka's in-process mock cluster and the clients.

use anyhow::Context as _;
use mqtrace_kafka::{TracedConsumer, TracedProducer};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

pub const TOPIC: &str = "orders";
pub const GROUP: &str = "shipping";
pub const BROKER: i32 = 1;

pub type Cluster = MockCluster<'static, DefaultProducerContext>;

pub fn cluster() -> anyhow::Result<Cluster> {
    let cluster = MockCluster::new(1).context("starting the mock cluster")?;
    cluster.create_topic(TOPIC, 1, 1)?;
    Ok(cluster)
}

/// A producer with retries off and `acks=all`: a refused batch fails at once, and a broker
/// that answers later than `socket.timeout.ms` makes the send fail as timed out.
pub fn producer_config(cluster: &Cluster) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", cluster.bootstrap_servers())
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("message.send.max.retries", "0")
        .set("linger.ms", "5")
        .set("socket.timeout.ms", "500")
        .set("message.timeout.ms", "3000");
    c
}

/// How a consumer instance commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commits {
    /// Offsets stored when the app acks (after processing), auto-committed: at-least-once.
    AfterProcessing,
    /// Offsets stored on receipt and auto-committed: a crash mid-processing loses messages.
    OnReceipt,
    /// Offsets stored on ack, committed by the app every so often: a crash redelivers.
    Manually,
}

pub fn consumer(
    cluster: &Cluster,
    telemetry: &mqtrace_export::Telemetry,
    mode: mqtrace::Mode,
    consumer_id: &str,
    commits: Commits,
) -> anyhow::Result<TracedConsumer> {
    let auto_store = commits == Commits::OnReceipt;
    let inner: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", GROUP)
        .set("client.id", consumer_id)
        .set("auto.offset.reset", "latest")
        .set(
            "enable.auto.commit",
            if commits == Commits::Manually {
                "false"
            } else {
                "true"
            },
        )
        .set("auto.commit.interval.ms", "100")
        .set(
            "enable.auto.offset.store",
            if auto_store { "true" } else { "false" },
        )
        // A failed fetch is retried (or the offset reset) after this long.
        .set("fetch.error.backoff.ms", "10")
        // Short broker long-polls, so that a paused-and-resumed consumer fetches at once.
        .set("fetch.wait.max.ms", "10")
        .create()
        .context("creating a consumer")?;
    // Assigned, not subscribed: one instance at a time, no rebalance timing in the demo.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Stored)?;
    inner.assign(&tpl)?;
    let tracer = mqtrace::Consumer::builder(mqtrace_kafka::SYSTEM, GROUP)
        .consumer_id(consumer_id)
        .tracer_provider(telemetry.provider())
        .mode(mode)
        .build();
    Ok(TracedConsumer::new(inner, tracer, auto_store))
}

/// Commits offset 0 for the group, so that its first consumer starts at the beginning even
/// with `auto.offset.reset=latest`.
pub fn start_group_at_beginning(cluster: &Cluster) -> anyhow::Result<()> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", GROUP)
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(0))?;
    c.assign(&tpl)?;
    c.commit(&tpl, CommitMode::Sync)
        .context("committing the group's start offset")?;
    Ok(())
}

/// Sends `count` new messages concurrently; returns each one's seq and outcome. The
/// message is returned too, so that the app can retry it with the same seq.
pub async fn send_new(
    producer: &TracedProducer,
    count: usize,
) -> Vec<(mqtrace::OutgoingMessage, Result<(), String>)> {
    let sends = (0..count).map(|_| {
        let message = producer.message(TOPIC);
        resend(producer, message)
    });
    futures::future::join_all(sends).await
}

/// One more attempt of `message`.
pub async fn resend(
    producer: &TracedProducer,
    mut message: mqtrace::OutgoingMessage,
) -> (mqtrace::OutgoingMessage, Result<(), String>) {
    let payload = format!("{{\"order\":{}}}", message.key().seq);
    let record = FutureRecord::<str, str>::to(TOPIC)
        .payload(&payload)
        .partition(0);
    let result = producer
        .send_attempt(&mut message, record, Duration::from_secs(5))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    (message, result)
}
