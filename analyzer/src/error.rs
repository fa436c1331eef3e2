//! Errors that stop an analysis (bad records never do: they are counted and reported).

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// The paths given hold no trace files, or cannot be read.
    #[error(transparent)]
    Discover(#[from] mqtrace_reader::DiscoverError),
    /// A bad option value.
    #[error("{0}")]
    Usage(String),
    /// The input holds more of something than the analyzer's keys can tell apart.
    #[error("{0}")]
    TooLarge(String),
    /// A ClickHouse source could not be analysed.
    #[error(transparent)]
    ClickHouse(#[from] crate::clickhouse::ClickHouseError),
    /// The query engine failed (a bug: please report it with the input that caused it).
    #[error("analysis failed: {}", first_line(.0))]
    Polars(#[from] polars::error::PolarsError),
}

/// Polars errors carry the whole query plan after the first line: keep the message.
fn first_line(e: &polars::error::PolarsError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}
