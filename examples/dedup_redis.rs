//! An idempotent consumer over NATS JetStream with mqtrace-dedup's Redis store: each message
//! is claimed (`SET NX PX lease`) before the work and marked done after it, so a copy is
//! skipped by every worker sharing the Redis, across restarts, for the retention. Here the
//! producer retries an order after a lost PubAck and the stream stores it twice.
//!
//! `cargo run --example dedup_redis` (NATS with JetStream on 127.0.0.1:4222 or `NATS_URL`;
//! Redis on 127.0.0.1:6379 or `REDIS_URL`).

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::pull, message::PublishMessage, stream};
use futures::StreamExt;
use mqtrace_dedup::{Outcome, RedisStore, process_once};
use mqtrace_nats::{TracedDurable, TracedJetStream};
use std::time::{Duration, SystemTime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let telemetry = mqtrace_export::init_files("traces")?;
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "127.0.0.1:4222".into());
    let js = jetstream::new(async_nats::connect(&url).await.context("NATS")?);
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    // Leases longer than the longest work; done marks kept longer than a copy can be late.
    let (lease, keep) = (Duration::from_secs(30), Duration::from_secs(86_400));
    let store = RedisStore::connect(&redis).await.context("Redis")?;
    let store = store.lease(lease).retention(keep);
    let (name, subject) = ("MQTRACE_EXAMPLE_DEDUP", "mqtrace-example.dedup");
    let mut config = stream::Config::default();
    (config.name, config.subjects) = (name.into(), vec![subject.into()]);
    let _ = js.delete_stream(name).await; // what an interrupted run left
    let orders = js.get_or_create_stream(config).await?;

    // A producer instance of its own each run (its seqs start at 1 again). Five orders; order
    // 3 is sent twice with the same seq, as after a lost PubAck.
    let producer_id = format!("checkout-{}", SystemTime::UNIX_EPOCH.elapsed()?.as_millis());
    let publisher = TracedJetStream::with_producer_id(js.clone(), &producer_id);
    for i in 1..=5 {
        let mut order = publisher.message(subject);
        for _attempt in 0..1 + usize::from(i == 3) {
            let publish = PublishMessage::build().payload(format!("{{\"order\":{i}}}").into());
            publisher
                .publish_attempt(&mut order, subject, publish)
                .await?
                .await?;
        }
    }

    let config = pull::Config {
        durable_name: Some("shipping".into()),
        ..Default::default()
    };
    let consumer = orders.get_or_create_consumer("shipping", config).await?;
    let mut messages = TracedDurable::named("shipping").messages(consumer.messages().await?);
    let (mut processed, mut skipped) = (0, 0);
    for _ in 0..6 {
        let message = messages.next().await.context("consumer closed")??;
        let outcome = process_once(message, &store, async |m, claim| {
            let body = String::from_utf8_lossy(&m.message().payload).into_owned();
            println!("processing {body} (key {})", claim.key().unwrap_or("none"));
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

    js.delete_stream(name).await?;
    telemetry.shutdown()?;
    Ok(())
}
