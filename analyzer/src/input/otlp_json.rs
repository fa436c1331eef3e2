//! OTLP JSON lines: one `ExportTraceServiceRequest` per line, as the OpenTelemetry Collector's
//! file exporter writes them. Parsed with borrowed strings straight into the span columns;
//! fields the analyzer does not need are skipped without being built.

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

use super::chunk::ChunkOutput;
use super::extract::{Extracted, Scalar, extract};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    #[serde(borrow)]
    resource_spans: Option<Vec<ResourceSpans<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    #[serde(borrow, default)]
    scope_spans: Vec<ScopeSpans<'a>>,
}

#[derive(Deserialize)]
struct ScopeSpans<'a> {
    #[serde(borrow, default)]
    spans: Vec<Span<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span<'a> {
    #[serde(borrow, default)]
    trace_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    name: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    start_time_unix_nano: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    end_time_unix_nano: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    attributes: Vec<KeyValue<'a>>,
}

#[derive(Deserialize)]
struct KeyValue<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<AnyValue<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue<'a> {
    #[serde(borrow, default)]
    string_value: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    int_value: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    bool_value: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    double_value: Option<Scalar<'a>>,
}

impl<'a> AnyValue<'a> {
    /// The value with its OTLP type applied: `intValue` text becomes `IntText`.
    fn into_scalar(self) -> Scalar<'a> {
        if let Some(v) = self.string_value {
            return match v {
                Scalar::Str(s) => Scalar::Str(s),
                _ => Scalar::Other,
            };
        }
        if let Some(v) = self.int_value {
            return match v {
                Scalar::Str(s) => Scalar::IntText(s),
                Scalar::Int(i) => Scalar::Int(i),
                _ => Scalar::Other,
            };
        }
        if let Some(v) = self.bool_value {
            return v;
        }
        if let Some(v) = self.double_value {
            return v;
        }
        Scalar::Other
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Other, Scalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Double(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A time in ns since the epoch: OTLP JSON writes it as a string of digits.
fn nanos(v: Option<&Scalar<'_>>, field: &str) -> Result<i64, String> {
    match v {
        Some(Scalar::Str(s)) => s
            .parse::<u64>()
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| format!("{field} must be ns since the epoch, got {s:?}")),
        Some(Scalar::Int(n)) if *n >= 0 => Ok(*n),
        Some(_) => Err(format!(
            "{field} must be ns since the epoch (a string of digits)"
        )),
        None => Ok(0),
    }
}

/// Parses one line into `out`; `Err` is the reason the whole line is unusable.
pub fn parse_line(line: &[u8], line_no: u64, out: &mut ChunkOutput) -> Result<(), String> {
    let request: Request<'_> = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => {
            return Err(if serde_json::from_slice::<IgnoredAny>(line).is_ok() {
                format!("valid JSON but not an OTLP ExportTraceServiceRequest: {e}")
            } else if e.is_eof() {
                format!("incomplete JSON (a torn write?): {e}")
            } else {
                format!("not JSON: {e}")
            });
        }
    };
    let Some(resource_spans) = request.resource_spans else {
        return Err(
            "valid JSON but not an OTLP ExportTraceServiceRequest: no \"resourceSpans\"".to_owned(),
        );
    };
    out.records += 1;
    for rs in resource_spans {
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.spans += 1;
                if let Err(reason) = take_span(span, out) {
                    out.malformed_span(line_no, reason);
                }
            }
        }
    }
    Ok(())
}

fn take_span(span: Span<'_>, out: &mut ChunkOutput) -> Result<(), String> {
    let start = nanos(span.start_time_unix_nano.as_ref(), "startTimeUnixNano")?;
    let end = nanos(span.end_time_unix_nano.as_ref(), "endTimeUnixNano")?;
    out.observe_window(start, end);
    let values: Vec<(&'static str, Scalar<'_>)> = span
        .attributes
        .into_iter()
        .filter_map(|kv| {
            let key = known_key(&kv.key);
            (!key.is_empty()).then(|| (key, kv.value.map_or(Scalar::Other, AnyValue::into_scalar)))
        })
        .collect();
    let trace_id = match &span.trace_id {
        Some(Scalar::Str(s)) => s.as_ref(),
        _ => "",
    };
    let name = match &span.name {
        Some(Scalar::Str(s)) => s.as_ref(),
        _ => "",
    };
    match extract(trace_id, start, end, values.iter().map(|(k, v)| (*k, v))) {
        Ok(Extracted::Other) => {
            out.telemetry_report(name, &values);
            Ok(())
        }
        Ok(Extracted::Unkeyed) => {
            out.messaging_spans += 1;
            Ok(())
        }
        Ok(Extracted::Keyed(row)) => {
            out.messaging_spans += 1;
            out.columns.push(row);
            Ok(())
        }
        Err(reason) => {
            out.messaging_spans += 1;
            Err(reason)
        }
    }
}

/// The analyzer's own constant for a key it reads, `messaging.other` for other messaging
/// keys, `""` for keys it ignores: no key is ever copied.
fn known_key(k: &str) -> &'static str {
    use mqtrace::names::attr;
    const KEYS: [&str; 14] = [
        attr::STAGE,
        attr::PRODUCER_ID,
        attr::STREAM,
        attr::SEQ,
        attr::ATTEMPT,
        attr::DELIVERY_COUNT,
        attr::OUTCOME,
        attr::BROKER_POSITION,
        attr::MESSAGING_CONSUMER_GROUP_NAME,
        attr::MESSAGING_DESTINATION_PARTITION_ID,
        attr::MESSAGING_MESSAGE_ID,
        attr::TELEMETRY_DROPPED,
        "mqtrace.telemetry.final",
        "messaging.system",
    ];
    if let Some(known) = KEYS.iter().find(|c| **c == k) {
        return known;
    }
    if k.starts_with("messaging.") {
        "messaging.other"
    } else {
        ""
    }
}
