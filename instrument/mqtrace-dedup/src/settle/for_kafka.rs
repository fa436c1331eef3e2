//! Kafka messages (mqtrace-kafka): settling stores the offset for the next commit.

use super::{Settle, SettleError};
use mqtrace::MessageKey;
use mqtrace_kafka::{OffsetStore, TracedMessage};
use rdkafka::message::Message as _;
use std::future::Future;

impl<K: OffsetStore> Settle for TracedMessage<'_, K> {
    fn key(&self) -> Option<&MessageKey> {
        TracedMessage::key(self)
    }

    fn fallback_id(&self) -> Option<String> {
        let m = self.message();
        Some(format!("{}/{}/{}", m.topic(), m.partition(), m.offset()))
    }

    // rdkafka's offset store is a local call: nothing to await.
    fn ack(self) -> impl Future<Output = Result<(), SettleError>> + Send {
        std::future::ready(TracedMessage::ack(self).map_err(SettleError::new))
    }

    fn skip_duplicate(self) -> impl Future<Output = Result<(), SettleError>> + Send {
        std::future::ready(TracedMessage::skip_duplicate(self).map_err(SettleError::new))
    }
}
