//! The spans each stage records, checked attribute by attribute against SPEC §2.

use std::collections::HashMap;

use mqtrace::names::attr;
use mqtrace::{Consumer, DeliveryInfo, HeaderForm, ParentMode, Producer, SettleOutcome};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, Value};

mod common;
use common::{attrs, by_stage, finished, provider, s};

#[test]
fn produce_and_store_ack_carry_the_spec_attributes() {
    let (provider, exporter) = provider();
    let producer = Producer::builder("kafka")
        .producer_id("orders-api-1")
        .tracer_provider(&provider)
        .build();
    let mut message = producer.message("orders");
    let mut headers: HashMap<String, String> = HashMap::new();
    message
        .begin_attempt(&mut headers)
        .sent()
        .acked(Some("1/5512"), Some("1"));

    let spans = finished(&exporter);
    let produce = by_stage(&spans, "produce")[0];
    assert_eq!(produce.name, "send orders");
    assert_eq!(produce.span_kind, SpanKind::Producer);
    let a = attrs(produce);
    assert_eq!(a[attr::PRODUCER_ID], s("orders-api-1"));
    assert_eq!(a[attr::STREAM], s("orders"));
    assert_eq!(a[attr::SEQ], Value::I64(1));
    assert_eq!(a[attr::ATTEMPT], Value::I64(1));
    assert_eq!(a[attr::MESSAGING_SYSTEM], s("kafka"));
    assert_eq!(a[attr::MESSAGING_MESSAGE_ID], s("orders-api-1:orders:1"));
    assert_eq!(a[attr::MESSAGING_DESTINATION_NAME], s("orders"));
    assert_eq!(a[attr::MESSAGING_OPERATION_TYPE], s("send"));
    assert_eq!(a[attr::MESSAGING_OPERATION_NAME], s("send"));
    assert_eq!(produce.status, Status::Unset);

    let ack = by_stage(&spans, "store_ack")[0];
    assert_eq!(ack.span_kind, SpanKind::Internal);
    assert_eq!(ack.parent_span_id, produce.span_context.span_id());
    assert_eq!(ack.span_context.trace_id(), produce.span_context.trace_id());
    let a = attrs(ack);
    assert_eq!(a[attr::OUTCOME], s("ok"));
    assert_eq!(a[attr::BROKER_POSITION], s("1/5512"));
    assert_eq!(a[attr::MESSAGING_DESTINATION_PARTITION_ID], s("1"));
    assert_eq!(a[attr::ATTEMPT], Value::I64(1));
    assert_eq!(a[attr::SEQ], Value::I64(1));
    assert!(!a.contains_key(attr::ERROR_TYPE));
    assert_eq!(ack.status, Status::Unset);

    // The headers name the message (the compact form by default, the default message id
    // left out) and carry the produce span's context; nothing else.
    assert_eq!(headers["mqtrace"], "1;orders-api-1;orders;1;1");
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert_eq!(
        headers["traceparent"],
        format!(
            "00-{}-{}-01",
            produce.span_context.trace_id(),
            produce.span_context.span_id()
        )
    );
}

#[test]
fn the_five_header_form_on_request() {
    let (provider, _exporter) = provider();
    let producer = Producer::builder("kafka")
        .producer_id("orders-api-1")
        .tracer_provider(&provider)
        .header_form(HeaderForm::Five)
        .build();
    let mut headers: HashMap<String, String> = HashMap::new();
    let attempt = producer.message("orders").begin_attempt(&mut headers);
    let produce = attempt.context().span().span_context().clone();
    attempt.sent().acked(None, None);
    assert_eq!(headers["mqtrace-producer-id"], "orders-api-1");
    assert_eq!(headers["mqtrace-stream"], "orders");
    assert_eq!(headers["mqtrace-seq"], "1");
    assert_eq!(headers["mqtrace-message-id"], "orders-api-1:orders:1");
    assert_eq!(
        headers["traceparent"],
        format!("00-{}-{}-01", produce.trace_id(), produce.span_id())
    );
    assert!(!headers.contains_key("mqtrace"), "{headers:?}");
    // Both forms read back the same.
    let consumer = Consumer::builder("kafka", "g")
        .tracer_provider(&provider)
        .build();
    let delivery = consumer.deliver(&headers, DeliveryInfo::new("orders"));
    assert_eq!(delivery.key().map(|k| k.seq), Some(1));
    assert_eq!(delivery.message_id(), Some("orders-api-1:orders:1"));
    delivery.ack();
}

#[test]
fn a_retry_keeps_the_seq_and_bumps_the_attempt() {
    let (provider, exporter) = provider();
    let producer = Producer::builder("nats").tracer_provider(&provider).build();
    let first = producer.message("events");
    let mut retried = producer.message("events");
    let mut h = HashMap::new();
    retried.begin_attempt(&mut h).sent().timed_out();
    retried.begin_attempt(&mut h).sent().acked(Some("7"), None);
    drop(first);

    let spans = finished(&exporter);
    let mut seen: Vec<(i64, i64, String)> = by_stage(&spans, "store_ack")
        .iter()
        .map(|sp| {
            let a = attrs(sp);
            let int = |k: &str| match a[k] {
                Value::I64(v) => v,
                ref other => panic!("{k} is not an int: {other:?}"),
            };
            (
                int(attr::SEQ),
                int(attr::ATTEMPT),
                a[attr::OUTCOME].to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [(2, 1, "timeout".to_owned()), (2, 2, "ok".to_owned())],
        "seq 2 (seq 1 was taken by the first message) kept across attempts"
    );
    let timeout = by_stage(&spans, "store_ack")
        .into_iter()
        .find(|sp| attrs(sp)[attr::OUTCOME] == s("timeout"))
        .expect("timeout ack recorded");
    assert!(matches!(timeout.status, Status::Error { .. }));
}

#[test]
fn a_synchronous_send_error_marks_produce_and_gives_up_the_attempt() {
    let (provider, exporter) = provider();
    let producer = Producer::builder("rabbitmq")
        .tracer_provider(&provider)
        .build();
    let mut m = producer.message("orders");
    m.begin_attempt(&mut HashMap::new())
        .failed("channel_closed");

    let spans = finished(&exporter);
    let produce = by_stage(&spans, "produce")[0];
    assert!(matches!(produce.status, Status::Error { .. }));
    assert_eq!(attrs(produce)[attr::ERROR_TYPE], s("channel_closed"));
    let ack = by_stage(&spans, "store_ack")[0];
    assert_eq!(attrs(ack)[attr::OUTCOME], s("error"));
    assert_eq!(ack.parent_span_id, produce.span_context.span_id());
}

#[test]
fn deliver_is_a_child_of_produce_and_consume_ack_of_deliver() {
    let (provider, exporter) = provider();
    let producer = Producer::builder("rabbitmq")
        .producer_id("p1")
        .tracer_provider(&provider)
        .build();
    let consumer = Consumer::builder("rabbitmq", "shipping")
        .consumer_id("shipping-1")
        .tracer_provider(&provider)
        .build();
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut m = producer.message("orders-exchange");
    m.begin_attempt(&mut headers).sent().acked(None, None);

    let mut info = DeliveryInfo::new("shipping-queue");
    info.delivery_count = 2;
    info.position = Some("17".into());
    let delivery = consumer.deliver(&headers, info);
    delivery.settle(SettleOutcome::SkipDuplicate, "ack");

    let spans = finished(&exporter);
    let produce = by_stage(&spans, "produce")[0];
    let deliver = by_stage(&spans, "deliver")[0];
    let settle = by_stage(&spans, "consume_ack")[0];

    assert_eq!(deliver.name, "process shipping-queue");
    assert_eq!(deliver.span_kind, SpanKind::Consumer);
    assert_eq!(deliver.parent_span_id, produce.span_context.span_id());
    assert_eq!(
        deliver.span_context.trace_id(),
        produce.span_context.trace_id()
    );
    let a = attrs(deliver);
    assert_eq!(a[attr::PRODUCER_ID], s("p1"));
    assert_eq!(
        a[attr::STREAM],
        s("orders-exchange"),
        "stream names the producer's side"
    );
    assert_eq!(a[attr::MESSAGING_DESTINATION_NAME], s("shipping-queue"));
    assert_eq!(a[attr::MESSAGING_CONSUMER_GROUP_NAME], s("shipping"));
    assert_eq!(a[attr::CONSUMER_ID], s("shipping-1"));
    assert_eq!(a[attr::DELIVERY_COUNT], Value::I64(2));
    assert_eq!(a[attr::BROKER_POSITION], s("17"));
    assert_eq!(a[attr::MESSAGING_OPERATION_TYPE], s("process"));
    assert_eq!(a[attr::MESSAGING_MESSAGE_ID], s("p1:orders-exchange:1"));

    assert_eq!(settle.name, "ack shipping-queue");
    assert_eq!(settle.span_kind, SpanKind::Client);
    assert_eq!(settle.parent_span_id, deliver.span_context.span_id());
    let a = attrs(settle);
    assert_eq!(a[attr::OUTCOME], s("skip_duplicate"));
    assert_eq!(a[attr::MESSAGING_OPERATION_TYPE], s("settle"));
    assert_eq!(a[attr::MESSAGING_OPERATION_NAME], s("ack"));
    assert_eq!(a[attr::MESSAGING_CONSUMER_GROUP_NAME], s("shipping"));
    assert_eq!(a[attr::SEQ], Value::I64(1));
}

#[test]
fn link_mode_starts_a_new_trace_linked_to_produce() {
    let (provider, exporter) = provider();
    let producer = Producer::builder("nats").tracer_provider(&provider).build();
    let consumer = Consumer::builder("nats", "durable-a")
        .parent_mode(ParentMode::Link)
        .tracer_provider(&provider)
        .build();
    let mut headers: HashMap<String, String> = HashMap::new();
    producer
        .message("events")
        .begin_attempt(&mut headers)
        .sent()
        .acked(Some("3"), None);
    consumer
        .deliver(&headers, DeliveryInfo::new("events"))
        .ack();

    let spans = finished(&exporter);
    let produce = by_stage(&spans, "produce")[0];
    let deliver = by_stage(&spans, "deliver")[0];
    assert_ne!(
        deliver.span_context.trace_id(),
        produce.span_context.trace_id()
    );
    assert_eq!(deliver.links.links.len(), 1);
    let link = &deliver.links.links[0].span_context;
    assert_eq!(link.trace_id(), produce.span_context.trace_id());
    assert_eq!(link.span_id(), produce.span_context.span_id());
    assert!(link.is_remote(), "the link came through the headers");
}

#[test]
fn a_message_without_headers_is_traced_with_semconv_attributes_only() {
    let (provider, exporter) = provider();
    let consumer = Consumer::builder("kafka", "g")
        .tracer_provider(&provider)
        .build();
    let mut info = DeliveryInfo::new("orders");
    info.message_id = Some("broker-id-9".into());
    let delivery = consumer.deliver(&HashMap::<String, String>::new(), info);
    assert!(delivery.key().is_none());
    delivery.settle(SettleOutcome::Reject, "reject");

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 2);
    for sp in &spans {
        let a = attrs(sp);
        assert!(!a.contains_key(attr::SEQ) && !a.contains_key(attr::PRODUCER_ID));
        assert_eq!(a[attr::MESSAGING_MESSAGE_ID], s("broker-id-9"));
    }
}

#[test]
fn produce_nests_under_the_apps_current_span() {
    let (provider, exporter) = provider();
    let app_tracer = provider.tracer("app");
    let producer = Producer::builder("kafka")
        .tracer_provider(&provider)
        .build();
    let request = app_tracer.start("handle request");
    let request_cx = Context::current_with_span(request);
    {
        let _guard = request_cx.clone().attach();
        producer
            .message("orders")
            .begin_attempt(&mut HashMap::new())
            .sent()
            .acked(None, None);
    }
    request_cx.span().end();
    let spans = finished(&exporter);
    let produce = by_stage(&spans, "produce")[0];
    assert_eq!(
        produce.parent_span_id,
        request_cx.span().span_context().span_id()
    );
}

#[test]
fn produce_nests_under_the_apps_current_tracing_span() {
    use tracing_subscriber::layer::SubscriberExt;
    let (provider, exporter) = provider();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    let producer = Producer::builder("kafka")
        .tracer_provider(&provider)
        .build();
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("checkout");
        let _entered = span.enter();
        producer
            .message("orders")
            .begin_attempt(&mut HashMap::new())
            .sent()
            .acked(None, None);
    });
    let spans = finished(&exporter);
    let checkout = spans
        .iter()
        .find(|sp| sp.name == "checkout")
        .expect("tracing span exported");
    let produce = by_stage(&spans, "produce")[0];
    assert_eq!(produce.parent_span_id, checkout.span_context.span_id());
}
