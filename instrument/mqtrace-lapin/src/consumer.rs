//! The consuming side over a lapin `Consumer` (or deliveries got any other way).

use futures_core::Stream;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::ShortString;
use lapin::{Channel, Consumer};
use mqtrace::{DeliveryInfo, MessageKey, SettleOutcome};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::attempt_position;
use crate::headers::{TableReader, x_delivery_count};

/// Records deliveries from one queue; the queue is the consumer group.
#[derive(Clone, Debug)]
pub struct TracedQueue {
    tracer: mqtrace::Consumer,
    queue: Arc<str>,
    auto_ack: bool,
}

impl TracedQueue {
    /// Deliveries from `queue`, recorded through `tracer` (whose group should be the queue).
    pub fn new(queue: &str, tracer: mqtrace::Consumer) -> Self {
        Self {
            tracer,
            queue: queue.into(),
            auto_ack: false,
        }
    }

    /// Deliveries come with `no_ack` (auto-ack: `basic_consume` with `no_ack`, `basic_get`
    /// with `no_ack`): the broker forgot each message when it sent it, so settling sends
    /// nothing (an ack would close the channel) and only records what the app decided.
    pub fn auto_ack(mut self, on: bool) -> Self {
        self.auto_ack = on;
        self
    }

    /// Deliveries from `queue`, group `queue`, recorded through the global provider.
    pub fn named(queue: &str) -> Self {
        Self::new(
            queue,
            mqtrace::Consumer::builder(crate::SYSTEM, queue).build(),
        )
    }

    /// The mqtrace consumer (group, id).
    pub fn tracer(&self) -> &mqtrace::Consumer {
        &self.tracer
    }

    /// Records the receipt of `delivery` (`deliver`). The delivery count is the quorum
    /// queue's `x-delivery-count` + 1 where present, else 2 for a redelivery, else 1.
    pub fn trace(&self, delivery: Delivery) -> TracedDelivery {
        let headers = delivery.properties.headers().as_ref();
        let incoming = mqtrace::headers::extract(&TableReader(headers));
        let delivery_count = match x_delivery_count(headers) {
            Some(n) => n.saturating_add(1),
            None if delivery.redelivered => 2,
            None => 1,
        };
        let info = DeliveryInfo {
            destination: &self.queue,
            partition: None,
            // Off mode records nothing: no position to build.
            position: incoming
                .attempt
                .filter(|_| self.tracer.mode() != mqtrace::Mode::Off)
                .map(attempt_position),
            delivery_count,
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.as_str().to_owned()),
        };
        let record = self.tracer.deliver_with(incoming, info);
        TracedDelivery {
            delivery,
            record,
            auto_ack: self.auto_ack,
        }
    }

    /// `basic_get` of one message from this queue on `channel`, recorded.
    pub async fn basic_get(
        &self,
        channel: &Channel,
        options: BasicGetOptions,
    ) -> lapin::Result<Option<TracedDelivery>> {
        let got = channel
            .basic_get(ShortString::from(&*self.queue), options)
            .await?;
        Ok(got.map(|m| self.trace(m.delivery)))
    }
}

/// A lapin `Consumer` whose deliveries are recorded as they are taken from it: a `Stream` of
/// [`TracedDelivery`]. With `no_ack` (auto-ack), the broker forgets a message once it is
/// sent; settling it here only records that it was processed.
pub struct TracedConsumer {
    inner: Consumer,
    queue: TracedQueue,
}

impl std::fmt::Debug for TracedConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedConsumer")
            .field("queue", &self.queue.queue)
            .field("group", &self.queue.tracer.group())
            .finish_non_exhaustive()
    }
}

impl TracedConsumer {
    /// Wraps `inner`, recording through `tracer`.
    pub fn new(inner: Consumer, tracer: mqtrace::Consumer) -> Self {
        let queue = TracedQueue::new(inner.queue().as_str(), tracer);
        Self { inner, queue }
    }

    /// Wraps `inner` with its queue as the group, recording through the global provider.
    pub fn from_queue(inner: Consumer) -> Self {
        let queue = TracedQueue::named(inner.queue().as_str());
        Self { inner, queue }
    }

    /// Says that `inner` was started with `no_ack` (see [`TracedQueue::auto_ack`]).
    pub fn auto_ack(mut self, on: bool) -> Self {
        self.queue = self.queue.auto_ack(on);
        self
    }

    /// The wrapped consumer.
    pub fn inner(&self) -> &Consumer {
        &self.inner
    }

    /// The queue's recorder.
    pub fn queue(&self) -> &TracedQueue {
        &self.queue
    }
}

impl Stream for TracedConsumer {
    type Item = lapin::Result<TracedDelivery>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Pin::new(&mut this.inner)
            .poll_next(cx)
            .map(|next| next.map(|r| r.map(|d| this.queue.trace(d))))
    }
}

/// One recorded delivery, waiting to be settled.
#[must_use = "settle the delivery (ack, nack, reject, skip_duplicate) once it is processed"]
pub struct TracedDelivery {
    delivery: Delivery,
    record: mqtrace::Delivery,
    auto_ack: bool,
}

impl std::fmt::Debug for TracedDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedDelivery")
            .field("key", &self.record.key())
            .field("delivery_tag", &self.delivery.delivery_tag)
            .finish_non_exhaustive()
    }
}

impl TracedDelivery {
    /// The delivery.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The producer's numbering, when the message carried it.
    pub fn key(&self) -> Option<&MessageKey> {
        self.record.key()
    }

    /// The `deliver` span's context, to parent processing spans on.
    pub fn context(&self) -> &opentelemetry::Context {
        self.record.context()
    }

    /// Processed: `basic_ack`, recorded as `consume_ack` `ack`.
    pub async fn ack(self, options: BasicAckOptions) -> lapin::Result<bool> {
        let result = self.send(|d| d.ack(options)).await;
        settle(self.record, result, SettleOutcome::Ack, "ack")
    }

    /// `basic_nack`, recorded as `consume_ack` `nack`.
    pub async fn nack(self, options: BasicNackOptions) -> lapin::Result<bool> {
        let result = self.send(|d| d.nack(options)).await;
        settle(self.record, result, SettleOutcome::Nack, "nack")
    }

    /// `basic_reject`, recorded as `consume_ack` `reject`.
    pub async fn reject(self, options: BasicRejectOptions) -> lapin::Result<bool> {
        let result = self.send(|d| d.reject(options)).await;
        settle(self.record, result, SettleOutcome::Reject, "reject")
    }

    /// A copy the app had processed already (an idempotent consumer): `basic_ack` without
    /// processing, recorded as `consume_ack` `skip_duplicate`.
    pub async fn skip_duplicate(self, options: BasicAckOptions) -> lapin::Result<bool> {
        let result = self.send(|d| d.ack(options)).await;
        settle(self.record, result, SettleOutcome::SkipDuplicate, "ack")
    }
}

impl TracedDelivery {
    /// Sends the settle, unless the deliveries are auto-acked.
    async fn send<'a, F, Fut>(&'a self, op: F) -> lapin::Result<bool>
    where
        F: FnOnce(&'a Delivery) -> Fut,
        Fut: std::future::Future<Output = lapin::Result<bool>>,
    {
        if self.auto_ack {
            Ok(true)
        } else {
            op(&self.delivery).await
        }
    }
}

/// Records the settle; one that failed, or that lapin did not send (`Ok(false)`: the channel
/// closed or the delivery was settled already), is recorded as `error`.
fn settle(
    record: mqtrace::Delivery,
    result: lapin::Result<bool>,
    outcome: SettleOutcome,
    operation: &str,
) -> lapin::Result<bool> {
    match &result {
        Ok(true) => record.settle(outcome, operation),
        Ok(false) => record.settle(SettleOutcome::Error, operation),
        Err(_) => record.settle(SettleOutcome::Error, operation),
    }
    result
}
