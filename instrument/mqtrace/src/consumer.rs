//! The consuming side: read the headers back, record each delivery (`deliver`) and how it was
//! settled (`consume_ack`).

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{Link, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;

use crate::headers::{self, IncomingHeaders};
use crate::message::{MessageKey, SettleOutcome};
use crate::names::{Stage, attr};
use crate::span::{Recorder, TracerChoice, app_context, common_attributes, span_name, str_value};

/// How a `deliver` span relates to the producer's span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentMode {
    /// A child of the `produce` span carried in the headers: one trace per message.
    #[default]
    Child,
    /// A child of the app's current span (a new trace when there is none), with a link to the
    /// `produce` span: for consumers that keep their own traces, e.g. one per batch.
    Link,
}

/// An instrumented consumer instance of one group. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Consumer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    recorder: Recorder,
    group: Arc<str>,
    consumer_id: Arc<str>,
    parent_mode: ParentMode,
}

/// Builds a [`Consumer`].
#[derive(Debug)]
pub struct ConsumerBuilder {
    system: Arc<str>,
    group: Arc<str>,
    consumer_id: Option<Arc<str>>,
    parent_mode: ParentMode,
    tracer: TracerChoice,
}

impl ConsumerBuilder {
    /// This instance's id (default: `{group}-{pid}`).
    pub fn consumer_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.consumer_id = Some(id.into());
        self
    }

    /// Child of the producer's span, or linked to it.
    pub fn parent_mode(mut self, mode: ParentMode) -> Self {
        self.parent_mode = mode;
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

    /// The consumer.
    pub fn build(self) -> Consumer {
        let consumer_id = self
            .consumer_id
            .unwrap_or_else(|| format!("{}-{}", self.group, std::process::id()).into());
        Consumer {
            inner: Arc::new(Inner {
                recorder: Recorder {
                    tracer: self.tracer.into_tracer(),
                    system: self.system,
                },
                group: self.group,
                consumer_id,
                parent_mode: self.parent_mode,
            }),
        }
    }
}

/// What the client knows of one delivery, besides its headers.
#[derive(Clone, Debug)]
pub struct DeliveryInfo<'a> {
    /// The destination as this side names it (a queue, a topic, a stream).
    pub destination: &'a str,
    /// The partition, where the system has them.
    pub partition: Option<String>,
    /// The stored copy's identity (e.g. `partition/offset`, a stream sequence).
    pub position: Option<String>,
    /// Which delivery this is (1 = first).
    pub delivery_count: u32,
    /// The system's own message id, used when the headers carry none.
    pub message_id: Option<String>,
}

impl<'a> DeliveryInfo<'a> {
    /// A first delivery from `destination`, nothing else known.
    pub fn new(destination: &'a str) -> Self {
        Self {
            destination,
            partition: None,
            position: None,
            delivery_count: 1,
            message_id: None,
        }
    }
}

impl Consumer {
    /// A builder for a consumer of `messaging.system` = `system` in consumer group `group`
    /// (Kafka group, RabbitMQ queue, JetStream durable).
    pub fn builder(system: impl Into<Arc<str>>, group: impl Into<Arc<str>>) -> ConsumerBuilder {
        ConsumerBuilder {
            system: system.into(),
            group: group.into(),
            consumer_id: None,
            parent_mode: ParentMode::default(),
            tracer: TracerChoice::Global,
        }
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// This instance's id.
    pub fn consumer_id(&self) -> &str {
        &self.inner.consumer_id
    }

    /// Records the receipt of one delivery (`deliver`, ended at once, so that a consumer
    /// that dies while processing still leaves it behind).
    pub fn deliver(&self, carrier: &dyn Extractor, info: DeliveryInfo<'_>) -> Delivery {
        self.deliver_with(headers::extract(carrier), info)
    }

    /// [`deliver`](Self::deliver) from headers read already.
    pub fn deliver_with(&self, incoming: IncomingHeaders, info: DeliveryInfo<'_>) -> Delivery {
        let inner = &self.inner;
        let rec = &inner.recorder;
        let destination: Arc<str> = info.destination.into();
        let partition: Option<Arc<str>> = info.partition.map(Into::into);
        let message_id: Option<Arc<str>> = incoming
            .message_id
            .or(info.message_id)
            .map(Into::into)
            .or_else(|| incoming.key.as_ref().map(|k| k.default_message_id().into()));
        let mut attrs = common_attributes(
            Stage::Deliver,
            &rec.system,
            incoming.key.as_ref(),
            message_id.as_ref(),
            &destination,
            partition.as_ref(),
            6,
        );
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_TYPE, "process"));
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_NAME, "process"));
        attrs.push(KeyValue::new(
            attr::MESSAGING_CONSUMER_GROUP_NAME,
            str_value(&inner.group),
        ));
        attrs.push(KeyValue::new(
            attr::CONSUMER_ID,
            str_value(&inner.consumer_id),
        ));
        attrs.push(KeyValue::new(
            attr::DELIVERY_COUNT,
            i64::from(info.delivery_count.max(1)),
        ));
        if let Some(pos) = &info.position {
            attrs.push(KeyValue::new(attr::BROKER_POSITION, pos.clone()));
        }
        let mut builder = rec
            .tracer
            .span_builder(span_name("process", &destination))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attrs);
        let parent = match (inner.parent_mode, &incoming.remote) {
            (ParentMode::Child, Some(remote)) => {
                Context::new().with_remote_span_context(remote.clone())
            }
            (ParentMode::Link, Some(remote)) => {
                builder = builder.with_links(vec![Link::with_context(remote.clone())]);
                app_context()
            }
            (_, None) => app_context(),
        };
        let span = builder.start_with_context(&rec.tracer, &parent);
        let cx = Context::new().with_span(span);
        cx.span().end();
        Delivery {
            consumer: self.clone(),
            key: incoming.key,
            message_id,
            destination,
            partition,
            cx,
        }
    }
}

/// One received delivery, waiting to be settled.
#[derive(Debug)]
#[must_use = "settle the delivery (ack, nack, reject, skip_duplicate) once processing is done"]
pub struct Delivery {
    consumer: Consumer,
    key: Option<MessageKey>,
    message_id: Option<Arc<str>>,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    cx: Context,
}

impl Delivery {
    /// The producer's numbering, when the message carried it.
    pub fn key(&self) -> Option<&MessageKey> {
        self.key.as_ref()
    }

    /// The message id.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// The `deliver` span's context: parent the app's processing spans on it.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Processed and acknowledged (`consume_ack` `ack`, operation `ack`).
    pub fn ack(self) {
        self.settle(SettleOutcome::Ack, "ack");
    }

    /// Records `consume_ack`: `outcome`, under the client's operation name (`ack`, `nack`,
    /// `reject`, `commit`, `term`, …). Settling `Error` sets status ERROR.
    pub fn settle(self, outcome: SettleOutcome, operation_name: &str) {
        let inner = &self.consumer.inner;
        let rec = &inner.recorder;
        let mut attrs = common_attributes(
            Stage::ConsumeAck,
            &rec.system,
            self.key.as_ref(),
            self.message_id.as_ref(),
            &self.destination,
            self.partition.as_ref(),
            5,
        );
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_TYPE, "settle"));
        attrs.push(KeyValue::new(
            attr::MESSAGING_OPERATION_NAME,
            operation_name.to_owned(),
        ));
        attrs.push(KeyValue::new(
            attr::MESSAGING_CONSUMER_GROUP_NAME,
            str_value(&inner.group),
        ));
        attrs.push(KeyValue::new(
            attr::CONSUMER_ID,
            str_value(&inner.consumer_id),
        ));
        attrs.push(KeyValue::new(attr::OUTCOME, outcome.as_str()));
        let mut span = rec
            .tracer
            .span_builder(span_name(operation_name, &self.destination))
            .with_kind(SpanKind::Client)
            .with_attributes(attrs)
            .start_with_context(&rec.tracer, &self.cx);
        if outcome == SettleOutcome::Error {
            use opentelemetry::trace::Span as _;
            span.set_status(Status::error("settle failed"));
        }
        drop(span);
    }
}
