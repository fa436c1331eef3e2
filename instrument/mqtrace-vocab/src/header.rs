//! Message header names the producer writes and the consumer reads back (SPEC §3).

/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state.
pub const TRACESTATE: &str = "tracestate";
/// The producer id.
pub const PRODUCER_ID: &str = "mqtrace-producer-id";
/// The stream.
pub const STREAM: &str = "mqtrace-stream";
/// The seq, in decimal.
pub const SEQ: &str = "mqtrace-seq";
/// The message id.
pub const MESSAGE_ID: &str = "mqtrace-message-id";
/// The send attempt that wrote these headers (1 = first try), in decimal. Not in SPEC §3:
/// adapters of brokers that give a stored copy no identity of its own (RabbitMQ) name the
/// copy by the attempt that stored it, so that a retry stored twice shows as two copies.
pub const ATTEMPT: &str = "mqtrace-attempt";

/// The compact form (SPEC §3 v2): all of mqtrace's numbering in one header (see
/// [`crate::compact`]).
pub const COMPACT: &str = "mqtrace";

/// Every header name above: adapters whose clients want `'static` names map to these.
pub const ALL: [&str; 8] = [
    COMPACT,
    TRACEPARENT,
    TRACESTATE,
    PRODUCER_ID,
    STREAM,
    SEQ,
    MESSAGE_ID,
    ATTEMPT,
];
