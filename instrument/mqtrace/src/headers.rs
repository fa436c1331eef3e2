//! Writing and reading the message headers of SPEC §3.
//!
//! Adapters implement OpenTelemetry's own carrier traits ([`Injector`], [`Extractor`]) once for
//! their client's header type; the same carrier then moves both the W3C trace context and the
//! mqtrace numbering.
//!
//! The W3C `traceparent` codec is written out here (a few lines) because the propagator that
//! ships with OpenTelemetry lives in the SDK, and this crate depends on the API only.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use std::str::FromStr;

use crate::message::MessageKey;
use crate::names::header;

/// What a consumer reads back from a message's headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncomingHeaders {
    /// The producer's numbering, when all three headers are present and valid.
    pub key: Option<MessageKey>,
    /// `mqtrace-message-id`, when present.
    pub message_id: Option<String>,
    /// The producer's span context from `traceparent`/`tracestate`, when valid.
    pub remote: Option<SpanContext>,
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
    carrier.set(header::PRODUCER_ID, key.producer_id.to_string());
    carrier.set(header::STREAM, key.stream.to_string());
    carrier.set(header::SEQ, key.seq.to_string());
    carrier.set(header::MESSAGE_ID, message_id.to_owned());
}

/// Reads back what [`inject`] wrote. Missing or malformed headers yield `None` parts: a
/// message from an uninstrumented producer is still traced.
pub fn extract(carrier: &dyn Extractor) -> IncomingHeaders {
    let key = match (
        carrier.get(header::PRODUCER_ID),
        carrier.get(header::STREAM),
        carrier.get(header::SEQ).and_then(|s| s.trim().parse::<u64>().ok()),
    ) {
        (Some(p), Some(s), Some(seq)) if seq >= 1 => Some(MessageKey::new(p, s, seq)),
        _ => None,
    };
    let remote = carrier.get(header::TRACEPARENT).and_then(|tp| {
        let state = carrier
            .get(header::TRACESTATE)
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        parse_traceparent(tp, state)
    });
    IncomingHeaders {
        key,
        message_id: carrier.get(header::MESSAGE_ID).map(str::to_owned),
        remote,
    }
}

/// `00-{trace id}-{span id}-{flags}` (W3C Trace Context, version 00).
pub fn format_traceparent(span: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    )
}

/// Parses a `traceparent` value; `None` unless it is a valid, non-zero version-00 context.
pub fn parse_traceparent(value: &str, state: TraceState) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; later versions may append more (W3C §3.2.4).
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let is_lower_hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !(is_lower_hex(trace) && is_lower_hex(span) && is_lower_hex(flags)) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let cx = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    );
    cx.is_valid().then_some(cx)
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
        assert_eq!(
            carrier["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(carrier["tracestate"], "vendor=x");
        assert_eq!(carrier["mqtrace-seq"], "42");

        let back = extract(&carrier);
        assert_eq!(back.key, Some(key));
        assert_eq!(back.message_id.as_deref(), Some("custom-id"));
        let remote = back.remote.expect("traceparent read back");
        assert_eq!(remote.trace_id(), sampled_context().trace_id());
        assert_eq!(remote.span_id(), sampled_context().span_id());
        assert!(remote.is_sampled() && remote.is_remote());
        assert_eq!(remote.trace_state().get("vendor"), Some("x"));
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
            assert_eq!(parse_traceparent(bad, TraceState::default()), None, "{bad:?}");
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
