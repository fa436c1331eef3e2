//! Errors of setting up an export pipeline.

use std::path::PathBuf;

/// Why a pipeline could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A file or directory could not be created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The OTLP exporter could not be built (bad endpoint, bad protocol, …).
    #[error("OTLP exporter: {0}")]
    Otlp(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The export worker thread or runtime could not start.
    #[error("starting the export worker: {0}")]
    Worker(std::io::Error),
    /// Flushing or shutting down failed (the exporter's own error).
    #[error("flushing telemetry: {0}")]
    Sdk(#[from] opentelemetry_sdk::error::OTelSdkError),
    /// No destination was configured.
    #[error("no destination: call .file(dir) or .otlp(..) on the builder")]
    NoDestination,
}
