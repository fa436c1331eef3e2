//! Kafka message headers as OpenTelemetry carriers.

use opentelemetry::propagation::{Extractor, Injector};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Collects the headers mqtrace writes, to append them to a record's own.
#[derive(Debug, Default)]
pub(crate) struct HeaderWriter(pub(crate) Vec<(&'static str, String)>);

impl Injector for HeaderWriter {
    fn set(&mut self, key: &str, value: String) {
        // mqtrace only writes its own constant keys; map them back to 'static for rdkafka.
        let key = mqtrace_key(key);
        self.0.push((key, value));
    }
}

fn mqtrace_key(key: &str) -> &'static str {
    mqtrace::names::header::ALL
        .into_iter()
        .find(|k| *k == key)
        .unwrap_or("mqtrace-unknown")
}

impl HeaderWriter {
    /// `existing` with these headers appended.
    pub(crate) fn append_to(self, existing: Option<OwnedHeaders>) -> OwnedHeaders {
        let mut headers = existing.unwrap_or_else(|| OwnedHeaders::new_with_capacity(self.0.len()));
        for (key, value) in &self.0 {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_str()),
            });
        }
        headers
    }
}

/// Reads headers of a received message (any rdkafka header type).
pub struct HeaderReader<'a, H: Headers>(pub &'a H);

impl<H: Headers> Extractor for HeaderReader<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.key).collect()
    }
}

/// Reads nothing: for a message without headers.
pub(crate) struct NoHeaders;

impl Extractor for NoHeaders {
    fn get(&self, _key: &str) -> Option<&str> {
        None
    }

    fn keys(&self) -> Vec<&str> {
        Vec::new()
    }
}
