//! The fast path for OTLP JSON lines: a scanner that knows the shape of an
//! `ExportTraceServiceRequest` and walks it byte by byte. Strings are found with `memchr`
//! (the line is UTF-8-checked once), keys are compared as bytes, and whatever the analyzer
//! does not read is skipped without building anything.
//!
//! It answers only "this line is well-formed and here are its spans" or "not on the fast
//! path": any surprise (an escaped key, a missing or repeated field, bad JSON) sends the line
//! to the serde reader, which gives the precise reason. It must never accept what serde_json
//! rejects, nor read a value differently: strings' escapes and numbers' grammar are checked
//! as serde_json checks them, scalars are classified by serde_json itself, and a fuzz target
//! (`fuzz/fuzz_targets/json_line.rs`) holds the two readers to the same answers.

use memchr::memchr2;
use mqtrace_vocab::limits::MAX_JSON_DEPTH;
use std::borrow::Cow;

use crate::attrs::{AnyField, AnyFields, KeptAttributes, Scalar, TraceId, known_key};
use crate::semconv::{
    Context, KIND_NAMES, Links, STATUS_NAMES, json_enum, json_span_id, json_trace_id,
};
use crate::sink::{Nanos, SpanIn, SpanSink};

/// Not on the fast path: the serde reader decides (and explains).
#[derive(Debug)]
pub(super) struct Fallback;

type Scan<T> = Result<T, Fallback>;

struct Scanner<'de> {
    text: &'de str,
    pos: usize,
}

impl<'de> Scanner<'de> {
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    fn ws(&mut self) {
        let b = self.bytes();
        while let Some(c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Scan<u8> {
        self.ws();
        self.bytes().get(self.pos).copied().ok_or(Fallback)
    }

    fn eat(&mut self, c: u8) -> Scan<()> {
        if self.peek()? == c {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// The raw contents of the string at the cursor and whether it holds escapes; each
    /// escape is checked as serde_json checks one it skips (`\uXXXX` with four hex digits;
    /// surrogates are checked where the string is decoded). Raw control characters never
    /// reach here: a line holding any goes to serde.
    fn raw_string(&mut self) -> Scan<(usize, usize, bool)> {
        self.eat(b'"')?;
        let b = self.bytes();
        let start = self.pos;
        let mut escaped = false;
        let mut at = start;
        loop {
            let rest = b.get(at..).ok_or(Fallback)?;
            let off = memchr2(b'"', b'\\', rest).ok_or(Fallback)?;
            let hit = at + off;
            if b[hit] == b'"' {
                self.pos = hit + 1;
                return Ok((start, hit, escaped));
            }
            escaped = true;
            at = match b.get(hit + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => hit + 2,
                Some(b'u') => {
                    let digits = b.get(hit + 2..hit + 6).ok_or(Fallback)?;
                    if !digits.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Fallback);
                    }
                    hit + 6
                }
                _ => return Err(Fallback),
            };
        }
    }

    /// A string value, borrowed unless it holds escapes.
    fn string(&mut self) -> Scan<Cow<'de, str>> {
        let (start, end, escaped) = self.raw_string()?;
        let text = self.text.get(start..end).ok_or(Fallback)?;
        if !escaped {
            return Ok(Cow::Borrowed(text));
        }
        // Rare: let serde_json decode the escapes of this one string.
        let quoted = self.text.get(start - 1..end + 1).ok_or(Fallback)?;
        serde_json::from_str::<String>(quoted)
            .map(Cow::Owned)
            .map_err(|_| Fallback)
    }

    /// A key: OTLP's are plain ASCII, so one with escapes leaves the fast path.
    fn key(&mut self) -> Scan<&'de [u8]> {
        let (start, end, escaped) = self.raw_string()?;
        if escaped {
            return Err(Fallback);
        }
        self.eat(b':')?;
        Ok(&self.bytes()[start..end])
    }

    /// Calls `field` with each key of the object at the cursor; it must consume the value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'de [u8]) -> Scan<()>) -> Scan<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Fallback),
            }
        }
    }

    /// Calls `element` for each element of the array at the cursor; it must consume it.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Fallback),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        let b = self.bytes();
        if b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// The text of the number at the cursor, checked against JSON's grammar
    /// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as serde_json checks it).
    fn number(&mut self) -> Scan<&'de str> {
        let b = self.bytes();
        let start = self.pos;
        let mut at = start;
        let digits = |at: &mut usize| {
            let from = *at;
            while b.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > from
        };
        if b.get(at) == Some(&b'-') {
            at += 1;
        }
        match b.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => return Err(Fallback),
        }
        if b.get(at) == Some(&b'.') {
            at += 1;
            if !digits(&mut at) {
                return Err(Fallback);
            }
        }
        if matches!(b.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(b.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                return Err(Fallback);
            }
        }
        // A digit right after `0` (`01`) is not part of this number: the caller's next
        // token check rejects it.
        self.pos = at;
        self.text.get(start..at).ok_or(Fallback)
    }

    /// Skips one value of any kind, checking that it is well-formed.
    fn skip(&mut self, depth: u32) -> Scan<()> {
        if depth > MAX_JSON_DEPTH {
            return Err(Fallback);
        }
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            // Skipped numbers are not range-checked, by serde_json either (`1e400` passes).
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(Fallback),
        }
    }

    /// A scalar as [`Scalar`] (what serde's reader makes of the same JSON value).
    fn scalar(&mut self) -> Scan<Scalar<'de>> {
        Ok(match self.peek()? {
            b'"' => Scalar::Str(self.string()?),
            b't' => {
                self.literal(b"true")?;
                Scalar::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Scalar::Bool(false)
            }
            b'-' | b'0'..=b'9' => {
                // Rare in OTLP JSON (it writes 64-bit ints as strings): serde_json decides
                // what the number is, so that both readers agree (`-0` is a double, `1e400`
                // out of range).
                let n = self.number()?;
                serde_json::from_str::<Scalar<'de>>(n).map_err(|_| Fallback)?
            }
            _ => {
                self.skip(0)?;
                Scalar::Other
            }
        })
    }

    /// An `AnyValue` object, with the precedence of the serde reader's; a field written
    /// `null` is absent, a repeated field leaves the fast path.
    fn any_value(&mut self) -> Scan<Scalar<'de>> {
        let mut fields = AnyFields::default();
        let mut seen = [false; 4];
        self.object(|s, key| {
            let Some(field) = AnyField::of(key) else {
                return s.skip(1);
            };
            if std::mem::replace(&mut seen[field as usize], true) {
                return Err(Fallback);
            }
            if s.peek()? == b'n' {
                return s.literal(b"null");
            }
            fields.set(field, s.scalar()?);
            Ok(())
        })?;
        Ok(fields.into_scalar())
    }

    /// A span's attributes: the ones the analyzer reads go to `scratch`.
    fn attributes(&mut self, scratch: &mut KeptAttributes<'de>) -> Scan<()> {
        self.array(|s| {
            let at = s.pos;
            if let Some((key, value)) = s.compact_attribute() {
                if let Some(known) = known_key(key) {
                    scratch.push((known, value));
                }
                return Ok(());
            }
            s.pos = at;
            let (key, value) = s.general_attribute()?;
            if let Some(known) = known_key(&key) {
                scratch.push((known, value.unwrap_or(Scalar::Other)));
            }
            Ok(())
        })
    }

    /// An attribute in the exact compact form exporters write,
    /// `{"key":"k","value":{"stringValue":"v"}}` (or `intValue`, `boolValue`, `doubleValue`),
    /// matched byte for byte; `None` (cursor anywhere) for any other form, which the general
    /// path then reads.
    fn compact_attribute(&mut self) -> Option<(&'de str, Scalar<'de>)> {
        let b = self.bytes();
        let mut at = self.pos;
        let expect = |at: &mut usize, lit: &[u8]| -> Option<()> {
            (b.get(*at..*at + lit.len())? == lit).then(|| *at += lit.len())
        };
        // A plain string (no escapes) from `at`, which is just past its opening quote.
        let plain = |at: &mut usize| -> Option<&'de str> {
            let rest = b.get(*at..)?;
            let end = *at + memchr2(b'"', b'\\', rest)?;
            if b[end] != b'"' {
                return None;
            }
            let text = self.text.get(*at..end)?;
            *at = end + 1;
            Some(text)
        };
        expect(&mut at, b"{\"key\":\"")?;
        let key = plain(&mut at)?;
        expect(&mut at, b",\"value\":{\"")?;
        let kind = plain(&mut at)?;
        expect(&mut at, b":")?;
        let value = match kind {
            "stringValue" => {
                expect(&mut at, b"\"")?;
                Scalar::Str(Cow::Borrowed(plain(&mut at)?))
            }
            "intValue" if b.get(at) == Some(&b'"') => {
                at += 1;
                Scalar::IntText(Cow::Borrowed(plain(&mut at)?))
            }
            // Anything else (a number, a space before the value, `null`): the general path.
            _ => return None,
        };
        expect(&mut at, b"}}")?;
        self.pos = at;
        Some((key, value))
    }

    fn span(
        &mut self,
        sink: &mut SpanSink,
        scratch: &mut KeptAttributes<'de>,
        links: &mut Links,
    ) -> Scan<()> {
        scratch.clear();
        links.clear();
        let mut fields = SpanFields::default();
        let mut seen = [false; 3];
        self.object(|s, key| {
            let slot = match key {
                b"traceId" => &mut fields.trace_id,
                b"name" => &mut fields.name,
                b"startTimeUnixNano" => &mut fields.start,
                b"endTimeUnixNano" => &mut fields.end,
                b"spanId" => &mut fields.span_id,
                b"parentSpanId" => &mut fields.parent,
                b"kind" => &mut fields.kind,
                b"attributes" | b"status" | b"links" => {
                    let i = match key {
                        b"attributes" => 0,
                        b"status" => 1,
                        _ => 2,
                    };
                    if std::mem::replace(&mut seen[i], true) {
                        return Err(Fallback); // a repeated field
                    }
                    return match key {
                        b"attributes" => s.attributes(scratch),
                        // The other two may be written `null` (absent).
                        _ if s.peek()? == b'n' => s.literal(b"null"),
                        b"status" => {
                            fields.status = s.status()?;
                            Ok(())
                        }
                        _ => s.links(links),
                    };
                }
                _ => return s.skip(SPAN_DEPTH),
            };
            if slot.replace(s.scalar()?).is_some() {
                return Err(Fallback); // a repeated field
            }
            Ok(())
        })?;
        sink.span(fields.span_in(links), scratch);
        Ok(())
    }

    /// A span's `status` object: its `code` (`None` if absent or `null`).
    fn status(&mut self) -> Scan<Option<Scalar<'de>>> {
        let mut code = None;
        self.object(|s, key| match key {
            b"code" => s.optional_scalar(&mut code),
            _ => s.skip(SPAN_DEPTH + 1),
        })?;
        Ok(code.flatten())
    }

    /// The value of a field that may be written `null` (absent) into `slot`: `Some(None)`
    /// for `null`, so that a field read twice leaves the fast path either way, as serde's
    /// derived readers refuse a duplicate even when one is `null`.
    fn optional_scalar(&mut self, slot: &mut Option<Option<Scalar<'de>>>) -> Scan<()> {
        let value = if self.peek()? == b'n' {
            self.literal(b"null")?;
            None
        } else {
            Some(self.scalar()?)
        };
        if slot.replace(value).is_some() {
            return Err(Fallback);
        }
        Ok(())
    }

    /// A span's `links`: each link's trace and span id.
    fn links(&mut self, links: &mut Links) -> Scan<()> {
        self.array(|s| {
            let (mut trace, mut span) = (None, None);
            s.object(|s, key| match key {
                b"traceId" => s.optional_scalar(&mut trace),
                b"spanId" => s.optional_scalar(&mut span),
                _ => s.skip(SPAN_DEPTH + 2),
            })?;
            let (trace, span) = (trace.flatten(), span.flatten());
            links.push(json_trace_id(trace.as_ref()), json_span_id(span.as_ref()));
            Ok(())
        })
    }

    /// A resource object: its `service.name` (the last one given, if a string).
    fn resource(&mut self) -> Scan<Option<Cow<'de, str>>> {
        let mut service = None;
        let mut seen = false;
        self.object(|s, key| {
            if key != b"attributes" {
                return s.skip(3);
            }
            if std::mem::replace(&mut seen, true) {
                return Err(Fallback);
            }
            if s.peek()? == b'n' {
                return s.literal(b"null");
            }
            s.array(|s| {
                let at = s.pos;
                let (key, value) = match s.compact_attribute() {
                    Some((key, value)) => (Cow::Borrowed(key), Some(value)),
                    None => {
                        s.pos = at;
                        s.general_attribute()?
                    }
                };
                if key == SERVICE_NAME {
                    service = service_name(value);
                }
                Ok(())
            })
        })?;
        Ok(service)
    }

    /// An attribute object in any form: its key and value (`None` when written `null`).
    fn general_attribute(&mut self) -> Scan<(Cow<'de, str>, Option<Scalar<'de>>)> {
        let (mut key, mut value, mut seen_value) = (None, None, false);
        self.object(|s, field| {
            match field {
                b"key" => {
                    if key.replace(s.string()?).is_some() {
                        return Err(Fallback);
                    }
                }
                b"value" => {
                    if std::mem::replace(&mut seen_value, true) {
                        return Err(Fallback);
                    }
                    value = if s.peek()? == b'n' {
                        s.literal(b"null")?;
                        None
                    } else {
                        Some(s.any_value()?)
                    }
                }
                _ => s.skip(1)?,
            }
            Ok(())
        })?;
        Ok((key.ok_or(Fallback)?, value))
    }
}

/// Where a span's fields sit in a request (resourceSpans → scopeSpans → spans): the depth
/// values skipped inside it start at.
const SPAN_DEPTH: u32 = 7;

/// The resource attribute naming the service.
pub(crate) const SERVICE_NAME: &str = "service.name";

/// The service name a `service.name` value gives: a string, else none.
pub(crate) fn service_name(value: Option<Scalar<'_>>) -> Option<Cow<'_, str>> {
    match value {
        Some(Scalar::Str(s)) => Some(s),
        _ => None,
    }
}

/// A span's scalar fields as either JSON reader found them.
#[derive(Default)]
pub(crate) struct SpanFields<'a> {
    pub(crate) trace_id: Option<Scalar<'a>>,
    pub(crate) name: Option<Scalar<'a>>,
    pub(crate) start: Option<Scalar<'a>>,
    pub(crate) end: Option<Scalar<'a>>,
    pub(crate) span_id: Option<Scalar<'a>>,
    pub(crate) parent: Option<Scalar<'a>>,
    pub(crate) kind: Option<Scalar<'a>>,
    /// `status.code`.
    pub(crate) status: Option<Scalar<'a>>,
}

impl<'a> SpanFields<'a> {
    /// The span as the sink takes it (either JSON reader builds it so).
    pub(crate) fn span_in(&'a self, links: &'a Links) -> SpanIn<'a> {
        let text = |v: &'a Option<Scalar<'a>>| match v {
            Some(Scalar::Str(s)) => s.as_ref(),
            _ => "",
        };
        let nanos = |v: &'a Option<Scalar<'a>>| v.as_ref().map_or(Nanos::Absent, Nanos::Json);
        SpanIn {
            trace_id: TraceId::Hex(text(&self.trace_id)),
            name: text(&self.name),
            start: nanos(&self.start),
            end: nanos(&self.end),
            context: Context {
                span_id: json_span_id(self.span_id.as_ref()),
                parent: json_span_id(self.parent.as_ref()),
                kind: json_enum(self.kind.as_ref(), KIND_NAMES),
                status: json_enum(self.status.as_ref(), STATUS_NAMES),
                links: &links.kept,
                links_dropped: links.dropped,
            },
        }
    }
}

/// Reads one line of OTLP JSON into `sink`'s current record: `Ok(true)` when it was a
/// request with `resourceSpans`. `Err` (and `Ok(false)`) leave the record to be abandoned.
pub(crate) fn scan_line<'de>(
    text: &'de str,
    sink: &mut SpanSink,
    scratch: &mut KeptAttributes<'de>,
) -> Scan<bool> {
    let mut s = Scanner { text, pos: 0 };
    let mut saw = false;
    let mut links = Links::default();
    s.object(|s, key| {
        if key != b"resourceSpans" {
            return s.skip(1);
        }
        if std::mem::replace(&mut saw, true) {
            return Err(Fallback);
        }
        s.array(|s| {
            let (mut seen, mut seen_resource, mut service) = (false, false, None);
            sink.begin_resource();
            s.object(|s, key| {
                if key == b"resource" {
                    if std::mem::replace(&mut seen_resource, true) {
                        return Err(Fallback);
                    }
                    if s.peek()? == b'n' {
                        return s.literal(b"null");
                    }
                    service = s.resource()?;
                    return Ok(());
                }
                if key != b"scopeSpans" {
                    return s.skip(2);
                }
                if std::mem::replace(&mut seen, true) {
                    return Err(Fallback);
                }
                s.array(|s| {
                    let mut seen = false;
                    s.object(|s, key| {
                        if key != b"spans" {
                            return s.skip(3);
                        }
                        if std::mem::replace(&mut seen, true) {
                            return Err(Fallback);
                        }
                        s.array(|s| s.span(sink, scratch, &mut links))
                    })
                })
            })?;
            sink.end_resource(service.as_deref());
            Ok(())
        })
    })?;
    s.ws();
    if s.pos != text.len() {
        return Err(Fallback);
    }
    Ok(saw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Scan<(bool, SpanSink)> {
        let mut out = SpanSink::default();
        let mut scratch = Vec::new();
        out.begin(crate::malformed::Location::line(1));
        let saw = scan_line(text, &mut out, &mut scratch)?;
        out.commit();
        Ok((saw, out))
    }

    const SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a\"b"}}]},"scopeSpans":[{"scope":{"name":"mqtrace"},"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"send orders","kind":4,"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"mqtrace.stage","value":{"stringValue":"produce"}},{"key":"mqtrace.producer.id","value":{"stringValue":"p\u0031"}},{"key":"mqtrace.stream","value":{"stringValue":"orders"}},{"key":"mqtrace.seq","value":{"intValue":"7"}},{"key":"mqtrace.attempt","value":{"intValue":1}},{"key":"x","value":{"arrayValue":{"values":[{"doubleValue":1.5e3},null,true]}}}],"status":{},"events":[],"links":[]}]}]}]}"#;

    #[test]
    fn a_well_formed_request_is_read_with_escapes_decoded() {
        let (saw, out) = scan(SPAN).expect("fast path");
        assert!(saw);
        assert_eq!(out.stats.spans, 1);
        assert_eq!(out.stats.messaging_spans, 1);
        assert!(out.stats.malformed.is_empty());
        assert_eq!(out.columns.len(), 1);
    }

    #[test]
    fn anything_unexpected_leaves_the_fast_path() {
        for bad in [
            "",
            "{",
            &SPAN[..SPAN.len() - 3], // torn
            &format!("{SPAN} x"),    // trailing garbage
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":tru}]}]}]}"#, // bad literal
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"value":{}}]}]}]}]}"#, // no key
            r#"{"resource\u0053pans":[]}"#, // escaped key
            r#"{"resourceSpans":[1,]}"#,    // trailing comma
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\q"}]}]}]}"#, // bad escape
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"\u00zz"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":01}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":1.}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":-.5}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":1.e5}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","name":"b"}]}]}]}"#,
            r#"{"resourceSpans":[],"resourceSpans":[]}"#,
        ] {
            assert!(scan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_without_resource_spans_is_not_one() {
        let (saw, _) = scan(r#"{"other":[1,2,{"a":null}]}"#).expect("well-formed");
        assert!(!saw);
    }
}
