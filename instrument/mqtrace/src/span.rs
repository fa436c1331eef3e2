//! What every stage's span shares: the tracer, the parent lookup, the common attributes.

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{Tracer, TracerProvider};
use opentelemetry::{Context, InstrumentationScope, KeyValue, StringValue, Value};
use std::sync::Arc;

use crate::message::MessageKey;
use crate::names::{SCOPE_NAME, Stage, attr};

/// How the instrumentation reaches OpenTelemetry: a tracer and the `messaging.system` value.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) tracer: BoxedTracer,
    pub(crate) system: Arc<str>,
}

/// The instrumentation scope of mqtrace's spans.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Where the spans go: the global provider, or one the app hands over.
#[derive(Debug, Default)]
pub(crate) enum TracerChoice {
    #[default]
    Global,
    Given(BoxedTracer),
}

impl TracerChoice {
    pub(crate) fn from_provider<P>(provider: &P) -> Self
    where
        P: TracerProvider,
        P::Tracer: Tracer + Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        TracerChoice::Given(BoxedTracer::new(Box::new(
            provider.tracer_with_scope(scope()),
        )))
    }

    pub(crate) fn into_tracer(self) -> BoxedTracer {
        match self {
            TracerChoice::Global => global::tracer_provider().tracer_with_scope(scope()),
            TracerChoice::Given(t) => t,
        }
    }
}

/// The app's current context: its current `tracing` span when tracing-opentelemetry is in
/// use, else OpenTelemetry's current context.
pub(crate) fn app_context() -> Context {
    #[cfg(feature = "tracing")]
    {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let current = tracing::Span::current();
        if !current.is_none() {
            let cx = current.context();
            if cx.span().span_context().is_valid() {
                return cx;
            }
        }
    }
    Context::current()
}

/// Whether the app's sampler keeps what happens now (SPEC §2b: "every message the app's
/// sampler keeps" gets full spans in ledger mode): the app's current span — its `tracing` span
/// through tracing-opentelemetry, else OpenTelemetry's current span — is sampled and
/// recording. No current span, a span the sampler dropped, or only a remote parent (nothing
/// of this process records it): not kept.
pub(crate) fn app_sampled() -> bool {
    use opentelemetry::trace::TraceContextExt;
    #[cfg(feature = "tracing")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let current = tracing::Span::current();
        if !current.is_none() {
            let cx = current.context();
            let span = cx.span();
            if span.span_context().is_valid() {
                return span.span_context().is_sampled() && span.is_recording();
            }
        }
    }
    Context::map_current(|cx| {
        let span = cx.span();
        span.span_context().is_sampled() && span.is_recording()
    })
}

pub(crate) fn str_value(s: &Arc<str>) -> Value {
    Value::String(StringValue::from(s.clone()))
}

/// The attributes every stage's span carries (SPEC §2), with room for `extra` more.
pub(crate) fn common_attributes(
    stage: Stage,
    system: &Arc<str>,
    key: Option<&MessageKey>,
    message_id: Option<&Arc<str>>,
    destination: &Arc<str>,
    partition: Option<&Arc<str>>,
    extra: usize,
) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(9 + extra);
    attrs.push(KeyValue::new(attr::STAGE, stage.as_str()));
    attrs.push(KeyValue::new(attr::MESSAGING_SYSTEM, str_value(system)));
    attrs.push(KeyValue::new(
        attr::MESSAGING_DESTINATION_NAME,
        str_value(destination),
    ));
    if let Some(key) = key {
        attrs.push(KeyValue::new(
            attr::PRODUCER_ID,
            str_value(&key.producer_id),
        ));
        attrs.push(KeyValue::new(attr::STREAM, str_value(&key.stream)));
        attrs.push(KeyValue::new(
            attr::SEQ,
            i64::try_from(key.seq).unwrap_or(i64::MAX),
        ));
    }
    if let Some(id) = message_id {
        attrs.push(KeyValue::new(attr::MESSAGING_MESSAGE_ID, str_value(id)));
    }
    if let Some(p) = partition {
        attrs.push(KeyValue::new(
            attr::MESSAGING_DESTINATION_PARTITION_ID,
            str_value(p),
        ));
    }
    attrs
}

/// `"{operation} {destination}"`, the span name the messaging conventions ask for. Built by
/// hand: `format!` costs more than the rest of the name's work on this hot path.
pub(crate) fn span_name(operation: &str, destination: &str) -> String {
    let mut name = String::with_capacity(operation.len() + 1 + destination.len());
    name.push_str(operation);
    name.push(' ');
    name.push_str(destination);
    name
}
