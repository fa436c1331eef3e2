//! NATS header maps as OpenTelemetry carriers.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};

/// Collects the headers mqtrace writes, to add them to a publish.
#[derive(Debug, Default)]
pub(crate) struct HeaderWriter(pub(crate) Vec<(String, String)>);

impl Injector for HeaderWriter {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// Reads the headers of a received message (none when it has no headers).
#[derive(Clone, Copy, Debug)]
pub struct HeaderReader<'a>(pub Option<&'a HeaderMap>);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0?.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .map(|h| h.iter().map(|(k, _)| AsRef::<str>::as_ref(k)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_written_to_a_map_read_back() {
        let mut writer = HeaderWriter::default();
        writer.set("mqtrace-seq", "9".to_owned());
        let mut map = HeaderMap::new();
        for (k, v) in writer.0 {
            map.insert(k.as_str(), v);
        }
        assert_eq!(HeaderReader(Some(&map)).get("mqtrace-seq"), Some("9"));
        assert_eq!(HeaderReader(Some(&map)).keys(), vec!["mqtrace-seq"]);
        assert_eq!(HeaderReader(None).get("mqtrace-seq"), None);
    }
}
