//! The Kafka wrappers against librdkafka's in-process mock cluster: what each stage records.

use mqtrace::names::attr;
use mqtrace_kafka::{TracedConsumer, TracedProducer};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureRecord;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

fn get(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn stage_spans(spans: &[SpanData], stage: &str) -> Vec<SpanData> {
    spans
        .iter()
        .filter(|s| get(s, attr::STAGE) == Some(Value::from(stage.to_owned())))
        .cloned()
        .collect()
}

/// A consumer of group `g` assigned partition 0 of topic `t` from the beginning, offsets
/// stored only by `ack`, traced through `provider`.
fn group_g_from_the_start<C>(
    cluster: &MockCluster<'_, impl rdkafka::ClientContext>,
    provider: &SdkTracerProvider,
) -> TracedConsumer<C>
where
    C: rdkafka::config::FromClientConfig + rdkafka::consumer::Consumer,
{
    let inner: C = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "g")
        .set("enable.auto.offset.store", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("t", 0, Offset::Beginning)
        .expect("tpl");
    inner.assign(&tpl).expect("assign");
    TracedConsumer::new(
        inner,
        mqtrace::Consumer::builder(mqtrace_kafka::SYSTEM, "g")
            .consumer_id("c")
            .tracer_provider(provider)
            .build(),
        false,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_reports_become_store_acks_and_only_acks_settle() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");

    let producer = TracedProducer::new(
        ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("message.send.max.retries", "0")
            .set("linger.ms", "0")
            .create()
            .expect("producer"),
        mqtrace::Producer::builder(mqtrace_kafka::SYSTEM)
            .producer_id("p")
            .tracer_provider(&provider)
            .build(),
    );
    let send = |n: u32| {
        FutureRecord::<str, str>::to("t")
            .payload("x")
            .key("k")
            .partition(0)
            .timestamp(i64::from(n))
    };
    producer
        .send(send(1), Duration::from_secs(5))
        .await
        .expect("first send");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS],
    );
    let refused = producer.send(send(2), Duration::from_secs(5)).await;
    assert!(refused.is_err(), "the injected error fails the send");
    producer
        .send(send(3), Duration::from_secs(5))
        .await
        .expect("third send");

    let consumer: TracedConsumer<StreamConsumer> = group_g_from_the_start(&cluster, &provider);
    let first = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("a message in time")
        .expect("first message");
    assert_eq!(first.key().map(|k| k.seq), Some(1));
    first.ack().expect("ack");
    let second = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("a message in time")
        .expect("second message");
    assert_eq!(
        second.key().map(|k| k.seq),
        Some(3),
        "seq 2 was never stored"
    );
    drop(second); // received, never acked: no consume_ack
    std::mem::forget(consumer); // see the demo: closing an assigned consumer can hang

    let spans = exporter.get_finished_spans().expect("spans");
    let acks = stage_spans(&spans, "store_ack");
    let outcome_of = |seq: i64| {
        acks.iter()
            .find(|s| get(s, attr::SEQ) == Some(Value::I64(seq)))
            .and_then(|s| get(s, attr::OUTCOME))
            .map(|v| v.to_string())
    };
    assert_eq!(outcome_of(1).as_deref(), Some("ok"));
    assert_eq!(outcome_of(2).as_deref(), Some("error"));
    assert_eq!(outcome_of(3).as_deref(), Some("ok"));
    let position_of_1 = acks
        .iter()
        .find(|s| get(s, attr::SEQ) == Some(Value::I64(1)))
        .and_then(|s| get(s, attr::BROKER_POSITION));
    assert_eq!(position_of_1, Some(Value::from("0/0".to_owned())));

    let delivers = stage_spans(&spans, "deliver");
    assert_eq!(delivers.len(), 2);
    for d in &delivers {
        assert_eq!(
            get(d, attr::MESSAGING_CONSUMER_GROUP_NAME),
            Some(Value::from("g".to_owned()))
        );
        assert_eq!(
            get(d, attr::MESSAGING_DESTINATION_PARTITION_ID),
            Some(Value::from("0".to_owned()))
        );
    }
    let settles = stage_spans(&spans, "consume_ack");
    assert_eq!(settles.len(), 1, "only the acked message settled");
    assert_eq!(get(&settles[0], attr::SEQ), Some(Value::I64(1)));
    assert_eq!(
        get(&settles[0], attr::OUTCOME),
        Some(Value::from("ack".to_owned()))
    );
}

/// The app's own producer context: counts the delivery reports it is handed, with its
/// own opaque (the record number).
#[derive(Default)]
struct CountingContext(std::sync::Mutex<Vec<(usize, bool)>>);

impl rdkafka::ClientContext for CountingContext {}

impl rdkafka::producer::ProducerContext for CountingContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, opaque: usize) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((opaque, result.is_ok()));
        }
    }
}

#[test]
fn a_threaded_producer_records_through_its_context_and_a_base_consumer_settles() {
    use mqtrace_kafka::{TracedBaseProducer, TracingContext};
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("t", 1, 1).expect("topic");
    let client: ThreadedProducer<TracingContext<CountingContext>> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("message.send.max.retries", "0")
        .set("message.max.bytes", "1000")
        .set("linger.ms", "0")
        .create_with_context(TracingContext::new(CountingContext::default()))
        .expect("producer");
    let producer = TracedBaseProducer::new(
        client,
        mqtrace::Producer::builder(mqtrace_kafka::SYSTEM)
            .producer_id("p")
            .tracer_provider(&provider)
            .build(),
    );
    let record = |opaque: usize, payload: &'static str| {
        BaseRecord::<str, str, usize>::with_opaque_to("t", opaque)
            .payload(payload)
            .partition(0)
    };
    producer.send(record(1, "x")).expect("enqueued");
    producer
        .inner()
        .flush(Duration::from_secs(5))
        .expect("flush");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS],
    );
    producer.send(record(2, "x")).expect("enqueued");
    producer
        .inner()
        .flush(Duration::from_secs(5))
        .expect("flush");
    // Larger than message.max.bytes: refused before it is enqueued, the record comes back
    // with the app's own opaque.
    let big: &'static str = Box::leak("x".repeat(2000).into_boxed_str());
    let (_, back) = producer.send(record(3, big)).expect_err("refused");
    assert_eq!(back.delivery_opaque, 3);
    producer.send(record(4, "x")).expect("enqueued");
    producer
        .inner()
        .flush(Duration::from_secs(5))
        .expect("flush");

    let mut seen = producer
        .inner()
        .context()
        .inner()
        .0
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    seen.sort();
    assert_eq!(seen, vec![(1, true), (2, false), (4, true)]);

    let consumer: TracedConsumer<BaseConsumer> = group_g_from_the_start(&cluster, &provider);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 2 && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            got.push(m.key().map(|k| k.seq));
            m.ack().expect("ack");
        }
    }
    assert_eq!(got, vec![Some(1), Some(4)]);
    std::mem::forget(consumer);

    let spans = exporter.get_finished_spans().expect("spans");
    let outcome_of = |seq: i64| {
        stage_spans(&spans, "store_ack")
            .iter()
            .find(|s| get(s, attr::SEQ) == Some(Value::I64(seq)))
            .and_then(|s| get(s, attr::OUTCOME))
            .map(|v| v.to_string())
    };
    assert_eq!(outcome_of(1).as_deref(), Some("ok"));
    assert_eq!(outcome_of(2).as_deref(), Some("error"));
    assert_eq!(outcome_of(3).as_deref(), Some("error"));
    assert_eq!(outcome_of(4).as_deref(), Some("ok"));
    let refused = stage_spans(&spans, "produce")
        .into_iter()
        .find(|s| get(s, attr::SEQ) == Some(Value::I64(3)))
        .expect("produce of seq 3");
    assert_eq!(
        get(&refused, attr::ERROR_TYPE),
        Some(Value::from("MessageSizeTooLarge".to_owned()))
    );
    assert_eq!(stage_spans(&spans, "consume_ack").len(), 2);
}
