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

/// A span's trace id as its encoding carries it; [`extract`] turns it into bits (and checks
/// it) only for keyed spans.
#[derive(Debug, Clone, Copy)]
pub enum TraceId<'a> {
    /// OTLP JSON: 32 hex digits.
    Hex(&'a str),
    /// OTLP protobuf: 16 bytes.
    Bytes(&'a [u8]),
}

impl TraceId<'_> {
    /// The 128 bits, or why the id is not one.
    fn bits(self) -> Result<u128, String> {
        let bits = match self {
            TraceId::Hex(text) => trace_id_bits(text),
            TraceId::Bytes(bytes) => <[u8; 16]>::try_from(bytes).ok().map(u128::from_be_bytes),
        };
        bits.ok_or_else(|| {
            let text = match self {
                TraceId::Hex(text) => text.to_owned(),
                TraceId::Bytes(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            };
            format!(
                "traceId must be 32 hex digits, got {:?} ({} characters)",
                truncate(&text),
                text.chars().count()
            )
        })
    }
}

/// The attributes a reader kept from one span, in input order.
pub(crate) type KeptAttributes<'de> = Vec<(Key, Scalar<'de>)>;

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
    trace_id: TraceId<'_>,
    start_ns: i64,
    end_ns: i64,
    attributes: impl Iterator<Item = (Key, &'a Scalar<'a>)>,
) -> Result<Extracted<'a>, String> {
    let mut row = SpanRow {
        start_ns,
        end_ns,
        ..SpanRow::default()
    };
    let (mut stage_value, mut producer, mut stream, mut seq) = (None, None, None, None);
    let mut messaging = false;
    for (key, value) in attributes {
        let name = key.name();
        match key {
            Key::Stage => stage_value = Some(value.as_str(name)?),
            Key::ProducerId => producer = Some(value.as_str(name)?),
            Key::Stream => stream = Some(value.as_str(name)?),
            Key::Seq => seq = Some(value.as_int(name)?),
            Key::Attempt => row.attempt = Some(small_int(value, name)?),
            Key::DeliveryCount => row.delivery_count = Some(small_int(value, name)?),
            Key::Outcome => row.outcome = Some(outcome::code(value.as_str(name)?)),
            Key::BrokerPosition => row.position = Some(value.as_str(name)?),
            Key::ConsumerGroup => {
                messaging = true;
                row.group = Some(value.as_str(name)?);
            }
            Key::Partition => {
                messaging = true;
                row.partition = Some(partition(value, name)?);
            }
            Key::MessageId => {
                messaging = true;
                if let Scalar::Str(s) = value {
                    row.message_id = Some(s);
                }
            }
            Key::MessagingOther => messaging = true,
            Key::TelemetryDropped | Key::TelemetryFinal => {}
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
    let trace_bits = trace_id.bits()?;
    if producer.contains('\0') || stream.contains('\0') {
        return Err("producer id and stream must not contain NUL characters".to_owned());
    }
    row.producer_id = producer;
    row.stream = stream;
    row.seq = seq;
    row.trace_id = trace_bits;
    Ok(Extracted::Keyed(row))
}

/// The attributes a reader keeps: the ones [`extract`] and the telemetry report read, plus
/// any other `messaging.*` key (it only marks the span as messaging). Readers turn each key
/// into one of these once, so that [`extract`] matches a byte, not the strings again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Stage,
    ProducerId,
    Stream,
    Seq,
    Attempt,
    DeliveryCount,
    Outcome,
    BrokerPosition,
    ConsumerGroup,
    Partition,
    MessageId,
    TelemetryDropped,
    TelemetryFinal,
    MessagingOther,
}

/// Maps each [`Key`] to its attribute constant, once, for both directions.
macro_rules! read_keys {
    ($($variant:ident => $key:path),+ $(,)?) => {
        /// The [`Key`] of an attribute a reader should keep, `None` for keys to drop (a
        /// `match` on strings, not a scan of a list: it runs for every attribute of every
        /// span). No key is ever copied.
        pub(crate) fn known_key(k: &str) -> Option<Key> {
            match k {
                $($key => Some(Key::$variant),)+
                k if k.starts_with("messaging.") => Some(Key::MessagingOther),
                _ => None,
            }
        }

        impl Key {
            /// The attribute's name, for messages.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Key::$variant => $key,)+
                    Key::MessagingOther => "messaging.*",
                }
            }
        }
    };
}

read_keys!(
    Stage => attr::STAGE,
    ProducerId => attr::PRODUCER_ID,
    Stream => attr::STREAM,
    Seq => attr::SEQ,
    Attempt => attr::ATTEMPT,
    DeliveryCount => attr::DELIVERY_COUNT,
    Outcome => attr::OUTCOME,
    BrokerPosition => attr::BROKER_POSITION,
    ConsumerGroup => attr::MESSAGING_CONSUMER_GROUP_NAME,
    Partition => attr::MESSAGING_DESTINATION_PARTITION_ID,
    MessageId => attr::MESSAGING_MESSAGE_ID,
    TelemetryDropped => attr::TELEMETRY_DROPPED,
    TelemetryFinal => attr::TELEMETRY_FINAL,
);

/// The bits of a trace id written as 32 hex digits (either case), `None` for anything else.
fn trace_id_bits(text: &str) -> Option<u128> {
    if text.len() != 32 {
        return None;
    }
    text.bytes().try_fold(0u128, |bits, b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(bits << 4 | u128::from(digit))
    })
}

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

    /// What a reader hands [`extract`]: the kept keys, typed.
    fn keyed<'a>(
        attrs: &'a [(&'a str, Scalar<'a>)],
    ) -> impl Iterator<Item = (Key, &'a Scalar<'a>)> {
        attrs.iter().filter_map(|(k, v)| Some((known_key(k)?, v)))
    }

    fn run<'a>(
        trace: &'a str,
        attrs: &'a [(&'a str, Scalar<'a>)],
    ) -> Result<Extracted<'a>, String> {
        extract(TraceId::Hex(trace), 1, 2, keyed(attrs))
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
            TraceId::Hex(trace),
            1,
            2,
            keyed(&attrs),
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

    #[test]
    fn a_trace_id_is_read_as_its_bits_in_either_case() {
        let bits = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
        assert_eq!(trace_id_bits(TRACE), Some(bits));
        assert_eq!(trace_id_bits(&TRACE.to_uppercase()), Some(bits));
        assert_eq!(trace_id_bits(&TRACE[1..]), None);
        assert_eq!(trace_id_bits(&format!("{}g", &TRACE[1..])), None);
        assert_eq!(trace_id_bits(&format!("{}é", &TRACE[2..])), None);
        assert_eq!(TraceId::Bytes(&bits.to_be_bytes()).bits(), Ok(bits));
        assert_eq!(
            TraceId::Bytes(&[0x4b, 0xf9, 0x2f]).bits(),
            Err(r#"traceId must be 32 hex digits, got "4bf92f" (6 characters)"#.to_owned())
        );
    }
}
