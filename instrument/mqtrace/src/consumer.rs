//! The consuming side: read the headers back, record each delivery (`deliver`) and how it was
//! settled (`consume_ack`).

use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{
    Link, SpanContext, SpanKind, Status, TraceContextExt, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use crate::headers::{self, IncomingHeaders};
use crate::ledger::{self, ConsumerLedgers, ConsumerSlot, Flush};
use crate::live::{DEFAULT_REORDER_WINDOW, Gap, GapHook, Live, Tracked};
use crate::message::{MessageKey, SettleOutcome};
use crate::mode::{DEFAULT_FLUSH_INTERVAL, Mode};
use crate::names::{Stage, attr};
use crate::span::{
    Recorder, TracerChoice, app_context, app_sampled, common_attributes, scope, span_name,
    str_value,
};

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
    mode: Mode,
    ledgers: ConsumerLedgers,
    malformed: AtomicU64,
    /// Live signals (SPEC §7); `None` in off mode or when turned off.
    live: Option<Live>,
}

impl Flush for Inner {
    fn flush(&self) {
        self.ledgers
            .flush(&self.recorder, &self.group, &self.consumer_id);
    }
}

impl Drop for Inner {
    /// The last handle is gone (consumer clones, unsettled deliveries): export the ledgers.
    fn drop(&mut self) {
        if self.mode == Mode::Ledger {
            self.flush();
        }
    }
}

/// Builds a [`Consumer`].
#[derive(Debug)]
pub struct ConsumerBuilder {
    system: Arc<str>,
    group: Arc<str>,
    consumer_id: Option<Arc<str>>,
    parent_mode: ParentMode,
    tracer: TracerChoice,
    mode: Option<Mode>,
    flush_interval: Duration,
    meter: Option<Meter>,
    live: bool,
    reorder_window: u64,
    on_gap: Option<GapHook>,
}

impl ConsumerBuilder {
    /// What to record (default: [`Mode::from_env`], i.e. the `MQTRACE_MODE` variable, read
    /// when [`build`](Self::build) runs; `full` when unset).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// How often ledger mode exports its ledgers (default [`DEFAULT_FLUSH_INTERVAL`], 1 s;
    /// at least 1 ms). In full mode with live signals, how often idle slots age (a slot idle
    /// for 600 intervals is forgotten). Ignored otherwise.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

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

    /// Count the live signals (SPEC §7) through this provider instead of the global one.
    ///
    /// The global provider is read when [`build`](Self::build) runs, as for spans: install it
    /// first (`mqtrace-export`'s `install()` does).
    pub fn meter_provider<P>(mut self, provider: &P) -> Self
    where
        P: MeterProvider + ?Sized,
    {
        self.meter = Some(provider.meter_with_scope(scope()));
        self
    }

    /// Whether to keep the live signals (SPEC §7; default on, in every mode that records).
    ///
    /// Turn them off where this instance cannot see every seq of a stream on a partition, or
    /// every one it does not see would count as missing: competing consumer processes on one
    /// RabbitMQ queue or JetStream durable (each gets a share of the messages), or a Kafka
    /// stream that the producer spreads over several partitions (each partition holds a share
    /// of its seqs). See `docs/contract.md`, "Live signals".
    pub fn live_signals(mut self, on: bool) -> Self {
        self.live = on;
        self
    }

    /// The reorder window, in seqs (default [`DEFAULT_REORDER_WINDOW`], at most
    /// [`MAX_REORDER_WINDOW`](crate::live::MAX_REORDER_WINDOW); larger values are clamped): a
    /// seq that has not arrived counts as `mqtrace.consumer.missing` once this consumer has
    /// delivered a seq more than `seqs` above it. 0 counts a hole as soon as a higher seq
    /// arrives.
    pub fn reorder_window(mut self, seqs: u64) -> Self {
        self.reorder_window = seqs;
        self
    }

    /// Calls `hook` on the consumer's thread, after the counters, whenever seqs are counted
    /// missing (with every run of them) and whenever a seq counted missing arrives late. Keep
    /// it short (log, raise an alert flag): the delivery waits for it.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::sync::{Arc, Mutex};
    /// use mqtrace::{Consumer, DeliveryInfo, GapKind, Producer};
    ///
    /// let missing = Arc::new(Mutex::new(Vec::new()));
    /// let seen = missing.clone();
    /// let consumer = Consumer::builder("rabbitmq", "shipping")
    ///     .reorder_window(0)
    ///     .on_gap(move |gap| {
    ///         if gap.kind == GapKind::Missing {
    ///             seen.lock().unwrap().extend(gap.seqs.iter().cloned());
    ///         }
    ///     })
    ///     .build();
    /// let producer = Producer::builder("rabbitmq").producer_id("p1").build();
    /// for seq in 1..=4 {
    ///     let mut headers: HashMap<String, String> = HashMap::new();
    ///     producer.message("orders").begin_attempt(&mut headers).sent().acked(None, None);
    ///     if seq != 2 {
    ///         consumer.deliver(&headers, DeliveryInfo::new("orders")).ack(); // 2 is lost
    ///     }
    /// }
    /// assert_eq!(*missing.lock().unwrap(), vec![2..=2]);
    /// ```
    pub fn on_gap<F>(mut self, hook: F) -> Self
    where
        F: Fn(&Gap<'_>) + Send + Sync + 'static,
    {
        self.on_gap = Some(GapHook(Arc::new(hook)));
        self
    }

    /// The consumer. In ledger mode, and in full mode with live signals (to forget idle slots),
    /// it is registered with the process's ledger flusher thread (started on first use).
    pub fn build(self) -> Consumer {
        let mode = self.mode.unwrap_or_else(Mode::from_env);
        let live = (self.live && mode != Mode::Off).then(|| {
            let meter = self
                .meter
                .unwrap_or_else(|| opentelemetry::global::meter_with_scope(scope()));
            Live::new(&meter, self.reorder_window, self.on_gap)
        });
        let consumer_id = self
            .consumer_id
            .unwrap_or_else(|| format!("{}-{}", self.group, std::process::id()).into());
        let inner = Arc::new(Inner {
            recorder: Recorder {
                tracer: self.tracer.into_tracer(),
                system: self.system,
            },
            group: self.group,
            consumer_id,
            parent_mode: self.parent_mode,
            mode,
            ledgers: ConsumerLedgers::default(),
            malformed: AtomicU64::new(0),
            live,
        });
        // Full mode keeps slots only for the live signals; the flusher forgets idle ones (it
        // finds no ledger to export).
        if mode == Mode::Ledger || (mode == Mode::Full && inner.live.is_some()) {
            let weak: Weak<dyn Flush> = Arc::downgrade(&inner) as Weak<Inner>;
            ledger::register(weak, self.flush_interval);
        }
        Consumer { inner }
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
            mode: None,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            meter: None,
            live: true,
            reorder_window: DEFAULT_REORDER_WINDOW,
            on_gap: None,
        }
    }

    /// What this consumer records.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Exports now what this consumer's ledgers hold (ledger mode; nothing to do otherwise).
    /// Also done every flush interval, and when the last handle is dropped.
    pub fn flush(&self) {
        if self.inner.mode == Mode::Ledger {
            self.inner.flush();
        }
    }

    /// The reorder window of the live signals, `None` when they are off (off mode, or
    /// [`live_signals(false)`](ConsumerBuilder::live_signals)).
    pub fn reorder_window(&self) -> Option<u64> {
        self.inner.live.as_ref().map(|l| l.window)
    }

    /// Deliveries so far whose compact `mqtrace` header did not parse (each was traced as a
    /// message without it).
    pub fn malformed_headers(&self) -> u64 {
        self.inner.malformed.load(Ordering::Relaxed)
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
    ///
    /// In ledger mode, a first delivery (count 1, a seq this instance has not delivered
    /// recently, not kept by a sampler: see [`Mode::Ledger`]) records no span: its seq goes
    /// into the `deliver` ledger. Off mode records nothing (the headers are still read, for
    /// [`Delivery::key`]).
    pub fn deliver_with(&self, incoming: IncomingHeaders, info: DeliveryInfo<'_>) -> Delivery {
        if incoming.compact_error.is_some() {
            self.inner.malformed.fetch_add(1, Ordering::Relaxed);
        }
        let parts = Parts::new(incoming, info);
        match self.inner.mode {
            Mode::Full => self.deliver_full(parts),
            Mode::Ledger => self.deliver_ledger(parts),
            Mode::Off => self.delivery(parts, Context::new(), Track::Off),
        }
    }

    fn delivery(&self, parts: Parts, cx: Context, track: Track) -> Delivery {
        Delivery {
            consumer: self.clone(),
            key: parts.key,
            message_id: parts.message_id,
            destination: parts.destination,
            partition: parts.partition,
            cx,
            track,
        }
    }

    /// Full mode (and a ledger-mode delivery without numbering): the live signals, on a slot
    /// of their own, then the span.
    fn deliver_full(&self, parts: Parts) -> Delivery {
        let slot = match (&self.inner.live, &parts.key) {
            (Some(live), Some(key)) => {
                let slot = self.inner.ledgers.slot(
                    key,
                    &parts.destination,
                    parts.partition.as_deref(),
                    &self.inner.group,
                );
                let mut gaps = Vec::new();
                let tracked = slot.state().live.deliver(
                    key.seq,
                    parts.count > 1,
                    live.window,
                    live.wants_gaps().then_some(&mut gaps),
                );
                self.report(&slot, key.seq, Some(tracked), &gaps);
                Some(slot)
            }
            _ => None,
        };
        self.deliver_repeat(parts, None, slot)
    }

    /// A full `deliver` span; `earlier`: where this instance's ledger delivery of the same
    /// seq was stored; `slot`: where its settle is marked for the live signals.
    fn deliver_repeat(
        &self,
        parts: Parts,
        earlier: Option<String>,
        slot: Option<Arc<ConsumerSlot>>,
    ) -> Delivery {
        let mut d = parts.span();
        d.earlier = earlier.as_deref();
        let cx = self.deliver_span(&d, None);
        self.delivery(parts, cx, Track::Full(slot))
    }

    /// Counts what the live tracking found, and tells the app's hook. Called with the slot's
    /// lock released.
    fn report(
        &self,
        slot: &ConsumerSlot,
        seq: u64,
        tracked: Option<Tracked>,
        gaps: &[std::ops::RangeInclusive<u64>],
    ) {
        if let (Some(live), Some(t)) = (&self.inner.live, tracked)
            && !t.is_quiet()
        {
            live.report(&slot.at(&self.inner.group), seq, t, gaps);
        }
    }

    fn deliver_ledger(&self, mut parts: Parts) -> Delivery {
        let Some(key) = &parts.key else {
            // No numbering: nothing a ledger could hold, no seq to track.
            return self.deliver_full(parts);
        };
        let seq = key.seq;
        // Kept by a sampler: the producer's (a sampled trace context in the headers: ledger
        // mode propagates one only with a full span) or the app's own current span.
        let kept = parts.remote.as_ref().is_some_and(SpanContext::is_sampled) || app_sampled();
        let slot = self.inner.ledgers.slot(
            key,
            &parts.destination,
            parts.partition.as_deref(),
            &self.inner.group,
        );
        let mut st = slot.state();
        // The live signals ride on the ledger's lock: one lock per delivery for both.
        let mut gaps = Vec::new();
        let tracked = self.inner.live.as_ref().map(|live| {
            st.live.deliver(
                seq,
                parts.count > 1,
                live.window,
                live.wants_gaps().then_some(&mut gaps),
            )
        });
        let first = st.seen.insert(seq);
        if first && parts.count <= 1 && !kept {
            let at = SystemTime::now();
            if st.deliver.record(seq, at, at) {
                st.positions.remember(seq, parts.position.as_deref());
                let generation = st.generation;
                drop(st);
                self.report(&slot, seq, tracked, &gaps);
                let ordinary = Ordinary {
                    slot,
                    generation,
                    at,
                    position: parts.position.take(),
                    remote: parts.remote.take(),
                };
                return self.delivery(parts, Context::new(), Track::Ordinary(ordinary));
            }
        }
        // A seq delivered before through the ledger: name where that copy was stored, once
        // (a second repeat naming it again would count the ledger's copy twice).
        let earlier = st.positions.earlier(seq).map(str::to_owned);
        if earlier.is_some() {
            st.positions.forget(seq);
        }
        drop(st);
        self.report(&slot, seq, tracked, &gaps);
        let slot = self.inner.live.is_some().then_some(slot);
        self.deliver_repeat(parts, earlier, slot)
    }

    /// Records a `deliver` span: now, ended at once; or, `late_at` a given time (a ledger
    /// delivery found not ordinary when settled), as a new trace linked to the producer's
    /// context (its would-be parent was not sampled: a parent the sampler drops would drop
    /// this span too).
    fn deliver_span(&self, d: &DeliverSpan<'_>, late_at: Option<SystemTime>) -> Context {
        let inner = &self.inner;
        let rec = &inner.recorder;
        let mut attrs = common_attributes(
            Stage::Deliver,
            &rec.system,
            d.key,
            d.message_id,
            d.destination,
            d.partition,
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
        attrs.push(KeyValue::new(attr::DELIVERY_COUNT, i64::from(d.count)));
        if let Some(pos) = d.position {
            attrs.push(KeyValue::new(attr::BROKER_POSITION, pos.clone()));
        }
        if let Some(earlier) = d.earlier {
            attrs.push(KeyValue::new(attr::LEDGER_POSITION, earlier.to_owned()));
        }
        let mut builder = rec
            .tracer
            .span_builder(span_name("process", d.destination))
            .with_kind(SpanKind::Consumer)
            .with_attributes(attrs);
        let parent = match (late_at, inner.parent_mode, d.remote) {
            (Some(_), _, remote) => {
                if let Some(remote) = remote {
                    builder = builder.with_links(vec![Link::with_context(remote.clone())]);
                }
                Context::new()
            }
            (None, ParentMode::Child, Some(remote)) => {
                Context::new().with_remote_span_context(remote.clone())
            }
            (None, ParentMode::Link, Some(remote)) => {
                builder = builder.with_links(vec![Link::with_context(remote.clone())]);
                app_context()
            }
            (None, _, None) => app_context(),
        };
        if let Some(at) = late_at {
            builder = builder.with_start_time(at);
        }
        let span = builder.start_with_context(&rec.tracer, &parent);
        let cx = Context::new().with_span(span);
        match late_at {
            Some(at) => cx.span().end_with_timestamp(at),
            None => cx.span().end(),
        }
        cx
    }
}

/// A delivery's identity and what its `deliver` span carries.
struct Parts {
    key: Option<MessageKey>,
    message_id: MessageId,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    position: Option<String>,
    count: u32,
    remote: Option<SpanContext>,
}

impl Parts {
    fn new(incoming: IncomingHeaders, info: DeliveryInfo<'_>) -> Self {
        let message_id = MessageId {
            given: incoming
                .message_id
                .or_else(|| info.message_id.map(Into::into)),
            default: OnceLock::new(),
        };
        Parts {
            key: incoming.key,
            message_id,
            destination: info.destination.into(),
            partition: info.partition.map(Into::into),
            position: info.position,
            count: info.delivery_count.max(1),
            remote: incoming.remote,
        }
    }

    fn span(&self) -> DeliverSpan<'_> {
        DeliverSpan {
            key: self.key.as_ref(),
            message_id: self.message_id.get(self.key.as_ref()),
            destination: &self.destination,
            partition: self.partition.as_ref(),
            position: self.position.as_ref(),
            count: self.count,
            remote: self.remote.as_ref(),
            earlier: None,
        }
    }
}

/// A delivery's message id: the one its headers or the broker gave, else the default of its
/// key, built when first asked for (a ledger-mode first delivery settled with `ack` records no
/// span and never needs it).
#[derive(Debug)]
struct MessageId {
    given: Option<Arc<str>>,
    default: OnceLock<Arc<str>>,
}

impl MessageId {
    fn get(&self, key: Option<&MessageKey>) -> Option<&Arc<str>> {
        self.given
            .as_ref()
            .or_else(|| key.map(|k| self.default.get_or_init(|| k.default_message_id_arc())))
    }
}

/// What a `deliver` span is made of.
struct DeliverSpan<'a> {
    key: Option<&'a MessageKey>,
    message_id: Option<&'a Arc<str>>,
    destination: &'a Arc<str>,
    partition: Option<&'a Arc<str>>,
    position: Option<&'a String>,
    count: u32,
    remote: Option<&'a SpanContext>,
    /// [`attr::LEDGER_POSITION`].
    earlier: Option<&'a str>,
}

/// What a delivery records when settled.
#[derive(Debug)]
enum Track {
    /// Spans as SPEC §2; the slot where an `ack` is marked for the live signals, when they
    /// are on.
    Full(Option<Arc<ConsumerSlot>>),
    /// Ledger mode: a first delivery, in the `deliver` ledger.
    Ordinary(Ordinary),
    /// Off mode: nothing.
    Off,
}

/// A ledger-mode first delivery: where its seq was recorded, and what its `deliver` span
/// would carry should the settle show it was not ordinary.
#[derive(Debug)]
struct Ordinary {
    slot: Arc<ConsumerSlot>,
    /// The slot's generation when recorded: the seq is still in the unexported `deliver`
    /// ledger while the generation is the same.
    generation: u64,
    at: SystemTime,
    position: Option<String>,
    remote: Option<SpanContext>,
}

/// One received delivery, waiting to be settled.
#[derive(Debug)]
#[must_use = "settle the delivery (ack, nack, reject, skip_duplicate) once processing is done"]
pub struct Delivery {
    consumer: Consumer,
    key: Option<MessageKey>,
    message_id: MessageId,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    cx: Context,
    track: Track,
}

impl Delivery {
    /// The producer's numbering, when the message carried it.
    pub fn key(&self) -> Option<&MessageKey> {
        self.key.as_ref()
    }

    /// The message id.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.get(self.key.as_ref()).map(|id| &**id)
    }

    /// The `deliver` span's context: parent the app's processing spans on it. An empty
    /// context when the delivery has no span (a first delivery in ledger mode, off mode).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Processed and acknowledged (`consume_ack` `ack`, operation `ack`).
    pub fn ack(self) {
        self.settle(SettleOutcome::Ack, "ack");
    }

    /// Records `consume_ack`: `outcome`, under the client's operation name (`ack`, `nack`,
    /// `reject`, `commit`, `term`, …). Settling `Error` sets status ERROR.
    ///
    /// In ledger mode, a first delivery settled with `ack` only adds its seq to the
    /// `consume_ack` ledger. Settled otherwise, it records full spans: its `deliver` span
    /// (late, at the delivery's time, its seq then left out of the `deliver` ledger) and
    /// `consume_ack` as its child; if the `deliver` ledger holding it was exported already,
    /// `consume_ack` alone, in a trace of its own.
    pub fn settle(mut self, outcome: SettleOutcome, operation_name: &str) {
        // Processed (or recognised as processed): a later delivery of it is a duplicate.
        let done = matches!(outcome, SettleOutcome::Ack | SettleOutcome::SkipDuplicate)
            && self.consumer.inner.live.is_some();
        let seq = self.key.as_ref().map_or(0, |k| k.seq);
        match std::mem::replace(&mut self.track, Track::Off) {
            Track::Off => return,
            Track::Full(slot) => {
                if let Some(slot) = slot.filter(|_| done) {
                    slot.state().live.ack(seq);
                }
            }
            Track::Ordinary(o) => {
                let now = SystemTime::now();
                let mut st = o.slot.state();
                if done {
                    st.live.ack(seq);
                }
                if outcome == SettleOutcome::Ack {
                    if st.consume_ack.record(seq, now, now) {
                        return;
                    }
                    // The seq was acked already this interval (a set cannot say twice): a
                    // full span, child of nothing (its `deliver` is in a ledger).
                } else if st.generation == o.generation {
                    st.deliver.retract(seq);
                    // Its late full span names its position: a repeat need not.
                    st.positions.forget(seq);
                    drop(st);
                    let d = DeliverSpan {
                        key: self.key.as_ref(),
                        message_id: self.message_id.get(self.key.as_ref()),
                        destination: &self.destination,
                        partition: self.partition.as_ref(),
                        position: o.position.as_ref(),
                        count: 1,
                        remote: o.remote.as_ref(),
                        earlier: None,
                    };
                    self.cx = self.consumer.deliver_span(&d, Some(o.at));
                }
            }
        }
        self.record_settle(outcome, operation_name);
    }

    /// The `consume_ack` span, child of the `deliver` span (or of nothing in ledger mode).
    fn record_settle(&self, outcome: SettleOutcome, operation_name: &str) {
        let inner = &self.consumer.inner;
        let rec = &inner.recorder;
        let mut attrs = common_attributes(
            Stage::ConsumeAck,
            &rec.system,
            self.key.as_ref(),
            self.message_id.get(self.key.as_ref()),
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
