//! OTLP JSON written straight from the SDK's span data: the same line that converting to
//! opentelemetry-proto's structs and serializing them with serde gives (the tests compare
//! both), at a fraction of the cost. The export worker runs on the app's cores, so its cost
//! per span is the app's too: going through the proto structs took 2.3 µs a span.

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

/// Span flags bit: the flags say whether the parent is remote (OTLP `SpanFlags`).
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
/// Span flags bit: the parent is remote.
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// One `ExportTraceServiceRequest` line (with its newline) for `batch`.
pub(crate) fn encode_line(batch: &[SpanData], resource: &ResourceAttributesWithSchema) -> Vec<u8> {
    // A batch mostly holds one scope or two: group by a scan, keeping first-seen order.
    let mut scopes: Vec<(&InstrumentationScope, Vec<&SpanData>)> = Vec::new();
    for span in batch {
        match scopes
            .iter_mut()
            .find(|(s, _)| *s == &span.instrumentation_scope)
        {
            Some((_, spans)) => spans.push(span),
            None => scopes.push((&span.instrumentation_scope, vec![span])),
        }
    }
    let mut out = Vec::with_capacity(256 + batch.len() * 900);
    out.extend_from_slice(b"{\"resourceSpans\":[{\"resource\":");
    let proto_resource = opentelemetry_proto::tonic::resource::v1::Resource {
        attributes: resource.attributes.0.clone(),
        dropped_attributes_count: 0,
        entity_refs: Vec::new(),
    };
    serialize(&mut out, &proto_resource);
    out.extend_from_slice(b",\"scopeSpans\":[");
    for (i, (scope, spans)) in scopes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"scope\":");
        let proto_scope: opentelemetry_proto::tonic::common::v1::InstrumentationScope =
            (*scope, None).into();
        serialize(&mut out, &proto_scope);
        out.extend_from_slice(b",\"spans\":[");
        for (j, span) in spans.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_span(&mut out, span);
        }
        out.extend_from_slice(b"],\"schemaUrl\":");
        write_str(&mut out, scope.schema_url().unwrap_or_default());
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"schemaUrl\":");
    write_str(&mut out, resource.schema_url.as_deref().unwrap_or_default());
    out.extend_from_slice(b"}]}\n");
    out
}

/// Serializing plain proto structs into memory cannot fail; should it, the fragment is
/// `null` rather than a torn line.
fn serialize<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

fn write_span(out: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    out.extend_from_slice(b"{\"traceId\":\"");
    hex(out, &cx.trace_id().to_bytes());
    out.extend_from_slice(b"\",\"spanId\":\"");
    hex(out, &cx.span_id().to_bytes());
    out.extend_from_slice(b"\",\"traceState\":");
    write_str(out, &cx.trace_state().header());
    out.extend_from_slice(b",\"parentSpanId\":\"");
    if span.parent_span_id != SpanId::INVALID {
        hex(out, &span.parent_span_id.to_bytes());
    }
    out.extend_from_slice(b"\",\"flags\":");
    int(out, flags(span.parent_span_is_remote, cx));
    out.extend_from_slice(b",\"name\":");
    write_str(out, &span.name);
    out.extend_from_slice(b",\"kind\":");
    int(
        out,
        match span.span_kind {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        },
    );
    out.extend_from_slice(b",\"startTimeUnixNano\":");
    nanos(out, span.start_time);
    out.extend_from_slice(b",\"endTimeUnixNano\":");
    nanos(out, span.end_time);
    out.extend_from_slice(b",\"attributes\":");
    attributes(out, &span.attributes);
    out.extend_from_slice(b",\"droppedAttributesCount\":");
    int(out, span.dropped_attributes_count);
    out.extend_from_slice(b",\"events\":[");
    for (i, event) in span.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"timeUnixNano\":");
        nanos(out, event.timestamp);
        out.extend_from_slice(b",\"name\":");
        write_str(out, &event.name);
        out.extend_from_slice(b",\"attributes\":");
        attributes(out, &event.attributes);
        out.extend_from_slice(b",\"droppedAttributesCount\":");
        int(out, event.dropped_attributes_count);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"droppedEventsCount\":");
    int(out, span.events.dropped_count);
    out.extend_from_slice(b",\"links\":[");
    for (i, link) in span.links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let lcx = &link.span_context;
        out.extend_from_slice(b"{\"traceId\":\"");
        hex(out, &lcx.trace_id().to_bytes());
        out.extend_from_slice(b"\",\"spanId\":\"");
        hex(out, &lcx.span_id().to_bytes());
        out.extend_from_slice(b"\",\"traceState\":");
        write_str(out, &lcx.trace_state().header());
        out.extend_from_slice(b",\"attributes\":");
        attributes(out, &link.attributes);
        out.extend_from_slice(b",\"droppedAttributesCount\":");
        int(out, link.dropped_attributes_count);
        out.extend_from_slice(b",\"flags\":");
        int(out, flags(lcx.is_remote(), lcx));
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"droppedLinksCount\":");
    int(out, span.links.dropped_count);
    out.extend_from_slice(b",\"status\":{\"message\":");
    let (message, code): (&str, u32) = match &span.status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description, 2),
    };
    write_str(out, message);
    out.extend_from_slice(b",\"code\":");
    int(out, code);
    out.extend_from_slice(b"}}");
}

fn flags(parent_is_remote: bool, cx: &SpanContext) -> u32 {
    let mut flags = u32::from(cx.trace_flags().to_u8()) | CONTEXT_HAS_IS_REMOTE;
    if parent_is_remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

fn attributes(out: &mut Vec<u8>, attributes: &[KeyValue]) {
    out.push(b'[');
    for (i, kv) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        write_str(out, kv.key.as_str());
        out.extend_from_slice(b",\"value\":");
        any_value(out, &kv.value);
        out.push(b'}');
    }
    out.push(b']');
}

fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => {
            out.extend_from_slice(if *b {
                b"{\"boolValue\":true}"
            } else {
                b"{\"boolValue\":false}"
            });
        }
        Value::I64(i) => {
            out.extend_from_slice(b"{\"intValue\":\"");
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            out.extend_from_slice(b"\"}");
        }
        Value::F64(f) => {
            out.extend_from_slice(b"{\"doubleValue\":");
            serialize(out, f);
            out.push(b'}');
        }
        Value::String(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            write_str(out, s.as_str());
            out.push(b'}');
        }
        Value::Array(array) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            let mut first = true;
            let mut each = |out: &mut Vec<u8>, v: Value| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                any_value(out, &v);
            };
            match array {
                Array::Bool(v) => v.iter().for_each(|x| each(out, Value::Bool(*x))),
                Array::I64(v) => v.iter().for_each(|x| each(out, Value::I64(*x))),
                Array::F64(v) => v.iter().for_each(|x| each(out, Value::F64(*x))),
                Array::String(v) => v.iter().for_each(|x| each(out, Value::String(x.clone()))),
                // A kind this version does not know: an empty array, not a torn line.
                _ => {}
            }
            out.extend_from_slice(b"]}}");
        }
        // A kind this version does not know.
        _ => out.extend_from_slice(b"{}"),
    }
}

/// A JSON string: most need no escaping and are copied as they are.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serialize(out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn int(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// ns since the epoch, as a string (OTLP JSON's 64-bit integers); 0 before the epoch.
fn nanos(out: &mut Vec<u8>, t: SystemTime) {
    let ns = t
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    out.push(b'"');
    out.extend_from_slice(itoa::Buffer::new().format(ns).as_bytes());
    out.push(b'"');
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        Link, Span as _, SpanContext, TraceContextExt, TraceFlags, TraceState, Tracer,
        TracerProvider,
    };
    use opentelemetry::{Context, StringValue};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone, Default)]
    struct Keep(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Keep {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if let Ok(mut kept) = self.0.lock() {
                kept.extend(batch);
            }
            Ok(())
        }
    }

    /// Spans with everything OTLP JSON can carry: events, links, arrays, doubles, escapes,
    /// error status, remote parents, two scopes.
    fn rich_spans() -> Vec<SpanData> {
        let keep = Keep::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(keep.clone())
            .build();
        let tracer = provider.tracer("mqtrace");
        let other = provider.tracer_with_scope(
            InstrumentationScope::builder("other")
                .with_version("1.2")
                .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
                .with_attributes([KeyValue::new("scope.attr", 1)])
                .build(),
        );
        let remote = SpanContext::new(
            opentelemetry::trace::TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736_u128),
            SpanId::from(0x00f067aa0ba902b7_u64),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).expect("trace state"),
        );
        let mut parent = tracer
            .span_builder("send \"orders\"\n")
            .with_kind(SpanKind::Producer)
            .with_attributes([
                KeyValue::new("s", "plain"),
                KeyValue::new("escaped", "tab\tquote\"back\\slash\u{1}é"),
                KeyValue::new("i", -42_i64),
                KeyValue::new("b", true),
                KeyValue::new("d", 1.5_f64),
                KeyValue::new("whole", 3.0_f64),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2]))),
                KeyValue::new("doubles", Value::Array(Array::F64(vec![0.25]))),
                KeyValue::new(
                    "strings",
                    Value::Array(Array::String(vec![StringValue::from("a\"b")])),
                ),
            ])
            .with_links(vec![Link::new(
                remote.clone(),
                vec![KeyValue::new("link.attr", "v")],
                0,
            )])
            .start(&tracer);
        parent.add_event("retry", vec![KeyValue::new("attempt", 2)]);
        parent.set_status(Status::error("broker said \"no\""));
        let cx = Context::new().with_span(parent);
        let mut child = tracer.start_with_context("ack orders", &cx);
        child.set_status(Status::Ok);
        child.end();
        cx.span().end();
        let remote_cx = Context::new().with_remote_span_context(remote);
        other.start_with_context("process", &remote_cx).end();
        let _ = provider.shutdown();
        let spans = keep.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(spans.len(), 3);
        spans
    }

    #[test]
    fn the_direct_encoder_writes_what_the_proto_structs_serialize_to() {
        let resource = Resource::builder()
            .with_service_name("svc")
            .with_attribute(KeyValue::new("host.name", "h\"1"))
            .with_schema_url(
                [KeyValue::new("deployment", "test")],
                "https://opentelemetry.io/schemas/1.30.0",
            )
            .build();
        let resource = ResourceAttributesWithSchema::from(&resource);
        let spans = rich_spans();
        let direct = encode_line(&spans, &resource);
        let reference = crate::FileExporter::encode_via_proto(spans, &resource);
        assert_eq!(direct.last(), Some(&b'\n'));
        let direct: serde_json::Value = serde_json::from_slice(&direct).expect("valid JSON");
        let reference: serde_json::Value = serde_json::from_slice(&reference).expect("valid JSON");
        assert_eq!(direct, reference);
    }
}
