//! The publishing side over a lapin `Channel` with publisher confirms.

use lapin::options::BasicPublishOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use lapin::{Confirmation, PublisherConfirm};
use mqtrace::{OutgoingMessage, PendingAck, Producer};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use crate::headers::TableWriter;
use crate::{SYSTEM, error_type};

/// A lapin `Channel` whose publishes are numbered and traced: `produce` when `basic_publish`
/// returns, `store_ack` from the publisher confirm (enable confirms with
/// `confirm_select`, or no `store_ack` is recorded: without a confirm nothing says the
/// broker stored the message).
#[derive(Clone)]
pub struct TracedPublisher {
    channel: Channel,
    tracer: Producer,
}

impl std::fmt::Debug for TracedPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedPublisher")
            .field("producer_id", &self.tracer.producer_id())
            .finish_non_exhaustive()
    }
}

/// `messaging.destination.name` of a publish: the exchange, or for the default exchange
/// (which routes by queue name) the routing key.
pub fn destination_name<'a>(exchange: &'a str, routing_key: &'a str) -> &'a str {
    if exchange.is_empty() {
        routing_key
    } else {
        exchange
    }
}

impl TracedPublisher {
    /// Wraps `channel`; spans are recorded through `tracer` (built with system `rabbitmq`).
    pub fn new(channel: Channel, tracer: Producer) -> Self {
        Self { channel, tracer }
    }

    /// Wraps `channel` with a producer of the given id, recording through the global provider.
    pub fn with_producer_id(channel: Channel, producer_id: &str) -> Self {
        Self::new(
            channel,
            Producer::builder(SYSTEM).producer_id(producer_id).build(),
        )
    }

    /// The wrapped channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The mqtrace producer (its id, its streams).
    pub fn tracer(&self) -> &Producer {
        &self.tracer
    }

    /// Numbers a new message for `exchange` (or, on the default exchange, `routing_key`), on
    /// the stream named after it. Keep it to retry with the same seq.
    pub fn message(&self, exchange: &str, routing_key: &str) -> OutgoingMessage {
        self.tracer.message(destination_name(exchange, routing_key))
    }

    /// `basic_publish` of a new message: numbers it, then [`publish_attempt`](Self::publish_attempt).
    pub async fn basic_publish(
        &self,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> lapin::Result<TracedConfirm> {
        let mut message = self.message(exchange.as_str(), routing_key.as_str());
        self.publish_attempt(
            &mut message,
            exchange,
            routing_key,
            options,
            payload,
            properties,
        )
        .await
    }

    /// One publish attempt of `message` (a retry when it was sent before): adds the headers to
    /// `properties`, publishes, and returns the confirm to await.
    pub async fn publish_attempt(
        &self,
        message: &mut OutgoingMessage,
        exchange: ShortString,
        routing_key: ShortString,
        options: BasicPublishOptions,
        payload: &[u8],
        properties: BasicProperties,
    ) -> lapin::Result<TracedConfirm> {
        let (attempt, properties) = match message.header_form() {
            // Off mode writes no headers: the app's properties go out untouched (an empty
            // header table still costs the client and the broker an encoded field).
            None => (message.begin_attempt(&mut NoHeaders), properties),
            Some(form) => {
                let mut headers: FieldTable = properties.headers().clone().unwrap_or_default();
                let attempt = message.begin_attempt(&mut TableWriter(&mut headers));
                // The five headers do not say which attempt a stored copy came from, and
                // RabbitMQ gives a copy no identity of its own; the compact header carries it.
                if form == mqtrace::HeaderForm::Five {
                    let n = attempt.attempt();
                    mqtrace::headers::inject_attempt(&mut TableWriter(&mut headers), n);
                }
                (attempt, properties.with_headers(headers))
            }
        };
        match self
            .channel
            .basic_publish(exchange, routing_key, options, payload, properties)
            .await
        {
            Ok(confirm) => Ok(TracedConfirm {
                confirm,
                pending: attempt.sent(),
            }),
            Err(e) => {
                attempt.failed(&error_type(&e));
                Err(e)
            }
        }
    }
}

/// A carrier that takes nothing: off mode's, which writes no headers.
struct NoHeaders;

impl opentelemetry::propagation::Injector for NoHeaders {
    fn set(&mut self, _key: &str, _value: String) {}
}

/// The broker's answer to one traced publish, still to come.
#[must_use = "await the confirm (or wait_for it) to record the broker's answer"]
pub struct TracedConfirm {
    confirm: PublisherConfirm,
    pending: PendingAck,
}

impl std::fmt::Debug for TracedConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedConfirm")
            .field("message", &self.pending.message().key())
            .field("attempt", &self.pending.attempt())
            .finish_non_exhaustive()
    }
}

impl TracedConfirm {
    /// The app stops waiting (its own deadline passed, or it shuts down): records
    /// `store_ack` `timeout` now. The broker may still store the message.
    pub fn give_up(self) {
        self.pending.timed_out();
    }

    /// Waits at most `timeout` for the confirm; `Ok(None)` when none came in time, recorded
    /// as `store_ack` `timeout` (the broker may still store the message: a retry then risks
    /// a duplicate, which the analyzer reports).
    pub async fn wait_for(self, timeout: Duration) -> lapin::Result<Option<Confirmation>> {
        let TracedConfirm { confirm, pending } = self;
        match tokio::time::timeout(timeout, confirm).await {
            Ok(result) => record(pending, result).map(Some),
            Err(_elapsed) => {
                pending.timed_out();
                Ok(None)
            }
        }
    }
}

impl IntoFuture for TracedConfirm {
    type Output = lapin::Result<Confirmation>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let TracedConfirm { confirm, pending } = self;
            let result = confirm.await;
            record(pending, result)
        })
    }
}

/// Records `store_ack` from a confirm: an ack is `ok` at the position `attempt/N` (RabbitMQ
/// gives a stored copy no identity, so the copy is named by the attempt that stored it); an
/// ack of a returned (unroutable, mandatory) message or a nack is `nack`; an error is `error`.
fn record(pending: PendingAck, result: lapin::Result<Confirmation>) -> lapin::Result<Confirmation> {
    match &result {
        Ok(Confirmation::Ack(None)) if pending.records() => {
            let position = crate::attempt_position(pending.attempt());
            pending.acked(Some(&position), None);
        }
        Ok(Confirmation::Ack(None)) => {}
        Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))) => {
            pending.nacked(returned.reply_text.as_str());
        }
        Ok(Confirmation::Nack(None)) => pending.nacked("nack"),
        // Confirms are off: nothing says whether the broker stored it.
        Ok(Confirmation::NotRequested) => drop(pending),
        Err(e) => pending.error(&error_type(e)),
    }
    result
}
