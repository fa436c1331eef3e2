//! What the span tests share: an SDK provider over the in-memory exporter, and reading the
//! spans it finished.

#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;

use mqtrace::names::attr;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

pub fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

pub fn attrs(span: &SpanData) -> HashMap<&str, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect()
}

pub fn s(v: &str) -> Value {
    Value::from(v.to_owned())
}

pub fn finished(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter
        .get_finished_spans()
        .expect("in-memory exporter readable")
}

pub fn by_stage<'a>(spans: &'a [SpanData], stage: &str) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|sp| attrs(sp).get(attr::STAGE) == Some(&s(stage)))
        .collect()
}
