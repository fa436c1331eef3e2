//! The producing side: number a message, record each send attempt (`produce`) and the broker's
//! answer to it (`store_ack`), and write the headers.

use opentelemetry::propagation::Injector;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::time::SystemTime;

use crate::headers;
use crate::message::{MessageKey, StoreOutcome};
use crate::names::{Stage, attr};
use crate::sequencer::{Sequencer, StreamCounter};
use crate::span::{Recorder, TracerChoice, app_context, common_attributes, span_name, str_value};

/// An instrumented producer instance: hands out seqs and records spans. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    recorder: Recorder,
    producer_id: Arc<str>,
    sequencer: Sequencer,
}

/// Builds a [`Producer`].
#[derive(Debug)]
pub struct ProducerBuilder {
    system: Arc<str>,
    producer_id: Option<Arc<str>>,
    tracer: TracerChoice,
}

impl ProducerBuilder {
    /// The producer id (default: [`default_producer_id`]). It must be unique per process run
    /// unless the app persists its seqs: a restarted producer numbers from 1 again.
    pub fn producer_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.producer_id = Some(id.into());
        self
    }

    /// Record through this provider instead of the global one.
    pub fn tracer_provider<P>(mut self, provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Tracer + Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.tracer = TracerChoice::from_provider(provider);
        self
    }

    /// The producer.
    pub fn build(self) -> Producer {
        Producer {
            inner: Arc::new(Inner {
                recorder: Recorder {
                    tracer: self.tracer.into_tracer(),
                    system: self.system,
                },
                producer_id: self
                    .producer_id
                    .unwrap_or_else(|| default_producer_id().into()),
                sequencer: Sequencer::new(),
            }),
        }
    }
}

/// `{service}-{pid}-{start time}`: unique per process run. The service is `OTEL_SERVICE_NAME`,
/// else the executable's name.
pub fn default_producer_id() -> String {
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| "producer".to_owned());
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{service}-{}-{started:x}", std::process::id())
}

impl Producer {
    /// A builder for a producer of `messaging.system` = `system` (e.g. `kafka`, `rabbitmq`).
    pub fn builder(system: impl Into<Arc<str>>) -> ProducerBuilder {
        ProducerBuilder {
            system: system.into(),
            producer_id: None,
            tracer: TracerChoice::Global,
        }
    }

    /// This producer's id.
    pub fn producer_id(&self) -> &str {
        &self.inner.producer_id
    }

    /// The counter of one stream, to number messages without a lookup by name.
    pub fn stream(&self, stream: &str) -> StreamCounter {
        self.inner.sequencer.stream(stream)
    }

    /// Numbers a new message for `destination`, on the stream named after it.
    pub fn message(&self, destination: &str) -> OutgoingMessage {
        let counter = self.stream(destination);
        self.message_on(&counter, destination)
    }

    /// Numbers a new message for `destination` on the given stream.
    pub fn message_on(&self, stream: &StreamCounter, destination: &str) -> OutgoingMessage {
        let key = MessageKey {
            producer_id: self.inner.producer_id.clone(),
            stream: stream.name().clone(),
            seq: stream.next_seq(),
        };
        OutgoingMessage {
            producer: self.clone(),
            message_id: key.default_message_id().into(),
            key,
            destination: destination.into(),
            partition: None,
            attempts: 0,
        }
    }
}

/// One logical message: its seq is fixed, each send attempt is recorded with the next
/// `mqtrace.attempt`.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    producer: Producer,
    key: MessageKey,
    message_id: Arc<str>,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    attempts: u32,
}

impl OutgoingMessage {
    /// Its numbering.
    pub fn key(&self) -> &MessageKey {
        &self.key
    }

    /// Its `messaging.message.id`.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// Replaces the default message id (e.g. with one the app already has).
    pub fn set_message_id(&mut self, id: impl Into<Arc<str>>) {
        self.message_id = id.into();
    }

    /// The partition, where the app chooses it before sending.
    pub fn set_partition(&mut self, partition: impl ToString) {
        self.partition = Some(partition.to_string().into());
    }

    /// Attempts begun so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Begins the next send attempt: starts its `produce` span (a child of the app's current
    /// span) and writes the headers into `carrier`. Call right before the client's send.
    pub fn begin_attempt(&mut self, carrier: &mut dyn Injector) -> SendAttempt {
        self.attempts += 1;
        let rec = &self.producer.inner.recorder;
        let mut attrs = common_attributes(
            Stage::Produce,
            &rec.system,
            Some(&self.key),
            Some(&self.message_id),
            &self.destination,
            self.partition.as_ref(),
            3,
        );
        attrs.push(KeyValue::new(attr::ATTEMPT, i64::from(self.attempts)));
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_TYPE, "send"));
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_NAME, "send"));
        let span = rec
            .tracer
            .span_builder(span_name("send", &self.destination))
            .with_kind(SpanKind::Producer)
            .with_attributes(attrs)
            .start_with_context(&rec.tracer, &app_context());
        let cx = Context::new().with_span(span);
        headers::inject(
            carrier,
            cx.span().span_context(),
            &self.key,
            &self.message_id,
        );
        SendAttempt {
            message: self.clone(),
            attempt: self.attempts,
            cx,
        }
    }
}

/// A send attempt whose client call is under way.
#[derive(Debug)]
#[must_use = "record how the client call returned: sent() or failed()"]
pub struct SendAttempt {
    message: OutgoingMessage,
    attempt: u32,
    cx: Context,
}

impl SendAttempt {
    /// The context of this attempt's `produce` span.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The attempt number (1 = first try).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The client call returned without error: ends `produce`; the broker's answer is pending.
    pub fn sent(self) -> PendingAck {
        self.cx.span().end();
        PendingAck {
            message: self.message,
            attempt: self.attempt,
            produce_cx: self.cx,
            since: SystemTime::now(),
            extra: Vec::new(),
        }
    }

    /// Splits the attempt before the client call: the [`PendingAck`] to hand to the client
    /// with the record, and the [`SendCall`] that ends `produce` when the call returns.
    pub fn split(self) -> (SendCall, PendingAck) {
        let pending = PendingAck {
            message: self.message,
            attempt: self.attempt,
            produce_cx: self.cx.clone(),
            since: SystemTime::now(),
            extra: Vec::new(),
        };
        (SendCall { cx: self.cx }, pending)
    }

    /// The client call failed synchronously: ends `produce` with status ERROR and records
    /// the attempt giving up (`store_ack` with outcome `error`).
    pub fn failed(self, error_type: &str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
        span.set_status(Status::error(error_type.to_owned()));
        span.end();
        PendingAck {
            message: self.message,
            attempt: self.attempt,
            produce_cx: self.cx,
            since: SystemTime::now(),
            extra: Vec::new(),
        }
        .error(error_type);
    }
}

/// A send attempt split for clients that take the answer's handler before the call returns
/// (rdkafka's delivery opaque): the [`PendingAck`] goes with the record, this ends `produce`.
#[derive(Debug)]
#[must_use = "record how the client call returned: sent() or failed()"]
pub struct SendCall {
    cx: Context,
}

impl SendCall {
    /// The client call returned without error: ends `produce`.
    pub fn sent(self) {
        self.cx.span().end();
    }

    /// The client call failed synchronously and gave back the record's `pending` ack: ends
    /// `produce` with status ERROR and records `store_ack` `error`.
    pub fn failed(self, pending: PendingAck, error_type: &str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
        span.set_status(Status::error(error_type.to_owned()));
        span.end();
        pending.error(error_type);
    }
}

/// A sent attempt waiting for the broker's answer.
#[derive(Debug)]
#[must_use = "record the broker's answer: acked(), nacked(), error() or timed_out()"]
pub struct PendingAck {
    message: OutgoingMessage,
    attempt: u32,
    produce_cx: Context,
    since: SystemTime,
    extra: Vec<KeyValue>,
}

impl PendingAck {
    /// The message this attempt sent.
    pub fn message(&self) -> &OutgoingMessage {
        &self.message
    }

    /// The attempt number (1 = first try).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Adds an attribute to the `store_ack` span this answer records (e.g.
    /// [`attr::BROKER_DUPLICATE`]).
    pub fn with_attribute(mut self, attribute: KeyValue) -> Self {
        self.extra.push(attribute);
        self
    }

    /// Stored: records `store_ack` `ok` with the stored copy's position and partition where
    /// the broker gives them.
    pub fn acked(self, position: Option<&str>, partition: Option<&str>) {
        self.record(StoreOutcome::Ok, position, partition, None);
    }

    /// Refused by the broker.
    pub fn nacked(self, error_type: &str) {
        self.record(StoreOutcome::Nack, None, None, Some(error_type));
    }

    /// Failed with an error.
    pub fn error(self, error_type: &str) {
        self.record(StoreOutcome::Error, None, None, Some(error_type));
    }

    /// No answer in time.
    pub fn timed_out(self) {
        self.record(StoreOutcome::Timeout, None, None, Some("timeout"));
    }

    /// Records `store_ack` with any outcome.
    pub fn record(
        self,
        outcome: StoreOutcome,
        position: Option<&str>,
        partition: Option<&str>,
        error_type: Option<&str>,
    ) {
        let m = &self.message;
        let rec = &m.producer.inner.recorder;
        let partition: Option<Arc<str>> = partition.map(Arc::from).or_else(|| m.partition.clone());
        let mut attrs = common_attributes(
            Stage::StoreAck,
            &rec.system,
            Some(&m.key),
            Some(&m.message_id),
            &m.destination,
            partition.as_ref(),
            4 + self.extra.len(),
        );
        attrs.extend(self.extra);
        attrs.push(KeyValue::new(attr::ATTEMPT, i64::from(self.attempt)));
        attrs.push(KeyValue::new(attr::OUTCOME, outcome.as_str()));
        if let Some(pos) = position {
            attrs.push(KeyValue::new(attr::BROKER_POSITION, pos.to_owned()));
        }
        let failed = outcome != StoreOutcome::Ok;
        if failed {
            let error_type: Arc<str> = error_type.unwrap_or(outcome.as_str()).into();
            attrs.push(KeyValue::new(attr::ERROR_TYPE, str_value(&error_type)));
        }
        let mut span = rec
            .tracer
            .span_builder(span_name(
                crate::names::Stage::StoreAck.as_str(),
                &m.destination,
            ))
            .with_kind(SpanKind::Internal)
            .with_start_time(self.since)
            .with_attributes(attrs)
            .start_with_context(&rec.tracer, &self.produce_cx);
        if failed {
            use opentelemetry::trace::Span as _;
            span.set_status(Status::error(outcome.as_str()));
        }
        drop(span); // ends it now
    }
}
