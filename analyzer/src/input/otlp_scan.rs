//! The fast path for OTLP JSON lines: a scanner that knows the shape of an
//! `ExportTraceServiceRequest` and walks it byte by byte. Strings are found with `memchr`
//! (the line is UTF-8-checked once), keys are compared as bytes, and whatever the analyzer
//! does not read is skipped without building anything.
//!
//! It answers only "this line is well-formed and here are its spans" or "not on the fast
//! path": any surprise (an escaped key, a missing field, bad JSON) sends the line to the
//! serde reader in [`super::otlp_json`], which gives the precise reason.

use memchr::memchr2;
use std::borrow::Cow;

use super::chunk::ChunkOutput;
use super::extract::{KeptAttributes, Scalar, known_key};
use super::otlp_json::take_span;

/// Not on the fast path: the serde reader decides (and explains).
#[derive(Debug)]
pub(super) struct Fallback;

type Scan<T> = Result<T, Fallback>;

/// How deep skipped values may nest (serde_json's own limit).
const MAX_DEPTH: u32 = 128;

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

    /// The raw contents of the string at the cursor and whether it holds escapes.
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
            at = hit + 2; // the escaped character is never the closing quote
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

    /// The text of the number at the cursor (checked by the caller's parse, or by
    /// [`Self::skip`]'s).
    fn number(&mut self) -> Scan<&'de str> {
        let b = self.bytes();
        let start = self.pos;
        while let Some(c) = b.get(self.pos) {
            if !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            self.pos += 1;
        }
        self.text.get(start..self.pos).ok_or(Fallback)
    }

    /// Skips one value of any kind, checking that it is well-formed.
    fn skip(&mut self, depth: u32) -> Scan<()> {
        if depth > MAX_DEPTH {
            return Err(Fallback);
        }
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let n = self.number()?;
                n.parse::<f64>().map(drop).map_err(|_| Fallback)
            }
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
                let n = self.number()?;
                match n.parse::<i64>() {
                    Ok(i) => Scalar::Int(i),
                    Err(_) => match n.parse::<u64>() {
                        Ok(_) => Scalar::Other, // beyond i64, as serde's reader has it
                        Err(_) => Scalar::Double(n.parse::<f64>().map_err(|_| Fallback)?),
                    },
                }
            }
            _ => {
                self.skip(0)?;
                Scalar::Other
            }
        })
    }

    /// An `AnyValue` object, with the precedence of the serde reader's `into_scalar`.
    fn any_value(&mut self) -> Scan<Scalar<'de>> {
        let (mut string, mut int, mut boolean, mut double) = (None, None, None, None);
        self.object(|s, key| {
            match key {
                b"stringValue" => string = Some(s.scalar()?),
                b"intValue" => int = Some(s.scalar()?),
                b"boolValue" => boolean = Some(s.scalar()?),
                b"doubleValue" => double = Some(s.scalar()?),
                _ => s.skip(1)?,
            }
            Ok(())
        })?;
        Ok(if let Some(v) = string {
            match v {
                Scalar::Str(s) => Scalar::Str(s),
                _ => Scalar::Other,
            }
        } else if let Some(v) = int {
            match v {
                Scalar::Str(s) => Scalar::IntText(s),
                Scalar::Int(i) => Scalar::Int(i),
                _ => Scalar::Other,
            }
        } else if let Some(v) = boolean {
            v
        } else if let Some(v) = double {
            v
        } else {
            Scalar::Other
        })
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
            let (mut key, mut value) = (None, None);
            s.object(|s, field| {
                match field {
                    b"key" => key = Some(s.string()?),
                    b"value" => {
                        value = Some(if s.peek()? == b'n' {
                            s.literal(b"null")?;
                            Scalar::Other
                        } else {
                            s.any_value()?
                        })
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
            "intValue" | "doubleValue" | "boolValue" => {
                self.pos = at;
                let v = self.scalar().ok()?;
                at = self.pos;
                match (kind, v) {
                    ("intValue", v @ (Scalar::Int(_) | Scalar::Other)) => v,
                    ("intValue", _) => Scalar::Other,
                    (_, v) => v,
                }
            }
            _ => return None,
        };
        expect(&mut at, b"}}")?;
        self.pos = at;
        Some((key, value))
    }

    fn span(
        &mut self,
        out: &mut ChunkOutput,
        scratch: &mut KeptAttributes<'de>,
        line: u64,
    ) -> Scan<()> {
        scratch.clear();
        let (mut trace_id, mut name, mut start, mut end) = (None, None, None, None);
        self.object(|s, key| {
            match key {
                b"traceId" => trace_id = Some(s.scalar()?),
                b"name" => name = Some(s.scalar()?),
                b"startTimeUnixNano" => start = Some(s.scalar()?),
                b"endTimeUnixNano" => end = Some(s.scalar()?),
                b"attributes" => s.attributes(scratch)?,
                _ => s.skip(1)?,
            }
            Ok(())
        })?;
        out.stats.spans += 1;
        if let Err(reason) = take_span(trace_id, name, start, end, scratch, out) {
            out.malformed_line(line, reason);
        }
        Ok(())
    }
}

/// Reads one line of OTLP JSON into `out`: `Ok(true)` when it was a request with
/// `resourceSpans`. `Err` leaves `out` to be rolled back by the caller.
pub(super) fn scan_line<'de>(
    text: &'de str,
    line: u64,
    out: &mut ChunkOutput,
    scratch: &mut KeptAttributes<'de>,
) -> Scan<bool> {
    let mut s = Scanner { text, pos: 0 };
    let mut saw = false;
    s.object(|s, key| {
        if key != b"resourceSpans" {
            return s.skip(1);
        }
        saw = true;
        s.array(|s| {
            s.object(|s, key| {
                if key != b"scopeSpans" {
                    return s.skip(2);
                }
                s.array(|s| {
                    s.object(|s, key| {
                        if key != b"spans" {
                            return s.skip(3);
                        }
                        s.array(|s| s.span(out, scratch, line))
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

    fn scan(text: &str) -> Scan<(bool, ChunkOutput)> {
        let mut out = ChunkOutput::default();
        let mut scratch = Vec::new();
        let saw = scan_line(text, 1, &mut out, &mut scratch)?;
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
