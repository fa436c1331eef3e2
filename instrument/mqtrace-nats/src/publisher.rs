//! The publishing side over a JetStream `Context`.

use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::{self, publish::PublishAck};
use bytes::Bytes;
use mqtrace::names::attr;
use mqtrace::{OutgoingMessage, PendingAck, Producer};
use opentelemetry::KeyValue;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use crate::SYSTEM;
use crate::headers::HeaderWriter;

/// A JetStream context whose publishes are numbered and traced: `produce` when the publish
/// is sent, `store_ack` from the PubAck (stream sequence as position; a duplicate the
/// stream's dedup window caught is marked `mqtrace.broker.duplicate`).
#[derive(Clone)]
pub struct TracedJetStream {
    context: jetstream::Context,
    tracer: Producer,
    dedup_ids: bool,
}

impl std::fmt::Debug for TracedJetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedJetStream")
            .field("producer_id", &self.tracer.producer_id())
            .field("dedup_ids", &self.dedup_ids)
            .finish_non_exhaustive()
    }
}

impl TracedJetStream {
    /// Wraps `context`; spans are recorded through `tracer` (built with system `nats`).
    pub fn new(context: jetstream::Context, tracer: Producer) -> Self {
        Self {
            context,
            tracer,
            dedup_ids: false,
        }
    }

    /// Wraps `context` with a producer of the given id, recording through the global provider.
    pub fn with_producer_id(context: jetstream::Context, producer_id: &str) -> Self {
        Self::new(
            context,
            Producer::builder(SYSTEM).producer_id(producer_id).build(),
        )
    }

    /// Sends each message's mqtrace message id as its `Nats-Msg-Id`, so that the stream's
    /// duplicate window stores a retried message once (the PubAck then says `duplicate`).
    pub fn dedup_ids(mut self, on: bool) -> Self {
        self.dedup_ids = on;
        self
    }

    /// The wrapped context.
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// The mqtrace producer (its id, its streams).
    pub fn tracer(&self) -> &Producer {
        &self.tracer
    }

    /// Numbers a new message for `subject`, on the stream named after it. Keep it to retry
    /// with the same seq.
    pub fn message(&self, subject: &str) -> OutgoingMessage {
        self.tracer.message(subject)
    }

    /// Publishes a new message (like `Context::publish`).
    pub async fn publish(
        &self,
        subject: &str,
        payload: Bytes,
    ) -> Result<TracedAckFuture, PublishError> {
        self.send_publish(subject, Publish::build().payload(payload))
            .await
    }

    /// Publishes a new message with headers (like `Context::publish_with_headers`).
    pub async fn publish_with_headers(
        &self,
        subject: &str,
        headers: async_nats::HeaderMap,
        payload: Bytes,
    ) -> Result<TracedAckFuture, PublishError> {
        self.send_publish(subject, Publish::build().payload(payload).headers(headers))
            .await
    }

    /// Publishes a new message built by `Publish` (like `Context::send_publish`).
    pub async fn send_publish(
        &self,
        subject: &str,
        publish: Publish,
    ) -> Result<TracedAckFuture, PublishError> {
        let mut message = self.message(subject);
        self.publish_attempt(&mut message, subject, publish).await
    }

    /// One publish attempt of `message` (a retry when it was sent before): adds the headers,
    /// sends, and returns the PubAck to await.
    pub async fn publish_attempt(
        &self,
        message: &mut OutgoingMessage,
        subject: &str,
        mut publish: Publish,
    ) -> Result<TracedAckFuture, PublishError> {
        let mut writer = HeaderWriter::default();
        let attempt = message.begin_attempt(&mut writer);
        for (key, value) in writer.0 {
            publish = publish.header(key, value);
        }
        if self.dedup_ids {
            publish = publish.message_id(message.message_id());
        }
        match self.context.send_publish(subject.to_owned(), publish).await {
            Ok(ack) => Ok(TracedAckFuture {
                ack,
                pending: attempt.sent(),
            }),
            Err(e) => {
                attempt.failed(&error_type(e.kind()));
                Err(e)
            }
        }
    }
}

/// The `error.type` of a publish error.
fn error_type(kind: PublishErrorKind) -> String {
    format!("{kind:?}")
}

/// The PubAck of one traced publish, still to come.
#[must_use = "await the PubAck (or wait_for it) to record the broker's answer"]
pub struct TracedAckFuture {
    ack: PublishAckFuture,
    pending: PendingAck,
}

impl std::fmt::Debug for TracedAckFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedAckFuture")
            .field("message", &self.pending.message().key())
            .field("attempt", &self.pending.attempt())
            .finish_non_exhaustive()
    }
}

impl TracedAckFuture {
    /// The app stops waiting (its own deadline passed, or it shuts down): records
    /// `store_ack` `timeout` now. The broker may still store the message.
    pub fn give_up(self) {
        self.pending.timed_out();
    }

    /// Waits at most `timeout` for the PubAck; `Ok(None)` when none came in time, recorded as
    /// `store_ack` `timeout` (the stream may still store the message: a retry then risks a
    /// duplicate unless the dedup window catches it).
    pub async fn wait_for(self, timeout: Duration) -> Result<Option<PublishAck>, PublishError> {
        let TracedAckFuture { ack, pending } = self;
        match tokio::time::timeout(timeout, ack.into_future()).await {
            Ok(result) => record(pending, result).map(Some),
            Err(_elapsed) => {
                pending.timed_out();
                Ok(None)
            }
        }
    }
}

impl IntoFuture for TracedAckFuture {
    type Output = Result<PublishAck, PublishError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let TracedAckFuture { ack, pending } = self;
            let result = ack.await;
            record(pending, result)
        })
    }
}

/// Records `store_ack` from a PubAck: `ok` at the stream sequence; no stream for the subject
/// is `nack` (nothing stored it); a timeout is `timeout`; anything else `error`.
fn record(
    pending: PendingAck,
    result: Result<PublishAck, PublishError>,
) -> Result<PublishAck, PublishError> {
    match &result {
        Ok(_) if !pending.records() => {}
        Ok(ack) => {
            let position = ack.sequence.to_string();
            let pending = if ack.duplicate {
                pending.with_attribute(KeyValue::new(attr::BROKER_DUPLICATE, true))
            } else {
                pending
            };
            pending.acked(Some(&position), None);
        }
        Err(e) => match e.kind() {
            PublishErrorKind::TimedOut => pending.timed_out(),
            PublishErrorKind::StreamNotFound => pending.nacked("StreamNotFound"),
            kind => pending.error(&error_type(kind)),
        },
    }
    result
}
