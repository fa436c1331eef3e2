//! Attribute keys: the `mqtrace.*` ones this project adds, and the OpenTelemetry messaging
//! conventions' keys it uses. The conventions' keys are written out here (this crate has no
//! dependencies); the core crate's tests check them against `opentelemetry-semantic-conventions`.

/// `produce` | `store_ack` | `deliver` | `consume_ack`, or [`LEDGER`] on a ledger span.
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

/// The value of [`STAGE`] on a ledger span (SPEC §2b): one span standing for many stage
/// events of one stream on one side, instead of one span per event.
pub const LEDGER: &str = "ledger";
/// Ledger span: which stage's events it stands for: `store_ack` (first attempts acked `ok`,
/// each seq standing for its `produce` and its `store_ack`), `deliver` (first deliveries) or
/// `consume_ack` (settled with `ack`).
pub const LEDGER_OF: &str = "mqtrace.ledger.of";
/// Ledger span: the seqs it stands for, as sorted, disjoint, inclusive ranges
/// (`1-1000,1002,1004-2000`; see [`crate::seqs::SeqRanges`]).
pub const SEQS: &str = "mqtrace.seqs";
/// Ledger span: how many seqs [`SEQS`] holds (int).
pub const LEDGER_COUNT: &str = "mqtrace.ledger.count";
/// Ledger mode, on the full `deliver` span of a seq this consumer instance had delivered
/// before through its `deliver` ledger: the broker position of that earlier delivery, which
/// the ledger holds without positions. With it the analyzer tells two stored copies (a
/// producer's duplicate) from one copy delivered twice, as it does from two full spans.
pub const LEDGER_POSITION: &str = "mqtrace.ledger.position";

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
/// Telemetry health: the exporting pipeline's instance id (string; random, one per run of a
/// process's pipeline). Every report carries it, one report per export batch (a heartbeat),
/// so that an instance whose reports stop without a [`TELEMETRY_FINAL`] one shows as a
/// process that died with spans unexported.
pub const TELEMETRY_INSTANCE: &str = "mqtrace.telemetry.instance";

/// `messaging.system` (e.g. `kafka`, `rabbitmq`, `nats`).
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// `messaging.message.id`.
pub const MESSAGING_MESSAGE_ID: &str = "messaging.message.id";
/// `messaging.destination.name`.
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// `messaging.destination.partition.id`.
pub const MESSAGING_DESTINATION_PARTITION_ID: &str = "messaging.destination.partition.id";
/// `messaging.operation.type` (`send`, `process`, `receive`, `settle`).
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
/// `messaging.operation.name` (`send`, `process`, `ack`, `nack`, `commit`, …).
pub const MESSAGING_OPERATION_NAME: &str = "messaging.operation.name";
/// `messaging.consumer.group.name`.
pub const MESSAGING_CONSUMER_GROUP_NAME: &str = "messaging.consumer.group.name";
/// `error.type`.
pub const ERROR_TYPE: &str = "error.type";

/// The prefix of every messaging-convention key: a span carrying one is a messaging span.
pub const MESSAGING_PREFIX: &str = "messaging.";
