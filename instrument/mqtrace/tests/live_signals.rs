//! SPEC §7 through the public API: the live counters a consumer exports through a real SDK
//! meter provider (read back through the in-memory exporter), in full and ledger mode; nothing
//! in off mode; the hook.

use mqtrace::names::{attr, metric};
use mqtrace::{Consumer, DeliveryInfo, GapKind, Mode, Producer, SettleOutcome};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Long enough that the ledger flusher never runs during a test.
const NEVER: Duration = Duration::from_secs(3600);

fn meters() -> (SdkMeterProvider, InMemoryMetricExporter) {
    let exporter = InMemoryMetricExporter::default();
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    (provider, exporter)
}

/// Each counter's data points: metric name → (sorted attributes → value), from the last
/// collection (cumulative).
type Points = BTreeMap<String, BTreeMap<Vec<(String, String)>, u64>>;

fn points(provider: &SdkMeterProvider, exporter: &InMemoryMetricExporter) -> Points {
    provider.force_flush().expect("collect");
    let mut out = Points::new();
    let finished = exporter.get_finished_metrics().expect("in-memory exporter");
    let Some(last) = finished.last() else {
        return out;
    };
    for scope in last.scope_metrics() {
        assert_eq!(scope.scope().name(), "mqtrace");
        for m in scope.metrics() {
            assert_eq!(m.unit(), metric::UNIT_MESSAGES);
            let AggregatedMetrics::U64(MetricData::Sum(sum)) = m.data() else {
                panic!("{} is not a u64 sum", m.name());
            };
            assert!(sum.is_monotonic(), "{} is a counter", m.name());
            for p in sum.data_points() {
                let mut attrs: Vec<(String, String)> = p
                    .attributes()
                    .map(|kv: &KeyValue| (kv.key.as_str().to_owned(), kv.value.to_string()))
                    .collect();
                attrs.sort();
                *out.entry(m.name().to_owned())
                    .or_default()
                    .entry(attrs)
                    .or_default() += p.value();
            }
        }
    }
    out
}

/// The sum of `name` over every attribute set.
fn total(points: &Points, name: &str) -> u64 {
    points.get(name).map_or(0, |p| p.values().sum())
}

/// Headers of seqs 1..=n of one producer's stream `orders`.
fn produced(n: u64, mode: Mode) -> Vec<HashMap<String, String>> {
    let producer = Producer::builder("rabbitmq")
        .producer_id("orders-api-1")
        .mode(mode)
        .flush_interval(NEVER)
        .build();
    (0..n)
        .map(|_| {
            let mut headers = HashMap::new();
            producer
                .message("orders")
                .begin_attempt(&mut headers)
                .sent()
                .acked(None, None);
            headers
        })
        .collect()
}

fn consumer(mode: Mode, provider: &SdkMeterProvider, window: u64) -> Consumer {
    Consumer::builder("rabbitmq", "shipping")
        .mode(mode)
        .flush_interval(NEVER)
        .meter_provider(provider)
        .reorder_window(window)
        .build()
}

/// Holes, a late arrival, a redelivery by the broker's count, a copy of a processed message:
/// each counted once, under exactly the three attributes, in both modes that record.
#[test]
fn holes_late_seqs_redeliveries_and_duplicates_are_counted_in_full_and_ledger_mode() {
    for mode in [Mode::Full, Mode::Ledger] {
        let (provider, exporter) = meters();
        let c = consumer(mode, &provider, 3);
        let headers = produced(40, mode);
        let at = |seq: u64| &headers[(seq - 1) as usize];
        let deliver = |seq: u64, count: u32| {
            let mut info = DeliveryInfo::new("shipping-queue");
            info.delivery_count = count;
            c.deliver(at(seq), info)
        };
        // 1..=10 except 4, 5 and 9; then 11..=20.
        for seq in (1..=20).filter(|s| ![4, 5, 9].contains(s)) {
            deliver(seq, 1).ack();
        }
        let p = points(&provider, &exporter);
        assert_eq!(total(&p, metric::CONSUMER_MISSING), 3, "{mode}: {p:?}");
        // 9 arrives late; 3 is delivered again (the broker says so), then 2 again without a
        // count (Kafka re-consumption): both redeliveries of processed seqs.
        deliver(9, 1).ack();
        deliver(3, 2).settle(SettleOutcome::SkipDuplicate, "ack");
        deliver(2, 1).ack();
        // 21 is delivered and nacked, then redelivered: a redelivery, not a duplicate.
        deliver(21, 1).settle(SettleOutcome::Nack, "nack");
        deliver(21, 2).ack();
        let p = points(&provider, &exporter);
        let want: BTreeMap<&str, u64> = [
            (metric::CONSUMER_MISSING, 3),
            (metric::CONSUMER_LATE, 1),
            (metric::CONSUMER_REDELIVERED, 3),
            (metric::CONSUMER_DUPLICATES, 2),
        ]
        .into();
        for (name, n) in &want {
            assert_eq!(total(&p, name), *n, "{mode} {name}: {p:?}");
        }
        let attrs = vec![
            (
                attr::MESSAGING_CONSUMER_GROUP_NAME.to_owned(),
                "shipping".to_owned(),
            ),
            (
                attr::MESSAGING_DESTINATION_NAME.to_owned(),
                "shipping-queue".to_owned(),
            ),
            (attr::STREAM.to_owned(), "orders".to_owned()),
        ];
        for (name, series) in &p {
            assert_eq!(
                series.keys().collect::<Vec<_>>(),
                vec![&attrs],
                "{name}: one series, never a seq or message id"
            );
        }
        provider.shutdown().expect("shutdown");
    }
}

/// Off mode passes every call straight through: no counter, whatever arrives.
#[test]
fn off_mode_counts_nothing() {
    let (provider, exporter) = meters();
    let c = consumer(Mode::Off, &provider, 0);
    assert_eq!(c.reorder_window(), None);
    let headers = produced(10, Mode::Full);
    for seq in [1u64, 5, 5, 9] {
        c.deliver(&headers[(seq - 1) as usize], DeliveryInfo::new("q"))
            .ack();
    }
    assert!(points(&provider, &exporter).is_empty());
}

/// Turned off on the builder: nothing counted either, in a mode that records spans.
#[test]
fn live_signals_can_be_turned_off() {
    let (provider, exporter) = meters();
    let c = Consumer::builder("rabbitmq", "shipping")
        .mode(Mode::Full)
        .meter_provider(&provider)
        .live_signals(false)
        .reorder_window(0)
        .build();
    let headers = produced(10, Mode::Full);
    for seq in [1u64, 5, 5, 9] {
        c.deliver(&headers[(seq - 1) as usize], DeliveryInfo::new("q"))
            .ack();
    }
    assert!(points(&provider, &exporter).is_empty());
}

/// The hook names the seqs counted missing, then the late one, with where they happened; the
/// default window holds a hole back until the consumer is 128 seqs past it (in order, each
/// hole leaves the window with its own delivery: one call each).
#[test]
fn the_hook_names_missing_runs_and_late_seqs() {
    type Seen = Vec<(GapKind, String, String, Option<String>, Vec<(u64, u64)>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = seen.clone();
    let c = Consumer::builder("kafka", "billing")
        .mode(Mode::Full)
        .on_gap(move |gap| {
            sink.lock().expect("hook log").push((
                gap.kind,
                gap.producer_id.to_owned(),
                gap.stream.to_owned(),
                gap.partition.map(str::to_owned),
                gap.seqs.iter().map(|r| (*r.start(), *r.end())).collect(),
            ));
        })
        .build();
    assert_eq!(c.reorder_window(), Some(mqtrace::DEFAULT_REORDER_WINDOW));
    let headers = produced(400, Mode::Full);
    let info = || {
        let mut info = DeliveryInfo::new("orders");
        info.partition = Some("3".to_owned());
        info
    };
    for seq in (1..=300u64).filter(|s| !(10..=12).contains(s) && *s != 20) {
        c.deliver(&headers[(seq - 1) as usize], info()).ack();
        // Each hole is counted (one call) once the consumer is more than 128 past it.
        let expect_by_now = [10u64, 11, 12, 20]
            .iter()
            .filter(|hole| seq > *hole + 128)
            .count();
        assert_eq!(seen.lock().expect("log").len(), expect_by_now, "at {seq}");
    }
    c.deliver(&headers[19], info()).ack();
    let p = |s: &str| s.to_owned();
    assert_eq!(
        *seen.lock().expect("log"),
        vec![
            (
                GapKind::Missing,
                p("orders-api-1"),
                p("orders"),
                Some(p("3")),
                vec![(10, 10)]
            ),
            (
                GapKind::Missing,
                p("orders-api-1"),
                p("orders"),
                Some(p("3")),
                vec![(11, 11)]
            ),
            (
                GapKind::Missing,
                p("orders-api-1"),
                p("orders"),
                Some(p("3")),
                vec![(12, 12)]
            ),
            (
                GapKind::Missing,
                p("orders-api-1"),
                p("orders"),
                Some(p("3")),
                vec![(20, 20)]
            ),
            (
                GapKind::Late,
                p("orders-api-1"),
                p("orders"),
                Some(p("3")),
                vec![(20, 20)]
            ),
        ]
    );
}
