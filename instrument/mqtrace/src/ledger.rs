//! Ledgers (SPEC §2b): the ordinary path of a message recorded as one seq in a per-stream set,
//! exported as one span per stream, side and flush interval instead of one span per event.
//!
//! ## Cost on the app's thread
//!
//! Recording an ordinary event is: take the mutex of its stream (producer) or of its
//! (producer, stream, destination, partition) slot (consumer), find the (destination,
//! partition) ledger (the last one used is checked first, then a hash index), insert the seq
//! into a [`SeqRanges`] (in order: extend the last range) and widen the interval's bounds.
//! Nothing is allocated once a ledger exists and its range vector has grown: flushing hands
//! the filled set to the exporter and gives the ledger back the previous interval's cleared
//! one. No lock is shared across streams on the producer; the consumer's slot table is
//! sharded like the [`Sequencer`](crate::Sequencer)'s and read-locked only to find a slot.
//!
//! ## Flushing
//!
//! One background thread per process (`mqtrace-ledger`, started by the first ledger-mode
//! producer or consumer) wakes when the earliest registered flush interval is due, and
//! exports, off the app's threads, every ledger that holds seqs. It holds only weak references:
//! a producer or consumer flushes what is pending itself when its last handle is dropped, or
//! when [`flush_ledgers`] or its own `flush()` is called. A thread was chosen over flushing
//! from the record calls because the record calls would then read the clock and compare on
//! every event, and the unlucky event would pay for formatting and exporting the span; worse,
//! a stream that goes quiet would keep its last interval unexported until shutdown, while the
//! contract says "at least every flush interval".

use mqtrace_vocab::seqs::SeqRanges;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::live::{At, GapTracker};
use crate::message::MessageKey;
use crate::names::{Stage, attr};
use crate::span::{Recorder, span_name, str_value};

/// The span name of a ledger is `mqtrace ledger {destination}`; this is its first part.
pub const LEDGER_SPAN_PREFIX: &str = "mqtrace ledger";

/// Ranges a consumer remembers per (stream, destination, partition) to recognise a seq it
/// delivered before, per generation (two generations are kept: see [`Window`]).
pub(crate) const WINDOW_RANGES: usize = 1024;

/// A consumer slot with no delivery for this many flush intervals, and no delivery waiting
/// to be settled, is forgotten (producer ids change with every producer restart; a
/// long-running consumer must not keep every one it ever saw).
pub(crate) const EVICT_AFTER_FLUSHES: u32 = 600;

/// Shards of the consumer's slot table.
const SHARDS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere mid-update of a ledger; the worst left behind is
    // one seq recorded without its time bounds widened, so keep recording.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Hashing of ledger identities.

/// A small multiplicative hash (FxHash's step, murmur3's finalizer): identities are a few
/// short strings, and SipHash would cost more than the rest of a record.
struct KeyHasher(u64);

impl KeyHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn new() -> Self {
        KeyHasher(0)
    }

    fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(Self::K);
    }

    fn str(mut self, s: &str) -> Self {
        let chunks = s.as_bytes().chunks_exact(8);
        let rest = chunks.remainder();
        for c in chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(w));
        // The length separates fields ("ab","c" from "a","bc").
        self.word(s.len() as u64);
        self
    }

    fn opt(mut self, s: Option<&str>) -> Self {
        match s {
            Some(s) => {
                self.word(1);
                self.str(s)
            }
            None => {
                self.word(0);
                self
            }
        }
    }

    fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Keys that are hashes already go through unchanged.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdBuild = BuildHasherDefault<IdHasher>;

// ---------------------------------------------------------------------------------------------
// One ledger: the seqs of one flush interval and the interval's bounds.

/// The seqs recorded since the last flush, with the first and last event times.
#[derive(Debug)]
pub(crate) struct Ledger {
    seqs: SeqRanges,
    /// The previous interval's set, cleared: swapped in at a flush so that recording does not
    /// allocate again.
    spare: SeqRanges,
    first: SystemTime,
    last: SystemTime,
    /// Seqs recorded here, then found not ordinary after all (a delivery settled other than
    /// `ack` before the flush): left out of the exported text, as they get full spans.
    retracted: Vec<u64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            seqs: SeqRanges::default(),
            spare: SeqRanges::default(),
            first: SystemTime::UNIX_EPOCH,
            last: SystemTime::UNIX_EPOCH,
            retracted: Vec::new(),
        }
    }
}

/// A ledger's content handed over at a flush.
#[derive(Debug)]
pub(crate) struct Taken {
    seqs: SeqRanges,
    retracted: Vec<u64>,
    first: SystemTime,
    last: SystemTime,
}

impl Ledger {
    /// Records `seq` for an event that happened within `start..=end`; `false` (nothing
    /// recorded) when this interval holds the seq already: the caller then records a full
    /// span, since a set cannot say "twice".
    pub(crate) fn record(&mut self, seq: u64, start: SystemTime, end: SystemTime) -> bool {
        if !self.seqs.insert(seq) {
            return false;
        }
        if self.seqs.count() == 1 {
            self.first = start;
            self.last = end;
        } else {
            if start < self.first {
                self.first = start;
            }
            if end > self.last {
                self.last = end;
            }
        }
        true
    }

    /// Leaves `seq`, recorded in this interval, out of the exported ledger.
    pub(crate) fn retract(&mut self, seq: u64) {
        self.retracted.push(seq);
    }

    fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Hands the interval's content over and starts the next interval empty.
    fn take(&mut self) -> Option<Taken> {
        if self.seqs.is_empty() {
            return None;
        }
        let spare = std::mem::take(&mut self.spare);
        Some(Taken {
            seqs: std::mem::replace(&mut self.seqs, spare),
            retracted: std::mem::take(&mut self.retracted),
            first: self.first,
            last: self.last,
        })
    }

    /// Gives the exported set's memory back for a later interval.
    fn give_back(&mut self, mut taken: Taken) {
        taken.seqs.clear();
        taken.retracted.clear();
        if self.spare.is_empty() {
            self.spare = taken.seqs;
        }
        if self.retracted.is_empty() && self.retracted.capacity() == 0 {
            self.retracted = taken.retracted;
        }
    }
}

/// `mqtrace.seqs` and `mqtrace.ledger.count` of a taken ledger; `None` when every seq was
/// retracted.
fn seqs_text(taken: &mut Taken) -> Option<(String, u64)> {
    if taken.retracted.is_empty() {
        return Some((taken.seqs.to_string(), taken.seqs.count()));
    }
    taken.retracted.sort_unstable();
    taken.retracted.dedup();
    let mut out = String::new();
    let mut count = 0u64;
    let mut push = |a: u64, b: u64| {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(itoa::Buffer::new().format(a));
        if b > a {
            out.push('-');
            out.push_str(itoa::Buffer::new().format(b));
        }
        count += b - a + 1;
    };
    let mut retracted = taken.retracted.iter().copied().peekable();
    for &(a, b) in taken.seqs.ranges() {
        let mut start = Some(a);
        while let Some(x) = retracted.next_if(|x| *x <= b) {
            let Some(s) = start else { continue };
            if x < s {
                continue;
            }
            if x > s {
                push(s, x - 1);
            }
            start = x.checked_add(1).filter(|n| *n <= b);
        }
        if let Some(s) = start {
            push(s, b);
        }
    }
    (count > 0).then_some((out, count))
}

/// What names a ledger span besides its seqs.
pub(crate) struct LedgerIdent<'a> {
    pub(crate) of: Stage,
    pub(crate) producer_id: &'a Arc<str>,
    pub(crate) stream: &'a Arc<str>,
    pub(crate) destination: &'a Arc<str>,
    pub(crate) partition: Option<&'a Arc<str>>,
    /// Consumer side: (group, consumer id).
    pub(crate) consumer: Option<(&'a Arc<str>, &'a Arc<str>)>,
}

/// Exports one ledger span: kind INTERNAL, `mqtrace ledger {destination}`, a root of its own
/// trace (it stands for events of many traces), from the first event to the last.
fn emit(rec: &Recorder, id: &LedgerIdent<'_>, mut taken: Taken) -> Taken {
    let Some((text, count)) = seqs_text(&mut taken) else {
        return taken;
    };
    let mut attrs = Vec::with_capacity(11);
    attrs.push(KeyValue::new(attr::STAGE, attr::LEDGER));
    attrs.push(KeyValue::new(attr::LEDGER_OF, id.of.as_str()));
    attrs.push(KeyValue::new(attr::PRODUCER_ID, str_value(id.producer_id)));
    attrs.push(KeyValue::new(attr::STREAM, str_value(id.stream)));
    attrs.push(KeyValue::new(
        attr::MESSAGING_SYSTEM,
        str_value(&rec.system),
    ));
    attrs.push(KeyValue::new(
        attr::MESSAGING_DESTINATION_NAME,
        str_value(id.destination),
    ));
    if let Some(p) = id.partition {
        attrs.push(KeyValue::new(
            attr::MESSAGING_DESTINATION_PARTITION_ID,
            str_value(p),
        ));
    }
    if let Some((group, consumer_id)) = id.consumer {
        attrs.push(KeyValue::new(
            attr::MESSAGING_CONSUMER_GROUP_NAME,
            str_value(group),
        ));
        attrs.push(KeyValue::new(attr::CONSUMER_ID, str_value(consumer_id)));
    }
    attrs.push(KeyValue::new(attr::SEQS, text));
    attrs.push(KeyValue::new(
        attr::LEDGER_COUNT,
        i64::try_from(count).unwrap_or(i64::MAX),
    ));
    let mut span = rec
        .tracer
        .span_builder(span_name(LEDGER_SPAN_PREFIX, id.destination))
        .with_kind(SpanKind::Internal)
        .with_start_time(taken.first)
        .with_attributes(attrs)
        .start_with_context(&rec.tracer, &Context::new());
    span.end_with_timestamp(taken.last.max(taken.first));
    taken
}

// ---------------------------------------------------------------------------------------------
// Producer side: one table per stream, behind the stream's own mutex.

/// The ledgers of one producer stream, one per (destination, partition).
#[derive(Debug, Default)]
pub(crate) struct StreamLedger {
    slots: Mutex<ProducerSlots>,
}

#[derive(Debug, Default)]
struct ProducerSlots {
    slots: Vec<ProducerSlot>,
    /// Hash of (destination, partition) → first slot with it; collisions chain via `next`.
    index: HashMap<u64, usize, IdBuild>,
    last_hit: usize,
}

#[derive(Debug)]
struct ProducerSlot {
    next: Option<usize>,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    ledger: Ledger,
}

impl ProducerSlot {
    fn is(&self, destination: &Arc<str>, partition: Option<&str>) -> bool {
        (Arc::ptr_eq(&self.destination, destination) || self.destination == *destination)
            && self.partition.as_deref() == partition
    }
}

impl ProducerSlots {
    fn find_or_insert(&mut self, destination: &Arc<str>, partition: Option<&str>) -> usize {
        // Most producers send runs to one destination and partition: check the last first.
        if self
            .slots
            .get(self.last_hit)
            .is_some_and(|s| s.is(destination, partition))
        {
            return self.last_hit;
        }
        let hash = KeyHasher::new().str(destination).opt(partition).finish();
        let mut at = self.index.get(&hash).copied();
        while let Some(i) = at {
            if self.slots[i].is(destination, partition) {
                self.last_hit = i;
                return i;
            }
            at = self.slots[i].next;
        }
        let i = self.slots.len();
        let next = self.index.insert(hash, i);
        self.slots.push(ProducerSlot {
            next,
            destination: destination.clone(),
            partition: partition.map(Arc::from),
            ledger: Ledger::default(),
        });
        self.last_hit = i;
        i
    }
}

impl StreamLedger {
    /// Records an ordinary attempt (first, acked `ok`) of `seq`; `false` when this interval
    /// holds the seq already (a clone of the message sent again as attempt 1).
    pub(crate) fn record(
        &self,
        destination: &Arc<str>,
        partition: Option<&str>,
        seq: u64,
        start: SystemTime,
        end: SystemTime,
    ) -> bool {
        let mut slots = lock(&self.slots);
        let i = slots.find_or_insert(destination, partition);
        slots.slots[i].ledger.record(seq, start, end)
    }

    /// Exports this stream's non-empty ledgers.
    pub(crate) fn flush(&self, rec: &Recorder, producer_id: &Arc<str>, stream: &Arc<str>) {
        type Out = (usize, Arc<str>, Option<Arc<str>>, Taken);
        let taken: Vec<Out> = {
            let mut slots = lock(&self.slots);
            slots
                .slots
                .iter_mut()
                .enumerate()
                .filter_map(|(i, s)| {
                    let t = s.ledger.take()?;
                    Some((i, s.destination.clone(), s.partition.clone(), t))
                })
                .collect()
        };
        if taken.is_empty() {
            return;
        }
        let mut back = Vec::with_capacity(taken.len());
        for (i, destination, partition, t) in taken {
            let id = LedgerIdent {
                of: Stage::StoreAck,
                producer_id,
                stream,
                destination: &destination,
                partition: partition.as_ref(),
                consumer: None,
            };
            back.push((i, emit(rec, &id, t)));
        }
        let mut slots = lock(&self.slots);
        for (i, t) in back {
            if let Some(s) = slots.slots.get_mut(i) {
                s.ledger.give_back(t);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Consumer side: one slot per (producer, stream, destination, partition).

/// The seqs a consumer delivered recently, to tell a first delivery from a repeated one. Two
/// generations of at most [`WINDOW_RANGES`] ranges each: a consumer reading a stream in
/// order keeps its whole history in one range; holes (losses, other consumers' partitions of
/// the same stream, out-of-order delivery) cost one range each, and when the current
/// generation is full the older one is forgotten.
#[derive(Debug, Default)]
pub(crate) struct Window {
    cur: SeqRanges,
    prev: SeqRanges,
}

impl Window {
    /// Adds `seq`; `false` when it was delivered before (as far as the window remembers).
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        if self.prev.ranges().last().is_some_and(|r| r.1 >= seq) && self.prev.contains(seq) {
            return false;
        }
        if !self.cur.insert(seq) {
            return false;
        }
        if self.cur.ranges().len() > WINDOW_RANGES {
            std::mem::swap(&mut self.prev, &mut self.cur);
            self.cur.clear();
        }
        true
    }
}

/// How many recent ledger deliveries a consumer slot remembers the position of.
pub(crate) const POSITIONS: usize = 512;
/// The longest position remembered inline (Kafka's `partition/offset`, a JetStream stream
/// sequence and RabbitMQ's attempt fit); a longer one is not remembered.
const POSITION_BYTES: usize = 31;

/// Where a consumer's recent ledger deliveries were stored, by seq: a repeated seq's full
/// `deliver` span then names the earlier delivery's position
/// ([`attr::LEDGER_POSITION`](crate::names::attr::LEDGER_POSITION)), which the ledger cannot
/// hold. A fixed ring indexed by `seq % POSITIONS`, allocated on first use, written in place:
/// no allocation per message, bounded memory (about 16 KiB per slot).
#[derive(Default)]
pub(crate) struct Positions {
    ring: Option<Box<[PositionEntry]>>,
}

impl std::fmt::Debug for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Positions")
            .field("allocated", &self.ring.is_some())
            .finish()
    }
}

#[derive(Clone, Copy)]
struct PositionEntry {
    /// 0: empty (seqs start at 1).
    seq: u64,
    len: u8,
    bytes: [u8; POSITION_BYTES],
}

const EMPTY_ENTRY: PositionEntry = PositionEntry {
    seq: 0,
    len: 0,
    bytes: [0; POSITION_BYTES],
};

impl Positions {
    fn at(seq: u64) -> usize {
        (seq % POSITIONS as u64) as usize
    }

    /// Remembers where the ledger delivery of `seq` was stored (forgets the slot when the
    /// position is unknown or too long to keep).
    pub(crate) fn remember(&mut self, seq: u64, position: Option<&str>) {
        let Some(p) = position.filter(|p| p.len() <= POSITION_BYTES) else {
            self.forget(seq);
            return;
        };
        let ring = self
            .ring
            .get_or_insert_with(|| vec![EMPTY_ENTRY; POSITIONS].into_boxed_slice());
        let e = &mut ring[Self::at(seq)];
        e.seq = seq;
        e.len = p.len() as u8;
        e.bytes[..p.len()].copy_from_slice(p.as_bytes());
    }

    /// The position of the remembered ledger delivery of `seq`.
    pub(crate) fn earlier(&self, seq: u64) -> Option<&str> {
        let e = self.ring.as_ref()?.get(Self::at(seq))?;
        if e.seq != seq || seq == 0 {
            return None;
        }
        std::str::from_utf8(e.bytes.get(..usize::from(e.len))?).ok()
    }

    /// Forgets `seq` (its delivery left the ledger for a full span that names its position).
    pub(crate) fn forget(&mut self, seq: u64) {
        if let Some(e) = self.ring.as_mut().and_then(|r| r.get_mut(Self::at(seq)))
            && e.seq == seq
        {
            *e = EMPTY_ENTRY;
        }
    }
}

/// What a consumer keeps per (producer, stream, destination, partition): its ledgers (ledger
/// mode) and its live gap tracking (every mode that records).
#[derive(Debug)]
pub(crate) struct ConsumerSlot {
    producer_id: Arc<str>,
    stream: Arc<str>,
    destination: Arc<str>,
    partition: Option<Arc<str>>,
    /// The live counters' attributes (SPEC §7: stream, destination, group), built once here so
    /// that counting never builds them.
    metric_attributes: [KeyValue; 3],
    state: Mutex<ConsumerState>,
}

/// The mutable part of a [`ConsumerSlot`].
#[derive(Debug, Default)]
pub(crate) struct ConsumerState {
    /// Seqs delivered recently, ledger or full span.
    pub(crate) seen: Window,
    /// Where recent ledger deliveries were stored.
    pub(crate) positions: Positions,
    /// First deliveries of this interval.
    pub(crate) deliver: Ledger,
    /// `ack` settles of this interval.
    pub(crate) consume_ack: Ledger,
    /// Flushes so far: a delivery recorded in generation g is still in `deliver` while the
    /// generation is g.
    pub(crate) generation: u64,
    /// Live signals (SPEC §7): the highest seq delivered and the holes below it.
    pub(crate) live: GapTracker,
    touched: bool,
    idle_flushes: u32,
}

impl ConsumerSlot {
    fn is(&self, key: &MessageKey, destination: &str, partition: Option<&str>) -> bool {
        *self.producer_id == *key.producer_id
            && *self.stream == *key.stream
            && &*self.destination == destination
            && self.partition.as_deref() == partition
    }

    /// Where the slot is, for the live counters and the app's gap hook.
    pub(crate) fn at<'a>(&'a self, group: &'a str) -> At<'a> {
        At {
            attributes: &self.metric_attributes,
            producer_id: &self.producer_id,
            stream: &self.stream,
            destination: &self.destination,
            partition: self.partition.as_deref(),
            group,
        }
    }

    /// The slot's state, locked.
    pub(crate) fn state(&self) -> MutexGuard<'_, ConsumerState> {
        let mut st = lock(&self.state);
        st.touched = true;
        st
    }
}

/// One shard of a consumer's slots: identity hash → the slots with it (almost always one).
type Shard = RwLock<HashMap<u64, Vec<Arc<ConsumerSlot>>, IdBuild>>;

/// A consumer's slots, sharded by identity hash.
#[derive(Debug, Default)]
pub(crate) struct ConsumerLedgers {
    shards: [Shard; SHARDS],
}

impl ConsumerLedgers {
    /// The slot of this delivery's (producer, stream, destination, partition), created on
    /// first use (`group`: the consumer's, for the live counters' attributes).
    pub(crate) fn slot(
        &self,
        key: &MessageKey,
        destination: &Arc<str>,
        partition: Option<&str>,
        group: &Arc<str>,
    ) -> Arc<ConsumerSlot> {
        let hash = KeyHasher::new()
            .str(&key.producer_id)
            .str(&key.stream)
            .str(destination)
            .opt(partition)
            .finish();
        let shard = &self.shards[(hash % SHARDS as u64) as usize];
        {
            let map = shard.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = map
                .get(&hash)
                .and_then(|b| b.iter().find(|s| s.is(key, destination, partition)))
            {
                return slot.clone();
            }
        }
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        let bucket = map.entry(hash).or_default();
        if let Some(slot) = bucket.iter().find(|s| s.is(key, destination, partition)) {
            return slot.clone();
        }
        let slot = Arc::new(ConsumerSlot {
            producer_id: key.producer_id.clone(),
            stream: key.stream.clone(),
            destination: destination.clone(),
            partition: partition.map(Arc::from),
            metric_attributes: [
                KeyValue::new(attr::STREAM, str_value(&key.stream)),
                KeyValue::new(attr::MESSAGING_DESTINATION_NAME, str_value(destination)),
                KeyValue::new(attr::MESSAGING_CONSUMER_GROUP_NAME, str_value(group)),
            ],
            state: Mutex::new(ConsumerState::default()),
        });
        bucket.push(slot.clone());
        slot
    }

    /// Exports every slot's non-empty ledgers, then forgets slots idle for
    /// [`EVICT_AFTER_FLUSHES`] intervals that no unsettled delivery refers to.
    pub(crate) fn flush(&self, rec: &Recorder, group: &Arc<str>, consumer_id: &Arc<str>) {
        let mut stale = false;
        for shard in &self.shards {
            let slots: Vec<Arc<ConsumerSlot>> = shard
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .flatten()
                .cloned()
                .collect();
            for slot in slots {
                let (deliver, ack) = {
                    let mut st = lock(&slot.state);
                    st.generation += 1;
                    if std::mem::take(&mut st.touched) {
                        st.idle_flushes = 0;
                    } else {
                        st.idle_flushes = st.idle_flushes.saturating_add(1);
                        stale |= st.idle_flushes >= EVICT_AFTER_FLUSHES;
                    }
                    (st.deliver.take(), st.consume_ack.take())
                };
                if deliver.is_none() && ack.is_none() {
                    continue;
                }
                let mut id = LedgerIdent {
                    of: Stage::Deliver,
                    producer_id: &slot.producer_id,
                    stream: &slot.stream,
                    destination: &slot.destination,
                    partition: slot.partition.as_ref(),
                    consumer: Some((group, consumer_id)),
                };
                let deliver = deliver.map(|t| emit(rec, &id, t));
                id.of = Stage::ConsumeAck;
                let ack = ack.map(|t| emit(rec, &id, t));
                let mut st = lock(&slot.state);
                if let Some(t) = deliver {
                    st.deliver.give_back(t);
                }
                if let Some(t) = ack {
                    st.consume_ack.give_back(t);
                }
            }
        }
        if stale {
            self.evict();
        }
    }

    fn evict(&self) {
        for shard in &self.shards {
            let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, bucket| {
                bucket.retain(|slot| {
                    // Only the table holds it (no delivery waits to be settled), and nothing
                    // happened for a while: the slot can go. The write lock keeps `slot()`
                    // from handing it out meanwhile.
                    if Arc::strong_count(slot) > 1 {
                        return true;
                    }
                    let st = lock(&slot.state);
                    st.idle_flushes < EVICT_AFTER_FLUSHES
                        || !st.deliver.is_empty()
                        || !st.consume_ack.is_empty()
                });
                !bucket.is_empty()
            });
        }
    }

    /// How many slots the consumer holds (for tests of eviction).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// The flusher: one thread per process, weak references to every ledger-mode instance.

/// Something holding ledgers: a ledger-mode producer's or consumer's shared state.
pub(crate) trait Flush: Send + Sync {
    /// Exports every ledger that holds seqs.
    fn flush(&self);
}

struct Registry {
    state: Mutex<RegistryState>,
    wake: Condvar,
}

#[derive(Default)]
struct RegistryState {
    entries: Vec<Registered>,
    started: bool,
}

struct Registered {
    target: Weak<dyn Flush>,
    interval: Duration,
    due: Instant,
}

static REGISTRY: OnceLock<Registry> = OnceLock::new();

fn registry() -> &'static Registry {
    REGISTRY.get_or_init(|| Registry {
        state: Mutex::new(RegistryState::default()),
        wake: Condvar::new(),
    })
}

/// Has `target` flushed every `interval` by the process's flusher thread (started now if it
/// is not running yet).
pub(crate) fn register(target: Weak<dyn Flush>, interval: Duration) {
    let interval = interval.max(Duration::from_millis(1));
    let reg = registry();
    let mut st = lock(&reg.state);
    st.entries.push(Registered {
        target,
        interval,
        due: Instant::now() + interval,
    });
    if !st.started {
        st.started = true;
        let spawned = std::thread::Builder::new()
            .name("mqtrace-ledger".into())
            .spawn(run_flusher);
        if let Err(e) = spawned {
            st.started = false;
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "mqtrace: cannot start the ledger flusher thread ({e}); ledgers are \
                     exported only at flush() and when a producer or consumer is dropped"
                );
            }
        }
    }
    drop(st);
    reg.wake.notify_all();
}

fn run_flusher() {
    let reg = registry();
    let mut st = lock(&reg.state);
    loop {
        let now = Instant::now();
        st.entries.retain(|e| e.target.strong_count() > 0);
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for e in &mut st.entries {
            if e.due <= now {
                if let Some(t) = e.target.upgrade() {
                    due.push(t);
                }
                e.due = now + e.interval;
            }
            next = Some(next.map_or(e.due, |n| n.min(e.due)));
        }
        if !due.is_empty() {
            drop(st);
            for target in due {
                // A panicking exporter must not stop every later flush of the process.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.flush()));
            }
            st = lock(&reg.state);
            continue;
        }
        st = match next {
            Some(at) => {
                reg.wake
                    .wait_timeout(st, at.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => reg.wake.wait(st).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Exports now what every ledger-mode [`Producer`](crate::Producer) and
/// [`Consumer`](crate::Consumer) of the process holds in its ledgers. Call it before shutting
/// the tracer provider down (`mqtrace-export`'s `Telemetry` does); a producer or consumer
/// also flushes itself when its last handle is dropped. Does nothing when none is in ledger
/// mode.
pub fn flush_ledgers() {
    let Some(reg) = REGISTRY.get() else {
        return;
    };
    let targets: Vec<Arc<dyn Flush>> = lock(&reg.state)
        .entries
        .iter()
        .filter_map(|e| e.target.upgrade())
        .collect();
    for t in targets {
        t.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(seqs: &[u64], retracted: &[u64]) -> Taken {
        let mut l = Ledger::default();
        for s in seqs {
            l.record(*s, SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH);
        }
        for r in retracted {
            l.retract(*r);
        }
        l.take().expect("not empty")
    }

    #[test]
    fn retracted_seqs_are_left_out_of_the_text() {
        type Case<'a> = (&'a [u64], &'a [u64], Option<(&'a str, u64)>);
        let cases: &[Case<'_>] = &[
            (&[1, 2, 3, 4, 5], &[], Some(("1-5", 5))),
            (&[1, 2, 3, 4, 5], &[3], Some(("1-2,4-5", 4))),
            (&[1, 2, 3, 4, 5], &[1, 5, 5], Some(("2-4", 3))),
            (&[1, 2, 3, 7, 8, 9], &[2, 3, 7], Some(("1,8-9", 3))),
            (&[4], &[4], None),
            (
                &[1, 2, u64::MAX - 1, u64::MAX],
                &[u64::MAX],
                Some(("1-2,18446744073709551614", 3)),
            ),
        ];
        for (seqs, retracted, want) in cases {
            let mut t = taken(seqs, retracted);
            let got = seqs_text(&mut t);
            assert_eq!(
                got.as_ref().map(|(s, n)| (s.as_str(), *n)),
                *want,
                "{seqs:?} minus {retracted:?}"
            );
            if let Some((text, n)) = got {
                assert_eq!(text.parse::<SeqRanges>().map(|s| s.count()), Ok(n));
            }
        }
    }

    #[test]
    fn a_ledger_bounds_its_events_and_refuses_a_seq_twice() {
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let mut l = Ledger::default();
        assert!(l.record(5, t(10), t(11)));
        assert!(l.record(6, t(8), t(9)));
        assert!(l.record(7, t(12), t(20)));
        assert!(!l.record(6, t(30), t(31)), "a set cannot say twice");
        let taken = l.take().expect("three seqs");
        assert_eq!((taken.first, taken.last), (t(8), t(20)));
        assert_eq!(taken.seqs.to_string(), "5-7");
        l.give_back(taken);
        assert!(l.take().is_none(), "the next interval starts empty");
        assert!(
            l.record(6, t(40), t(41)),
            "a new interval may hold it again"
        );
    }

    #[test]
    fn the_window_remembers_in_order_history_whole_and_holes_boundedly() {
        let mut w = Window::default();
        for s in 1..=100_000 {
            assert!(w.insert(s));
        }
        assert!(!w.insert(1) && !w.insert(100_000));
        // Every other seq: one range each; the window keeps at least WINDOW_RANGES of them.
        let mut w = Window::default();
        let n = 3 * WINDOW_RANGES as u64;
        for i in 0..n {
            assert!(w.insert(2 * i + 1));
        }
        assert!(
            w.cur.ranges().len() <= WINDOW_RANGES && w.prev.ranges().len() <= WINDOW_RANGES + 1
        );
        assert!(!w.insert(2 * (n - 1) + 1), "the latest are remembered");
        assert!(!w.insert(2 * (n - WINDOW_RANGES as u64) + 1));
    }

    #[test]
    fn idle_consumer_slots_are_forgotten_unless_a_delivery_holds_them() {
        let rec = Recorder {
            tracer: crate::span::TracerChoice::Global.into_tracer(),
            system: "kafka".into(),
        };
        let (group, id): (Arc<str>, Arc<str>) = ("g".into(), "c".into());
        let ledgers = ConsumerLedgers::default();
        let old = MessageKey::new("p-old", "orders", 1);
        let held = MessageKey::new("p-held", "orders", 1);
        let orders: Arc<str> = "orders".into();
        ledgers
            .slot(&old, &orders, Some("0"), &group)
            .state()
            .seen
            .insert(1);
        let holder = ledgers.slot(&held, &orders, Some("0"), &group);
        // The first flush sees the slot used; idle from the second on.
        for _ in 0..EVICT_AFTER_FLUSHES {
            ledgers.flush(&rec, &group, &id);
        }
        assert_eq!(ledgers.len(), 2, "not idle long enough yet");
        ledgers.flush(&rec, &group, &id);
        assert_eq!(ledgers.len(), 1, "the idle slot went, the held one stayed");
        drop(holder);
        ledgers.flush(&rec, &group, &id);
        assert_eq!(ledgers.len(), 0);
        // A slot in use is never idle.
        let active = MessageKey::new("p-active", "orders", 1);
        for _ in 0..EVICT_AFTER_FLUSHES + 5 {
            drop(ledgers.slot(&active, &orders, None, &group).state());
            ledgers.flush(&rec, &group, &id);
        }
        assert_eq!(ledgers.len(), 1);
    }

    #[test]
    fn producer_slots_find_each_destination_and_partition() {
        let mut slots = ProducerSlots::default();
        let orders: Arc<str> = "orders".into();
        let audit: Arc<str> = "audit".into();
        let parts: Vec<String> = (0..40).map(|p| p.to_string()).collect();
        let mut seen = HashMap::new();
        for round in 0..3 {
            for p in &parts {
                for d in [&orders, &audit] {
                    let i = slots.find_or_insert(d, Some(p));
                    assert_eq!(
                        *seen.entry((d.to_string(), p.clone())).or_insert(i),
                        i,
                        "round {round}"
                    );
                }
            }
            let i = slots.find_or_insert(&orders, None);
            assert_eq!(*seen.entry(("orders".into(), "-".into())).or_insert(i), i);
        }
        assert_eq!(slots.slots.len(), 81);
        // A destination equal by value, not by pointer, is the same slot.
        let again: Arc<str> = "orders".into();
        assert_eq!(
            slots.find_or_insert(&again, Some("7")),
            seen[&("orders".to_owned(), "7".to_owned())]
        );
    }
}
