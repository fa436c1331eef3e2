//! The sequence window: per (producer id, stream), the highest seq processed and a bitmap of
//! the [`WIDTH`] seqs below it, as TCP's and IPsec's anti-replay windows keep them.

use std::collections::HashMap;

/// How many seqs below the highest one a window tells apart.
pub const WIDTH: u64 = 1024;

const WORDS: usize = (WIDTH / 64) as usize;

/// What a window says of a seq.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not processed before (as [`mark`](SeqWindow::mark) answers: now it is).
    New,
    /// Processed before: a copy.
    Before,
    /// At least [`WIDTH`] below the highest seq processed: the window no longer knows. The
    /// caller decides (skip it, or ask a store that remembers longer); a window never guesses.
    TooOld,
}

/// One stream's window. 136 bytes, whatever the seqs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqWindow {
    /// The highest seq processed; 0: none yet (seqs start at 1).
    highest: u64,
    /// Bit `d` (word `d / 64`, bit `d % 64`) set: seq `highest - d` was processed.
    bits: [u64; WORDS],
}

impl SeqWindow {
    /// What the window knows of `seq`, without changing it.
    pub fn check(&self, seq: u64) -> Seen {
        if seq > self.highest {
            return Seen::New;
        }
        let back = self.highest - seq;
        if back >= WIDTH {
            return Seen::TooOld;
        }
        if self.bit(back) {
            Seen::Before
        } else {
            Seen::New
        }
    }

    /// Marks `seq` processed; says what it was before ([`Seen::New`]: first time).
    pub fn mark(&mut self, seq: u64) -> Seen {
        let seen = self.check(seq);
        match seen {
            Seen::New if seq > self.highest => {
                self.shift(seq - self.highest);
                self.highest = seq;
                self.set(0);
            }
            Seen::New => self.set(self.highest - seq),
            Seen::Before | Seen::TooOld => {}
        }
        seen
    }

    /// The highest seq processed (0: none).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    fn bit(&self, back: u64) -> bool {
        let (w, b) = ((back / 64) as usize, back % 64);
        self.bits.get(w).is_some_and(|word| word >> b & 1 == 1)
    }

    fn set(&mut self, back: u64) {
        let (w, b) = ((back / 64) as usize, back % 64);
        if let Some(word) = self.bits.get_mut(w) {
            *word |= 1 << b;
        }
    }

    /// Moves every bit `by` places further back (the highest seq rose by `by`).
    fn shift(&mut self, by: u64) {
        if by >= WIDTH {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, by % 64);
        for i in (0..WORDS).rev() {
            let from = i.checked_sub(words);
            let hi = from.map_or(0, |f| self.bits[f]);
            let lo = from
                .and_then(|f| f.checked_sub(1))
                .map_or(0, |f| self.bits[f]);
            self.bits[i] = if bits == 0 {
                hi
            } else {
                hi << bits | lo >> (64 - bits)
            };
        }
    }
}

/// Windows per (producer id, stream). Memory: one [`SeqWindow`] per pair seen, until the
/// process ends (a restarted consumer starts empty: pair it with a store that persists when
/// copies may arrive across restarts).
#[derive(Clone, Debug, Default)]
pub struct SeqWindows {
    /// Producer id, then stream: nested so that a look-up borrows the names (no allocation
    /// per message); only a pair's first mark copies them.
    windows: HashMap<String, HashMap<String, SeqWindow>>,
    pairs: usize,
}

impl SeqWindows {
    /// What the window of (`producer_id`, `stream`) knows of `seq`.
    pub fn check(&self, producer_id: &str, stream: &str, seq: u64) -> Seen {
        self.windows
            .get(producer_id)
            .and_then(|streams| streams.get(stream))
            .map_or(Seen::New, |w| w.check(seq))
    }

    /// Marks `seq` of (`producer_id`, `stream`) processed; says what it was before.
    pub fn mark(&mut self, producer_id: &str, stream: &str, seq: u64) -> Seen {
        if let Some(w) = self
            .windows
            .get_mut(producer_id)
            .and_then(|streams| streams.get_mut(stream))
        {
            return w.mark(seq);
        }
        let mut w = SeqWindow::default();
        let seen = w.mark(seq);
        self.windows
            .entry(producer_id.to_owned())
            .or_default()
            .insert(stream.to_owned(), w);
        self.pairs += 1;
        seen
    }

    /// How many (producer id, stream) pairs it holds.
    pub fn len(&self) -> usize {
        self.pairs
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_window_slides_with_the_highest_seq() {
        let mut w = SeqWindow::default();
        assert_eq!(w.check(1), Seen::New);
        assert_eq!(w.mark(1), Seen::New);
        assert_eq!(w.mark(1), Seen::Before);
        assert_eq!(w.mark(1 + WIDTH - 1), Seen::New);
        assert_eq!(w.check(1), Seen::Before, "still inside, at the far edge");
        assert_eq!(w.mark(1 + WIDTH), Seen::New);
        assert_eq!(w.check(1), Seen::TooOld);
        assert_eq!(w.check(2), Seen::New);
        assert_eq!(w.mark(u64::MAX), Seen::New);
        assert_eq!(w.check(u64::MAX), Seen::Before);
        assert_eq!(w.check(1 + WIDTH), Seen::TooOld);
    }

    #[test]
    fn windows_are_kept_per_producer_and_stream() {
        let mut all = SeqWindows::default();
        assert!(all.is_empty());
        assert_eq!(all.mark("a", "orders", 1), Seen::New);
        assert_eq!(all.mark("a", "refunds", 1), Seen::New);
        assert_eq!(all.mark("b", "orders", 1), Seen::New);
        assert_eq!(all.mark("a", "orders", 1), Seen::Before);
        assert_eq!(all.check("b", "refunds", 1), Seen::New);
        assert_eq!(all.len(), 3);
    }

    proptest! {
        /// Against a set of every seq marked: inside the window the answers agree exactly;
        /// outside it the window says it cannot tell, never a wrong answer.
        #[test]
        fn agrees_with_a_set_inside_its_width(
            seqs in proptest::collection::vec(
                prop_oneof![1u64..3000, 1u64..40, (0u64..5).prop_map(|k| 1 + k * 700)],
                0..600,
            )
        ) {
            let mut w = SeqWindow::default();
            let mut model = BTreeSet::new();
            for seq in seqs {
                let highest = model.iter().next_back().copied().unwrap_or(0);
                let want = if seq + WIDTH <= highest {
                    Seen::TooOld
                } else if model.contains(&seq) {
                    Seen::Before
                } else {
                    Seen::New
                };
                prop_assert_eq!(w.check(seq), want);
                prop_assert_eq!(w.mark(seq), want);
                if want == Seen::New {
                    model.insert(seq);
                }
                prop_assert_eq!(w.highest(), model.iter().next_back().copied().unwrap_or(0));
            }
        }
    }
}
