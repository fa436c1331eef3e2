//! The demo's scenario: an instrumented producer and consumer group on librdkafka's in-process
//! mock cluster, reproducing for real the three classic ways to lose a message and the two
//! ways to duplicate one, with every span written to OTLP JSON-lines files.

use super::cluster::{self, Commits, TOPIC};
use anyhow::{Context as _, bail};
use mqtrace_export::{Overflow, Telemetry};
use mqtrace_kafka::{TracedConsumer, TracedProducer};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaRespErr;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// The demo producer's id.
pub const PRODUCER_ID: &str = "checkout-1";
/// How long a consumer may wait for the next message before the demo calls it stalled.
const IDLE: Duration = Duration::from_secs(10);

/// What the demo made go wrong, by seq: the answer the analyzer should find.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Injected {
    /// Sends that failed and were ignored.
    pub lost_produce: BTreeSet<u64>,
    /// Acked, then skipped by an offset reset.
    pub lost_store: BTreeSet<u64>,
    /// Received, offsets auto-committed, never processed.
    pub lost_consume: BTreeSet<u64>,
    /// Stored twice after a lost ack and a retry.
    pub duplicate_produce: BTreeSet<u64>,
    /// Processed twice by the group.
    pub duplicate_consume: BTreeSet<u64>,
}

impl Injected {
    /// The seqs per finding key (`lost/produce`, …).
    pub fn by_key(&self) -> [(&'static str, &BTreeSet<u64>); 5] {
        [
            ("lost/produce", &self.lost_produce),
            ("lost/store", &self.lost_store),
            ("lost/consume", &self.lost_consume),
            ("duplicate/produce", &self.duplicate_produce),
            ("duplicate/consume", &self.duplicate_consume),
        ]
    }
}

/// Runs the scenario, writing `out/traces/*.jsonl` and `out/injected.json`; returns what
/// it injected. Records in the mode `MQTRACE_MODE` names (full when unset).
pub async fn run(out: &Path) -> anyhow::Result<Injected> {
    run_in(out, mqtrace::Mode::from_env()).await
}

/// [`run`], recording in `mode`: the faults, and so the findings, are the same in every mode
/// that records.
pub async fn run_in(out: &Path, mode: mqtrace::Mode) -> anyhow::Result<Injected> {
    let traces = out.join("traces");
    if traces.exists() {
        std::fs::remove_dir_all(&traces)
            .with_context(|| format!("clearing {}", traces.display()))?;
    }
    let telemetry = Telemetry::builder()
        .file(&traces)
        .overflow(Overflow::Block)
        .service_name("mqtrace-demo")
        .build()?;

    let cluster = cluster::cluster()?;
    cluster::start_group_at_beginning(&cluster)?;
    let producer = TracedProducer::new(
        cluster::producer_config(&cluster).create()?,
        mqtrace::Producer::builder(mqtrace_kafka::SYSTEM)
            .producer_id(PRODUCER_ID)
            .tracer_provider(telemetry.provider())
            .mode(mode)
            .build(),
    );
    let mut injected = Injected::default();

    println!(
        "mqtrace demo: topic {TOPIC:?}, group {:?}, producer {PRODUCER_ID:?}",
        cluster::GROUP
    );

    // 1. A healthy start.
    let c1 = cluster::consumer(
        &cluster,
        &telemetry,
        mode,
        "shipping-1",
        Commits::AfterProcessing,
    )?;
    send_checked(&producer, 1000).await?;
    consume(&c1, 1000).await?;
    println!("  1..1000     healthy: sent, stored, processed");

    // 2. The broker refuses some batches (acks=all, ISR too small); the producer has retries
    //    off and ignores the failed delivery reports.
    let mut sent = 1000;
    for chunk in 0..10 {
        if chunk % 3 == 2 {
            cluster.request_errors(
                RDKafkaApiKey::Produce,
                &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS],
            );
        }
        for (message, result) in cluster::send_new(&producer, 50).await {
            if result.is_err() {
                injected.lost_produce.insert(message.key().seq);
            }
        }
        sent += 50;
    }
    consume(&c1, last_ok(sent, &injected.lost_produce)).await?;
    println!(
        "  1001..1500  producer ignored {} failed sends (NOT_ENOUGH_REPLICAS)",
        injected.lost_produce.len()
    );

    // 3. Acked but never delivered: while the consumer is paused, a backlog is stored; its
    //    next fetch is answered OFFSET_OUT_OF_RANGE (as after retention or an unclean leader
    //    election) and auto.offset.reset=latest jumps past the backlog.
    let mut partition = TopicPartitionList::new();
    partition.add_partition(TOPIC, 0);
    c1.inner().pause(&partition)?;
    send_checked(&producer, 300).await?;
    cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE],
    );
    c1.inner().resume(&partition)?;
    // Poll through the reset (librdkafka serves a StreamConsumer's queue only while polled);
    // nothing arrives: the backlog is skipped.
    let mut seen = Seen::default();
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(2), c1.recv()).await {
        let message = message?;
        if let Some(key) = message.key() {
            seen.add(key.seq);
        }
        message.ack()?;
    }
    send_checked(&producer, 200).await?;
    for (seq, n) in consume(&c1, 2000).await?.0 {
        seen.0.insert(seq, n);
    }
    injected.lost_store = (1501..=2000).filter(|s| !seen.contains(s)).collect();
    println!(
        "  1501..1800  {} acked messages skipped by an offset reset to latest",
        injected.lost_store.len()
    );
    stop(c1)?;

    // 4. Offsets stored on receipt and auto-committed; the consumer takes a batch of five,
    //    processes two, and dies.
    send_checked(&producer, 300).await?; // 2001..2300
    let c2 = cluster::consumer(&cluster, &telemetry, mode, "shipping-2", Commits::OnReceipt)?;
    consume(&c2, 2150).await?;
    let mut batch = Vec::new();
    for _ in 0..5 {
        batch.push(recv(&c2).await?);
    }
    let mut batch = batch.into_iter();
    for message in batch.by_ref().take(2) {
        message.ack()?;
    }
    injected.lost_consume = batch.filter_map(|m| m.key().map(|k| k.seq)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await; // the auto-commit runs
    crash(c2);
    println!(
        "  2151..2155  consumer died mid-batch after auto-commit: {} received, never processed",
        injected.lost_consume.len()
    );

    // 5. Commits every 50 messages; dies after processing, before its next commit. The next
    //    instance gets the uncommitted messages again and processes them again.
    let c3 = cluster::consumer(&cluster, &telemetry, mode, "shipping-3", Commits::Manually)?;
    let mut committed_through = 0;
    let mut processed_since_commit = BTreeSet::new();
    loop {
        let message = recv(&c3).await?;
        let seq = message.key().map_or(0, |k| k.seq);
        message.ack()?;
        processed_since_commit.insert(seq);
        if processed_since_commit.len() == 50 {
            c3.inner().commit_consumer_state(CommitMode::Sync)?;
            committed_through = seq;
            processed_since_commit.clear();
        }
        if seq >= 2280 {
            break;
        }
    }
    injected.duplicate_consume = processed_since_commit;
    crash(c3);
    let c4 = cluster::consumer(
        &cluster,
        &telemetry,
        mode,
        "shipping-4",
        Commits::AfterProcessing,
    )?;
    consume(&c4, 2300).await?;
    println!(
        "  {}..2280  consumer died before committing: {} messages processed twice",
        committed_through + 1,
        injected.duplicate_consume.len()
    );

    // 6. The broker stores a batch but its answer comes too late (round trip 1.5 s, request
    //    timeout 0.5 s): the producer sees timeouts and retries the same messages.
    cluster.broker_round_trip_time(cluster::BROKER, Duration::from_millis(1500))?;
    let timed_out: Vec<_> = cluster::send_new(&producer, 50)
        .await
        .into_iter()
        .filter(|(_, r)| r.is_err())
        .map(|(m, _)| m)
        .collect();
    cluster.broker_round_trip_time(cluster::BROKER, Duration::ZERO)?;
    let retries =
        futures::future::join_all(timed_out.into_iter().map(|m| cluster::resend(&producer, m)))
            .await;
    for (message, result) in retries {
        result
            .map_err(anyhow::Error::msg)
            .context("retry after a lost ack")?;
        injected.duplicate_produce.insert(message.key().seq);
    }
    send_checked(&producer, 50).await?; // 2351..2400: later messages, so every loss is passed
    let seen = consume(&c4, 2400).await?;
    // The group processed both stored copies: per SPEC that is also a consume duplicate.
    injected.duplicate_consume.extend(
        injected
            .duplicate_produce
            .iter()
            .filter(|s| seen.acks(**s) >= 2),
    );
    println!(
        "  2301..2350  lost acks: {} messages retried, stored twice",
        injected.duplicate_produce.len()
    );
    if seen.distinct() < 100 {
        bail!("the last consumer saw only {} messages", seen.distinct());
    }
    stop(c4)?;

    let stats = telemetry.shutdown()?;
    write_injected(out, &injected)?;
    println!(
        "\ntelemetry: {} spans written to {}, {} dropped",
        stats.exported,
        traces.display(),
        stats.dropped()
    );
    println!("ground truth: {}", out.join("injected.json").display());
    Ok(injected)
}

/// The consumer's process dies: no close, no final commit, no leaving the group. Leaking
/// the client is exactly that (and sidesteps rust-rdkafka issue #509, a close that can hang
/// forever for an assigned `StreamConsumer`).
fn crash(consumer: TracedConsumer) {
    std::mem::forget(consumer);
}

/// A clean stop: commit what was processed, give the partition up.
fn stop(consumer: TracedConsumer) -> anyhow::Result<()> {
    consumer
        .inner()
        .commit_consumer_state(CommitMode::Sync)
        .context("committing on stop")?;
    consumer.inner().unassign()?;
    crash(consumer); // closing could hang (see `crash`); the offsets are committed already
    Ok(())
}

/// Sends `count` new messages; all must be stored.
async fn send_checked(producer: &TracedProducer, count: usize) -> anyhow::Result<()> {
    for (message, result) in cluster::send_new(producer, count).await {
        result
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("sending seq {}", message.key().seq))?;
    }
    Ok(())
}

fn last_ok(last: u64, failed: &BTreeSet<u64>) -> u64 {
    (1..=last).rev().find(|s| !failed.contains(s)).unwrap_or(0)
}

async fn recv(consumer: &TracedConsumer) -> anyhow::Result<mqtrace_kafka::TracedMessage<'_>> {
    tokio::time::timeout(IDLE, consumer.recv())
        .await
        .context("the consumer stalled")?
        .context("receiving")
}

/// How often each seq was processed and acked.
#[derive(Debug, Default)]
struct Seen(std::collections::BTreeMap<u64, u32>);

impl Seen {
    fn add(&mut self, seq: u64) {
        *self.0.entry(seq).or_default() += 1;
    }
    fn contains(&self, seq: &u64) -> bool {
        self.0.contains_key(seq)
    }
    fn acks(&self, seq: u64) -> u32 {
        self.0.get(&seq).copied().unwrap_or_default()
    }
    fn distinct(&self) -> usize {
        self.0.len()
    }
}

/// Processes and acks messages until seq `until` has been processed.
async fn consume(consumer: &TracedConsumer, until: u64) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    loop {
        let message = recv(consumer).await?;
        let seq = message.key().map_or(0, |k| k.seq);
        message.ack()?;
        seen.add(seq);
        if seq >= until {
            return Ok(seen);
        }
    }
}

fn write_injected(out: &std::path::Path, injected: &Injected) -> anyhow::Result<()> {
    let list = |s: &BTreeSet<u64>| serde_json::json!(s.iter().collect::<Vec<_>>());
    let json = serde_json::json!({
        "producer_id": PRODUCER_ID,
        "stream": TOPIC,
        "consumer_group": cluster::GROUP,
        "lost/produce": list(&injected.lost_produce),
        "lost/store": list(&injected.lost_store),
        "lost/consume": list(&injected.lost_consume),
        "duplicate/produce": list(&injected.duplicate_produce),
        "duplicate/consume": list(&injected.duplicate_consume),
    });
    let path = out.join("injected.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))
}
