//! A message's identity and the outcomes recorded for it.

use mqtrace_vocab::compact;
use std::fmt;
use std::sync::Arc;

/// What names one logical message across every stage: (producer id, stream, seq).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// The producer instance that numbered it.
    pub producer_id: Arc<str>,
    /// The stream it was numbered in.
    pub stream: Arc<str>,
    /// Its number in the stream (≥ 1).
    pub seq: u64,
}

impl MessageKey {
    /// A key from its parts.
    pub fn new(producer_id: impl Into<Arc<str>>, stream: impl Into<Arc<str>>, seq: u64) -> Self {
        Self {
            producer_id: producer_id.into(),
            stream: stream.into(),
            seq,
        }
    }

    /// The default `messaging.message.id`: `"{producer_id}:{stream}:{seq}"`.
    pub fn default_message_id(&self) -> String {
        self.with_default_message_id(str::to_owned)
    }

    /// [`default_message_id`](Self::default_message_id) as the shared string spans and
    /// deliveries hold, in one allocation, not a `String` copied into an `Arc` (this runs for
    /// every message in full mode).
    pub fn default_message_id_arc(&self) -> Arc<str> {
        self.with_default_message_id(|id: &str| Arc::from(id))
    }

    /// Hands the default id to `make` ([`compact::with_default_message_id`]: one assembly, on
    /// the stack, for both owned forms).
    fn with_default_message_id<R>(&self, make: impl FnOnce(&str) -> R) -> R {
        compact::with_default_message_id(&self.producer_id, &self.stream, self.seq, make)
    }
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.producer_id, self.stream, self.seq)
    }
}

pub use mqtrace_vocab::{SettleOutcome, StoreOutcome};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_message_id_joins_the_key_with_colons() {
        let key = MessageKey::new("orders-api-1", "orders", 42);
        assert_eq!(key.default_message_id(), "orders-api-1:orders:42");
        assert_eq!(&*key.default_message_id_arc(), "orders-api-1:orders:42");
        // Longer than the stack buffer: the same id, built on the heap.
        let long = MessageKey::new("p".repeat(150), "s".repeat(20), u64::MAX);
        let expected = format!("{}:{}:{}", "p".repeat(150), "s".repeat(20), u64::MAX);
        assert_eq!(long.default_message_id(), expected);
        assert_eq!(&*long.default_message_id_arc(), long.default_message_id());
    }

    #[test]
    fn outcomes_use_the_spec_values() {
        assert_eq!(StoreOutcome::Timeout.as_str(), "timeout");
        assert_eq!(SettleOutcome::SkipDuplicate.to_string(), "skip_duplicate");
    }
}
