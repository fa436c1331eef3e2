//! Helpers shared by the export tests.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::path::Path;

/// `n` messages sent and acked through `provider`: two spans each (`send`, `store_ack`).
pub fn produce(provider: &SdkTracerProvider, n: usize) {
    let producer = mqtrace::Producer::builder("kafka")
        .producer_id("p-1")
        .tracer_provider(provider)
        .build();
    for _ in 0..n {
        let mut headers: HashMap<String, String> = HashMap::new();
        producer
            .message("orders")
            .begin_attempt(&mut headers)
            .sent()
            .acked(Some("0/17"), Some("0"));
    }
}

/// Every `.jsonl` file under `dir`, sorted.
pub fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("read output dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    out.sort();
    out
}

/// Parses each line of each file; returns the requests and the lines that did not parse.
pub fn parse_all(dir: &Path) -> (Vec<ExportTraceServiceRequest>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in files(dir) {
        let text = std::fs::read_to_string(&f).expect("read file");
        for line in text.lines() {
            match serde_json::from_str::<ExportTraceServiceRequest>(line) {
                Ok(r) => ok.push(r),
                Err(_) => bad.push(line.to_owned()),
            }
        }
    }
    (ok, bad)
}

/// Span names across the requests.
pub fn span_names(requests: &[ExportTraceServiceRequest]) -> Vec<String> {
    requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.name.clone())
        .collect()
}

/// The spans across the requests.
pub fn spans(requests: &[ExportTraceServiceRequest]) -> Vec<&Span> {
    requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect()
}
