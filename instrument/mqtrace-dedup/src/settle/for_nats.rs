//! JetStream messages (mqtrace-nats).

use super::{Settle, SettleError};
use mqtrace::MessageKey;
use mqtrace_nats::TracedMessage;

impl Settle for TracedMessage {
    fn key(&self) -> Option<&MessageKey> {
        TracedMessage::key(self)
    }

    fn fallback_id(&self) -> Option<String> {
        let headers = self.message().headers.as_ref()?;
        let id = headers.get(async_nats::header::NATS_MESSAGE_ID)?;
        Some(id.as_str().to_owned())
    }

    /// A double ack: the server confirms it, so that `Ok` means it will not redeliver.
    async fn ack(self) -> Result<(), SettleError> {
        TracedMessage::double_ack(self)
            .await
            .map_err(SettleError::new)
    }

    /// A plain ack: should it be lost, the copy comes again and is skipped again.
    async fn skip_duplicate(self) -> Result<(), SettleError> {
        TracedMessage::skip_duplicate(self)
            .await
            .map_err(SettleError::new)
    }
}
