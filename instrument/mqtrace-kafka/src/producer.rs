//! The producing side over rdkafka's `FutureProducer`.

use mqtrace::{OutgoingMessage, Producer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::ToBytes;
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use std::time::{Duration, Instant};

use crate::SYSTEM;
use crate::headers::HeaderWriter;

/// A `FutureProducer` whose sends are numbered and traced: `produce` when the client call
/// returns, `store_ack` from the delivery report with `partition/offset` as position.
pub struct TracedProducer {
    inner: FutureProducer,
    tracer: Producer,
}

impl std::fmt::Debug for TracedProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedProducer")
            .field("producer_id", &self.tracer.producer_id())
            .finish_non_exhaustive()
    }
}

/// The `error.type` of a Kafka error: the broker's or librdkafka's error code name.
pub(crate) fn error_type(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "KafkaError".to_owned(),
    }
}

pub(crate) fn is_timeout(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
        )
    )
}

/// Wait between enqueue tries while librdkafka's local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);

impl TracedProducer {
    /// Wraps `inner`; spans are recorded through `tracer` (built with system `kafka`).
    pub fn new(inner: FutureProducer, tracer: Producer) -> Self {
        Self { inner, tracer }
    }

    /// Wraps `inner` with a producer of the given id, recording through the global provider.
    pub fn with_producer_id(inner: FutureProducer, producer_id: &str) -> Self {
        Self::new(
            inner,
            Producer::builder(SYSTEM).producer_id(producer_id).build(),
        )
    }

    /// The wrapped client.
    pub fn inner(&self) -> &FutureProducer {
        &self.inner
    }

    /// The mqtrace producer (its id, its streams).
    pub fn tracer(&self) -> &Producer {
        &self.tracer
    }

    /// Numbers a new message for `topic`. Keep it to retry with the same seq.
    pub fn message(&self, topic: &str) -> OutgoingMessage {
        self.tracer.message(topic)
    }

    /// Sends a new message once: numbers it, then [`send_attempt`](Self::send_attempt).
    pub async fn send<K, P>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: impl Into<Timeout>,
    ) -> Result<Delivery, KafkaError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let mut message = self.message(record.topic);
        self.send_attempt(&mut message, record, queue_timeout).await
    }

    /// One send attempt of `message` (a retry when it was sent before): writes the headers,
    /// enqueues the record, and waits for the delivery report.
    pub async fn send_attempt<K, P>(
        &self,
        message: &mut OutgoingMessage,
        mut record: FutureRecord<'_, K, P>,
        queue_timeout: impl Into<Timeout>,
    ) -> Result<Delivery, KafkaError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        if let Some(p) = record.partition {
            message.set_partition(p);
        }
        let mut writer = HeaderWriter::default();
        let attempt = message.begin_attempt(&mut writer);
        // Off mode writes nothing: leave the record's headers as the app made them (an empty
        // header list is still allocated and copied by librdkafka).
        if !writer.0.is_empty() {
            record.headers = Some(writer.append_to(record.headers.take()));
        }
        // Like rdkafka's own `send`: a full local queue is retried until `queue_timeout`.
        // `produce` ends once the record is enqueued (or refused), not at the delivery report.
        let deadline = match queue_timeout.into() {
            Timeout::After(d) => Some(Instant::now() + d),
            Timeout::Never => None,
        };
        let future = loop {
            match self.inner.send_result(record) {
                Ok(future) => break future,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((e, _record)) => {
                    attempt.failed(&error_type(&e));
                    return Err(e);
                }
            }
        };
        let pending = attempt.sent();
        match future.await {
            Ok(Ok(delivery)) => {
                if pending.records() {
                    let at = crate::position::Position::new(delivery.partition, delivery.offset);
                    pending.acked(Some(at.position()), Some(at.partition()));
                }
                Ok(delivery)
            }
            Ok(Err((e, _message))) => {
                if is_timeout(&e) {
                    pending.timed_out();
                } else {
                    pending.error(&error_type(&e));
                }
                Err(e)
            }
            Err(_canceled) => {
                pending.error("canceled");
                Err(KafkaError::Canceled)
            }
        }
    }
}
