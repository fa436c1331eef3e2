//! Messaging spans without mqtrace's numbering (SPEC §4b), as the analyzer's semconv path
//! reads them: what the span did, its place in its trace (span id, parent, links), its
//! status, its service, and the convention attributes of either generation
//! ([`mqtrace_vocab::semconv`]), typed once. Every reader hands them over through the sink,
//! so that a span reads the same whichever encoding carried it.

use mqtrace_vocab::semconv::Role;
use std::collections::HashSet;
use std::sync::Arc;

use crate::attrs::{Key, Scalar, trace_id_bits};

/// Names shared by many spans (services, destinations, groups, operations, partitions),
/// kept once per reader piece: a span holds a pointer, not a copy of its own.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    names: HashSet<Arc<str>>,
}

impl Interner {
    /// The shared copy of `name`. A piece holds far fewer distinct names than spans; a
    /// hostile input of unique names costs what copies would (one per span).
    pub(crate) fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(Arc::clone(&n));
        n
    }
}

/// How many links of one span are kept: a batch receive links to each message it took; more
/// than this many are counted in [`SemSpan::links_dropped`], not kept.
pub const MAX_LINKS: usize = 1024;

/// A span's place in its trace and its outcome, as a reader found them (every span gets
/// one; only messaging spans without numbering keep it).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Context<'a> {
    /// Its span id (`None` if absent or not 16 hex digits / 8 bytes).
    pub(crate) span_id: Option<u64>,
    /// Its parent's span id.
    pub(crate) parent: Option<u64>,
    /// `Span.kind` (0 when absent or unknown).
    pub(crate) kind: i64,
    /// `Status.code` (0 unset, 1 ok, 2 error).
    pub(crate) status: i64,
    /// (trace id, span id) of each link (at most [`MAX_LINKS`]).
    pub(crate) links: &'a [(u128, u64)],
    /// Links beyond [`MAX_LINKS`] or with ids that are not ids.
    pub(crate) links_dropped: u32,
}

/// `Status.code` ERROR.
pub const STATUS_ERROR: i64 = 2;

/// A span id's 64 bits from 16 hex digits.
pub(crate) fn span_id_hex(text: &str) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok().filter(|_| {
        // from_str_radix takes a leading `+`: ids are digits only.
        text.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A span id's 64 bits from 8 bytes (protobuf).
pub(crate) fn span_id_bytes(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// A trace id's 128 bits from 16 bytes (protobuf).
pub(crate) fn trace_id_bytes(bytes: &[u8]) -> Option<u128> {
    <[u8; 16]>::try_from(bytes).ok().map(u128::from_be_bytes)
}

/// An id field of OTLP JSON (a hex string), as bits.
pub(crate) fn json_span_id(value: Option<&Scalar<'_>>) -> Option<u64> {
    match value {
        Some(Scalar::Str(s)) => span_id_hex(s),
        _ => None,
    }
}

/// A trace id field of OTLP JSON, as bits.
pub(crate) fn json_trace_id(value: Option<&Scalar<'_>>) -> Option<u128> {
    match value {
        Some(Scalar::Str(s)) => trace_id_bits(s),
        _ => None,
    }
}

/// An enum field of OTLP JSON (`kind`, `status.code`): an integer as the OTLP JSON mapping
/// writes it, or the enum's name as protobuf's own JSON mapping writes it.
pub(crate) fn json_enum(value: Option<&Scalar<'_>>, names: &[&str]) -> i64 {
    match value {
        Some(Scalar::Int(i)) => *i,
        Some(Scalar::IntText(t)) => t.parse().unwrap_or(0),
        Some(Scalar::Str(s)) => names.iter().position(|n| n == s).map_or(0, |i| i as i64),
        _ => 0,
    }
}

/// `Span.SpanKind`'s names, by value.
pub(crate) const KIND_NAMES: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

/// `Status.StatusCode`'s names, by value.
pub(crate) const STATUS_NAMES: &[&str] =
    &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// Collects a span's links as a reader meets them: kept up to [`MAX_LINKS`], the rest (and
/// links whose ids are not ids) counted.
#[derive(Debug, Default)]
pub(crate) struct Links {
    pub(crate) kept: Vec<(u128, u64)>,
    pub(crate) dropped: u32,
}

impl Links {
    pub(crate) fn clear(&mut self) {
        self.kept.clear();
        self.dropped = 0;
    }

    pub(crate) fn push(&mut self, trace: Option<u128>, span: Option<u64>) {
        match (trace, span) {
            (Some(t), Some(s)) if self.kept.len() < MAX_LINKS => self.kept.push((t, s)),
            _ => self.dropped = self.dropped.saturating_add(1),
        }
    }
}

/// A shared name.
pub type Name = Arc<str>;

/// A messaging span without numbering, with what SPEC §4b reads from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SemSpan {
    /// `Span.kind` (0 for a value outside OTLP's).
    pub kind: u8,
    /// Status ERROR.
    pub error: bool,
    /// Trace id (0: absent or not 32 hex digits; OTLP makes an all-zero id invalid).
    pub trace_id: u128,
    /// Span id (0: absent or not an id).
    pub span_id: u64,
    /// Parent span id (0: none).
    pub parent: u64,
    /// Links (trace id, span id).
    pub links: Box<[(u128, u64)]>,
    /// Links not kept (beyond the bound, or unreadable).
    pub links_dropped: u32,
    /// The resource's `service.name`.
    pub service: Option<Name>,
    /// The destination as this side names it.
    pub destination: Option<Name>,
    /// `messaging.operation.type` (or the old `messaging.operation`).
    pub operation: Option<Name>,
    /// `messaging.operation.name`.
    pub operation_name: Option<Name>,
    /// The message id.
    pub message_id: Option<String>,
    /// The consumer group.
    pub group: Option<Name>,
    /// The partition.
    pub partition: Option<Name>,
    /// The Kafka offset.
    pub offset: Option<i64>,
    /// RabbitMQ's routing key.
    pub routing_key: Option<Name>,
    /// mqtrace's own `mqtrace.outcome` (a stage span of a message that carried no numbering).
    pub outcome: Option<Name>,
    /// End, ns since the epoch.
    pub end_ns: i64,
}

impl SemSpan {
    /// The span as its reader found it; attribute values of an unexpected type are left out
    /// (a third-party span is not held to mqtrace's contract).
    pub(crate) fn new(
        names: &mut Interner,
        trace_id: Option<u128>,
        context: Context<'_>,
        values: &[(Key, Scalar<'_>)],
        end_ns: i64,
    ) -> SemSpan {
        let mut span = SemSpan {
            kind: u8::try_from(context.kind).unwrap_or(0),
            error: context.status == STATUS_ERROR,
            trace_id: trace_id.unwrap_or(0),
            span_id: context.span_id.unwrap_or(0),
            parent: context.parent.unwrap_or(0),
            links: context.links.into(),
            links_dropped: context.links_dropped,
            end_ns,
            ..SemSpan::default()
        };
        // The rank each role's value came from: a current key beats an older one whatever
        // their order.
        let mut ranks = [u8::MAX; 9];
        for (key, value) in values {
            let (role, rank) = match key {
                Key::Semconv(role, rank) => (*role, *rank),
                Key::ConsumerGroup => (Role::ConsumerGroup, 0),
                Key::Partition => (Role::Partition, 0),
                Key::MessageId => (Role::MessageId, 0),
                Key::Outcome => {
                    span.outcome = text(value).map(|t| names.name(&t));
                    continue;
                }
                _ => continue,
            };
            let slot = &mut ranks[role as usize];
            if rank >= *slot {
                continue;
            }
            let taken = match role {
                Role::Offset => match value {
                    Scalar::Int(i) => {
                        span.offset = Some(*i);
                        true
                    }
                    // A value that is no number leaves a good one of an older key in place.
                    Scalar::IntText(t) | Scalar::Str(t) => match t.parse() {
                        Ok(o) => {
                            span.offset = Some(o);
                            true
                        }
                        Err(_) => false,
                    },
                    _ => false,
                },
                Role::MessageId => {
                    let Some(v) = text(value) else { continue };
                    span.message_id = Some(v.into_owned());
                    true
                }
                _ => {
                    let Some(v) = text(value) else { continue };
                    let field = match role {
                        Role::Destination => &mut span.destination,
                        Role::OperationType => &mut span.operation,
                        Role::OperationName => &mut span.operation_name,
                        Role::ConsumerGroup => &mut span.group,
                        Role::Partition => &mut span.partition,
                        Role::RoutingKey => &mut span.routing_key,
                        Role::System | Role::Offset | Role::MessageId => continue,
                    };
                    *field = Some(names.name(&v));
                    true
                }
            };
            if taken {
                *slot = rank;
            }
        }
        span
    }

    /// (trace id, span id), where both are ids.
    pub fn key(&self) -> Option<(u128, u64)> {
        (self.trace_id != 0 && self.span_id != 0).then_some((self.trace_id, self.span_id))
    }

    /// (trace id, parent span id), where both are ids.
    pub fn parent_key(&self) -> Option<(u128, u64)> {
        (self.trace_id != 0 && self.parent != 0).then_some((self.trace_id, self.parent))
    }

    /// The trace id, where it is one.
    pub fn trace(&self) -> Option<u128> {
        (self.trace_id != 0).then_some(self.trace_id)
    }
}

/// A string, or an int written as text (partitions, ids): as text; anything else, and an
/// empty string (amqplib names the default exchange `""`; an empty id names no message), none.
fn text<'a>(value: &'a Scalar<'_>) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    match value {
        Scalar::Str(s) if s.is_empty() => None,
        Scalar::Str(s) => Some(Cow::Borrowed(s.as_ref())),
        Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
        Scalar::IntText(t) => t.parse::<i64>().ok().map(|i| Cow::Owned(i.to_string())),
        _ => None,
    }
}

/// A span as a table of text holds it: the OpenTelemetry Collector's ClickHouse table
/// (`otel_traces`) writes ids as hex, the kind and the status by name (`Producer`, `Error`)
/// and every attribute value as text.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextSpan<'a> {
    /// 32 hex digits.
    pub trace_id: &'a str,
    /// 16 hex digits.
    pub span_id: &'a str,
    /// 16 hex digits, or empty for a root span.
    pub parent: &'a str,
    /// `Producer`, `Consumer`, … (or `SPAN_KIND_PRODUCER`, …).
    pub kind: &'a str,
    /// `Error`, `Ok`, `Unset` (or `STATUS_CODE_ERROR`, …).
    pub status: &'a str,
    /// The resource's `service.name` (empty: none).
    pub service: &'a str,
    /// Links as (trace id, span id).
    pub links: &'a [(&'a str, &'a str)],
    /// The span's attributes (only those a reader keeps are looked at).
    pub attributes: &'a [(&'a str, &'a str)],
    /// End, ns since the epoch.
    pub end_ns: i64,
}

/// Messaging spans without numbering built from text rows ([`TextSpan`]), read exactly as
/// the file readers read the same span (an int attribute written as text reads as the int).
#[derive(Debug, Default)]
pub struct TextSpans {
    names: Interner,
    spans: Vec<SemSpan>,
}

impl TextSpans {
    /// Takes one span.
    pub fn push(&mut self, span: &TextSpan<'_>) {
        let values: Vec<(Key, Scalar<'_>)> = span
            .attributes
            .iter()
            .filter_map(|(k, v)| Some((crate::attrs::known_key(k)?, Scalar::Str((*v).into()))))
            .collect();
        let mut links = Links::default();
        for (trace, id) in span.links {
            links.push(trace_id_bits(trace), span_id_hex(id));
        }
        let context = Context {
            span_id: span_id_hex(span.span_id),
            parent: span_id_hex(span.parent),
            kind: text_enum(span.kind, "SPAN_KIND_", KIND_NAMES),
            status: text_enum(span.status, "STATUS_CODE_", STATUS_NAMES),
            links: &links.kept,
            links_dropped: links.dropped,
        };
        let mut sem = SemSpan::new(
            &mut self.names,
            trace_id_bits(span.trace_id),
            context,
            &values,
            span.end_ns,
        );
        if !span.service.is_empty() {
            sem.service = Some(self.names.name(span.service));
        }
        self.spans.push(sem);
    }

    /// The spans taken.
    pub fn finish(self) -> Vec<SemSpan> {
        self.spans
    }
}

/// (trace id, span id) from their hex text, where both are ids.
pub fn ids_from_hex(trace: &str, span: &str) -> Option<(u128, u64)> {
    Some((trace_id_bits(trace)?, span_id_hex(span)?))
}

/// An enum by name, with or without its protobuf prefix, in any case: `Producer`,
/// `SPAN_KIND_PRODUCER`; 0 for a name not in `names`.
fn text_enum(text: &str, prefix: &str, names: &[&str]) -> i64 {
    names
        .iter()
        .position(|n| {
            n.strip_prefix(prefix)
                .is_some_and(|short| short.eq_ignore_ascii_case(text))
                || n.eq_ignore_ascii_case(text)
        })
        .map_or(0, |i| i as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_row_reads_as_the_json_span_it_came_from() {
        let mut spans = TextSpans::default();
        let links = [
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
            ("not-an-id", "00f067aa0ba902b7"),
        ];
        let attributes = [
            ("messaging.destination.name", "orders"),
            ("messaging.kafka.message.offset", "17"),
            ("messaging.destination.partition.id", "3"),
            ("messaging.message.id", ""),
            ("messaging.message_id", "m-1"),
            ("http.method", "GET"),
        ];
        spans.push(&TextSpan {
            trace_id: "4BF92F3577B34DA6A3CE929D0E0E4736",
            span_id: "00f067aa0ba902b8",
            parent: "",
            kind: "Consumer",
            status: "Error",
            service: "billing",
            links: &links,
            attributes: &attributes,
            end_ns: 5,
        });
        let span = &spans.finish()[0];
        assert_eq!(span.kind, 5);
        assert!(span.error);
        assert_eq!(span.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(span.parent, 0);
        assert_eq!(
            &*span.links,
            [(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7)]
        );
        assert_eq!(span.links_dropped, 1);
        assert_eq!(span.offset, Some(17));
        assert_eq!(span.partition.as_deref(), Some("3"));
        // An empty current key leaves the older one's id.
        assert_eq!(span.message_id.as_deref(), Some("m-1"));
        assert_eq!(span.service.as_deref(), Some("billing"));
        assert_eq!(text_enum("SPAN_KIND_PRODUCER", "SPAN_KIND_", KIND_NAMES), 4);
        assert_eq!(text_enum("Unset", "STATUS_CODE_", STATUS_NAMES), 0);
        assert_eq!(text_enum("sideways", "SPAN_KIND_", KIND_NAMES), 0);
    }
    use crate::attrs::known_key;
    use std::borrow::Cow;

    fn s(v: &str) -> Scalar<'_> {
        Scalar::Str(Cow::Borrowed(v))
    }

    #[test]
    fn current_keys_win_over_older_ones_whatever_the_order() {
        let values: Vec<(Key, Scalar<'_>)> = [
            ("messaging.destination", s("old")),
            ("messaging.destination.name", s("new")),
            ("messaging.kafka.partition", Scalar::Int(3)),
            (
                "messaging.kafka.message.offset",
                Scalar::IntText(Cow::Borrowed("17")),
            ),
            ("messaging.kafka.consumer.group", s("g1")),
            ("messaging.message_id", s("m-1")),
            ("messaging.operation", s("receive")),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((known_key(k)?, v)))
        .collect();
        let span = SemSpan::new(
            &mut Interner::default(),
            None,
            Context::default(),
            &values,
            2,
        );
        assert_eq!(span.destination.as_deref(), Some("new"));
        assert_eq!(span.partition.as_deref(), Some("3"));
        assert_eq!(span.offset, Some(17));
        assert_eq!(span.group.as_deref(), Some("g1"));
        assert_eq!(span.message_id.as_deref(), Some("m-1"));
        assert_eq!(span.operation.as_deref(), Some("receive"));
    }

    #[test]
    fn ids_and_enums_read_in_either_form() {
        assert_eq!(span_id_hex("00f067aa0ba902b7"), Some(0x00f0_67aa_0ba9_02b7));
        assert_eq!(span_id_hex("+0f067aa0ba902b7"), None);
        assert_eq!(span_id_hex("00f067aa"), None);
        assert_eq!(span_id_bytes(&[0, 0, 0, 0, 0, 0, 0, 9]), Some(9));
        assert_eq!(json_enum(Some(&Scalar::Int(4)), KIND_NAMES), 4);
        assert_eq!(json_enum(Some(&s("SPAN_KIND_CONSUMER")), KIND_NAMES), 5);
        assert_eq!(json_enum(Some(&s("STATUS_CODE_ERROR")), STATUS_NAMES), 2);
        assert_eq!(json_enum(None, STATUS_NAMES), 0);
    }
}

/// The same third-party spans in every encoding and field order: the JSON readers and the
/// protobuf reader must keep the same [`SemSpan`]s.
#[cfg(test)]
mod encodings {
    use super::*;
    use crate::json::{Readers, read_lines};
    use mqtrace_vocab::semconv::span_kind;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, span::Event, span::Link,
    };

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SEND: &str = "00f067aa0ba902b7";

    /// A producer span, then a consumer span linked to it with ERROR, events (skipped)
    /// and old-generation keys; the resource after its spans.
    const LINE: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","parentSpanId":"1111111111111111","name":"publish orders","kind":4,"startTimeUnixNano":"10","endTimeUnixNano":"20","attributes":[{"key":"messaging.system","value":{"stringValue":"rabbitmq"}},{"key":"messaging.destination","value":{"stringValue":"orders"}},{"key":"messaging.rabbitmq.routing_key","value":{"stringValue":"order.created"}}],"status":{}},{"events":[{"name":"retry"},{"name":"exception","attributes":[{"key":"exception.type","value":{"stringValue":"E"}}]}],"links":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","flags":769},{"traceId":"zz","spanId":"00f067aa0ba902b7"}],"status":{"message":"nack","code":2},"traceId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","spanId":"2222222222222222","name":"orders process","kind":"SPAN_KIND_CONSUMER","startTimeUnixNano":"30","endTimeUnixNano":"40","attributes":[{"key":"messaging.operation","value":{"stringValue":"process"}},{"key":"messaging.kafka.consumer.group","value":{"stringValue":"billing"}},{"key":"messaging.kafka.partition","value":{"intValue":"3"}},{"key":"messaging.kafka.message.offset","value":{"intValue":"17"}},{"key":"messaging.message_id","value":{"stringValue":"m-1"}}]}]}],"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders-svc"}}]}}]}"#;

    fn json_spans(line: &str, readers: Readers) -> Vec<SemSpan> {
        let mut sink = read_lines(line.as_bytes(), readers);
        assert_eq!(sink.stats.malformed_total, 0, "{:?}", sink.stats.malformed);
        sink.take_semconv().0
    }

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn proto_spans() -> Vec<SemSpan> {
        let text = |s: &str| Value::StringValue(s.to_owned());
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", text("orders-svc"))],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        Span {
                            trace_id: hex(TRACE),
                            span_id: hex(SEND),
                            parent_span_id: hex("1111111111111111"),
                            name: "publish orders".into(),
                            kind: 4,
                            start_time_unix_nano: 10,
                            end_time_unix_nano: 20,
                            attributes: vec![
                                kv("messaging.system", text("rabbitmq")),
                                kv("messaging.destination", text("orders")),
                                kv("messaging.rabbitmq.routing_key", text("order.created")),
                            ],
                            ..Span::default()
                        },
                        Span {
                            trace_id: hex(&"a".repeat(32)),
                            span_id: hex("2222222222222222"),
                            name: "orders process".into(),
                            kind: 5,
                            start_time_unix_nano: 30,
                            end_time_unix_nano: 40,
                            attributes: vec![
                                kv("messaging.operation", text("process")),
                                kv("messaging.kafka.consumer.group", text("billing")),
                                kv("messaging.kafka.partition", Value::IntValue(3)),
                                kv("messaging.kafka.message.offset", Value::IntValue(17)),
                                kv("messaging.message_id", text("m-1")),
                            ],
                            events: vec![
                                Event {
                                    name: "retry".into(),
                                    ..Event::default()
                                },
                                Event {
                                    name: "exception".into(),
                                    ..Event::default()
                                },
                            ],
                            links: vec![
                                Link {
                                    trace_id: hex(TRACE),
                                    span_id: hex(SEND),
                                    ..Link::default()
                                },
                                Link {
                                    trace_id: vec![1, 2],
                                    span_id: hex(SEND),
                                    ..Link::default()
                                },
                            ],
                            status: Some(Status {
                                message: "nack".into(),
                                code: 2,
                            }),
                            ..Span::default()
                        },
                    ],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let framed = crate::proto::framed(&request);
        crate::fuzzing::read_protobuf(&framed)
            .into_iter()
            .flat_map(|mut sink| sink.take_semconv().0)
            .collect()
    }

    #[test]
    fn every_encoding_keeps_the_same_third_party_spans() {
        let fast = json_spans(LINE, Readers::Fast);
        assert_eq!(fast, json_spans(LINE, Readers::SerdeOnly));
        assert_eq!(fast, proto_spans());
        let [send, delivery] = &fast[..] else {
            panic!("two spans: {fast:?}");
        };
        assert_eq!(i64::from(send.kind), span_kind::PRODUCER);
        assert_eq!(send.service.as_deref(), Some("orders-svc"));
        assert_eq!(send.destination.as_deref(), Some("orders"));
        assert_eq!(send.routing_key.as_deref(), Some("order.created"));
        assert_eq!(send.parent, 0x1111_1111_1111_1111);
        assert!(!send.error);
        assert_eq!(i64::from(delivery.kind), span_kind::CONSUMER);
        assert!(delivery.error);
        assert_eq!(
            &delivery.links[..],
            [(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
                0x00f0_67aa_0ba9_02b7
            )]
        );
        assert_eq!(delivery.links_dropped, 1);
        assert_eq!(delivery.group.as_deref(), Some("billing"));
        assert_eq!(delivery.partition.as_deref(), Some("3"));
        assert_eq!(delivery.offset, Some(17));
        assert_eq!(delivery.message_id.as_deref(), Some("m-1"));
        assert_eq!(delivery.service.as_deref(), Some("orders-svc"));
    }

    #[test]
    fn a_resource_before_its_spans_names_them_too_and_nulls_are_absent() {
        let moved = LINE
            .replacen(r#"{"resourceSpans":[{"scopeSpans""#, r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"first"}}]},"scopeSpans""#, 1)
            .replacen(r#","resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders-svc"}}]}"#, "", 1)
            .replacen(r#""status":{}"#, r#""status":null,"links":null,"events":null"#, 1);
        let fast = json_spans(&moved, Readers::Fast);
        assert_eq!(fast, json_spans(&moved, Readers::SerdeOnly));
        assert!(fast.iter().all(|s| s.service.as_deref() == Some("first")));
    }

    #[test]
    fn repeated_span_fields_are_malformed_for_both_readers() {
        for (from, to) in [
            (r#""status":{}"#, r#""status":{},"status":{}"#),
            (
                r#""status":{"message":"nack","code":2}"#,
                r#""status":{"code":1,"code":2}"#,
            ),
            (
                r#""flags":769}"#,
                r#""flags":769,"spanId":"00f067aa0ba902b7"}"#,
            ),
        ] {
            assert!(LINE.contains(from), "{from}");
            let line = LINE.replacen(from, to, 1);
            let (fast, slow) = (
                read_lines(line.as_bytes(), Readers::Fast),
                read_lines(line.as_bytes(), Readers::SerdeOnly),
            );
            assert_eq!(fast.stats.malformed_total, 1, "{to}");
            assert_eq!(fast.comparable(), slow.comparable(), "{to}");
        }
    }
}
