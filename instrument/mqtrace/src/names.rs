//! Span names, attribute keys, header names and metric names of the mqtrace contract (SPEC §2–3,
//! §7).
//!
//! They are defined once, in the dependency-free `mqtrace-vocab` crate that the analyzer
//! reads them from too, so that the two sides cannot drift apart; this module re-exports them.

pub use mqtrace_vocab::{
    REPORT_SCHEMA, SCOPE_NAME, Stage, TELEMETRY_SPAN_NAME, attr, header, metric,
};
#[cfg(test)]
mod tests {
    use super::*;

    /// The vocabulary crate writes the conventions' keys out (it has no dependencies): they
    /// must be the keys `opentelemetry-semantic-conventions` defines.
    #[test]
    fn semconv_keys_are_the_messaging_convention_names() {
        use opentelemetry_semantic_conventions::attribute as semconv;
        assert_eq!(attr::MESSAGING_SYSTEM, semconv::MESSAGING_SYSTEM);
        assert_eq!(attr::MESSAGING_MESSAGE_ID, semconv::MESSAGING_MESSAGE_ID);
        assert_eq!(
            attr::MESSAGING_DESTINATION_NAME,
            semconv::MESSAGING_DESTINATION_NAME
        );
        assert_eq!(
            attr::MESSAGING_DESTINATION_PARTITION_ID,
            semconv::MESSAGING_DESTINATION_PARTITION_ID
        );
        assert_eq!(
            attr::MESSAGING_OPERATION_TYPE,
            semconv::MESSAGING_OPERATION_TYPE
        );
        assert_eq!(
            attr::MESSAGING_OPERATION_NAME,
            semconv::MESSAGING_OPERATION_NAME
        );
        assert_eq!(
            attr::MESSAGING_CONSUMER_GROUP_NAME,
            semconv::MESSAGING_CONSUMER_GROUP_NAME
        );
        assert_eq!(attr::ERROR_TYPE, semconv::ERROR_TYPE);
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
