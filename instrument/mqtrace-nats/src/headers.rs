//! NATS header maps as OpenTelemetry carriers.

use async_nats::{HeaderMap, HeaderName};
use opentelemetry::propagation::{Extractor, Injector};

/// The header names mqtrace writes, as names that cost no allocation to use (a name made from
/// a `&str` is copied each time: on every publish and every lookup).
fn static_name(key: &str) -> Option<HeaderName> {
    mqtrace::names::header::ALL
        .into_iter()
        .find(|k| *k == key)
        .map(HeaderName::from_static)
}

/// Collects the headers mqtrace writes, to add them to a publish.
#[derive(Debug, Default)]
pub(crate) struct HeaderWriter(pub(crate) Vec<(HeaderName, String)>);

impl Injector for HeaderWriter {
    fn set(&mut self, key: &str, value: String) {
        // Header names are checked by async-nats (it panics on a bad one): only mqtrace's
        // own constant names are written.
        if let Some(name) = static_name(key) {
            self.0.push((name, value));
        }
    }
}

/// Reads the headers of a received message (none when it has no headers).
#[derive(Clone, Copy, Debug)]
pub struct HeaderReader<'a>(pub Option<&'a HeaderMap>);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let headers = self.0?;
        match static_name(key) {
            Some(name) => headers.get(name),
            // Not one of ours: compare by text rather than build (and check) a name.
            None => headers
                .iter()
                .find(|(k, _)| AsRef::<str>::as_ref(*k) == key)
                .and_then(|(_, values)| values.first()),
        }
        .map(|v| v.as_str())
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
            map.insert(k, v);
        }
        map.insert("x-other", "y");
        assert_eq!(HeaderReader(Some(&map)).get("mqtrace-seq"), Some("9"));
        assert_eq!(HeaderReader(Some(&map)).get("x-other"), Some("y"));
        assert_eq!(HeaderReader(Some(&map)).keys().len(), 2);
        assert_eq!(HeaderReader(None).get("mqtrace-seq"), None);
    }
}
