//! Messages per second through each real client, plain and instrumented, at the client's
//! full speed: produce N messages with the broker's answers awaited (in windows of 1000),
//! then consume and settle all N. Each round runs every mode once, in turn (each round
//! starting one mode later, and every run's files synced before the next starts), so that
//! the machine's drift hits all of them; the median of each mode is reported, with the
//! telemetry each mode wrote per message.
//!
//! The modes separate what carrying headers costs (any propagation pays it: the client
//! encodes them, the broker parses and stores them) from what mqtrace's spans, ledgers and
//! export cost:
//!
//! - `plain`: the bare client, no headers.
//! - `headers1`, `headers2`, `headers5`: the bare client carrying 1 (the compact `mqtrace`
//!   header), 2 (`traceparent` and the compact one: full mode's headers) or 5 (`traceparent`
//!   and the four `mqtrace-*` headers of `HeaderForm::Five`) headers of the sizes mqtrace writes: what carrying
//!   them costs the client and the broker, whoever writes them.
//! - `off`: the adapter in `Mode::Off` (numbers messages, records nothing, writes no header).
//! - `unsampled`: the adapter in full mode with a sampler that keeps nothing: headers,
//!   numbering and attributes, but no span kept.
//! - `discard`: the adapter in full mode, spans through the batch processor into an exporter
//!   that drops them (what the spans cost without the encoding and I/O).
//! - `file`: the adapter in full mode, spans written as OTLP JSON lines: full mode's cost.
//! - `file5`: the same with the five headers (`HeaderForm::Five`, full mode's default until
//!   2026-12-05): what the compact header saves full mode.
//! - `ledger`: the adapter in ledger mode but writing the five headers (`HeaderForm::Five`),
//!   ledgers written as OTLP JSON lines: what the ledgers save, headers aside.
//! - `ledger+compact`: the adapter in ledger mode with its default compact header, written
//!   to files: ledger mode's cost.
//!
//! Every adapter mode sets its `mqtrace::Mode` explicitly, so `MQTRACE_MODE` in the
//! environment changes nothing. Telemetry bytes per message are the bytes of the files a
//! run wrote (everything exported first), over the run's messages; headers are not
//! telemetry (they are in the msgs/s of the `headers*` modes). Modes that write no files
//! report 0, `discard` reports none (its spans are encoded by nobody).
//!
//! The targets checked in the output: ledger mode (`ledger+compact`) at most 5 % fewer
//! msgs/s than plain for Kafka and RabbitMQ, than `headers1` for NATS (whose client takes a
//! slower path for any message with headers), and at most 10 bytes of telemetry per
//! ordinary message.
//!
//! `cargo bench --workspace --bench adapters --locked` (RabbitMQ on 127.0.0.1:5672, NATS on
//! 127.0.0.1:4222; Kafka on librdkafka's mock cluster); a name after `--` (`kafka`,
//! `rabbitmq`, `nats`) selects clients. `MQTRACE_BENCH_ROUNDS` (default 5) and
//! `MQTRACE_BENCH_MESSAGES` (default 20000) tune it; `MQTRACE_BENCH_ONLY=file,ledger` runs
//! only the modes named (for profiling one). The medians are also written to
//! `target/overhead.json`.

use anyhow::Context as _;
use futures::StreamExt;
use futures::future::try_join_all;
use mqtrace::HeaderForm;
use mqtrace_export::{BatchConfig, CountingBatchProcessor, Driver, Telemetry};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Messages in flight at once while producing.
const WINDOW: usize = 1000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The export pipeline a run that writes files records through: the default batch processor
/// writing OTLP JSON lines to a temporary directory.
fn telemetry(dir: &tempfile::TempDir) -> anyhow::Result<Telemetry> {
    Ok(Telemetry::builder().file(dir.path()).build()?)
}

/// The adapters' producer id: `default_producer_id`'s shape (`{service}-{pid}-{ms hex}`)
/// with a short service name, so that the adapters' headers have the sizes of the bare
/// client's below (the default would take the bench executable's name, `adapters-{hash}`,
/// 17 bytes longer than a typical service name).
fn producer_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        format!("adapters-{}-{started:x}", std::process::id())
    })
}

/// A header the bare client sends: name and value.
type Header = (&'static str, &'static str);

const TRACEPARENT: Header = (
    "traceparent",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
);

/// The compact header as the core writes it: `1;{producer_id};{stream};{seq};{attempt}`.
const COMPACT: Header = (
    "mqtrace",
    "1;adapters-12345-19a2b3c4d5e;mqtrace-bench.12345.12;12345;1",
);

/// Ledger mode's one header.
const HEADERS1: [Header; 1] = [COMPACT];

/// Ledger mode's header with `traceparent`, as a message kept by a sampler carries them.
const HEADERS2: [Header; 2] = [TRACEPARENT, COMPACT];

/// Full mode's five headers.
const HEADERS5: [Header; 5] = [
    TRACEPARENT,
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

/// How a run sends and records (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The bare client, no headers.
    Plain,
    /// The bare client carrying the compact `mqtrace` header.
    Headers1,
    /// The bare client carrying `traceparent` and the compact header.
    Headers2,
    /// The bare client carrying full mode's five headers.
    Headers5,
    /// The adapter in `Mode::Off`.
    Off,
    /// The adapter in full mode, nothing sampled.
    Unsampled,
    /// The adapter in full mode, spans exported to nothing.
    Discard,
    /// The adapter in full mode, spans written to files.
    File,
    /// Full mode with the five headers (its default until 2026-12-05), written to files.
    File5,
    /// The adapter in ledger mode with the five headers, written to files.
    Ledger5,
    /// The adapter in ledger mode with the compact header (its default), written to files.
    LedgerCompact,
}

impl Mode {
    /// Every mode, in the order a round runs them and the tables show them.
    const ALL: [Mode; 11] = [
        Mode::Plain,
        Mode::Headers1,
        Mode::Headers2,
        Mode::Headers5,
        Mode::Off,
        Mode::Unsampled,
        Mode::Discard,
        Mode::File,
        Mode::File5,
        Mode::Ledger5,
        Mode::LedgerCompact,
    ];

    /// The name in the tables, the JSON and `MQTRACE_BENCH_ONLY`.
    fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Headers1 => "headers1",
            Mode::Headers2 => "headers2",
            Mode::Headers5 => "headers5",
            Mode::Off => "off",
            Mode::Unsampled => "unsampled",
            Mode::Discard => "discard",
            Mode::File => "file",
            Mode::File5 => "file5",
            Mode::Ledger5 => "ledger",
            Mode::LedgerCompact => "ledger+compact",
        }
    }

    /// The adapter's mode in ledger mode.
    fn is_ledger(self) -> bool {
        matches!(self, Mode::Ledger5 | Mode::LedgerCompact)
    }

    /// The adapter's mode in full mode.
    fn is_full(self) -> bool {
        matches!(
            self,
            Mode::Unsampled | Mode::Discard | Mode::File | Mode::File5
        )
    }

    /// The tracer provider a run records through, and the pipeline owning it when the run
    /// writes files (`None, None`: the bare client, or off mode, which records nothing).
    fn pipeline(
        self,
        dir: &tempfile::TempDir,
    ) -> anyhow::Result<(Option<SdkTracerProvider>, Option<Telemetry>)> {
        Ok(match self {
            Mode::Plain | Mode::Headers1 | Mode::Headers2 | Mode::Headers5 | Mode::Off => {
                (None, None)
            }
            Mode::Unsampled => {
                let p = SdkTracerProvider::builder()
                    .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
                    .build();
                (Some(p), None)
            }
            Mode::Discard => {
                let processor =
                    CountingBatchProcessor::new(Discard, BatchConfig::default(), Driver::Thread)?;
                let p = SdkTracerProvider::builder()
                    .with_span_processor(processor)
                    .build();
                (Some(p), None)
            }
            Mode::File | Mode::File5 | Mode::Ledger5 | Mode::LedgerCompact => {
                let t = telemetry(dir)?;
                (Some(t.provider().clone()), Some(t))
            }
        })
    }

    /// What the run sends through: the bare client with this mode's headers, or the adapter
    /// recording through `provider`.
    fn client(self, provider: Option<&SdkTracerProvider>) -> Client<'_> {
        let traced = |mode, header_form| {
            Client::Traced(Instrument {
                provider,
                mode,
                header_form,
            })
        };
        match self {
            Mode::Plain => Client::Bare(&[]),
            Mode::Headers1 => Client::Bare(&HEADERS1),
            Mode::Headers2 => Client::Bare(&HEADERS2),
            Mode::Headers5 => Client::Bare(&HEADERS5),
            Mode::Off => traced(mqtrace::Mode::Off, None),
            // Explicit, so that `MQTRACE_MODE` in the environment does not change them.
            Mode::Unsampled | Mode::Discard | Mode::File => traced(mqtrace::Mode::Full, None),
            Mode::File5 => traced(mqtrace::Mode::Full, Some(HeaderForm::Five)),
            Mode::Ledger5 => traced(mqtrace::Mode::Ledger, Some(HeaderForm::Five)),
            Mode::LedgerCompact => traced(mqtrace::Mode::Ledger, Some(HeaderForm::Compact)),
        }
    }
}

/// `MQTRACE_BENCH_ONLY=unsampled` (a comma-separated list of labels) runs only those modes,
/// for profiling them.
fn skip_mode(mode: Mode) -> bool {
    std::env::var("MQTRACE_BENCH_ONLY")
        .is_ok_and(|only| !only.split(',').any(|o| o.trim() == mode.label()))
}

/// What one run sends through.
#[derive(Clone, Copy)]
enum Client<'a> {
    /// The bare client, sending these headers with every message (none: no header map).
    Bare(&'static [Header]),
    /// The client wrapped by its mqtrace adapter.
    Traced(Instrument<'a>),
}

/// How the adapter's mqtrace producer and consumer are built.
#[derive(Clone, Copy)]
struct Instrument<'a> {
    /// `None`: the global provider (none is installed: off mode records nothing anyway).
    provider: Option<&'a SdkTracerProvider>,
    mode: mqtrace::Mode,
    /// `None`: the mode's default.
    header_form: Option<HeaderForm>,
}

impl Instrument<'_> {
    fn producer(&self, system: &str) -> mqtrace::Producer {
        let mut b = mqtrace::Producer::builder(system)
            .mode(self.mode)
            .producer_id(producer_id());
        if let Some(form) = self.header_form {
            b = b.header_form(form);
        }
        if let Some(p) = self.provider {
            b = b.tracer_provider(p);
        }
        b.build()
    }

    fn consumer(&self, system: &str, group: &str) -> mqtrace::Consumer {
        let mut b = mqtrace::Consumer::builder(system, group).mode(self.mode);
        if let Some(p) = self.provider {
            b = b.tracer_provider(p);
        }
        b.build()
    }
}

/// One run's result: messages produced and consumed, and how long that took.
struct Run {
    messages: usize,
    elapsed: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Bytes in the files under `dir`: what a run's telemetry takes on disk.
/// The bytes of the files under `dir`, each synced to disk first: a run's writeback (about
/// 100 MB in full mode) happens before the next run starts, not during it on the two cores.
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            std::fs::File::open(entry.path())?.sync_all()?;
            meta.len()
        };
    }
    Ok(total)
}

mod kafka {
    use super::*;
    use mqtrace_kafka::{SYSTEM, TracedConsumer, TracedProducer};
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{Consumer as _, StreamConsumer};
    use rdkafka::message::OwnedHeaders;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    pub async fn run(n: usize, client: Client<'_>, round: usize) -> anyhow::Result<Run> {
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
        let elapsed = match client {
            Client::Bare(headers) => {
                for chunk in (0..n).collect::<Vec<_>>().chunks(WINDOW) {
                    try_join_all(chunk.iter().map(|_| {
                        let mut r = FutureRecord::<str, str>::to(&topic).payload("{}");
                        if !headers.is_empty() {
                            let h = headers.iter().fold(
                                OwnedHeaders::new_with_capacity(headers.len()),
                                |h, &(key, value)| {
                                    h.insert(rdkafka::message::Header {
                                        key,
                                        value: Some(value),
                                    })
                                },
                            );
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
                let elapsed = started.elapsed();
                std::mem::forget(consumer); // closing an assigned consumer can hang (#509)
                elapsed
            }
            Client::Traced(instrument) => {
                let producer = TracedProducer::new(producer, instrument.producer(SYSTEM));
                for chunk in (0..n).collect::<Vec<_>>().chunks(WINDOW) {
                    try_join_all(chunk.iter().map(|_| {
                        let r = FutureRecord::<str, str>::to(&topic).payload("{}");
                        producer.send(r, Duration::from_secs(5))
                    }))
                    .await?;
                }
                let consumer =
                    TracedConsumer::new(consumer, instrument.consumer(SYSTEM, "bench"), false);
                for _ in 0..n {
                    consumer.recv().await?.ack()?;
                }
                let elapsed = started.elapsed();
                // The consumer is forgotten, so its drop never exports its ledgers: export
                // them now, after the clock stopped (as the last export of the batch
                // processor happens after it in every mode).
                consumer.tracer().flush();
                std::mem::forget(consumer); // closing an assigned consumer can hang (#509)
                elapsed
            }
        };
        Ok(Run {
            messages: n,
            elapsed,
        })
    }
}

mod rabbitmq {
    use super::*;
    use lapin::options::*;
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    use mqtrace_lapin::{SYSTEM, TracedConsumer, TracedPublisher};
    use std::future::IntoFuture;

    pub async fn run(n: usize, client: Client<'_>, round: usize) -> anyhow::Result<Run> {
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
        let consume = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await?;
        let messages = n.div_ceil(WINDOW) * WINDOW;
        let started = Instant::now();
        let elapsed = match client {
            Client::Bare(headers) => {
                let publish = || {
                    let mut props = BasicProperties::default();
                    if !headers.is_empty() {
                        let mut table = FieldTable::default();
                        for &(key, value) in headers {
                            table.insert(key.into(), AMQPValue::LongString(value.into()));
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
                for _ in 0..n.div_ceil(WINDOW) {
                    let mut confirms = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        confirms.push(publish().await?);
                    }
                    try_join_all(confirms).await?;
                }
                let mut consume = consume;
                for _ in 0..messages {
                    let d = consume.next().await.context("closed")??;
                    d.ack(BasicAckOptions::default()).await?;
                }
                started.elapsed()
            }
            Client::Traced(instrument) => {
                let publisher = TracedPublisher::new(channel.clone(), instrument.producer(SYSTEM));
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
                let group = instrument.consumer(SYSTEM, queue.as_str());
                let mut consume = TracedConsumer::new(consume, group);
                for _ in 0..messages {
                    let d = consume.next().await.context("closed")??;
                    d.ack(BasicAckOptions::default()).await?;
                }
                // Stop the clock before the publisher and the consumer are dropped, at the
                // end of this block: in ledger mode their drops export the ledgers.
                started.elapsed()
            }
        };
        channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await?;
        conn.close(200, "done".into()).await?;
        Ok(Run { messages, elapsed })
    }
}

mod nats {
    use super::*;
    use async_nats::jetstream::{self, consumer::pull, stream};
    use mqtrace_nats::{SYSTEM, TracedDurable, TracedJetStream};
    use std::future::IntoFuture;

    pub async fn run(n: usize, client: Client<'_>, round: usize) -> anyhow::Result<Run> {
        let nats = async_nats::connect("127.0.0.1:4222")
            .await
            .context("NATS on 127.0.0.1:4222 (scripts/services starts it)")?;
        let js = jetstream::new(nats);
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
        let messages = n.div_ceil(WINDOW) * WINDOW;
        let started = Instant::now();
        let elapsed = match client {
            Client::Bare(headers) => {
                for _ in 0..n.div_ceil(WINDOW) {
                    let mut acks = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        let ack = if headers.is_empty() {
                            js.publish(subject.clone(), "{}".into()).await?
                        } else {
                            let mut h = async_nats::HeaderMap::new();
                            for &(key, value) in headers {
                                h.insert(key, value);
                            }
                            js.publish_with_headers(subject.clone(), h, "{}".into())
                                .await?
                        };
                        acks.push(ack.into_future());
                    }
                    try_join_all(acks).await?;
                }
                let mut stream = consumer.messages().await?;
                for _ in 0..messages {
                    let m = stream.next().await.context("closed")??;
                    m.ack().await.map_err(anyhow::Error::from_boxed)?;
                }
                started.elapsed()
            }
            Client::Traced(instrument) => {
                let publisher = TracedJetStream::new(js.clone(), instrument.producer(SYSTEM));
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
                let group = TracedDurable::new(instrument.consumer(SYSTEM, "bench"));
                let mut stream = group.messages(consumer.messages().await?);
                for _ in 0..messages {
                    let m = stream.next().await.context("closed")??;
                    m.ack().await.map_err(anyhow::Error::from_boxed)?;
                }
                // Stop the clock before the publisher and the consumer are dropped, at the
                // end of this block: in ledger mode their drops export the ledgers.
                started.elapsed()
            }
        };
        js.delete_stream(&name).await?;
        Ok(Run { messages, elapsed })
    }
}

/// The medians of one mode on one client.
struct Measured {
    mode: Mode,
    msgs_per_s: f64,
    /// `None`: the mode's spans are encoded by nobody (`discard`).
    telemetry_bytes_per_msg: Option<f64>,
}

/// Runs every one of `modes` `rounds` times on client `name`; their medians, in order.
async fn measure(
    name: &str,
    modes: &[Mode],
    rounds: usize,
    n: usize,
) -> anyhow::Result<Vec<Measured>> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut bytes: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        // Each round starts one mode later, so that no mode always follows the same one
        // (what a run leaves behind — a full-mode run's page cache, the broker's state — is
        // spread over all of them).
        for k in 0..modes.len() {
            let i = (k + round) % modes.len();
            let mode = modes[i];
            let dir = tempfile::tempdir()?;
            let (provider, telemetry) = mode.pipeline(&dir)?;
            let client = mode.client(provider.as_ref());
            let run_id = round * modes.len() + i;
            let run = async {
                match name {
                    "kafka" => kafka::run(n, client, run_id).await,
                    "rabbitmq" => rabbitmq::run(n, client, run_id).await,
                    _ => nats::run(n, client, run_id).await,
                }
            };
            let run = tokio::time::timeout(Duration::from_secs(300), run)
                .await
                .with_context(|| format!("{name} run {run_id} took over 5 minutes"))??;
            if let Some(t) = telemetry {
                // Shutting down exports what every ledger still holds (`flush_ledgers`),
                // then what the batch processor queued, and closes the files: all of the
                // run's telemetry is on disk before it is measured.
                let stats = t.shutdown()?;
                let m = run.messages as u64;
                anyhow::ensure!(
                    stats.dropped() == 0,
                    "{name} {}: spans dropped: {stats:?}",
                    mode.label()
                );
                if mode.is_ledger() {
                    // At least one ledger per stage (store_ack, deliver, consume_ack), and
                    // far fewer spans than messages: the ordinary path went into ledgers.
                    anyhow::ensure!(
                        (3..m).contains(&stats.exported),
                        "{name} {}: {} spans for {m} messages",
                        mode.label(),
                        stats.exported
                    );
                } else {
                    anyhow::ensure!(
                        stats.exported >= 4 * m,
                        "{name} {}: spans missing: {stats:?}",
                        mode.label()
                    );
                }
                bytes[i].push(dir_bytes(dir.path())? as f64 / run.messages as f64);
            } else if mode != Mode::Discard {
                bytes[i].push(0.0);
            }
            rates[i].push(run.rate());
        }
    }
    Ok(modes
        .iter()
        .zip(rates.into_iter().zip(bytes))
        .map(|(&mode, (rates, bytes))| Measured {
            mode,
            msgs_per_s: median(rates),
            telemetry_bytes_per_msg: (!bytes.is_empty()).then(|| median(bytes)),
        })
        .collect())
}

/// `x` against `reference` as a signed percentage (negative: fewer msgs/s); blank when
/// either is missing.
fn change(x: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if x.is_finite() && r.is_finite() => format!("{:+.1}%", (x / r - 1.0) * 100.0),
        _ => String::new(),
    }
}

/// The table of one client, and the targets of its ledger modes.
fn print_table(name: &str, results: &[Measured]) {
    let rate_of = |mode: Mode| {
        results
            .iter()
            .find(|r| r.mode == mode)
            .map(|r| r.msgs_per_s)
    };
    let plain = rate_of(Mode::Plain);
    let headers1 = rate_of(Mode::Headers1);
    let headers5 = rate_of(Mode::Headers5);
    println!("\n{name}");
    println!(
        "  {:<15} {:>9} {:>9} {:>11} {:>11} {:>16}",
        "mode", "msgs/s", "vs plain", "vs headers1", "vs headers5", "telemetry B/msg"
    );
    for r in results {
        // Ledger and off modes against the one header ledger mode carries; full modes
        // against the five they carry.
        let vs1 = if r.mode.is_ledger() || r.mode == Mode::Off {
            change(r.msgs_per_s, headers1)
        } else {
            String::new()
        };
        let vs5 = if r.mode.is_full() {
            change(r.msgs_per_s, headers5)
        } else {
            String::new()
        };
        let bytes = match r.telemetry_bytes_per_msg {
            Some(b) => format!("{b:.1}"),
            None => "n/a (discarded)".to_owned(),
        };
        println!(
            "  {:<15} {:>9.0} {:>9} {vs1:>11} {vs5:>11} {bytes:>16}",
            r.mode.label(),
            r.msgs_per_s,
            change(r.msgs_per_s, plain),
        );
    }
    // NATS sends any message with headers through a slower path (HPUB, header parsing on
    // the server): the fair reference for ledger mode there is the client carrying its
    // one header. Kafka and RabbitMQ pay little for a header: plain is the reference.
    let (reference, reference_label) = if name == "nats" {
        (headers1, "headers1")
    } else {
        (plain, "plain")
    };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for r in results.iter().filter(|r| r.mode.is_ledger()) {
        if let Some(reference) = reference {
            let fewer = (1.0 - r.msgs_per_s / reference) * 100.0;
            println!(
                "  target {}: <= 5% fewer msgs/s than {reference_label}: {fewer:.1}% fewer: {}",
                r.mode.label(),
                verdict(fewer <= 5.0)
            );
        }
        if let Some(b) = r.telemetry_bytes_per_msg {
            println!(
                "  target {}: <= 10 B of telemetry per message: {b:.1} B: {}",
                r.mode.label(),
                verdict(b <= 10.0)
            );
        }
    }
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the workspace root
/// when relative: the bench runs in its package's directory, not where cargo was started),
/// else `target/` beside the `Cargo.lock` found walking up from this package.
fn target_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(&manifest)
        .to_path_buf();
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root.join(dir), // `join` keeps an absolute path as it is
        None => root.join("target"),
    }
}

/// A JSON number, `null` when not finite (JSON has no NaN, the median of no rounds:
/// `MQTRACE_BENCH_ROUNDS=0`).
fn json_number(x: Option<f64>, decimals: usize) -> String {
    match x {
        // `{:.N}` never uses an exponent: always a valid JSON number.
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "null".to_owned(),
    }
}

/// A JSON string (the labels are plain ASCII, but escape anyway).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the medians as `{ "rounds", "messages_per_run", client: { mode: { "msgs_per_s",
/// "telemetry_bytes_per_msg" } } }` (`null` bytes: `discard`, whose spans nobody encodes).
///
/// Written by hand: `serde_json`, a workspace dependency, would be a new dependency of this
/// package and change `Cargo.lock`, which the `--locked` builds forbid.
fn write_json(rounds: usize, n: usize, all: &[(&str, Vec<Measured>)]) -> anyhow::Result<PathBuf> {
    let mut sections = vec![
        format!("  \"rounds\": {rounds}"),
        format!("  \"messages_per_run\": {n}"),
    ];
    for (name, results) in all {
        let modes: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "    {}: {{\"msgs_per_s\": {}, \"telemetry_bytes_per_msg\": {}}}",
                    json_string(r.mode.label()),
                    json_number(Some(r.msgs_per_s), 1),
                    json_number(r.telemetry_bytes_per_msg, 3),
                )
            })
            .collect();
        sections.push(format!(
            "  {}: {{\n{}\n  }}",
            json_string(name),
            modes.join(",\n")
        ));
    }
    let text = format!("{{\n{}\n}}\n", sections.join(",\n"));
    let dir = target_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("overhead.json");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds = env_or("MQTRACE_BENCH_ROUNDS", 5);
    let n = env_or("MQTRACE_BENCH_MESSAGES", 20_000);
    // `cargo bench` passes `--bench`; a name filter selects clients.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let modes: Vec<Mode> = Mode::ALL.into_iter().filter(|m| !skip_mode(*m)).collect();
    println!(
        "{n} messages per run, median of {rounds} rounds. Modes:\n\
         plain: the bare client; headers1/2/5: the bare client carrying 1 (compact mqtrace),\n\
         2 (traceparent + compact: full mode's) or 5 (the five-header form) headers; off: the\n\
         adapter in off mode; unsampled/discard/file: the adapter in full mode, spans not\n\
         sampled / exported to nothing / written as OTLP JSON lines; file5: file with the five\n\
         headers; ledger: ledger mode with the five headers;\n\
         ledger+compact: ledger mode with its compact header (both written to files).\n\
         vs columns: change in msgs/s (negative: fewer). Telemetry: bytes written to files\n\
         per message, everything flushed (headers not counted); n/a: spans discarded."
    );
    let mut all = Vec::new();
    for name in ["kafka", "rabbitmq", "nats"] {
        if !wanted(name) {
            continue;
        }
        let results = measure(name, &modes, rounds, n).await?;
        print_table(name, &results);
        all.push((name, results));
    }
    let path = write_json(rounds, n, &all)?;
    println!("\nmedians written to {}", path.display());
    Ok(())
}
