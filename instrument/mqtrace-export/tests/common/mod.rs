//! Helpers shared by the export tests.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::path::Path;

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
