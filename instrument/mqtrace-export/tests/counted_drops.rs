//! Telemetry never vanishes silently: every span is exported or counted as dropped, and the
//! count itself reaches the backend.

use mqtrace::names::{TELEMETRY_SPAN_NAME, attr};
use mqtrace_export::{BatchConfig, CountingBatchProcessor, Driver, Overflow};
use opentelemetry::Value;
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps what it is given; each export takes `delay`, and fails while `failing` is set.
#[derive(Clone, Debug, Default)]
struct SlowExporter {
    spans: Arc<Mutex<Vec<SpanData>>>,
    delay: Duration,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl SpanExporter for SlowExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::thread::sleep(self.delay);
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(OTelSdkError::InternalFailure("backend down".into()));
        }
        self.spans.lock().expect("lock").extend(batch);
        Ok(())
    }
}

fn telemetry_reports(spans: &[SpanData]) -> Vec<(i64, bool)> {
    spans
        .iter()
        .filter(|s| s.name == TELEMETRY_SPAN_NAME)
        .map(|s| {
            let get = |k: &str| {
                s.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.clone())
            };
            let dropped = match get(attr::TELEMETRY_DROPPED) {
                Some(Value::I64(v)) => v,
                other => panic!("dropped count missing: {other:?}"),
            };
            (
                dropped,
                get(attr::TELEMETRY_FINAL) == Some(Value::Bool(true)),
            )
        })
        .collect()
}

/// A provider exporting through `exporter` with a queue of `queue` spans, and its counters.
fn pipeline(
    exporter: &SlowExporter,
    queue: usize,
    batch: usize,
    overflow: Overflow,
) -> (
    SdkTracerProvider,
    std::sync::Arc<mqtrace_export::TelemetryStats>,
) {
    let config = BatchConfig {
        max_queue_size: queue,
        max_export_batch_size: batch,
        scheduled_delay: Duration::from_millis(5),
        overflow,
    };
    let processor =
        CountingBatchProcessor::new(exporter.clone(), config, Driver::Thread).expect("processor");
    let stats = processor.stats();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    (provider, stats)
}

fn run(
    overflow: Overflow,
    exporter: SlowExporter,
    n: usize,
) -> (mqtrace_export::StatsSnapshot, Vec<SpanData>) {
    let (provider, stats) = pipeline(&exporter, 8, 4, overflow);
    let tracer = provider.tracer("t");
    for i in 0..n {
        tracer.in_span(format!("span {i}"), |_| {});
    }
    provider.shutdown().expect("shutdown");
    let spans = exporter.spans.lock().expect("lock").clone();
    (stats.snapshot(), spans)
}

#[test]
fn a_full_queue_drops_and_counts_and_reports_the_count() {
    let exporter = SlowExporter {
        delay: Duration::from_millis(20),
        ..SlowExporter::default()
    };
    let (stats, spans) = run(Overflow::Drop, exporter, 500);
    let app: Vec<_> = spans
        .iter()
        .filter(|s| s.name != TELEMETRY_SPAN_NAME)
        .collect();
    assert!(
        stats.dropped_queue_full > 0,
        "a queue of 8 cannot hold a burst of 500"
    );
    assert_eq!(stats.exported as usize, app.len());
    assert_eq!(
        stats.exported + stats.dropped(),
        500,
        "every span accounted for"
    );
    let reports = telemetry_reports(&spans);
    let (last_count, last_is_final) = *reports.last().expect("a telemetry report");
    assert!(last_is_final);
    assert_eq!(
        last_count as u64,
        stats.dropped(),
        "the backend learns the exact count"
    );
}

#[test]
fn block_mode_never_drops() {
    let exporter = SlowExporter {
        delay: Duration::from_millis(2),
        ..SlowExporter::default()
    };
    let (stats, spans) = run(Overflow::Block, exporter, 300);
    assert_eq!((stats.exported, stats.dropped()), (300, 0));
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.name != TELEMETRY_SPAN_NAME)
            .count(),
        300
    );
    // A report goes with every export (the heartbeat) and one at shutdown: all say 0, and
    // only the last is final.
    let reports = telemetry_reports(&spans);
    assert!(reports.len() >= 2, "heartbeats and the final report");
    assert_eq!(
        reports.last(),
        Some(&(0, true)),
        "a clean run says 0 explicitly"
    );
    assert!(
        reports[..reports.len() - 1]
            .iter()
            .all(|r| *r == (0, false)),
        "{reports:?}"
    );
}

#[test]
fn export_errors_are_counted_and_reported_once_the_backend_is_back() {
    let exporter = SlowExporter::default();
    exporter
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (provider, stats) = pipeline(&exporter, 1024, 10, Overflow::Block);
    let tracer = provider.tracer("t");
    for i in 0..30 {
        tracer.in_span(format!("lost {i}"), |_| {});
    }
    provider.force_flush().expect_err("the backend is down");
    assert_eq!(stats.snapshot().dropped_export_error, 30);
    exporter
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    for i in 0..5 {
        tracer.in_span(format!("kept {i}"), |_| {});
    }
    provider.shutdown().expect("shutdown");
    let spans = exporter.spans.lock().expect("lock").clone();
    assert_eq!(
        spans.iter().filter(|s| s.name.starts_with("kept")).count(),
        5
    );
    assert_eq!(telemetry_reports(&spans).last(), Some(&(30, true)));
}
