//! RabbitMQ through lapin, instrumented with mqtrace-lapin: publish with confirms, consume,
//! ack. Spans go to OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else to files in
//! `traces/` for `mqtrace analyze traces`.
//!
//! `cargo run --example rabbitmq` (RabbitMQ on 127.0.0.1:5672, or set `AMQP_ADDR`).

use anyhow::Context as _;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqtrace_lapin::{TracedConsumer, TracedPublisher};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // 1. Telemetry: one line; flushes and reports its own drops on shutdown.
    let telemetry = match std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(_) => mqtrace_export::init_otlp()?,
        None => mqtrace_export::init_files("traces")?,
    };

    let addr = std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://127.0.0.1:5672/%2f".into());
    let conn = Connection::connect(&addr, ConnectionProperties::default())
        .await
        .with_context(|| format!("connecting to RabbitMQ at {addr}"))?;
    let channel = conn.create_channel().await?;
    let queue = "mqtrace-example-orders";
    let (declare, args) = (QueueDeclareOptions::default(), FieldTable::default());
    channel.queue_declare(queue.into(), declare, args).await?;

    // 2. Producer: wrap the channel; confirms give the broker's answer (`store_ack`).
    channel.confirm_select(Default::default()).await?;
    let publisher = TracedPublisher::with_producer_id(channel.clone(), "orders-api-1");
    for i in 0..10 {
        let payload = format!("{{\"order\":{i}}}");
        let options = BasicPublishOptions::default();
        let props = BasicProperties::default();
        let confirm = publisher
            .basic_publish("".into(), queue.into(), options, payload.as_bytes(), props)
            .await?;
        anyhow::ensure!(confirm.await?.is_ack(), "order {i} was not confirmed");
    }

    // 3. Consumer: wrap the lapin consumer; the queue is the consumer group.
    let inner = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = TracedConsumer::from_queue(inner);
    for _ in 0..10 {
        let delivery = deliveries.next().await.context("consumer closed")??;
        println!(
            "processing {}",
            String::from_utf8_lossy(&delivery.delivery().data)
        );
        delivery.ack(BasicAckOptions::default()).await?;
    }

    channel
        .queue_delete(queue.into(), Default::default())
        .await?;
    let stats = telemetry.shutdown()?;
    println!(
        "exported {} spans, dropped {}",
        stats.exported,
        stats.dropped()
    );
    Ok(())
}
