//! Metric names of the live signals at the consumer (SPEC §7): counters a traced consumer
//! exports through the app's OpenTelemetry `MeterProvider` while messages arrive, as early
//! warnings (the analyzer's report stays the verdict).
//!
//! Every one of them carries exactly the attributes in [`ATTRIBUTES`], never a seq or a
//! message id (one time series per message would ruin any metrics backend).

use crate::attr;

/// Counter: seqs still missing once the consumer is the reorder window past them (a hole in
/// the seqs it delivered, counted once).
pub const CONSUMER_MISSING: &str = "mqtrace.consumer.missing";
/// Counter: seqs counted in [`CONSUMER_MISSING`] that arrived after all. Still missing, as far
/// as the consumer knows: `missing − late`.
pub const CONSUMER_LATE: &str = "mqtrace.consumer.late";
/// Counter: deliveries of a seq the consumer had delivered before (or that the broker marks
/// as a redelivery).
pub const CONSUMER_REDELIVERED: &str = "mqtrace.consumer.redelivered";
/// Counter: deliveries of a seq the consumer had processed before (settled with `ack` or
/// `skip_duplicate`): a copy an idempotent consumer must skip. Each is a redelivery too.
pub const CONSUMER_DUPLICATES: &str = "mqtrace.consumer.duplicates";

/// The unit of every live counter (a count of messages, in UCUM's annotation form).
pub const UNIT_MESSAGES: &str = "{message}";

/// The attributes every live counter carries: the stream, the destination as the consumer
/// names it, the consumer group.
pub const ATTRIBUTES: [&str; 3] = [
    attr::STREAM,
    attr::MESSAGING_DESTINATION_NAME,
    attr::MESSAGING_CONSUMER_GROUP_NAME,
];
