//! Span names, attribute keys and header names of the mqtrace contract (SPEC §2–3).
//!
//! Defined once here so that the instrumentation that writes them and the analyzer that reads
//! them cannot drift apart.

/// The stage a span records, the value of [`attr::STAGE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// One send attempt, recorded when the client call returns.
    Produce,
    /// The broker's answer to one attempt (or the attempt giving up).
    StoreAck,
    /// One delivery of the message to a consumer.
    Deliver,
    /// The consumer settling one delivery.
    ConsumeAck,
}

impl Stage {
    /// All stages, in the order a message goes through them.
    pub const ALL: [Stage; 4] = [
        Stage::Produce,
        Stage::StoreAck,
        Stage::Deliver,
        Stage::ConsumeAck,
    ];

    /// The attribute value, e.g. `store_ack`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Produce => "produce",
            Stage::StoreAck => "store_ack",
            Stage::Deliver => "deliver",
            Stage::ConsumeAck => "consume_ack",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Attribute keys: the `mqtrace.*` ones this project adds, and the OpenTelemetry messaging
/// conventions' keys it uses (re-exported from `opentelemetry-semantic-conventions`).
pub mod attr {
    use opentelemetry_semantic_conventions::attribute as semconv;

    /// `produce` | `store_ack` | `deliver` | `consume_ack`.
    pub const STAGE: &str = "mqtrace.stage";
    /// The producer instance that numbered the message (string).
    pub const PRODUCER_ID: &str = "mqtrace.producer.id";
    /// The numbered stream within that producer (string; default: the destination name).
    pub const STREAM: &str = "mqtrace.stream";
    /// The message's number in its stream (int ≥ 1, gap-free).
    pub const SEQ: &str = "mqtrace.seq";
    /// The send attempt (int, 1 = first try); retries keep the seq and bump this.
    pub const ATTEMPT: &str = "mqtrace.attempt";
    /// The result of a `store_ack` or `consume_ack`.
    pub const OUTCOME: &str = "mqtrace.outcome";
    /// The stored copy's identity (Kafka `partition/offset`, JetStream stream sequence).
    pub const BROKER_POSITION: &str = "mqtrace.broker.position";
    /// `store_ack`: the broker recognised the attempt as a copy of a message it had stored
    /// already and did not store it again (JetStream's `Nats-Msg-Id` deduplication).
    pub const BROKER_DUPLICATE: &str = "mqtrace.broker.duplicate";
    /// The consumer instance that received or settled a delivery.
    pub const CONSUMER_ID: &str = "mqtrace.consumer.id";
    /// Which delivery of the message this is (int, 1 = first).
    pub const DELIVERY_COUNT: &str = "mqtrace.delivery.count";

    /// Telemetry health: spans dropped so far by this process's exporter (cumulative, int).
    pub const TELEMETRY_DROPPED: &str = "mqtrace.telemetry.dropped_spans";
    /// Telemetry health: of those, dropped because the export queue was full (cumulative).
    pub const TELEMETRY_DROPPED_QUEUE_FULL: &str = "mqtrace.telemetry.dropped_queue_full";
    /// Telemetry health: of those, dropped because the exporter failed (cumulative).
    pub const TELEMETRY_DROPPED_EXPORT_ERROR: &str = "mqtrace.telemetry.dropped_export_error";
    /// Telemetry health: spans handed to the exporter successfully (cumulative).
    pub const TELEMETRY_EXPORTED: &str = "mqtrace.telemetry.exported_spans";
    /// Telemetry health: true on the report sent at shutdown (the counts are final).
    pub const TELEMETRY_FINAL: &str = "mqtrace.telemetry.final";

    /// `messaging.system` (e.g. `kafka`, `rabbitmq`, `nats`).
    pub const MESSAGING_SYSTEM: &str = semconv::MESSAGING_SYSTEM;
    /// `messaging.message.id`.
    pub const MESSAGING_MESSAGE_ID: &str = semconv::MESSAGING_MESSAGE_ID;
    /// `messaging.destination.name`.
    pub const MESSAGING_DESTINATION_NAME: &str = semconv::MESSAGING_DESTINATION_NAME;
    /// `messaging.destination.partition.id`.
    pub const MESSAGING_DESTINATION_PARTITION_ID: &str =
        semconv::MESSAGING_DESTINATION_PARTITION_ID;
    /// `messaging.operation.type` (`send`, `process`, `receive`, `settle`).
    pub const MESSAGING_OPERATION_TYPE: &str = semconv::MESSAGING_OPERATION_TYPE;
    /// `messaging.operation.name` (`send`, `process`, `ack`, `nack`, `commit`, …).
    pub const MESSAGING_OPERATION_NAME: &str = semconv::MESSAGING_OPERATION_NAME;
    /// `messaging.consumer.group.name`.
    pub const MESSAGING_CONSUMER_GROUP_NAME: &str = semconv::MESSAGING_CONSUMER_GROUP_NAME;
    /// `error.type`.
    pub const ERROR_TYPE: &str = semconv::ERROR_TYPE;
}

/// Message header names the producer writes and the consumer reads back (SPEC §3).
pub mod header {
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

    /// Every header name above: adapters whose clients want `'static` names map to these.
    pub const ALL: [&str; 7] = [
        TRACEPARENT,
        TRACESTATE,
        PRODUCER_ID,
        STREAM,
        SEQ,
        MESSAGE_ID,
        ATTEMPT,
    ];
}

/// Name of the span the exporter emits to report its own health (see [`attr::TELEMETRY_DROPPED`]).
pub const TELEMETRY_SPAN_NAME: &str = "mqtrace telemetry";

/// Instrumentation scope name of the spans this crate records.
pub const SCOPE_NAME: &str = "mqtrace";

/// Report schema id written by the analyzer (SPEC §6).
pub const REPORT_SCHEMA: &str = "mqtrace.report/v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_values_are_the_spec_strings() {
        let names: Vec<_> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["produce", "store_ack", "deliver", "consume_ack"]);
    }

    #[test]
    fn semconv_keys_are_the_messaging_convention_names() {
        assert_eq!(attr::MESSAGING_SYSTEM, "messaging.system");
        assert_eq!(attr::MESSAGING_MESSAGE_ID, "messaging.message.id");
        assert_eq!(
            attr::MESSAGING_DESTINATION_NAME,
            "messaging.destination.name"
        );
        assert_eq!(
            attr::MESSAGING_DESTINATION_PARTITION_ID,
            "messaging.destination.partition.id"
        );
        assert_eq!(attr::MESSAGING_OPERATION_TYPE, "messaging.operation.type");
        assert_eq!(attr::MESSAGING_OPERATION_NAME, "messaging.operation.name");
        assert_eq!(
            attr::MESSAGING_CONSUMER_GROUP_NAME,
            "messaging.consumer.group.name"
        );
        assert_eq!(attr::ERROR_TYPE, "error.type");
    }
}
