//! Writing and reading the message headers of SPEC §3.
//!
//! Adapters implement OpenTelemetry's own carrier traits ([`Injector`], [`Extractor`]) once for
//! their client's header type; the same carrier then moves both the W3C trace context and the
//! mqtrace numbering.
//!
//! The W3C `traceparent` codec is written out here (a few lines) because the propagator that
//! ships with OpenTelemetry lives in the SDK, and this crate depends on the API only.

use mqtrace_vocab::compact::{self, CompactError};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::message::MessageKey;
use crate::names::header;

/// Compact `mqtrace` header values that did not parse, process-wide.
static MALFORMED_COMPACT: AtomicU64 = AtomicU64::new(0);

/// How many compact `mqtrace` header values [`extract`] could not parse in this process so far
/// (each such message was read as one without mqtrace's compact header). Per consumer:
/// [`Consumer::malformed_headers`](crate::Consumer::malformed_headers).
pub fn malformed_compact_headers() -> u64 {
    MALFORMED_COMPACT.load(Ordering::Relaxed)
}

/// What a consumer reads back from a message's headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncomingHeaders {
    /// The producer's numbering, when all three headers are present and valid.
    pub key: Option<MessageKey>,
    /// `mqtrace-message-id`, when present.
    pub message_id: Option<Arc<str>>,
    /// The producer's span context from `traceparent`/`tracestate`, when valid.
    pub remote: Option<SpanContext>,
    /// The send attempt that wrote the headers (`mqtrace-attempt`, or the compact header's
    /// attempt field), when present and valid.
    pub attempt: Option<u32>,
    /// Why the compact `mqtrace` header, present, was not read (the message then counts as
    /// one without it; the five-header form is still read if present).
    pub compact_error: Option<CompactError>,
}

/// Writes the trace context of `span` and the message's numbering into `carrier`.
pub fn inject(carrier: &mut dyn Injector, span: &SpanContext, key: &MessageKey, message_id: &str) {
    if span.is_valid() {
        carrier.set(header::TRACEPARENT, format_traceparent(span));
        let state = span.trace_state().header();
        if !state.is_empty() {
            carrier.set(header::TRACESTATE, state);
        }
    }
    // `String::from(&str)`, not `to_string()`: the latter goes through `Display` and the
    // formatter's padding logic, several times the cost of the copy, for every message.
    carrier.set(header::PRODUCER_ID, String::from(&*key.producer_id));
    carrier.set(header::STREAM, String::from(&*key.stream));
    carrier.set(header::SEQ, itoa::Buffer::new().format(key.seq).to_owned());
    carrier.set(header::MESSAGE_ID, message_id.to_owned());
}

/// Writes the compact form (SPEC §3 v2): the one `mqtrace` header
/// `1;{producer_id};{stream};{seq};{attempt}[;{message_id}]`, and the trace context of `span`
/// only when one is given (a span context is propagated: ledger mode's full spans). `message_id`
/// is written only when it differs from the default `{producer_id}:{stream}:{seq}`.
pub fn inject_compact(
    carrier: &mut dyn Injector,
    span: Option<&SpanContext>,
    key: &MessageKey,
    message_id: Option<&str>,
    attempt: u32,
) {
    if let Some(span) = span.filter(|s| s.is_valid()) {
        carrier.set(header::TRACEPARENT, format_traceparent(span));
        let state = span.trace_state().header();
        if !state.is_empty() {
            carrier.set(header::TRACESTATE, state);
        }
    }
    carrier.set(
        header::COMPACT,
        compact::encode(
            &key.producer_id,
            &key.stream,
            key.seq,
            u64::from(attempt),
            message_id,
        ),
    );
}

/// Writes `mqtrace-attempt`: for adapters of brokers that give a stored copy no identity of
/// its own (see [`header::ATTEMPT`]).
pub fn inject_attempt(carrier: &mut dyn Injector, attempt: u32) {
    carrier.set(
        header::ATTEMPT,
        itoa::Buffer::new().format(attempt).to_owned(),
    );
}

/// Reads back what [`inject`] or [`inject_compact`] wrote. Missing or malformed headers yield
/// `None` parts: a message from an uninstrumented producer is still traced. A compact header
/// that does not parse is counted ([`malformed_compact_headers`]) and named in
/// [`IncomingHeaders::compact_error`], never a panic.
pub fn extract(carrier: &dyn Extractor) -> IncomingHeaders {
    let compact_error = match carrier
        .get(header::COMPACT)
        .map(|v| compact::decode(v.as_bytes()))
    {
        Some(Ok(c)) => {
            // The compact header names the message whole: the five headers' numbering, id
            // and attempt would all be overridden, so they are not even looked up (each
            // lookup is a scan of the message's headers on some clients); only the trace
            // context, common to both forms, is read.
            let key = MessageKey::new(c.producer_id, c.stream, c.seq);
            // The id both sides name the message by: carried, else the default (never the
            // broker's own id, which a consumer would otherwise fall back to).
            let message_id = Some(
                c.message_id
                    .map_or_else(|| key.default_message_id_arc(), |id| Arc::from(&*id)),
            );
            return IncomingHeaders {
                key: Some(key),
                message_id,
                remote: trace_context(carrier),
                // An attempt beyond u32 is no attempt this crate wrote: leave it unknown.
                attempt: u32::try_from(c.attempt).ok(),
                compact_error: None,
            };
        }
        Some(Err(e)) => {
            MALFORMED_COMPACT.fetch_add(1, Ordering::Relaxed);
            Some(e)
        }
        None => None,
    };
    IncomingHeaders {
        compact_error,
        ..extract_five(carrier)
    }
}

/// The producer's span context from `traceparent`/`tracestate`, when valid.
fn trace_context(carrier: &dyn Extractor) -> Option<SpanContext> {
    carrier.get(header::TRACEPARENT).and_then(|tp| {
        let state = carrier
            .get(header::TRACESTATE)
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        parse_traceparent(tp, state)
    })
}

/// The five-header form (and the trace context, common to both forms).
fn extract_five(carrier: &dyn Extractor) -> IncomingHeaders {
    let key = match (
        carrier.get(header::PRODUCER_ID),
        carrier.get(header::STREAM),
        carrier
            .get(header::SEQ)
            .and_then(|s| s.trim().parse::<u64>().ok()),
    ) {
        (Some(p), Some(s), Some(seq)) if seq >= 1 => Some(MessageKey::new(p, s, seq)),
        _ => None,
    };
    IncomingHeaders {
        key,
        message_id: carrier.get(header::MESSAGE_ID).map(Arc::from),
        remote: trace_context(carrier),
        attempt: carrier
            .get(header::ATTEMPT)
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|a| *a >= 1),
        compact_error: None,
    }
}

/// `00-{trace id}-{span id}-{flags}` (W3C Trace Context, version 00).
pub fn format_traceparent(span: &SpanContext) -> String {
    // Hex by hand into bytes: this runs for every message sent; `format!` costs several times
    // more, and so does pushing char by char (a UTF-8 branch per character).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    fn put_hex(out: &mut [u8], bytes: &[u8]) {
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
    }
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    put_hex(&mut out[3..35], &span.trace_id().to_bytes());
    put_hex(&mut out[36..52], &span.span_id().to_bytes());
    put_hex(&mut out[53..55], &[span.trace_flags().to_u8()]);
    // Only ASCII hex and dashes were written: the conversion cannot fail.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// Parses a `traceparent` value; `None` unless it is a valid, non-zero context of version 00
/// (or a later version, whose extra fields are ignored as W3C asks).
pub fn parse_traceparent(value: &str, state: TraceState) -> Option<SpanContext> {
    // Fixed layout "vv-<32 hex>-<16 hex>-ff": parsed by offset, for speed on every delivery.
    let b = value.trim().as_bytes();
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let version = lower_hex(&b[0..2])?;
    match (version, b.len()) {
        (0xff, _) => return None,
        (0, 55) => {}
        (0, _) => return None,
        (_, 55) => {}
        (_, _) if b[55] == b'-' => {}
        _ => return None,
    }
    // The trace id as two 64-bit halves: u128 shifts cost several times more per digit.
    let high = u128::from(lower_hex(&b[3..19])?);
    let low = u128::from(lower_hex(&b[19..35])?);
    let trace_id = TraceId::from(high << 64 | low);
    let span_id = SpanId::from(lower_hex(&b[36..52])?);
    let flags = u8::try_from(lower_hex(&b[53..55])?).ok()?;
    let cx = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    );
    cx.is_valid().then_some(cx)
}

/// Lowercase hex (as W3C requires) of at most 32 digits.
/// Up to 16 lowercase hex digits (W3C trace context allows no uppercase).
fn lower_hex(digits: &[u8]) -> Option<u64> {
    debug_assert!(digits.len() <= 16);
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some((acc << 4) | u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sampled_context() -> SpanContext {
        SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736_u128),
            SpanId::from(0x00f067aa0ba902b7_u64),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_key_value([("vendor", "x")]).expect("valid trace state"),
        )
    }

    #[test]
    fn headers_round_trip_through_a_carrier() {
        let key = MessageKey::new("orders-api-1", "orders", 42);
        let mut carrier: HashMap<String, String> = HashMap::new();
        inject(&mut carrier, &sampled_context(), &key, "custom-id");
        inject_attempt(&mut carrier, 3);
        assert_eq!(
            carrier["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(carrier["tracestate"], "vendor=x");
        assert_eq!(carrier["mqtrace-seq"], "42");

        let back = extract(&carrier);
        assert_eq!(back.key, Some(key));
        assert_eq!(back.message_id.as_deref(), Some("custom-id"));
        assert_eq!(back.attempt, Some(3));
        let remote = back.remote.expect("traceparent read back");
        assert_eq!(remote.trace_id(), sampled_context().trace_id());
        assert_eq!(remote.span_id(), sampled_context().span_id());
        assert!(remote.is_sampled() && remote.is_remote());
        assert_eq!(remote.trace_state().get("vendor"), Some("x"));
    }

    #[test]
    fn the_compact_form_round_trips_with_or_without_a_trace_context() {
        let key = MessageKey::new("orders;api", "orders", 42);
        let mut carrier: HashMap<String, String> = HashMap::new();
        inject_compact(&mut carrier, None, &key, Some("orders;api:orders:42"), 2);
        assert_eq!(
            carrier.len(),
            1,
            "no trace context to propagate: one header"
        );
        assert_eq!(carrier["mqtrace"], "1;orders%3Bapi;orders;42;2");
        let back = extract(&carrier);
        assert_eq!(back.key, Some(key.clone()));
        assert_eq!(back.attempt, Some(2));
        assert_eq!(back.message_id.as_deref(), Some("orders;api:orders:42"));
        assert_eq!((back.remote, back.compact_error), (None, None));

        let mut carrier: HashMap<String, String> = HashMap::new();
        inject_compact(&mut carrier, Some(&sampled_context()), &key, Some("m-1"), 1);
        assert_eq!(carrier.len(), 3, "traceparent, tracestate, mqtrace");
        let back = extract(&carrier);
        assert_eq!(back.message_id.as_deref(), Some("m-1"));
        assert_eq!(
            back.remote.map(|r| r.span_id()),
            Some(sampled_context().span_id())
        );
    }

    #[test]
    fn a_compact_value_that_does_not_parse_is_named_and_the_five_headers_still_count() {
        let key = MessageKey::new("p", "s", 3);
        let mut carrier: HashMap<String, String> = HashMap::new();
        carrier.insert("mqtrace".into(), "1;p;s;3".into());
        let back = extract(&carrier);
        assert_eq!(back.key, None);
        assert_eq!(back.compact_error, Some(CompactError::Fields(4)));
        inject(&mut carrier, &SpanContext::empty_context(), &key, "p:s:3");
        let back = extract(&carrier);
        assert_eq!(back.key, Some(key), "the five-header form is read");
        assert!(back.compact_error.is_some());
    }

    #[test]
    fn a_valid_compact_header_names_the_message_over_the_five() {
        let mut carrier: HashMap<String, String> = HashMap::new();
        inject(
            &mut carrier,
            &sampled_context(),
            &MessageKey::new("old", "s", 9),
            "old-id",
        );
        inject_attempt(&mut carrier, 5);
        let key = MessageKey::new("p", "s", 3);
        inject_compact(&mut carrier, None, &key, None, 2);
        let back = extract(&carrier);
        assert_eq!(back.key, Some(key), "the compact numbering");
        assert_eq!(back.message_id.as_deref(), Some("p:s:3"), "its default id");
        assert_eq!(back.attempt, Some(2));
        assert_eq!(
            back.remote.map(|r| r.span_id()),
            Some(sampled_context().span_id()),
            "the trace context is common to both forms"
        );
    }

    #[test]
    fn a_message_without_headers_yields_nothing_but_does_not_fail() {
        let carrier: HashMap<String, String> = HashMap::new();
        assert_eq!(extract(&carrier), IncomingHeaders::default());
    }

    #[test]
    fn a_partial_or_invalid_numbering_is_not_a_key() {
        let mut carrier: HashMap<String, String> = HashMap::new();
        carrier.insert("mqtrace-producer-id".into(), "p".into());
        carrier.insert("mqtrace-stream".into(), "s".into());
        carrier.insert("mqtrace-seq".into(), "zero".into());
        assert_eq!(extract(&carrier).key, None);
        carrier.insert("mqtrace-seq".into(), "0".into());
        assert_eq!(extract(&carrier).key, None, "seq starts at 1");
    }

    #[test]
    fn malformed_traceparents_are_rejected() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(
                parse_traceparent(bad, TraceState::default()),
                None,
                "{bad:?}"
            );
        }
        // A future version may carry extra fields.
        assert!(
            parse_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                TraceState::default()
            )
            .is_some()
        );
    }
}
