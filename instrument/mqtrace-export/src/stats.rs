//! Counts of what the exporter did with every span: exported, or dropped and why.

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanLinks};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use mqtrace::names::{SCOPE_NAME, TELEMETRY_SPAN_NAME, attr};

/// Cumulative counters of one export pipeline. Shared between the app's threads (queue-full
/// drops) and the export worker (exports and export errors).
#[derive(Debug, Default)]
pub struct TelemetryStats {
    exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_export_error: AtomicU64,
}

/// A reading of [`TelemetryStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Spans the exporter accepted.
    pub exported: u64,
    /// Spans dropped because the queue was full (drop mode) or the pipeline was shut down.
    pub dropped_queue_full: u64,
    /// Spans dropped because the exporter returned an error.
    pub dropped_export_error: u64,
}

impl StatsSnapshot {
    /// All spans dropped, for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_export_error
    }

    fn add(self, other: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            exported: self.exported + other.exported,
            dropped_queue_full: self.dropped_queue_full + other.dropped_queue_full,
            dropped_export_error: self.dropped_export_error + other.dropped_export_error,
        }
    }

    /// The sum of several pipelines' readings.
    pub fn sum(all: impl IntoIterator<Item = StatsSnapshot>) -> StatsSnapshot {
        all.into_iter().fold(StatsSnapshot::default(), Self::add)
    }
}

impl TelemetryStats {
    pub(crate) fn queue_full(&self) {
        self.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn exported(&self, n: usize) {
        self.exported.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn export_failed(&self, n: usize) {
        self.dropped_export_error
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            exported: self.exported.load(Ordering::Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Ordering::Relaxed),
            dropped_export_error: self.dropped_export_error.load(Ordering::Relaxed),
        }
    }
}

/// A fresh instance id for one pipeline: 32 random hex digits (the SDK's trace id
/// generator, so no new dependency). Random per run, never derived from the resource's
/// `service.instance.id`: that may be stable across restarts (a pod or host name), and a
/// restarted process's final report must not vouch for the run that was killed.
pub(crate) fn new_instance_id() -> String {
    RandomIdGenerator::default().new_trace_id().to_string()
}

/// The span that carries the counters to the backend, so that the analyzer can tell a
/// message lost by the broker from a span lost by the telemetry pipeline. One goes with every
/// export (a heartbeat): its end is the export's time, and the last one a killed process
/// wrote says until when its telemetry is whole.
pub(crate) fn telemetry_span(stats: StatsSnapshot, is_final: bool, instance: &str) -> SpanData {
    let ids = RandomIdGenerator::default();
    let now = SystemTime::now();
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    SpanData {
        span_context: SpanContext::new(
            ids.new_trace_id(),
            ids.new_span_id(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: opentelemetry::trace::SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: TELEMETRY_SPAN_NAME.into(),
        start_time: now,
        end_time: now,
        attributes: vec![
            KeyValue::new(attr::TELEMETRY_DROPPED, as_i64(stats.dropped())),
            KeyValue::new(
                attr::TELEMETRY_DROPPED_QUEUE_FULL,
                as_i64(stats.dropped_queue_full),
            ),
            KeyValue::new(
                attr::TELEMETRY_DROPPED_EXPORT_ERROR,
                as_i64(stats.dropped_export_error),
            ),
            KeyValue::new(attr::TELEMETRY_EXPORTED, as_i64(stats.exported)),
            KeyValue::new(attr::TELEMETRY_FINAL, is_final),
            KeyValue::new(attr::TELEMETRY_INSTANCE, instance.to_owned()),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder(SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;

    /// The heartbeat's cost: what one report adds to an export line of OTLP JSON. Measured
    /// here so that the figure in docs/contract.md stays true.
    #[test]
    fn a_heartbeat_adds_one_small_span_to_each_export() {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name("orders-api")
            .build();
        let resource = ResourceAttributesWithSchema::from(&resource);
        let reading = StatsSnapshot {
            exported: 123_456_789,
            dropped_queue_full: 0,
            dropped_export_error: 0,
        };
        let instance = new_instance_id();
        assert_eq!(instance.len(), 32, "{instance}");
        assert_ne!(instance, new_instance_id(), "random per pipeline");
        let report = || telemetry_span(reading, false, &instance);
        // A line of its own (the start report, or drops reported with nothing else to
        // export), and what one more span costs in a line whose scope is written already
        // (mqtrace's spans share the scope's name).
        let own_line = crate::json::encode_line(&[report()], &resource);
        let two = crate::json::encode_line(&[report(), report()], &resource).len();
        let in_batch = two - own_line.len();
        let text = String::from_utf8(own_line.clone()).expect("utf-8");
        assert!(text.contains(&instance) && text.contains(attr::TELEMETRY_INSTANCE));
        println!(
            "a telemetry report: {} bytes of OTLP JSON as a line of its own, {in_batch} bytes \
             in an export batch",
            own_line.len()
        );
        assert!((400..1000).contains(&in_batch), "{in_batch} bytes");
    }
}
