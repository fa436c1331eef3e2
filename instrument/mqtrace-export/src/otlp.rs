//! OTLP export through opentelemetry-otlp, gRPC or HTTP/protobuf, configured by the standard
//! `OTEL_EXPORTER_OTLP_*` variables: spans, and the consumers' live counters (SPEC §7).

use opentelemetry_otlp::{Protocol, WithExportConfig};

use crate::error::ExportError;

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// gRPC (default port 4317).
    Grpc,
    /// HTTP with protobuf bodies (default port 4318, path `/v1/traces`).
    HttpProtobuf,
}

impl OtlpProtocol {
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// HTTP/protobuf (the OpenTelemetry default).
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let value = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_default();
        Self::parse(&value).unwrap_or(OtlpProtocol::HttpProtobuf)
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(OtlpProtocol::Grpc),
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            _ => None,
        }
    }

    /// The protocol of the metrics beside a traces destination of protocol `traces`:
    /// `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL` when set to `grpc` or `http/protobuf`, else the
    /// same as the traces (one collector, one port).
    pub fn metrics_from_env(traces: OtlpProtocol) -> Self {
        Self::metrics_from_vars(traces, |k| std::env::var(k).ok())
    }

    fn metrics_from_vars(traces: OtlpProtocol, var: impl Fn(&str) -> Option<String>) -> Self {
        var("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            .and_then(|v| Self::parse(&v))
            .unwrap_or(traces)
    }
}

/// Whether the standard `OTEL_METRICS_EXPORTER` variable lets metrics go out over OTLP: unset
/// or empty (OpenTelemetry's default is `otlp`), or a list naming `otlp`. `none`, or a list of
/// exporters this crate does not provide (`console`, `prometheus`), turns OTLP metrics off.
pub fn otlp_metrics_from_env() -> bool {
    otlp_metrics_from_value(std::env::var("OTEL_METRICS_EXPORTER").ok().as_deref())
}

fn otlp_metrics_from_value(value: Option<&str>) -> bool {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => true,
        Some(list) => list
            .split(',')
            .any(|e| e.trim().eq_ignore_ascii_case("otlp")),
    }
}

/// The OTLP/HTTP metrics URL beside a traces URL: `…/v1/traces` becomes `…/v1/metrics`; any
/// other URL is taken for the collector's base URL and gets `/v1/metrics`.
pub(crate) fn metrics_url(traces: &str) -> String {
    let base = traces.trim_end_matches('/');
    let base = base.strip_suffix("/v1/traces").unwrap_or(base);
    format!("{base}/v1/metrics")
}

/// An OTLP metric exporter. `endpoint` as for [`otlp_exporter`] (for HTTP, the traces URL:
/// `/v1/traces` becomes `/v1/metrics`); without it the `OTEL_EXPORTER_OTLP_(METRICS_)*`
/// variables apply, and `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` in any case
/// (default cumulative). A gRPC exporter must be built inside a tokio runtime.
pub fn otlp_metric_exporter(
    protocol: OtlpProtocol,
    endpoint: Option<&str>,
) -> Result<opentelemetry_otlp::MetricExporter, ExportError> {
    let builder = opentelemetry_otlp::MetricExporter::builder();
    let exporter = match protocol {
        OtlpProtocol::Grpc => {
            let b = builder.with_tonic().with_protocol(Protocol::Grpc);
            match endpoint {
                Some(e) => b.with_endpoint(e).build()?,
                None => b.build()?,
            }
        }
        OtlpProtocol::HttpProtobuf => {
            let b = builder.with_http().with_protocol(Protocol::HttpBinary);
            match endpoint {
                Some(e) => b.with_endpoint(metrics_url(e)).build()?,
                None => b.build()?,
            }
        }
    };
    Ok(exporter)
}

/// An OTLP span exporter. The endpoint, headers, timeout and compression come from the
/// `OTEL_EXPORTER_OTLP_*` variables unless `endpoint` is given. A gRPC exporter must be
/// built inside a tokio runtime (the pipeline builder takes care of that).
pub fn otlp_exporter(
    protocol: OtlpProtocol,
    endpoint: Option<&str>,
) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match protocol {
        OtlpProtocol::Grpc => {
            let b = builder.with_tonic().with_protocol(Protocol::Grpc);
            match endpoint {
                Some(e) => b.with_endpoint(e).build()?,
                None => b.build()?,
            }
        }
        OtlpProtocol::HttpProtobuf => {
            let b = builder.with_http().with_protocol(Protocol::HttpBinary);
            match endpoint {
                Some(e) => b.with_endpoint(e).build()?,
                None => b.build()?,
            }
        }
    };
    Ok(exporter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_follows_the_standard_variables() {
        fn vars(
            traces: Option<&'static str>,
            all: Option<&'static str>,
        ) -> impl Fn(&str) -> Option<String> {
            move |k: &str| match k {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" => traces.map(str::to_owned),
                "OTEL_EXPORTER_OTLP_PROTOCOL" => all.map(str::to_owned),
                _ => None,
            }
        }
        assert_eq!(
            OtlpProtocol::from_vars(vars(None, None)),
            OtlpProtocol::HttpProtobuf
        );
        assert_eq!(
            OtlpProtocol::from_vars(vars(None, Some("grpc"))),
            OtlpProtocol::Grpc
        );
        assert_eq!(
            OtlpProtocol::from_vars(vars(Some("http/protobuf"), Some("grpc"))),
            OtlpProtocol::HttpProtobuf,
            "the traces-specific variable wins"
        );
    }

    #[test]
    fn metrics_follow_the_traces_unless_their_own_variables_say_otherwise() {
        let metrics = |v: Option<&'static str>| {
            move |k: &str| {
                (k == "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
                    .then(|| v.map(str::to_owned))
                    .flatten()
            }
        };
        assert_eq!(
            OtlpProtocol::metrics_from_vars(OtlpProtocol::Grpc, metrics(None)),
            OtlpProtocol::Grpc
        );
        assert_eq!(
            OtlpProtocol::metrics_from_vars(OtlpProtocol::Grpc, metrics(Some("http/protobuf"))),
            OtlpProtocol::HttpProtobuf
        );
        assert_eq!(
            OtlpProtocol::metrics_from_vars(OtlpProtocol::HttpProtobuf, metrics(Some("carrier"))),
            OtlpProtocol::HttpProtobuf,
            "an unknown value keeps the traces' protocol"
        );
        for (value, on) in [
            (None, true),
            (Some(""), true),
            (Some("otlp"), true),
            (Some("console, OTLP"), true),
            (Some("none"), false),
            (Some("prometheus"), false),
        ] {
            assert_eq!(otlp_metrics_from_value(value), on, "{value:?}");
        }
        assert_eq!(
            metrics_url("http://127.0.0.1:4318/v1/traces"),
            "http://127.0.0.1:4318/v1/metrics"
        );
        assert_eq!(
            metrics_url("http://collector:4318/"),
            "http://collector:4318/v1/metrics"
        );
    }
}
