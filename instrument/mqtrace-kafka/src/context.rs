//! Tracing through rdkafka's `ProducerContext`: for `BaseProducer` and `ThreadedProducer`,
//! whose delivery reports arrive in the context's `delivery` callback.

use mqtrace::{OutgoingMessage, PendingAck, Producer};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, ToBytes};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DefaultProducerContext, DeliveryResult, ProducerContext,
    ThreadedProducer,
};
use rdkafka::util::IntoOpaque;

use crate::SYSTEM;
use crate::headers::HeaderWriter;
use crate::producer::{error_type, is_timeout};

/// A `ProducerContext` that records `store_ack` from each delivery report, then hands the
/// report to the app's own context `C` with the app's own delivery opaque.
#[derive(Clone, Debug, Default)]
pub struct TracingContext<C = DefaultProducerContext> {
    inner: C,
}

impl<C> TracingContext<C> {
    /// Wraps the app's context.
    pub fn new(inner: C) -> Self {
        Self { inner }
    }

    /// The app's context.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

/// What travels with a record through librdkafka: the pending `store_ack` and the app's own
/// opaque.
#[derive(Debug)]
pub struct TracedOpaque<D> {
    pending: PendingAck,
    inner: D,
}

impl<C: ClientContext> ClientContext for TracingContext<C> {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = C::ENABLE_REFRESH_OAUTH_TOKEN;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.inner.log(level, fac, log_message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.inner.stats_raw(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.inner.generate_oauth_token(oauthbearer_config)
    }
}

impl<C> ProducerContext for TracingContext<C>
where
    C: ProducerContext,
    C::DeliveryOpaque: Send + Sync,
{
    type DeliveryOpaque = Box<TracedOpaque<C::DeliveryOpaque>>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let TracedOpaque { pending, inner } = *opaque;
        match result {
            Ok(message) => {
                let at = crate::position::Position::new(message.partition(), message.offset());
                pending.acked(Some(at.position()), Some(at.partition()));
            }
            Err((e, _)) if is_timeout(e) => pending.timed_out(),
            Err((e, _)) => pending.error(&error_type(e)),
        }
        self.inner.delivery(result, inner);
    }
}

/// A `BaseProducer` or `ThreadedProducer` over a [`TracingContext`] whose sends are
/// numbered and traced: `produce` when `send` returns, `store_ack` from the delivery report
/// (served by the client's `poll`, or its background thread).
pub struct TracedBaseProducer<T> {
    inner: T,
    tracer: Producer,
}

impl<T> std::fmt::Debug for TracedBaseProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedBaseProducer")
            .field("producer_id", &self.tracer.producer_id())
            .finish_non_exhaustive()
    }
}

impl<T> TracedBaseProducer<T> {
    /// Wraps `inner` (created with a [`TracingContext`]); spans go through `tracer`.
    pub fn new(inner: T, tracer: Producer) -> Self {
        Self { inner, tracer }
    }

    /// Wraps `inner` with a producer of the given id, recording through the global provider.
    pub fn with_producer_id(inner: T, producer_id: &str) -> Self {
        Self::new(
            inner,
            Producer::builder(SYSTEM).producer_id(producer_id).build(),
        )
    }

    /// The wrapped client (to `poll` or `flush` it).
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The mqtrace producer.
    pub fn tracer(&self) -> &Producer {
        &self.tracer
    }

    /// Numbers a new message for `topic`. Keep it to retry with the same seq.
    pub fn message(&self, topic: &str) -> OutgoingMessage {
        self.tracer.message(topic)
    }
}

/// A record given back by a refused `send`, with the app's own opaque.
pub type Refused<'a, K, P, D> = (KafkaError, BaseRecord<'a, K, P, D>);

/// One traced send through any client whose `send` takes a record with our opaque.
#[allow(clippy::result_large_err)] // the shape of rdkafka's own `send`
fn traced_send<'a, K, P, D>(
    message: &mut OutgoingMessage,
    record: BaseRecord<'a, K, P, D>,
    send: impl FnOnce(
        BaseRecord<'a, K, P, Box<TracedOpaque<D>>>,
    ) -> Result<(), Refused<'a, K, P, Box<TracedOpaque<D>>>>,
) -> Result<(), Refused<'a, K, P, D>>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
    D: IntoOpaque + Send + Sync,
{
    if let Some(p) = record.partition {
        message.set_partition(p);
    }
    let mut writer = HeaderWriter::default();
    let (call, pending) = message.begin_attempt(&mut writer).split();
    let traced = BaseRecord {
        topic: record.topic,
        partition: record.partition,
        payload: record.payload,
        key: record.key,
        timestamp: record.timestamp,
        headers: Some(writer.append_to(record.headers)),
        delivery_opaque: Box::new(TracedOpaque {
            pending,
            inner: record.delivery_opaque,
        }),
    };
    match send(traced) {
        Ok(()) => {
            call.sent();
            Ok(())
        }
        Err((e, back)) => {
            let TracedOpaque { pending, inner } = *back.delivery_opaque;
            call.failed(pending, &error_type(&e));
            let record = BaseRecord {
                topic: back.topic,
                partition: back.partition,
                payload: back.payload,
                key: back.key,
                timestamp: back.timestamp,
                headers: back.headers,
                delivery_opaque: inner,
            };
            Err((e, record))
        }
    }
}

macro_rules! traced_client {
    ($client:ident) => {
        impl<C> TracedBaseProducer<$client<TracingContext<C>>>
        where
            C: ProducerContext + 'static,
            C::DeliveryOpaque: Send + Sync,
        {
            /// Sends a new message once: numbers it, then [`send_attempt`](Self::send_attempt).
            #[allow(clippy::result_large_err)] // the shape of rdkafka's own `send`
            pub fn send<'a, K, P>(
                &self,
                record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
            ) -> Result<(), Refused<'a, K, P, C::DeliveryOpaque>>
            where
                K: ToBytes + ?Sized,
                P: ToBytes + ?Sized,
            {
                let mut message = self.message(record.topic);
                self.send_attempt(&mut message, record)
            }

            /// One send attempt of `message` (a retry when it was sent before). A record
            /// librdkafka refuses (e.g. its queue is full) comes back as from rdkafka's
            /// `send`, recorded as a failed attempt.
            #[allow(clippy::result_large_err)] // the shape of rdkafka's own `send`
            pub fn send_attempt<'a, K, P>(
                &self,
                message: &mut OutgoingMessage,
                record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
            ) -> Result<(), Refused<'a, K, P, C::DeliveryOpaque>>
            where
                K: ToBytes + ?Sized,
                P: ToBytes + ?Sized,
            {
                traced_send(message, record, |r| self.inner.send(r))
            }
        }
    };
}

traced_client!(BaseProducer);
traced_client!(ThreadedProducer);
