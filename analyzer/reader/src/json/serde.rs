//! The serde reader of OTLP JSON lines: slower than the scanner, it reads any line serde_json
//! accepts and gives the precise reason for one it does not. Parsed with borrowed strings
//! straight into the sink; fields the analyzer does not need are skipped without being built.
//! A field read twice is an error here as in the scanner.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

use super::scan::span_in;
use crate::attrs::{AnyField, AnyFields, KeptAttributes, Scalar, known_key};
use crate::sink::SpanSink;

/// Streams an `ExportTraceServiceRequest` into the columns: no request, span or attribute
/// list is ever built, and only the attributes the analyzer reads are kept (in `scratch`).
pub(super) struct RequestSeed<'o, 's, 'de> {
    pub(super) out: &'o mut SpanSink,
    pub(super) scratch: &'s mut KeptAttributes<'de>,
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
                if std::mem::replace(&mut saw, true) {
                    return Err(A::Error::duplicate_field("resourceSpans"));
                }
                map.next_value_seed(Each(Level::Resource, &mut *self.out, &mut *self.scratch))?;
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
struct Each<'o, 's, 'de>(Level, &'o mut SpanSink, &'s mut KeptAttributes<'de>);

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
        let Each(level, out, scratch) = self;
        while seq
            .next_element_seed(One(level, &mut *out, &mut *scratch))?
            .is_some()
        {}
        Ok(())
    }
}

/// One object of a list: a resource's or scope's spans are descended into, a span is taken.
struct One<'o, 's, 'de>(Level, &'o mut SpanSink, &'s mut KeptAttributes<'de>);

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
        let One(level, out, scratch) = self;
        let child = match level {
            Level::Resource => Some(("scopeSpans", Level::Scope)),
            Level::Scope => Some(("spans", Level::Span)),
            Level::Span => None,
        };
        if let Some((field, next)) = child {
            let mut seen = false;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == field {
                    if std::mem::replace(&mut seen, true) {
                        return Err(A::Error::duplicate_field(field));
                    }
                    map.next_value_seed(Each(next, &mut *out, &mut *scratch))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            return Ok(());
        }
        // A span.
        scratch.clear();
        let (mut trace_id, mut name, mut start, mut end) = (None, None, None, None);
        let mut seen_attributes = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let (slot, field) = match key.as_ref() {
                "traceId" => (&mut trace_id, "traceId"),
                "name" => (&mut name, "name"),
                "startTimeUnixNano" => (&mut start, "startTimeUnixNano"),
                "endTimeUnixNano" => (&mut end, "endTimeUnixNano"),
                "attributes" => {
                    if std::mem::replace(&mut seen_attributes, true) {
                        return Err(A::Error::duplicate_field("attributes"));
                    }
                    map.next_value_seed(Attributes(&mut *scratch))?;
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.replace(map.next_value::<Scalar<'de>>()?).is_some() {
                return Err(A::Error::duplicate_field(field));
            }
        }
        out.span(span_in(&trace_id, &name, &start, &end), scratch);
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
    /// The value with its OTLP type applied, by the precedence the scanner applies too.
    fn into_scalar(self) -> Scalar<'a> {
        let mut fields = AnyFields::default();
        for (field, value) in [
            (AnyField::String, self.string_value),
            (AnyField::Int, self.int_value),
            (AnyField::Bool, self.bool_value),
            (AnyField::Double, self.double_value),
        ] {
            if let Some(v) = value {
                fields.set(field, v);
            }
        }
        fields.into_scalar()
    }
}
