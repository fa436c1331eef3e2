//! # mqtrace-reader: trace files into span columns, every bad record accounted for
//!
//! Reads OTLP trace files — JSON lines as the OpenTelemetry Collector's file exporter and
//! `mqtrace-export` write them, or length-prefixed OTLP protobuf; plain, gzip or zstd — in
//! parallel blocks, straight into columns of the spans the analyzer keys on
//! (producer id, stream, seq). Every reader feeds one [`SpanSink`] that commits a record only
//! when all of it was read; every record it cannot use is counted and named (file:line or
//! byte), never dropped silently. It has no dependency on the analysis engine, so that fuzzing
//! it builds in seconds.
//!
//! ## Usage
//!
//! ```
//! use mqtrace_reader::{discover, load};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let line = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"send orders","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"mqtrace.stage","value":{"stringValue":"produce"}},{"key":"mqtrace.producer.id","value":{"stringValue":"p"}},{"key":"mqtrace.stream","value":{"stringValue":"orders"}},{"key":"mqtrace.seq","value":{"intValue":"1"}}]}]}]}]}"#;
//! std::fs::write(dir.path().join("spans.jsonl"), format!("{line}\nnot json\n"))?;
//!
//! let files = discover(&[dir.path().to_path_buf()])?;
//! let mut rows = 0;
//! let loaded = load(&files, &|_| {}, &mut |spans| rows += spans.seq.len())?;
//! assert_eq!(rows, 1);
//! assert_eq!(loaded.streams, [("p".to_owned(), "orders".to_owned())]);
//! // The bad line is counted and named, the good one still read.
//! assert_eq!(loaded.stats.malformed_total, 1);
//! assert_eq!(loaded.stats.malformed[0].at.line, Some(2));
//! # Ok(()) }
//! ```

mod attrs;
pub mod columns;
mod extract;
mod files;
#[doc(hidden)]
pub mod json;
pub mod ledgers;
mod load;
mod malformed;
mod proto;
pub mod semconv;
mod sink;
mod stats;

pub use attrs::{Key, Scalar, TraceId};
pub use files::{Compression, DiscoverError, Format, InputFile, Opened, classify, discover, open};
pub use load::{LoadError, Loaded, load};
pub use malformed::{Location, Malformed};
pub use sink::SpanSink;
pub use stats::{InputStats, Reporter, StoppedInstance, TelemetryHealth, WindowEdge};

/// Entry points for the fuzz targets (`fuzz/`): not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::json::{Readers, read_lines};

    /// The loader's read of one block: fills `buf` until the input ends or a read fails,
    /// returning how much was read and whether it failed.
    pub fn fill(input: &mut dyn std::io::Read, buf: &mut [u8]) -> (usize, bool) {
        let (got, error) = crate::files::fill(input, buf);
        (got, error.is_some())
    }

    /// Reads `bytes` as a protobuf file; the sinks of its pieces.
    pub fn read_protobuf(bytes: &[u8]) -> Vec<crate::SpanSink> {
        let mut out = Vec::new();
        crate::proto::read(bytes, &|_| {}, &mut |p| out.push(p));
        out
    }
}
