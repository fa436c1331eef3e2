//! The defects an attack on the analyzer found (issue 9), each driven through the binary:
//! wrong verdicts, silent data loss, crashes and unbounded memory. Each test failed before
//! the readers were rebuilt around one span sink.

use mqtrace_tracegen::{Host, Msg, Traces};
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

fn mqtrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtrace"))
        .args(args)
        .output()
        .expect("run mqtrace")
}

fn report(args: &[&str]) -> (Value, Output) {
    let mut all = vec!["analyze", "--format", "json"];
    all.extend_from_slice(args);
    let out = mqtrace(&all);
    let r = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (r, out)
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.display().to_string()
}

/// `n` healthy messages of stream `orders`, one line per message.
fn healthy(n: u64) -> String {
    let mut t = Traces::new();
    let mut out = String::new();
    for seq in 1..=n {
        t.healthy(&Msg::new("p", "orders", seq), &seq.to_string(), &["g"]);
        out.push_str(&t.drain());
    }
    out
}

/// The first malformed record's reason.
fn first_problem(r: &Value) -> String {
    r["input"]["malformed"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn findings(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let stage = f["stage"]
                .as_str()
                .map(|s| format!("/{s}"))
                .unwrap_or_default();
            format!("{}{stage} {}", f["kind"].as_str().unwrap_or(""), f["seq"])
        })
        .collect()
}

#[test]
fn a_truncated_or_padded_gzip_keeps_every_line_before_the_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = healthy(200);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).expect("gzip");
    let whole = gz.finish().expect("gzip");

    let mut padded = whole.clone();
    padded.push(b'x');
    let f = write(dir.path(), "padded.jsonl.gz", &padded);
    let (r, _) = report(&[&f]);
    assert_eq!(
        r["summary"]["messages"], 200,
        "every line of the whole member"
    );
    let m = &r["input"]["malformed"][0];
    assert!(
        m["error"]
            .as_str()
            .is_some_and(|e| e.contains("damaged gzip")),
        "{m}"
    );

    let f = write(dir.path(), "cut.jsonl.gz", &whole[..whole.len() * 2 / 3]);
    let (r, out) = report(&[&f]);
    let messages = r["summary"]["messages"].as_u64().unwrap_or(0);
    assert!(
        messages > 50 && messages < 200,
        "kept what came before: {messages}"
    );
    assert_eq!(r["input"]["malformed_total"], 1);
    assert!(
        r["input"]["malformed"][0]["offset"].as_u64().is_some(),
        "damage by byte"
    );
    assert!(
        !findings(&r).iter().any(|f| f.starts_with("lost")),
        "{:?}",
        findings(&r)
    );
    let strict = mqtrace(&["analyze", "--strict", &f]);
    assert_eq!(strict.status.code(), Some(2), "damage is never silent");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn zstd_reads_every_frame_and_keeps_lines_before_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = healthy(100);
    let half = &text[..text.len() / 2];
    let cut = half.rfind('\n').map_or(0, |i| i + 1);
    let (a, b) = (&text[..cut], &text[cut..]);
    let mut frames = zstd::encode_all(a.as_bytes(), 1).expect("zstd");
    frames.extend(zstd::encode_all(b.as_bytes(), 1).expect("zstd"));
    let f = write(dir.path(), "frames.jsonl.zst", &frames);
    let (r, out) = report(&[&f]);
    assert_eq!(r["summary"]["messages"], 100, "both frames");
    assert_eq!(r["input"]["malformed_total"], 0, "{}", r["input"]);
    assert_eq!(out.status.code(), Some(0));

    let one = zstd::encode_all(text.as_bytes(), 1).expect("zstd");
    let f = write(dir.path(), "cut.jsonl.zst", &one[..one.len() - 7]);
    let (r, _) = report(&[&f]);
    assert!(
        r["summary"]["messages"].as_u64().unwrap_or(0) > 0,
        "kept lines"
    );
    assert_eq!(r["input"]["malformed_total"], 1);
}

#[test]
fn a_file_reached_twice_is_read_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", healthy(5));
    std::os::unix::fs::symlink(&f, dir.path().join("again.jsonl")).expect("symlink");
    let d = dir.path().display().to_string();
    let (r, out) = report(&[&d, &d, &f]);
    assert_eq!(r["input"]["files"], 1);
    assert!(findings(&r).is_empty(), "{:?}", findings(&r));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_window_ends_with_the_last_messaging_span_and_says_which() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Traces::new();
    let m = Msg::new("p", "orders", 1);
    t.produce(&m, 1, Host::PRODUCER);
    t.store_ack(&m, 1, "ok", Some("1"), Host::PRODUCER);
    t.deliver(
        &Msg::new("p", "orders", 2),
        "g",
        Some("2"),
        1,
        Host::CONSUMER,
    );
    // A stray span of another kind from a host whose clock is a day ahead.
    t.advance(86_400_000_000_000);
    t.unrelated(Host::PRODUCER);
    let f = write(dir.path(), "t.jsonl", t.finish());
    let (r, _) = report(&[&f]);
    // The window ends with a messaging span, not the stray one a day later.
    let end = &r["window"]["end_set_by"];
    assert_eq!(end["by"], "span");
    assert_ne!(end["name"], "GET /health", "{end}");
    assert!(end["end_unix_nano"].as_i64().unwrap_or(i64::MAX) < 1_790_001_000_000_000_000);
    assert!(
        end["line"].as_u64().is_some() && end["file"] == f.as_str(),
        "{end}"
    );

    // A message acked a moment ago is in flight, not lost: only --until past the grace
    // makes it a loss.
    let mut t = Traces::new();
    let m = Msg::new("p", "orders", 1);
    t.produce(&m, 1, Host::PRODUCER);
    t.store_ack(&m, 1, "ok", Some("1"), Host::PRODUCER);
    t.healthy(&Msg::new("p", "other", 1), "9", &["g"]);
    t.advance(86_400_000_000_000);
    t.unrelated(Host::PRODUCER);
    let f = write(dir.path(), "u.jsonl", t.finish());
    let (r, _) = report(&[&f]);
    assert!(findings(&r).is_empty() || findings(&r).iter().all(|f| f.starts_with("in_flight")));
    let (r, _) = report(&[&f, "--until", "2100-01-01T00:00:00Z"]);
    assert_eq!(r["window"]["end_set_by"]["by"], "until");
}

#[test]
fn a_rejected_line_moves_nothing_and_a_report_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = healthy(3);
    // A telemetry report of 5 drops, then a torn last line holding a final report of 7 and
    // a stream seen nowhere else, ending a day later.
    let report_line = |dropped: u64, is_final: bool, stream: &str, end: &str| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"mqtrace telemetry","attributes":[{{"key":"mqtrace.telemetry.dropped_spans","value":{{"intValue":"{dropped}"}}}},{{"key":"mqtrace.telemetry.final","value":{{"boolValue":{is_final}}}}}]}},{{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"send x","startTimeUnixNano":"1","endTimeUnixNano":"{end}","attributes":[{{"key":"mqtrace.stage","value":{{"stringValue":"produce"}}}},{{"key":"mqtrace.producer.id","value":{{"stringValue":"p"}}}},{{"key":"mqtrace.stream","value":{{"stringValue":"{stream}"}}}},{{"key":"mqtrace.seq","value":{{"intValue":"1"}}}}]}}]}}]}}]}}"#
        )
    };
    text.push_str(&report_line(5, false, "orders2", "1790000000000100000"));
    text.push('\n');
    let torn = report_line(7, true, "ghost", "1890000000000000000");
    text.push_str(&torn[..torn.len() - 2]); // the writer died here
    let f = write(dir.path(), "t.jsonl", &text);
    let (r, _) = report(&[&f]);
    assert_eq!(
        r["summary"]["telemetry"]["dropped_spans"], 5,
        "{}",
        r["summary"]
    );
    assert_eq!(r["summary"]["telemetry"]["reports"], 1);
    assert_eq!(
        r["summary"]["streams"], 2,
        "the ghost stream is not counted"
    );
    assert!(
        r["window"]["end_unix_nano"].as_i64().unwrap_or(0) < 1_800_000_000_000_000_000,
        "the torn line does not move the window"
    );
}

#[test]
fn ints_read_the_same_in_every_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Traces::new();
    for seq in 1..=3 {
        t.healthy(
            &Msg::new("p", "orders", seq).on("3"),
            &format!("3/{seq}"),
            &["g"],
        );
    }
    let json = t.finish();
    // The partition as a JSON number, and delivery counts beyond 32 bits.
    let numeric = json
        .replace(r#"{"stringValue":"3"}"#, r#"{"intValue":3}"#)
        .replace(
            r#""mqtrace.delivery.count","value":{"intValue":"1"}"#,
            r#""mqtrace.delivery.count","value":{"intValue":"4294967297"}"#,
        );
    assert_ne!(numeric, json);
    let f = write(dir.path(), "numeric.jsonl", &numeric);
    let (r, out) = report(&[&f, "--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", r["input"]);
    // A delivery count of 2^32 + 1 says the broker delivered it again: harmless, not a loss.
    assert_eq!(
        findings(&r),
        ["redelivered 1", "redelivered 2", "redelivered 3"]
    );
    assert_eq!(r["summary"]["messages"], 3);

    // Protobuf: ints as IntValue, and an end time beyond i64 is malformed as in JSON.
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let mut pb = Vec::new();
    for line in numeric.lines() {
        let mut req: ExportTraceServiceRequest =
            serde_json::from_str(&line.replace(r#"{"intValue":3}"#, r#"{"intValue":"3"}"#))
                .expect("OTLP JSON");
        for rs in &mut req.resource_spans {
            for ss in &mut rs.scope_spans {
                for span in &mut ss.spans {
                    let seq3 = span.attributes.iter().any(|a| {
                        a.key == "mqtrace.seq" && format!("{:?}", a.value).contains("IntValue(3)")
                    });
                    if span.name == "send orders" && seq3 {
                        span.end_time_unix_nano = u64::MAX;
                    }
                }
            }
        }
        let bytes = req.encode_to_vec();
        pb.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        pb.extend_from_slice(&bytes);
    }
    let f = write(dir.path(), "t.binpb", pb);
    let (r, _) = report(&[&f]);
    // The send of seq 3 ends after 2^63 ns: malformed, as in JSON (it was clamped and
    // became the window's end).
    assert_eq!(r["input"]["malformed_total"], 1, "{}", r["input"]);
    assert!(
        first_problem(&r).contains("endTimeUnixNano"),
        "{}",
        r["input"]
    );
    assert_eq!(
        findings(&r),
        [
            "redelivered 1",
            "redelivered 2",
            "telemetry_gap 3",
            "redelivered 3"
        ]
    );

    let mut t = Traces::new();
    let m = Msg::new("p", "orders", 1);
    t.produce(&m, 1, Host::PRODUCER);
    let late = t.finish().replace(
        r#""endTimeUnixNano":"#,
        r#""endTimeUnixNano":"18446744073709551615","x":"#,
    );
    let f = write(dir.path(), "late.jsonl", late);
    let (r, _) = report(&[&f]);
    assert!(
        first_problem(&r).contains("endTimeUnixNano"),
        "{}",
        r["input"]
    );
    assert_eq!(
        r["input"]["messaging_spans"], 1,
        "a span with a bad time still counts"
    );
}

#[test]
fn third_party_messaging_spans_with_int_attributes_are_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = healthy(2);
    text.push_str(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"orders receive","kind":5,"startTimeUnixNano":"1790000000000000000","endTimeUnixNano":"1790000000000001000","attributes":[{"key":"messaging.system","value":{"stringValue":"kafka"}},{"key":"messaging.destination.partition.id","value":{"intValue":"3"}},{"key":"messaging.consumer.group.name","value":{"intValue":7}}]}]}]}]}"#);
    text.push('\n');
    let f = write(dir.path(), "t.jsonl", text);
    let out = mqtrace(&["analyze", "--strict", &f]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_space_after_a_colon_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spaced = healthy(3).replace(r#"{"intValue":"2"}"#, r#"{"intValue": "2"}"#);
    let f = write(dir.path(), "t.jsonl", spaced);
    let (r, out) = report(&[&f]);
    assert!(findings(&r).is_empty(), "{:?}", findings(&r));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn bad_options_and_outputs_are_refused_without_harm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", healthy(2));
    let out = mqtrace(&["analyze", &f, "--grace", "99999999999999999999999"]);
    assert_eq!(out.status.code(), Some(2), "a usage error, not a panic");

    let before = std::fs::read(&f).expect("read");
    let out = mqtrace(&["analyze", &f, "-o", &f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of the input files"));
    assert_eq!(
        std::fs::read(&f).expect("read"),
        before,
        "the traces are intact"
    );
}

#[test]
fn names_from_headers_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = Traces::new();
    let m = Msg::new("p\u{1b}[2J", "ord\rers\u{9b}", 1);
    t.produce(&m, 1, Host::PRODUCER);
    let f = write(dir.path(), "t.jsonl", t.finish());
    for format in ["table", "csv"] {
        let out = mqtrace(&["analyze", "--format", format, &f]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains('\u{1b}') && !stdout.contains('\r') && !stdout.contains('\u{9b}'),
            "{format}: {stdout:?}"
        );
        assert!(stdout.contains("p\\u{1b}[2J"), "{format}: {stdout}");
    }
}

#[test]
fn a_bom_is_not_a_bad_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", format!("\u{feff}{}", healthy(2)));
    let (r, out) = report(&[&f, "--strict"]);
    assert_eq!(r["summary"]["messages"], 2);
    assert_eq!(out.status.code(), Some(0), "{}", r["input"]);
}

#[test]
fn garbage_is_counted_in_full_and_listed_briefly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = healthy(2);
    text.push_str(&"garbage\n".repeat(200_000));
    let f = write(dir.path(), "t.jsonl", text);
    let (r, out) = report(&[&f]);
    assert_eq!(r["input"]["malformed_total"], 200_000);
    let listed = r["input"]["malformed"].as_array().expect("list");
    assert_eq!(listed.len(), 101, "the first 100, then a note");
    assert!(
        listed[100]["error"]
            .as_str()
            .is_some_and(|e| e.contains("199900 more"))
    );
    assert!(
        out.stdout.len() < 100_000,
        "report of {} bytes",
        out.stdout.len()
    );
    assert_eq!(r["summary"]["messages"], 2);
}

#[test]
fn damage_after_many_bad_lines_is_still_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = "garbage\n".repeat(500);
    text.push_str(&healthy(50));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).expect("gzip");
    let whole = gz.finish().expect("gzip");
    let f = write(dir.path(), "t.jsonl.gz", &whole[..whole.len() - 20]);
    let (r, _) = report(&[&f]);
    let listed = r["input"]["malformed"].as_array().expect("list");
    assert!(
        listed.iter().any(|m| m["error"]
            .as_str()
            .is_some_and(|e| e.contains("damaged gzip"))),
        "the rest of the file went unread: that is always said ({} listed)",
        listed.len()
    );
}
