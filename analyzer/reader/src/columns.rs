//! The spans the analyzer keeps, as columns of plain vectors: fixed-width keys (dictionary
//! codes for streams, groups and partitions) so that the analysis groups and joins on
//! integers. The analyzer turns them into a frame ([`SpanColumns::into_parts`]).

use mqtrace_vocab::{SettleOutcome, Stage, StoreOutcome, keys};
use std::borrow::Cow;
use std::collections::HashMap;

/// Stage codes in the `stage` column: a [`Stage`]'s place in [`Stage::ALL`].
pub mod stage {
    use mqtrace_vocab::Stage;

    /// `produce`
    pub const PRODUCE: u8 = Stage::Produce as u8;
    /// `store_ack`
    pub const STORE_ACK: u8 = Stage::StoreAck as u8;
    /// `deliver`
    pub const DELIVER: u8 = Stage::Deliver as u8;
    /// `consume_ack`
    pub const CONSUME_ACK: u8 = Stage::ConsumeAck as u8;
    /// No stage event: the stored copy a ledger-mode consumer delivered earlier, named by a
    /// repeat's `deliver` span (`mqtrace.ledger.position`). A row of its own so that the plans
    /// count it among a message's stored copies and a group's positioned deliveries, never
    /// as a delivery.
    pub const LEDGER_COPY: u8 = 200;
}

/// Outcome codes in the `outcome` column (store and settle outcomes share it).
pub mod outcome {
    use super::{SettleOutcome, StoreOutcome};

    /// `ok` (store_ack)
    pub const OK: u8 = 0;
    /// `ack` (consume_ack)
    pub const ACK: u8 = 1;
    /// `skip_duplicate` (consume_ack)
    pub const SKIP_DUPLICATE: u8 = 2;
    /// Any other value: `nack`, `error`, `timeout`, `reject`, or one this version does not know.
    pub const OTHER: u8 = 3;

    /// The code of a `mqtrace.outcome` value.
    pub fn code(s: &str) -> u8 {
        if StoreOutcome::parse(s) == Some(StoreOutcome::Ok) {
            OK
        } else {
            match SettleOutcome::parse(s) {
                Some(SettleOutcome::Ack) => ACK,
                Some(SettleOutcome::SkipDuplicate) => SKIP_DUPLICATE,
                _ => OTHER,
            }
        }
    }
}

/// Interns strings to dense `u32` codes.
#[derive(Debug, Default, Clone)]
pub struct Dict {
    codes: HashMap<String, u32>,
    values: Vec<String>,
    /// The last value looked up: consecutive spans mostly share their stream and group.
    last: Option<u32>,
}

impl Dict {
    /// The code of `s`, added if new.
    pub fn code(&mut self, s: &str) -> u32 {
        if let Some(last) = self.last
            && self.values[last as usize] == s
        {
            return last;
        }
        let c = match self.codes.get(s) {
            Some(c) => *c,
            None => {
                let c = self.values.len() as u32;
                self.codes.insert(s.to_owned(), c);
                self.values.push(s.to_owned());
                c
            }
        };
        self.last = Some(c);
        c
    }

    /// The values, by code.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Forgets the values added after the first `len` (a record that turned out bad takes
    /// its names back).
    fn truncate(&mut self, len: usize) {
        for v in self.values.drain(len.min(self.values.len())..) {
            self.codes.remove(&v);
        }
        if self.last.is_some_and(|c| c as usize >= len) {
            self.last = None;
        }
    }

    /// Codes of `other`'s values in `self` (adding them), indexed by `other`'s codes.
    pub(crate) fn absorb(&mut self, other: &Dict) -> Vec<u32> {
        other.values.iter().map(|v| self.code(v)).collect()
    }
}

/// The dictionaries that pieces' codes are remapped into, shared by the whole input.
#[derive(Debug, Default)]
pub struct Dictionaries {
    /// (producer id, stream) keys.
    pub streams: Dict,
    /// Consumer group names.
    pub groups: Dict,
    /// Partition ids.
    pub partitions: Dict,
    /// A code per (stream, group) seen, for the `pair` key.
    pairs: HashMap<(u32, u32), u32>,
}

impl Dictionaries {
    /// A ledger read from a piece, with the input's shared codes.
    pub(crate) fn ledger_entry(
        &mut self,
        l: crate::ledgers::LedgerIn,
    ) -> crate::ledgers::LedgerEntry {
        let stream = self.streams.code(&stream_key(&l.producer_id, &l.stream));
        let group = l.group.as_deref().map(|g| self.groups.code(g));
        let pair = group.map(|g| self.pair(stream, g));
        let partition = l.partition.as_deref().map(|p| self.partitions.code(p));
        crate::ledgers::LedgerEntry::new(stream, group, pair, partition, l.fields)
    }

    fn pair(&mut self, stream: u32, group: u32) -> u32 {
        let next = self.pairs.len() as u32;
        *self.pairs.entry((stream, group)).or_insert(next)
    }

    /// Whether every code fits in the bits [`message_key`] and the `pair` key give it.
    pub fn fit_keys(&self) -> Result<(), String> {
        for (what, n) in [
            ("(producer id, stream) pairs", self.streams.values().len()),
            ("(stream, consumer group) pairs", self.pairs.len()),
        ] {
            if n as u64 > keys::MAX_CODES {
                return Err(format!(
                    "{n} distinct {what}: the analyzer keys messages on at most {}; \
                     analyze fewer files at once (for example one service's)",
                    keys::MAX_CODES
                ));
            }
        }
        Ok(())
    }
}

/// Optional strings packed into one buffer: no allocation per row (positions are on most
/// spans and mostly distinct, so a dictionary would not help).
#[derive(Debug, Default)]
struct StrColumn {
    text: String,
    /// Where each row's string ends in `text`.
    ends: Vec<u32>,
    valid: Vec<bool>,
}

impl StrColumn {
    fn push(&mut self, value: Option<&str>) {
        if let Some(v) = value {
            self.text.push_str(v);
        }
        // A piece's text is far below 4 GiB (pieces come from 32 MiB blocks).
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        self.valid.push(value.is_some());
    }

    fn truncate(&mut self, len: usize) {
        if len < self.ends.len() {
            let end = len.checked_sub(1).map_or(0, |i| self.ends[i] as usize);
            self.text.truncate(end);
            self.ends.truncate(len);
            self.valid.truncate(len);
        }
    }
}

/// A stream's name: (producer id, stream).
pub type StreamName = (String, String);

/// Spans being collected, column by column.
#[derive(Debug, Default)]
pub struct SpanColumns {
    pub(crate) streams: Dict,
    pub(crate) groups: Dict,
    pub(crate) partitions: Dict,
    stream: Vec<u32>,
    seq: Vec<i64>,
    stage: Vec<u8>,
    attempt: Vec<Option<i64>>,
    outcome: Vec<Option<u8>>,
    position: StrColumn,
    /// A 64-bit hash of `position`: the plans count distinct copies on it, not on strings.
    position_key: Vec<Option<u64>>,
    group: Vec<Option<u32>>,
    /// (stream, group, seq) as one integer, set by [`Self::remap_into`].
    pair: Vec<Option<u64>>,
    partition: Vec<Option<u32>>,
    delivery_count: Vec<Option<i64>>,
    start_ns: Vec<i64>,
    end_ns: Vec<i64>,
    trace_id: Vec<i128>,
    message_id: Vec<Option<String>>,
    /// The last (producer id, stream) seen and its code, to skip building the key.
    last_stream: Option<(String, String, u32)>,
}

/// One keyed span, as the sink hands it over.
#[derive(Debug)]
pub struct SpanRow<'a> {
    /// Producer id.
    pub producer_id: &'a str,
    /// Stream.
    pub stream: &'a str,
    /// Seq (≥ 1).
    pub seq: i64,
    /// Stage.
    pub stage: Stage,
    /// `mqtrace.attempt`.
    pub attempt: Option<i64>,
    /// Outcome code.
    pub outcome: Option<u8>,
    /// `mqtrace.broker.position`.
    pub position: Option<Cow<'a, str>>,
    /// `mqtrace.ledger.position` (a `deliver` span in ledger mode): where this consumer's
    /// earlier ledger delivery of the seq was stored; pushed as a [`stage::LEDGER_COPY`] row.
    pub earlier_position: Option<Cow<'a, str>>,
    /// `messaging.consumer.group.name`.
    pub group: Option<Cow<'a, str>>,
    /// `messaging.destination.partition.id`.
    pub partition: Option<Cow<'a, str>>,
    /// `mqtrace.delivery.count`.
    pub delivery_count: Option<i64>,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns since the epoch.
    pub end_ns: i64,
    /// Trace id, its 128 bits.
    pub trace_id: u128,
    /// `messaging.message.id`.
    pub message_id: Option<&'a str>,
}

impl Default for SpanRow<'_> {
    fn default() -> Self {
        SpanRow {
            producer_id: "",
            stream: "",
            seq: 0,
            stage: Stage::Produce,
            attempt: None,
            outcome: None,
            position: None,
            earlier_position: None,
            group: None,
            partition: None,
            delivery_count: None,
            start_ns: 0,
            end_ns: 0,
            trace_id: 0,
            message_id: None,
        }
    }
}

/// Where a piece's columns and dictionaries stood when a record began: what a record that
/// turns out bad is rolled back to.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mark {
    rows: usize,
    streams: usize,
    groups: usize,
    partitions: usize,
}

impl SpanColumns {
    /// Where the columns stand now.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            rows: self.len(),
            streams: self.streams.len(),
            groups: self.groups.len(),
            partitions: self.partitions.len(),
        }
    }

    /// Takes back every row and dictionary entry added since `mark`.
    pub(crate) fn rollback(&mut self, mark: Mark) {
        self.truncate(mark.rows);
        self.streams.truncate(mark.streams);
        self.groups.truncate(mark.groups);
        self.partitions.truncate(mark.partitions);
        if self
            .last_stream
            .as_ref()
            .is_some_and(|(_, _, c)| *c as usize >= mark.streams)
        {
            self.last_stream = None;
        }
    }

    /// Spans so far.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Keeps the first `len` spans.
    fn truncate(&mut self, len: usize) {
        self.stream.truncate(len);
        self.seq.truncate(len);
        self.stage.truncate(len);
        self.attempt.truncate(len);
        self.outcome.truncate(len);
        self.position.truncate(len);
        self.position_key.truncate(len);
        self.group.truncate(len);
        self.partition.truncate(len);
        self.delivery_count.truncate(len);
        self.start_ns.truncate(len);
        self.end_ns.truncate(len);
        self.trace_id.truncate(len);
        self.message_id.truncate(len);
    }

    /// No spans.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Adds one span (two rows when it names an earlier ledger delivery's position).
    pub fn push(&mut self, mut row: SpanRow<'_>) {
        // Only a delivery names an earlier ledger delivery's copy.
        let earlier = row
            .earlier_position
            .take()
            .filter(|_| row.stage == Stage::Deliver);
        let stage = row.stage as u8;
        let copy = earlier.map(|position| SpanRow {
            producer_id: row.producer_id,
            stream: row.stream,
            seq: row.seq,
            position: Some(position),
            group: row.group.clone(),
            partition: row.partition.clone(),
            start_ns: row.start_ns,
            end_ns: row.end_ns,
            trace_id: row.trace_id,
            ..SpanRow::default()
        });
        self.push_coded(row, stage);
        if let Some(copy) = copy {
            self.push_coded(copy, stage::LEDGER_COPY);
        }
    }

    fn push_coded(&mut self, row: SpanRow<'_>, stage: u8) {
        let stream = match &self.last_stream {
            Some((p, s, c)) if p == row.producer_id && s == row.stream => *c,
            _ => {
                let c = self.streams.code(&stream_key(row.producer_id, row.stream));
                self.last_stream = Some((row.producer_id.to_owned(), row.stream.to_owned(), c));
                c
            }
        };
        self.stream.push(stream);
        self.seq.push(row.seq);
        self.stage.push(stage);
        self.attempt.push(row.attempt);
        self.outcome.push(row.outcome);
        self.position.push(row.position.as_deref());
        self.position_key
            .push(row.position.as_deref().map(position_key));
        self.group
            .push(row.group.as_deref().map(|g| self.groups.code(g)));
        self.partition
            .push(row.partition.as_deref().map(|p| self.partitions.code(p)));
        self.delivery_count.push(row.delivery_count);
        self.start_ns.push(row.start_ns);
        self.end_ns.push(row.end_ns);
        // The bits, as polars' one 128-bit integer type.
        self.trace_id.push(row.trace_id as i128);
        // Only a message id other than the default `{producer}:{stream}:{seq}` is kept.
        self.message_id.push(
            row.message_id
                .filter(|id| !is_default_id(id, row.producer_id, row.stream, row.seq))
                .map(str::to_owned),
        );
    }

    /// Rewrites this piece's dictionary codes into the shared dictionaries, and keys each
    /// span that names a group by (stream, group, seq).
    pub fn remap_into(&mut self, shared: &mut Dictionaries) {
        let s = shared.streams.absorb(&self.streams);
        let g = shared.groups.absorb(&self.groups);
        let p = shared.partitions.absorb(&self.partitions);
        for c in &mut self.stream {
            *c = s[*c as usize];
        }
        for c in self.group.iter_mut().flatten() {
            *c = g[*c as usize];
        }
        for c in self.partition.iter_mut().flatten() {
            *c = p[*c as usize];
        }
        let mut last: Option<(u32, u32, u32)> = None;
        self.pair = (self.stream.iter().zip(&self.group).zip(&self.seq))
            .map(|((&stream, group), &seq)| {
                let group = (*group)?;
                let code = match last {
                    Some((s, g, c)) if s == stream && g == group => c,
                    _ => {
                        let c = shared.pair(stream, group);
                        last = Some((stream, group, c));
                        c
                    }
                };
                Some(message_key(code, seq))
            })
            .collect();
        self.streams = Dict::default();
        self.groups = Dict::default();
        self.partitions = Dict::default();
        self.last_stream = None;
    }

    /// The columns, for the analyzer to make a frame of (after [`Self::remap_into`]: the
    /// dictionary codes are the shared ones).
    pub fn into_parts(self) -> SpanParts {
        let height = self.seq.len();
        let mut pair = self.pair;
        pair.resize(height, None); // not remapped: no pair keys
        let msg = self
            .stream
            .iter()
            .zip(&self.seq)
            .map(|(s, q)| message_key(*s, *q))
            .collect();
        let (position_text, position_ends, position_valid) =
            (self.position.text, self.position.ends, self.position.valid);
        SpanParts {
            msg,
            stream: self.stream,
            seq: self.seq,
            stage: self.stage,
            attempt: self.attempt,
            outcome: self.outcome,
            position_text,
            position_ends,
            position_valid,
            position_key: self.position_key,
            group: self.group,
            pair,
            partition: self.partition,
            delivery_count: self.delivery_count,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            trace_id: self.trace_id,
            message_id: self.message_id,
            ledger: vec![false; height],
        }
    }
}

/// The span columns as plain vectors, one entry per span.
#[derive(Debug, Default)]
pub struct SpanParts {
    /// (stream, seq) as one integer ([`message_key`]): the analysis groups on it.
    pub msg: Vec<u64>,
    /// Stream code.
    pub stream: Vec<u32>,
    /// Seq.
    pub seq: Vec<i64>,
    /// Stage code ([`stage`]).
    pub stage: Vec<u8>,
    /// `mqtrace.attempt`.
    pub attempt: Vec<Option<i64>>,
    /// Outcome code ([`outcome`]).
    pub outcome: Vec<Option<u8>>,
    /// Positions, packed: row i's text is `position_text[ends[i-1]..ends[i]]`.
    pub position_text: String,
    /// Where each row's position ends in `position_text`.
    pub position_ends: Vec<u32>,
    /// Whether each row has a position.
    pub position_valid: Vec<bool>,
    /// A 64-bit hash of the position: distinct copies are counted on it.
    pub position_key: Vec<Option<u64>>,
    /// Group code.
    pub group: Vec<Option<u32>>,
    /// (stream, group, seq) as one integer, for spans that name a group.
    pub pair: Vec<Option<u64>>,
    /// Partition code.
    pub partition: Vec<Option<u32>>,
    /// `mqtrace.delivery.count`.
    pub delivery_count: Vec<Option<i64>>,
    /// Start, ns since the epoch.
    pub start_ns: Vec<i64>,
    /// End, ns since the epoch.
    pub end_ns: Vec<i64>,
    /// Trace id bits.
    pub trace_id: Vec<i128>,
    /// A message id other than the default.
    pub message_id: Vec<Option<String>>,
    /// Whether the row stands for a ledger seq ([`crate::ledgers`]).
    pub ledger: Vec<bool>,
}

impl SpanParts {
    /// Row `i`'s position.
    pub fn position(&self, i: usize, start: &mut usize) -> Option<&str> {
        let end = *self.position_ends.get(i)? as usize;
        let value = self.position_text.get(*start..end);
        *start = end;
        if self.position_valid.get(i).copied().unwrap_or(false) {
            value
        } else {
            None
        }
    }
}

/// The `position_key` of a position: SipHash with fixed keys, so equal positions in any piece
/// or run get equal keys (two distinct positions of one message colliding: about 2^-64).
fn position_key(position: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    #[allow(deprecated)] // SipHasher: fixed keys on purpose
    let mut h = std::hash::SipHasher::new();
    position.hash(&mut h);
    h.finish()
}

/// The `msg` column: the stream's code in the high bits, the seq in the low (see
/// [`mqtrace_vocab::keys`]). The `pair` column is the same with a (stream, group) code.
pub fn message_key(stream: u32, seq: i64) -> u64 {
    keys::message_key(stream, seq)
}

/// `id == "{producer}:{stream}:{seq}"`, without building the string.
fn is_default_id(id: &str, producer: &str, stream: &str, seq: i64) -> bool {
    let Some(rest) = id.strip_prefix(producer).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(stream).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    rest.parse::<i64>().ok() == Some(seq) && !rest.starts_with('+') && !rest.starts_with('0')
}

/// Lowercase hex of a trace id held as an `i128`.
pub fn trace_hex(v: i128) -> String {
    format!("{:032x}", v as u128)
}

// Producer ids and stream names are arbitrary strings; a NUL byte cannot come from OTLP JSON
// text unescaped, and the reader rejects escaped ones, so it separates them safely.
fn stream_key(producer_id: &str, stream: &str) -> String {
    let mut k = String::with_capacity(producer_id.len() + 1 + stream.len());
    k.push_str(producer_id);
    k.push('\0');
    k.push_str(stream);
    k
}

/// (producer id, stream) from a dictionary key.
pub(crate) fn split_stream_key(k: &str) -> StreamName {
    match k.split_once('\0') {
        Some((p, s)) => (p.to_owned(), s.to_owned()),
        None => (k.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(p: &'a str, s: &'a str, seq: i64, group: Option<&'a str>) -> SpanRow<'a> {
        SpanRow {
            producer_id: p,
            stream: s,
            seq,
            stage: Stage::Deliver,
            group: group.map(Cow::Borrowed),
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            ..SpanRow::default()
        }
    }

    #[test]
    fn default_message_ids_are_recognised_without_building_them() {
        assert!(is_default_id("p:orders:42", "p", "orders", 42));
        assert!(!is_default_id("p:orders:042", "p", "orders", 42));
        assert!(!is_default_id("p:orders:43", "p", "orders", 42));
        assert!(!is_default_id("custom-id", "p", "orders", 42));
        assert_eq!(
            trace_hex(0x4bf92f3577b34da6a3ce929d0e0e4736_u128 as i128),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(trace_hex(-1), "ffffffffffffffffffffffffffffffff");
    }

    #[test]
    fn pieces_share_dictionary_codes_after_remapping() {
        let mut shared = Dictionaries::default();
        let mut a = SpanColumns::default();
        a.push(row("p1", "orders", 1, Some("g1")));
        a.remap_into(&mut shared);
        let mut b = SpanColumns::default();
        b.push(row("p2", "orders", 5, Some("g2")));
        b.push(row("p1", "orders", 2, Some("g1")));
        b.push(row("p1", "orders", 3, None));
        b.remap_into(&mut shared);
        assert_eq!((a.stream, a.group), (vec![0], vec![Some(0)]));
        assert_eq!(a.pair, [Some(message_key(0, 1))]);
        assert_eq!(
            b.pair,
            [Some(message_key(1, 5)), Some(message_key(0, 2)), None],
            "(p1/orders, g1) keeps pair code 0; no group, no pair key"
        );
        assert_eq!(
            b.stream,
            [1, 0, 0],
            "p1/orders keeps code 0 in the later piece"
        );
        assert_eq!(b.group, [Some(1), Some(0), None]);
        let names: Vec<StreamName> = shared
            .streams
            .values()
            .iter()
            .map(|k| split_stream_key(k))
            .collect();
        assert_eq!(
            names,
            [
                ("p1".to_owned(), "orders".to_owned()),
                ("p2".to_owned(), "orders".to_owned())
            ]
        );
        assert_eq!(b.into_parts().msg.len(), 3);
        assert!(shared.fit_keys().is_ok());
    }
}
