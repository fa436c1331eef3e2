//! Findings as typed rows: the plans' frame is decoded here once, into [`Finding`]s whose
//! evidence is a value built from fields ([`Evidence`]), rendered as text only when a report is
//! written. Nothing after this module reads a column by name.

use mqtrace_vocab::finding::{Basis, Kind, Where};
use polars::prelude::*;
use std::fmt;

use crate::report::Finding;

/// How a group went past a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passed {
    /// It delivered (or settled) a later seq.
    AtSeq(i64),
    /// The message's last span ended this many whole seconds before the window's end.
    ByAge(i64),
}

impl fmt::Display for Passed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Passed::AtSeq(seq) => write!(f, "group passed it at seq {seq}"),
            Passed::ByAge(secs) => {
                write!(
                    f,
                    "its last span ended {secs}s before the end of the window"
                )
            }
        }
    }
}

/// Why a finding was made: the facts its verdict rests on, per kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// `lost/produce`.
    LostProduce {
        /// Send attempts.
        attempts: u64,
        /// Broker answers to them (none `ok`).
        answers: u64,
    },
    /// `duplicate/produce`, with the stored copies' positions.
    StoredAt {
        /// The distinct positions of its `ok` acks and deliveries.
        positions: Vec<String>,
    },
    /// `duplicate/produce` where the broker gives no positions.
    AckedOk {
        /// `ok` acks.
        acks: u64,
    },
    /// `telemetry_gap`.
    TelemetryGap {
        /// Deliveries seen.
        deliveries: u64,
    },
    /// `unobserved`.
    Unobserved {
        /// The seq before the hole.
        before: i64,
        /// The seq after it.
        after: i64,
        /// A hole too wide to list seq by seq: this finding stands for all of it.
        stands_for: Option<i64>,
    },
    /// `lost/store`.
    LostStore {
        /// Acked `ok` at these positions; `None`: not acked, but delivered to another group.
        acked_at: Option<Vec<String>>,
        /// How the group passed it.
        passed: Passed,
    },
    /// `lost/consume`.
    LostConsume {
        /// Deliveries to this group.
        delivered: u64,
        /// The position of the last one, where known.
        at: Option<String>,
        /// Settles, none of them `ack`/`skip_duplicate`.
        settles: u64,
        /// How the group passed it.
        passed: Passed,
    },
    /// `duplicate/consume`.
    DuplicateConsume {
        /// `ack` settles in this group.
        acks: u64,
    },
    /// `redelivered`.
    Redelivered {
        /// Deliveries to this group.
        delivered: u64,
    },
    /// `in_flight`.
    InFlight {
        /// Delivered (not settled yet), or not delivered yet.
        delivered: bool,
    },
    /// A finding on spans without numbering (SPEC §4b).
    Semconv(crate::semconv::SemEvidence),
    /// Any finding that rests on an event not seen, while some exporter's telemetry stopped
    /// without its final report (see [`super::stopped`]).
    TelemetryStopped {
        /// The facts the spans give.
        facts: Box<Evidence>,
        /// For a loss: the stage the spans alone point to (the finding names none).
        spans_say: Option<Where>,
        /// The exporters that stopped (shared by every finding of the report).
        stopped: std::sync::Arc<super::stopped::Stopped>,
    },
}

/// Positions as the evidence lists them.
struct Positions<'a>(&'a [String]);

impl fmt::Display for Positions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("none given")
        } else {
            f.write_str(&self.0.join(", "))
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::LostProduce { attempts, answers } => write!(
                f,
                "{attempts} attempt(s), {answers} broker answer(s), none ok; never delivered"
            ),
            Evidence::StoredAt { positions } => write!(
                f,
                "stored {} times: positions {}",
                positions.len(),
                Positions(positions)
            ),
            Evidence::AckedOk { acks } => {
                write!(f, "acked ok {acks} times (the broker gives no positions)")
            }
            Evidence::TelemetryGap { deliveries } => {
                write!(
                    f,
                    "delivered {deliveries} time(s) but no produce span exists"
                )
            }
            Evidence::Unobserved {
                before,
                after,
                stands_for,
            } => {
                write!(
                    f,
                    "no span carries this seq; the stream has seq {before} and seq {after}"
                )?;
                match stands_for {
                    Some(n) => write!(f, "; this finding stands for all {n} seqs in between"),
                    None => Ok(()),
                }
            }
            Evidence::LostStore { acked_at, passed } => {
                match acked_at {
                    Some(p) => write!(f, "acked ok at position {}", Positions(p))?,
                    None => f.write_str("delivered to another group")?,
                }
                write!(f, "; never delivered to this group; {passed}")
            }
            Evidence::LostConsume {
                delivered,
                at,
                settles,
                passed,
            } => {
                write!(f, "delivered {delivered} time(s)")?;
                if let Some(at) = at {
                    write!(f, " (at {at})")?;
                }
                if *settles > 0 {
                    write!(f, ", settled {settles} time(s) but never with ack")?;
                } else {
                    f.write_str(", never settled")?;
                }
                write!(f, "; {passed}")
            }
            Evidence::DuplicateConsume { acks } => write!(
                f,
                "settled with ack {acks} times in this group: processed more than once"
            ),
            Evidence::Redelivered { delivered } => {
                write!(f, "delivered {delivered} times, processed once")
            }
            Evidence::InFlight { delivered: true } => {
                f.write_str("delivered, not settled yet; the group has not passed it")
            }
            Evidence::InFlight { delivered: false } => {
                f.write_str("not delivered yet; the group has not passed it")
            }
            Evidence::Semconv(e) => e.fmt(f),
            Evidence::TelemetryStopped {
                facts,
                spans_say,
                stopped,
            } => super::stopped::fmt_stopped(f, facts, *spans_say, stopped),
        }
    }
}

/// The names behind the frame's dictionary codes.
pub struct Names<'a> {
    /// (producer id, stream) by code.
    pub streams: &'a [(String, String)],
    /// Groups by code.
    pub groups: &'a [String],
    /// Partitions by code.
    pub partitions: &'a [String],
}

/// Typed access to one frame column, by row.
struct Cols<'a> {
    df: &'a DataFrame,
}

impl<'a> Cols<'a> {
    fn u8(&self, name: &str) -> PolarsResult<&'a UInt8Chunked> {
        self.df.column(name)?.u8()
    }
    fn u32(&self, name: &str) -> PolarsResult<&'a UInt32Chunked> {
        self.df.column(name)?.u32()
    }
    fn i64(&self, name: &str) -> PolarsResult<&'a Int64Chunked> {
        self.df.column(name)?.i64()
    }
    fn bool(&self, name: &str) -> PolarsResult<&'a BooleanChunked> {
        self.df.column(name)?.bool()
    }
    fn str(&self, name: &str) -> PolarsResult<&'a StringChunked> {
        self.df.column(name)?.str()
    }
    fn list(&self, name: &str) -> PolarsResult<&'a ListChunked> {
        self.df.column(name)?.list()
    }
}

fn strings(list: &ListChunked, i: usize) -> Vec<String> {
    list.get_as_series(i)
        .and_then(|s| {
            s.str()
                .ok()
                .map(|s| s.iter().flatten().map(str::to_owned).collect())
        })
        .unwrap_or_default()
}

/// Decodes the findings frame (see [`super::find`]) into findings; `window_end_ns` dates the
/// "passed by age" evidence.
pub fn decode(df: &DataFrame, names: &Names<'_>, window_end_ns: i64) -> PolarsResult<Vec<Finding>> {
    let c = Cols { df };
    let (kind, stage) = (c.u8("kind")?, c.u8("stage")?);
    let (stream, seq, group) = (c.u32("stream")?, c.i64("seq")?, c.u32("group")?);
    let partition = c.u32("partition")?;
    let message_id = c.str("message_id")?;
    let trace_ids = c.list("trace_ids")?;
    let positions = c.list("positions")?;
    let n = |name: &str| c.i64(name);
    let (attempts, answers, ok_acks) = (n("attempts")?, n("answers")?, n("ok_acks")?);
    let (deliveries, delivered, settles, acks) =
        (n("deliveries")?, n("delivered")?, n("settles")?, n("acks")?);
    let (prev_seq, next_seq, stands_for) = (n("prev_seq")?, n("next_seq")?, n("stands_for")?);
    let (passed_seq, last_end) = (n("passed_seq")?, n("last_end")?);
    let two_positions = c.bool("two_positions")?;
    let ledger = c.bool("ledger")?;
    let delivered_at = c.str("delivered_at")?;
    let count =
        |col: &Int64Chunked, i: usize| col.get(i).and_then(|v| u64::try_from(v).ok()).unwrap_or(0);

    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let kind = kind
            .get(i)
            .and_then(|k| Kind::ALL.get(usize::from(k)).copied())
            .ok_or_else(|| polars_err!(ComputeError: "a finding without a kind"))?;
        let stage = stage
            .get(i)
            .and_then(|s| Where::ALL.get(usize::from(s)).copied());
        let (producer_id, stream_name) = stream
            .get(i)
            .and_then(|s| names.streams.get(s as usize))
            .cloned()
            .unwrap_or_default();
        let seq = seq.get(i).unwrap_or(0);
        let passed = || match passed_seq.get(i) {
            Some(at) => Passed::AtSeq(at),
            None => Passed::ByAge(
                window_end_ns.saturating_sub(last_end.get(i).unwrap_or(0)) / 1_000_000_000,
            ),
        };
        let evidence = match (kind, stage) {
            (Kind::Lost, Some(Where::Produce)) => Evidence::LostProduce {
                attempts: count(attempts, i),
                answers: count(answers, i),
            },
            (Kind::Duplicate, Some(Where::Produce)) => {
                if two_positions.get(i).unwrap_or(false) {
                    Evidence::StoredAt {
                        positions: strings(positions, i),
                    }
                } else {
                    Evidence::AckedOk {
                        acks: count(ok_acks, i),
                    }
                }
            }
            (Kind::TelemetryGap, _) => Evidence::TelemetryGap {
                deliveries: count(deliveries, i),
            },
            (Kind::Unobserved, _) => Evidence::Unobserved {
                before: prev_seq.get(i).unwrap_or(0),
                after: next_seq.get(i).unwrap_or(0),
                stands_for: stands_for.get(i),
            },
            (Kind::Lost, Some(Where::Store)) => Evidence::LostStore {
                acked_at: (count(ok_acks, i) > 0).then(|| strings(positions, i)),
                passed: passed(),
            },
            (Kind::Lost, _) => Evidence::LostConsume {
                delivered: count(delivered, i),
                at: delivered_at.get(i).map(str::to_owned),
                settles: count(settles, i),
                passed: passed(),
            },
            (Kind::Duplicate, _) => Evidence::DuplicateConsume {
                acks: count(acks, i),
            },
            (Kind::Redelivered, _) => Evidence::Redelivered {
                delivered: count(delivered, i),
            },
            (Kind::InFlight, _) => Evidence::InFlight {
                delivered: count(delivered, i) > 0,
            },
        };
        let ids = trace_ids
            .get_as_series(i)
            .and_then(|s| {
                s.i128().ok().map(|s| {
                    s.iter()
                        .flatten()
                        .map(mqtrace_reader::columns::trace_hex)
                        .collect()
                })
            })
            .unwrap_or_default();
        out.push(Finding {
            kind,
            stage,
            message_id: message_id
                .get(i)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{producer_id}:{stream_name}:{seq}")),
            producer_id,
            stream: stream_name,
            seq: Some(seq),
            consumer_group: group
                .get(i)
                .and_then(|g| names.groups.get(g as usize))
                .cloned(),
            partition: partition
                .get(i)
                .and_then(|p| names.partitions.get(p as usize))
                .cloned(),
            trace_ids: ids,
            evidence,
            ledger: ledger.get(i).unwrap_or(false),
            basis: Basis::Mqtrace,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The evidence texts the report has always written, now built from fields.
    #[test]
    fn evidence_reads_as_before() {
        let cases = [
            (
                Evidence::LostProduce {
                    attempts: 2,
                    answers: 1,
                },
                "2 attempt(s), 1 broker answer(s), none ok; never delivered",
            ),
            (
                Evidence::StoredAt {
                    positions: vec!["0/7".into(), "0/9".into()],
                },
                "stored 2 times: positions 0/7, 0/9",
            ),
            (
                Evidence::AckedOk { acks: 3 },
                "acked ok 3 times (the broker gives no positions)",
            ),
            (
                Evidence::Unobserved {
                    before: 4,
                    after: 2_000_010,
                    stands_for: Some(2_000_005),
                },
                "no span carries this seq; the stream has seq 4 and seq 2000010; this finding \
                 stands for all 2000005 seqs in between",
            ),
            (
                Evidence::LostStore {
                    acked_at: Some(Vec::new()),
                    passed: Passed::ByAge(31),
                },
                "acked ok at position none given; never delivered to this group; its last span \
                 ended 31s before the end of the window",
            ),
            (
                Evidence::LostStore {
                    acked_at: None,
                    passed: Passed::AtSeq(9),
                },
                "delivered to another group; never delivered to this group; group passed it at \
                 seq 9",
            ),
            (
                Evidence::LostConsume {
                    delivered: 2,
                    at: None,
                    settles: 1,
                    passed: Passed::AtSeq(12),
                },
                "delivered 2 time(s), settled 1 time(s) but never with ack; group passed it at \
                 seq 12",
            ),
            (
                Evidence::InFlight { delivered: false },
                "not delivered yet; the group has not passed it",
            ),
        ];
        for (evidence, text) in cases {
            assert_eq!(evidence.to_string(), text);
        }
    }
}
