//! AMQP header tables as OpenTelemetry carriers.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use opentelemetry::propagation::{Extractor, Injector};

/// Writes headers into an AMQP field table as long strings.
pub(crate) struct TableWriter<'a>(pub(crate) &'a mut FieldTable);

impl Injector for TableWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(
            ShortString::from(key),
            AMQPValue::LongString(LongString::from(value)),
        );
    }
}

/// Reads string headers of a received message's field table; other value types read as absent.
#[derive(Clone, Copy, Debug)]
pub struct TableReader<'a>(pub Option<&'a FieldTable>);

impl Extractor for TableReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match self.0?.inner().get(key)? {
            AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            AMQPValue::ShortString(s) => Some(s.as_str()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .map(|t| t.inner().keys().map(ShortString::as_str).collect())
            .unwrap_or_default()
    }
}

/// `x-delivery-count` of a quorum queue's redelivery (how many times it was returned before).
pub(crate) fn x_delivery_count(table: Option<&FieldTable>) -> Option<u32> {
    let value = table?.inner().get("x-delivery-count")?;
    let n: i64 = match value {
        AMQPValue::LongLongInt(n) => *n,
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        _ => return None,
    };
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_headers_read_back_as_strings() {
        let mut table = FieldTable::default();
        TableWriter(&mut table).set("mqtrace-seq", "7".to_owned());
        table.insert("x-delivery-count".into(), AMQPValue::LongLongInt(2));
        let reader = TableReader(Some(&table));
        assert_eq!(reader.get("mqtrace-seq"), Some("7"));
        assert_eq!(reader.get("x-delivery-count"), None, "not a string");
        assert_eq!(reader.get("absent"), None);
        assert_eq!(x_delivery_count(Some(&table)), Some(2));
        assert_eq!(TableReader(None).get("mqtrace-seq"), None);
    }
}
