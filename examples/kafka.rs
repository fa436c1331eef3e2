//! Kafka through rdkafka, instrumented with mqtrace-kafka: send with delivery reports,
//! consume, mark done. Runs on librdkafka's in-process mock cluster unless `KAFKA_BROKERS`
//! is set. Spans go to OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else to `traces/`.
//!
//! `cargo run --example kafka`

use anyhow::Context as _;
use mqtrace_kafka::{TracedConsumer, TracedProducer};
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureRecord;
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 1. Telemetry: one line; flushes and reports its own drops on shutdown.
    let telemetry = match std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(_) => mqtrace_export::init_otlp()?,
        None => mqtrace_export::init_files("traces")?,
    };
    let mock = match std::env::var("KAFKA_BROKERS") {
        Ok(_) => None,
        Err(_) => Some(MockCluster::new(1)?),
    };
    let brokers = match &mock {
        Some(cluster) => cluster.bootstrap_servers(),
        None => std::env::var("KAFKA_BROKERS")?,
    };

    // 2. Producer: wrap the FutureProducer; the delivery report is the broker's answer.
    let producer = TracedProducer::with_producer_id(
        ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()?,
        "orders-api-1",
    );
    for i in 0..10 {
        let payload = format!("{{\"order\":{i}}}");
        let record = FutureRecord::<str, str>::to("orders").payload(&payload);
        let stored = producer
            .send(record, Duration::from_secs(5))
            .await
            .context("send")?;
        println!("order {i} stored at {}/{}", stored.partition, stored.offset);
    }

    // 3. Consumer: offsets are stored only when the app marks a message done.
    let inner: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "shipping")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.offset.store", "false")
        .create()?;
    inner.subscribe(&["orders"])?;
    let group = mqtrace::Consumer::builder(mqtrace_kafka::SYSTEM, "shipping").build();
    let consumer = TracedConsumer::new(inner, group, false);
    for _ in 0..10 {
        let message = consumer.recv().await?;
        let payload = message.message().payload().unwrap_or_default();
        println!("processing {}", String::from_utf8_lossy(payload));
        message.ack()?;
    }
    // An assigned StreamConsumer can hang on close (rust-rdkafka #509): leave it to the OS.
    std::mem::forget(consumer);

    let stats = telemetry.shutdown()?;
    println!(
        "exported {} spans, dropped {}",
        stats.exported,
        stats.dropped()
    );
    Ok(())
}
