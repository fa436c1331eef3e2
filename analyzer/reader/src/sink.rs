//! The one place every reader's spans go: the JSON scanner, the serde reader and the
//! protobuf reader hand each record's spans to a [`SpanSink`], which classifies them
//! ([`crate::extract`]), checks their times and trace ids, and stages their rows, counts,
//! window and telemetry reports. Nothing of a record is kept unless the whole record was
//! read: [`SpanSink::commit`] makes it count, [`SpanSink::abandon`] takes all of it back
//! (rows, dictionary entries, counts, window, reports).

use mqtrace_vocab::{TELEMETRY_SPAN_NAME, limits::MALFORMED_LISTED_PER_FILE};

use crate::attrs::{Key, Scalar, TraceId, clip};
use crate::columns::{Mark, SpanColumns};
use crate::extract::{Span, classify};
use crate::ledgers::{LedgerFields, LedgerIn};
use crate::malformed::{Location, Malformed};
use crate::semconv::{Context, Interner, SemSpan};
use crate::stats::{InputStats, Reporter, TelemetryHealth, WindowEdge};

/// A time field as its encoding carries it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Nanos<'a> {
    /// Not given.
    Absent,
    /// OTLP JSON: a string of digits (or a number).
    Json(&'a Scalar<'a>),
    /// OTLP protobuf: a fixed64.
    Proto(u64),
}

impl Nanos<'_> {
    /// ns since the epoch (0 when absent); the same rule for both encodings: it must fit
    /// in a signed 64-bit count, as the analysis holds it.
    fn get(self, field: &str) -> Result<i64, String> {
        let n = match self {
            Nanos::Absent => return Ok(0),
            Nanos::Proto(n) => n,
            Nanos::Json(Scalar::Str(s) | Scalar::IntText(s)) => s.parse::<u64>().map_err(|_| {
                format!(
                    "{field} must be ns since the epoch (a string of digits), got {:?}",
                    clip(s)
                )
            })?,
            Nanos::Json(Scalar::Int(n)) => u64::try_from(*n)
                .map_err(|_| format!("{field} must be ns since the epoch, got {n}"))?,
            Nanos::Json(other) => {
                return Err(format!(
                    "{field} must be ns since the epoch (a string of digits), got {}",
                    other.describe()
                ));
            }
        };
        i64::try_from(n).map_err(|_| {
            format!("{field} must be ns since the epoch before the year 2262, got {n}")
        })
    }
}

/// One span as a reader hands it over; its attributes come beside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanIn<'a> {
    pub(crate) trace_id: TraceId<'a>,
    pub(crate) name: &'a str,
    pub(crate) start: Nanos<'a>,
    pub(crate) end: Nanos<'a>,
    /// Its ids, kind, status and links: kept for messaging spans without numbering.
    pub(crate) context: Context<'a>,
}

/// What one record has added so far, until it is committed or abandoned.
#[derive(Debug, Default)]
struct Staged {
    spans: u64,
    messaging: u64,
    problems: Vec<Malformed>,
    problems_unlisted: u64,
    start: Option<i64>,
    /// The latest messaging end in this record, with the span's name and trace id (buffers
    /// reused from record to record).
    end: Option<i64>,
    end_name: String,
    end_trace: String,
    telemetry: TelemetryHealth,
}

impl Staged {
    fn clear(&mut self) {
        self.spans = 0;
        self.messaging = 0;
        self.problems.clear();
        self.problems_unlisted = 0;
        self.start = None;
        self.end = None;
        self.telemetry = TelemetryHealth::default();
    }
}

/// Collects the spans of one piece of input, record by record. See the [module docs](self).
#[derive(Debug, Default)]
pub struct SpanSink {
    pub(crate) columns: SpanColumns,
    pub(crate) stats: InputStats,
    /// Ledger spans, as ranges.
    ledgers: Vec<LedgerIn>,
    /// Messaging spans without numbering (SPEC §4b).
    semconv: Vec<SemSpan>,
    /// Their names, each kept once.
    names: Interner,
    /// (trace id, span id) of numbered `produce` spans and of their parents: a third-party
    /// span wrapping one is the same send, and a delivery traced as its child belongs to a
    /// numbered message.
    numbered_sends: Vec<(u128, u64)>,
    staged: Staged,
    mark: Mark,
    ledger_mark: usize,
    semconv_mark: usize,
    numbered_mark: usize,
    /// Where the current resource's spans begin in `semconv` (its `service.name` may come
    /// after its spans in JSON).
    resource_from: usize,
    at: Location,
}

impl SpanSink {
    /// Starts a record read at `at`.
    pub(crate) fn begin(&mut self, at: Location) {
        self.mark = self.columns.mark();
        self.ledger_mark = self.ledgers.len();
        self.semconv_mark = self.semconv.len();
        self.numbered_mark = self.numbered_sends.len();
        self.resource_from = self.semconv.len();
        self.staged.clear();
        self.at = at;
    }

    /// A resource's spans begin.
    pub(crate) fn begin_resource(&mut self) {
        self.resource_from = self.semconv.len();
    }

    /// The resource whose spans were handed over since [`Self::begin_resource`] is named
    /// `service` (its `service.name`).
    pub(crate) fn end_resource(&mut self, service: Option<&str>) {
        if let Some(service) = service {
            if self.resource_from < self.semconv.len() {
                let service = self.names.name(service);
                for span in &mut self.semconv[self.resource_from..] {
                    span.service = Some(std::sync::Arc::clone(&service));
                }
            }
        }
        self.resource_from = self.semconv.len();
    }

    /// Takes one span of the current record. A span that cannot be used is a problem of the
    /// record, which still counts; the span's row is not kept and it moves no window.
    pub(crate) fn span(&mut self, span: SpanIn<'_>, values: &[(Key, Scalar<'_>)]) {
        self.staged.spans += 1;
        let classified = classify(values);
        if !matches!(classified, Ok(Span::Other)) {
            self.staged.messaging += 1;
        }
        let result = match classified {
            Ok(Span::Other) => {
                if span.name == TELEMETRY_SPAN_NAME {
                    self.telemetry(span, values);
                }
                Ok(())
            }
            Ok(Span::Unkeyed) => times(span).map(|(start, end)| {
                self.semconv.push(SemSpan::new(
                    &mut self.names,
                    span.trace_id.bits().ok(),
                    span.context,
                    values,
                    end,
                ));
                self.observe(span, start, end)
            }),
            Ok(Span::Keyed(mut row)) => times(span).and_then(|(start, end)| {
                row.trace_id = span.trace_id.bits()?;
                if row.stage == mqtrace_vocab::Stage::Produce {
                    // The produce span, and its parent: a third-party client span wrapping
                    // mqtrace's send is the same send, not a second one.
                    for id in [span.context.span_id, span.context.parent]
                        .into_iter()
                        .flatten()
                    {
                        self.numbered_sends.push((row.trace_id, id));
                    }
                }
                row.start_ns = start;
                row.end_ns = end;
                self.columns.push(row);
                self.observe(span, start, end);
                Ok(())
            }),
            Ok(Span::Ledger(row, seqs)) => times(span).and_then(|(start, end)| {
                let trace_id = span.trace_id.bits()?;
                // Kept as ranges; which seqs become rows is decided once the whole input
                // is read (crate::ledgers).
                self.ledgers.push(LedgerIn {
                    producer_id: row.producer_id.to_owned(),
                    stream: row.stream.to_owned(),
                    fields: LedgerFields {
                        of: row.stage,
                        attempt: row.attempt,
                        outcome: row.outcome,
                        delivery_count: row.delivery_count,
                        seqs,
                        start_ns: start,
                        end_ns: end,
                        trace_id,
                    },
                    group: row.group.map(|g| g.into_owned()),
                    partition: row.partition.map(|p| p.into_owned()),
                });
                self.observe(span, start, end);
                Ok(())
            }),
            Err(reason) => Err(reason),
        };
        if let Err(reason) = result {
            if self.staged.problems.len() < MALFORMED_LISTED_PER_FILE {
                self.staged
                    .problems
                    .push(Malformed::new(self.at.clone(), reason));
            } else {
                self.staged.problems_unlisted += 1;
            }
        }
    }

    /// The current record was read whole: everything it added counts.
    pub(crate) fn commit(&mut self) {
        let staged = &mut self.staged;
        let stats = &mut self.stats;
        stats.records += 1;
        stats.spans += staged.spans;
        stats.messaging_spans += staged.messaging;
        for m in staged.problems.drain(..) {
            stats.malformed(m);
        }
        stats.malformed_total += staged.problems_unlisted;
        if let Some(s) = staged.start {
            stats.window_start = Some(stats.window_start.map_or(s, |w| w.min(s)));
        }
        if let Some(end) = staged.end {
            match &mut stats.window_end {
                Some(edge) if edge.end_unix_nano >= end => {}
                Some(edge) => {
                    edge.end_unix_nano = end;
                    std::mem::swap(&mut edge.name, &mut staged.end_name);
                    std::mem::swap(&mut edge.trace_id, &mut staged.end_trace);
                    edge.at.clone_from(&self.at);
                }
                None => {
                    stats.window_end = Some(WindowEdge {
                        end_unix_nano: end,
                        name: staged.end_name.clone(),
                        trace_id: staged.end_trace.clone(),
                        at: self.at.clone(),
                    });
                }
            }
        }
        stats.telemetry.merge(std::mem::take(&mut staged.telemetry));
        staged.clear();
        self.mark = self.columns.mark();
        self.ledger_mark = self.ledgers.len();
        self.semconv_mark = self.semconv.len();
        self.numbered_mark = self.numbered_sends.len();
    }

    /// The current record could not be read whole: nothing it added counts.
    pub(crate) fn abandon(&mut self) {
        self.columns.rollback(self.mark);
        self.ledgers.truncate(self.ledger_mark);
        self.semconv.truncate(self.semconv_mark);
        self.numbered_sends.truncate(self.numbered_mark);
        self.resource_from = self.semconv.len();
        self.staged.clear();
    }

    /// A record (or the rest of a file) that could not be read at all.
    pub(crate) fn reject(&mut self, at: Location, reason: impl Into<String>) {
        self.stats.malformed(Malformed::new(at, reason));
    }

    /// A problem with the rest of a file (damage, broken framing): listed however many
    /// records were listed before it.
    pub(crate) fn reject_rest(&mut self, at: Location, reason: impl Into<String>) {
        let mut m = Malformed::new(at, reason);
        m.ends_file = true;
        self.stats.malformed(m);
    }

    /// The ledger spans collected (taken out of the sink).
    pub(crate) fn take_ledgers(&mut self) -> Vec<LedgerIn> {
        std::mem::take(&mut self.ledgers)
    }

    /// The messaging spans without numbering collected, and the ids of the numbered
    /// `produce` spans (taken out of the sink).
    pub(crate) fn take_semconv(&mut self) -> (Vec<SemSpan>, Vec<(u128, u64)>) {
        self.resource_from = 0;
        (
            std::mem::take(&mut self.semconv),
            std::mem::take(&mut self.numbered_sends),
        )
    }

    /// The spans and counts collected.
    pub fn into_parts(self) -> (SpanColumns, InputStats) {
        (self.columns, self.stats)
    }

    /// Everything the sink holds as text, for comparing two sinks (dictionary entries by
    /// value, not by their hash maps' order).
    pub fn comparable(mut self) -> String {
        let ledgers = self.take_ledgers();
        let semconv = self.take_semconv();
        let names = (
            self.columns.streams.values().to_vec(),
            self.columns.groups.values().to_vec(),
            self.columns.partitions.values().to_vec(),
        );
        let (columns, stats) = self.into_parts();
        format!(
            "{names:?} {:?} {stats:?} {ledgers:?} {semconv:?}",
            columns.into_parts()
        )
    }

    fn observe(&mut self, span: SpanIn<'_>, start: i64, end: i64) {
        let staged = &mut self.staged;
        if start > 0 {
            staged.start = Some(staged.start.map_or(start, |w| w.min(start)));
        }
        if end > 0 && staged.end.is_none_or(|e| end > e) {
            staged.end = Some(end);
            staged.end_name.clear();
            staged.end_name.push_str(span.name);
            staged.end_trace.clear();
            match span.trace_id {
                TraceId::Hex(t) => staged.end_trace.push_str(t),
                TraceId::Bytes(b) => {
                    for byte in b {
                        use std::fmt::Write as _;
                        let _ = write!(staged.end_trace, "{byte:02x}");
                    }
                }
            }
        }
    }

    fn telemetry(&mut self, span: SpanIn<'_>, values: &[(Key, Scalar<'_>)]) {
        let mut dropped = None;
        let mut is_final = false;
        let mut reporter = Reporter::Anonymous;
        for (k, v) in values {
            match (*k, v) {
                (Key::TelemetryDropped, Scalar::Int(n)) => dropped = u64::try_from(*n).ok(),
                (Key::TelemetryDropped, Scalar::IntText(t)) => dropped = t.parse().ok(),
                (Key::TelemetryFinal, Scalar::Bool(b)) => is_final = *b,
                (Key::TelemetryInstance, Scalar::Str(id)) => {
                    reporter = Reporter::Instance(id.as_ref())
                }
                (Key::TelemetryInstance, _) => reporter = Reporter::Untrackable,
                _ => {}
            }
        }
        if let Some(dropped) = dropped {
            // The report's end is its export time; an unreadable one only dates it less
            // (the report still says the instance was alive).
            let end = span.end.get("endTimeUnixNano").unwrap_or(0);
            self.staged
                .telemetry
                .merge(TelemetryHealth::report(dropped, is_final, reporter, end));
        }
    }
}

fn times(span: SpanIn<'_>) -> Result<(i64, i64), String> {
    Ok((
        span.start.get("startTimeUnixNano")?,
        span.end.get("endTimeUnixNano")?,
    ))
}
