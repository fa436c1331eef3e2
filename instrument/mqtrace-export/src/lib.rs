//! # mqtrace-export: get mqtrace's spans out, and never lose one silently
//!
//! ## Overview
//!
//! One call sets up the OpenTelemetry SDK for an app instrumented with `mqtrace`: spans go to
//! an OTLP backend (gRPC or HTTP, configured by the standard `OTEL_EXPORTER_OTLP_*` and
//! `OTEL_SERVICE_NAME` variables), to OTLP JSON-lines files for offline analysis, or both.
//! Beside each OTLP destination the consumers' live counters (SPEC §7:
//! `mqtrace.consumer.missing`, …) go out as OTLP metrics every `OTEL_METRIC_EXPORT_INTERVAL`
//! (default 60 s), unless `OTEL_METRICS_EXPORTER` says `none`; files receive spans only (the
//! analyzer reads them).
//!
//! ## Concepts
//!
//! - The app's thread only pushes a finished span into a bounded queue; a worker thread
//!   batches and exports ([`CountingBatchProcessor`]).
//! - When the queue is full, [`Overflow::Drop`] (default) drops and counts the span,
//!   [`Overflow::Block`] makes the app wait. Export errors are counted too.
//! - The counts travel with the spans: the worker adds a `mqtrace telemetry` span carrying
//!   `mqtrace.telemetry.dropped_spans` and the pipeline's instance id when it starts, to
//!   every export (a heartbeat) and at shutdown (`final`), so the analyzer can tell telemetry
//!   loss from message loss, and a killed process (reports that stop without the final one)
//!   from one that shut down.
//! - Files are written as the OpenTelemetry Collector's file exporter writes them
//!   ([`FileExporter`]), one line per batch, rotated by size.
//!
//! ## Usage
//!
//! ```
//! # fn main() -> Result<(), mqtrace_export::ExportError> {
//! let dir = std::env::temp_dir().join(format!("mqtrace-doc-{}", std::process::id()));
//! let telemetry = mqtrace_export::init_files(&dir)?; // also installs the global provider
//!
//! let producer = mqtrace::Producer::builder("kafka").build();
//! let mut headers = std::collections::HashMap::new();
//! producer.message("orders").begin_attempt(&mut headers).sent().acked(Some("0/1"), Some("0"));
//!
//! let stats = telemetry.shutdown()?; // flushes, and reports what happened to every span
//! assert_eq!((stats.exported, stats.dropped()), (2, 0));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```
//!
//! The environment tunes the pipeline without code changes: `MQTRACE_EXPORT_OVERFLOW`
//! (`drop`|`block`), `MQTRACE_EXPORT_QUEUE_SIZE`, `MQTRACE_EXPORT_BATCH_SIZE`,
//! `MQTRACE_EXPORT_DELAY_MS`, plus OpenTelemetry's own `OTEL_*` variables.
//!
//! `MQTRACE_MODE` (`full`|`ledger`|`off`, see [`Mode`]) chooses what the instrumentation
//! records: every `mqtrace::Producer` and `mqtrace::Consumer` builder (the adapters' too) reads
//! it as its default, so `MQTRACE_MODE=ledger` switches an app to ledgers (SPEC §2b) without
//! code changes. [`Telemetry::flush`], [`Telemetry::shutdown`] and dropping the [`Telemetry`]
//! first export what the ledgers of every live ledger-mode producer and consumer hold
//! ([`mqtrace::flush_ledgers`]), so that a ledger is not left behind a closed pipeline.

mod config;
mod error;
mod file;
mod json;
mod otlp;
mod processor;
mod stats;

pub use config::{
    BatchConfig, DEFAULT_MAX_EXPORT_BATCH_SIZE, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_SCHEDULED_DELAY, ENV_MAX_EXPORT_BATCH_SIZE, ENV_MAX_QUEUE_SIZE, ENV_OVERFLOW,
    ENV_SCHEDULED_DELAY_MS, Overflow,
};
pub use error::ExportError;
pub use file::FileExporter;
pub use mqtrace::{ENV_MODE, Mode};
pub use otlp::{OtlpProtocol, otlp_exporter, otlp_metric_exporter, otlp_metrics_from_env};
pub use processor::{CountingBatchProcessor, Driver};
pub use stats::{StatsSnapshot, TelemetryStats};

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{MeterProviderBuilder, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::path::PathBuf;
use std::sync::Arc;

/// The resource attribute OpenTelemetry names a service instance by.
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// Exports to files in `dir` with the defaults (and env overrides); installs the global
/// tracer provider.
pub fn init_files(dir: impl Into<PathBuf>) -> Result<Telemetry, ExportError> {
    Telemetry::builder().file(dir).install()
}

/// Exports over OTLP as the `OTEL_EXPORTER_OTLP_*` variables say, spans and (unless
/// `OTEL_METRICS_EXPORTER=none`) the live counters; installs the global tracer and meter
/// providers.
pub fn init_otlp() -> Result<Telemetry, ExportError> {
    Telemetry::builder()
        .otlp(OtlpProtocol::from_env(), None)
        .install()
}

/// Configures the pipeline: destinations, batching, service name.
#[derive(Debug, Default)]
pub struct TelemetryBuilder {
    files: Vec<(PathBuf, Option<u64>)>,
    otlp: Vec<(OtlpProtocol, Option<String>)>,
    batch: Option<BatchConfig>,
    service_name: Option<String>,
    resource: Vec<opentelemetry::KeyValue>,
    /// `.metrics(false)`: no OTLP metrics beside the OTLP destinations.
    no_otlp_metrics: bool,
    /// Readers added with `.metric_exporter(..)`.
    meters: Option<MeterProviderBuilder>,
}

impl TelemetryBuilder {
    /// Also write OTLP JSON lines into `dir`.
    pub fn file(mut self, dir: impl Into<PathBuf>) -> Self {
        self.files.push((dir.into(), None));
        self
    }

    /// Also write OTLP JSON lines into `dir`, starting a new file every `max_file_bytes`.
    pub fn rotating_file(mut self, dir: impl Into<PathBuf>, max_file_bytes: u64) -> Self {
        self.files.push((dir.into(), Some(max_file_bytes)));
        self
    }

    /// Also export over OTLP; `endpoint` overrides `OTEL_EXPORTER_OTLP_*ENDPOINT` (for HTTP,
    /// the full URL including `/v1/traces`).
    pub fn otlp(mut self, protocol: OtlpProtocol, endpoint: Option<&str>) -> Self {
        self.otlp.push((protocol, endpoint.map(str::to_owned)));
        self
    }

    /// Whether each OTLP destination also receives the live counters as OTLP metrics (default
    /// on; off too when `OTEL_METRICS_EXPORTER` is set and does not name `otlp`, e.g. `none`:
    /// see [`otlp_metrics_from_env`]). Exporters given to
    /// [`metric_exporter`](Self::metric_exporter) are kept either way.
    pub fn metrics(mut self, on: bool) -> Self {
        self.no_otlp_metrics = !on;
        self
    }

    /// Also export metrics through `exporter`, read every `OTEL_METRIC_EXPORT_INTERVAL`
    /// (default 60 s) and at [`Telemetry::flush`] and shutdown: e.g. the SDK's
    /// `InMemoryMetricExporter` in tests, or any other push exporter.
    ///
    /// ```
    /// # fn main() -> Result<(), mqtrace_export::ExportError> {
    /// use opentelemetry_sdk::metrics::InMemoryMetricExporter;
    ///
    /// let metrics = InMemoryMetricExporter::default();
    /// let dir = std::env::temp_dir().join(format!("mqtrace-doc-m-{}", std::process::id()));
    /// let telemetry = mqtrace_export::Telemetry::builder()
    ///     .file(&dir)
    ///     .metric_exporter(metrics.clone())
    ///     .build()?;
    /// let consumer = mqtrace::Consumer::builder("rabbitmq", "shipping")
    ///     .tracer_provider(telemetry.provider())
    ///     .meter_provider(telemetry.meter_provider().expect("a metric exporter was given"))
    ///     .build();
    /// # drop(consumer);
    /// telemetry.flush()?; // the counters reach `metrics`
    /// # telemetry.shutdown()?;
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok(()) }
    /// ```
    pub fn metric_exporter<E: PushMetricExporter>(mut self, exporter: E) -> Self {
        let meters = self.meters.take().unwrap_or_else(SdkMeterProvider::builder);
        self.meters = Some(meters.with_periodic_exporter(exporter));
        self
    }

    /// Batching and overflow (default: [`BatchConfig::from_env`]).
    pub fn batch(mut self, config: BatchConfig) -> Self {
        self.batch = Some(config);
        self
    }

    /// Shortcut for the overflow policy, keeping the other batch settings.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        let mut batch = self.batch.take().unwrap_or_else(BatchConfig::from_env);
        batch.overflow = overflow;
        self.batch = Some(batch);
        self
    }

    /// `service.name` when `OTEL_SERVICE_NAME` is not set (the variable wins, as operators
    /// expect).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Adds a resource attribute (e.g. `deployment.environment.name`, or the project name a
    /// backend routes by).
    pub fn resource_attribute(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.resource
            .push(opentelemetry::KeyValue::new(key, value.into()));
        self
    }

    /// Builds the pipeline without touching the global provider.
    pub fn build(self) -> Result<Telemetry, ExportError> {
        if self.files.is_empty() && self.otlp.is_empty() {
            return Err(ExportError::NoDestination);
        }
        let batch = self.batch.unwrap_or_else(BatchConfig::from_env);
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            if let Some(name) = self.service_name {
                resource = resource.with_service_name(name);
            }
        }
        let resource = resource.with_attributes(self.resource).build();
        // One id per run of this pipeline, on its telemetry reports (the analyzer tells a
        // killed process by reports that stop without a final one); also the resource's
        // `service.instance.id` when the app set none, so a backend can join the two.
        let instance = stats::new_instance_id();
        let resource = if resource
            .get(&opentelemetry::Key::from_static_str(SERVICE_INSTANCE_ID))
            .is_some()
        {
            resource
        } else {
            Resource::builder_empty()
                .with_attributes(
                    resource
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
                )
                .with_attribute(KeyValue::new(SERVICE_INSTANCE_ID, instance.clone()))
                .build()
        };
        let otlp_metrics = !self.no_otlp_metrics && otlp_metrics_from_env();
        let mut meters = self.meters;
        let mut provider = SdkTracerProvider::builder().with_resource(resource.clone());
        let mut stats = Vec::new();
        let mut runtime = None;
        for (dir, max) in self.files {
            let mut exporter = FileExporter::new(dir)?;
            if let Some(max) = max {
                exporter = exporter.with_max_file_bytes(max);
            }
            let processor = CountingBatchProcessor::with_instance(
                exporter,
                batch.clone(),
                Driver::Thread,
                instance.clone(),
            )
            .map_err(ExportError::Worker)?;
            stats.push(processor.stats());
            provider = provider.with_span_processor(processor);
        }
        for (protocol, endpoint) in self.otlp {
            let driver = match protocol {
                OtlpProtocol::HttpProtobuf => Driver::Thread,
                OtlpProtocol::Grpc => Driver::Tokio(grpc_runtime(&mut runtime)?),
            };
            let exporter = match &driver {
                Driver::Tokio(handle) => {
                    let _entered = handle.enter();
                    otlp_exporter(protocol, endpoint.as_deref())?
                }
                Driver::Thread => otlp_exporter(protocol, endpoint.as_deref())?,
            };
            if otlp_metrics {
                // Metrics go where the spans go; only an env-configured destination lets the
                // metrics-specific protocol variable choose otherwise.
                let protocol = if endpoint.is_some() {
                    protocol
                } else {
                    OtlpProtocol::metrics_from_env(protocol)
                };
                let metric_exporter = match protocol {
                    // Tonic's channel spawns its worker on the runtime it is built in; the
                    // periodic reader's own thread then only waits for the answers.
                    OtlpProtocol::Grpc => {
                        let handle = grpc_runtime(&mut runtime)?;
                        let _entered = handle.enter();
                        otlp_metric_exporter(protocol, endpoint.as_deref())?
                    }
                    OtlpProtocol::HttpProtobuf => {
                        otlp_metric_exporter(protocol, endpoint.as_deref())?
                    }
                };
                let builder = meters.take().unwrap_or_else(SdkMeterProvider::builder);
                meters = Some(builder.with_periodic_exporter(metric_exporter));
            }
            let processor = CountingBatchProcessor::with_instance(
                exporter,
                batch.clone(),
                driver,
                instance.clone(),
            )
            .map_err(ExportError::Worker)?;
            stats.push(processor.stats());
            provider = provider.with_span_processor(processor);
        }
        Ok(Telemetry {
            provider: provider.build(),
            meter_provider: meters.map(|m| m.with_resource(resource).build()),
            stats,
            instance,
            _runtime: runtime,
            shut_down: false,
        })
    }

    /// Builds the pipeline and installs it as the global tracer provider, and as the global
    /// meter provider when it exports metrics. Consumers built afterwards count their live
    /// signals through it.
    pub fn install(self) -> Result<Telemetry, ExportError> {
        let telemetry = self.build()?;
        opentelemetry::global::set_tracer_provider(telemetry.provider.clone());
        if let Some(meters) = &telemetry.meter_provider {
            opentelemetry::global::set_meter_provider(meters.clone());
        }
        Ok(telemetry)
    }
}

/// gRPC needs a tokio runtime: the app's, or a small one owned by the pipeline.
fn grpc_runtime(
    owned: &mut Option<tokio::runtime::Runtime>,
) -> Result<tokio::runtime::Handle, ExportError> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        return Ok(handle);
    }
    if owned.is_none() {
        *owned = Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("mqtrace-grpc")
                .enable_all()
                .build()
                .map_err(ExportError::Worker)?,
        );
    }
    owned
        .as_ref()
        .map(|rt| rt.handle().clone())
        .ok_or(ExportError::NoDestination)
}

/// A running pipeline. Flushes and shuts down on drop; call [`shutdown`](Self::shutdown) to
/// learn the final counts.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    /// `None` when nothing receives metrics (files only, or metrics turned off).
    meter_provider: Option<SdkMeterProvider>,
    stats: Vec<Arc<TelemetryStats>>,
    /// The id this run's telemetry reports carry (`mqtrace.telemetry.instance`).
    instance: String,
    _runtime: Option<tokio::runtime::Runtime>,
    shut_down: bool,
}

impl Telemetry {
    /// A builder.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder::default()
    }

    /// The tracer provider, to hand to `Producer::builder(..).tracer_provider(..)` or to a
    /// `tracing-opentelemetry` layer.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The meter provider, to hand to `Consumer::builder(..).meter_provider(..)`; `None` when
    /// the pipeline exports no metrics (files only, or OTLP metrics turned off, and no
    /// [`metric_exporter`](TelemetryBuilder::metric_exporter)).
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// The id this pipeline's telemetry reports carry (`mqtrace.telemetry.instance`,
    /// random per run; also the resource's `service.instance.id` unless the app set one).
    /// A report that names it stops without a final one when the process is killed.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The counts so far, summed over all destinations.
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::sum(self.stats.iter().map(|s| s.snapshot()))
    }

    /// Exports everything queued so far, ledgers included ([`mqtrace::flush_ledgers`]), and
    /// the metrics as they stand.
    pub fn flush(&self) -> Result<(), ExportError> {
        mqtrace::flush_ledgers();
        let spans = self.provider.force_flush();
        if let Some(meters) = &self.meter_provider {
            meters.force_flush()?;
        }
        Ok(spans?)
    }

    /// Exports everything queued (ledgers included), closes the destinations, and returns
    /// the final counts.
    pub fn shutdown(mut self) -> Result<StatsSnapshot, ExportError> {
        self.shut_down = true;
        // Ledger-mode producers and consumers may outlive this pipeline (held by tasks the
        // runtime drops later): what their ledgers hold must go out while it still can.
        mqtrace::flush_ledgers();
        // Both pipelines close whatever the other did; the spans' error is the one reported
        // first (the spans are the evidence, the metrics an early warning).
        let spans = self.provider.shutdown();
        let metrics = self.meter_provider.as_ref().map(SdkMeterProvider::shutdown);
        spans?;
        if let Some(metrics) = metrics {
            metrics?;
        }
        Ok(self.stats())
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if !self.shut_down {
            mqtrace::flush_ledgers();
            let _ = self.provider.shutdown();
            if let Some(meters) = &self.meter_provider {
                let _ = meters.shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    /// Ledger-mode producers and consumers still alive when the app shuts the pipeline down:
    /// what their ledgers hold reaches the files first.
    #[test]
    fn shutdown_exports_the_ledgers_of_live_producers_and_consumers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let telemetry = Telemetry::builder()
            .file(dir.path())
            .build()
            .expect("pipeline");
        let producer = mqtrace::Producer::builder("kafka")
            .producer_id("p-ledger")
            .tracer_provider(telemetry.provider())
            .mode(Mode::Ledger)
            .flush_interval(Duration::from_secs(3600))
            .build();
        let consumer = mqtrace::Consumer::builder("kafka", "shipping")
            .tracer_provider(telemetry.provider())
            .mode(Mode::Ledger)
            .flush_interval(Duration::from_secs(3600))
            .build();
        for _ in 0..10 {
            let mut headers: HashMap<String, String> = HashMap::new();
            producer
                .message("orders")
                .begin_attempt(&mut headers)
                .sent()
                .acked(Some("0/1"), Some("0"));
            consumer
                .deliver(&headers, mqtrace::DeliveryInfo::new("orders"))
                .ack();
        }
        let stats = telemetry.shutdown().expect("shutdown");
        assert_eq!(
            (stats.exported, stats.dropped()),
            (3, 0),
            "three ledger spans"
        );

        let mut text = String::new();
        for entry in std::fs::read_dir(dir.path()).expect("output dir") {
            let path = entry.expect("dir entry").path();
            text.push_str(&std::fs::read_to_string(path).expect("read"));
        }
        assert_eq!(text.matches("\"mqtrace ledger orders\"").count(), 3);
        assert_eq!(
            text.matches("\"stringValue\":\"1-10\"").count(),
            3,
            "{text}"
        );
        assert!(!text.contains("\"mqtrace.seq\""), "no per-message span");
        drop((producer, consumer));
    }

    /// Files alone receive no metrics; a metric exporter given to the builder receives the
    /// consumers' live counters at flush.
    #[test]
    fn live_counters_reach_a_metric_exporter_and_files_get_none() {
        use opentelemetry_sdk::metrics::InMemoryMetricExporter;
        let dir = tempfile::tempdir().expect("tempdir");
        let files_only = Telemetry::builder()
            .file(dir.path())
            .build()
            .expect("files");
        assert!(files_only.meter_provider().is_none());
        files_only.shutdown().expect("shutdown");

        let metrics = InMemoryMetricExporter::default();
        let telemetry = Telemetry::builder()
            .file(dir.path())
            .metric_exporter(metrics.clone())
            .build()
            .expect("pipeline");
        let producer = mqtrace::Producer::builder("kafka")
            .tracer_provider(telemetry.provider())
            .build();
        let consumer = mqtrace::Consumer::builder("kafka", "shipping")
            .tracer_provider(telemetry.provider())
            .meter_provider(telemetry.meter_provider().expect("metrics"))
            .reorder_window(0)
            .build();
        for seq in 1..=5 {
            let mut headers: HashMap<String, String> = HashMap::new();
            producer
                .message("orders")
                .begin_attempt(&mut headers)
                .sent()
                .acked(Some("0/1"), Some("0"));
            if seq != 3 {
                consumer
                    .deliver(&headers, mqtrace::DeliveryInfo::new("orders"))
                    .ack();
            }
        }
        telemetry.flush().expect("flush");
        let exported = metrics.get_finished_metrics().expect("in-memory exporter");
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        let missing: Vec<u64> = exported
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|sm| sm.metrics())
            .filter(|m| m.name() == mqtrace::names::metric::CONSUMER_MISSING)
            .flat_map(|m| match m.data() {
                AggregatedMetrics::U64(MetricData::Sum(sum)) => {
                    sum.data_points().map(|p| p.value()).collect::<Vec<u64>>()
                }
                other => panic!("not a u64 counter: {other:?}"),
            })
            .collect();
        assert_eq!(missing, vec![1], "seq 3, once");
        telemetry.shutdown().expect("shutdown");
        drop((producer, consumer));
    }
}
