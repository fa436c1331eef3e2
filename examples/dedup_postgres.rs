//! An idempotent consumer over RabbitMQ with mqtrace-dedup's PostgreSQL store: the work's
//! business write and the "processed" mark commit in one transaction, so a message is
//! processed exactly once wherever the consumer dies. Here the producer retries an order
//! after a lost confirm and the queue stores it twice; the copy is skipped.
//!
//! `cargo run --example dedup_postgres` (RabbitMQ on 127.0.0.1:5672 or `AMQP_ADDR`;
//! PostgreSQL on 127.0.0.1:5432, user `postgres`, database `test`, or `PG_PARAMS`).

use anyhow::Context as _;
use futures::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqtrace_dedup::{PgStore, process_once};
use mqtrace_lapin::{TracedConsumer, TracedPublisher};
use std::time::SystemTime;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = mqtrace_export::init_files("traces")?;
    let pg = std::env::var("PG_PARAMS")
        .unwrap_or_else(|_| "host=127.0.0.1 user=postgres dbname=test".into());
    // Creates the marks' table (`mqtrace_processed`) if missing.
    let store = PgStore::connect(&pg).await.context("PostgreSQL")?;
    let ddl = "CREATE TABLE IF NOT EXISTS mqtrace_example_shipments (producer_id text, body text)";
    store.client().await?.batch_execute(ddl).await?;
    let addr = std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://127.0.0.1:5672/%2f".into());
    let conn = Connection::connect(&addr, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    let queue = "mqtrace-example-dedup-postgres";
    let (declare, args) = (QueueDeclareOptions::default(), FieldTable::default());
    channel.queue_declare(queue.into(), declare, args).await?;
    channel.confirm_select(Default::default()).await?;

    // A producer instance of its own each run (its seqs start at 1 again). Five orders; order
    // 3 is sent twice with the same seq, as after a lost confirm.
    let producer_id = format!("checkout-{}", SystemTime::UNIX_EPOCH.elapsed()?.as_millis());
    let publisher = TracedPublisher::with_producer_id(channel.clone(), &producer_id);
    for i in 1..=5 {
        let (mut order, body) = (publisher.message("", queue), format!("{{\"order\":{i}}}"));
        for _attempt in 0..1 + usize::from(i == 3) {
            let (o, p) = (BasicPublishOptions::default(), BasicProperties::default());
            let b = body.as_bytes();
            let sent = publisher.publish_attempt(&mut order, "".into(), queue.into(), o, b, p);
            sent.await?.await?;
        }
    }

    let (options, args) = (BasicConsumeOptions::default(), FieldTable::default());
    let inner = channel.basic_consume(queue.into(), "".into(), options, args);
    let mut deliveries = TracedConsumer::from_queue(inner.await?);
    for _ in 0..6 {
        let delivery = deliveries.next().await.context("consumer closed")??;
        // The business write, in the transaction that also holds the mark.
        process_once(delivery, &store, async |d, tx| {
            let body = String::from_utf8_lossy(&d.delivery().data).into_owned();
            let sql = "INSERT INTO mqtrace_example_shipments (producer_id, body) VALUES ($1, $2)";
            tx.execute(sql, &[&producer_id, &body]).await
        })
        .await?;
    }

    let count = "SELECT count(*) FROM mqtrace_example_shipments WHERE producer_id = $1";
    let client = store.client().await?;
    let shipments: i64 = client.query_one(count, &[&producer_id]).await?.get(0);
    anyhow::ensure!(shipments == 5, "{shipments} shipments written for 5 orders");
    println!("5 orders, 6 deliveries, 5 shipments written");
    let delete = QueueDeleteOptions::default();
    channel.queue_delete(queue.into(), delete).await?;
    telemetry.shutdown()?;
    Ok(())
}
