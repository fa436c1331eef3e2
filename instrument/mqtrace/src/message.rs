//! A message's identity and the outcomes recorded for it.

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
        let mut seq = itoa::Buffer::new();
        let seq = seq.format(self.seq);
        let mut id =
            String::with_capacity(self.producer_id.len() + self.stream.len() + seq.len() + 2);
        id.push_str(&self.producer_id);
        id.push(':');
        id.push_str(&self.stream);
        id.push(':');
        id.push_str(seq);
        id
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
    }

    #[test]
    fn outcomes_use_the_spec_values() {
        assert_eq!(StoreOutcome::Timeout.as_str(), "timeout");
        assert_eq!(SettleOutcome::SkipDuplicate.to_string(), "skip_duplicate");
    }
}
