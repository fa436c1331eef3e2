//! An idempotent consumer over RabbitMQ with mqtrace-dedup's in-memory sequence window: the
//! producer retries an order after a lost confirm and the queue stores it twice; the copy is
//! settled `skip_duplicate` and never reaches the work. The window lives as long as the
//! process (docs/dedup.md: what a restart forgets). Spans go to files in `traces/`.
//!
//! `cargo run --example dedup_window` (RabbitMQ on 127.0.0.1:5672, or set `AMQP_ADDR`).

use anyhow::Context as _;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqtrace_dedup::{Outcome, WindowStore, process_once};
use mqtrace_lapin::{TracedConsumer, TracedPublisher};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = mqtrace_export::init_files("traces")?;
    let addr = std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://127.0.0.1:5672/%2f".into());
    let conn = Connection::connect(&addr, ConnectionProperties::default()).await;
    let channel = conn.context("RabbitMQ")?.create_channel().await?;
    let queue = "mqtrace-example-dedup-window";
    let (declare, args) = (QueueDeclareOptions::default(), FieldTable::default());
    channel.queue_declare(queue.into(), declare, args).await?;
    channel.confirm_select(Default::default()).await?;

    // Five orders; order 3 is sent twice with the same seq, as after a lost confirm.
    let publisher = TracedPublisher::with_producer_id(channel.clone(), "checkout-1");
    for i in 1..=5 {
        let (mut order, body) = (publisher.message("", queue), format!("{{\"order\":{i}}}"));
        for _attempt in 0..1 + usize::from(i == 3) {
            let (o, p) = (BasicPublishOptions::default(), BasicProperties::default());
            let b = body.as_bytes();
            let sent = publisher.publish_attempt(&mut order, "".into(), queue.into(), o, b, p);
            sent.await?.await?;
        }
    }

    // One store for the consumer's life, shared by whatever tasks consume (clone it).
    let store = WindowStore::new();
    let (options, args) = (BasicConsumeOptions::default(), FieldTable::default());
    let inner = channel.basic_consume(queue.into(), "".into(), options, args);
    let mut deliveries = TracedConsumer::from_queue(inner.await?);
    let (mut processed, mut skipped) = (0, 0);
    for _ in 0..6 {
        let delivery = deliveries.next().await.context("consumer closed")??;
        let outcome = process_once(delivery, &store, async |d, _claim| {
            println!("processing {}", String::from_utf8_lossy(&d.delivery().data));
            anyhow::Ok(())
        });
        match outcome.await? {
            Outcome::Skipped => skipped += 1,
            Outcome::Processed(()) | Outcome::Unchecked(()) => processed += 1,
        }
    }
    anyhow::ensure!(
        (processed, skipped) == (5, 1),
        "{processed} processed, {skipped} skipped"
    );
    println!("5 orders processed once each, 1 copy skipped");

    let delete = QueueDeleteOptions::default();
    channel.queue_delete(queue.into(), delete).await?;
    telemetry.shutdown()?;
    Ok(())
}
