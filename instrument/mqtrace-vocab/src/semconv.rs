//! The messaging semantic conventions as third-party instrumentations write them (SPEC §4b):
//! the one table of which attribute keys, current and older, carry each fact the analyzer
//! reads from spans without mqtrace's numbering, and which operation names mean what.
//!
//! Instrumentations lag the conventions by years: Java's agent, the Python and Node packages
//! and most Go and .NET libraries still write the keys of 1.x releases before 1.24
//! (`messaging.destination`, `messaging.operation`, `messaging.message_id`,
//! `messaging.kafka.*`), newer ones the current keys. Both are read; where a span carries
//! both, the first key of a role's list (the current one) wins.

/// A fact a messaging span carries, whichever generation of the conventions named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `messaging.system`.
    System,
    /// Where the message was sent to or received from.
    Destination,
    /// What the span did: `send`, `receive`, `process`, `settle`, … (or the old
    /// `publish`, `create`, `deliver`).
    OperationType,
    /// The system's own name for the operation (`ack`, `nack`, `publish`, …).
    OperationName,
    /// The message's id.
    MessageId,
    /// The consumer group (Kafka group, RocketMQ client group, Event Hubs consumer group,
    /// subscription).
    ConsumerGroup,
    /// The partition.
    Partition,
    /// The Kafka offset of the message in its partition.
    Offset,
    /// RabbitMQ's routing key.
    RoutingKey,
}

/// Each role's keys, the preferred (current) one first.
pub const KEYS: &[(Role, &[&str])] = &[
    (Role::System, &["messaging.system"]),
    (
        Role::Destination,
        // `messaging.source.name`: the consumer side's name in releases 1.17 to 1.21.
        &[
            "messaging.destination.name",
            "messaging.destination",
            "messaging.source.name",
        ],
    ),
    (
        Role::OperationType,
        &["messaging.operation.type", "messaging.operation"],
    ),
    (Role::OperationName, &["messaging.operation.name"]),
    (
        Role::MessageId,
        &["messaging.message.id", "messaging.message_id"],
    ),
    (
        Role::ConsumerGroup,
        &[
            "messaging.consumer.group.name",
            "messaging.destination.subscription.name",
            "messaging.kafka.consumer.group",
            "messaging.kafka.consumer_group",
            "messaging.rocketmq.client_group",
            "messaging.eventhubs.consumer.group",
        ],
    ),
    (
        Role::Partition,
        &[
            "messaging.destination.partition.id",
            "messaging.kafka.destination.partition",
            "messaging.kafka.source.partition",
            "messaging.kafka.partition",
        ],
    ),
    (
        Role::Offset,
        &["messaging.kafka.offset", "messaging.kafka.message.offset"],
    ),
    (
        Role::RoutingKey,
        &[
            "messaging.rabbitmq.destination.routing_key",
            "messaging.rabbitmq.routing_key",
        ],
    ),
];

/// The role of an attribute key and its rank in the role's list (0: the current key), or
/// `None` for keys of no role.
pub fn role(key: &str) -> Option<(Role, u8)> {
    // Only messaging keys have roles: one prefix test spares the table walk for the rest.
    if !key.starts_with("messaging.") {
        return None;
    }
    KEYS.iter().find_map(|(role, keys)| {
        let rank = keys.iter().position(|k| *k == key)?;
        Some((*role, u8::try_from(rank).unwrap_or(u8::MAX)))
    })
}

/// What a messaging span did for a message, from its operation and its span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// The producer sent (or created) a message.
    Send,
    /// A consumer received one, without processing it in this span (a poll, a batch).
    Receive,
    /// A consumer processed one (or the old conventions' `deliver`).
    Process,
    /// A consumer settled a delivery: ack, nack, reject, commit.
    Settle,
}

/// OTLP span kinds (`Span.kind`).
pub mod span_kind {
    /// `SPAN_KIND_INTERNAL`.
    pub const INTERNAL: i64 = 1;
    /// `SPAN_KIND_SERVER`.
    pub const SERVER: i64 = 2;
    /// `SPAN_KIND_CLIENT`.
    pub const CLIENT: i64 = 3;
    /// `SPAN_KIND_PRODUCER`.
    pub const PRODUCER: i64 = 4;
    /// `SPAN_KIND_CONSUMER`.
    pub const CONSUMER: i64 = 5;
}

impl Operation {
    /// The operation named by `messaging.operation.type` (or the old `messaging.operation`),
    /// case-insensitively.
    pub fn parse(name: &str) -> Option<Operation> {
        let is = |w: &str| name.eq_ignore_ascii_case(w);
        Some(if is("send") || is("publish") || is("create") {
            Operation::Send
        } else if is("receive") {
            Operation::Receive
        } else if is("process") || is("deliver") {
            Operation::Process
        } else if is("settle") {
            Operation::Settle
        } else {
            return None;
        })
    }

    /// What a span did: a PRODUCER span is a send and a CONSUMER span a delivery whatever
    /// their operation says (except a CONSUMER span saying it settles); other kinds by their
    /// operation alone.
    pub fn of(kind: i64, operation: Option<&str>) -> Option<Operation> {
        let named = operation.and_then(Operation::parse);
        match kind {
            span_kind::PRODUCER => Some(Operation::Send),
            span_kind::CONSUMER => Some(match named {
                Some(op @ (Operation::Receive | Operation::Settle)) => op,
                _ => Operation::Process,
            }),
            _ => named,
        }
    }
}

/// Whether a settle named so (`messaging.operation.name`, or mqtrace's own
/// `mqtrace.outcome`) says the message was not processed: a nack, a reject, a dead-letter,
/// an abandon, an error.
pub fn settle_refuses(name: &str) -> bool {
    [
        "nack",
        "reject",
        "dead_letter",
        "deadletter",
        "abandon",
        "error",
    ]
    .iter()
    .any(|w| name.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_one_role_and_current_keys_rank_first() {
        let mut seen = std::collections::HashSet::new();
        for (role_of, keys) in KEYS {
            for (rank, key) in keys.iter().enumerate() {
                assert!(seen.insert(*key), "{key} twice");
                assert_eq!(role(key), Some((*role_of, rank as u8)));
            }
        }
        assert_eq!(role("messaging.destination"), Some((Role::Destination, 1)));
        assert_eq!(role("messaging.batch.message_count"), None);
        assert_eq!(role("http.method"), None);
    }

    #[test]
    fn kinds_decide_before_operations() {
        use span_kind::*;
        assert_eq!(
            Operation::of(PRODUCER, Some("receive")),
            Some(Operation::Send)
        );
        assert_eq!(Operation::of(CONSUMER, None), Some(Operation::Process));
        assert_eq!(
            Operation::of(CONSUMER, Some("receive")),
            Some(Operation::Receive)
        );
        assert_eq!(
            Operation::of(CLIENT, Some("settle")),
            Some(Operation::Settle)
        );
        assert_eq!(
            Operation::of(INTERNAL, Some("Publish")),
            Some(Operation::Send)
        );
        assert_eq!(Operation::of(CLIENT, Some("declare")), None);
        assert!(settle_refuses("NACK") && !settle_refuses("ack"));
    }
}
