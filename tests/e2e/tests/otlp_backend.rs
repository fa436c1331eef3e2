//! Spans reach a real tracing backend over OTLP (gRPC and HTTP) and come back through the
//! backend's own API with the attributes of SPEC §2.
//!
//! The backend is Arize Phoenix, started by `scripts/test` on loopback ports of its own; its
//! addresses come in `MQTRACE_PHOENIX_HTTP` and `MQTRACE_PHOENIX_GRPC`. Without them the test
//! fails: it never skips.

use mqtrace::{Consumer, DeliveryInfo, Producer};
use mqtrace_export::{OtlpProtocol, Overflow, Telemetry};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite through scripts/test, which starts Phoenix")
    })
}

const MESSAGES: usize = 5;

/// Sends MESSAGES messages through produce → store_ack → deliver → consume_ack.
fn send_through(telemetry: &Telemetry, producer_id: &str) {
    let producer = Producer::builder("rabbitmq")
        .producer_id(producer_id)
        .tracer_provider(telemetry.provider())
        .build();
    let consumer = Consumer::builder("rabbitmq", "shipping")
        .consumer_id("shipping-1")
        .tracer_provider(telemetry.provider())
        .build();
    for i in 0..MESSAGES {
        let mut headers: HashMap<String, String> = HashMap::new();
        producer
            .message("orders")
            .begin_attempt(&mut headers)
            .sent()
            .acked(Some(&i.to_string()), None);
        consumer
            .deliver(&headers, DeliveryInfo::new("shipping-queue"))
            .ack();
    }
}

/// The spans of `project`, through Phoenix's REST API, once `want` of them have arrived.
fn fetch_spans(base: &str, project: &str, want: usize) -> Vec<Value> {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let url = format!("{base}/v1/projects/{project}/spans?limit=1000");
        let body: Option<Value> = client
            .get(&url)
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.text().ok())
            .and_then(|t| serde_json::from_str(&t).ok());
        let spans = body
            .and_then(|b| b["data"].as_array().cloned())
            .unwrap_or_default();
        if spans.len() >= want || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"].get(key)
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn round_trip(protocol: OtlpProtocol, endpoint: &str, name: &str) {
    let project = format!("mqtrace-e2e-{name}-{}", std::process::id());
    let telemetry = Telemetry::builder()
        .otlp(protocol, Some(endpoint))
        .overflow(Overflow::Block)
        .service_name("mqtrace-e2e")
        .resource_attribute("openinference.project.name", project.clone())
        .build()
        .expect("OTLP pipeline");
    send_through(&telemetry, &format!("e2e-{name}"));
    let instance = telemetry.instance().to_owned();
    let stats = telemetry.shutdown().expect("export to Phoenix");
    let expected = MESSAGES * 4;
    assert_eq!((stats.exported as usize, stats.dropped()), (expected, 0));

    // The app's spans plus at least three telemetry reports: at start, with the batch (the
    // heartbeat) and the final one.
    let spans = fetch_spans(&env("MQTRACE_PHOENIX_HTTP"), &project, expected + 3);
    let reports = spans
        .iter()
        .filter(|s| attribute(s, "mqtrace.stage").is_none())
        .count();
    assert_eq!(
        spans.len() - reports,
        expected,
        "spans in Phoenix: {spans:#?}"
    );
    assert!(reports >= 3, "telemetry reports in Phoenix: {spans:#?}");
    let finals = spans
        .iter()
        .filter(|s| attribute(s, "mqtrace.telemetry.final").and_then(Value::as_bool) == Some(true))
        .count();
    assert_eq!(finals, 1, "one final report");
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    // (stage, seq) -> (span id, parent id), to check the parent chain survived the backend.
    let mut ids: HashMap<(String, i64), (String, String)> = HashMap::new();
    for span in &spans {
        let Some(stage) = attribute(span, "mqtrace.stage").and_then(Value::as_str) else {
            assert_eq!(span["name"], "mqtrace telemetry");
            let dropped = attribute(span, "mqtrace.telemetry.dropped_spans").and_then(as_i64);
            assert_eq!(dropped, Some(0));
            assert_eq!(
                attribute(span, "mqtrace.telemetry.instance").and_then(Value::as_str),
                Some(instance.as_str())
            );
            continue;
        };
        let seq = attribute(span, "mqtrace.seq")
            .and_then(as_i64)
            .unwrap_or_else(|| panic!("no mqtrace.seq on {span:#?}"));
        assert_eq!(
            attribute(span, "mqtrace.producer.id").and_then(Value::as_str),
            Some(format!("e2e-{name}").as_str())
        );
        assert_eq!(
            attribute(span, "messaging.system").and_then(Value::as_str),
            Some("rabbitmq")
        );
        seen.entry(stage.to_owned()).or_default().push(seq);
        ids.insert(
            (stage.to_owned(), seq),
            (
                span["context"]["span_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                span["parent_id"].as_str().unwrap_or_default().to_owned(),
            ),
        );
    }
    for seq in 1..=MESSAGES as i64 {
        let id = |stage: &str| ids[&(stage.to_owned(), seq)].clone();
        assert_eq!(
            id("store_ack").1,
            id("produce").0,
            "store_ack under produce"
        );
        assert_eq!(id("deliver").1, id("produce").0, "deliver under produce");
        assert_eq!(
            id("consume_ack").1,
            id("deliver").0,
            "consume_ack under deliver"
        );
    }
    let all: Vec<i64> = (1..=MESSAGES as i64).collect();
    for stage in ["produce", "store_ack", "deliver", "consume_ack"] {
        let mut seqs = seen.remove(stage).unwrap_or_default();
        seqs.sort_unstable();
        assert_eq!(seqs, all, "{stage} spans of every seq");
    }
}

#[test]
fn spans_reach_phoenix_over_otlp_http_and_read_back() {
    let base = env("MQTRACE_PHOENIX_HTTP");
    round_trip(
        OtlpProtocol::HttpProtobuf,
        &format!("{base}/v1/traces"),
        "http",
    );
}

#[test]
fn spans_reach_phoenix_over_otlp_grpc_and_read_back() {
    round_trip(OtlpProtocol::Grpc, &env("MQTRACE_PHOENIX_GRPC"), "grpc");
}
