//! OTLP export through opentelemetry-otlp, gRPC or HTTP/protobuf, configured by the standard
//! `OTEL_EXPORTER_OTLP_*` variables.

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
        match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => OtlpProtocol::Grpc,
            _ => OtlpProtocol::HttpProtobuf,
        }
    }
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
}
