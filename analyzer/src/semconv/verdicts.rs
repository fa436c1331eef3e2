//! SPEC §4b's findings for messages built from spans without numbering: a loss is given a
//! stage only where a span proves it (a send that ended ERROR, deliveries that were all
//! refused); a send that ended OK and never reached a group is `lost` without a stage, since
//! without a broker confirm a store loss and an unnoticed produce loss look the same.

use mqtrace_reader::semconv::SemSpan;
use mqtrace_vocab::finding::{Basis, Kind, Where};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::messages::{Handled, Message};
use crate::report::Finding;

/// The facts a semconv finding rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SemEvidence {
    /// `lost` without a stage.
    NeverDelivered {
        /// Its sends (some ended OK, or it reached another group).
        sends: u64,
        /// Groups it reached (none of them this one).
        delivered_elsewhere: u64,
        /// Whole seconds from its last send's end to the end of the window.
        ended_ago_s: i64,
        /// The finding names no group: no group delivered anything of this destination.
        no_group: bool,
    },
    /// `lost/produce`.
    SendsFailed {
        /// Sends, every one ERROR.
        sends: u64,
    },
    /// `lost/consume`.
    NeverProcessed {
        /// Deliveries to this group, every one refused.
        delivered: u64,
    },
    /// `duplicate/consume`.
    ProcessedTwice {
        /// Deliveries processed in this group.
        processed: u64,
        /// Deliveries to this group.
        delivered: u64,
    },
    /// `redelivered`.
    Redelivered {
        /// Deliveries to this group.
        delivered: u64,
    },
}

impl fmt::Display for SemEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SemEvidence::NeverDelivered {
                sends,
                delivered_elsewhere,
                ended_ago_s,
                no_group,
            } => {
                write!(
                    f,
                    "sent ({sends} send(s), the last ended {ended_ago_s}s before the end of the window); "
                )?;
                if *no_group {
                    f.write_str("no consumer span of any group delivered it, nor anything else sent to this destination")?;
                } else {
                    f.write_str(
                        "never delivered to this group, which delivered other messages sent to this destination",
                    )?;
                    if *delivered_elsewhere > 0 {
                        write!(f, " (delivered to {delivered_elsewhere} other group(s))")?;
                    }
                }
                f.write_str(
                    "; stage unknown: without a broker confirm a store loss and an unnoticed produce loss look the same",
                )
            }
            SemEvidence::SendsFailed { sends } => write!(
                f,
                "{sends} send span(s), every one ended ERROR; never delivered"
            ),
            SemEvidence::NeverProcessed { delivered } => write!(
                f,
                "delivered {delivered} time(s) to this group, never processed: every delivery ended ERROR, nack or reject"
            ),
            SemEvidence::ProcessedTwice {
                processed,
                delivered,
            } => write!(
                f,
                "processed {processed} times in this group ({delivered} deliveries ended without error)"
            ),
            SemEvidence::Redelivered { delivered } => {
                write!(
                    f,
                    "delivered {delivered} times to this group, processed once"
                )
            }
        }
    }
}

/// When a message counts as passed: its last span ended more than the grace before the end
/// of the window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Age {
    pub(crate) window_end_ns: i64,
    pub(crate) grace_ns: i64,
}

impl Age {
    fn old(&self, end_ns: i64) -> bool {
        end_ns.saturating_add(self.grace_ns) < self.window_end_ns
    }
}

/// A message's stream: (producer id, stream) — its producer's `service.name` and the
/// destination as the producer names it; a message whose send was not read is named by its
/// first delivery's destination, with no producer id.
pub(crate) fn stream_of<'a>(m: &Message, spans: &'a [SemSpan]) -> (&'a str, &'a str) {
    match m.sends.first() {
        Some(&root) => {
            let s = &spans[root];
            let destination = s
                .destination
                .as_deref()
                .or_else(|| {
                    m.send_spans
                        .iter()
                        .find_map(|&i| spans[i].destination.as_deref())
                })
                .or(s.routing_key.as_deref())
                .unwrap_or_default();
            (s.service.as_deref().unwrap_or_default(), destination)
        }
        None => (
            "",
            m.deliveries
                .first()
                .and_then(|d| spans[d.span].destination.as_deref())
                .unwrap_or_default(),
        ),
    }
}

/// A stream and, where its sends record one, a routing key: what a group is expected on.
type Route<'a> = ((&'a str, &'a str), Option<&'a str>);

/// Every finding of `messages`, each of whose stream is in `streams` ([`stream_of`]).
pub(crate) fn findings(
    messages: &[Message],
    streams: &[(&str, &str)],
    spans: &[SemSpan],
    age: Age,
) -> Vec<Finding> {
    // Where a send names its RabbitMQ routing key, the key routes it: an exchange's keys are
    // bound to different queues, so groups are expected per (stream, key).
    let routes: Vec<Option<&str>> = messages
        .iter()
        .map(|m| {
            m.send_spans
                .iter()
                .find_map(|&i| spans[i].routing_key.as_deref())
        })
        .collect();
    // The expected groups of a stream: every group that delivered any of its messages.
    let mut expected: BTreeMap<Route<'_>, BTreeSet<&str>> = BTreeMap::new();
    for ((m, stream), route) in messages.iter().zip(streams).zip(&routes) {
        if m.sends.is_empty() || m.deliveries.is_empty() {
            continue;
        }
        let groups = expected.entry((*stream, *route)).or_default();
        groups.extend(m.deliveries.iter().map(|d| d.group.as_ref()));
    }
    let mut out = Vec::new();
    for ((m, stream), route) in messages.iter().zip(streams).zip(&routes) {
        let finding = |kind, stage, group: Option<&str>, evidence| Finding {
            kind,
            stage,
            producer_id: stream.0.to_owned(),
            stream: stream.1.to_owned(),
            seq: None,
            consumer_group: group.map(str::to_owned),
            message_id: m.name.clone(),
            partition: partition(m, spans),
            trace_ids: trace_ids(m, spans),
            evidence: crate::Evidence::Semconv(evidence),
            ledger: false,
            basis: Basis::Semconv,
        };
        let mut by_group: BTreeMap<&str, Vec<&super::messages::Delivery>> = BTreeMap::new();
        for d in &m.deliveries {
            by_group.entry(d.group.as_ref()).or_default().push(d);
        }
        let sends = m.sends.len() as u64;
        if sends > 0 && m.failed_sends == m.sends.len() && m.deliveries.is_empty() {
            out.push(finding(
                Kind::Lost,
                Some(Where::Produce),
                None,
                SemEvidence::SendsFailed { sends },
            ));
            continue;
        }
        let last_send_end = m
            .send_spans
            .iter()
            .map(|&i| spans[i].end_ns)
            .max()
            .unwrap_or(0);
        if sends > 0 {
            let none = BTreeSet::new();
            let groups = expected.get(&(*stream, *route)).unwrap_or(&none);
            let never = |no_group| SemEvidence::NeverDelivered {
                sends,
                delivered_elsewhere: by_group.len() as u64,
                ended_ago_s: age.window_end_ns.saturating_sub(last_send_end) / 1_000_000_000,
                no_group,
            };
            if age.old(last_send_end) {
                if groups.is_empty() {
                    out.push(finding(Kind::Lost, None, None, never(true)));
                }
                for g in groups.iter().filter(|g| !by_group.contains_key(*g)) {
                    out.push(finding(Kind::Lost, None, Some(*g), never(false)));
                }
            }
        }
        for (group, all) in &by_group {
            // `receive` spans count only where the group has no `process` span for it.
            let processes = all.iter().any(|d| d.process);
            let counted: Vec<_> = all.iter().filter(|d| d.process == processes).collect();
            let delivered = counted.len() as u64;
            let processed = counted
                .iter()
                .filter(|d| d.handled == Handled::Processed)
                .count() as u64;
            let refused = counted
                .iter()
                .filter(|d| d.handled == Handled::Refused)
                .count() as u64;
            let last = counted.iter().map(|d| d.end_ns).max().unwrap_or(0);
            if processed >= 2 {
                out.push(finding(
                    Kind::Duplicate,
                    Some(Where::Consume),
                    Some(group),
                    SemEvidence::ProcessedTwice {
                        processed,
                        delivered,
                    },
                ));
            } else if processed == 0 && refused == delivered && age.old(last) {
                out.push(finding(
                    Kind::Lost,
                    Some(Where::Consume),
                    Some(group),
                    SemEvidence::NeverProcessed { delivered },
                ));
            } else if processed == 1 && delivered >= 2 {
                out.push(finding(
                    Kind::Redelivered,
                    None,
                    Some(group),
                    SemEvidence::Redelivered { delivered },
                ));
            }
        }
    }
    out
}

/// The partition its spans name, if any.
fn partition(m: &Message, spans: &[SemSpan]) -> Option<String> {
    m.send_spans
        .iter()
        .copied()
        .chain(m.deliveries.iter().map(|d| d.span))
        .find_map(|i| spans[i].partition.as_deref().map(str::to_owned))
}

/// The distinct traces of its spans, as hex.
fn trace_ids(m: &Message, spans: &[SemSpan]) -> Vec<String> {
    let ids: BTreeSet<u128> = m
        .send_spans
        .iter()
        .copied()
        .chain(m.deliveries.iter().map(|d| d.span))
        .filter_map(|i| spans[i].trace())
        .collect();
    ids.into_iter().map(|t| format!("{t:032x}")).collect()
}
