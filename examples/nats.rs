//! NATS JetStream through async-nats, instrumented with mqtrace-nats: publish with
//! deduplication ids, consume with a durable pull consumer, ack. Spans go to OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else to files in `traces/`.
//!
//! `cargo run --example nats` (NATS with JetStream on 127.0.0.1:4222, or set `NATS_URL`).

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use mqtrace_nats::{TracedDurable, TracedJetStream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 1. Telemetry: one line; flushes and reports its own drops on shutdown.
    let telemetry = match std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(_) => mqtrace_export::init_otlp()?,
        None => mqtrace_export::init_files("traces")?,
    };

    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "127.0.0.1:4222".into());
    let client = async_nats::connect(&url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let js = jetstream::new(client);
    let orders = js
        .get_or_create_stream(stream::Config {
            name: "MQTRACE_EXAMPLE_ORDERS".into(),
            subjects: vec!["mqtrace-example.orders".into()],
            ..Default::default()
        })
        .await?;

    // 2. Producer: wrap the context; the PubAck is the broker's answer (`store_ack`), and
    //    `dedup_ids` lets the stream store a retried message once.
    let publisher = TracedJetStream::with_producer_id(js.clone(), "orders-api-1").dedup_ids(true);
    for i in 0..10 {
        let ack = publisher
            .publish(
                "mqtrace-example.orders",
                format!("{{\"order\":{i}}}").into(),
            )
            .await?
            .await?;
        println!("order {i} stored at stream sequence {}", ack.sequence);
    }

    // 3. Consumer: wrap the durable's messages; the durable is the consumer group.
    let config = pull::Config {
        durable_name: Some("shipping".into()),
        ..Default::default()
    };
    let consumer = orders.get_or_create_consumer("shipping", config).await?;
    let mut messages = TracedDurable::named("shipping").messages(consumer.messages().await?);
    for _ in 0..10 {
        let message = messages.next().await.context("consumer closed")??;
        println!(
            "processing {}",
            String::from_utf8_lossy(&message.message().payload)
        );
        message.ack().await.map_err(anyhow::Error::from_boxed)?;
    }

    js.delete_stream("MQTRACE_EXAMPLE_ORDERS").await?;
    let stats = telemetry.shutdown()?;
    println!(
        "exported {} spans, dropped {}",
        stats.exported,
        stats.dropped()
    );
    Ok(())
}
