//! The one thing `process_once` needs of a delivery, whichever client it came from.

use mqtrace::{MessageKey, SettleOutcome};
use std::future::Future;

#[cfg(feature = "kafka")]
mod for_kafka;
#[cfg(feature = "lapin")]
mod for_lapin;
#[cfg(feature = "nats")]
mod for_nats;

/// A traced delivery that can be settled: mqtrace-lapin's `TracedDelivery` (feature `lapin`),
/// mqtrace-nats' `TracedMessage` (`nats`), mqtrace-kafka's `TracedMessage` (`kafka`), and the
/// core's [`mqtrace::Delivery`] for any other client (its settles only record).
///
/// Both settles record `consume_ack` (`ack`, `skip_duplicate`) as the adapter does.
pub trait Settle: Sized {
    /// The producer's numbering, when the message carried it.
    fn key(&self) -> Option<&MessageKey>;

    /// An id for a message without the numbering (no mqtrace headers): lapin, the AMQP
    /// `message-id` property; JetStream, the `Nats-Msg-Id` header; Kafka,
    /// `topic/partition/offset` (the stored copy: a redelivery is caught, a producer's retry
    /// stored twice is not); the core's delivery, its message id. `None`: the message cannot
    /// be checked.
    fn fallback_id(&self) -> Option<String> {
        None
    }

    /// Processed: acknowledge (`consume_ack` `ack`).
    fn ack(self) -> impl Future<Output = Result<(), SettleError>> + Send;

    /// A copy already processed: acknowledge without processing (`consume_ack`
    /// `skip_duplicate`).
    fn skip_duplicate(self) -> impl Future<Output = Result<(), SettleError>> + Send;
}

/// A settle the client could not send. The broker will deliver the message again.
#[derive(Debug, thiserror::Error)]
#[error("settling the delivery failed: {0}")]
pub struct SettleError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl SettleError {
    /// Wraps the client's error (or a message).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

/// Any other client: the app settles with the broker itself; this records what it decided.
impl Settle for mqtrace::Delivery {
    fn key(&self) -> Option<&MessageKey> {
        mqtrace::Delivery::key(self)
    }

    fn fallback_id(&self) -> Option<String> {
        self.message_id().map(str::to_owned)
    }

    fn ack(self) -> impl Future<Output = Result<(), SettleError>> + Send {
        mqtrace::Delivery::ack(self);
        std::future::ready(Ok(()))
    }

    fn skip_duplicate(self) -> impl Future<Output = Result<(), SettleError>> + Send {
        self.settle(SettleOutcome::SkipDuplicate, "ack");
        std::future::ready(Ok(()))
    }
}
