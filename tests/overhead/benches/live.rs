//! What the live signals (SPEC §7) cost on the consumer's thread, per delivery: one delivery
//! settled with `ack`, with the tracking on and off, in ledger mode (where it shares the slot
//! lock the ledger takes anyway) and in full mode behind a sampler that keeps nothing (where it
//! takes a slot of its own; the spans themselves are measured by `mqtrace-export`'s
//! `stage_event` bench). The difference between `on` and `off` is the tracking; the bench ends
//! by measuring each difference directly, in alternating rounds (a shared machine's load
//! drifts between two criterion benchmarks run one after the other).
//!
//! `cargo bench --workspace --bench live --locked` (add `-- --quick` for a short run).
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use mqtrace::headers::IncomingHeaders;
use mqtrace::{Consumer, DeliveryInfo, MessageKey, Mode};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A real SDK meter provider (the counters aggregate as in production; the reader's interval
/// is far beyond a bench run, so nothing is exported meanwhile).
fn meters() -> SdkMeterProvider {
    SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
        .build()
}

fn consumer(
    mode: Mode,
    live: bool,
    window: u64,
    tracer: &SdkTracerProvider,
    meter: &SdkMeterProvider,
) -> Consumer {
    Consumer::builder("kafka", "shipping")
        .mode(mode)
        // The flusher must not run during a measurement: ledger mode is measured on the
        // app's thread only.
        .flush_interval(Duration::from_secs(3600))
        .tracer_provider(tracer)
        .meter_provider(meter)
        .live_signals(live)
        .reorder_window(window)
        .build()
}

/// One consumer fed the seqs of one stream, `step(seq)` apart.
struct Feed<'a> {
    consumer: &'a Consumer,
    producer_id: Arc<str>,
    stream: Arc<str>,
    seq: u64,
    step: fn(u64) -> u64,
}

impl<'a> Feed<'a> {
    fn new(consumer: &'a Consumer, step: fn(u64) -> u64) -> Self {
        Feed {
            consumer,
            producer_id: "orders-api-1".into(),
            stream: "orders".into(),
            seq: 0,
            step,
        }
    }

    /// The next seq delivered and acked.
    fn one(&mut self) {
        self.seq = (self.step)(self.seq);
        let incoming = IncomingHeaders {
            key: Some(MessageKey {
                producer_id: self.producer_id.clone(),
                stream: self.stream.clone(),
                seq: self.seq,
            }),
            ..IncomingHeaders::default()
        };
        let delivery = self
            .consumer
            .deliver_with(black_box(incoming), DeliveryInfo::new("orders"));
        delivery.ack();
    }

    /// Nanoseconds per delivery over `n` of them.
    fn timed(&mut self, n: u32) -> f64 {
        let start = Instant::now();
        for _ in 0..n {
            self.one();
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    }
}

/// Delivers and acks seqs of one stream, `step(seq)` apart, measuring each delivery + ack.
fn run(c: &mut Criterion, name: &str, consumer: &Consumer, step: fn(u64) -> u64) {
    let mut feed = Feed::new(consumer, step);
    c.bench_function(name, |b| b.iter(|| feed.one()));
}

/// The tracking's own cost, tracking on minus off, measured in alternating rounds so that
/// the load of a shared machine weighs on both alike: the median of the rounds' differences,
/// and the difference of each side's fastest round (the least disturbed by other work).
fn on_minus_off(label: &str, on: &Consumer, off: &Consumer, step: fn(u64) -> u64) {
    const ROUNDS: usize = 31;
    const PER_ROUND: u32 = 50_000;
    let (mut a, mut b) = (Feed::new(on, step), Feed::new(off, step));
    a.timed(PER_ROUND);
    b.timed(PER_ROUND);
    let rounds: Vec<(f64, f64)> = (0..ROUNDS)
        .map(|round| {
            // Alternate which goes first: a warm cache or a quiet moment favours neither.
            if round % 2 == 0 {
                let on = a.timed(PER_ROUND);
                (on, b.timed(PER_ROUND))
            } else {
                let off = b.timed(PER_ROUND);
                (a.timed(PER_ROUND), off)
            }
        })
        .collect();
    let mut diffs: Vec<f64> = rounds.iter().map(|(on, off)| on - off).collect();
    diffs.sort_by(f64::total_cmp);
    let fastest =
        |side: fn(&(f64, f64)) -> f64| rounds.iter().map(side).fold(f64::INFINITY, f64::min);
    let (on_min, off_min) = (fastest(|r| r.0), fastest(|r| r.1));
    println!(
        "{label}: live tracking costs {:.1} ns a delivery (median of {ROUNDS} alternating \
         rounds; quartiles {:.1} … {:.1}); fastest rounds {on_min:.1} ns on, {off_min:.1} ns \
         off: {:.1} ns",
        diffs[ROUNDS / 2],
        diffs[ROUNDS / 4],
        diffs[3 * ROUNDS / 4],
        on_min - off_min
    );
}

fn in_order(seq: u64) -> u64 {
    seq + 1
}

/// One seq in 16 never arrives: a counted hole (a counter add with its three attributes)
/// every 15 deliveries, with the reorder window at 0.
fn one_in_sixteen_lost(seq: u64) -> u64 {
    if seq % 16 == 14 { seq + 2 } else { seq + 1 }
}

fn live(c: &mut Criterion) {
    let unsampled = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let meter = meters();
    let w = mqtrace::DEFAULT_REORDER_WINDOW;
    for (label, mode) in [("ledger", Mode::Ledger), ("full_unsampled", Mode::Full)] {
        for on in [false, true] {
            let traced = consumer(mode, on, w, &unsampled, &meter);
            let state = if on { "on" } else { "off" };
            run(
                c,
                &format!("live/{label}/in_order/{state}"),
                &traced,
                in_order,
            );
        }
    }
    for on in [false, true] {
        let traced = consumer(Mode::Ledger, on, 0, &unsampled, &meter);
        let state = if on { "on" } else { "off" };
        let name = format!("live/ledger/one_in_16_lost/{state}");
        run(c, &name, &traced, one_in_sixteen_lost);
    }
}

/// The differences themselves, each pair measured side by side (fresh consumers).
fn differences(_: &mut Criterion) {
    let unsampled = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let meter = meters();
    let w = mqtrace::DEFAULT_REORDER_WINDOW;
    let pair = |mode, window| {
        (
            consumer(mode, true, window, &unsampled, &meter),
            consumer(mode, false, window, &unsampled, &meter),
        )
    };
    let (on, off) = pair(Mode::Ledger, w);
    on_minus_off("live/ledger/in_order", &on, &off, in_order);
    let (on, off) = pair(Mode::Full, w);
    on_minus_off("live/full_unsampled/in_order", &on, &off, in_order);
    let (on, off) = pair(Mode::Ledger, 0);
    on_minus_off("live/ledger/one_in_16_lost", &on, &off, one_in_sixteen_lost);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = live, differences
}
criterion_main!(benches);
