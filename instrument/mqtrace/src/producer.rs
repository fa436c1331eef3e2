//! The producing side: number a message, record each send attempt (`produce`) and the broker's
//! answer to it (`store_ack`), and write the headers.

use opentelemetry::propagation::Injector;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use crate::headers;
use crate::ledger::{self, Flush};
use crate::message::{MessageKey, StoreOutcome};
use crate::mode::{DEFAULT_FLUSH_INTERVAL, HeaderForm, Mode};
use crate::names::{Stage, attr};
use crate::sequencer::{Sequencer, StreamCounter};
use crate::span::{
    Recorder, TracerChoice, app_context, app_sampled, common_attributes, span_name, str_value,
};

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
    mode: Mode,
    /// `None` in off mode.
    header_form: Option<HeaderForm>,
}

impl Flush for Inner {
    fn flush(&self) {
        for stream in self.sequencer.streams() {
            stream
                .ledger()
                .flush(&self.recorder, &self.producer_id, stream.name());
        }
    }
}

impl Drop for Inner {
    /// The last handle is gone (producer clones, messages, pending acks): nothing more can be
    /// recorded, so export what the ledgers hold.
    fn drop(&mut self) {
        if self.mode == Mode::Ledger {
            self.flush();
        }
    }
}

/// Builds a [`Producer`].
#[derive(Debug)]
pub struct ProducerBuilder {
    system: Arc<str>,
    producer_id: Option<Arc<str>>,
    tracer: TracerChoice,
    mode: Option<Mode>,
    header_form: Option<HeaderForm>,
    flush_interval: Duration,
}

impl ProducerBuilder {
    /// What to record (default: [`Mode::from_env`], i.e. the `MQTRACE_MODE` variable, read
    /// when [`build`](Self::build) runs; `full` when unset).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Which headers to write (default [`HeaderForm::default_for`] the mode: the compact
    /// one). Off mode writes none whatever this says.
    pub fn header_form(mut self, form: HeaderForm) -> Self {
        self.header_form = Some(form);
        self
    }

    /// How often ledger mode exports its ledgers (default [`DEFAULT_FLUSH_INTERVAL`], 1 s;
    /// at least 1 ms). Ignored in the other modes.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

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

    /// The producer. In ledger mode it is registered with the process's ledger flusher
    /// thread (started on first use).
    pub fn build(self) -> Producer {
        let mode = self.mode.unwrap_or_else(Mode::from_env);
        let inner = Arc::new(Inner {
            recorder: Recorder {
                tracer: self.tracer.into_tracer(),
                system: self.system,
            },
            producer_id: self
                .producer_id
                .unwrap_or_else(|| default_producer_id().into()),
            sequencer: Sequencer::new(),
            mode,
            header_form: match mode {
                Mode::Off => None,
                _ => self.header_form.or(HeaderForm::default_for(mode)),
            },
        });
        if mode == Mode::Ledger {
            let weak: Weak<dyn Flush> = Arc::downgrade(&inner) as Weak<Inner>;
            ledger::register(weak, self.flush_interval);
        }
        Producer { inner }
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
            mode: None,
            header_form: None,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
        }
    }

    /// This producer's id.
    pub fn producer_id(&self) -> &str {
        &self.inner.producer_id
    }

    /// What this producer records.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// The headers this producer writes (`None` in off mode, which writes none). Adapters of
    /// brokers that give a stored copy no identity of its own add `mqtrace-attempt` to the five
    /// headers; the compact one carries the attempt already.
    pub fn header_form(&self) -> Option<HeaderForm> {
        self.inner.header_form
    }

    /// Exports now what this producer's ledgers hold (ledger mode; nothing to do otherwise).
    /// Also done every flush interval, and when the last handle is dropped.
    pub fn flush(&self) {
        if self.inner.mode == Mode::Ledger {
            self.inner.flush();
        }
    }

    /// The counter of one stream, to number messages without a lookup by name.
    pub fn stream(&self, stream: &str) -> StreamCounter {
        self.inner.sequencer.stream(stream)
    }

    /// Numbers a new message for `destination`, on the stream named after it.
    pub fn message(&self, destination: &str) -> OutgoingMessage {
        let counter = self.stream(destination);
        self.numbered(&counter, destination, true)
    }

    /// Numbers a new message for `destination` on the given stream.
    pub fn message_on(&self, stream: &StreamCounter, destination: &str) -> OutgoingMessage {
        // A counter from elsewhere (a standalone `Sequencer`, another producer) numbers the
        // message, but its ledgers are flushed by nobody, or under another producer id: in
        // ledger mode, record into this producer's stream of that name instead.
        let own = self.inner.mode != Mode::Ledger || stream.same_as(&self.stream(stream.name()));
        self.numbered(stream, destination, own)
    }

    fn numbered(&self, stream: &StreamCounter, destination: &str, own: bool) -> OutgoingMessage {
        let key = MessageKey {
            producer_id: self.inner.producer_id.clone(),
            stream: stream.name().clone(),
            seq: stream.next_seq(),
        };
        // The stream is usually named after the destination: share its name, don't copy it.
        let destination: Arc<str> = if **stream.name() == *destination {
            stream.name().clone()
        } else {
            destination.into()
        };
        OutgoingMessage {
            producer: self.clone(),
            message_id: OnceLock::new(),
            key,
            destination,
            partition: None,
            attempts: 0,
            stream: (self.inner.mode == Mode::Ledger).then(|| {
                if own {
                    stream.clone()
                } else {
                    self.stream(stream.name())
                }
            }),
        }
    }
}

/// One logical message: its seq is fixed, each send attempt is recorded with the next
/// `mqtrace.attempt`.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    producer: Producer,
    key: MessageKey,
    /// Set by the app, or the default computed when first needed (ledger mode's ordinary path
    /// never needs it: the compact header leaves the default out).
    message_id: OnceLock<Arc<str>>,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    attempts: u32,
    /// Ledger mode: the stream, whose ledgers record ordinary attempts.
    stream: Option<StreamCounter>,
}

/// What an attempt records: decided when it begins, except for ledger mode's ordinary
/// candidates, decided by the broker's answer.
#[derive(Clone, Copy, Debug)]
enum Track {
    /// Spans as SPEC §2 (full mode, or a ledger-mode attempt that is not ordinary).
    Full,
    /// Ledger mode, a first attempt the app's sampler does not keep: no span yet. Acked `ok`,
    /// its seq goes into the stream's ledger; any other answer records its `produce` span late
    /// with these times, then `store_ack`. `end` is unknown after [`SendAttempt::split`].
    Ordinary {
        start: SystemTime,
        end: Option<SystemTime>,
    },
    /// Off mode: nothing.
    Off,
    /// Answered already.
    Done,
}

impl OutgoingMessage {
    /// Its numbering.
    pub fn key(&self) -> &MessageKey {
        &self.key
    }

    /// The headers its attempts write ([`Producer::header_form`]).
    pub fn header_form(&self) -> Option<HeaderForm> {
        self.producer.inner.header_form
    }

    /// Its `messaging.message.id`.
    pub fn message_id(&self) -> &str {
        self.message_id_arc()
    }

    fn message_id_arc(&self) -> &Arc<str> {
        self.message_id
            .get_or_init(|| self.key.default_message_id_arc())
    }

    /// Replaces the default message id (e.g. with one the app already has).
    pub fn set_message_id(&mut self, id: impl Into<Arc<str>>) {
        self.message_id = OnceLock::from(id.into());
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
    ///
    /// In ledger mode a first attempt that the app's sampler does not keep (see
    /// [`Mode::Ledger`]) starts no span and writes only the compact `mqtrace` header: whether
    /// it is ordinary is known when the broker answers. Off mode writes nothing.
    pub fn begin_attempt(&mut self, carrier: &mut dyn Injector) -> SendAttempt {
        self.attempts += 1;
        let compact = self.producer.inner.header_form == Some(HeaderForm::Compact);
        match self.producer.inner.mode {
            Mode::Full => self.begin_full(carrier, compact),
            Mode::Ledger if self.attempts >= 2 || app_sampled() => {
                self.begin_full(carrier, compact)
            }
            Mode::Ledger => {
                let start = SystemTime::now();
                if compact {
                    headers::inject_compact(
                        carrier,
                        None,
                        &self.key,
                        self.message_id.get().map(|id| &**id),
                        self.attempts,
                    );
                } else {
                    let none = opentelemetry::trace::SpanContext::empty_context();
                    headers::inject(carrier, &none, &self.key, self.message_id());
                }
                self.attempt_tracked(Context::new(), Track::Ordinary { start, end: None })
            }
            Mode::Off => self.attempt_tracked(Context::new(), Track::Off),
        }
    }

    fn attempt_tracked(&self, cx: Context, track: Track) -> SendAttempt {
        SendAttempt {
            message: self.clone(),
            attempt: self.attempts,
            cx,
            track,
        }
    }

    /// The attributes of this message's `produce` span for `attempt`.
    fn produce_attributes(&self, attempt: u32) -> Vec<KeyValue> {
        let rec = &self.producer.inner.recorder;
        let mut attrs = common_attributes(
            Stage::Produce,
            &rec.system,
            Some(&self.key),
            Some(self.message_id_arc()),
            &self.destination,
            self.partition.as_ref(),
            3,
        );
        attrs.push(KeyValue::new(attr::ATTEMPT, i64::from(attempt)));
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_TYPE, "send"));
        attrs.push(KeyValue::new(attr::MESSAGING_OPERATION_NAME, "send"));
        attrs
    }

    /// A `produce` span now, child of the app's current span, and its headers in the
    /// producer's form (the compact one by default, or the five), with the span's trace
    /// context.
    fn begin_full(&mut self, carrier: &mut dyn Injector, compact: bool) -> SendAttempt {
        let rec = &self.producer.inner.recorder;
        let attrs = self.produce_attributes(self.attempts);
        let span = rec
            .tracer
            .span_builder(span_name("send", &self.destination))
            .with_kind(SpanKind::Producer)
            .with_attributes(attrs)
            .start_with_context(&rec.tracer, &app_context());
        let cx = Context::new().with_span(span);
        if compact {
            headers::inject_compact(
                carrier,
                Some(cx.span().span_context()),
                &self.key,
                Some(self.message_id()),
                self.attempts,
            );
        } else {
            headers::inject(
                carrier,
                cx.span().span_context(),
                &self.key,
                self.message_id(),
            );
        }
        self.attempt_tracked(cx, Track::Full)
    }

    /// The `produce` span of an ordinary candidate that turned out not ordinary, recorded now
    /// with the call's times. It starts a new trace: had the app's span been sampled, the
    /// attempt would have had a full span from the start, and an unsampled parent would make
    /// the sampler drop this one too.
    fn late_produce(
        &self,
        attempt: u32,
        start: SystemTime,
        end: SystemTime,
        error_type: Option<&str>,
    ) -> Context {
        use opentelemetry::trace::Span as _;
        let rec = &self.producer.inner.recorder;
        let mut span = rec
            .tracer
            .span_builder(span_name("send", &self.destination))
            .with_kind(SpanKind::Producer)
            .with_start_time(start)
            .with_attributes(self.produce_attributes(attempt))
            .start_with_context(&rec.tracer, &Context::new());
        if let Some(error_type) = error_type {
            span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
            span.set_status(Status::error(error_type.to_owned()));
        }
        span.end_with_timestamp(end.max(start));
        Context::new().with_span(span)
    }
}

/// A send attempt whose client call is under way.
#[derive(Debug)]
#[must_use = "record how the client call returned: sent() or failed()"]
pub struct SendAttempt {
    message: OutgoingMessage,
    attempt: u32,
    cx: Context,
    track: Track,
}

impl SendAttempt {
    /// The context of this attempt's `produce` span: an empty context when it has none (an
    /// ordinary candidate in ledger mode, off mode).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The attempt number (1 = first try).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The pending ack of an ordinary candidate whose client call returned just now: no span
    /// was started; the call's times are kept in case the answer makes it not ordinary.
    fn ordinary_returned(self, start: SystemTime) -> PendingAck {
        let now = SystemTime::now();
        PendingAck::new(
            self.message,
            self.attempt,
            self.cx,
            now,
            Track::Ordinary {
                start,
                end: Some(now),
            },
        )
    }

    /// The client call returned without error: ends `produce`; the broker's answer is pending.
    pub fn sent(self) -> PendingAck {
        let track = match self.track {
            Track::Ordinary { start, .. } => return self.ordinary_returned(start),
            // No clock read: nothing will be recorded.
            Track::Off => {
                return PendingAck::new(
                    self.message,
                    self.attempt,
                    self.cx,
                    SystemTime::UNIX_EPOCH,
                    Track::Off,
                );
            }
            track => track,
        };
        self.cx.span().end();
        PendingAck::new(
            self.message,
            self.attempt,
            self.cx,
            SystemTime::now(),
            track,
        )
    }

    /// Splits the attempt before the client call: the [`PendingAck`] to hand to the client
    /// with the record, and the [`SendCall`] that ends `produce` when the call returns.
    ///
    /// In ledger mode the pending ack of an ordinary candidate does not learn when the call
    /// returned (that would take state shared per message): should its `produce` span be
    /// recorded late, it ends where it started.
    pub fn split(self) -> (SendCall, PendingAck) {
        let since = match self.track {
            Track::Ordinary { start, .. } => start,
            Track::Off => SystemTime::UNIX_EPOCH,
            _ => SystemTime::now(),
        };
        let pending = PendingAck::new(
            self.message,
            self.attempt,
            self.cx.clone(),
            since,
            self.track,
        );
        (SendCall { cx: self.cx }, pending)
    }

    /// The client call failed synchronously: ends `produce` with status ERROR and records
    /// the attempt giving up (`store_ack` with outcome `error`).
    pub fn failed(self, error_type: &str) {
        match self.track {
            Track::Off => {}
            Track::Ordinary { start, .. } => self.ordinary_returned(start).failed_sync(error_type),
            track => {
                let span = self.cx.span();
                span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
                span.set_status(Status::error(error_type.to_owned()));
                span.end();
                PendingAck::new(
                    self.message,
                    self.attempt,
                    self.cx,
                    SystemTime::now(),
                    track,
                )
                .error(error_type);
            }
        }
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
        match pending.track {
            Track::Ordinary { .. } => return pending.failed_sync(error_type),
            Track::Off | Track::Done => return,
            Track::Full => {}
        }
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
        span.set_status(Status::error(error_type.to_owned()));
        span.end();
        pending.error(error_type);
    }
}

/// A sent attempt waiting for the broker's answer.
///
/// Dropped without an answer (e.g. a publisher without confirms), it records nothing more in
/// full mode (its `produce` span is there already); in ledger mode an ordinary candidate then
/// records its `produce` span, as full mode would have.
#[derive(Debug)]
#[must_use = "record the broker's answer: acked(), nacked(), error() or timed_out()"]
pub struct PendingAck {
    message: OutgoingMessage,
    attempt: u32,
    produce_cx: Context,
    since: SystemTime,
    extra: Vec<KeyValue>,
    track: Track,
}

impl Drop for PendingAck {
    fn drop(&mut self) {
        if let Track::Ordinary { start, end } = std::mem::replace(&mut self.track, Track::Done) {
            self.message
                .late_produce(self.attempt, start, end.unwrap_or(start), None);
        }
    }
}

impl PendingAck {
    fn new(
        message: OutgoingMessage,
        attempt: u32,
        produce_cx: Context,
        since: SystemTime,
        track: Track,
    ) -> Self {
        PendingAck {
            message,
            attempt,
            produce_cx,
            since,
            extra: Vec::new(),
            track,
        }
    }

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

    /// Whether answering records anything (`false` in off mode, or answered already): an
    /// adapter can skip formatting a position nobody reads.
    pub fn records(&self) -> bool {
        !matches!(self.track, Track::Off | Track::Done)
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
    ///
    /// In ledger mode, an ordinary candidate (a first attempt the app's sampler did not keep)
    /// answered `ok` — without extra attributes, which a ledger could not carry — only adds its
    /// seq to the ledger of its stream, destination and partition. Any other answer records
    /// its `produce` span late (with the call's times) and then `store_ack`, as full mode.
    pub fn record(
        mut self,
        outcome: StoreOutcome,
        position: Option<&str>,
        partition: Option<&str>,
        error_type: Option<&str>,
    ) {
        match std::mem::replace(&mut self.track, Track::Done) {
            Track::Off | Track::Done => return,
            Track::Full => {}
            Track::Ordinary { start, end } => {
                let m = &self.message;
                if outcome == StoreOutcome::Ok
                    && self.extra.is_empty()
                    && m.stream.as_ref().is_some_and(|stream| {
                        stream.ledger().record(
                            &m.destination,
                            partition.or(m.partition.as_deref()),
                            m.key.seq,
                            start,
                            SystemTime::now(),
                        )
                    })
                {
                    return;
                }
                self.produce_cx = m.late_produce(self.attempt, start, end.unwrap_or(start), None);
            }
        }
        self.record_store_ack(outcome, position, partition, error_type);
    }

    /// A synchronous send failure of an ordinary candidate: `produce` (ERROR, late) and
    /// `store_ack` `error`.
    fn failed_sync(mut self, error_type: &str) {
        if let Track::Ordinary { start, end } = std::mem::replace(&mut self.track, Track::Done) {
            let end = end.unwrap_or_else(SystemTime::now);
            self.produce_cx = self
                .message
                .late_produce(self.attempt, start, end, Some(error_type));
        }
        self.record_store_ack(StoreOutcome::Error, None, None, Some(error_type));
    }

    /// The `store_ack` span, child of `produce_cx`.
    fn record_store_ack(
        &mut self,
        outcome: StoreOutcome,
        position: Option<&str>,
        partition: Option<&str>,
        error_type: Option<&str>,
    ) {
        let extra = std::mem::take(&mut self.extra);
        let m = &self.message;
        let rec = &m.producer.inner.recorder;
        let partition: Option<Arc<str>> = partition.map(Arc::from).or_else(|| m.partition.clone());
        let mut attrs = common_attributes(
            Stage::StoreAck,
            &rec.system,
            Some(&m.key),
            Some(m.message_id_arc()),
            &m.destination,
            partition.as_ref(),
            4 + extra.len(),
        );
        attrs.extend(extra);
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
