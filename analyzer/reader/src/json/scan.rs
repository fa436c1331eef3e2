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
            let (mut key, mut value, mut seen_value) = (None, None, false);
            s.object(|s, field| {
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
            let key = key.ok_or(Fallback)?;
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

    fn span(&mut self, sink: &mut SpanSink, scratch: &mut KeptAttributes<'de>) -> Scan<()> {
        scratch.clear();
        let (mut trace_id, mut name, mut start, mut end) = (None, None, None, None);
        let mut seen_attributes = false;
        self.object(|s, key| {
            let slot = match key {
                b"traceId" => &mut trace_id,
                b"name" => &mut name,
                b"startTimeUnixNano" => &mut start,
                b"endTimeUnixNano" => &mut end,
                b"attributes" => {
                    if std::mem::replace(&mut seen_attributes, true) {
                        return Err(Fallback);
                    }
                    return s.attributes(scratch);
                }
                _ => return s.skip(1),
            };
            if slot.replace(s.scalar()?).is_some() {
                return Err(Fallback); // a repeated field
            }
            Ok(())
        })?;
        sink.span(span_in(&trace_id, &name, &start, &end), scratch);
        Ok(())
    }
}

/// A span's fields as the sink takes them (either JSON reader builds it so).
pub(crate) fn span_in<'a>(
    trace_id: &'a Option<Scalar<'a>>,
    name: &'a Option<Scalar<'a>>,
    start: &'a Option<Scalar<'a>>,
    end: &'a Option<Scalar<'a>>,
) -> SpanIn<'a> {
    let text = |v: &'a Option<Scalar<'a>>| match v {
        Some(Scalar::Str(s)) => s.as_ref(),
        _ => "",
    };
    let nanos = |v: &'a Option<Scalar<'a>>| v.as_ref().map_or(Nanos::Absent, Nanos::Json);
    SpanIn {
        trace_id: TraceId::Hex(text(trace_id)),
        name: text(name),
        start: nanos(start),
        end: nanos(end),
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
    s.object(|s, key| {
        if key != b"resourceSpans" {
            return s.skip(1);
        }
        if std::mem::replace(&mut saw, true) {
            return Err(Fallback);
        }
        s.array(|s| {
            let mut seen = false;
            s.object(|s, key| {
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
                        s.array(|s| s.span(sink, scratch))
                    })
                })
            })
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
