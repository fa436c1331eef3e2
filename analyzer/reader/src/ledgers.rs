//! Ledger spans (SPEC §2b) by range arithmetic: a seq in a ledger counts as the span it
//! stands for, but the millions of seqs an ordinary day puts in ledgers never become rows.
//!
//! The readers keep each ledger as one [`LedgerEntry`] (its seqs as ranges). Once the whole
//! input is read, [`LedgerBook::settle`] works out per stream which seqs are **clean**: stored
//! by exactly one ledger entry, and, for every group expected to consume them, delivered by
//! exactly one and acked by exactly one, with no full span of their own. A clean message has no
//! finding in either mode, so it is only counted (and its seqs mark the stream as observed for
//! the `unobserved` check). Every other ledger seq is expanded into the rows of the spans it
//! stands for, and the analysis judges it with the full spans, exactly as before. The lowest
//! and highest seq of each (group, partition)'s deliveries and settles are always expanded, so
//! that the high-water marks and a group's first delivered seq (what the verdicts compare
//! against) come out as they would from rows.

use std::collections::{BTreeMap, HashMap};

use mqtrace_vocab::Stage;
use mqtrace_vocab::seqs::SeqRanges;

use crate::columns::{SpanParts, message_key, stage};

/// One ledger span as read, before the input's dictionaries are shared (its names as text).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LedgerIn {
    pub(crate) producer_id: String,
    pub(crate) stream: String,
    pub(crate) fields: LedgerFields,
    pub(crate) group: Option<String>,
    pub(crate) partition: Option<String>,
}

/// What every row a ledger stands for carries.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LedgerFields {
    /// `store_ack` (each seq: a `produce` and an `ok` answer), `deliver` or `consume_ack`.
    pub(crate) of: Stage,
    pub(crate) attempt: Option<i64>,
    pub(crate) outcome: Option<u8>,
    pub(crate) delivery_count: Option<i64>,
    pub(crate) seqs: SeqRanges,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) trace_id: u128,
}

/// One ledger span, its names as the input's shared codes.
#[derive(Clone, Debug)]
pub struct LedgerEntry {
    stream: u32,
    group: Option<u32>,
    /// The (stream, group) code of the `pair` key.
    pair: Option<u32>,
    partition: Option<u32>,
    fields: LedgerFields,
}

impl LedgerEntry {
    pub(crate) fn new(
        stream: u32,
        group: Option<u32>,
        pair: Option<u32>,
        partition: Option<u32>,
        fields: LedgerFields,
    ) -> Self {
        LedgerEntry {
            stream,
            group,
            pair,
            partition,
            fields,
        }
    }
}

/// What the full spans (the rows) say that the ledgers' arithmetic needs: per stream code, the
/// seqs that have a row; per (stream, group) code, the lowest seq delivered in a row.
#[derive(Debug, Default)]
pub struct RowFacts {
    /// Seqs with any row, per stream.
    pub seqs: HashMap<u32, SeqRanges>,
    /// The lowest seq a `deliver` row of the group carries, per (stream, group).
    pub first_delivered: HashMap<(u32, u32), u64>,
}

impl RowFacts {
    /// From the rows' stream, seq, stage and group columns, for the streams in `of` only.
    pub fn from_columns(
        of: &std::collections::BTreeSet<u32>,
        rows: impl Iterator<Item = (u32, i64, u8, Option<u32>)>,
    ) -> Self {
        let mut seqs: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut first_delivered: HashMap<(u32, u32), u64> = HashMap::new();
        for (stream, seq, stage_code, group) in rows {
            if !of.contains(&stream) {
                continue;
            }
            let Ok(seq) = u64::try_from(seq) else {
                continue;
            };
            seqs.entry(stream).or_default().push(seq);
            if let (stage::DELIVER, Some(g)) = (stage_code, group) {
                let first = first_delivered.entry((stream, g)).or_insert(seq);
                *first = (*first).min(seq);
            }
        }
        let seqs = seqs
            .into_iter()
            .map(|(stream, mut v)| {
                v.sort_unstable();
                let mut set = SeqRanges::default();
                for seq in v {
                    set.insert(seq);
                }
                (stream, set)
            })
            .collect();
        RowFacts {
            seqs,
            first_delivered,
        }
    }
}

/// The ledgers settled against the rows: the rows of the seqs to judge, and the clean seqs
/// per stream code.
#[derive(Debug, Default)]
pub struct Settled {
    /// Rows for every ledger seq that is not clean (shared codes, like the readers' parts).
    pub parts: SpanParts,
    /// Clean seqs per stream code.
    pub clean: BTreeMap<u32, SeqRanges>,
}

/// Every ledger of the input. See the [module docs](self).
#[derive(Debug, Default)]
pub struct LedgerBook {
    entries: Vec<LedgerEntry>,
}

/// One group's ledgers on one stream.
#[derive(Default)]
struct GroupLedgers<'a> {
    deliver: Vec<&'a SeqRanges>,
    ack: Vec<&'a SeqRanges>,
}

impl LedgerBook {
    pub(crate) fn push(&mut self, entry: LedgerEntry) {
        self.entries.push(entry);
    }

    /// No ledger was read.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stream codes that have ledgers.
    pub fn streams(&self) -> std::collections::BTreeSet<u32> {
        self.entries.iter().map(|e| e.stream).collect()
    }

    /// Which seqs are clean, and the rows of all the others. See the [module docs](self).
    pub fn settle(&self, rows: &RowFacts) -> Settled {
        let mut by_stream: BTreeMap<u32, Vec<&LedgerEntry>> = BTreeMap::new();
        for e in &self.entries {
            by_stream.entry(e.stream).or_default().push(e);
        }
        let mut row_groups: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(s, g) in rows.first_delivered.keys() {
            row_groups.entry(s).or_default().push(g);
        }
        let mut out = Settled::default();
        let mut builder = Rows::default();
        for (stream, entries) in by_stream {
            let groups = row_groups.get(&stream).map_or(&[][..], Vec::as_slice);
            let clean = clean_seqs(stream, &entries, rows, groups);
            for e in &entries {
                let judged = e.fields.seqs.difference(&clean);
                builder.expand(e, &judged);
            }
            if !clean.is_empty() {
                out.clean.insert(stream, clean);
            }
        }
        out.parts = builder.parts;
        out
    }
}

/// The clean seqs of one stream (see the [module docs](self)); `row_groups`: the groups with
/// a `deliver` row on it.
fn clean_seqs(
    stream: u32,
    entries: &[&LedgerEntry],
    rows: &RowFacts,
    row_groups: &[u32],
) -> SeqRanges {
    let stored: Vec<&SeqRanges> = entries
        .iter()
        .filter(|e| e.fields.of == Stage::StoreAck)
        .map(|e| &e.fields.seqs)
        .collect();
    let (mut clean, _) = SeqRanges::coverage(stored);
    if clean.is_empty() {
        return clean;
    }
    let mut groups: BTreeMap<u32, GroupLedgers<'_>> = BTreeMap::new();
    // The ends (lowest, highest seq) of each (group, partition)'s deliveries and settles stay
    // rows.
    let mut ends: BTreeMap<(u32, Option<u32>, bool), (u64, u64)> = BTreeMap::new();
    for e in entries {
        let Some(g) = e.group else { continue };
        let book = groups.entry(g).or_default();
        let deliver = match e.fields.of {
            Stage::Deliver => {
                book.deliver.push(&e.fields.seqs);
                true
            }
            Stage::ConsumeAck => {
                book.ack.push(&e.fields.seqs);
                false
            }
            _ => continue,
        };
        if let (Some(lo), Some(hi)) = (e.fields.seqs.first(), e.fields.seqs.last()) {
            let end = ends.entry((g, e.partition, deliver)).or_insert((lo, hi));
            *end = (end.0.min(lo), end.1.max(hi));
        }
    }
    for &g in row_groups {
        groups.entry(g).or_default();
    }
    for (g, book) in &groups {
        let (delivered_once, delivered_more) = SeqRanges::coverage(book.deliver.iter().copied());
        let (acked_once, acked_more) = SeqRanges::coverage(book.ack.iter().copied());
        // The group is expected to consume from the first seq it delivered (SPEC §4).
        let first = [
            delivered_once.first(),
            delivered_more.first(),
            rows.first_delivered.get(&(stream, *g)).copied(),
        ]
        .into_iter()
        .flatten()
        .min();
        let consumed = delivered_once.intersection(&acked_once);
        let allowed = match first {
            Some(first) => {
                // Below its first delivery, the group must have done nothing with the seq.
                let touched = delivered_once
                    .union(&delivered_more)
                    .union(&acked_once)
                    .union(&acked_more);
                let before = SeqRanges::range(1, first.saturating_sub(1)).difference(&touched);
                consumed.union(&before)
            }
            // Settles without any delivery: nothing of this group is clean.
            None => SeqRanges::default(),
        };
        clean = clean.intersection(&allowed);
    }
    let mut edge_seqs: Vec<u64> = ends.values().flat_map(|&(lo, hi)| [lo, hi]).collect();
    edge_seqs.sort_unstable();
    let mut kept = SeqRanges::default();
    for seq in edge_seqs {
        kept.insert(seq);
    }
    clean = clean.difference(&kept);
    if let Some(with_rows) = rows.seqs.get(&stream) {
        clean = clean.difference(with_rows);
    }
    clean
}

/// Builds the rows of expanded ledger seqs.
#[derive(Default)]
struct Rows {
    parts: SpanParts,
}

impl Rows {
    /// The rows `e`'s seqs in `judged` stand for: as the span of its stage would give them,
    /// without positions, at the ledger's interval.
    fn expand(&mut self, e: &LedgerEntry, judged: &SeqRanges) {
        let stages: &[u8] = match e.fields.of {
            Stage::StoreAck => &[stage::PRODUCE, stage::STORE_ACK],
            Stage::Deliver => &[stage::DELIVER],
            _ => &[stage::CONSUME_ACK],
        };
        let p = &mut self.parts;
        for seq in judged.iter() {
            let Ok(seq) = i64::try_from(seq) else {
                continue;
            };
            for &code in stages {
                p.msg.push(message_key(e.stream, seq));
                p.stream.push(e.stream);
                p.seq.push(seq);
                p.stage.push(code);
                p.attempt.push(e.fields.attempt);
                p.outcome.push(
                    (code != stage::PRODUCE)
                        .then_some(e.fields.outcome)
                        .flatten(),
                );
                p.position_ends.push(p.position_text.len() as u32);
                p.position_valid.push(false);
                p.position_key.push(None);
                p.group.push(e.group);
                p.pair.push(e.pair.map(|c| message_key(c, seq)));
                p.partition.push(e.partition);
                p.delivery_count.push(e.fields.delivery_count);
                p.start_ns.push(e.fields.start_ns);
                p.end_ns.push(e.fields.end_ns);
                p.trace_id.push(e.fields.trace_id as i128);
                p.message_id.push(None);
                p.ledger.push(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(text: &str) -> SeqRanges {
        text.parse().expect("seqs")
    }

    fn entry(of: Stage, group: Option<u32>, text: &str) -> LedgerEntry {
        LedgerEntry::new(
            0,
            group,
            group,
            Some(0),
            LedgerFields {
                of,
                attempt: None,
                outcome: None,
                delivery_count: None,
                seqs: seqs(text),
                start_ns: 1,
                end_ns: 2,
                trace_id: 7,
            },
        )
    }

    fn book(entries: Vec<LedgerEntry>) -> LedgerBook {
        LedgerBook { entries }
    }

    #[test]
    fn only_seqs_with_one_event_at_every_stage_are_clean() {
        let b = book(vec![
            entry(Stage::StoreAck, None, "1-100"),
            // 50 stored twice (two intervals).
            entry(Stage::StoreAck, None, "50"),
            entry(Stage::Deliver, Some(0), "1-40,42-100"),
            // 60 delivered twice.
            entry(Stage::Deliver, Some(0), "60"),
            // 70 never acked.
            entry(Stage::ConsumeAck, Some(0), "1-69,71-100"),
        ]);
        let mut rows = RowFacts::default();
        rows.seqs.insert(0, seqs("80"));
        let settled = b.settle(&rows);
        // 1 and 100 are the ends of the group's deliveries and settles: kept as rows.
        assert_eq!(
            settled.clean[&0].to_string(),
            "2-40,42-49,51-59,61-69,71-79,81-99"
        );
        let expanded: std::collections::BTreeSet<i64> = settled.parts.seq.iter().copied().collect();
        let want: std::collections::BTreeSet<i64> = [1, 41, 50, 60, 70, 80, 100].into();
        assert_eq!(expanded, want);
        // Store ledgers give produce and store_ack rows; seq 1: 2 + deliver + ack.
        assert_eq!(settled.parts.seq.iter().filter(|&&s| s == 1).count(), 4);
        assert_eq!(settled.parts.seq.iter().filter(|&&s| s == 50).count(), 6);
    }

    #[test]
    fn a_group_is_held_to_seqs_from_its_first_delivery_rows_included() {
        let b = book(vec![
            entry(Stage::StoreAck, None, "1-100"),
            entry(Stage::Deliver, Some(0), "1-100"),
            entry(Stage::ConsumeAck, Some(0), "1-100"),
            // Group 1 joined at 50 by its ledgers, but a full span shows it delivered 30.
            entry(Stage::Deliver, Some(1), "50-100"),
            entry(Stage::ConsumeAck, Some(1), "50-100"),
        ]);
        let mut rows = RowFacts::default();
        rows.first_delivered.insert((0, 1), 30);
        rows.seqs.insert(0, seqs("30"));
        let clean = b.settle(&rows).clean.remove(&0).expect("clean");
        assert_eq!(clean.to_string(), "2-29,51-99");
    }
}
