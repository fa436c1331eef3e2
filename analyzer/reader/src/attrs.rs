//! The attributes a reader keeps from a span, typed once: which key it is ([`Key`]) and its
//! value as the encoding delivered it ([`Scalar`]), before any type is assumed.

use mqtrace_vocab::{attr, semconv};
use serde::de::{self, Deserialize, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// An attribute value as the encodings deliver it, before any type is assumed.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `stringValue`.
    Str(Cow<'a, str>),
    /// `intValue` (or a JSON number where a scalar was read).
    Int(i64),
    /// `intValue` written as a string, as OTLP JSON does (checked on use).
    IntText(Cow<'a, str>),
    /// `boolValue`.
    Bool(bool),
    /// `doubleValue`.
    Double(f64),
    /// Anything else (arrays, maps, bytes, null, an int beyond 64 bits).
    Other,
}

impl Scalar<'_> {
    /// What the value is, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Scalar::Str(s) => format!("a string ({:?})", clip(s)),
            Scalar::Int(i) => format!("an int ({i})"),
            Scalar::IntText(t) => format!("intValue {:?}", clip(t)),
            Scalar::Bool(b) => format!("a bool ({b})"),
            Scalar::Double(d) => format!("a double ({d})"),
            Scalar::Other => "an array, map, bytes or null value".to_owned(),
        }
    }

    /// The value of an `AnyValue` field once its OTLP type is applied: `intValue` text
    /// becomes [`Scalar::IntText`]; a `stringValue` that is not a string is not a string.
    pub(crate) fn typed(field: AnyField, value: Scalar<'_>) -> Scalar<'_> {
        match (field, value) {
            (AnyField::String, v @ Scalar::Str(_)) => v,
            (AnyField::String, _) => Scalar::Other,
            (AnyField::Int, Scalar::Str(s)) => Scalar::IntText(s),
            (_, v) => v,
        }
    }
}

/// A JSON value as serde_json classifies it: both JSON readers read scalars through this, so
/// that a number is the same number to both (`-0` a double, `1e400` an error).
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

/// The `AnyValue` fields the readers read, in the precedence both apply when an object
/// holds several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnyField {
    String,
    Int,
    Bool,
    Double,
}

impl AnyField {
    /// The field a JSON key names.
    pub(crate) fn of(key: &[u8]) -> Option<AnyField> {
        Some(match key {
            b"stringValue" => AnyField::String,
            b"intValue" => AnyField::Int,
            b"boolValue" => AnyField::Bool,
            b"doubleValue" => AnyField::Double,
            _ => return None,
        })
    }
}

/// An `AnyValue`'s fields as read (a field written `null` counts as absent, as proto3's
/// JSON mapping has it), reduced to one value by the precedence above.
#[derive(Default)]
pub(crate) struct AnyFields<'a> {
    pub(crate) values: [Option<Scalar<'a>>; 4],
}

impl<'a> AnyFields<'a> {
    pub(crate) fn set(&mut self, field: AnyField, value: Scalar<'a>) {
        self.values[field as usize] = Some(value);
    }

    pub(crate) fn into_scalar(self) -> Scalar<'a> {
        let [s, i, b, d] = self.values;
        if let Some(v) = s {
            return Scalar::typed(AnyField::String, v);
        }
        if let Some(v) = i {
            return Scalar::typed(AnyField::Int, v);
        }
        b.or(d).unwrap_or(Scalar::Other)
    }
}

/// A span's trace id as its encoding carries it: checked and turned into bits only for
/// numbered spans, so that other spans cost nothing but the attribute scan.
#[derive(Debug, Clone, Copy)]
pub enum TraceId<'a> {
    /// OTLP JSON: 32 hex digits.
    Hex(&'a str),
    /// OTLP protobuf: 16 bytes.
    Bytes(&'a [u8]),
}

impl TraceId<'_> {
    /// The 128 bits, or why the id is not one.
    pub(crate) fn bits(self) -> Result<u128, String> {
        let bits = match self {
            TraceId::Hex(text) => trace_id_bits(text),
            TraceId::Bytes(bytes) => <[u8; 16]>::try_from(bytes).ok().map(u128::from_be_bytes),
        };
        bits.ok_or_else(|| {
            let text = self.text();
            format!(
                "traceId must be 32 hex digits, got {:?} ({} characters)",
                clip(&text),
                text.chars().count()
            )
        })
    }

    /// As text (hex for bytes), for the report.
    pub(crate) fn text(self) -> String {
        match self {
            TraceId::Hex(text) => text.to_owned(),
            TraceId::Bytes(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// The bits of a trace id written as 32 hex digits (either case), `None` for anything else.
pub(crate) fn trace_id_bits(text: &str) -> Option<u128> {
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

/// At most 40 characters of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The attributes a reader kept from one span, in input order.
pub type KeptAttributes<'de> = Vec<(Key, Scalar<'de>)>;

/// Maps each [`Key`] to its attribute constant, once, for both directions.
macro_rules! read_keys {
    ($($variant:ident => $key:path),+ $(,)?) => {
        /// The attributes a reader keeps: the ones the sink reads, plus any other
        /// `messaging.*` key (it only marks the span as messaging). Readers turn each key
        /// into one of these once, so that the sink matches a byte, not the strings again.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Key {
            $(
                #[doc = concat!("`", stringify!($variant), "`")]
                $variant,
            )+
            /// A key of the messaging conventions' table ([`semconv::KEYS`]) not named
            /// above: its role and its rank in the role's list.
            Semconv(semconv::Role, u8),
            /// Any other `messaging.*` key.
            MessagingOther,
        }

        /// The [`Key`] of an attribute a reader should keep, `None` for keys to drop (a
        /// `match` on strings, not a scan of a list: it runs for every attribute of every
        /// span).
        pub fn known_key(k: &str) -> Option<Key> {
            match k {
                $($key => Some(Key::$variant),)+
                k if k.starts_with(attr::MESSAGING_PREFIX) => Some(
                    semconv::role(k).map_or(Key::MessagingOther, |(r, rank)| Key::Semconv(r, rank)),
                ),
                _ => None,
            }
        }

        impl Key {
            /// The attribute's name, for messages.
            pub fn name(self) -> &'static str {
                match self {
                    $(Key::$variant => $key,)+
                    Key::Semconv(role, rank) => semconv::KEYS
                        .iter()
                        .find(|(r, _)| *r == role)
                        .and_then(|(_, keys)| keys.get(usize::from(rank)))
                        .copied()
                        .unwrap_or("messaging.*"),
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
    LedgerPosition => attr::LEDGER_POSITION,
    ConsumerGroup => attr::MESSAGING_CONSUMER_GROUP_NAME,
    Partition => attr::MESSAGING_DESTINATION_PARTITION_ID,
    MessageId => attr::MESSAGING_MESSAGE_ID,
    TelemetryDropped => attr::TELEMETRY_DROPPED,
    TelemetryFinal => attr::TELEMETRY_FINAL,
    TelemetryInstance => attr::TELEMETRY_INSTANCE,
    LedgerOf => attr::LEDGER_OF,
    Seqs => attr::SEQS,
    LedgerCount => attr::LEDGER_COUNT,
);

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

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

    #[test]
    fn any_value_fields_take_the_otlp_precedence_and_null_is_absent() {
        let mut f = AnyFields::default();
        f.set(AnyField::Int, Scalar::Str(Cow::Borrowed("2")));
        assert_eq!(f.into_scalar(), Scalar::IntText(Cow::Borrowed("2")));
        let mut f = AnyFields::default();
        f.set(AnyField::String, Scalar::Int(5));
        f.set(AnyField::Int, Scalar::Int(5));
        assert_eq!(
            f.into_scalar(),
            Scalar::Other,
            "a stringValue that is no string"
        );
    }
}
