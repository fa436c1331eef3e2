//! From one OTLP span (either encoding) to a row of the span columns, or a precise reason why
//! not.

use std::borrow::Cow;

use mqtrace::names::{Stage, attr};

use crate::columns::{SpanRow, outcome, stage};

/// An attribute value as the encodings deliver it, before any type is assumed.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `stringValue`.
    Str(Cow<'a, str>),
    /// `intValue` (JSON may carry it as a string of digits: checked on use).
    Int(i64),
    /// `intValue` written as a string, as OTLP JSON does.
    IntText(Cow<'a, str>),
    /// `boolValue`.
    Bool(bool),
    /// `doubleValue`.
    Double(f64),
    /// Anything else (arrays, maps, bytes, null).
    Other,
}

impl Scalar<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Int(_) | Scalar::IntText(_) => "an int",
            Scalar::Bool(_) => "a bool",
            Scalar::Double(_) => "a double",
            Scalar::Other => "an array, map or bytes value",
        }
    }

    fn as_int(&self, key: &str) -> Result<i64, String> {
        match self {
            Scalar::Int(v) => Ok(*v),
            Scalar::IntText(t) => t
                .parse::<i64>()
                .map_err(|_| format!("{key} must be an int, got intValue {t:?}")),
            other => Err(format!(
                "{key} must be an int (intValue), got {}",
                other.type_name()
            )),
        }
    }

    fn as_str<'s>(&'s self, key: &str) -> Result<&'s str, String> {
        match self {
            Scalar::Str(s) => Ok(s),
            other => Err(format!(
                "{key} must be a string (stringValue), got {}",
                other.type_name()
            )),
        }
    }
}

/// What a span turned out to be.
#[derive(Debug)]
pub enum Extracted<'a> {
    /// Not a messaging span: skipped.
    Other,
    /// A messaging span without mqtrace's numbering (counted, not analyzed).
    Unkeyed,
    /// A numbered stage span.
    Keyed(SpanRow<'a>),
}

/// Reads the attributes that matter. `trace_id` is validated only for keyed spans, so that
/// non-messaging spans cost nothing but the attribute scan.
pub fn extract<'a>(
    trace_id: &'a str,
    start_ns: i64,
    end_ns: i64,
    attributes: impl Iterator<Item = (&'a str, &'a Scalar<'a>)>,
) -> Result<Extracted<'a>, String> {
    let mut row = SpanRow {
        start_ns,
        end_ns,
        trace_id,
        ..SpanRow::default()
    };
    let (mut stage_value, mut producer, mut stream, mut seq) = (None, None, None, None);
    let mut messaging = false;
    for (key, value) in attributes {
        match key {
            attr::STAGE => stage_value = Some(value.as_str(key)?),
            attr::PRODUCER_ID => producer = Some(value.as_str(key)?),
            attr::STREAM => stream = Some(value.as_str(key)?),
            attr::SEQ => seq = Some(value.as_int(key)?),
            attr::ATTEMPT => row.attempt = Some(small_int(value, key)?),
            attr::DELIVERY_COUNT => row.delivery_count = Some(small_int(value, key)?),
            attr::OUTCOME => row.outcome = Some(outcome::code(value.as_str(key)?)),
            attr::BROKER_POSITION => row.position = Some(value.as_str(key)?),
            attr::MESSAGING_CONSUMER_GROUP_NAME => {
                messaging = true;
                row.group = Some(value.as_str(key)?);
            }
            attr::MESSAGING_DESTINATION_PARTITION_ID => {
                messaging = true;
                row.partition = Some(partition(value, key)?);
            }
            attr::MESSAGING_MESSAGE_ID => {
                messaging = true;
                if let Scalar::Str(s) = value {
                    row.message_id = Some(s);
                }
            }
            k if k.starts_with("messaging.") => messaging = true,
            _ => {}
        }
    }
    let Some(stage_value) = stage_value else {
        return Ok(if messaging {
            Extracted::Unkeyed
        } else {
            Extracted::Other
        });
    };
    row.stage = stage::code(stage_value).ok_or_else(|| {
        let known: Vec<_> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        format!(
            "{} must be one of {}, got {stage_value:?}",
            attr::STAGE,
            known.join(", ")
        )
    })?;
    let (Some(producer), Some(stream), Some(seq)) = (producer, stream, seq) else {
        // A stage span of a message that carried no numbering: traced, not analyzable.
        return Ok(Extracted::Unkeyed);
    };
    if seq < 1 {
        return Err(format!("{} must be ≥ 1, got {seq}", attr::SEQ));
    }
    if seq > crate::columns::MAX_SEQ {
        return Err(format!(
            "{} must be at most {} (2^40 - 1), got {seq}",
            attr::SEQ,
            crate::columns::MAX_SEQ
        ));
    }
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "traceId must be 32 hex digits, got {:?} ({} characters)",
            truncate(trace_id),
            trace_id.chars().count()
        ));
    }
    if producer.contains('\0') || stream.contains('\0') {
        return Err("producer id and stream must not contain NUL characters".to_owned());
    }
    row.producer_id = producer;
    row.stream = stream;
    row.seq = seq;
    Ok(Extracted::Keyed(row))
}

/// The keys [`extract`] reads (and the telemetry report's), as the analyzer's own constants:
/// [`known_key`] matches them (a `match` on strings, not a scan of a list: it runs for every
/// attribute of every span).
macro_rules! read_keys {
    ($($key:path),+ $(,)?) => {
        /// The constant for a key a reader should keep: one of the keys [`extract`] reads,
        /// `messaging.other` for any other messaging key (it only marks the span as
        /// messaging), `""` for keys to drop. No key is ever copied.
        pub(crate) fn known_key(k: &str) -> &'static str {
            match k {
                $($key => $key,)+
                k if k.starts_with("messaging.") => "messaging.other",
                _ => "",
            }
        }
    };
}

read_keys!(
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
    attr::TELEMETRY_FINAL,
    attr::MESSAGING_SYSTEM,
);

fn small_int(value: &Scalar<'_>, key: &str) -> Result<i32, String> {
    let v = value.as_int(key)?;
    i32::try_from(v).map_err(|_| format!("{key} is out of range: {v}"))
}

/// Partitions are strings by the conventions; some clients record ints: accept both.
fn partition<'a>(value: &'a Scalar<'a>, key: &str) -> Result<&'a str, String> {
    match value {
        Scalar::Str(s) | Scalar::IntText(s) => Ok(s),
        Scalar::Int(_) => Err(format!(
            "{key} must be a string (stringValue), got an int; \
             record partitions as strings, as the messaging conventions do"
        )),
        other => Err(format!(
            "{key} must be a string (stringValue), got {}",
            other.type_name()
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn run<'a>(
        trace: &'a str,
        attrs: &'a [(&'a str, Scalar<'a>)],
    ) -> Result<Extracted<'a>, String> {
        extract(trace, 1, 2, attrs.iter().map(|(k, v)| (*k, v)))
    }

    fn s(v: &str) -> Scalar<'_> {
        Scalar::Str(Cow::Borrowed(v))
    }

    #[test]
    fn a_numbered_stage_span_becomes_a_row() {
        let attrs = [
            ("mqtrace.stage", s("store_ack")),
            ("mqtrace.producer.id", s("p")),
            ("mqtrace.stream", s("orders")),
            ("mqtrace.seq", Scalar::IntText(Cow::Borrowed("42"))),
            ("mqtrace.outcome", s("ok")),
            ("mqtrace.broker.position", s("1/5512")),
            ("messaging.destination.partition.id", s("1")),
        ];
        let Ok(Extracted::Keyed(row)) = run(TRACE, &attrs) else {
            panic!("not keyed");
        };
        assert_eq!(
            (row.seq, row.stage, row.outcome),
            (42, stage::STORE_ACK, Some(outcome::OK))
        );
        assert_eq!((row.position, row.partition), (Some("1/5512"), Some("1")));
    }

    #[test]
    fn spans_without_stage_are_messaging_or_not() {
        assert!(matches!(
            run(TRACE, &[("http.method", s("GET"))]),
            Ok(Extracted::Other)
        ));
        assert!(matches!(
            run(TRACE, &[("messaging.system", s("kafka"))]),
            Ok(Extracted::Unkeyed)
        ));
        assert!(matches!(
            run(TRACE, &[("mqtrace.stage", s("deliver"))]),
            Ok(Extracted::Unkeyed)
        ));
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let base = |seq: Scalar<'static>| {
            vec![
                ("mqtrace.stage", s("produce")),
                ("mqtrace.producer.id", s("p")),
                ("mqtrace.stream", s("orders")),
                ("mqtrace.seq", seq),
            ]
        };
        let err = |attrs: Vec<(&'static str, Scalar<'static>)>, trace: &'static str| match extract(
            trace,
            1,
            2,
            attrs.iter().map(|(k, v)| (*k, v)),
        ) {
            Err(e) => e,
            Ok(other) => panic!("accepted: {other:?}"),
        };
        assert!(
            err(base(s("7")), TRACE)
                .contains("mqtrace.seq must be an int (intValue), got a string")
        );
        assert!(
            err(base(Scalar::IntText(Cow::Borrowed("x"))), TRACE).contains("got intValue \"x\"")
        );
        assert!(err(base(Scalar::Int(0)), TRACE).contains("≥ 1"));
        assert!(err(base(Scalar::Int(1)), "abc").contains("traceId must be 32 hex digits"));
        let mut bad_stage = base(Scalar::Int(1));
        bad_stage[0].1 = s("sent");
        assert!(err(bad_stage, TRACE).contains("must be one of produce, store_ack"));
    }
}
