//! Sets of seqs as sorted, disjoint, inclusive ranges: what a ledger span carries in
//! `mqtrace.seqs` (SPEC §2b), written `1-1000,1002,1004-2000`.
//!
//! The instrumentation adds seqs on the app's thread: in order (the usual case) an insert
//! extends the last range or starts a new one, without searching or allocating once the
//! vector has grown; out of order it binary-searches and merges. The analyzer parses the text
//! back, checking that it is sorted and disjoint.
//!
//! ```
//! use mqtrace_vocab::seqs::SeqRanges;
//!
//! let mut set = SeqRanges::default();
//! for seq in (1..=1000).chain([1002]).chain(1004..=2000) {
//!     set.insert(seq);
//! }
//! assert_eq!(set.to_string(), "1-1000,1002,1004-2000");
//! assert_eq!(set.count(), 1998);
//! assert_eq!("1-1000,1002,1004-2000".parse::<SeqRanges>(), Ok(set));
//! ```

use std::fmt;

/// A set of seqs (≥ 1) as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqRanges {
    ranges: Vec<(u64, u64)>,
    count: u64,
}

impl SeqRanges {
    /// Adds `seq`; `false` when it was already in the set.
    pub fn insert(&mut self, seq: u64) -> bool {
        // In order: extend the last range, or start one after it.
        match self.ranges.last_mut() {
            None => self.ranges.push((seq, seq)),
            Some(last) if seq > last.1 => {
                if seq == last.1 + 1 {
                    last.1 = seq;
                } else {
                    self.ranges.push((seq, seq));
                }
            }
            Some(_) => return self.insert_out_of_order(seq),
        }
        self.count += 1;
        true
    }

    fn insert_out_of_order(&mut self, seq: u64) -> bool {
        // The first range that ends at or after seq - 1 (the one seq may join or fall in).
        let i = self.ranges.partition_point(|r| r.1.saturating_add(1) < seq);
        let Some(&(start, end)) = self.ranges.get(i) else {
            self.ranges.push((seq, seq)); // unreachable in practice: seq > every end was the fast path
            self.count += 1;
            return true;
        };
        if (start..=end).contains(&seq) {
            return false;
        }
        self.count += 1;
        if seq + 1 == start {
            self.ranges[i].0 = seq;
        } else if end.checked_add(1) == Some(seq) {
            self.ranges[i].1 = seq;
            // It may now touch the next range.
            if let Some(&(next_start, next_end)) = self.ranges.get(i + 1)
                && next_start == seq + 1
            {
                self.ranges[i].1 = next_end;
                self.ranges.remove(i + 1);
            }
        } else {
            self.ranges.insert(i, (seq, seq));
        }
        true
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < seq);
        self.ranges.get(i).is_some_and(|r| r.0 <= seq)
    }

    /// How many seqs.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Empties the set, keeping its memory for the next interval.
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.count = 0;
    }
}

impl fmt::Display for SeqRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (start, end)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

/// Why a `mqtrace.seqs` text was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqsError {
    /// Where in the text (bytes).
    pub at: usize,
    /// What was expected.
    pub what: &'static str,
}

impl fmt::Display for SeqsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.what, self.at)
    }
}

impl std::error::Error for SeqsError {}

impl std::str::FromStr for SeqRanges {
    type Err = SeqsError;

    /// Reads `1-1000,1002,1004-2000`: ranges sorted, disjoint, each seq ≥ 1.
    fn from_str(text: &str) -> Result<Self, SeqsError> {
        let mut set = SeqRanges::default();
        if text.is_empty() {
            return Ok(set);
        }
        let mut at = 0;
        for part in text.split(',') {
            let err = |what| SeqsError { at, what };
            let (start, end) = match part.split_once('-') {
                Some((a, b)) => (seq(a).ok_or(err("a seq"))?, seq(b).ok_or(err("a seq"))?),
                None => {
                    let s = seq(part).ok_or(err("a seq"))?;
                    (s, s)
                }
            };
            if end < start {
                return Err(err("a range whose end is not below its start"));
            }
            if let Some(&(_, last)) = set.ranges.last()
                && start <= last
            {
                return Err(err("ranges sorted and disjoint"));
            }
            match set.ranges.last_mut() {
                Some(last) if last.1.checked_add(1) == Some(start) => last.1 = end,
                _ => set.ranges.push((start, end)),
            }
            set.count = set.count.saturating_add(end - start).saturating_add(1);
            at += part.len() + 1;
        }
        Ok(set)
    }
}

/// A seq written as digits: ≥ 1, no sign, no leading zero.
fn seq(text: &str) -> Option<u64> {
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn bad_texts_are_named() {
        for (bad, at) in [
            ("1-", 0),
            ("3,2", 2),
            ("1-5,5", 4),
            ("0", 0),
            ("5-3", 0),
            ("1,,2", 2),
            ("+1", 0),
        ] {
            assert_eq!(bad.parse::<SeqRanges>().map_err(|e| e.at), Err(at), "{bad}");
        }
        assert_eq!("".parse::<SeqRanges>().map(|s| s.count()), Ok(0));
    }

    #[test]
    fn the_largest_seqs_do_not_overflow() {
        let mut set = SeqRanges::default();
        for s in [u64::MAX, 10, u64::MAX - 1, 5, 11] {
            set.insert(s);
        }
        assert_eq!(
            set.to_string(),
            format!("5,10-11,{}-{}", u64::MAX - 1, u64::MAX)
        );
        assert_eq!(set.to_string().parse::<SeqRanges>(), Ok(set));
        assert!(format!("1-{}", u64::MAX).parse::<SeqRanges>().is_ok());
    }

    proptest! {
        /// The set holds exactly what a `BTreeSet` holds, in any insertion order, and its
        /// text reads back to the same set.
        #[test]
        fn behaves_as_a_set(seqs in proptest::collection::vec(1u64..300, 0..400)) {
            let mut set = SeqRanges::default();
            let mut model = BTreeSet::new();
            for s in &seqs {
                prop_assert_eq!(set.insert(*s), model.insert(*s));
            }
            prop_assert_eq!(set.count(), model.len() as u64);
            for s in 0..301 {
                prop_assert_eq!(set.contains(s), model.contains(&s));
            }
            let expanded: Vec<u64> = set.ranges().iter().flat_map(|&(a, b)| a..=b).collect();
            prop_assert_eq!(expanded, model.iter().copied().collect::<Vec<_>>());
            // Disjoint and not touching: the smallest text for the set.
            for w in set.ranges().windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0);
            }
            prop_assert_eq!(set.to_string().parse::<SeqRanges>(), Ok(set));
        }

        /// Any text: an answer, never a panic.
        #[test]
        fn any_text_parses_or_fails(text in "[0-9,\\-]{0,40}") {
            let _ = text.parse::<SeqRanges>();
        }
    }
}
