//! The spans the analyzer keeps, as columns: fixed-width keys (dictionary codes for streams,
//! groups and partitions) so that the plans group and join on integers.

use polars::prelude::*;
use std::collections::HashMap;

/// Stage codes in the `stage` column.
pub mod stage {
    /// `produce`
    pub const PRODUCE: u8 = 0;
    /// `store_ack`
    pub const STORE_ACK: u8 = 1;
    /// `deliver`
    pub const DELIVER: u8 = 2;
    /// `consume_ack`
    pub const CONSUME_ACK: u8 = 3;

    /// The code of a `mqtrace.stage` value.
    pub fn code(s: &str) -> Option<u8> {
        Some(match s {
            "produce" => PRODUCE,
            "store_ack" => STORE_ACK,
            "deliver" => DELIVER,
            "consume_ack" => CONSUME_ACK,
            _ => return None,
        })
    }
}

/// Outcome codes in the `outcome` column (store and settle outcomes share it).
pub mod outcome {
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
        match s {
            "ok" => OK,
            "ack" => ACK,
            "skip_duplicate" => SKIP_DUPLICATE,
            _ => OTHER,
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
            if n as u64 > MAX_CODE {
                return Err(format!(
                    "{n} distinct {what}: the analyzer keys messages on at most {MAX_CODE}; \
                     analyze fewer files at once (for example one service's)"
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

    fn into_column(self, name: &str) -> Column {
        let mut start = 0;
        let values = self.ends.iter().zip(&self.valid).map(|(&end, &valid)| {
            let value = self.text.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            valid.then_some(value)
        });
        StringChunked::from_iter_options(name.into(), values).into_column()
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
    attempt: Vec<Option<i32>>,
    outcome: Vec<Option<u8>>,
    position: StrColumn,
    /// A 64-bit hash of `position`: the plans count distinct copies on it, not on strings.
    position_key: Vec<Option<u64>>,
    group: Vec<Option<u32>>,
    /// (stream, group, seq) as one integer, set by [`Self::remap_into`].
    pair: Vec<Option<u64>>,
    partition: Vec<Option<u32>>,
    delivery_count: Vec<Option<i32>>,
    start_ns: Vec<i64>,
    end_ns: Vec<i64>,
    trace_id: Vec<i128>,
    message_id: Vec<Option<String>>,
    /// The last (producer id, stream) seen and its code, to skip building the key.
    last_stream: Option<(String, String, u32)>,
}

/// One keyed span, as the readers hand it over.
#[derive(Debug, Default)]
pub struct SpanRow<'a> {
    /// Producer id.
    pub producer_id: &'a str,
    /// Stream.
    pub stream: &'a str,
    /// Seq (≥ 1).
    pub seq: i64,
    /// Stage code.
    pub stage: u8,
    /// `mqtrace.attempt`.
    pub attempt: Option<i32>,
    /// Outcome code.
    pub outcome: Option<u8>,
    /// `mqtrace.broker.position`.
    pub position: Option<&'a str>,
    /// `messaging.consumer.group.name`.
    pub group: Option<&'a str>,
    /// `messaging.destination.partition.id`.
    pub partition: Option<&'a str>,
    /// `mqtrace.delivery.count`.
    pub delivery_count: Option<i32>,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns since the epoch.
    pub end_ns: i64,
    /// Trace id, its 128 bits.
    pub trace_id: u128,
    /// `messaging.message.id`.
    pub message_id: Option<&'a str>,
}

impl SpanColumns {
    /// Spans so far.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Keeps the first `len` spans (a line that turned out bad takes its spans back).
    pub fn truncate(&mut self, len: usize) {
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

    /// Adds one span.
    pub fn push(&mut self, row: SpanRow<'_>) {
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
        self.stage.push(row.stage);
        self.attempt.push(row.attempt);
        self.outcome.push(row.outcome);
        self.position.push(row.position);
        self.position_key.push(row.position.map(position_key));
        self.group.push(row.group.map(|g| self.groups.code(g)));
        self.partition
            .push(row.partition.map(|p| self.partitions.code(p)));
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

    /// The columns as a frame: `msg` (u64, see [`message_key`]), `stream` (u32), `seq` (i64),
    /// `stage` (u8), `attempt`, `outcome` (u8), `position` (str), `position_key` (u64),
    /// `group` (u32), `pair` (u64: (stream, group, seq) once remapped), `partition` (u32),
    /// `delivery_count`, `start_ns`, `end_ns`, `trace_id`, `message_id`.
    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        let height = self.seq.len();
        let mut pair = self.pair;
        pair.resize(height, None); // not remapped: no pair keys
        // One integer per message, for the plans' group-bys and joins: grouping on a single
        // u64 is several times faster than on (stream, seq).
        let msg: Vec<u64> = self
            .stream
            .iter()
            .zip(&self.seq)
            .map(|(s, q)| message_key(*s, *q))
            .collect();
        DataFrame::new(
            height,
            vec![
                Column::new("msg".into(), msg),
                Column::new("stream".into(), self.stream),
                Column::new("seq".into(), self.seq),
                Column::new("stage".into(), self.stage),
                Column::new("attempt".into(), self.attempt),
                Column::new("outcome".into(), self.outcome),
                self.position.into_column("position"),
                Column::new("position_key".into(), self.position_key),
                Column::new("group".into(), self.group),
                Column::new("pair".into(), pair),
                Column::new("partition".into(), self.partition),
                Column::new("delivery_count".into(), self.delivery_count),
                Column::new("start_ns".into(), self.start_ns),
                Column::new("end_ns".into(), self.end_ns),
                Column::new("trace_id".into(), self.trace_id),
                Column::new("message_id".into(), self.message_id),
            ],
        )
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

/// Seqs must stay below this: a message's key packs its stream's code above them.
pub const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;
/// The bits of the seq in a key.
pub const SEQ_BITS: u32 = 40;
/// How many codes fit above the seq in a key.
const MAX_CODE: u64 = 1 << (64 - SEQ_BITS);

/// The `msg` column: the stream's code in the high bits, the seq (≤ [`MAX_SEQ`]) in the low.
/// The `pair` column is the same with a (stream, group) code.
pub fn message_key(stream: u32, seq: i64) -> u64 {
    (u64::from(stream) << SEQ_BITS) | (seq as u64 & MAX_SEQ as u64)
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
            stage: stage::DELIVER,
            group,
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
        assert_eq!(b.into_frame().expect("frame").height(), 3);
        assert!(shared.fit_keys().is_ok());
    }
}
