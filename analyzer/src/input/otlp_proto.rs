//! OTLP protobuf files as the OpenTelemetry Collector's file exporter writes them with
//! `format: proto`: each `ExportTraceServiceRequest` after its length, 4 bytes big-endian.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::borrow::Cow;
use std::io::Read;

use super::chunk::ChunkOutput;
use super::extract::{Extracted, KeptAttributes, Scalar, TraceId, extract, known_key};
use super::files::read_full;

/// Largest record accepted: a length beyond it means the framing is broken.
const MAX_RECORD: usize = 256 << 20;

/// Reads every record of `input` into `out`; problems are recorded with their byte offset.
pub fn read(mut input: impl Read, out: &mut ChunkOutput) {
    let mut offset = 0u64;
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        match read_full(&mut input, &mut len) {
            Ok(0) => return,
            Ok(4) => {}
            Ok(_) => {
                return out.malformed_at(
                    offset,
                    "torn record: the file ends inside a length prefix".to_owned(),
                );
            }
            Err(e) => return out.malformed_at(offset, format!("read error: {e}")),
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_RECORD {
            return out.malformed_at(
                offset,
                format!(
                    "record length {n} is not plausible: not a length-prefixed OTLP protobuf file \
                     (OTLP JSON lines should be named .json or .jsonl)"
                ),
            );
        }
        buf.resize(n, 0);
        match read_full(&mut input, &mut buf) {
            Ok(got) if got == n => {}
            Ok(got) => {
                return out.malformed_at(
                    offset,
                    format!("torn record: {got} of {n} bytes (a torn write?)"),
                );
            }
            Err(e) => return out.malformed_at(offset, format!("read error: {e}")),
        }
        match ExportTraceServiceRequest::decode(buf.as_slice()) {
            Ok(request) => take(request, offset, out),
            Err(e) => out.malformed_at(
                offset,
                format!("not an OTLP ExportTraceServiceRequest: {e}"),
            ),
        }
        offset += 4 + n as u64;
    }
}

fn take(request: ExportTraceServiceRequest, offset: u64, out: &mut ChunkOutput) {
    out.stats.records += 1;
    for rs in request.resource_spans {
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.stats.spans += 1;
                let start = i64::try_from(span.start_time_unix_nano).unwrap_or(i64::MAX);
                let end = i64::try_from(span.end_time_unix_nano).unwrap_or(i64::MAX);
                out.observe_window(start, end);
                let values: KeptAttributes<'_> = span
                    .attributes
                    .iter()
                    .filter_map(|kv| {
                        let key = known_key(&kv.key)?;
                        let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) => Scalar::Str(Cow::Borrowed(s.as_str())),
                            Some(Value::IntValue(i)) => Scalar::Int(*i),
                            Some(Value::BoolValue(b)) => Scalar::Bool(*b),
                            Some(Value::DoubleValue(d)) => Scalar::Double(*d),
                            _ => Scalar::Other,
                        };
                        Some((key, v))
                    })
                    .collect();
                let trace_id = TraceId::Bytes(&span.trace_id);
                let result = extract(trace_id, start, end, values.iter().map(|(k, v)| (*k, v)));
                match result {
                    Ok(Extracted::Other) => out.telemetry_report(&span.name, &values),
                    Ok(Extracted::Unkeyed) => out.stats.messaging_spans += 1,
                    Ok(Extracted::Keyed(row)) => {
                        out.stats.messaging_spans += 1;
                        out.columns.push(row);
                    }
                    Err(reason) => {
                        out.stats.messaging_spans += 1;
                        out.malformed_at(offset, reason);
                    }
                }
            }
        }
    }
}
