//! OTLP JSON lines: one `ExportTraceServiceRequest` per line, as the OpenTelemetry Collector's
//! file exporter writes them. Parsed with borrowed strings straight into the span columns;
//! fields the analyzer does not need are skipped without being built.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

use super::chunk::ChunkOutput;
use super::extract::{Extracted, KeptAttributes, Key, Scalar, TraceId, extract, known_key};

/// Streams an `ExportTraceServiceRequest` into the columns: no request, span or attribute
/// list is ever built, and only the attributes the analyzer reads are kept (in `scratch`).
struct RequestSeed<'o, 's, 'de> {
    out: &'o mut ChunkOutput,
    scratch: &'s mut KeptAttributes<'de>,
    line: u64,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_, '_, 'de> {
    /// Whether the object had `resourceSpans`.
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_, '_, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP ExportTraceServiceRequest object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut saw = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "resourceSpans" {
                saw = true;
                map.next_value_seed(Each(Level::Resource, self.out, self.scratch, self.line))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(saw)
    }
}

/// Which object a list holds.
#[derive(Clone, Copy)]
enum Level {
    Resource,
    Scope,
    Span,
}

/// A list of objects at one level; each is visited in place.
struct Each<'o, 's, 'de>(Level, &'o mut ChunkOutput, &'s mut KeptAttributes<'de>, u64);

impl<'de> DeserializeSeed<'de> for Each<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Each<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Each(level, out, scratch, line) = self;
        while seq
            .next_element_seed(One(level, &mut *out, &mut *scratch, line))?
            .is_some()
        {}
        Ok(())
    }
}

/// One object of a list: a resource's or scope's spans are descended into, a span is taken.
struct One<'o, 's, 'de>(Level, &'o mut ChunkOutput, &'s mut KeptAttributes<'de>, u64);

impl<'de> DeserializeSeed<'de> for One<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for One<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let One(level, out, scratch, line) = self;
        let child = match level {
            Level::Resource => Some(("scopeSpans", Level::Scope)),
            Level::Scope => Some(("spans", Level::Span)),
            Level::Span => None,
        };
        if let Some((field, next)) = child {
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == field {
                    map.next_value_seed(Each(next, &mut *out, &mut *scratch, line))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            return Ok(());
        }
        // A span.
        scratch.clear();
        let (mut trace_id, mut name, mut start, mut end) = (None, None, None, None);
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "traceId" => trace_id = Some(map.next_value::<Scalar<'de>>()?),
                "name" => name = Some(map.next_value::<Scalar<'de>>()?),
                "startTimeUnixNano" => start = Some(map.next_value::<Scalar<'de>>()?),
                "endTimeUnixNano" => end = Some(map.next_value::<Scalar<'de>>()?),
                "attributes" => map.next_value_seed(Attributes(&mut *scratch))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        out.stats.spans += 1;
        if let Err(reason) = take_span(trace_id, name, start, end, scratch, out) {
            out.malformed_line(line, reason);
        }
        Ok(())
    }
}

/// A span's attribute list: keeps the ones the analyzer reads, as `(Key, value)`.
struct Attributes<'s, 'de>(&'s mut KeptAttributes<'de>);

impl<'de> DeserializeSeed<'de> for Attributes<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Attributes<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of attributes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(kv) = seq.next_element::<KeyValue<'de>>()? {
            if let Some(key) = known_key(&kv.key) {
                self.0
                    .push((key, kv.value.map_or(Scalar::Other, AnyValue::into_scalar)));
            }
        }
        Ok(())
    }
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

/// Parses one line into `out`; `Err` is the reason the whole line is unusable. `scratch` is
/// reused across the lines of a piece (they share the buffer `'de`).
pub fn parse_line<'de>(
    line: &'de [u8],
    line_no: u64,
    out: &mut ChunkOutput,
    scratch: &mut KeptAttributes<'de>,
) -> Result<(), String> {
    parse_line_with(line, line_no, out, scratch, true)
}

/// [`parse_line`], with or without the fast path (the tests compare both).
fn parse_line_with<'de>(
    line: &'de [u8],
    line_no: u64,
    out: &mut ChunkOutput,
    scratch: &mut KeptAttributes<'de>,
    fast: bool,
) -> Result<(), String> {
    // Counts of a line that turns out bad must not stay: parse into a fresh output first
    // only when needed is costly, so roll back by hand instead.
    let (spans, messaging, rows, bad) = (
        out.stats.spans,
        out.stats.messaging_spans,
        out.columns.len(),
        out.stats.malformed.len(),
    );
    // Validating the line once is much cheaper than serde_json's check of every string.
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "not UTF-8 text (byte {} of the line): not OTLP JSON",
            e.valid_up_to()
        )
    })?;
    let rollback = |out: &mut ChunkOutput| {
        out.stats.spans = spans;
        out.stats.messaging_spans = messaging;
        out.columns.truncate(rows);
        out.stats.malformed.truncate(bad);
    };
    // The fast path reads well-formed lines; the rest come here for a precise reason.
    if fast {
        match super::otlp_scan::scan_line(text, line_no, out, scratch) {
            Ok(true) => {
                out.stats.records += 1;
                return Ok(());
            }
            Ok(false) | Err(_) => rollback(out),
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let result = RequestSeed {
        out: &mut *out,
        scratch,
        line: line_no,
    }
    .deserialize(&mut de)
    .and_then(|saw| de.end().map(|()| saw));
    let reason = match result {
        Ok(true) => {
            out.stats.records += 1;
            return Ok(());
        }
        Ok(false) => {
            "valid JSON but not an OTLP ExportTraceServiceRequest: no \"resourceSpans\"".to_owned()
        }
        Err(e) => {
            if serde_json::from_slice::<IgnoredAny>(line).is_ok() {
                format!("valid JSON but not an OTLP ExportTraceServiceRequest: {e}")
            } else if e.is_eof() {
                format!("incomplete JSON (a torn write?): {e}")
            } else {
                format!("not JSON: {e}")
            }
        }
    };
    rollback(out);
    Err(reason)
}

pub(super) fn take_span<'de>(
    trace_id: Option<Scalar<'de>>,
    name: Option<Scalar<'de>>,
    start: Option<Scalar<'de>>,
    end: Option<Scalar<'de>>,
    values: &[(Key, Scalar<'de>)],
    out: &mut ChunkOutput,
) -> Result<(), String> {
    let start = nanos(start.as_ref(), "startTimeUnixNano")?;
    let end = nanos(end.as_ref(), "endTimeUnixNano")?;
    out.observe_window(start, end);
    let trace_id = match &trace_id {
        Some(Scalar::Str(s)) => s.as_ref(),
        _ => "",
    };
    let name = match &name {
        Some(Scalar::Str(s)) => s.as_ref(),
        _ => "",
    };
    match extract(
        TraceId::Hex(trace_id),
        start,
        end,
        values.iter().map(|(k, v)| (*k, v)),
    ) {
        Ok(Extracted::Other) => {
            out.telemetry_report(name, values);
            Ok(())
        }
        Ok(Extracted::Unkeyed) => {
            out.stats.messaging_spans += 1;
            Ok(())
        }
        Ok(Extracted::Keyed(row)) => {
            out.stats.messaging_spans += 1;
            out.columns.push(row);
            Ok(())
        }
        Err(reason) => {
            out.stats.messaging_spans += 1;
            Err(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtrace_tracegen::{Host, Msg, Traces};

    /// Both readers over the same lines: the fast path must read exactly what serde reads.
    fn both(lines: &str) -> (String, String) {
        let run = |fast: bool| {
            let mut out = ChunkOutput::default();
            let mut scratch = Vec::new();
            let mut errors = Vec::new();
            for (i, line) in lines.lines().enumerate() {
                if let Err(e) =
                    parse_line_with(line.as_bytes(), i as u64 + 1, &mut out, &mut scratch, fast)
                {
                    errors.push(e);
                }
            }
            // The dictionaries' hash maps print in any order; their `values` say the same.
            let mut text = format!("{out:?} {errors:?}");
            while let Some(at) = text.find("codes: {") {
                let end = text[at..]
                    .find("}, values")
                    .map_or(text.len(), |e| at + e + 3);
                text.replace_range(at..end, "");
            }
            text
        };
        (run(true), run(false))
    }

    /// Equal, or a readable window around the first difference.
    fn assert_same(fast: &str, slow: &str) {
        if let Some(at) = fast.bytes().zip(slow.bytes()).position(|(a, b)| a != b) {
            let from = at.saturating_sub(80);
            panic!(
                "fast: …{}…\nslow: …{}…",
                fast.get(from..at + 80).unwrap_or(fast),
                slow.get(from..at + 80).unwrap_or(slow)
            );
        }
        assert_eq!(fast.len(), slow.len());
    }

    #[test]
    fn the_fast_path_reads_what_serde_reads() {
        let mut t = Traces::new();
        for seq in 1..=50 {
            let m = Msg::new("p1", "orders", seq).on("3");
            t.healthy(&m, &format!("3/{seq}"), &["shipping", "billing"]);
            t.unrelated(Host::PRODUCER);
        }
        t.produce(&Msg::new("p\\u00e9\"q", "orders", 51), 1, Host::PRODUCER);
        let (fast, slow) = both(&t.finish());
        assert!(fast.contains("spans: 351"), "{}", &fast[..200]);
        assert_same(&fast, &slow);
    }

    #[test]
    fn bad_lines_get_the_same_reason_either_way() {
        let lines = [
            "{",
            "not json",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab","attributes":[{"key":"mqtrace.stage","value":{"stringValue":"produce"}},{"key":"mqtrace.producer.id","value":{"stringValue":"p"}},{"key":"mqtrace.stream","value":{"stringValue":"s"}},{"key":"mqtrace.seq","value":{"intValue":"1"}}]}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"mqtrace.seq","value":{"stringValue":"1"}},{"key":"mqtrace.stage","value":{"stringValue":"produce"}}]}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"x"}]}]}]}"#,
            r#"{"other":1}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"value":{}}]}]}]}]}"#,
        ]
        .join("\n");
        let (fast, slow) = both(&lines);
        assert_same(&fast, &slow);
    }
}
