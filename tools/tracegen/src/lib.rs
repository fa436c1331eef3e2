//! Writes mqtrace spans as OTLP JSON lines (the Collector file exporter's format), message by
//! message, so that tests can build traces with exactly the faults they mean to find, and
//! benchmarks can build millions of spans quickly.
//!
//! ```
//! use mqtrace_tracegen::{Host, Msg, Traces};
//! let mut t = Traces::new();
//! let m = Msg::new("p1", "orders", 1);
//! t.produce(&m, 1, Host::PRODUCER);
//! t.store_ack(&m, 1, "ok", Some("0/1"), Host::PRODUCER);
//! t.deliver(&m, "shipping", Some("0/1"), 1, Host::CONSUMER);
//! t.settle(&m, "shipping", "ack", Host::CONSUMER);
//! assert_eq!(t.span_count(), 4);
//! ```

pub mod cases;
pub mod collector;

use mqtrace_vocab::attr;
use std::fmt::Write as _;

/// A host's clock: an offset from the scenario's clock, ns (skewed hosts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// Added to every timestamp this host records.
    pub skew_ns: i64,
}

impl Host {
    /// The producer's host.
    pub const PRODUCER: Host = Host { skew_ns: 0 };
    /// A consumer host whose clock runs 90 s behind.
    pub const CONSUMER: Host = Host {
        skew_ns: -90_000_000_000,
    };
}

/// One message's identity and where it lives.
#[derive(Clone, Debug)]
pub struct Msg {
    /// Producer id.
    pub producer_id: String,
    /// Stream.
    pub stream: String,
    /// Seq.
    pub seq: u64,
    /// Partition.
    pub partition: Option<String>,
    /// Destination as consumers name it (default: the stream).
    pub consumer_destination: Option<String>,
    /// Deliveries start new traces linked to the producer's.
    pub linked: bool,
}

impl Msg {
    /// A message on no partition.
    pub fn new(producer_id: &str, stream: &str, seq: u64) -> Self {
        Msg {
            producer_id: producer_id.to_owned(),
            stream: stream.to_owned(),
            seq,
            partition: None,
            consumer_destination: None,
            linked: false,
        }
    }

    /// On `partition`.
    pub fn on(mut self, partition: &str) -> Self {
        self.partition = Some(partition.to_owned());
        self
    }

    fn trace_id(&self, salt: u64) -> String {
        // Deterministic, distinct per (message, salt): tests can predict them.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.producer_id.bytes().chain(self.stream.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        format!(
            "{h:016x}{:016x}",
            self.seq.wrapping_mul(2).wrapping_add(salt) + 1
        )
    }
}

/// Spans being written, one OTLP request per `batch` spans.
#[derive(Debug)]
pub struct Traces {
    out: String,
    spans_in_line: usize,
    batch: usize,
    spans: u64,
    clock_ns: i64,
    span_ids: u64,
}

impl Default for Traces {
    fn default() -> Self {
        Self::new()
    }
}

const T0: i64 = 1_790_000_000_000_000_000;

impl Traces {
    /// Empty; 100 spans per line.
    pub fn new() -> Self {
        Traces {
            out: String::new(),
            spans_in_line: 0,
            batch: 100,
            spans: 0,
            clock_ns: T0,
            span_ids: 0,
        }
    }

    /// Spans written so far.
    pub fn span_count(&self) -> u64 {
        self.spans
    }

    /// Moves the scenario clock forward.
    pub fn advance(&mut self, ns: i64) {
        self.clock_ns += ns;
    }

    /// The JSON lines so far (the last line completed).
    pub fn finish(mut self) -> String {
        self.close_line();
        self.out
    }

    /// Takes the completed lines so far, to stream them into a file.
    pub fn drain(&mut self) -> String {
        self.close_line();
        std::mem::take(&mut self.out)
    }

    fn close_line(&mut self) {
        if self.spans_in_line > 0 {
            self.out.push_str("]}]}]}\n");
            self.spans_in_line = 0;
        }
    }

    fn span(
        &mut self,
        trace_id: &str,
        name: &str,
        kind: u8,
        host: Host,
        attrs: &[(&str, Val<'_>)],
    ) {
        self.span_full(trace_id, name, kind, host, attrs, None, false);
    }

    /// A span with a parent and a status; its span id.
    #[allow(clippy::too_many_arguments)]
    fn span_full(
        &mut self,
        trace_id: &str,
        name: &str,
        kind: u8,
        host: Host,
        attrs: &[(&str, Val<'_>)],
        parent: Option<u64>,
        error: bool,
    ) -> u64 {
        if self.spans_in_line == 0 {
            self.out.push_str(
                r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"tracegen"}}]},"scopeSpans":[{"scope":{"name":"mqtrace"},"spans":["#,
            );
        } else {
            self.out.push(',');
        }
        self.clock_ns += 1_000;
        self.span_ids += 1;
        let start = self.clock_ns + host.skew_ns;
        let _ = write!(
            self.out,
            r#"{{"traceId":"{trace_id}","spanId":"{:016x}","#,
            self.span_ids
        );
        if let Some(parent) = parent {
            let _ = write!(self.out, r#""parentSpanId":"{parent:016x}","#);
        }
        let _ = write!(
            self.out,
            r#""name":{},"kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{}","attributes":["#,
            json(name),
            start + 500
        );
        for (i, (k, v)) in attrs.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let value = match v {
                Val::S(s) => format!(r#"{{"stringValue":{}}}"#, json(s)),
                Val::I(n) => format!(r#"{{"intValue":"{n}"}}"#),
                Val::B(b) => format!(r#"{{"boolValue":{b}}}"#),
            };
            let _ = write!(self.out, r#"{{"key":{},"value":{value}}}"#, json(k));
        }
        if error {
            self.out.push_str("],\"status\":{\"code\":2}}");
        } else {
            self.out.push_str("],\"status\":{}}");
        }
        self.spans += 1;
        self.spans_in_line += 1;
        if self.spans_in_line >= self.batch {
            self.close_line();
        }
        self.span_ids
    }

    /// One message as a third-party RabbitMQ instrumentation traces it (SPEC §4b: the older
    /// convention keys, no numbering, no message id): a PRODUCER span with a nested one inside
    /// it, then per group a CONSUMER span, child of the inner send, `processed` times (a
    /// processed delivery ends OK, a refused one ERROR), after `refused` refusals. `id` makes
    /// the trace id.
    pub fn third_party(&mut self, id: u64, destination: &str, deliveries: &[(&str, u32, u32)]) {
        let trace = format!("{:032x}", 0x5e3c_0000_0000_u128 + u128::from(id));
        let send_attrs = [
            ("messaging.system", Val::S("rabbitmq")),
            ("messaging.destination", Val::S(destination)),
            ("messaging.destination_kind", Val::S("topic")),
            ("messaging.rabbitmq.routing_key", Val::S("order.created")),
        ];
        let name = format!("{destination} send");
        let outer = self.span_full(&trace, &name, 4, Host::PRODUCER, &send_attrs, None, false);
        let inner = self.span_full(
            &trace,
            &name,
            4,
            Host::PRODUCER,
            &send_attrs,
            Some(outer),
            false,
        );
        for &(group, refused, processed) in deliveries {
            let attrs = [
                ("messaging.system", Val::S("rabbitmq")),
                ("messaging.destination", Val::S(destination)),
                ("messaging.operation", Val::S("process")),
                ("messaging.consumer.group.name", Val::S(group)),
            ];
            let name = format!("{destination} process");
            for i in 0..refused + processed {
                self.span_full(
                    &trace,
                    &name,
                    5,
                    Host::CONSUMER,
                    &attrs,
                    Some(inner),
                    i < refused,
                );
            }
        }
    }

    /// The span id given last (a span's, to make another its child).
    pub fn last_span_id(&self) -> u64 {
        self.span_ids
    }

    /// A third-party consumer's `process` span of numbered message `m` (SPEC §4b): the child
    /// of span `send` of its trace when given, else tied to it by `message_id` alone; ending
    /// ERROR when `refused`.
    pub fn third_party_delivery(
        &mut self,
        m: &Msg,
        send: Option<u64>,
        message_id: Option<&str>,
        group: &str,
        refused: bool,
    ) {
        let mut attrs = vec![
            ("messaging.system", Val::S("kafka")),
            ("messaging.destination.name", Val::S(&m.stream)),
            ("messaging.operation.type", Val::S("process")),
            ("messaging.consumer.group.name", Val::S(group)),
        ];
        if let Some(id) = message_id {
            attrs.push(("messaging.message.id", Val::S(id)));
        }
        let name = format!("process {}", m.stream);
        self.span_full(
            &m.trace_id(0),
            &name,
            5,
            Host::CONSUMER,
            &attrs,
            send,
            refused,
        );
    }

    fn common<'a>(m: &'a Msg, stage: &'a str, destination: &'a str) -> Vec<(&'a str, Val<'a>)> {
        let mut a = vec![
            (attr::STAGE, Val::S(stage)),
            (attr::PRODUCER_ID, Val::S(&m.producer_id)),
            (attr::STREAM, Val::S(&m.stream)),
            (attr::SEQ, Val::I(m.seq as i64)),
            (attr::MESSAGING_SYSTEM, Val::S("kafka")),
            (attr::MESSAGING_DESTINATION_NAME, Val::S(destination)),
        ];
        if let Some(p) = &m.partition {
            a.push((attr::MESSAGING_DESTINATION_PARTITION_ID, Val::S(p)));
        }
        a
    }

    /// A send attempt.
    pub fn produce(&mut self, m: &Msg, attempt: i64, host: Host) {
        let mut a = Self::common(m, "produce", &m.stream);
        a.push((attr::ATTEMPT, Val::I(attempt)));
        a.push((attr::MESSAGING_OPERATION_TYPE, Val::S("send")));
        self.span(&m.trace_id(0), &format!("send {}", m.stream), 4, host, &a);
    }

    /// The broker's answer to an attempt.
    pub fn store_ack(
        &mut self,
        m: &Msg,
        attempt: i64,
        outcome: &str,
        position: Option<&str>,
        host: Host,
    ) {
        let mut a = Self::common(m, "store_ack", &m.stream);
        a.push((attr::ATTEMPT, Val::I(attempt)));
        a.push((attr::OUTCOME, Val::S(outcome)));
        if let Some(p) = position {
            a.push((attr::BROKER_POSITION, Val::S(p)));
        }
        self.span(
            &m.trace_id(0),
            &format!("store_ack {}", m.stream),
            1,
            host,
            &a,
        );
    }

    /// A delivery to `group`.
    pub fn deliver(
        &mut self,
        m: &Msg,
        group: &str,
        position: Option<&str>,
        count: i64,
        host: Host,
    ) {
        self.deliver_span(m, group, position, None, count, host);
    }

    /// A repeat delivery in ledger mode (SPEC §2b): the full `deliver` span of a seq this
    /// consumer instance delivered before through a ledger, naming where that earlier
    /// delivery's copy was stored (`mqtrace.ledger.position`) beside this copy's position.
    pub fn deliver_after_ledger(
        &mut self,
        m: &Msg,
        group: &str,
        position: &str,
        earlier: &str,
        count: i64,
        host: Host,
    ) {
        self.deliver_span(m, group, Some(position), Some(earlier), count, host);
    }

    fn deliver_span(
        &mut self,
        m: &Msg,
        group: &str,
        position: Option<&str>,
        earlier: Option<&str>,
        count: i64,
        host: Host,
    ) {
        let dest = m
            .consumer_destination
            .clone()
            .unwrap_or_else(|| m.stream.clone());
        let mut a = Self::common(m, "deliver", &dest);
        a.push((attr::MESSAGING_CONSUMER_GROUP_NAME, Val::S(group)));
        a.push((attr::CONSUMER_ID, Val::S("c-1")));
        a.push((attr::DELIVERY_COUNT, Val::I(count)));
        if let Some(p) = position {
            a.push((attr::BROKER_POSITION, Val::S(p)));
        }
        if let Some(e) = earlier {
            a.push((attr::LEDGER_POSITION, Val::S(e)));
        }
        let trace = m.trace_id(u64::from(m.linked));
        self.span(&trace, &format!("process {dest}"), 5, host, &a);
    }

    /// A settle by `group`.
    pub fn settle(&mut self, m: &Msg, group: &str, outcome: &str, host: Host) {
        let dest = m
            .consumer_destination
            .clone()
            .unwrap_or_else(|| m.stream.clone());
        let mut a = Self::common(m, "consume_ack", &dest);
        a.push((attr::MESSAGING_CONSUMER_GROUP_NAME, Val::S(group)));
        a.push((attr::CONSUMER_ID, Val::S("c-1")));
        a.push((attr::OUTCOME, Val::S(outcome)));
        let trace = m.trace_id(u64::from(m.linked));
        self.span(&trace, &format!("ack {dest}"), 3, host, &a);
    }

    /// An exporter's telemetry report (a `mqtrace telemetry` span, as mqtrace-export writes
    /// one at start, with every export and at shutdown): `instance` is the pipeline's id,
    /// `dropped` its cumulative drop count, `is_final` true on the shutdown report. Its end
    /// is the report's (export) time.
    pub fn telemetry(&mut self, instance: &str, dropped: i64, is_final: bool, host: Host) {
        let trace = format!("{:032x}", 0x7e1e_u128 << 64 | u128::from(self.span_ids));
        self.span(
            &trace,
            mqtrace_vocab::TELEMETRY_SPAN_NAME,
            1,
            host,
            &[
                (attr::TELEMETRY_DROPPED, Val::I(dropped)),
                (attr::TELEMETRY_FINAL, Val::B(is_final)),
                (attr::TELEMETRY_INSTANCE, Val::S(instance)),
            ],
        );
    }

    /// A span that has nothing to do with messaging.
    pub fn unrelated(&mut self, host: Host) {
        let trace = format!("{:032x}", 0xabcdef_u128 + u128::from(self.span_ids));
        self.span(
            &trace,
            "GET /health",
            2,
            host,
            &[("http.request.method", Val::S("GET"))],
        );
    }

    /// A message that went through every stage once, for each group.
    pub fn healthy(&mut self, m: &Msg, position: &str, groups: &[&str]) {
        self.produce(m, 1, Host::PRODUCER);
        self.store_ack(m, 1, "ok", Some(position), Host::PRODUCER);
        for g in groups {
            self.deliver(m, g, Some(position), 1, Host::CONSUMER);
            self.settle(m, g, "ack", Host::CONSUMER);
        }
    }
}

enum Val<'a> {
    S(&'a str),
    I(i64),
    B(bool),
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}
