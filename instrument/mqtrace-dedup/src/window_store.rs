//! The sequence window as a store: in memory, exact within its width, gone with the process.

use crate::{Check, DedupId, Seen, SeqWindows, Store, StoreError};
use mqtrace::MessageKey;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What to do with a seq further below the highest one done than the window's width: the
/// window cannot tell whether it was processed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TooOld {
    /// Process it (the default): a copy processed twice shows in the analyzer's report as
    /// `duplicate/consume`; a message skipped for nothing would be lost without a trace.
    #[default]
    Process,
    /// Skip it as a copy: for streams whose copies arrive far behind and whose messages
    /// never do.
    Skip,
}

/// Per (producer id, stream), the seqs processed, in a [`SeqWindow`](crate::SeqWindow) of
/// [`WIDTH`](crate::WIDTH) (136 bytes a stream): O(1) and exact per message, shared by the
/// tasks of one process (clone it), **forgotten on restart**. A message without mqtrace's
/// numbering passes unchecked.
#[derive(Clone, Debug, Default)]
pub struct WindowStore {
    state: Arc<Mutex<State>>,
    too_old: TooOld,
}

#[derive(Debug, Default)]
struct State {
    done: SeqWindows,
    /// Claimed by a task of this process and not yet done: a second copy waits for it.
    running: HashSet<MessageKey>,
}

/// How long a copy waits before asking again while another task processes the message.
const POLL: Duration = Duration::from_millis(5);

impl WindowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do with a seq below the window (default [`TooOld::Process`]).
    pub fn too_old(mut self, policy: TooOld) -> Self {
        self.too_old = policy;
        self
    }

    /// What the window says of `key` now, without claiming it.
    pub fn seen(&self, key: &MessageKey) -> Seen {
        self.lock()
            .done
            .check(&key.producer_id, &key.stream, key.seq)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A task that panicked while holding the lock left the sets whole (each update is
        // one call): go on with them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check(&self, id: Option<&DedupId>) -> Check<WindowClaim> {
        let Some(DedupId::Seq(key)) = id else {
            return Check::Unchecked(WindowClaim { held: None });
        };
        let mut st = self.lock();
        match st.done.check(&key.producer_id, &key.stream, key.seq) {
            Seen::Before => return Check::Done,
            Seen::TooOld if self.too_old == TooOld::Skip => return Check::Done,
            Seen::TooOld | Seen::New => {}
        }
        if !st.running.insert(key.clone()) {
            return Check::Busy(POLL);
        }
        Check::Take(WindowClaim {
            held: Some((self.state.clone(), key.clone())),
        })
    }
}

/// A seq claimed by this process; dropping it (the work's future cancelled) releases it.
#[derive(Debug)]
pub struct WindowClaim {
    held: Option<(Arc<Mutex<State>>, MessageKey)>,
}

impl WindowClaim {
    fn finish(mut self, done: bool) {
        if let Some((state, key)) = self.held.take() {
            let mut st = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            st.running.remove(&key);
            if done {
                st.done.mark(&key.producer_id, &key.stream, key.seq);
            }
        }
    }
}

impl Drop for WindowClaim {
    fn drop(&mut self) {
        if let Some((state, key)) = self.held.take() {
            let mut st = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            st.running.remove(&key);
        }
    }
}

impl Store for WindowStore {
    type Claim = WindowClaim;

    async fn claim(&self, id: Option<&DedupId>) -> Result<Check<WindowClaim>, StoreError> {
        Ok(self.check(id))
    }

    async fn done(&self, claim: WindowClaim) -> Result<(), StoreError> {
        claim.finish(true);
        Ok(())
    }

    async fn release(&self, claim: WindowClaim) -> Result<(), StoreError> {
        claim.finish(false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u64) -> DedupId {
        DedupId::Seq(MessageKey::new("p", "s", seq))
    }

    #[test]
    fn a_claim_is_done_released_or_dropped() {
        let store = WindowStore::new();
        let Check::Take(claim) = store.check(Some(&id(1))) else {
            panic!("first claim")
        };
        assert!(matches!(store.check(Some(&id(1))), Check::Busy(_)));
        claim.finish(true);
        assert!(matches!(store.check(Some(&id(1))), Check::Done));

        let Check::Take(claim) = store.check(Some(&id(2))) else {
            panic!("first claim")
        };
        claim.finish(false);
        let Check::Take(claim) = store.check(Some(&id(2))) else {
            panic!("released: taken again")
        };
        drop(claim);
        assert!(matches!(store.check(Some(&id(2))), Check::Take(_)));
        assert!(matches!(store.check(None), Check::Unchecked(_)));
        assert!(matches!(
            store.check(Some(&DedupId::Message("x".into()))),
            Check::Unchecked(_)
        ));
    }

    #[test]
    fn below_the_window_the_policy_decides() {
        for (policy, skipped) in [(TooOld::Process, false), (TooOld::Skip, true)] {
            let store = WindowStore::new().too_old(policy);
            for seq in [1, 1 + crate::WIDTH] {
                let Check::Take(claim) = store.check(Some(&id(seq))) else {
                    panic!("new seq")
                };
                claim.finish(true);
            }
            assert_eq!(store.seen(&MessageKey::new("p", "s", 1)), Seen::TooOld);
            assert_eq!(matches!(store.check(Some(&id(1))), Check::Done), skipped);
        }
    }
}
