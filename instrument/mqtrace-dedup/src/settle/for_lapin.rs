//! RabbitMQ deliveries (mqtrace-lapin).

use super::{Settle, SettleError};
use lapin::options::BasicAckOptions;
use mqtrace::MessageKey;
use mqtrace_lapin::TracedDelivery;

/// lapin answers `Ok(false)` for a settle it did not send (channel closed, or settled
/// already): not an error to lapin, but the broker will deliver the message again.
fn sent(result: lapin::Result<bool>) -> Result<(), SettleError> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(SettleError::new(
            "lapin did not send the ack (channel closed, or settled already)",
        )),
        Err(e) => Err(SettleError::new(e)),
    }
}

impl Settle for TracedDelivery {
    fn key(&self) -> Option<&MessageKey> {
        TracedDelivery::key(self)
    }

    fn fallback_id(&self) -> Option<String> {
        let id = self.delivery().properties.message_id().as_ref()?;
        Some(id.as_str().to_owned())
    }

    async fn ack(self) -> Result<(), SettleError> {
        sent(TracedDelivery::ack(self, BasicAckOptions::default()).await)
    }

    async fn skip_duplicate(self) -> Result<(), SettleError> {
        sent(TracedDelivery::skip_duplicate(self, BasicAckOptions::default()).await)
    }
}
