//! Which spans are one message (SPEC §4b): sends nested in one another are one send; a
//! message is its message id where the spans carry one, else its Kafka (destination,
//! partition, offset), else the send span a delivery is a child of or links to; each
//! delivery is then settled as processed or not by its status and its settle spans.

use mqtrace_reader::semconv::{Name, SemSpan};
use mqtrace_vocab::semconv::{Operation, settle_refuses};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a messaging span could not be analysed (`summary.unanalysed`'s keys). A messaging
/// span that is neither a send, a delivery nor a settle (a queue declare, an SQS
/// `DeleteMessage`) carries no message and is not counted.
pub(crate) mod reason {
    /// A send without a message id, a Kafka offset or a span id: no delivery can be tied to it.
    pub const SEND_WITHOUT_IDENTITY: &str = "send_without_identity";
    /// A delivery without a message id or Kafka offset whose parent and links are no send
    /// that was read.
    pub const DELIVERY_WITHOUT_IDENTITY: &str = "delivery_without_identity";
    /// A settle span whose delivery was not read.
    pub const SETTLE_WITHOUT_DELIVERY: &str = "settle_without_delivery";
    /// Links of a delivery that were not read (beyond the readers' bound per span, or not
    /// ids): each may be a message it delivered.
    pub const DELIVERY_LINKS_NOT_READ: &str = "delivery_links_not_read";
}

/// Nested send spans followed up to this depth (a cycle of parent ids cannot loop).
const MAX_NESTING: usize = 64;

/// What happened to one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Processed: the span ended without error and no settle refused it.
    Processed,
    /// Not processed: the span ended ERROR, or a settle said nack, reject or error (an
    /// `exception` event alone does not say so: a handler may record one and recover).
    Refused,
    /// Settled as a copy already processed (mqtrace's `skip_duplicate`).
    Skipped,
}

/// One delivery of a message to a group.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub(crate) group: Name,
    /// A `process` delivery (else a `receive`, which counts only where a group has no
    /// `process` span for the message).
    pub(crate) process: bool,
    pub(crate) handled: Handled,
    pub(crate) end_ns: i64,
    /// The span's index.
    pub(crate) span: usize,
}

/// A message and its spans.
#[derive(Clone, Debug, Default)]
pub(crate) struct Message {
    /// Root send spans (one per send, nested spans folded in), by index.
    pub(crate) sends: Vec<usize>,
    /// Every send span of it, nested ones included.
    pub(crate) send_spans: Vec<usize>,
    /// Sends (roots) any of whose spans ended ERROR.
    pub(crate) failed_sends: usize,
    pub(crate) deliveries: Vec<Delivery>,
    /// How it is named in findings.
    pub(crate) name: String,
    /// A message numbered by mqtrace, delivered to a third-party consumer: the numbered path
    /// judges its sending and storing; only these deliveries' groups are judged here.
    pub(crate) numbered: bool,
}

/// The messages of a set of spans, and the spans that could not be analysed.
#[derive(Debug, Default)]
pub(crate) struct Messages {
    pub(crate) list: Vec<Message>,
    pub(crate) unanalysed: BTreeMap<&'static str, u64>,
}

/// (destination, partition, offset): a Kafka message's place.
type Offset<'a> = (&'a str, &'a str, i64);

fn offset_of(span: &SemSpan) -> Option<Offset<'_>> {
    Some((
        span.destination.as_deref()?,
        span.partition.as_deref()?,
        span.offset?,
    ))
}

/// What is known of the numbered messages: a third-party span of one is judged on
/// mqtrace's basis, not twice.
#[derive(Debug, Default)]
pub(crate) struct Numbered {
    /// (trace id, span id) of numbered `produce` spans and their parents.
    pub(crate) sends: HashSet<(u128, u64)>,
    /// Message ids of numbered messages (those the semconv spans name).
    pub(crate) ids: HashSet<String>,
}

/// A message named by its send span, where it has no id: `{trace id}-{span id}` in hex.
fn span_name((trace, span): (u128, u64)) -> String {
    format!("{trace:032x}-{span:016x}")
}

/// Builds the messages of `spans`.
pub(crate) fn messages(spans: &[SemSpan], numbered: &Numbered) -> Messages {
    let mut out = Messages::default();
    // One span exported twice (an exporter's retry, a file read twice under two names) is
    // one span: the first copy counts.
    let mut at: HashMap<(u128, u64), usize> = HashMap::default();
    let mut copy = vec![false; spans.len()];
    for (i, s) in spans.iter().enumerate() {
        if let Some(k) = s.key() {
            copy[i] = *at.entry(k).or_insert(i) != i;
        }
    }
    let ops: Vec<Option<Operation>> = spans
        .iter()
        .zip(&copy)
        .map(|(s, &copy)| {
            if copy {
                None
            } else {
                Operation::of(i64::from(s.kind), s.operation.as_deref())
            }
        })
        .collect();
    let parent_of = |i: usize| -> Option<usize> { at.get(&spans[i].parent_key()?).copied() };
    let is_send = |i: usize| ops[i] == Some(Operation::Send);
    let is_delivery = |i: usize| matches!(ops[i], Some(Operation::Process | Operation::Receive));
    let key_of = |i: usize| spans[i].key();
    // Two spans name different messages when both carry ids and the ids differ.
    let differ = |a: usize, b: usize| match (&spans[a].message_id, &spans[b].message_id) {
        (Some(x), Some(y)) => x != y,
        _ => false,
    };
    let group_of = |i: usize| spans[i].group.as_ref().or(spans[i].service.as_ref());

    // Sends: each nest of send spans for one message is one send, named by its outermost
    // span (an envelope whose nested sends carry other ids is not folded). Sorted by
    // (root, span), each nest is one run, the root first.
    let mut sends: Vec<(usize, usize)> = (0..spans.len())
        .filter(|&i| is_send(i))
        .map(|i| {
            let mut root = i;
            for _ in 0..MAX_NESTING {
                match parent_of(root) {
                    Some(p) if is_send(p) && p != i && !differ(p, i) => root = p,
                    _ => break,
                }
            }
            (root, i)
        })
        .collect();
    sends.sort_unstable();

    let mut by_id: HashMap<&str, usize> = HashMap::default();
    let mut by_offset: HashMap<Offset<'_>, usize> = HashMap::default();
    let mut by_span: HashMap<(u128, u64), usize> = HashMap::default();
    for run in sends.chunk_by(|a, b| a.0 == b.0) {
        let root = run[0].0;
        let nest = || run.iter().map(|&(_, i)| i);
        let id = spans[root]
            .message_id
            .as_deref()
            .or_else(|| nest().find_map(|i| spans[i].message_id.as_deref()));
        let offset = offset_of(&spans[root]).or_else(|| nest().find_map(|i| offset_of(&spans[i])));
        let mine = nest().any(|i| key_of(i).is_some_and(|k| numbered.sends.contains(&k)))
            || id.is_some_and(|id| numbered.ids.contains(id));
        if mine {
            continue;
        }
        let existing = id
            .and_then(|id| by_id.get(id))
            .or_else(|| offset.and_then(|o| by_offset.get(&o)))
            .copied();
        let m = match existing {
            Some(m) => m,
            None => {
                let Some(name) = id
                    .map(str::to_owned)
                    .or_else(|| offset.map(|(d, p, o)| format!("{d}/{p}/{o}")))
                    .or_else(|| key_of(root).map(span_name))
                else {
                    *out.unanalysed
                        .entry(reason::SEND_WITHOUT_IDENTITY)
                        .or_default() += run.len() as u64;
                    continue;
                };
                out.list.push(Message {
                    name,
                    ..Message::default()
                });
                out.list.len() - 1
            }
        };
        if let Some(id) = id {
            by_id.entry(id).or_insert(m);
        }
        if let Some(o) = offset {
            by_offset.entry(o).or_insert(m);
        }
        for i in nest() {
            if let Some(k) = key_of(i) {
                by_span.insert(k, m);
            }
        }
        let message = &mut out.list[m];
        message.sends.push(root);
        message.send_spans.extend(nest());
        if nest().any(|i| spans[i].error) {
            message.failed_sends += 1;
        }
    }

    // Settles refuse or skip the delivery they are a child of, or link to (batched acks).
    let mut settled: HashMap<usize, Handled> = HashMap::default();
    for i in (0..spans.len()).filter(|&i| ops[i] == Some(Operation::Settle)) {
        let s = &spans[i];
        let targets: Vec<usize> = parent_of(i)
            .filter(|&p| is_delivery(p))
            .into_iter()
            .chain(
                s.links
                    .iter()
                    .filter_map(|k| at.get(k).copied())
                    .filter(|&d| is_delivery(d)),
            )
            .collect();
        if targets.is_empty() {
            *out.unanalysed
                .entry(reason::SETTLE_WITHOUT_DELIVERY)
                .or_default() += 1;
            continue;
        }
        let said = s.outcome.as_deref().or(s.operation_name.as_deref());
        let handled = if said == Some("skip_duplicate") {
            Handled::Skipped
        } else if s.error || said.is_some_and(settle_refuses) {
            Handled::Refused
        } else {
            continue;
        };
        for delivery in targets {
            // A refusal outweighs a skip.
            let slot = settled.entry(delivery).or_insert(handled);
            if handled == Handled::Refused {
                *slot = Handled::Refused;
            }
        }
    }

    // A receive span whose children are deliveries (a batch poll: kafkajs' `eachBatch`, the
    // Java agent's `receive`) stands for those children, which name their messages.
    let mut polls = vec![false; spans.len()];
    for i in (0..spans.len()).filter(|&i| is_delivery(i)) {
        if let Some(p) = parent_of(i) {
            polls[p] = true;
        }
    }

    // Deliveries: to the message their id, offset, parent or links name.
    let unnamed: Name = Arc::from("(unnamed)");
    let mut numbered_messages: HashMap<(u128, u64), usize> = HashMap::default();
    let mut targets: Vec<usize> = Vec::new();
    for i in 0..spans.len() {
        let process = match ops[i] {
            Some(Operation::Process) => true,
            Some(Operation::Receive) => false,
            _ => continue,
        };
        let s = &spans[i];
        if s.links_dropped > 0 {
            *out.unanalysed
                .entry(reason::DELIVERY_LINKS_NOT_READ)
                .or_default() += u64::from(s.links_dropped);
        }
        // A consumer span inside another one of the same group (a framework's span around
        // the client library's) is that delivery, not a second one.
        if let Some(p) = parent_of(i)
            && ops[p] == Some(Operation::Process)
            && group_of(p) == group_of(i)
        {
            continue;
        }
        let parent_key = s.parent_key();
        targets.clear();
        // A third-party delivery of a numbered message: judged here for its group only.
        let numbered_send = parent_key
            .into_iter()
            .chain(s.links.iter().copied())
            .find(|k| numbered.sends.contains(k));
        let numbered_id = s
            .message_id
            .as_deref()
            .filter(|id| numbered.ids.contains(*id));
        if numbered_send.is_some() || numbered_id.is_some() {
            let m = match numbered_id {
                Some(id) => *by_id.entry(id).or_insert_with(|| {
                    out.list.push(Message {
                        name: id.to_owned(),
                        numbered: true,
                        ..Message::default()
                    });
                    out.list.len() - 1
                }),
                None => {
                    let send = numbered_send.unwrap_or_default();
                    *numbered_messages.entry(send).or_insert_with(|| {
                        out.list.push(Message {
                            name: span_name(send),
                            numbered: true,
                            ..Message::default()
                        });
                        out.list.len() - 1
                    })
                }
            };
            targets.push(m);
        } else if let Some(m) = s.message_id.as_deref().and_then(|id| by_id.get(id)) {
            targets.push(*m);
        } else if let Some(m) = offset_of(s).and_then(|o| by_offset.get(&o)) {
            targets.push(*m);
        } else {
            targets.extend(parent_key.and_then(|k| by_span.get(&k)));
            for link in &s.links {
                if let Some(&m) = by_span.get(link)
                    && !targets.contains(&m)
                {
                    targets.push(m);
                }
            }
        }
        if targets.is_empty() {
            // Delivered, but its send was not read: still judged for duplicates by its id.
            let Some(id) = s.message_id.as_deref() else {
                if process || !polls[i] {
                    *out.unanalysed
                        .entry(reason::DELIVERY_WITHOUT_IDENTITY)
                        .or_default() += 1;
                }
                continue;
            };
            out.list.push(Message {
                name: id.to_owned(),
                ..Message::default()
            });
            let m = out.list.len() - 1;
            by_id.insert(id, m);
            targets.push(m);
        }
        let handled = settled.get(&i).copied().unwrap_or(if s.error {
            Handled::Refused
        } else {
            Handled::Processed
        });
        let group = group_of(i).unwrap_or(&unnamed);
        for &m in &targets {
            out.list[m].deliveries.push(Delivery {
                group: Arc::clone(group),
                process,
                handled,
                end_ns: s.end_ns,
                span: i,
            });
        }
    }
    out
}
