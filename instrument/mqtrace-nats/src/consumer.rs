//! The consuming side over JetStream messages (from a pull or push consumer).

use async_nats::jetstream::{self, AckKind};
use futures_core::Stream;
use mqtrace::{DeliveryInfo, MessageKey, SettleOutcome};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::headers::HeaderReader;

/// Records JetStream deliveries of one durable consumer (the consumer group).
#[derive(Clone, Debug)]
pub struct TracedDurable {
    tracer: mqtrace::Consumer,
}

impl TracedDurable {
    /// Records through `tracer`, whose group should be the durable consumer's name.
    pub fn new(tracer: mqtrace::Consumer) -> Self {
        Self { tracer }
    }

    /// Records for durable `durable` through the global provider.
    pub fn named(durable: &str) -> Self {
        Self::new(mqtrace::Consumer::builder(crate::SYSTEM, durable).build())
    }

    /// The mqtrace consumer (group, id).
    pub fn tracer(&self) -> &mqtrace::Consumer {
        &self.tracer
    }

    /// Records the receipt of `message` (`deliver`): the delivery count and stream sequence
    /// come from its ack subject; the destination is its subject.
    pub fn trace(&self, message: jetstream::Message) -> TracedMessage {
        let info = if self.tracer.mode() == mqtrace::Mode::Off {
            // Off mode records nothing: no ack subject to parse, no position to build.
            Err(())
        } else {
            message.info().map_err(|_| ())
        };
        let (delivery_count, position) = match info {
            Ok(info) => (
                u32::try_from(info.delivered).unwrap_or(1),
                Some(info.stream_sequence.to_string()),
            ),
            // No ack subject (e.g. a consumer with AckPolicy::None on some servers).
            Err(_) => (1, None),
        };
        let info = DeliveryInfo {
            destination: message.subject.as_str(),
            partition: None,
            position,
            delivery_count,
            message_id: None,
        };
        let record = self
            .tracer
            .deliver(&HeaderReader(message.headers.as_ref()), info);
        TracedMessage { message, record }
    }

    /// Wraps a stream of messages (`Consumer::messages`, `fetch`, `batch`, a push
    /// consumer's `messages`): each one is recorded as it is taken.
    pub fn messages<S>(&self, inner: S) -> TracedMessages<S> {
        TracedMessages {
            inner,
            durable: self.clone(),
        }
    }
}

/// A stream of JetStream messages recorded as they are taken: a `Stream` of
/// [`TracedMessage`], errors passed through.
pub struct TracedMessages<S> {
    inner: S,
    durable: TracedDurable,
}

impl<S> std::fmt::Debug for TracedMessages<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedMessages")
            .field("group", &self.durable.tracer.group())
            .finish_non_exhaustive()
    }
}

impl<S, E> Stream for TracedMessages<S>
where
    S: Stream<Item = Result<jetstream::Message, E>> + Unpin,
{
    type Item = Result<TracedMessage, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Pin::new(&mut this.inner)
            .poll_next(cx)
            .map(|next| next.map(|r| r.map(|m| this.durable.trace(m))))
    }
}

/// One recorded delivery, waiting to be settled.
#[must_use = "settle the message (ack, nak, term, skip_duplicate) once it is processed"]
pub struct TracedMessage {
    message: jetstream::Message,
    record: mqtrace::Delivery,
}

impl std::fmt::Debug for TracedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedMessage")
            .field("key", &self.record.key())
            .field("subject", &self.message.subject)
            .finish_non_exhaustive()
    }
}

impl TracedMessage {
    /// The message.
    pub fn message(&self) -> &jetstream::Message {
        &self.message
    }

    /// The producer's numbering, when the message carried it.
    pub fn key(&self) -> Option<&MessageKey> {
        self.record.key()
    }

    /// The `deliver` span's context, to parent processing spans on.
    pub fn context(&self) -> &opentelemetry::Context {
        self.record.context()
    }

    /// Tells the server the work goes on (`+WPI`): settles nothing.
    pub async fn in_progress(&self) -> Result<(), async_nats::Error> {
        self.message.ack_with(AckKind::Progress).await
    }

    /// Processed: ack, recorded as `consume_ack` `ack`.
    pub async fn ack(self) -> Result<(), async_nats::Error> {
        let result = self.message.ack().await;
        settle(self.record, result, SettleOutcome::Ack, "ack")
    }

    /// Processed: ack and wait for the server to confirm it, recorded as `ack`.
    pub async fn double_ack(self) -> Result<(), async_nats::Error> {
        let result = self.message.double_ack().await;
        settle(self.record, result, SettleOutcome::Ack, "ack")
    }

    /// Not processed, deliver again (after `delay`): recorded as `nack`.
    pub async fn nak(self, delay: Option<Duration>) -> Result<(), async_nats::Error> {
        let result = self.message.ack_with(AckKind::Nak(delay)).await;
        settle(self.record, result, SettleOutcome::Nack, "nak")
    }

    /// Never deliver again: recorded as `reject`.
    pub async fn term(self) -> Result<(), async_nats::Error> {
        let result = self.message.ack_with(AckKind::Term).await;
        settle(self.record, result, SettleOutcome::Reject, "term")
    }

    /// A copy the app had processed already (an idempotent consumer): ack without processing,
    /// recorded as `skip_duplicate`.
    pub async fn skip_duplicate(self) -> Result<(), async_nats::Error> {
        let result = self.message.ack().await;
        settle(self.record, result, SettleOutcome::SkipDuplicate, "ack")
    }
}

fn settle(
    record: mqtrace::Delivery,
    result: Result<(), async_nats::Error>,
    outcome: SettleOutcome,
    operation: &str,
) -> Result<(), async_nats::Error> {
    match &result {
        Ok(()) => record.settle(outcome, operation),
        Err(_) => record.settle(SettleOutcome::Error, operation),
    }
    result
}
