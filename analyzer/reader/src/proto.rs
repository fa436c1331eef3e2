//! OTLP protobuf files as the OpenTelemetry Collector's file exporter writes them with
//! `format: proto`: each `ExportTraceServiceRequest` after its length, 4 bytes big-endian.
//! The framing is read in order; the records of a block are decoded in parallel pieces.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use rayon::prelude::*;
use std::borrow::Cow;
use std::io::Read;

use mqtrace_vocab::limits::MAX_RECORD_BYTES;

use crate::attrs::{KeptAttributes, Scalar, TraceId, known_key};
use crate::files::read_full;
use crate::malformed::Location;
use crate::semconv::{Context, Links, span_id_bytes, trace_id_bytes};
use crate::sink::{Nanos, SpanIn, SpanSink};

/// Record bytes gathered before a block is decoded.
const BLOCK: usize = 32 << 20;

/// Framed records read from a file: their bytes, one after another, and where each starts
/// in the file and ends in `bytes`.
#[derive(Default)]
struct Framed {
    bytes: Vec<u8>,
    records: Vec<(u64, usize)>,
}

/// Reads every record of `input`, handing each block's pieces to `sink` in order; problems
/// are recorded with their byte offset. `progress` is told the bytes read.
pub(crate) fn read(
    mut input: impl Read,
    progress: &(dyn Fn(u64) + Sync),
    sink: &mut dyn FnMut(SpanSink),
) {
    let mut offset = 0u64;
    let mut framed = Framed::default();
    let mut end: Option<SpanSink> = None;
    loop {
        framed.bytes.clear();
        framed.records.clear();
        while framed.bytes.len() < BLOCK && end.is_none() {
            let at = Location::offset(offset);
            let mut len = [0u8; 4];
            match read_full(&mut input, &mut len) {
                Ok(0) => break,
                Ok(4) => {}
                Ok(_) => {
                    end = Some(problem(
                        at,
                        "torn record: the file ends inside a length prefix",
                    ));
                    break;
                }
                Err(e) => {
                    end = Some(problem(at, format!("read error: {e}")));
                    break;
                }
            }
            let n = u32::from_be_bytes(len) as usize;
            if n > MAX_RECORD_BYTES {
                end = Some(problem(
                    at,
                    format!(
                        "record length {n} is over the {} MiB limit: not a length-prefixed OTLP \
                         protobuf file (OTLP JSON lines should be named .json or .jsonl)",
                        MAX_RECORD_BYTES >> 20
                    ),
                ));
                break;
            }
            // Grown as the bytes arrive: a 7-byte file claiming a huge record allocates
            // nothing for it.
            let start = framed.bytes.len();
            let got = match (&mut input).take(n as u64).read_to_end(&mut framed.bytes) {
                Ok(got) => got,
                Err(e) => {
                    framed.bytes.truncate(start);
                    end = Some(problem(at, format!("read error: {e}")));
                    break;
                }
            };
            progress(4 + got as u64);
            if got < n {
                framed.bytes.truncate(start);
                end = Some(problem(
                    at,
                    format!("torn record: {got} of {n} bytes (a torn write?)"),
                ));
                break;
            }
            framed.records.push((offset, framed.bytes.len()));
            offset += 4 + n as u64;
        }
        if framed.records.is_empty() {
            break;
        }
        for piece in decode_block(&framed) {
            sink(piece);
        }
        if end.is_some() {
            break;
        }
    }
    if let Some(problem) = end {
        sink(problem);
    }
}

/// `request` as one length-prefixed record, as the Collector's `format: proto` writes it.
#[cfg(test)]
pub(crate) fn framed(request: &ExportTraceServiceRequest) -> Vec<u8> {
    let bytes = request.encode_to_vec();
    let mut out = u32::try_from(bytes.len())
        .expect("a small request")
        .to_be_bytes()
        .to_vec();
    out.extend(bytes);
    out
}

fn problem(at: Location, reason: impl Into<String>) -> SpanSink {
    let mut sink = SpanSink::default();
    sink.reject_rest(at, reason);
    sink
}

/// Decodes a block's records in parallel pieces, returned in order.
fn decode_block(framed: &Framed) -> Vec<SpanSink> {
    let pieces = rayon::current_num_threads().max(1) * 4;
    let per_piece = framed.records.len().div_ceil(pieces).max(1);
    framed
        .records
        .par_chunks(per_piece)
        .enumerate()
        .map(|(i, records)| {
            let mut sink = SpanSink::default();
            let mut from = match i * per_piece {
                0 => 0,
                k => framed.records[k - 1].1,
            };
            for &(offset, to) in records {
                decode(&framed.bytes[from..to], offset, &mut sink);
                from = to;
            }
            sink
        })
        .collect()
}

/// One record into the sink as one record.
fn decode(bytes: &[u8], offset: u64, sink: &mut SpanSink) {
    let at = Location::offset(offset);
    let request = match ExportTraceServiceRequest::decode(bytes) {
        Ok(r) => r,
        Err(e) => {
            return sink.reject(at, format!("not an OTLP ExportTraceServiceRequest: {e}"));
        }
    };
    sink.begin(at);
    let mut values: KeptAttributes<'_> = Vec::new();
    let mut links = Links::default();
    for rs in &request.resource_spans {
        sink.begin_resource();
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                values.clear();
                values.extend(span.attributes.iter().filter_map(|kv| {
                    let key = known_key(&kv.key)?;
                    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Value::StringValue(s)) => Scalar::Str(Cow::Borrowed(s.as_str())),
                        Some(Value::IntValue(i)) => Scalar::Int(*i),
                        Some(Value::BoolValue(b)) => Scalar::Bool(*b),
                        Some(Value::DoubleValue(d)) => Scalar::Double(*d),
                        _ => Scalar::Other,
                    };
                    Some((key, v))
                }));
                links.clear();
                for link in &span.links {
                    links.push(trace_id_bytes(&link.trace_id), span_id_bytes(&link.span_id));
                }
                let span_in = SpanIn {
                    trace_id: TraceId::Bytes(&span.trace_id),
                    name: &span.name,
                    start: Nanos::Proto(span.start_time_unix_nano),
                    end: Nanos::Proto(span.end_time_unix_nano),
                    context: Context {
                        span_id: span_id_bytes(&span.span_id),
                        parent: span_id_bytes(&span.parent_span_id),
                        kind: i64::from(span.kind),
                        status: span.status.as_ref().map_or(0, |s| i64::from(s.code)),
                        links: &links.kept,
                        links_dropped: links.dropped,
                    },
                };
                sink.span(span_in, &values);
            }
        }
        // The last `service.name` given, as the JSON readers take it.
        let service = rs.resource.as_ref().and_then(|r| {
            r.attributes
                .iter()
                .rev()
                .find(|kv| kv.key == crate::json::SERVICE_NAME)
                .map(
                    |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(Value::StringValue(s)) => Some(s.as_str()),
                        _ => None,
                    },
                )
        });
        sink.end_resource(service.flatten());
    }
    sink.commit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{Readers, read_lines};
    use mqtrace_vocab::{TELEMETRY_SPAN_NAME, attr};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    /// A telemetry report reads the same from protobuf as from JSON: instance, time, final.
    #[test]
    fn telemetry_instances_read_as_from_json() {
        let report = |instance: &str, end: u64, is_final: bool| Span {
            trace_id: vec![7; 16],
            span_id: vec![1; 8],
            name: TELEMETRY_SPAN_NAME.to_owned(),
            start_time_unix_nano: end,
            end_time_unix_nano: end,
            attributes: vec![
                kv(attr::TELEMETRY_DROPPED, Value::IntValue(0)),
                kv(attr::TELEMETRY_FINAL, Value::BoolValue(is_final)),
                kv(
                    attr::TELEMETRY_INSTANCE,
                    Value::StringValue(instance.to_owned()),
                ),
            ],
            ..Span::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![
                        report("a", 10, false),
                        report("b", 20, false),
                        report("a", 30, true),
                    ],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        let framed = framed(&request);
        let mut pieces = Vec::new();
        read(framed.as_slice(), &|_| {}, &mut |p| pieces.push(p));
        let mut proto = crate::InputStats::default();
        for p in pieces {
            proto.merge(p.into_parts().1);
        }

        let json_report = |instance: &str, end: u64, is_final: bool| {
            format!(
                r#"{{"traceId":"07070707070707070707070707070707","name":"{TELEMETRY_SPAN_NAME}","startTimeUnixNano":"{end}","endTimeUnixNano":"{end}","attributes":[{{"key":"{}","value":{{"intValue":"0"}}}},{{"key":"{}","value":{{"boolValue":{is_final}}}}},{{"key":"{}","value":{{"stringValue":"{instance}"}}}}]}}"#,
                attr::TELEMETRY_DROPPED,
                attr::TELEMETRY_FINAL,
                attr::TELEMETRY_INSTANCE
            )
        };
        let line = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{},{},{}]}}]}}]}}"#,
            json_report("a", 10, false),
            json_report("b", 20, false),
            json_report("a", 30, true)
        );
        let json = read_lines(line.as_bytes(), Readers::Fast);
        assert_eq!(json.stats.malformed_total, 0, "{:?}", json.stats.malformed);
        assert_eq!(proto.telemetry, json.stats.telemetry);
        let stopped = proto.telemetry.stopped_instances();
        assert_eq!(stopped.len(), 1);
        assert_eq!(
            (
                stopped[0].instance.as_str(),
                stopped[0].last_report_unix_nano
            ),
            ("b", 20)
        );
    }
}
