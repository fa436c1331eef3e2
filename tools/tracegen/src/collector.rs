//! OTLP JSON lines as the OpenTelemetry Collector's ClickHouse exporter would store them: one
//! `JSONEachRow` row per span for its `otel_traces` table, so that tests can load the very
//! traces they analyse from files into a ClickHouse engine and compare the two reports.
//!
//! The mapping is the exporter's: every attribute value becomes a string (`AsString`: ints in
//! decimal, bools as `true`/`false`, doubles in their shortest form, arrays and maps as JSON),
//! the scope's name and version join the span's attributes as `otel.scope.name` /
//! `otel.scope.version`, `ServiceName` is the resource's `service.name`, `Duration` is end −
//! start in ns, span kind and status code are the names pdata prints (`Producer`, `Error`),
//! ids are lower-case hex and an empty id an empty string.
//!
//! ```
//! let line = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"send orders","kind":4,"startTimeUnixNano":"1000000000","endTimeUnixNano":"1000000500","attributes":[{"key":"mqtrace.seq","value":{"intValue":"42"}}]}]}]}]}"#;
//! let rows = mqtrace_tracegen::collector::otel_traces_rows(line).unwrap();
//! assert!(rows.contains(r#""SpanAttributes":{"mqtrace.seq":"42"}"#));
//! assert!(rows.contains(r#""SpanKind":"Producer""#));
//! assert!(rows.contains(r#""Duration":500"#));
//! ```

use serde_json::{Map, Value, json};

/// The rows of every span in `otlp_jsonl` (one OTLP JSON request per line), one JSON object
/// per line; an error names the line that is not an OTLP request.
pub fn otel_traces_rows(otlp_jsonl: &str) -> Result<String, String> {
    let mut out = String::new();
    for (n, line) in otlp_jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let request: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        for rs in array(&request, "resourceSpans") {
            let resource = attributes(rs.get("resource").unwrap_or(&Value::Null));
            let service = resource
                .get("service.name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            for ss in array(rs, "scopeSpans") {
                let scope = ss.get("scope").unwrap_or(&Value::Null);
                for span in array(ss, "spans") {
                    let mut attrs = attributes(span);
                    for (key, field) in [
                        ("otel.scope.name", "name"),
                        ("otel.scope.version", "version"),
                    ] {
                        if let Some(v) = scope.get(field).and_then(Value::as_str)
                            && !v.is_empty()
                        {
                            attrs.insert(key.to_owned(), json!(v));
                        }
                    }
                    let row = row(span, &service, &resource, &attrs)
                        .map_err(|e| format!("line {}: {e}", n + 1))?;
                    out.push_str(&row.to_string());
                    out.push('\n');
                }
            }
        }
    }
    Ok(out)
}

fn row(
    span: &Value,
    service: &str,
    resource: &Map<String, Value>,
    attrs: &Map<String, Value>,
) -> Result<Value, String> {
    let ns = |key: &str| -> Result<u64, String> {
        match span.get(key) {
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| format!("{key} {s:?} is not a number")),
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| format!("{key} {n} is not a u64")),
            _ => Ok(0),
        }
    };
    let (start, end) = (ns("startTimeUnixNano")?, ns("endTimeUnixNano")?);
    let text = |key: &str| span.get(key).and_then(Value::as_str).unwrap_or_default();
    let kind = match span.get("kind").and_then(Value::as_u64).unwrap_or(0) {
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => "Unspecified",
    };
    let status = span.get("status").unwrap_or(&Value::Null);
    let code = match status.get("code").and_then(Value::as_u64).unwrap_or(0) {
        1 => "Ok",
        2 => "Error",
        _ => "Unset",
    };
    let links = array(span, "links");
    let link = |key: &str| -> Vec<Value> {
        links
            .iter()
            .map(|l| json!(l.get(key).and_then(Value::as_str).unwrap_or_default()))
            .collect()
    };
    let link_attrs: Vec<Value> = links.iter().map(|l| Value::Object(attributes(l))).collect();
    let events = array(span, "events");
    Ok(json!({
        // Seconds with nine decimals: how a DateTime64(9) reads an instant from text.
        "Timestamp": format!("{}.{:09}", start / 1_000_000_000, start % 1_000_000_000),
        "TraceId": text("traceId").to_ascii_lowercase(),
        "SpanId": text("spanId").to_ascii_lowercase(),
        "ParentSpanId": text("parentSpanId").to_ascii_lowercase(),
        "TraceState": text("traceState"),
        "SpanName": text("name"),
        "SpanKind": kind,
        "ServiceName": service,
        "ResourceAttributes": resource,
        "ScopeName": "",
        "ScopeVersion": "",
        "SpanAttributes": attrs,
        "Duration": end.saturating_sub(start),
        "StatusCode": code,
        "StatusMessage": status.get("message").and_then(Value::as_str).unwrap_or_default(),
        "Events.Timestamp": events.iter().map(|e| {
            let t = e.get("timeUnixNano").and_then(|v| v.as_str().and_then(|s| s.parse::<u64>().ok()).or(v.as_u64())).unwrap_or(0);
            json!(format!("{}.{:09}", t / 1_000_000_000, t % 1_000_000_000))
        }).collect::<Vec<_>>(),
        "Events.Name": events.iter().map(|e| json!(e.get("name").and_then(Value::as_str).unwrap_or_default())).collect::<Vec<_>>(),
        "Events.Attributes": events.iter().map(|e| Value::Object(attributes(e))).collect::<Vec<_>>(),
        "Links.TraceId": link("traceId"),
        "Links.SpanId": link("spanId"),
        "Links.TraceState": link("traceState"),
        "Links.Attributes": link_attrs,
    }))
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// An OTLP `attributes` list as the exporter's `Map(String, String)`.
fn attributes(v: &Value) -> Map<String, Value> {
    array(v, "attributes")
        .iter()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?;
            Some((key.to_owned(), json!(as_string(kv.get("value")?))))
        })
        .collect()
}

/// pdata's `Value.AsString`.
fn as_string(v: &Value) -> String {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return String::new();
    };
    match (kind.as_str(), inner) {
        ("stringValue", Value::String(s)) => s.clone(),
        ("intValue", Value::String(s)) => s.clone(),
        ("intValue", Value::Number(n)) => n.to_string(),
        ("boolValue", Value::Bool(b)) => b.to_string(),
        ("doubleValue", Value::Number(n)) => n
            .as_f64()
            .map(|f| {
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            })
            .unwrap_or_default(),
        ("arrayValue", a) => Value::Array(
            array(a, "values")
                .iter()
                .map(|x| json!(as_string(x)))
                .collect(),
        )
        .to_string(),
        ("kvlistValue", m) => Value::Object(
            array(m, "values")
                .iter()
                .filter_map(|kv| {
                    Some((
                        kv.get("key")?.as_str()?.to_owned(),
                        json!(as_string(kv.get("value")?)),
                    ))
                })
                .collect(),
        )
        .to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}
