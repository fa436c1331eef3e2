//! App-thread cost of one stage event (target ≤ 1 µs) with a batch processor: the SDK's
//! `BatchSpanProcessor` and mqtrace's `CountingBatchProcessor` (blocking mode, so no span is
//! dropped to look fast). The exporter discards, so the figure is the app's share only.
#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mqtrace::{Consumer, DeliveryInfo, HeaderForm, Producer};
use mqtrace_export::{BatchConfig, CountingBatchProcessor, Driver, Overflow};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Tracer, TracerProvider};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use std::hint::black_box;

/// Headers as real clients hold them: a list (Kafka headers, AMQP field tables), not a
/// `HashMap` (whose OpenTelemetry injector lowercases and hashes every key).
#[derive(Default)]
struct Headers(Vec<(String, String)>);

impl opentelemetry::propagation::Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

impl opentelemetry::propagation::Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

const ATTR_KEYS: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];

#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

fn ours(overflow: Overflow) -> CountingBatchProcessor {
    CountingBatchProcessor::new(
        Discard,
        BatchConfig {
            overflow,
            ..BatchConfig::default()
        },
        Driver::Thread,
    )
    .expect("processor")
}

fn providers() -> Vec<(&'static str, SdkTracerProvider)> {
    vec![
        (
            "sdk_batch",
            SdkTracerProvider::builder()
                .with_span_processor(BatchSpanProcessor::builder(Discard).build())
                .build(),
        ),
        (
            "counting_block",
            SdkTracerProvider::builder()
                .with_span_processor(ours(Overflow::Block))
                .build(),
        ),
        (
            "counting_drop",
            SdkTracerProvider::builder()
                .with_span_processor(ours(Overflow::Drop))
                .build(),
        ),
    ]
}

fn stage_events(c: &mut Criterion) {
    for (name, provider) in providers() {
        let producer = Producer::builder("kafka")
            .producer_id("bench")
            .tracer_provider(&provider)
            .build();
        // The five headers of SPEC §3 instead of the compact one (the default until
        // 2026-12-05, still chosen for consumers older than the compact form).
        let producer_five = Producer::builder("kafka")
            .producer_id("bench")
            .tracer_provider(&provider)
            .header_form(HeaderForm::Five)
            .build();
        let consumer = Consumer::builder("kafka", "group")
            .tracer_provider(&provider)
            .build();
        let mut group = c.benchmark_group(name);
        for (form, producer) in [("", &producer), ("_five_headers", &producer_five)] {
            group.bench_function(format!("produce{form}"), |b| {
                b.iter(|| {
                    let mut headers = Headers(Vec::with_capacity(6));
                    let mut m = producer.message("orders");
                    black_box(m.begin_attempt(&mut headers).sent())
                })
            });
        }
        group.bench_function("store_ack", |b| {
            b.iter_batched(
                || {
                    let mut headers = Headers(Vec::with_capacity(6));
                    producer
                        .message("orders")
                        .begin_attempt(&mut headers)
                        .sent()
                },
                |pending| pending.acked(Some("0/42"), Some("0")),
                BatchSize::SmallInput,
            )
        });
        // One message's headers in each form, delivered again and again.
        let sent = |producer: &Producer| {
            let mut headers = Headers(Vec::with_capacity(6));
            producer
                .message("orders")
                .begin_attempt(&mut headers)
                .sent()
                .acked(None, None);
            headers
        };
        let (headers, five) = (sent(&producer), sent(&producer_five));
        for (form, these) in [("", &headers), ("_five_headers", &five)] {
            group.bench_function(format!("deliver{form}"), |b| {
                b.iter(|| black_box(consumer.deliver(these, DeliveryInfo::new("orders"))))
            });
        }
        // The ordinary case: each iteration delivers the next message (its headers made in the
        // untimed set-up), as a consumer reading a stream does; the benches above deliver one
        // message again and again, which the live signals see as repeats.
        group.bench_function("deliver_each_message_once", |b| {
            b.iter_batched(
                || sent(&producer),
                |h| black_box(consumer.deliver(&h, DeliveryInfo::new("orders"))),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("consume_ack", |b| {
            b.iter_batched(
                || consumer.deliver(&headers, DeliveryInfo::new("orders")),
                |delivery| delivery.ack(),
                BatchSize::SmallInput,
            )
        });
        // The floor: a bare SDK span with as many attributes as a `deliver` span.
        let tracer = provider.tracer("floor");
        group.bench_function("bare_sdk_span_12_attrs", |b| {
            b.iter(|| {
                let span = tracer
                    .span_builder("process orders")
                    .with_kind(SpanKind::Consumer)
                    .with_attributes((0..12).map(|i| KeyValue::new(ATTR_KEYS[i], "v")))
                    .start(&tracer);
                drop(black_box(span));
            })
        });
        group.finish();
        let _ = provider.shutdown();
    }
}

/// Ledger and off modes (SPEC §2b): the app-thread cost of an ordinary message, whose events
/// go into ledgers (no span), against full mode's spans above.
fn ledger_and_off(c: &mut Criterion) {
    use mqtrace::Mode;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(ours(Overflow::Block))
        .build();
    let producer = |mode| {
        Producer::builder("kafka")
            .producer_id("bench")
            .tracer_provider(&provider)
            .mode(mode)
            .build()
    };
    let (ledger, off) = (producer(Mode::Ledger), producer(Mode::Off));
    let consumer = Consumer::builder("kafka", "group")
        .tracer_provider(&provider)
        .mode(Mode::Ledger)
        .build();
    let mut group = c.benchmark_group("modes");
    for (name, producer) in [("ledger", &ledger), ("off", &off)] {
        // The whole producer side of one message: number, headers, call, broker answer.
        group.bench_function(format!("{name}_message_produce_to_ack"), |b| {
            b.iter(|| {
                let mut headers = Headers(Vec::with_capacity(2));
                producer
                    .message("orders")
                    .begin_attempt(&mut headers)
                    .sent()
                    .acked(Some("0/42"), Some("0"));
                black_box(headers)
            })
        });
    }
    // The ledger record alone: the answer of an ordinary attempt.
    group.bench_function("ledger_store_ack", |b| {
        b.iter_batched(
            || {
                ledger
                    .message("orders")
                    .begin_attempt(&mut Headers(Vec::with_capacity(2)))
                    .sent()
            },
            |pending| pending.acked(Some("0/42"), Some("0")),
            BatchSize::SmallInput,
        )
    });
    // The consumer side of one ordinary message: headers read, first delivery, ack. Each
    // iteration delivers the next seq (made in the untimed set-up), as a real consumer does.
    group.bench_function("ledger_deliver_and_ack", |b| {
        b.iter_batched(
            || {
                let mut compact = Headers(Vec::with_capacity(1));
                ledger
                    .message("inbound")
                    .begin_attempt(&mut compact)
                    .sent()
                    .acked(None, Some("0"));
                compact
            },
            |h| {
                let mut info = DeliveryInfo::new("inbound");
                info.partition = Some("0".into());
                consumer.deliver(&h, info).ack();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    ledger.flush();
    consumer.flush();
    let _ = provider.shutdown();
}

/// Keeps every span it is given, to feed the encoder bench real mqtrace spans.
#[derive(Debug, Clone, Default)]
struct Keep(std::sync::Arc<std::sync::Mutex<Vec<SpanData>>>);

impl SpanExporter for Keep {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if let Ok(mut kept) = self.0.lock() {
            kept.extend(batch);
        }
        Ok(())
    }
}

/// The export worker's cost: one batch of 512 real spans (128 messages through the four
/// stages) encoded as an OTLP JSON line, as the file exporter writes it.
fn file_encode(c: &mut Criterion) {
    let keep = Keep::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(keep.clone())
        .build();
    let producer = Producer::builder("kafka")
        .producer_id("bench")
        .tracer_provider(&provider)
        .build();
    let consumer = Consumer::builder("kafka", "group")
        .tracer_provider(&provider)
        .build();
    for i in 0..128 {
        let mut headers = Headers(Vec::with_capacity(6));
        let pending = producer
            .message("orders")
            .begin_attempt(&mut headers)
            .sent();
        pending.acked(Some(&format!("0/{i}")), Some("0"));
        consumer
            .deliver(&headers, DeliveryInfo::new("orders"))
            .ack();
    }
    let spans = keep.0.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(spans.len(), 512);
    let resource =
        opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema::default();
    let mut group = c.benchmark_group("export");
    group.throughput(criterion::Throughput::Elements(512));
    group.bench_function("file_encode_512_spans", |b| {
        b.iter(|| black_box(mqtrace_export::FileExporter::encode(&spans, &resource)))
    });
    group.bench_function("proto_serde_encode_512_spans", |b| {
        b.iter_batched(
            || spans.clone(),
            |batch| {
                black_box(mqtrace_export::FileExporter::encode_via_proto(
                    batch, &resource,
                ))
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, stage_events, ledger_and_off, file_encode);
criterion_main!(benches);
