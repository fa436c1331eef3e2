//! # mqtrace-vocab: the words both sides of mqtrace use
//!
//! The instrumentation writes spans, headers and live metrics; the analyzer reads the spans
//! back and writes a report. Every name, stage, outcome, finding kind, key width and input
//! limit they share is defined once here, in a crate without dependencies, so that the two
//! sides cannot drift apart and the analyzer does not pull in OpenTelemetry to learn a string.
//!
//! ## Usage
//!
//! ```
//! use mqtrace_vocab::{Stage, SettleOutcome, attr, finding};
//!
//! assert_eq!(Stage::parse("store_ack"), Some(Stage::StoreAck));
//! assert_eq!(SettleOutcome::SkipDuplicate.as_str(), "skip_duplicate");
//! assert_eq!(attr::SEQ, "mqtrace.seq");
//! assert_eq!(mqtrace_vocab::metric::CONSUMER_MISSING, "mqtrace.consumer.missing");
//! assert_eq!(finding::Kind::Lost.as_str(), "lost");
//! assert_eq!(finding::key(finding::Kind::Lost, Some(finding::Where::Store)), "lost/store");
//! ```

pub mod attr;
pub mod compact;
pub mod finding;
pub mod header;
pub mod keys;
pub mod limits;
pub mod metric;
pub mod semconv;
pub mod seqs;
mod stage;

pub use stage::{SettleOutcome, Stage, StoreOutcome};

/// Name of the span the exporter emits to report its own health (see
/// [`attr::TELEMETRY_DROPPED`]).
pub const TELEMETRY_SPAN_NAME: &str = "mqtrace telemetry";

/// Instrumentation scope name of the spans mqtrace records.
pub const SCOPE_NAME: &str = "mqtrace";

/// Report schema id written by the analyzer (SPEC §6).
pub const REPORT_SCHEMA: &str = "mqtrace.report/v1";
