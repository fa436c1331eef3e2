//! The serde reader of OTLP JSON lines: slower than the scanner, it reads any line serde_json
//! accepts and gives the precise reason for one it does not. Parsed with borrowed strings
//! straight into the sink; fields the analyzer does not need are skipped without being built.
//! A field read twice is an error here as in the scanner.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

use super::scan::{SERVICE_NAME, SpanFields, service_name};
use crate::attrs::{AnyField, AnyFields, KeptAttributes, Scalar, known_key};
use crate::semconv::{Links, json_span_id, json_trace_id};
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
            let (mut seen, mut seen_resource) = (false, false);
            let mut service = None;
            if let Level::Resource = level {
                out.begin_resource();
            }
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == field {
                    if std::mem::replace(&mut seen, true) {
                        return Err(A::Error::duplicate_field(field));
                    }
                    map.next_value_seed(Each(next, &mut *out, &mut *scratch))?;
                } else if matches!(level, Level::Resource) && key == "resource" {
                    if std::mem::replace(&mut seen_resource, true) {
                        return Err(A::Error::duplicate_field("resource"));
                    }
                    service = map
                        .next_value::<Option<ResourceIn<'de>>>()?
                        .and_then(ResourceIn::service);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if let Level::Resource = level {
                out.end_resource(service.as_deref());
            }
            return Ok(());
        }
        // A span.
        scratch.clear();
        let mut fields = SpanFields::default();
        let mut links = Links::default();
        let mut seen = [false; 3];
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let (slot, field) = match key.as_ref() {
                "traceId" => (&mut fields.trace_id, "traceId"),
                "name" => (&mut fields.name, "name"),
                "startTimeUnixNano" => (&mut fields.start, "startTimeUnixNano"),
                "endTimeUnixNano" => (&mut fields.end, "endTimeUnixNano"),
                "spanId" => (&mut fields.span_id, "spanId"),
                "parentSpanId" => (&mut fields.parent, "parentSpanId"),
                "kind" => (&mut fields.kind, "kind"),
                name @ ("attributes" | "status" | "links") => {
                    let (i, field) = match name {
                        "attributes" => (0, "attributes"),
                        "status" => (1, "status"),
                        _ => (2, "links"),
                    };
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(A::Error::duplicate_field(field));
                    }
                    match i {
                        0 => map.next_value_seed(Attributes(&mut *scratch))?,
                        1 => {
                            fields.status = map
                                .next_value::<Option<StatusIn<'de>>>()?
                                .and_then(|s| s.code)
                        }
                        _ => map.next_value_seed(LinksSeed(&mut links))?,
                    }
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
        out.span(fields.span_in(&links), scratch);
        Ok(())
    }
}

/// A span's `status`.
#[derive(Deserialize)]
struct StatusIn<'a> {
    #[serde(borrow, default)]
    code: Option<Scalar<'a>>,
}

/// One of a span's `links`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkIn<'a> {
    #[serde(borrow, default)]
    trace_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    span_id: Option<Scalar<'a>>,
}

/// A span's `links` (or `null`), each pushed as it is read: a long list is never held.
struct LinksSeed<'l>(&'l mut Links);

impl<'de> DeserializeSeed<'de> for LinksSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for LinksSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of links")
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(link) = seq.next_element::<LinkIn<'de>>()? {
            self.0.push(
                json_trace_id(link.trace_id.as_ref()),
                json_span_id(link.span_id.as_ref()),
            );
        }
        Ok(())
    }
}

/// A resource: its attributes, for `service.name`.
#[derive(Deserialize)]
struct ResourceIn<'a> {
    #[serde(borrow, default)]
    attributes: Option<Vec<KeyValue<'a>>>,
}

impl<'a> ResourceIn<'a> {
    /// The last `service.name` given (a string, else none).
    fn service(self) -> Option<Cow<'a, str>> {
        let mut service = None;
        for kv in self.attributes.unwrap_or_default() {
            if kv.key == SERVICE_NAME {
                service = service_name(kv.value.map(AnyValue::into_scalar));
            }
        }
        service
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
