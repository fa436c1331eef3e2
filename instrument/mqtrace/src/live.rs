//! Live signals at the consumer (SPEC §7): every traced consumer checks the seqs where they
//! arrive and counts, through the app's OpenTelemetry `MeterProvider`, the holes it sees, the
//! late arrivals that fill them, and the copies it is handed again.
//!
//! ## What is tracked
//!
//! Per slot — (producer id, stream, destination, partition), the same slots ledger mode keeps —
//! a [`GapTracker`]: the highest seq delivered, the first seq delivered (holes below it are
//! never counted: a consumer may start in the middle of a stream), and two rings of
//! [`LIVE_WINDOW`] bits indexed by `seq % LIVE_WINDOW`: which of the last seqs were delivered,
//! and which were settled with `ack` or `skip_duplicate`. 272 bytes a slot, whatever the
//! traffic; nothing is allocated per message.
//!
//! ## When a hole counts
//!
//! A seq below the highest delivered one that has not arrived is a hole. It counts as
//! `mqtrace.consumer.missing` once the consumer has delivered a seq more than the *reorder
//! window* above it (`highest − hole > window`; default [`DEFAULT_REORDER_WINDOW`], at most
//! [`MAX_REORDER_WINDOW`]), once. A window of 0 counts a hole as soon as a higher seq arrives.
//! A hole that is still inside the window when traffic stops is not counted until more seqs
//! arrive: the window is in seqs, not in time.
//!
//! ## A seq that arrives after it was counted
//!
//! It is counted again, in `mqtrace.consumer.late`, never subtracted: both are monotonic
//! counters (what every backend rates and sums correctly), and `missing − late` is what is
//! still missing as far as the consumer knows. A seq [`LIVE_WINDOW`] or more below the
//! highest one is beyond what the rings remember: it is taken for late (every hole that far back
//! was counted) unless the broker marks the delivery as a redelivery, in which case it counts as
//! redelivered only.
//!
//! ## Cost
//!
//! An in-order delivery clears one bit of each ring, sets one, and tests the one bit that just
//! left the reorder window: a few nanoseconds under the slot's mutex, which ledger mode takes
//! anyway and full mode takes for this alone. The counters are touched only when something is
//! counted; their attributes are built once per slot. Measured by the `live` bench of
//! `tests/overhead` (figures in `docs/adapters.md`, "What it costs").

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

use crate::names::metric;

/// How many seqs below the highest delivered one a consumer tells apart, per slot: whether
/// each was delivered, and whether it was settled.
pub const LIVE_WINDOW: u64 = 1024;

/// The reorder window by default, in seqs: a hole counts as missing once the consumer has
/// delivered a seq more than this many above it.
///
/// The brokers deliver a partition, queue or durable in order; what reorders seqs is the
/// producer side — sends from several tasks numbered in one order and published in another,
/// a retry that overtakes nothing but is overtaken by the sends after it. 128 absorbs a
/// producer with a hundred sends in flight while still sounding within a fraction of a second
/// at any rate worth alarming about.
pub const DEFAULT_REORDER_WINDOW: u64 = 128;

/// The largest reorder window: a hole must be counted before it leaves the rings.
pub const MAX_REORDER_WINDOW: u64 = LIVE_WINDOW - 1;

const WORDS: usize = (LIVE_WINDOW / 64) as usize;

// ---------------------------------------------------------------------------------------------
// The tracker: pure bookkeeping, no OpenTelemetry.

/// One ring of [`LIVE_WINDOW`] bits, seq `s` at bit `s % LIVE_WINDOW`. A bit is meaningful
/// for the seqs in `(highest − LIVE_WINDOW, highest]` only: the tracker clears the bits of
/// seqs `highest+1..=new` when the highest moves up, so each bit then belongs to its seq.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ring([u64; WORDS]);

impl Default for Ring {
    fn default() -> Self {
        Ring([0; WORDS])
    }
}

/// Calls `f(word, mask)` for the bits of seqs `a..=b` (`b − a < LIVE_WINDOW`), at most
/// `WORDS + 1` times. `LIVE_WINDOW` is a multiple of 64, so a word never straddles the wrap.
fn words(a: u64, b: u64, mut f: impl FnMut(usize, u64)) {
    debug_assert!(a <= b && b - a < LIVE_WINDOW);
    let mut s = a;
    loop {
        let pos = s % LIVE_WINDOW;
        let (word, bit) = ((pos / 64) as usize, pos % 64);
        let take = (64 - bit).min(b - s + 1);
        let mask = if take == 64 {
            u64::MAX
        } else {
            ((1u64 << take) - 1) << bit
        };
        f(word, mask);
        if s + take > b {
            return;
        }
        s += take;
    }
}

impl Ring {
    fn at(seq: u64) -> (usize, u64) {
        let pos = seq % LIVE_WINDOW;
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    fn get(&self, seq: u64) -> bool {
        let (w, m) = Self::at(seq);
        self.0[w] & m != 0
    }

    fn set(&mut self, seq: u64) {
        let (w, m) = Self::at(seq);
        self.0[w] |= m;
    }

    /// Clears the bits of seqs `a..=b` (any length).
    fn clear(&mut self, a: u64, b: u64) {
        if b - a >= LIVE_WINDOW - 1 {
            self.0 = [0; WORDS];
            return;
        }
        words(a, b, |w, m| self.0[w] &= !m);
    }

    /// How many of seqs `a..=b` (`b − a < LIVE_WINDOW`) have their bit set.
    fn ones(&self, a: u64, b: u64) -> u64 {
        let mut n = 0;
        words(a, b, |w, m| n += u64::from((self.0[w] & m).count_ones()));
        n
    }
}

/// What one delivery or settle told the tracker: what to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tracked {
    /// Holes that left the reorder window with this delivery.
    pub(crate) missing: u64,
    /// This delivery fills a hole counted missing before.
    pub(crate) late: bool,
    /// A seq delivered before (or a redelivery by the broker's count).
    pub(crate) redelivered: bool,
    /// A seq settled with `ack`/`skip_duplicate` before.
    pub(crate) duplicate: bool,
}

impl Tracked {
    /// Nothing to count: the steady state.
    pub(crate) fn is_quiet(&self) -> bool {
        self.missing == 0 && !self.late && !self.redelivered && !self.duplicate
    }
}

/// The seqs one consumer slot delivered and settled, and its holes (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GapTracker {
    /// The highest seq delivered; 0: none yet (seqs start at 1).
    highest: u64,
    /// The first seq delivered: seqs below it were before this consumer's time, never holes.
    base: u64,
    delivered: Ring,
    acked: Ring,
}

impl GapTracker {
    /// Records a delivery of `seq`; `broker_redelivery`: the broker says it delivered this
    /// message before (a delivery count ≥ 2). `window`: the reorder window (≤
    /// [`MAX_REORDER_WINDOW`]). The runs of seqs counted missing are appended to `gaps` when
    /// given (only then: collecting them walks the bits).
    pub(crate) fn deliver(
        &mut self,
        seq: u64,
        broker_redelivery: bool,
        window: u64,
        gaps: Option<&mut Vec<RangeInclusive<u64>>>,
    ) -> Tracked {
        debug_assert!(window <= MAX_REORDER_WINDOW);
        let mut t = Tracked {
            redelivered: broker_redelivery,
            ..Tracked::default()
        };
        if seq == 0 {
            // Not a seq (they start at 1): nothing a hole could be measured against.
            return t;
        }
        let h = self.highest;
        if h == 0 {
            self.highest = seq;
            self.base = seq;
            self.delivered.set(seq);
            return t;
        }
        if seq > h {
            t.missing = self.advance(seq, window, gaps);
            return t;
        }
        let back = h - seq;
        if back >= LIVE_WINDOW {
            // The rings no longer know this seq. Every hole that far back was counted (the
            // window is shorter than the rings), so a first delivery of it is a late one; the
            // broker's count is the only way to tell a redelivery.
            t.late = !broker_redelivery && seq >= self.base;
            return t;
        }
        if self.delivered.get(seq) {
            t.redelivered = true;
            t.duplicate = self.acked.get(seq);
            return t;
        }
        self.delivered.set(seq);
        t.late = seq >= self.base && back > window;
        t
    }

    /// The highest seq moves up from `self.highest` to `n`: counts the holes that leave the
    /// reorder window now, then gives seqs `highest+1..=n` their bits.
    fn advance(
        &mut self,
        n: u64,
        window: u64,
        mut gaps: Option<&mut Vec<RangeInclusive<u64>>>,
    ) -> u64 {
        let h = self.highest;
        let mut missing = 0;
        // Holes at or below `last` are counted at highest `n`; those below `h − window` were
        // counted at highest `h` already.
        if let Some(last) = n.checked_sub(window + 1) {
            let first = self.base.max(h.saturating_sub(window));
            let old_last = last.min(h);
            if first <= old_last {
                // Inside the rings: `h − first ≤ window < LIVE_WINDOW`.
                let holes = old_last - first + 1 - self.delivered.ones(first, old_last);
                if holes > 0 {
                    missing += holes;
                    if let Some(g) = gaps.as_deref_mut() {
                        self.holes(first, old_last, g);
                    }
                }
            }
            if last > h {
                // Seqs never seen that are already the window past: all holes. (Not merged
                // with the run before: `h` itself was delivered.)
                missing += last - h;
                if let Some(g) = gaps {
                    g.push(h + 1..=last);
                }
            }
        }
        // Seqs h+1..=n take the bits of the seqs LIVE_WINDOW below them, which leave now.
        self.delivered.clear(h + 1, n);
        self.acked.clear(h + 1, n);
        self.delivered.set(n);
        self.highest = n;
        missing
    }

    /// Appends the runs of undelivered seqs in `a..=b` (inside the rings).
    fn holes(&self, a: u64, b: u64, out: &mut Vec<RangeInclusive<u64>>) {
        let mut run: Option<u64> = None;
        for s in a..=b {
            match (self.delivered.get(s), run) {
                (false, None) => run = Some(s),
                (true, Some(start)) => {
                    out.push(start..=s - 1);
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            out.push(start..=b);
        }
    }

    /// Records that `seq` was settled with `ack` or `skip_duplicate`: a later delivery of it
    /// is a duplicate. Forgotten once it leaves the rings.
    pub(crate) fn ack(&mut self, seq: u64) {
        if seq == 0 || seq > self.highest || self.highest - seq >= LIVE_WINDOW {
            return;
        }
        self.acked.set(seq);
    }

    /// The highest seq delivered (0: none).
    #[cfg(test)]
    fn highest(&self) -> u64 {
        self.highest
    }
}

// ---------------------------------------------------------------------------------------------
// The signals: counters and the app's hook.

/// Which news a [`Gap`] brings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapKind {
    /// These seqs are now counted missing (`mqtrace.consumer.missing`).
    Missing,
    /// This seq, counted missing before, arrived after all (`mqtrace.consumer.late`).
    Late,
}

/// What the [`on_gap`](crate::ConsumerBuilder::on_gap) hook is told: which seqs of which
/// stream are missing at this consumer, or arrived late. Unlike the counters it names the
/// seqs and the producer (it is the app's code, not a time series).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Gap<'a> {
    /// Missing, or late.
    pub kind: GapKind,
    /// The producer instance that numbered the stream.
    pub producer_id: &'a str,
    /// The stream.
    pub stream: &'a str,
    /// The destination as this consumer names it.
    pub destination: &'a str,
    /// The partition, where the system has them.
    pub partition: Option<&'a str>,
    /// The consumer group.
    pub group: &'a str,
    /// The seqs, as sorted, disjoint, inclusive ranges.
    pub seqs: &'a [RangeInclusive<u64>],
}

impl Gap<'_> {
    /// How many seqs [`seqs`](Self::seqs) holds.
    pub fn count(&self) -> u64 {
        self.seqs
            .iter()
            .map(|r| r.end().saturating_sub(*r.start()).saturating_add(1))
            .sum()
    }
}

/// The app's reaction to a [`Gap`].
#[derive(Clone)]
pub(crate) struct GapHook(pub(crate) Arc<dyn Fn(&Gap<'_>) + Send + Sync>);

impl fmt::Debug for GapHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GapHook(..)")
    }
}

/// A consumer's live signals: its counters, reorder window and hook.
#[derive(Debug)]
pub(crate) struct Live {
    missing: Counter<u64>,
    late: Counter<u64>,
    redelivered: Counter<u64>,
    duplicates: Counter<u64>,
    /// See [`DEFAULT_REORDER_WINDOW`].
    pub(crate) window: u64,
    on_gap: Option<GapHook>,
}

/// Where a counted event happened, for the counters and the hook.
pub(crate) struct At<'a> {
    pub(crate) attributes: &'a [KeyValue],
    pub(crate) producer_id: &'a str,
    pub(crate) stream: &'a str,
    pub(crate) destination: &'a str,
    pub(crate) partition: Option<&'a str>,
    pub(crate) group: &'a str,
}

impl Live {
    /// The counters, from `meter`.
    pub(crate) fn new(meter: &Meter, window: u64, on_gap: Option<GapHook>) -> Self {
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .with_unit(metric::UNIT_MESSAGES)
                .build()
        };
        Live {
            missing: counter(
                metric::CONSUMER_MISSING,
                "Seqs not delivered to this consumer once it was the reorder window past them",
            ),
            late: counter(
                metric::CONSUMER_LATE,
                "Seqs counted missing that were delivered after all",
            ),
            redelivered: counter(
                metric::CONSUMER_REDELIVERED,
                "Deliveries of a seq this consumer had delivered before",
            ),
            duplicates: counter(
                metric::CONSUMER_DUPLICATES,
                "Deliveries of a seq this consumer had processed (acked) before",
            ),
            window: window.min(MAX_REORDER_WINDOW),
            on_gap,
        }
    }

    /// Whether the hook wants the runs of missing seqs (collecting them costs a walk of the
    /// bits, so only then).
    pub(crate) fn wants_gaps(&self) -> bool {
        self.on_gap.is_some()
    }

    /// Adds what `t` counts, and tells the hook. Called with the slot's lock released: an
    /// exporter's or the app's slowness must not hold up other deliveries of the slot.
    pub(crate) fn report(&self, at: &At<'_>, seq: u64, t: Tracked, gaps: &[RangeInclusive<u64>]) {
        if t.missing > 0 {
            self.missing.add(t.missing, at.attributes);
        }
        if t.late {
            self.late.add(1, at.attributes);
        }
        if t.redelivered {
            self.redelivered.add(1, at.attributes);
        }
        if t.duplicate {
            self.duplicates.add(1, at.attributes);
        }
        let Some(hook) = &self.on_gap else {
            return;
        };
        let call = |kind: GapKind, seqs: &[RangeInclusive<u64>]| {
            (hook.0)(&Gap {
                kind,
                producer_id: at.producer_id,
                stream: at.stream,
                destination: at.destination,
                partition: at.partition,
                group: at.group,
                seqs,
            });
        };
        if t.missing > 0 {
            call(GapKind::Missing, gaps);
        }
        if t.late {
            call(GapKind::Late, &[seq..=seq]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn deliver(t: &mut GapTracker, seq: u64, window: u64) -> (Tracked, Vec<RangeInclusive<u64>>) {
        let mut gaps = Vec::new();
        let tracked = t.deliver(seq, false, window, Some(&mut gaps));
        (tracked, gaps)
    }

    #[test]
    fn ring_words_cover_exactly_the_span_across_the_wrap() {
        for (a, b) in [
            (0, 0),
            (5, 70),
            (60, 64 * 3 + 2),
            (LIVE_WINDOW - 3, LIVE_WINDOW + 5),
            (7 * LIVE_WINDOW - 64, 7 * LIVE_WINDOW + 63),
            (1, LIVE_WINDOW),
        ] {
            let mut r = Ring::default();
            words(a, b, |w, m| {
                assert_eq!(r.0[w] & m, 0, "no bit twice");
                r.0[w] |= m;
            });
            assert_eq!(r.ones(a, b), b - a + 1, "{a}..={b}");
            let total: u32 = r.0.iter().map(|w| w.count_ones()).sum();
            assert_eq!(u64::from(total), b - a + 1);
            for s in a..=b {
                assert!(r.get(s));
            }
            r.clear(a, b);
            assert_eq!(r, Ring::default());
        }
    }

    #[test]
    fn a_hole_counts_once_the_window_has_passed_and_a_late_seq_counts_again() {
        let missing = |n| Tracked {
            missing: n,
            ..Tracked::default()
        };
        let mut t = GapTracker::default();
        let w = 2;
        for s in [1, 2, 3] {
            assert!(deliver(&mut t, s, w).0.is_quiet());
        }
        // 4 and 5 never come: each counts once the consumer is more than 2 past it.
        assert!(
            deliver(&mut t, 6, w).0.is_quiet(),
            "6 − 4 = 2: still within"
        );
        assert_eq!(deliver(&mut t, 7, w), (missing(1), vec![4..=4]));
        assert_eq!(deliver(&mut t, 8, w), (missing(1), vec![5..=5]));
        assert!(deliver(&mut t, 9, w).0.is_quiet(), "counted once");
        // 5 arrives after all: late, not a redelivery.
        let (late, _) = deliver(&mut t, 5, w);
        assert!(late.late && !late.redelivered && late.missing == 0);
        // 5 again: a redelivery, not late.
        let (again, _) = deliver(&mut t, 5, w);
        assert!(again.redelivered && !again.late && !again.duplicate);
        // Reordered within the window: neither.
        deliver(&mut t, 11, w);
        assert!(deliver(&mut t, 10, w).0.is_quiet());
        // Window 0: a hole counts as soon as a higher seq arrives.
        let mut t = GapTracker::default();
        deliver(&mut t, 1, 0);
        assert_eq!(deliver(&mut t, 3, 0), (missing(1), vec![2..=2]));
    }

    #[test]
    fn a_jump_counts_every_seq_it_skips_past_the_window_and_names_them() {
        let mut t = GapTracker::default();
        deliver(&mut t, 1, 4);
        deliver(&mut t, 3, 4);
        let (tracked, gaps) = deliver(&mut t, 10_000, 4);
        assert_eq!(tracked.missing, 1 + (9_995 - 3));
        assert_eq!(gaps, vec![2..=2, 4..=9_995]);
        assert_eq!(t.highest(), 10_000);
        // Forgotten seqs below the rings: a first delivery is late, a broker's redelivery is not.
        assert!(t.deliver(500, false, 4, None).late);
        let r = t.deliver(500, true, 4, None);
        assert!(r.redelivered && !r.late);
        // Below the first seq delivered: never a hole, never late.
        let mut t = GapTracker::default();
        deliver(&mut t, 50, 0);
        assert!(deliver(&mut t, 10, 0).0.is_quiet());
        assert_eq!(deliver(&mut t, 60, 0).0.missing, 9, "51..=59");
    }

    #[test]
    fn a_settled_seq_delivered_again_is_a_duplicate() {
        let mut t = GapTracker::default();
        deliver(&mut t, 1, 8);
        deliver(&mut t, 2, 8);
        t.ack(1);
        let (d, _) = deliver(&mut t, 1, 8);
        assert!(d.redelivered && d.duplicate);
        let (r, _) = deliver(&mut t, 2, 8);
        assert!(r.redelivered && !r.duplicate, "delivered, never settled");
        t.ack(3); // never delivered: ignored
        assert!(deliver(&mut t, 3, 8).0.is_quiet());
        let (r, _) = deliver(&mut t, 3, 8);
        assert!(r.redelivered && !r.duplicate);
        // A seq settled, then pushed out of the rings: the duplicate is no longer known.
        t.ack(3);
        deliver(&mut t, 3 + LIVE_WINDOW, 8);
        let r = t.deliver(3, false, 8, None);
        assert!(!r.duplicate && !r.redelivered && r.late);
    }

    /// One step of a consumer's life for the model test.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Deliver {
            seq: u64,
            redelivery: bool,
        },
        /// Delivers the seq this many above the highest delivered so far, plus one: in-order
        /// runs, what consumers mostly see.
        Next(u64),
        /// Settles the n-th seq delivered so far (modulo how many).
        Ack(usize),
    }

    /// A consumer's deliveries and settles: scattered seqs (late, repeated, far ahead),
    /// in-order runs, broker redeliveries, settles of seqs delivered before.
    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1u64..2_500, proptest::bool::weighted(0.1))
                .prop_map(|(seq, redelivery)| Op::Deliver { seq, redelivery }),
            4 => (0u64..6).prop_map(Op::Next),
            2 => any::<usize>().prop_map(Op::Ack),
        ]
    }

    /// The model: every seq ever delivered and settled, what was counted missing; the rules of
    /// the module docs written as plainly as possible.
    #[derive(Default)]
    struct Model {
        delivered: BTreeSet<u64>,
        order: Vec<u64>,
        acked: BTreeSet<u64>,
        counted: BTreeSet<u64>,
        highest: u64,
        base: u64,
        /// Seqs up to this one were considered for counting already.
        scanned: u64,
    }

    impl Model {
        fn deliver(&mut self, seq: u64, redelivery: bool, window: u64) -> (Tracked, Vec<u64>) {
            let mut t = Tracked {
                redelivered: redelivery,
                ..Tracked::default()
            };
            if self.highest == 0 {
                self.base = seq;
                self.scanned = seq - 1;
            }
            let forgotten = seq < self.highest && self.highest - seq >= LIVE_WINDOW;
            if forgotten {
                t.late = !redelivery && seq >= self.base;
            } else if self.delivered.contains(&seq) {
                t.redelivered = true;
                t.duplicate = self.acked.contains(&seq);
            } else {
                t.late = self.counted.contains(&seq);
            }
            self.delivered.insert(seq);
            self.order.push(seq);
            self.highest = self.highest.max(seq);
            let mut newly = Vec::new();
            // A hole counts once `highest − hole > window`; the highest only grows, so each
            // seq is considered once, when it first falls that far behind.
            if let Some(last) = self.highest.checked_sub(window + 1) {
                for s in self.scanned + 1..=last {
                    if !self.delivered.contains(&s) && self.counted.insert(s) {
                        newly.push(s);
                    }
                }
                self.scanned = self.scanned.max(last);
            }
            t.missing = newly.len() as u64;
            (t, newly)
        }
    }

    /// Runs one consumer's life through the tracker and the model: the same counts for every
    /// delivery, and the hook names exactly the seqs newly counted.
    fn check_life(window: u64, ops: &[Op]) -> Result<(), String> {
        let mut t = GapTracker::default();
        let mut m = Model::default();
        for op in ops {
            let step = match *op {
                Op::Next(d) => Op::Deliver {
                    seq: m.highest + 1 + d,
                    redelivery: false,
                },
                other => other,
            };
            match step {
                Op::Deliver { seq, redelivery } => {
                    let mut gaps = Vec::new();
                    let got = t.deliver(seq, redelivery, window, Some(&mut gaps));
                    let (want, newly) = m.deliver(seq, redelivery, window);
                    if got != want {
                        return Err(format!("seq {seq}: got {got:?}, want {want:?}"));
                    }
                    let named: Vec<u64> = gaps.into_iter().flatten().collect();
                    if named != newly {
                        return Err(format!("seq {seq}: named {named:?}, want {newly:?}"));
                    }
                }
                Op::Ack(i) => {
                    if !m.order.is_empty() {
                        let seq = m.order[i % m.order.len()];
                        t.ack(seq);
                        if m.highest - seq < LIVE_WINDOW {
                            m.acked.insert(seq);
                        }
                    }
                }
                Op::Next(_) => unreachable!("turned into a delivery above"),
            }
            if t.highest() != m.highest {
                return Err(format!("highest {} != {}", t.highest(), m.highest));
            }
        }
        Ok(())
    }

    proptest! {
        /// Against the model, for any life and window (shrunk to a minimal life on failure).
        #[test]
        fn agrees_with_a_model_that_remembers_everything(
            window in prop_oneof![
                Just(0u64),
                0u64..16,
                Just(MAX_REORDER_WINDOW),
                0..LIVE_WINDOW
            ],
            ops in proptest::collection::vec(op(), 0..400),
        ) {
            let result = check_life(window, &ops);
            prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
        }
    }
}
