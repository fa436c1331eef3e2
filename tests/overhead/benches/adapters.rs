//! Messages per second through each real client, plain and instrumented, at the client's
//! full speed: produce N messages with the broker's answers awaited (in windows of 1000),
//! then consume and settle all N. Each round runs every mode once, in turn, so that the
//! machine's drift hits all of them; the median of each mode is reported.
//!
//! The modes separate what carrying headers costs (any propagation pays it: the client
//! encodes them, the broker parses and stores them) from what mqtrace's spans and export
//! cost: plain, headers (the bare client sending headers of mqtrace's sizes), unsampled (the
//! adapter with a sampler that keeps nothing), discard (spans through the batch processor
//! into nothing), files (spans written as OTLP JSON lines: the full cost).
//!
//! `cargo bench -p mqtrace-overhead` (RabbitMQ on 127.0.0.1:5672, NATS on 127.0.0.1:4222;
//! Kafka on librdkafka's mock cluster). `MQTRACE_BENCH_ROUNDS` (default 5) and
//! `MQTRACE_BENCH_MESSAGES` (default 20000) tune it.

use anyhow::Context as _;
use futures::StreamExt;
use futures::future::try_join_all;
use mqtrace_export::{BatchConfig, CountingBatchProcessor, Driver, Telemetry};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
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

/// Headers of the sizes mqtrace writes, for the uninstrumented client's "headers" runs.
const HEADERS: [(&str, &str); 5] = [
    (
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    ("mqtrace-producer-id", "adapters-12345-19a2b3c4d5e"),
    ("mqtrace-stream", "mqtrace-bench.12345.12"),
    ("mqtrace-seq", "12345"),
    (
        "mqtrace-message-id",
        "adapters-12345-19a2b3c4d5e:mqtrace-bench.12345.12:12345",
    ),
];

/// An exporter that drops every batch: what the spans cost without the encoding and I/O.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(std::hint::black_box(batch));
        Ok(())
    }
}

/// How a run records.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The bare client.
    Plain,
    /// The bare client sending headers of the sizes mqtrace writes: what carrying them costs
    /// the client and the broker, whoever writes them.
    Headers,
    /// The adapter with a sampler that records nothing: headers, numbering and attributes,
    /// but no span kept (what the broker and the client pay for the headers).
    Unsampled,
    /// The adapter, spans through the batch processor into an exporter that discards.
    Discard,
    /// The adapter, spans written as OTLP JSON lines: the full cost.
    File,
}

/// `MQTRACE_BENCH_ONLY=unsampled` (plain, unsampled, discard, file) runs one mode, for
/// profiling it.
fn skip_mode(mode: Mode) -> bool {
    let name = match mode {
        Mode::Plain => "plain",
        Mode::Headers => "headers",
        Mode::Unsampled => "unsampled",
        Mode::Discard => "discard",
        Mode::File => "file",
    };
    std::env::var("MQTRACE_BENCH_ONLY").is_ok_and(|only| only != name)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

mod kafka {
    use super::*;
    use mqtrace_kafka::{SYSTEM, TracedConsumer, TracedProducer};
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{Consumer as _, StreamConsumer};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    pub async fn run(
        n: usize,
        traced: Option<&SdkTracerProvider>,
        headers: bool,
        round: usize,
    ) -> anyhow::Result<f64> {
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
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)?;
        consumer.assign(&tpl)?;
        let started = Instant::now();
        match traced {
            None => {
                for chunk in (0..n).collect::<Vec<_>>().chunks(WINDOW) {
                    try_join_all(chunk.iter().map(|_| {
                        let mut r = FutureRecord::<str, str>::to(&topic).payload("{}");
                        if headers {
                            let mut h = rdkafka::message::OwnedHeaders::new_with_capacity(5);
                            for (key, value) in HEADERS {
                                h = h.insert(rdkafka::message::Header {
                                    key,
                                    value: Some(value),
                                });
                            }
                            r = r.headers(h);
                        }
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
                    .tracer_provider(t)
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
                    .tracer_provider(t)
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

    pub async fn run(
        n: usize,
        traced: Option<&SdkTracerProvider>,
        headers: bool,
        round: usize,
    ) -> anyhow::Result<f64> {
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
            let mut props = BasicProperties::default();
            if headers {
                let mut table = FieldTable::default();
                for (key, value) in HEADERS {
                    table.insert(
                        key.into(),
                        lapin::types::AMQPValue::LongString(value.into()),
                    );
                }
                props = props.with_headers(table);
            }
            channel.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                b"{}",
                props,
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
                    .tracer_provider(t)
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
                    .tracer_provider(t)
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

    pub async fn run(
        n: usize,
        traced: Option<&SdkTracerProvider>,
        headers: bool,
        round: usize,
    ) -> anyhow::Result<f64> {
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
                        let ack = if headers {
                            let mut h = async_nats::HeaderMap::new();
                            for (key, value) in HEADERS {
                                h.insert(key, value);
                            }
                            js.publish_with_headers(subject.clone(), h, "{}".into())
                                .await?
                        } else {
                            js.publish(subject.clone(), "{}".into()).await?
                        };
                        acks.push(ack.into_future());
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
                    .tracer_provider(t)
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
                        .tracer_provider(t)
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
    println!(
        "{n} messages per run, median of {rounds} rounds; msg/s, and % fewer than plain:\n\
         plain: the bare client; headers: the bare client sending headers of mqtrace's sizes;\n\
         unsampled: the adapter, spans not sampled; discard: spans exported to nothing;\n\
         files: spans written as OTLP JSON lines (the full cost); last column: files vs headers"
    );
    println!(
        "{:<9} {:>9} {:>9} {:>6} {:>9} {:>6} {:>9} {:>6} {:>9} {:>6} {:>10}",
        "adapter",
        "plain",
        "headers",
        "",
        "unsampled",
        "",
        "discard",
        "",
        "files",
        "",
        "vs headers"
    );
    for name in ["kafka", "rabbitmq", "nats"] {
        if !wanted(name) {
            continue;
        }
        let modes = [
            Mode::Plain,
            Mode::Headers,
            Mode::Unsampled,
            Mode::Discard,
            Mode::File,
        ];
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        for round in 0..rounds {
            for (i, mode) in modes.iter().enumerate() {
                let dir = tempfile::tempdir()?;
                let (provider, telemetry) = match mode {
                    Mode::Plain | Mode::Headers => (None, None),
                    Mode::Unsampled => {
                        let p = SdkTracerProvider::builder()
                            .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
                            .build();
                        (Some(p), None)
                    }
                    Mode::Discard => {
                        let processor = CountingBatchProcessor::new(
                            Discard,
                            BatchConfig::default(),
                            Driver::Thread,
                        )?;
                        let p = SdkTracerProvider::builder()
                            .with_span_processor(processor)
                            .build();
                        (Some(p), None)
                    }
                    Mode::File => {
                        let t = telemetry(&dir)?;
                        (Some(t.provider().clone()), Some(t))
                    }
                };
                if skip_mode(*mode) {
                    continue;
                }
                let run_id = round * modes.len() + i;
                let with_headers = *mode == Mode::Headers;
                let run = async {
                    match name {
                        "kafka" => kafka::run(n, provider.as_ref(), with_headers, run_id).await,
                        "rabbitmq" => {
                            rabbitmq::run(n, provider.as_ref(), with_headers, run_id).await
                        }
                        _ => nats::run(n, provider.as_ref(), with_headers, run_id).await,
                    }
                };
                let rate = tokio::time::timeout(Duration::from_secs(300), run)
                    .await
                    .with_context(|| format!("{name} run {run_id} took over 5 minutes"))??;
                if let Some(t) = telemetry.filter(|_| *mode == Mode::File) {
                    let stats = t.shutdown()?;
                    anyhow::ensure!(stats.exported >= 4 * n as u64, "spans missing: {stats:?}");
                }
                rates[i].push(rate);
            }
        }
        let [p, h, u, d, f] = [0, 1, 2, 3, 4].map(|i| median(std::mem::take(&mut rates[i])));
        let pct = |x: f64| (1.0 - x / p) * 100.0;
        println!(
            "{name:<9} {p:>9.0} {h:>9.0} {:>5.1}% {u:>9.0} {:>5.1}% {d:>9.0} {:>5.1}% {f:>9.0} {:>5.1}% {:>9.1}%",
            pct(h),
            pct(u),
            pct(d),
            pct(f),
            (1.0 - f / h) * 100.0
        );
    }
    Ok(())
}
