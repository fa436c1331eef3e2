//! Gap-free numbering of messages per stream (producer id × stream).
//!
//! The hot path is one atomic `fetch_add` on a per-stream counter. Looking a stream up by name
//! takes a read lock on one of [`SHARDS`] shards, so producers on different streams do not
//! contend; adapters keep the [`StreamCounter`] handle and skip even that.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::ledger::StreamLedger;

/// Number of independently locked shards of the stream table.
pub const SHARDS: usize = 16;

/// The counter of one stream. Cloning shares it.
#[derive(Clone, Debug)]
pub struct StreamCounter {
    name: Arc<str>,
    shared: Arc<StreamShared>,
}

/// What every handle of one stream shares: its counter, and its ledgers in ledger mode
/// (kept here so that a ledger-mode producer reaches them without a second lookup by name).
#[derive(Debug, Default)]
struct StreamShared {
    last: AtomicU64,
    ledger: StreamLedger,
}

impl StreamCounter {
    fn new(name: Arc<str>) -> Self {
        Self {
            name,
            shared: Arc::new(StreamShared::default()),
        }
    }

    /// Whether both handles share one counter.
    pub(crate) fn same_as(&self, other: &StreamCounter) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The stream's ledgers (used in ledger mode only; empty and allocation-free otherwise).
    pub(crate) fn ledger(&self) -> &StreamLedger {
        &self.shared.ledger
    }

    /// The stream's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Hands out the next seq (1, 2, 3, …): each value exactly once, across threads.
    pub fn next_seq(&self) -> u64 {
        // Relaxed is enough: uniqueness comes from the RMW itself, and no other memory is
        // published through this counter.
        self.shared.last.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The last seq handed out (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.shared.last.load(Ordering::Relaxed)
    }
}

/// Per-stream counters of one producer instance.
#[derive(Debug)]
pub struct Sequencer {
    hasher: RandomState,
    shards: [RwLock<HashMap<Arc<str>, StreamCounter>>; SHARDS],
}

impl Default for Sequencer {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequencer {
    /// An empty sequencer: every stream starts at seq 1.
    pub fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
        }
    }

    /// The counter of `stream`, created on first use.
    pub fn stream(&self, stream: &str) -> StreamCounter {
        let shard = &self.shards[self.hasher.hash_one(stream) as usize % SHARDS];
        // A poisoned lock only means another thread panicked mid-insert; the map is still
        // consistent (insert is the only mutation), so keep going.
        if let Some(counter) = shard
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
        {
            return counter.clone();
        }
        shard
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(Arc::from(stream))
            .or_insert_with_key(|name| StreamCounter::new(name.clone()))
            .clone()
    }

    /// Hands out the next seq of `stream`.
    pub fn next_seq(&self, stream: &str) -> u64 {
        self.stream(stream).next_seq()
    }

    /// Every stream so far (for flushing their ledgers).
    pub(crate) fn streams(&self) -> Vec<StreamCounter> {
        self.shards
            .iter()
            .flat_map(|shard| {
                shard
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn each_stream_counts_from_one_without_holes() {
        let s = Sequencer::new();
        assert_eq!(
            (s.next_seq("a"), s.next_seq("a"), s.next_seq("b")),
            (1, 2, 1)
        );
        assert_eq!(s.stream("a").last_seq(), 2);
    }

    #[test]
    fn concurrent_threads_get_every_seq_exactly_once() {
        let s = Arc::new(Sequencer::new());
        let threads = 8;
        let per_thread = 5_000u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    // Mix cached-handle and by-name use, and two streams.
                    let cached = s.stream("orders");
                    (0..per_thread)
                        .map(|i| {
                            if (i + t) % 3 == 0 {
                                s.next_seq("audit");
                            }
                            if i % 2 == 0 {
                                cached.next_seq()
                            } else {
                                s.next_seq("orders")
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for seq in h.join().expect("worker thread panicked") {
                assert!(seen.insert(seq), "seq {seq} handed out twice");
            }
        }
        let total = threads * per_thread;
        assert_eq!(seen.len() as u64, total);
        assert_eq!(
            seen.iter().copied().max(),
            Some(total),
            "holes in the sequence"
        );
    }
}
