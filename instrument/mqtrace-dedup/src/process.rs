//! `process_once`: the one path a delivery takes through a store.

use crate::{Check, DedupId, Settle, SettleError, Store, StoreError};

/// What became of a delivery that went through [`process_once`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The work ran, the store marked the message done, the delivery was acked.
    Processed(T),
    /// A copy of a message processed before: settled with `skip_duplicate`; the work did not
    /// run.
    Skipped,
    /// The store could not check this message (no seq for the window; no numbering and no
    /// [`fallback_id`](Settle::fallback_id) for any store): the work ran and the delivery was
    /// acked, as without a store.
    Unchecked(T),
}

/// Why [`process_once`] stopped short. Where the delivery is not settled, it comes back:
/// nack or reject it as the app sees fit ([`into_delivery`](Self::into_delivery)).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError<D, E> {
    /// The work returned an error: the claim was released (PostgreSQL: rolled back), nothing
    /// is marked, the delivery is not settled.
    #[error("the work failed: {error}")]
    Work {
        /// The delivery, not settled.
        delivery: D,
        /// The work's error.
        error: E,
        /// Releasing the claim failed too: a Redis claim then lapses after its lease.
        release: Option<StoreError>,
    },
    /// The store could not be asked, or could not mark the message done (PostgreSQL: the
    /// commit failed, so the work's writes are gone too). The delivery is not settled.
    #[error("the dedup store failed: {error}")]
    Store {
        /// The delivery, not settled.
        delivery: D,
        /// The store's error.
        #[source]
        error: StoreError,
    },
    /// Settling failed. If the message was processed it is marked done: when the broker
    /// delivers it again, the copy is skipped.
    #[error("settling the delivery failed (processed: {processed}): {error}")]
    Settle {
        /// Whether the work ran and was marked done (`false`: it was a copy being skipped).
        processed: bool,
        /// The client's error.
        #[source]
        error: SettleError,
    },
}

impl<D, E> ProcessError<D, E> {
    /// The delivery, when it is still to be settled.
    pub fn into_delivery(self) -> Option<D> {
        match self {
            Self::Work { delivery, .. } | Self::Store { delivery, .. } => Some(delivery),
            Self::Settle { .. } => None,
        }
    }
}

/// Processes `delivery` once: a copy of a message the store has seen done is settled with
/// `skip_duplicate` and never reaches `work`; otherwise `work` runs, the store marks the
/// message done, and the delivery is acked, in that order.
///
/// `work` receives the delivery and the store's claim (PostgreSQL: the open transaction, for
/// the business writes that must commit with the mark; the other stores' claims can be
/// ignored). While another worker holds a claim on the same message (Redis, or another task
/// on the same window), this waits until it is done (then skips) or its lease lapses (then
/// takes it).
///
/// What each store guarantees when the process dies before, during or after the work, or
/// before the ack: the crate docs and `docs/dedup.md`.
pub async fn process_once<D, S, F, T, E>(
    delivery: D,
    store: &S,
    work: F,
) -> Result<Outcome<T>, ProcessError<D, E>>
where
    D: Settle,
    S: Store,
    F: AsyncFnOnce(&D, &mut S::Claim) -> Result<T, E>,
{
    let id = DedupId::of(delivery.key(), || delivery.fallback_id());
    let (mut claim, checked) = loop {
        match store.claim(id.as_ref()).await {
            Ok(Check::Take(claim)) => break (claim, true),
            Ok(Check::Unchecked(claim)) => break (claim, false),
            Ok(Check::Done) => {
                return match delivery.skip_duplicate().await {
                    Ok(()) => Ok(Outcome::Skipped),
                    Err(error) => Err(ProcessError::Settle {
                        processed: false,
                        error,
                    }),
                };
            }
            Ok(Check::Busy(wait)) => tokio::time::sleep(wait).await,
            Err(error) => return Err(ProcessError::Store { delivery, error }),
        }
    };
    let value = match work(&delivery, &mut claim).await {
        Ok(value) => value,
        Err(error) => {
            let release = store.release(claim).await.err();
            return Err(ProcessError::Work {
                delivery,
                error,
                release,
            });
        }
    };
    if let Err(error) = store.done(claim).await {
        return Err(ProcessError::Store { delivery, error });
    }
    match delivery.ack().await {
        Ok(()) if checked => Ok(Outcome::Processed(value)),
        Ok(()) => Ok(Outcome::Unchecked(value)),
        Err(error) => Err(ProcessError::Settle {
            processed: true,
            error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WindowStore;
    use std::collections::HashMap;

    fn delivery() -> mqtrace::Delivery {
        let consumer = mqtrace::Consumer::builder("kafka", "shipping").build();
        let none = HashMap::<String, String>::new();
        consumer.deliver(&none, mqtrace::DeliveryInfo::new("orders"))
    }

    /// Apps spawn their consumers' loops: the call must be `Send` when the delivery, the
    /// store and the work are.
    #[test]
    fn the_call_is_send_when_its_parts_are() {
        fn send<T: Send>(_: T) {}
        let store = WindowStore::new();
        send(process_once(delivery(), &store, async |_, _| {
            tokio::task::yield_now().await;
            Ok::<_, String>(())
        }));
    }

    #[tokio::test]
    async fn a_failed_work_hands_the_delivery_back_unsettled() {
        let store = WindowStore::new();
        let failed = process_once(delivery(), &store, async |_, _| Err::<(), _>("no stock")).await;
        let Err(e) = failed else {
            panic!("the work failed")
        };
        assert_eq!(e.to_string(), "the work failed: no stock");
        assert!(e.into_delivery().is_some());
    }
}
