//! # mqtrace-export: get mqtrace's spans out, and never lose one silently
//!
//! ## Overview
//!
//! One call sets up the OpenTelemetry SDK for an app instrumented with `mqtrace`: spans go to
//! an OTLP backend (gRPC or HTTP, configured by the standard `OTEL_EXPORTER_OTLP_*` and
//! `OTEL_SERVICE_NAME` variables), to OTLP JSON-lines files for offline analysis, or both.
//!
//! ## Concepts
//!
//! - The app's thread only pushes a finished span into a bounded queue; a worker thread
//!   batches and exports ([`CountingBatchProcessor`]).
//! - When the queue is full, [`Overflow::Drop`] (default) drops and counts the span,
//!   [`Overflow::Block`] makes the app wait. Export errors are counted too.
//! - The counts travel with the spans: the worker adds a `mqtrace telemetry` span carrying
//!   `mqtrace.telemetry.dropped_spans` whenever the count moves, and always on shutdown, so
//!   the analyzer can tell telemetry loss from message loss.
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
pub use otlp::{OtlpProtocol, otlp_exporter};
pub use processor::{CountingBatchProcessor, Driver};
pub use stats::{StatsSnapshot, TelemetryStats};

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::path::PathBuf;
use std::sync::Arc;

/// Exports to files in `dir` with the defaults (and env overrides); installs the global
/// tracer provider.
pub fn init_files(dir: impl Into<PathBuf>) -> Result<Telemetry, ExportError> {
    Telemetry::builder().file(dir).install()
}

/// Exports over OTLP as the `OTEL_EXPORTER_OTLP_*` variables say; installs the global tracer
/// provider.
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
        let mut provider = SdkTracerProvider::builder().with_resource(resource);
        let mut stats = Vec::new();
        let mut runtime = None;
        for (dir, max) in self.files {
            let mut exporter = FileExporter::new(dir)?;
            if let Some(max) = max {
                exporter = exporter.with_max_file_bytes(max);
            }
            let processor = CountingBatchProcessor::new(exporter, batch.clone(), Driver::Thread)
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
            let processor = CountingBatchProcessor::new(exporter, batch.clone(), driver)
                .map_err(ExportError::Worker)?;
            stats.push(processor.stats());
            provider = provider.with_span_processor(processor);
        }
        Ok(Telemetry {
            provider: provider.build(),
            stats,
            _runtime: runtime,
            shut_down: false,
        })
    }

    /// Builds the pipeline and installs it as the global tracer provider.
    pub fn install(self) -> Result<Telemetry, ExportError> {
        let telemetry = self.build()?;
        opentelemetry::global::set_tracer_provider(telemetry.provider.clone());
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
    stats: Vec<Arc<TelemetryStats>>,
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

    /// The counts so far, summed over all destinations.
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::sum(self.stats.iter().map(|s| s.snapshot()))
    }

    /// Exports everything queued so far, ledgers included ([`mqtrace::flush_ledgers`]).
    pub fn flush(&self) -> Result<(), ExportError> {
        mqtrace::flush_ledgers();
        Ok(self.provider.force_flush()?)
    }

    /// Exports everything queued (ledgers included), closes the destinations, and returns
    /// the final counts.
    pub fn shutdown(mut self) -> Result<StatsSnapshot, ExportError> {
        self.shut_down = true;
        // Ledger-mode producers and consumers may outlive this pipeline (held by tasks the
        // runtime drops later): what their ledgers hold must go out while it still can.
        mqtrace::flush_ledgers();
        self.provider.shutdown()?;
        Ok(self.stats())
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if !self.shut_down {
            mqtrace::flush_ledgers();
            let _ = self.provider.shutdown();
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
}
