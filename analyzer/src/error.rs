//! Errors that stop an analysis (bad records never do: they are counted and reported).

use std::path::PathBuf;

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// A path given on the command line does not exist or cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Nothing to analyze under the given paths.
    #[error(
        "no trace files under {paths}: expected OTLP JSON lines (.json, .jsonl) or OTLP protobuf \
         (.pb, .binpb), optionally compressed (.gz, .zst)"
    )]
    NoInput {
        /// The paths, joined.
        paths: String,
    },
    /// A bad option value.
    #[error("{0}")]
    Usage(String),
    /// The input holds more of something than the analyzer's keys can tell apart.
    #[error("{0}")]
    TooLarge(String),
    /// The query engine failed (a bug: please report it with the input that caused it).
    #[error("analysis failed: {}", first_line(.0))]
    Polars(#[from] polars::error::PolarsError),
}

/// Polars errors carry the whole query plan after the first line: keep the message.
fn first_line(e: &polars::error::PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}
