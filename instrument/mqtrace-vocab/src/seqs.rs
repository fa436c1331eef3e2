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
        if seq == 0 {
            return false; // not a seq: they start at 1
        }
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

    /// The seqs `first..=last` (empty when `first > last` or `first` is 0).
    pub fn range(first: u64, last: u64) -> Self {
        let first = first.max(1);
        if first > last {
            return Self::default();
        }
        Self::from_sorted(vec![(first, last)])
    }

    /// The smallest seq.
    pub fn first(&self) -> Option<u64> {
        self.ranges.first().map(|r| r.0)
    }

    /// The largest seq.
    pub fn last(&self) -> Option<u64> {
        self.ranges.last().map(|r| r.1)
    }

    /// Every seq, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// From sorted, disjoint ranges, merging adjacent ones.
    fn from_sorted(ranges: Vec<(u64, u64)>) -> Self {
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match out.last_mut() {
                Some(last) if last.1.checked_add(1) == Some(a) => last.1 = b,
                _ => out.push((a, b)),
            }
        }
        let count = out.iter().map(|(a, b)| b - a + 1).sum();
        SeqRanges { ranges: out, count }
    }

    /// The seqs in both sets: one pass over both range lists.
    pub fn intersection(&self, other: &SeqRanges) -> SeqRanges {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while let (Some(&(a0, a1)), Some(&(b0, b1))) = (self.ranges.get(i), other.ranges.get(j)) {
            let (lo, hi) = (a0.max(b0), a1.min(b1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a1 < b1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Self::from_sorted(out)
    }

    /// The seqs in either set.
    pub fn union(&self, other: &SeqRanges) -> SeqRanges {
        let (once, many) = Self::coverage([self, other]);
        once.union_disjoint(&many)
    }

    /// The seqs in `self` and not in `other`: one pass over `self`'s ranges and the ranges
    /// of `other` they overlap (found by binary search).
    pub fn difference(&self, other: &SeqRanges) -> SeqRanges {
        let mut out = Vec::new();
        let first = self.first().unwrap_or(0);
        let mut j = other.ranges.partition_point(|r| r.1 < first);
        for &(a0, a1) in &self.ranges {
            // Skip `other`'s ranges that end before this one starts.
            while other.ranges.get(j).is_some_and(|r| r.1 < a0) {
                j += 1;
            }
            // The next seq of this range not yet taken out; `None`: all of it is.
            let mut lo = Some(a0);
            let mut k = j;
            while let (Some(from), Some(&(b0, b1))) = (lo, other.ranges.get(k)) {
                if b0 > a1 {
                    break;
                }
                if b0 > from {
                    out.push((from, b0 - 1));
                }
                lo = if b1 >= a1 { None } else { Some(b1 + 1) };
                k += 1;
            }
            if let Some(from) = lo {
                out.push((from, a1));
            }
        }
        Self::from_sorted(out)
    }

    /// Two disjoint sets as one.
    fn union_disjoint(&self, other: &SeqRanges) -> SeqRanges {
        let mut all: Vec<(u64, u64)> = self.ranges.iter().chain(&other.ranges).copied().collect();
        all.sort_unstable();
        Self::from_sorted(all)
    }

    /// Over several sets (a seq in two of them stands for two events): the seqs in exactly
    /// one of them, and the seqs in two or more. A sweep over the ranges' ends: O(r log r)
    /// for r ranges, however many seqs they hold.
    pub fn coverage<'a>(sets: impl IntoIterator<Item = &'a SeqRanges>) -> (SeqRanges, SeqRanges) {
        // +1 where a range starts, -1 after it ends; u64::MAX + 1 is not representable, so a
        // range ending at u64::MAX closes at the sweep's end.
        let mut edges: Vec<(u64, i64)> = Vec::new();
        for set in sets {
            for &(a, b) in &set.ranges {
                edges.push((a, 1));
                if let Some(after) = b.checked_add(1) {
                    edges.push((after, -1));
                }
            }
        }
        edges.sort_unstable();
        let (mut once, mut many) = (Vec::new(), Vec::new());
        let mut depth = 0i64;
        let mut i = 0;
        while i < edges.len() {
            let at = edges[i].0;
            while edges.get(i).is_some_and(|e| e.0 == at) {
                depth += edges[i].1;
                i += 1;
            }
            // The span from `at` to the next edge has this depth.
            let end = match edges.get(i) {
                Some(next) => next.0 - 1,
                None => u64::MAX,
            };
            match depth {
                1 => once.push((at, end)),
                d if d >= 2 => many.push((at, end)),
                _ => {}
            }
        }
        (Self::from_sorted(once), Self::from_sorted(many))
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

    #[test]
    fn set_algebra_holds_at_the_largest_seqs() {
        let max = SeqRanges::range(u64::MAX, u64::MAX);
        let all = SeqRanges::range(1, u64::MAX);
        assert!(max.difference(&max).is_empty());
        assert_eq!(all.difference(&max), SeqRanges::range(1, u64::MAX - 1));
        assert_eq!(all.intersection(&max), max);
        let (once, many) = SeqRanges::coverage([&all, &max]);
        assert_eq!(once, SeqRanges::range(1, u64::MAX - 1));
        assert_eq!(many, max);
        assert!(!SeqRanges::default().insert(0));
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
        fn set_algebra_matches_a_btreeset(
            a in proptest::collection::vec(1u64..200, 0..150),
            b in proptest::collection::vec(1u64..200, 0..150),
            c in proptest::collection::vec(1u64..200, 0..150),
        ) {
            use std::collections::{BTreeMap, BTreeSet};
            let set = |v: &[u64]| {
                let mut s = SeqRanges::default();
                for &x in v {
                    s.insert(x);
                }
                s
            };
            let model = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
            let (sa, sb, sc) = (set(&a), set(&b), set(&c));
            let (ma, mb, mc) = (model(&a), model(&b), model(&c));
            let seqs = |s: &SeqRanges| s.iter().collect::<BTreeSet<u64>>();
            let i = sa.intersection(&sb);
            prop_assert_eq!(seqs(&i), ma.intersection(&mb).copied().collect::<BTreeSet<_>>());
            prop_assert_eq!(i.count(), ma.intersection(&mb).count() as u64);
            let u = sa.union(&sb);
            prop_assert_eq!(seqs(&u), ma.union(&mb).copied().collect::<BTreeSet<_>>());
            let d = sa.difference(&sb);
            prop_assert_eq!(seqs(&d), ma.difference(&mb).copied().collect::<BTreeSet<_>>());
            prop_assert_eq!(d.count(), ma.difference(&mb).count() as u64);
            // Canonical form: equal to the set built seq by seq.
            prop_assert_eq!(&d, &set(&seqs(&d).into_iter().collect::<Vec<_>>()));
            let mut times: BTreeMap<u64, u32> = BTreeMap::new();
            for m in [&ma, &mb, &mc] {
                for &x in m {
                    *times.entry(x).or_default() += 1;
                }
            }
            let (once, many) = SeqRanges::coverage([&sa, &sb, &sc]);
            prop_assert_eq!(seqs(&once), times.iter().filter(|e| *e.1 == 1).map(|e| *e.0).collect::<BTreeSet<_>>());
            prop_assert_eq!(seqs(&many), times.iter().filter(|e| *e.1 >= 2).map(|e| *e.0).collect::<BTreeSet<_>>());
            prop_assert_eq!(&once, &set(&seqs(&once).into_iter().collect::<Vec<_>>()));
            prop_assert_eq!(SeqRanges::range(3, 7).iter().collect::<Vec<_>>(), vec![3, 4, 5, 6, 7]);
        }

        #[test]
        fn any_text_parses_or_fails(text in "[0-9,\\-]{0,40}") {
            let _ = text.parse::<SeqRanges>();
        }
    }
}
