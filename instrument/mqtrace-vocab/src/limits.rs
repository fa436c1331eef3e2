//! Bounds on what the analyzer's readers accept or keep, so that no input can make it
//! allocate without limit.

/// The longest line of OTLP JSON read (64 MiB). The Collector's file exporter writes one
/// export request per line; its batches are a few MiB. A longer line is reported as
/// malformed and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The largest length-prefixed OTLP protobuf record accepted (64 MiB). A larger length means
/// the framing is broken; the record's bytes are never allocated up front.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Malformed records listed per file in a report; every one is still counted.
pub const MALFORMED_LISTED_PER_FILE: usize = 100;

/// How deep JSON values may nest (serde_json's own limit).
pub const MAX_JSON_DEPTH: u32 = 128;

/// The most seqs one ledger span may stand for when the analyzer reads it (10 million: a
/// flush interval of a very busy stream). A larger ledger is reported as malformed.
pub const MAX_LEDGER_SEQS: u64 = 10_000_000;

/// Exporting instances whose telemetry reports the analyzer tracks one by one (to tell one
/// that stopped without its final report). Reports of further instances are counted, and the
/// report then says it could not check them all.
pub const MAX_TRACKED_INSTANCES: usize = 10_000;

/// The longest telemetry instance id tracked, in bytes: ids are 32 hex digits as
/// mqtrace-export writes them. A report with a longer id counts as one of an instance that
/// could not be tracked (cutting it could merge two instances, and one's final report would
/// then vouch for the other).
pub const MAX_INSTANCE_ID_BYTES: usize = 128;
