//! Messages per second through each real client, plain and instrumented, at the client's
//! full speed: produce N messages with the broker's answer awaited (pipelined), then consume
//! and settle all N. Runs alternate plain/traced so that the machine's drift hits both; the
//! median of each is reported with the overhead.
//!
//! `cargo bench -p mqtrace-overhead` (RabbitMQ on 127.0.0.1:5672, NATS on 127.0.0.1:4222;
//! Kafka on librdkafka's mock cluster). `MQTRACE_BENCH_ROUNDS` (default 5) and
//! `MQTRACE_BENCH_MESSAGES` (default 20000) tune it.

use anyhow::Context as _;
use futures::StreamExt;
use futures::future::try_join_all;
use mqtrace_export::Telemetry;
use std::time::{Duration, Instant};

/// Messages in flight at once while producing.
const WINDOW: usize = 1000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The export pipeline a traced run records through: the default batch processor writing
/// OTLP JSON lines to a temporary directory.
fn telemetry(dir: &tempfile::TempDir) -> anyhow::Result<Telemetry> {
    Ok(Telemetry::builder().file(dir.path()).build()?)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

mod kafka {
    use super::*;
    use mqtrace_kafka::{SYSTEM, TracedConsumer, TracedProducer};
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{Consumer as _, StreamConsumer};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    pub async fn run(n: usize, traced: Option<&Telemetry>, round: usize) -> anyhow::Result<f64> {
        let cluster = MockCluster::new(1)?;
        let topic = format!("bench-{round}");
        cluster.create_topic(&topic, 1, 1)?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("linger.ms", "5")
            .create()?;
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "bench")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.offset.store", "false")
            .create()?;
        consumer.subscribe(&[topic.as_str()])?;
        let started = Instant::now();
        match traced {
            None => {
                for chunk in (0..n).collect::<Vec<_>>().chunks(WINDOW) {
                    try_join_all(chunk.iter().map(|_| {
                        let r = FutureRecord::<str, str>::to(&topic).payload("{}");
                        producer.send(r, Duration::from_secs(5))
                    }))
                    .await
                    .map_err(|(e, _)| e)?;
                }
                for _ in 0..n {
                    let m = consumer.recv().await?;
                    consumer.store_offset_from_message(&m)?;
                }
            }
            Some(t) => {
                let tracer = mqtrace::Producer::builder(SYSTEM)
                    .tracer_provider(t.provider())
                    .build();
                let producer = TracedProducer::new(producer, tracer);
                for chunk in (0..n).collect::<Vec<_>>().chunks(WINDOW) {
                    try_join_all(chunk.iter().map(|_| {
                        let r = FutureRecord::<str, str>::to(&topic).payload("{}");
                        producer.send(r, Duration::from_secs(5))
                    }))
                    .await?;
                }
                let group = mqtrace::Consumer::builder(SYSTEM, "bench")
                    .tracer_provider(t.provider())
                    .build();
                let consumer = TracedConsumer::new(consumer, group, false);
                for _ in 0..n {
                    consumer.recv().await?.ack()?;
                }
                let elapsed = started.elapsed();
                std::mem::forget(consumer); // closing an assigned consumer can hang (#509)
                return Ok(n as f64 / elapsed.as_secs_f64());
            }
        }
        let elapsed = started.elapsed();
        std::mem::forget(consumer);
        Ok(n as f64 / elapsed.as_secs_f64())
    }
}

mod rabbitmq {
    use super::*;
    use lapin::options::*;
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    use mqtrace_lapin::{SYSTEM, TracedConsumer, TracedPublisher};

    pub async fn run(n: usize, traced: Option<&Telemetry>, round: usize) -> anyhow::Result<f64> {
        let conn = Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            ConnectionProperties::default(),
        )
        .await
        .context("RabbitMQ on 127.0.0.1:5672 (scripts/services starts it)")?;
        let channel = conn.create_channel().await?;
        channel.confirm_select(Default::default()).await?;
        channel.basic_qos(WINDOW as u16, Default::default()).await?;
        let queue = format!("mqtrace-bench-{}-{round}", std::process::id());
        channel
            .queue_declare(
                queue.as_str().into(),
                Default::default(),
                FieldTable::default(),
            )
            .await?;
        let publish = || {
            channel.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default(),
            )
        };
        let consume = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await?;
        let started = Instant::now();
        match traced {
            None => {
                for _ in 0..n.div_ceil(WINDOW) {
                    let mut confirms = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        confirms.push(publish().await?);
                    }
                    try_join_all(confirms).await?;
                }
                let mut consume = consume;
                for _ in 0..n.div_ceil(WINDOW) * WINDOW {
                    let d = consume.next().await.context("closed")??;
                    d.ack(BasicAckOptions::default()).await?;
                }
            }
            Some(t) => {
                let tracer = mqtrace::Producer::builder(SYSTEM)
                    .tracer_provider(t.provider())
                    .build();
                let publisher = TracedPublisher::new(channel.clone(), tracer);
                for _ in 0..n.div_ceil(WINDOW) {
                    let mut confirms = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        let c = publisher
                            .basic_publish(
                                "".into(),
                                queue.as_str().into(),
                                BasicPublishOptions::default(),
                                b"{}",
                                BasicProperties::default(),
                            )
                            .await?;
                        confirms.push(c.into_future());
                    }
                    try_join_all(confirms).await?;
                }
                let group = mqtrace::Consumer::builder(SYSTEM, queue.as_str())
                    .tracer_provider(t.provider())
                    .build();
                let mut consume = TracedConsumer::new(consume, group);
                for _ in 0..n.div_ceil(WINDOW) * WINDOW {
                    let d = consume.next().await.context("closed")??;
                    d.ack(BasicAckOptions::default()).await?;
                }
            }
        }
        let elapsed = started.elapsed();
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await?;
        conn.close(200, "done".into()).await?;
        Ok((n.div_ceil(WINDOW) * WINDOW) as f64 / elapsed.as_secs_f64())
    }

    use std::future::IntoFuture;
}

mod nats {
    use super::*;
    use async_nats::jetstream::{self, consumer::pull, stream};
    use mqtrace_nats::{SYSTEM, TracedDurable, TracedJetStream};
    use std::future::IntoFuture;

    pub async fn run(n: usize, traced: Option<&Telemetry>, round: usize) -> anyhow::Result<f64> {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .context("NATS on 127.0.0.1:4222 (scripts/services starts it)")?;
        let js = jetstream::new(client);
        let name = format!("MQTRACE_BENCH_{}_{round}", std::process::id());
        let subject = format!("mqtrace-bench.{}.{round}", std::process::id());
        let s = js
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await?;
        let consumer = s
            .create_consumer(pull::Config {
                durable_name: Some("bench".into()),
                ..Default::default()
            })
            .await?;
        let started = Instant::now();
        match traced {
            None => {
                for _ in 0..n.div_ceil(WINDOW) {
                    let mut acks = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        acks.push(
                            js.publish(subject.clone(), "{}".into())
                                .await?
                                .into_future(),
                        );
                    }
                    try_join_all(acks).await?;
                }
                let mut messages = consumer.messages().await?;
                for _ in 0..n.div_ceil(WINDOW) * WINDOW {
                    let m = messages.next().await.context("closed")??;
                    m.ack().await.map_err(anyhow::Error::from_boxed)?;
                }
            }
            Some(t) => {
                let tracer = mqtrace::Producer::builder(SYSTEM)
                    .tracer_provider(t.provider())
                    .build();
                let publisher = TracedJetStream::new(js.clone(), tracer);
                for _ in 0..n.div_ceil(WINDOW) {
                    let mut acks = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        acks.push(
                            publisher
                                .publish(&subject, "{}".into())
                                .await?
                                .into_future(),
                        );
                    }
                    try_join_all(acks).await?;
                }
                let group = TracedDurable::new(
                    mqtrace::Consumer::builder(SYSTEM, "bench")
                        .tracer_provider(t.provider())
                        .build(),
                );
                let mut messages = group.messages(consumer.messages().await?);
                for _ in 0..n.div_ceil(WINDOW) * WINDOW {
                    let m = messages.next().await.context("closed")??;
                    m.ack().await.map_err(anyhow::Error::from_boxed)?;
                }
            }
        }
        let elapsed = started.elapsed();
        js.delete_stream(&name).await?;
        Ok((n.div_ceil(WINDOW) * WINDOW) as f64 / elapsed.as_secs_f64())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds = env_or("MQTRACE_BENCH_ROUNDS", 5);
    let n = env_or("MQTRACE_BENCH_MESSAGES", 20_000);
    // `cargo bench` passes `--bench`; a name filter selects adapters.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("{n} messages per run, {rounds} rounds, plain and traced alternating");
    println!(
        "{:<10} {:>14} {:>14} {:>9}",
        "adapter", "plain msg/s", "traced msg/s", "overhead"
    );
    for name in ["kafka", "rabbitmq", "nats"] {
        if !wanted(name) {
            continue;
        }
        let (mut plain, mut traced) = (Vec::new(), Vec::new());
        for round in 0..rounds * 2 {
            let dir = tempfile::tempdir()?;
            let t = (round % 2 == 1).then(|| telemetry(&dir)).transpose()?;
            let rate = match name {
                "kafka" => kafka::run(n, t.as_ref(), round).await?,
                "rabbitmq" => rabbitmq::run(n, t.as_ref(), round).await?,
                _ => nats::run(n, t.as_ref(), round).await?,
            };
            match t {
                Some(t) => {
                    let stats = t.shutdown()?;
                    anyhow::ensure!(stats.exported >= 4 * n as u64, "spans missing: {stats:?}");
                    traced.push(rate);
                }
                None => plain.push(rate),
            }
        }
        let (p, t) = (median(plain), median(traced));
        println!(
            "{name:<10} {p:>14.0} {t:>14.0} {:>8.1}%",
            (1.0 - t / p) * 100.0
        );
    }
    Ok(())
}
