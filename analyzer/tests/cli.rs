//! The `mqtrace` binary: exit statuses, formats, and what it says about bad input.

use mqtrace_tracegen::{Host, Msg, Traces};
use std::path::Path;
use std::process::{Command, Output};

fn mqtrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtrace"))
        .args(args)
        .output()
        .expect("run mqtrace")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Five healthy messages, or with `lose` the third acked but never delivered.
fn traces(lose: bool) -> String {
    let mut t = Traces::new();
    for seq in 1..=5 {
        let m = Msg::new("p", "orders", seq);
        if lose && seq == 3 {
            t.produce(&m, 1, Host::PRODUCER);
            t.store_ack(&m, 1, "ok", Some("3"), Host::PRODUCER);
        } else {
            t.healthy(&m, &seq.to_string(), &["g"]);
        }
    }
    t.finish()
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.display().to_string()
}

fn json_report(args: &[&str]) -> (serde_json::Value, Output) {
    let mut all = vec!["analyze", "--format", "json"];
    all.extend_from_slice(args);
    let out = mqtrace(&all);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out).0));
    (report, out)
}

#[test]
fn exit_status_is_0_when_nothing_is_lost_and_1_when_something_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = write(dir.path(), "ok.jsonl", traces(false));
    let out = mqtrace(&["analyze", &ok]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(text(&out).0.contains("no findings"));

    let bad = write(dir.path(), "bad.jsonl", traces(true));
    let out = mqtrace(&["analyze", &bad]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert!(text(&out).0.contains("lost/store"));
}

#[test]
fn the_json_report_has_the_spec_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", traces(true));
    let (r, out) = json_report(&[&f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["schema"], "mqtrace.report/v1");
    for key in ["files", "records", "spans", "messaging_spans", "malformed"] {
        assert!(r["input"].get(key).is_some(), "input.{key}");
    }
    assert_eq!(r["input"]["files"], 1);
    assert_eq!(r["input"]["spans"], 18);
    assert!(
        r["window"]["start_unix_nano"]
            .as_i64()
            .is_some_and(|v| v > 0)
    );
    assert!(r["window"]["end_unix_nano"].as_i64().is_some_and(|v| v > 0));
    assert_eq!(r["summary"]["streams"], 1);
    assert_eq!(r["summary"]["messages"], 5);
    assert_eq!(r["summary"]["findings"]["lost/store"], 1);
    assert_eq!(r["summary"]["findings"]["lost/produce"], 0);
    let hops: Vec<(String, u64)> = r["summary"]["latency"]
        .as_array()
        .expect("latency")
        .iter()
        .map(|l| {
            (
                l["hop"].as_str().unwrap_or("").to_owned(),
                l["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            ("produce→store_ack".to_owned(), 5),
            ("store_ack→deliver".to_owned(), 4),
            ("deliver→consume_ack".to_owned(), 4)
        ],
        "the lost message has no delivery to measure"
    );
    let findings = r["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    for key in [
        "kind",
        "stage",
        "producer_id",
        "stream",
        "seq",
        "consumer_group",
        "message_id",
        "partition",
        "trace_ids",
        "evidence",
    ] {
        assert!(f.get(key).is_some(), "finding.{key}");
    }
    assert_eq!(
        (&f["kind"], &f["stage"], &f["seq"], &f["consumer_group"]),
        (
            &serde_json::json!("lost"),
            &serde_json::json!("store"),
            &serde_json::json!(3),
            &serde_json::json!("g")
        )
    );
    assert_eq!(f["message_id"], "p:orders:3");
    assert_eq!(f["partition"], serde_json::Value::Null);
    assert_eq!(f["trace_ids"].as_array().map(Vec::len), Some(1));
}

#[test]
fn bad_records_are_named_with_file_and_line_and_the_rest_is_analysed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = traces(true);
    let span = |attrs: &str, trace: &str| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{trace}","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{attrs}]}}]}}]}}]}}"#
        )
    };
    let stage = r#"{"key":"mqtrace.stage","value":{"stringValue":"produce"}},{"key":"mqtrace.producer.id","value":{"stringValue":"p"}},{"key":"mqtrace.stream","value":{"stringValue":"orders"}}"#;
    let lines = [
        "this is not json".to_owned(),
        r#"{"hello": "world"}"#.to_owned(),
        r#"[1, 2, 3]"#.to_owned(),
        span(
            &format!(r#"{stage},{{"key":"mqtrace.seq","value":{{"stringValue":"seven"}}}}"#),
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        span(
            &format!(r#"{stage},{{"key":"mqtrace.seq","value":{{"intValue":"9"}}}}"#),
            "4bf92f",
        ),
    ];
    let mut content = lines.join("\n");
    content.push('\n');
    content.push_str(&good);
    content.push_str(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"#); // torn
    let f = write(dir.path(), "mixed.jsonl", &content);
    let (r, out) = json_report(&[&f]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the good part still shows the loss"
    );
    assert_eq!(r["summary"]["findings"]["lost/store"], 1);
    let malformed = r["input"]["malformed"].as_array().expect("malformed");
    let said: Vec<(u64, String)> = malformed
        .iter()
        .map(|m| {
            assert_eq!(m["file"], f.as_str());
            (
                m["line"].as_u64().unwrap_or(0),
                m["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let last_line = 5 + good.lines().count() as u64 + 1;
    let expect = [
        (1, "not JSON"),
        (2, "valid JSON but not an OTLP ExportTraceServiceRequest"),
        (3, "valid JSON but not an OTLP ExportTraceServiceRequest"),
        (4, "mqtrace.seq must be an int (intValue), got a string"),
        (5, "traceId must be 32 hex digits"),
        (last_line, "torn last line"),
    ];
    assert_eq!(said.len(), expect.len(), "{said:#?}");
    for ((line, msg), (want_line, want)) in said.iter().zip(expect) {
        assert_eq!(*line, want_line, "{msg}");
        assert!(msg.contains(want), "line {line}: {msg:?} lacks {want:?}");
    }
    let (_, stderr) = text(&out);
    assert!(stderr.contains(&format!("{f}:1: not JSON")), "{stderr}");

    let strict = mqtrace(&["analyze", "--strict", "--format", "json", &f]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(!strict.stdout.is_empty(), "the report is still written");
}

#[test]
fn empty_binary_and_missing_inputs_are_explained() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = write(dir.path(), "empty.jsonl", "");
    let binary = write(dir.path(), "blob.json", [0u8, 159, 146, 150, 0, 1, 2]);
    let good = write(dir.path(), "good.jsonl", traces(false));
    let (r, out) = json_report(&[&empty, &binary, &good]);
    assert_eq!(out.status.code(), Some(0));
    let errors: Vec<String> = r["input"]["malformed"]
        .as_array()
        .expect("malformed")
        .iter()
        .map(|m| {
            format!(
                "{}: {}",
                m["file"].as_str().unwrap_or(""),
                m["error"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&empty) && e.contains("empty file")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&binary) && e.contains("binary data")),
        "{errors:?}"
    );
    assert_eq!(r["summary"]["messages"], 5);

    let nothing = tempfile::tempdir().expect("tempdir");
    write(nothing.path(), "notes.txt", "no traces here");
    let out = mqtrace(&["analyze", &nothing.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("no trace files under")
            && stderr.contains(&nothing.path().display().to_string()),
        "{stderr}"
    );

    let out = mqtrace(&["analyze", "/no/such/path"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("/no/such/path"));

    let out = mqtrace(&["analyze", &good, "--grace", "soon"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn compressed_and_protobuf_inputs_read_like_json_lines() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let json = traces(true);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json.as_bytes()).expect("gzip");
    write(dir.path(), "a.jsonl.gz", gz.finish().expect("gzip"));

    let zst = zstd::encode_all(json.as_bytes(), 1).expect("zstd");
    write(dir.path(), "b.jsonl.zst", zst);

    // The Collector's `format: proto`: each request after its 4-byte big-endian length.
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let mut pb = Vec::new();
    for line in json.lines() {
        let req: ExportTraceServiceRequest = serde_json::from_str(line).expect("OTLP JSON");
        let bytes = req.encode_to_vec();
        pb.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        pb.extend_from_slice(&bytes);
    }
    write(dir.path(), "c.binpb", pb);

    for name in ["a.jsonl.gz", "b.jsonl.zst", "c.binpb"] {
        let path = dir.path().join(name).display().to_string();
        let (r, out) = json_report(&[&path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            r["input"]["malformed"]
                .as_array()
                .is_some_and(Vec::is_empty),
            "{name}: {}",
            r["input"]
        );
        assert_eq!(r["input"]["spans"], 18, "{name}");
        assert_eq!(r["summary"]["findings"]["lost/store"], 1, "{name}");
    }
}

#[test]
fn csv_and_parquet_list_the_findings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", traces(true));
    let out = mqtrace(&["analyze", "--format", "csv", &f]);
    let csv = text(&out).0;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "kind,stage,producer_id,stream,seq,consumer_group,message_id,partition,trace_ids,evidence,basis"
        )
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("lost,store,p,orders,3,g,p:orders:3,"))
    );

    let out = mqtrace(&["analyze", "--format", "parquet", &f]);
    assert_eq!(out.status.code(), Some(2), "parquet needs --output");
    let pq = dir.path().join("f.parquet");
    let out = mqtrace(&[
        "analyze",
        "--format",
        "parquet",
        "-o",
        &pq.display().to_string(),
        &f,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let bytes = std::fs::read(&pq).expect("parquet written");
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
}

#[test]
fn html_writes_one_offline_page_with_linked_traces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", traces(true));
    let page = dir.path().join("report.html");
    let out = mqtrace(&[
        "analyze",
        "--format",
        "html",
        "--trace-url",
        "http://jaeger:16686/trace/{trace_id}",
        "-o",
        &page.display().to_string(),
        &f,
    ]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let html = std::fs::read_to_string(&page).expect("page written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(r#"<td class="num" data-key="lost/store">1</td>"#));
    assert!(html.contains(r#"<a href="http://jaeger:16686/trace/"#));
    assert!(html.contains("5 message(s) in 1 stream(s)"));
    assert!(
        !html.contains("src=\"http") && !html.contains("<link"),
        "offline"
    );

    // A template without the id, or one that is not a web address, is refused up front.
    for (url, says) in [
        ("http://jaeger/trace/", "{trace_id}"),
        ("javascript:alert(1)//{trace_id}", "http:// or https://"),
    ] {
        let out = mqtrace(&["analyze", "--format", "html", "--trace-url", url, &f]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out).1.contains(says), "{:?}", text(&out));
    }
    let out = mqtrace(&["analyze", "--trace-url", "http://j/{trace_id}", &f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--format html"), "{:?}", text(&out));
}

#[test]
fn help_explains_every_option() {
    let out = mqtrace(&["analyze", "--help"]);
    let help = text(&out).0;
    for option in [
        "--format",
        "--output",
        "--grace",
        "--strict",
        "--stream",
        "--group",
        "--max-rows",
        "--trace-url",
    ] {
        assert!(help.contains(option), "--help lacks {option}");
    }
    assert!(help.contains("Exit status"));
}

#[test]
fn group_filter_keeps_that_groups_findings_and_recounts_the_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "t.jsonl", traces(true));
    let (r, out) = json_report(&["--group", "g", &f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["summary"]["findings"]["lost/store"], 1);
    let (r, out) = json_report(&["--group", "other", &f]);
    assert_eq!(out.status.code(), Some(0), "g's loss is filtered out");
    assert_eq!(r["summary"]["findings"]["lost/store"], 0);
    assert_eq!(r["findings"].as_array().map(Vec::len), Some(0));
}

/// SPEC §4b: messaging spans that cannot be tied to a message are counted by reason, and no
/// format calls the run clean while any are: consumer spans of a producer that was not
/// traced, with no message id, are not a clean bill.
#[test]
fn unanalysed_messaging_spans_are_never_a_clean_bill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let span = |i: u32| {
        format!(
            r#"{{"traceId":"4bf92f3577b34da6a3ce929d0e0e47{i:02}","spanId":"00f067aa0ba902{i:02}","parentSpanId":"1111111111111111","name":"orders receive","kind":5,"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{{"key":"messaging.system","value":{{"stringValue":"rabbitmq"}}}},{{"key":"messaging.operation","value":{{"stringValue":"receive"}}}}]}}"#
        )
    };
    let spans: Vec<String> = (10..13).map(span).collect();
    let line = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"billing"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let f = write(dir.path(), "third-party.jsonl", format!("{line}\n"));
    let out = mqtrace(&["analyze", &f]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "no finding: {stdout}");
    assert!(
        stdout.contains("NOT ANALYSED: 3 messaging span(s)")
            && stdout.contains("3 delivery_without_identity"),
        "{stdout}"
    );
    assert!(!stdout.contains("every message was"), "{stdout}");
    assert!(stdout.contains("could not be analysed"), "{stdout}");
    let (report, _) = json_report(&[&f]);
    assert_eq!(
        report["summary"]["unanalysed"],
        serde_json::json!({"delivery_without_identity": 3})
    );
    // Numbered traces alone: nothing unanalysed, the clean bill stands.
    let ok = write(dir.path(), "ok.jsonl", traces(false));
    let (report, _) = json_report(&[&ok]);
    assert_eq!(report["summary"]["unanalysed"], serde_json::json!({}));
    assert!(
        text(&mqtrace(&["analyze", &ok]))
            .0
            .contains("every message was")
    );
}

/// The binary on traces of a real third-party instrumentation (pika, SPEC §4b): findings are
/// named by message id in the table, marked `semconv` in every format, and a loss exits 1.
#[test]
fn third_party_traces_are_reported_by_message_id() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/fixtures/semconv/pika-faults.jsonl.gz")
        .display()
        .to_string();
    let out = mqtrace(&["analyze", "--grace", "0s", "--max-rows", "1000", &fixture]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stdout.contains("NOT ANALYSED"), "{stdout}");
    let failed_publish = stdout
        .lines()
        .find(|l| l.starts_with("lost/produce") && l.contains("id order-13"))
        .unwrap_or_else(|| panic!("order-13's failed publish: {stdout}"));
    assert!(
        failed_publish.contains("every one ended ERROR"),
        "{failed_publish}"
    );
    let (report, _) = json_report(&["--grace", "0s", &fixture]);
    let findings = report["findings"].as_array().expect("findings");
    assert!(!findings.is_empty());
    for f in findings {
        assert_eq!(f["basis"], "semconv", "{f}");
        assert!(f["seq"].is_null() && f["message_id"].is_string(), "{f}");
    }
    assert_eq!(report["summary"]["unanalysed"], serde_json::json!({}));
    let csv = text(&mqtrace(&[
        "analyze", "--format", "csv", "--grace", "0s", &fixture,
    ]))
    .0;
    assert!(
        csv.lines().skip(1).all(|l| l.ends_with(",semconv")),
        "{csv}"
    );
}
