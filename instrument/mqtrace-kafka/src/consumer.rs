//! The consuming side over rdkafka's `StreamConsumer` and `BaseConsumer`.

use mqtrace::{Consumer, Delivery, DeliveryInfo, MessageKey, SettleOutcome};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::util::Timeout;

use crate::headers::{HeaderReader, NoHeaders};

/// The offset calls a settle makes, on whichever rdkafka consumer is wrapped.
pub trait OffsetStore {
    /// `store_offset_from_message`.
    fn store(&self, message: &BorrowedMessage<'_>) -> KafkaResult<()>;
    /// `commit_message`.
    fn commit(&self, message: &BorrowedMessage<'_>, mode: CommitMode) -> KafkaResult<()>;
}

impl<C: ConsumerContext + 'static, R> OffsetStore for StreamConsumer<C, R> {
    fn store(&self, message: &BorrowedMessage<'_>) -> KafkaResult<()> {
        self.store_offset_from_message(message)
    }
    fn commit(&self, message: &BorrowedMessage<'_>, mode: CommitMode) -> KafkaResult<()> {
        self.commit_message(message, mode)
    }
}

impl<C: ConsumerContext + 'static> OffsetStore for BaseConsumer<C> {
    fn store(&self, message: &BorrowedMessage<'_>) -> KafkaResult<()> {
        self.store_offset_from_message(message)
    }
    fn commit(&self, message: &BorrowedMessage<'_>, mode: CommitMode) -> KafkaResult<()> {
        self.commit_message(message, mode)
    }
}

/// A `StreamConsumer` (or `BaseConsumer`) whose deliveries are traced: `deliver` on receipt,
/// `consume_ack` when the app marks the message done ([`TracedMessage::ack`] stores its
/// offset for the next commit). Offsets committed any other way (auto-commit of offsets
/// stored on receipt, a commit before processing) settle nothing: a crash then shows as a
/// delivery never settled.
pub struct TracedConsumer<K = StreamConsumer> {
    inner: K,
    tracer: Consumer,
    auto_offset_store: bool,
}

impl<K> std::fmt::Debug for TracedConsumer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedConsumer")
            .field("group", &self.tracer.group())
            .field("consumer_id", &self.tracer.consumer_id())
            .finish_non_exhaustive()
    }
}

impl<K> TracedConsumer<K> {
    /// Wraps `inner`. `auto_offset_store` must say whether `enable.auto.offset.store` is on
    /// (librdkafka's default), in which case [`TracedMessage::ack`] stores nothing itself.
    pub fn new(inner: K, tracer: Consumer, auto_offset_store: bool) -> Self {
        Self {
            inner,
            tracer,
            auto_offset_store,
        }
    }

    /// The wrapped client.
    pub fn inner(&self) -> &K {
        &self.inner
    }

    /// The mqtrace consumer (group, id).
    pub fn tracer(&self) -> &Consumer {
        &self.tracer
    }

    /// Records the `deliver` span of a message received from the wrapped client.
    pub fn trace<'a>(&'a self, message: BorrowedMessage<'a>) -> TracedMessage<'a, K> {
        // Off mode records nothing: no partition and position strings to build.
        let recording = self.tracer.mode() != mqtrace::Mode::Off;
        let at = recording
            .then(|| crate::position::Position::new(message.partition(), message.offset()));
        let info = DeliveryInfo {
            destination: message.topic(),
            partition: at.as_ref().map(|at| at.partition().to_owned()),
            position: at.as_ref().map(|at| at.position().to_owned()),
            delivery_count: 1,
            message_id: None,
        };
        let delivery = match message.headers() {
            Some(h) => self.tracer.deliver(&HeaderReader(h), info),
            None => self.tracer.deliver(&NoHeaders, info),
        };
        TracedMessage {
            consumer: self,
            message,
            delivery,
        }
    }
}

impl<C: ConsumerContext + 'static, R> TracedConsumer<StreamConsumer<C, R>> {
    /// Receives the next message and records its `deliver` span.
    pub async fn recv(&self) -> KafkaResult<TracedMessage<'_, StreamConsumer<C, R>>> {
        let message = self.inner.recv().await?;
        Ok(self.trace(message))
    }
}

impl<C: ConsumerContext + 'static> TracedConsumer<BaseConsumer<C>> {
    /// Polls for the next message (like `BaseConsumer::poll`) and records its `deliver` span.
    pub fn poll(
        &self,
        timeout: impl Into<Timeout>,
    ) -> Option<KafkaResult<TracedMessage<'_, BaseConsumer<C>>>> {
        self.inner
            .poll(timeout)
            .map(|r| r.map(|message| self.trace(message)))
    }
}

/// A received message whose delivery is recorded, waiting to be settled.
#[must_use = "ack() the message once it is processed"]
pub struct TracedMessage<'a, K = StreamConsumer> {
    consumer: &'a TracedConsumer<K>,
    message: BorrowedMessage<'a>,
    delivery: Delivery,
}

impl<K> std::fmt::Debug for TracedMessage<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedMessage")
            .field("key", &self.delivery.key())
            .finish_non_exhaustive()
    }
}

impl<'a, K: OffsetStore> TracedMessage<'a, K> {
    /// The message.
    pub fn message(&self) -> &BorrowedMessage<'a> {
        &self.message
    }

    /// The producer's numbering, when the message carried it.
    pub fn key(&self) -> Option<&MessageKey> {
        self.delivery.key()
    }

    /// Processed: stores the offset for the next commit and records `consume_ack` `ack`.
    pub fn ack(self) -> KafkaResult<()> {
        if !self.consumer.auto_offset_store {
            if let Err(e) = self.consumer.inner.store(&self.message) {
                self.delivery.settle(SettleOutcome::Error, "commit");
                return Err(e);
            }
        }
        self.delivery.settle(SettleOutcome::Ack, "commit");
        Ok(())
    }

    /// Processed: commits its offset now and records `consume_ack` `ack`.
    pub fn commit(self, mode: CommitMode) -> KafkaResult<()> {
        match self.consumer.inner.commit(&self.message, mode) {
            Ok(()) => {
                self.delivery.settle(SettleOutcome::Ack, "commit");
                Ok(())
            }
            Err(e) => {
                self.delivery.settle(SettleOutcome::Error, "commit");
                Err(e)
            }
        }
    }

    /// A copy the app had processed already (an idempotent consumer): stores the offset
    /// and records `consume_ack` `skip_duplicate`.
    pub fn skip_duplicate(self) -> KafkaResult<()> {
        if !self.consumer.auto_offset_store {
            self.consumer.inner.store(&self.message)?;
        }
        self.delivery.settle(SettleOutcome::SkipDuplicate, "commit");
        Ok(())
    }
}
