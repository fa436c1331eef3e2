//! Ledgers are judged by range arithmetic: nine million messages in ledgers cost the analyzer
//! what their few ranges cost, not a row per event, and the three faults among them are found
//! exactly. Peak memory of the `mqtrace` process from the kernel (`getrusage(RUSAGE_CHILDREN)`).

use std::process::Command;

mod peak;
use peak::children_peak_mib;

fn analyze(path: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mqtrace"))
        .args(["analyze", "--format", "json", "--no-progress"])
        .arg(path)
        .output()
        .expect("run mqtrace");
    serde_json::from_slice(&out.stdout).expect("report")
}

/// One ledger span of producer `p`, stream `orders`, as a JSON line.
fn ledger(of: &str, seqs: &str, count: u64, at_s: u64, group: bool) -> String {
    let group = if group {
        r#",{"key":"messaging.consumer.group.name","value":{"stringValue":"g"}},{"key":"mqtrace.consumer.id","value":{"stringValue":"c1"}}"#
    } else {
        ""
    };
    let start = 1_700_000_000_000_000_000u64 + at_s * 1_000_000_000;
    let end = start + 900_000_000;
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"4bf92f3577b34da6a3ce929d0e0e{at_s:04x}","spanId":"00f067aa0ba902b7","name":"mqtrace ledger orders","kind":1,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}","attributes":[{{"key":"mqtrace.stage","value":{{"stringValue":"ledger"}}}},{{"key":"mqtrace.ledger.of","value":{{"stringValue":"{of}"}}}},{{"key":"mqtrace.producer.id","value":{{"stringValue":"p"}}}},{{"key":"mqtrace.stream","value":{{"stringValue":"orders"}}}},{{"key":"messaging.system","value":{{"stringValue":"kafka"}}}},{{"key":"messaging.destination.name","value":{{"stringValue":"orders"}}}},{{"key":"mqtrace.seqs","value":{{"stringValue":"{seqs}"}}}},{{"key":"mqtrace.ledger.count","value":{{"intValue":"{count}"}}}}{group}]}}]}}]}}]}}"#
    )
}

/// `first..=last` without the seqs in `holes`, as ledger text, and how many it holds.
fn ranges(first: u64, last: u64, holes: &[u64]) -> (String, u64) {
    let mut parts = Vec::new();
    let mut from = first;
    let mut count = 0;
    for &h in holes.iter().filter(|h| (first..=last).contains(*h)) {
        if h > from {
            parts.push(format!("{from}-{}", h - 1));
            count += h - from;
        }
        from = h + 1;
    }
    if from <= last {
        parts.push(format!("{from}-{last}"));
        count += last - from + 1;
    }
    (parts.join(","), count)
}

#[test]
fn nine_million_ledger_seqs_are_judged_by_their_ranges() {
    const MILLION: u64 = 1_000_000;
    let (never_delivered, never_acked, never_seen) = (2_500_000, 6_000_000, 7_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledgers.jsonl");
    let mut lines = Vec::new();
    // One flush interval per million seqs, as a busy producer and consumer would write them.
    for i in 0..9 {
        let (first, last) = (i * MILLION + 1, (i + 1) * MILLION);
        let (stored, n) = ranges(first, last, &[never_seen]);
        lines.push(ledger("store_ack", &stored, n, i, false));
        let (delivered, n) = ranges(first, last, &[never_seen, never_delivered]);
        lines.push(ledger("deliver", &delivered, n, i, true));
        let (acked, n) = ranges(first, last, &[never_seen, never_delivered, never_acked]);
        lines.push(ledger("consume_ack", &acked, n, i, true));
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("write");

    let report = analyze(&path);
    let peak = children_peak_mib();
    assert_eq!(report["input"]["malformed_total"], 0, "{}", report["input"]);
    assert_eq!(report["summary"]["messages"], 9 * MILLION - 1);
    let found: Vec<(String, u64)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let key = match f["stage"].as_str() {
                Some(stage) => format!("{}/{stage}", f["kind"].as_str().unwrap_or("")),
                None => f["kind"].as_str().unwrap_or("").to_owned(),
            };
            (key, f["seq"].as_u64().unwrap_or(0))
        })
        .collect();
    let mut found = found;
    found.sort();
    assert_eq!(
        found,
        [
            ("lost/consume".to_owned(), never_acked),
            ("lost/store".to_owned(), never_delivered),
            ("unobserved".to_owned(), never_seen),
        ]
    );
    for f in report["findings"].as_array().expect("findings") {
        if f["kind"] == "lost" {
            assert!(
                f["evidence"]
                    .as_str()
                    .is_some_and(|e| e.contains("rests on ledgers")),
                "{f}"
            );
        }
    }
    // A row per event would be 27 million rows: gigabytes.
    assert!(peak < 300, "peak {peak} MiB");
}
