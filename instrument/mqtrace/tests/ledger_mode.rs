//! Ledger mode (SPEC §2b) and off mode, through the SDK's in-memory exporter: the ordinary path
//! leaves only ledger spans, everything else the full spans full mode records.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mqtrace::names::attr;
use mqtrace::{Consumer, DeliveryInfo, Mode, Producer, SettleOutcome};
use mqtrace_vocab::seqs::SeqRanges;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, Value};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData};

mod common;
use common::{attrs, by_stage, finished, provider, s};

type Headers = HashMap<String, String>;

/// Long enough that the background flusher never runs during a test: flushes are explicit.
const NEVER: Duration = Duration::from_secs(3600);

fn producer(provider: &SdkTracerProvider, mode: Mode) -> Producer {
    Producer::builder("kafka")
        .producer_id("p1")
        .tracer_provider(provider)
        .mode(mode)
        .flush_interval(NEVER)
        .build()
}

fn consumer(provider: &SdkTracerProvider, mode: Mode) -> Consumer {
    Consumer::builder("kafka", "shipping")
        .consumer_id("shipping-1")
        .tracer_provider(provider)
        .mode(mode)
        .flush_interval(NEVER)
        .build()
}

fn int(span: &SpanData, key: &str) -> i64 {
    match attrs(span).get(key) {
        Some(Value::I64(v)) => *v,
        other => panic!("{key} is not an int: {other:?}"),
    }
}

fn ledgers<'a>(spans: &'a [SpanData], of: &str) -> Vec<&'a SpanData> {
    by_stage(spans, attr::LEDGER)
        .into_iter()
        .filter(|sp| attrs(sp).get(attr::LEDGER_OF) == Some(&s(of)))
        .collect()
}

/// The seqs of every ledger span of one kind, merged; panics on a seq in two of them (the
/// tests below expect each event once) or a text that does not parse.
fn ledger_seqs(spans: &[SpanData], of: &str) -> SeqRanges {
    let mut all = SeqRanges::default();
    for sp in ledgers(spans, of) {
        let text = attrs(sp)[attr::SEQS].to_string();
        let set: SeqRanges = text.parse().expect("mqtrace.seqs parses");
        assert_eq!(int(sp, attr::LEDGER_COUNT), set.count() as i64);
        for &(a, b) in set.ranges() {
            for seq in a..=b {
                assert!(all.insert(seq), "seq {seq} in two {of} ledgers");
            }
        }
    }
    all
}

fn one_to(n: u64) -> SeqRanges {
    let mut set = SeqRanges::default();
    for seq in 1..=n {
        set.insert(seq);
    }
    set
}

fn stage_spans(spans: &[SpanData]) -> Vec<&SpanData> {
    spans
        .iter()
        .filter(|sp| {
            matches!(
                attrs(sp).get(attr::STAGE),
                Some(v) if *v != s(attr::LEDGER)
            )
        })
        .collect()
}

fn delivery_info(count: u32) -> DeliveryInfo<'static> {
    let mut info = DeliveryInfo::new("orders");
    info.partition = Some("0".into());
    info.delivery_count = count;
    info
}

#[test]
fn ordinary_messages_leave_only_ledgers_on_both_sides() {
    let (provider, exporter) = provider();
    let producer = producer(&provider, Mode::Ledger);
    let consumer = consumer(&provider, Mode::Ledger);
    let before = std::time::SystemTime::now();
    for i in 0..100 {
        let mut headers = Headers::new();
        producer
            .message("orders")
            .begin_attempt(&mut headers)
            .sent()
            .acked(Some(&format!("0/{i}")), Some("0"));
        assert_eq!(
            headers.keys().collect::<Vec<_>>(),
            ["mqtrace"],
            "the compact header only, no traceparent"
        );
        let delivery = consumer.deliver(&headers, delivery_info(1));
        assert_eq!(delivery.key().map(|k| k.seq), Some(i + 1));
        assert!(!delivery.context().span().span_context().is_valid());
        delivery.ack();
    }
    assert!(finished(&exporter).is_empty(), "nothing before the flush");
    producer.flush();
    consumer.flush();
    let after = std::time::SystemTime::now();

    let spans = finished(&exporter);
    assert!(stage_spans(&spans).is_empty(), "no per-message span");
    for of in ["store_ack", "deliver", "consume_ack"] {
        assert_eq!(ledger_seqs(&spans, of), one_to(100), "{of}");
        let sp = ledgers(&spans, of)[0];
        assert_eq!(sp.name, "mqtrace ledger orders");
        assert_eq!(sp.span_kind, SpanKind::Internal);
        assert!(before <= sp.start_time && sp.start_time <= sp.end_time && sp.end_time <= after);
        let a = attrs(sp);
        assert_eq!(a[attr::SEQS], s("1-100"));
        assert_eq!(a[attr::PRODUCER_ID], s("p1"));
        assert_eq!(a[attr::STREAM], s("orders"));
        assert_eq!(a[attr::MESSAGING_SYSTEM], s("kafka"));
        assert_eq!(a[attr::MESSAGING_DESTINATION_NAME], s("orders"));
        assert_eq!(a[attr::MESSAGING_DESTINATION_PARTITION_ID], s("0"));
        assert!(!a.contains_key(attr::SEQ), "a ledger names no single seq");
        if of == "store_ack" {
            assert!(!a.contains_key(attr::MESSAGING_CONSUMER_GROUP_NAME));
            assert!(!a.contains_key(attr::CONSUMER_ID));
        } else {
            assert_eq!(a[attr::MESSAGING_CONSUMER_GROUP_NAME], s("shipping"));
            assert_eq!(a[attr::CONSUMER_ID], s("shipping-1"));
        }
    }
    assert_eq!(spans.len(), 3, "one ledger span per side and stage");

    // A second flush with nothing new exports nothing; new events start a new interval.
    producer.flush();
    let mut headers = Headers::new();
    producer
        .message("orders")
        .begin_attempt(&mut headers)
        .sent()
        .acked(None, Some("0"));
    producer.flush();
    let spans = finished(&exporter);
    assert_eq!(spans.len(), 4);
    assert_eq!(attrs(&spans[3])[attr::SEQS], s("101"));
}

type Shape = (String, String, Vec<(String, String)>, Option<String>);

/// The stage spans of a run, comparable across modes: name, kind, every attribute, and the
/// name of the parent span among them (or none).
fn shape(spans: &[SpanData]) -> Vec<Shape> {
    let stage = stage_spans(spans);
    let name_of: HashMap<_, _> = stage
        .iter()
        .map(|sp| (sp.span_context.span_id(), sp.name.to_string()))
        .collect();
    let mut out: Vec<_> = stage
        .iter()
        .map(|sp| {
            let mut a: Vec<(String, String)> = sp
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect();
            a.sort();
            (
                sp.name.to_string(),
                format!("{:?}/{:?}", sp.span_kind, sp.status),
                a,
                name_of.get(&sp.parent_span_id).cloned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// What full mode recorded that ledger mode did not (every ledger-mode span must be one full
/// mode recorded too).
fn in_ledgers(full: &[Shape], ledger: &[Shape]) -> Vec<Shape> {
    let mut rest = full.to_vec();
    for span in ledger {
        let i = rest
            .iter()
            .position(|s| s == span)
            .unwrap_or_else(|| panic!("ledger mode recorded a span full mode did not: {span:?}"));
        rest.remove(i);
    }
    rest
}

fn seq_of(shape: &Shape) -> Option<&str> {
    shape
        .2
        .iter()
        .find(|(k, _)| k == attr::SEQ)
        .map(|(_, v)| v.as_str())
}

/// Runs `scenario` in full mode and in ledger mode; returns both shapes and the ledger run's
/// spans.
fn both_modes(scenario: impl Fn(&Producer, &Consumer)) -> (Vec<Shape>, Vec<Shape>, Vec<SpanData>) {
    let mut shapes = Vec::new();
    let mut last = Vec::new();
    for mode in [Mode::Full, Mode::Ledger] {
        let (provider, exporter) = provider();
        let p = producer(&provider, mode);
        let c = consumer(&provider, mode);
        scenario(&p, &c);
        p.flush();
        c.flush();
        last = finished(&exporter);
        shapes.push(shape(&last));
    }
    let ledger = shapes.pop().unwrap_or_default();
    let full = shapes.pop().unwrap_or_default();
    (full, ledger, last)
}

#[test]
fn a_broker_nack_records_the_full_spans_full_mode_records() {
    let (full, ledger, spans) = both_modes(|p, _| {
        let mut m = p.message("orders");
        m.begin_attempt(&mut Headers::new())
            .sent()
            .nacked("queue_full");
    });
    assert_eq!(full.len(), 2);
    assert_eq!(ledger, full);
    assert!(by_stage(&spans, attr::LEDGER).is_empty());
    let produce = by_stage(&spans, "produce")[0];
    let ack = by_stage(&spans, "store_ack")[0];
    assert_eq!(ack.parent_span_id, produce.span_context.span_id());
    assert!(produce.start_time <= produce.end_time && produce.end_time <= ack.start_time);
}

#[test]
fn a_retry_records_both_attempts_in_full() {
    let (full, ledger, spans) = both_modes(|p, _| {
        let mut m = p.message("orders");
        m.begin_attempt(&mut Headers::new()).sent().timed_out();
        let mut headers = Headers::new();
        m.begin_attempt(&mut headers)
            .sent()
            .acked(Some("0/9"), Some("0"));
        if p.mode() == Mode::Ledger {
            // The retry has a span to propagate: traceparent and the compact header.
            assert!(headers.contains_key("traceparent"));
            assert_eq!(headers["mqtrace"], "1;p1;orders;1;2");
            assert_eq!(headers.len(), 2);
        }
        // A later first attempt acked ok is ordinary again.
        p.message("orders")
            .begin_attempt(&mut Headers::new())
            .sent()
            .acked(Some("0/10"), Some("0"));
    });
    assert_eq!(full.len(), 6);
    assert_eq!(ledger.len(), 4, "two produce, two store_ack");
    let rest = in_ledgers(&full, &ledger);
    assert!(rest.iter().all(|s| seq_of(s) == Some("2")), "{rest:?}");
    assert_eq!(rest.len(), 2);
    assert_eq!(ledger_seqs(&spans, "store_ack").to_string(), "2");
}

#[test]
fn synchronous_failures_record_produce_in_error_and_store_ack_error() {
    let (full, ledger, _) = both_modes(|p, _| {
        p.message("orders")
            .begin_attempt(&mut Headers::new())
            .failed("channel_closed");
        // The rdkafka way: split before the call, the call refuses the record.
        let (call, pending) = p
            .message("orders")
            .begin_attempt(&mut Headers::new())
            .split();
        call.failed(pending, "QueueFull");
    });
    assert_eq!(full.len(), 4);
    assert_eq!(ledger, full);
}

#[test]
fn a_pending_ack_dropped_unanswered_leaves_its_produce_span() {
    let (full, ledger, spans) = both_modes(|p, _| {
        drop(
            p.message("orders")
                .begin_attempt(&mut Headers::new())
                .sent(),
        );
    });
    assert_eq!(full.len(), 1);
    assert_eq!(ledger, full);
    assert!(by_stage(&spans, attr::LEDGER).is_empty());
}

/// Five-header numbering without a trace context: the same input for both modes' consumers,
/// so that parents compare.
fn numbered(seq: u64) -> Headers {
    let mut h = Headers::new();
    h.insert("mqtrace".into(), format!("1;p0;orders;{seq};1"));
    h
}

#[test]
fn a_redelivery_and_a_reject_record_the_full_spans_full_mode_records() {
    let (full, ledger, spans) = both_modes(|_, c| {
        // Seq 1: delivered, nacked, delivered again (count 2), acked.
        c.deliver(&numbered(1), delivery_info(1))
            .settle(SettleOutcome::Nack, "nack");
        c.deliver(&numbered(1), delivery_info(2)).ack();
        // Seq 2: rejected on its first delivery.
        c.deliver(&numbered(2), delivery_info(1))
            .settle(SettleOutcome::Reject, "reject");
        // Seq 3: delivered twice with count 1 (Kafka after a rebalance: no count), acked
        // twice: the second delivery is not a first one.
        c.deliver(&numbered(3), delivery_info(1)).ack();
        c.deliver(&numbered(3), delivery_info(1))
            .settle(SettleOutcome::SkipDuplicate, "commit");
        // Seq 4: ordinary.
        c.deliver(&numbered(4), delivery_info(1)).ack();
    });
    assert_eq!(full.len(), 12);
    assert_eq!(ledger.len(), 8, "seq 1: 2+2, seq 2: 2, seq 3: 2");
    let rest = in_ledgers(&full, &ledger);
    let rest: Vec<(&str, Option<&str>)> = rest.iter().map(|s| (s.0.as_str(), seq_of(s))).collect();
    assert_eq!(
        rest,
        [
            ("ack orders", Some("3")),
            ("ack orders", Some("4")),
            ("process orders", Some("3")),
            ("process orders", Some("4"))
        ],
        "only the first deliveries of seqs 3 and 4 and their acks are left to the ledgers"
    );
    assert_eq!(ledger_seqs(&spans, "deliver").to_string(), "3-4");
    assert_eq!(ledger_seqs(&spans, "consume_ack").to_string(), "3-4");
    // The rejected delivery's late deliver span: a first delivery, parent of its settle.
    let reject = by_stage(&spans, "consume_ack")
        .into_iter()
        .find(|sp| attrs(sp)[attr::OUTCOME] == s("reject"))
        .expect("reject recorded");
    let deliver = by_stage(&spans, "deliver")
        .into_iter()
        .find(|sp| sp.span_context.span_id() == reject.parent_span_id)
        .expect("its deliver span");
    assert_eq!(int(deliver, attr::DELIVERY_COUNT), 1);
    assert_eq!(int(deliver, attr::SEQ), 2);
    assert!(deliver.end_time <= reject.start_time);
}

#[test]
fn a_settle_after_its_ledger_was_exported_records_consume_ack_alone() {
    let (provider, exporter) = provider();
    let c = consumer(&provider, Mode::Ledger);
    let delivery = c.deliver(&numbered(7), delivery_info(1));
    c.flush(); // the deliver ledger holding seq 7 is out
    delivery.settle(SettleOutcome::Nack, "nack");
    c.flush();
    let spans = finished(&exporter);
    assert_eq!(ledger_seqs(&spans, "deliver").to_string(), "7");
    assert!(by_stage(&spans, "deliver").is_empty(), "not twice");
    let nack = by_stage(&spans, "consume_ack");
    assert_eq!(nack.len(), 1);
    assert_eq!(attrs(nack[0])[attr::OUTCOME], s("nack"));
}

#[test]
fn compact_headers_are_read_back_and_garbage_is_counted_not_fatal() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let c = consumer(&provider, Mode::Ledger);
    let full = consumer(&provider, Mode::Full);

    let mut m = p.message("orders");
    m.set_message_id("order-42;x");
    let mut headers = Headers::new();
    m.begin_attempt(&mut headers).sent().acked(None, None);
    assert_eq!(headers["mqtrace"], "1;p1;orders;1;1;order-42%3Bx");
    for consumer in [&c, &full] {
        let d = consumer.deliver(&headers, delivery_info(1));
        let key = d.key().expect("numbering read back");
        assert_eq!(
            (&*key.producer_id, &*key.stream, key.seq),
            ("p1", "orders", 1)
        );
        assert_eq!(d.message_id(), Some("order-42;x"));
        d.ack();
    }
    // The full-mode consumer reads the compact form too, and names the default id.
    let d = full.deliver(&numbered(5), delivery_info(1));
    assert_eq!(d.message_id(), Some("p0:orders:5"));
    d.ack();

    let before = mqtrace::headers::malformed_compact_headers();
    for garbage in [
        "1;p;orders;zero;1",
        "2;p;s;1;1",
        "",
        "1;p%zz;s;1;1",
        "1;;;;;;;;",
    ] {
        let mut h = Headers::new();
        h.insert("mqtrace".into(), garbage.into());
        let d = c.deliver(&h, delivery_info(1));
        assert!(d.key().is_none(), "{garbage:?} is no numbering");
        d.settle(SettleOutcome::Reject, "reject");
    }
    assert_eq!(c.malformed_headers(), 5);
    assert!(mqtrace::headers::malformed_compact_headers() >= before + 5);
    c.flush();
    let spans = finished(&exporter);
    // Messages without numbering: full spans, semconv attributes only.
    let unnumbered: Vec<_> = stage_spans(&spans)
        .into_iter()
        .filter(|sp| !attrs(sp).contains_key(attr::SEQ))
        .collect();
    assert_eq!(unnumbered.len(), 10);
}

#[test]
fn a_message_the_apps_sampler_keeps_gets_full_spans_end_to_end() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let c = consumer(&provider, Mode::Ledger);
    let app = provider.tracer("app");
    let request = Context::current_with_span(app.start("handle request"));
    let mut headers = Headers::new();
    {
        let _guard = request.clone().attach();
        p.message("orders")
            .begin_attempt(&mut headers)
            .sent()
            .acked(Some("0/1"), Some("0"));
    }
    assert!(
        headers.contains_key("traceparent"),
        "a span context to propagate"
    );
    assert_eq!(headers["mqtrace"], "1;p1;orders;1;1");
    // The consumer sees the sampled trace context: the producer kept it, so does it.
    c.deliver(&headers, delivery_info(1)).ack();
    p.flush();
    c.flush();
    let spans = finished(&exporter);
    assert!(by_stage(&spans, attr::LEDGER).is_empty());
    let produce = by_stage(&spans, "produce")[0];
    assert_eq!(
        produce.parent_span_id,
        request.span().span_context().span_id()
    );
    let ack = by_stage(&spans, "store_ack")[0];
    assert_eq!(ack.parent_span_id, produce.span_context.span_id());
    let deliver = by_stage(&spans, "deliver")[0];
    assert_eq!(deliver.parent_span_id, produce.span_context.span_id());
    let settle = by_stage(&spans, "consume_ack")[0];
    assert_eq!(settle.parent_span_id, deliver.span_context.span_id());
}

#[test]
fn a_span_the_apps_sampler_drops_keeps_the_message_ordinary() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let dropping = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let request = Context::current_with_span(dropping.tracer("app").start("unsampled"));
    let mut headers = Headers::new();
    {
        let _guard = request.attach();
        p.message("orders")
            .begin_attempt(&mut headers)
            .sent()
            .acked(None, None);
    }
    assert!(!headers.contains_key("traceparent"));
    p.flush();
    let spans = finished(&exporter);
    assert!(stage_spans(&spans).is_empty());
    assert_eq!(ledger_seqs(&spans, "store_ack").to_string(), "1");
}

#[test]
fn a_sampled_tracing_span_keeps_the_message() {
    use tracing_subscriber::layer::SubscriberExt;
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout");
        let _entered = span.enter();
        p.message("orders")
            .begin_attempt(&mut Headers::new())
            .sent()
            .acked(None, None);
    });
    p.flush();
    let spans = finished(&exporter);
    let checkout = spans
        .iter()
        .find(|sp| sp.name == "checkout")
        .expect("tracing span exported");
    let produce = by_stage(&spans, "produce")[0];
    assert_eq!(produce.parent_span_id, checkout.span_context.span_id());
    assert!(by_stage(&spans, attr::LEDGER).is_empty());
}

#[test]
fn ledgers_are_flushed_when_the_last_handle_goes() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let c = consumer(&provider, Mode::Ledger);
    let mut pending = Vec::new();
    for _ in 0..3 {
        let mut headers = Headers::new();
        pending.push(p.message("orders").begin_attempt(&mut headers).sent());
        c.deliver(&headers, delivery_info(1)).ack();
    }
    drop(p);
    drop(c);
    assert!(
        ledgers(&finished(&exporter), "store_ack").is_empty(),
        "the pending acks still hold the producer"
    );
    assert_eq!(
        ledger_seqs(&finished(&exporter), "consume_ack").to_string(),
        "1-3"
    );
    for ack in pending {
        ack.acked(None, None);
    }
    assert_eq!(
        ledger_seqs(&finished(&exporter), "store_ack").to_string(),
        "1-3"
    );
}

#[test]
fn ledgers_are_flushed_every_interval_without_being_asked() {
    let (provider, exporter) = provider();
    let p = Producer::builder("nats")
        .producer_id("p-periodic")
        .tracer_provider(&provider)
        .mode(Mode::Ledger)
        .flush_interval(Duration::from_millis(50))
        .build();
    let send = |n: u64| {
        for _ in 0..n {
            p.message("events")
                .begin_attempt(&mut Headers::new())
                .sent()
                .acked(None, None);
        }
    };
    let wait_for = |count: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = finished(&exporter);
            if ledgers(&spans, "store_ack").is_empty()
                || ledger_seqs(&spans, "store_ack").count() < count
            {
                assert!(Instant::now() < deadline, "no ledger flushed in time");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            return spans;
        }
    };
    send(5);
    let spans = wait_for(5);
    assert_eq!(ledger_seqs(&spans, "store_ack"), one_to(5));
    send(5);
    let spans = wait_for(10);
    assert_eq!(ledger_seqs(&spans, "store_ack"), one_to(10));
    assert!(ledgers(&spans, "store_ack").len() >= 2);
}

#[test]
fn the_export_wide_flush_reaches_every_ledger_mode_instance() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    p.message("orders")
        .begin_attempt(&mut Headers::new())
        .sent()
        .acked(None, None);
    mqtrace::flush_ledgers();
    assert_eq!(
        ledger_seqs(&finished(&exporter), "store_ack").to_string(),
        "1"
    );
}

#[test]
fn partitions_and_destinations_get_ledgers_of_their_own() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let stream = p.stream("orders");
    for i in 0..30u64 {
        let mut m = p.message_on(&stream, if i % 3 == 0 { "orders-eu" } else { "orders" });
        let partition = (i % 2).to_string();
        m.begin_attempt(&mut Headers::new())
            .sent()
            .acked(None, Some(&partition));
    }
    p.flush();
    let spans = finished(&exporter);
    let mut by_key: BTreeMap<(String, String), String> = BTreeMap::new();
    for sp in ledgers(&spans, "store_ack") {
        let a = attrs(sp);
        assert_eq!(a[attr::STREAM], s("orders"));
        by_key.insert(
            (
                a[attr::MESSAGING_DESTINATION_NAME].to_string(),
                a[attr::MESSAGING_DESTINATION_PARTITION_ID].to_string(),
            ),
            a[attr::SEQS].to_string(),
        );
        assert_eq!(
            sp.name,
            format!("mqtrace ledger {}", a[attr::MESSAGING_DESTINATION_NAME])
        );
    }
    assert_eq!(by_key.len(), 4);
    assert_eq!(by_key[&("orders-eu".into(), "0".into())], "1,7,13,19,25");
    assert_eq!(ledger_seqs(&spans, "store_ack"), one_to(30));
}

#[test]
fn a_counter_from_elsewhere_still_records_into_this_producers_ledgers() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Ledger);
    let standalone = mqtrace::Sequencer::new();
    let counter = standalone.stream("orders");
    counter.next_seq(); // the app persisted seq 1 elsewhere
    let mut m = p.message_on(&counter, "orders");
    assert_eq!(m.key().seq, 2);
    m.begin_attempt(&mut Headers::new())
        .sent()
        .acked(None, None);
    p.flush();
    let spans = finished(&exporter);
    assert_eq!(ledger_seqs(&spans, "store_ack").to_string(), "2");
    assert_eq!(
        attrs(ledgers(&spans, "store_ack")[0])[attr::PRODUCER_ID],
        s("p1")
    );
}

#[test]
fn off_mode_records_nothing_and_writes_no_headers() {
    let (provider, exporter) = provider();
    let p = producer(&provider, Mode::Off);
    let c = consumer(&provider, Mode::Off);
    assert_eq!((p.mode(), c.mode()), (Mode::Off, Mode::Off));
    for expected in 1..=3 {
        let mut m = p.message("orders");
        assert_eq!(m.key().seq, expected, "seqs are still handed out");
        let mut headers = Headers::new();
        let attempt = m.begin_attempt(&mut headers);
        assert!(!attempt.context().span().span_context().is_valid());
        attempt.sent().nacked("x");
        m.begin_attempt(&mut headers).failed("y");
        let (call, pending) = m.begin_attempt(&mut headers).split();
        call.sent();
        assert!(!pending.records(), "adapters may skip building positions");
        pending.acked(None, None);
        assert!(headers.is_empty());
    }
    for mode in [Mode::Full, Mode::Ledger] {
        let mut m = producer(&provider, mode).message("orders");
        let pending = m.begin_attempt(&mut Headers::new()).sent();
        assert!(pending.records(), "{mode} mode records the answer");
        pending.acked(Some("0/1"), Some("0"));
    }
    exporter.reset();
    // The consumer still reads what other producers wrote, for the app.
    let d = c.deliver(&numbered(9), delivery_info(3));
    assert_eq!(d.key().map(|k| k.seq), Some(9));
    d.settle(SettleOutcome::Nack, "nack");
    p.flush();
    c.flush();
    drop((p, c));
    assert!(finished(&exporter).is_empty());
}

/// xorshift64*: the randomised test below needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Counts of events, keyed by what names them.
type Events = BTreeMap<String, u64>;

fn add(events: &mut Events, key: String) {
    *events.entry(key).or_default() += 1;
}

/// Any sequence of events, flushes in between: the ledgers' seqs plus the full spans account
/// for every event exactly once (produce: seq and attempt; store_ack: seq, attempt, outcome;
/// deliver: seq; consume_ack: seq and outcome).
#[test]
fn ledgers_and_full_spans_together_account_for_every_event() {
    for seed in 1..=150u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let (provider, exporter) = provider();
        let p = producer(&provider, Mode::Ledger);
        let c = consumer(&provider, Mode::Ledger);
        let app = provider.tracer("app");
        let mut expected = Events::new();
        let mut sent: Vec<Headers> = Vec::new();
        for _ in 0..rng.below(40) + 1 {
            let mut m = p.message("orders");
            let seq = m.key().seq;
            let sampled = rng.below(8) == 0;
            let cx = sampled.then(|| Context::current_with_span(app.start("app")));
            let _guard = cx.map(Context::attach);
            for attempt in 1..=rng.below(3) + 1 {
                let mut headers = Headers::new();
                let a = m.begin_attempt(&mut headers);
                add(&mut expected, format!("produce {seq}/{attempt}"));
                let outcome = match rng.below(10) {
                    0 => {
                        a.failed("sync");
                        "error"
                    }
                    1 => {
                        drop(a.sent());
                        "none"
                    }
                    2 => {
                        a.sent().nacked("n");
                        "nack"
                    }
                    3 => {
                        a.sent().timed_out();
                        "timeout"
                    }
                    4 => {
                        let (call, pending) = a.split();
                        call.sent();
                        pending.acked(None, Some("0"));
                        "ok"
                    }
                    _ => {
                        a.sent().acked(None, Some("0"));
                        "ok"
                    }
                };
                if outcome != "none" {
                    add(
                        &mut expected,
                        format!("store_ack {seq}/{attempt} {outcome}"),
                    );
                }
                if outcome == "ok" {
                    sent.push(headers);
                }
            }
            if rng.below(10) == 0 {
                p.flush();
            }
        }
        for _ in 0..rng.below(60) {
            if sent.is_empty() {
                break;
            }
            let headers = &sent[rng.below(sent.len() as u64) as usize];
            let count = if rng.below(4) == 0 { 2 } else { 1 };
            let d = c.deliver(headers, delivery_info(count));
            let seq = d.key().map_or(0, |k| k.seq);
            add(&mut expected, format!("deliver {seq}"));
            let outcome = SettleOutcome::ALL[if rng.below(2) == 0 {
                0
            } else {
                rng.below(5) as usize
            }];
            if rng.below(10) == 0 {
                c.flush();
            }
            if rng.below(10) != 0 {
                d.settle(outcome, outcome.as_str());
                add(&mut expected, format!("consume_ack {seq} {outcome}"));
            }
        }
        drop((p, c));

        let spans = finished(&exporter);
        let mut got = Events::new();
        for sp in &spans {
            let a = attrs(sp);
            let Some(stage) = a.get(attr::STAGE).map(ToString::to_string) else {
                continue;
            };
            if stage == attr::LEDGER {
                let set: SeqRanges = a[attr::SEQS].to_string().parse().expect("parses");
                let of = a[attr::LEDGER_OF].to_string();
                for &(lo, hi) in set.ranges() {
                    for seq in lo..=hi {
                        match of.as_str() {
                            "store_ack" => {
                                add(&mut got, format!("produce {seq}/1"));
                                add(&mut got, format!("store_ack {seq}/1 ok"));
                            }
                            "deliver" => add(&mut got, format!("deliver {seq}")),
                            _ => add(&mut got, format!("consume_ack {seq} ack")),
                        }
                    }
                }
                continue;
            }
            let seq = int(sp, attr::SEQ);
            let key = match stage.as_str() {
                "produce" => format!("produce {seq}/{}", int(sp, attr::ATTEMPT)),
                "store_ack" => format!(
                    "store_ack {seq}/{} {}",
                    int(sp, attr::ATTEMPT),
                    a[attr::OUTCOME]
                ),
                "deliver" => format!("deliver {seq}"),
                _ => format!("consume_ack {seq} {}", a[attr::OUTCOME]),
            };
            add(&mut got, key);
        }
        assert_eq!(got, expected, "seed {seed}");
    }
}

/// Run by [`mqtrace_mode_in_the_environment_is_the_builders_default`] in a child process whose
/// environment sets the variables; passes trivially when run any other way.
#[test]
#[ignore = "run in a child process with MQTRACE_MODE set"]
fn env_child() {
    let Ok(expected) = std::env::var("MQTRACE_TEST_EXPECT_MODE") else {
        return;
    };
    let expected: Mode = expected.parse().expect("a mode");
    assert_eq!(Producer::builder("kafka").build().mode(), expected);
    assert_eq!(Consumer::builder("kafka", "g").build().mode(), expected);
    // The builder option wins over the variable.
    assert_eq!(
        Producer::builder("kafka").mode(Mode::Full).build().mode(),
        Mode::Full
    );
}

#[test]
fn mqtrace_mode_in_the_environment_is_the_builders_default() {
    let exe = std::env::current_exe().expect("test binary");
    for (value, expected) in [
        ("ledger", "ledger"),
        ("OFF", "off"),
        ("bogus", "full"),
        ("", "full"),
    ] {
        let out = std::process::Command::new(&exe)
            .args(["env_child", "--exact", "--ignored", "--nocapture"])
            .env("MQTRACE_MODE", value)
            .env("MQTRACE_TEST_EXPECT_MODE", expected)
            .output()
            .expect("child test runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "MQTRACE_MODE={value:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if value == "bogus" {
            assert!(String::from_utf8_lossy(&out.stderr).contains("MQTRACE_MODE=\"bogus\""));
        }
    }
}

#[test]
fn a_repeated_seq_names_where_its_ledger_delivery_was_stored() {
    let (provider, exporter) = provider();
    let c = consumer(&provider, Mode::Ledger);
    let at = |position: &str| {
        let mut info = delivery_info(1);
        info.position = Some(position.to_owned());
        info
    };
    // Seq 1: two stored copies (a producer's retry), each delivered once.
    c.deliver(&numbered(1), at("0/10")).ack();
    c.deliver(&numbered(1), at("0/11"))
        .settle(SettleOutcome::SkipDuplicate, "commit");
    // A third copy: the ledger's copy was named once already, so not again.
    c.deliver(&numbered(1), at("0/15"))
        .settle(SettleOutcome::SkipDuplicate, "commit");
    // Seq 2: one copy delivered twice (a rewind after a rebalance: no delivery count).
    c.deliver(&numbered(2), at("0/12")).ack();
    c.deliver(&numbered(2), at("0/12")).ack();
    // Seq 3: rejected, so its first delivery became a full span naming its position; the
    // redelivery need not name it again.
    c.deliver(&numbered(3), at("0/13"))
        .settle(SettleOutcome::Reject, "reject");
    c.deliver(&numbered(3), at("0/13")).ack();
    // Seq 4: a position too long to remember inline: the repeat names none.
    let long = "x".repeat(64);
    c.deliver(&numbered(4), at(&long)).ack();
    c.deliver(&numbered(4), at(&long)).ack();
    drop(c);
    let spans = finished(&exporter);
    let repeats: Vec<(i64, Option<String>, Option<String>)> = by_stage(&spans, "deliver")
        .into_iter()
        .map(|sp| {
            let a = attrs(sp);
            (
                int(sp, attr::SEQ),
                a.get(attr::BROKER_POSITION)
                    .map(|v| v.as_str().into_owned()),
                a.get(attr::LEDGER_POSITION)
                    .map(|v| v.as_str().into_owned()),
            )
        })
        .collect();
    let p = |s: &str| Some(s.to_owned());
    assert_eq!(
        repeats,
        [
            (1, p("0/11"), p("0/10")),
            (1, p("0/15"), None),
            (2, p("0/12"), p("0/12")),
            (3, p("0/13"), None),
            (3, p("0/13"), None),
            (4, Some(long), None),
        ]
    );
    assert_eq!(ledger_seqs(&spans, "deliver").to_string(), "1-2,4");
}
