//! SPEC §4b's rules on spans built by hand, one rule per test: identity by id, by offset,
//! by parent and by link; nested sends; settles; every finding kind; what is left
//! unanalysed. (Spans of real instrumentations: tests/e2e/tests/semconv_instrumentations.rs.)

use super::*;
use mqtrace_vocab::finding::{Basis, Kind, Where};
use mqtrace_vocab::semconv::span_kind::{CLIENT, CONSUMER, INTERNAL, PRODUCER};

const S: i64 = 1_000_000_000;

/// Builds spans: each new span gets the next span id in its trace.
#[derive(Default)]
struct Spans {
    list: Vec<SemSpan>,
    next_id: u64,
}

impl Spans {
    fn add(&mut self, kind: i64, trace: u128, parent: Option<u64>, end_s: i64) -> &mut SemSpan {
        self.next_id += 1;
        self.list.push(SemSpan {
            kind: u8::try_from(kind).expect("a span kind"),
            trace_id: trace,
            span_id: self.next_id,
            parent: parent.unwrap_or(0),
            end_ns: end_s * S,
            ..SemSpan::default()
        });
        self.list.last_mut().expect("just pushed")
    }

    /// A send from `orders-svc` to `orders`; its span id.
    fn send(&mut self, trace: u128, end_s: i64) -> u64 {
        let s = self.add(PRODUCER, trace, None, end_s);
        s.service = Some("orders-svc".into());
        s.destination = Some("orders".into());
        s.span_id
    }

    /// A delivery to `group` as the send's child; its span id.
    fn deliver(&mut self, trace: u128, send: u64, group: &str, end_s: i64) -> u64 {
        let s = self.add(CONSUMER, trace, Some(send), end_s);
        s.service = Some(group.into());
        s.destination = Some("orders-queue".into());
        s.span_id
    }

    fn judge(&self, end_s: i64) -> Judged {
        judge(&self.list, &Numbered::default(), end_s * S, 0)
    }
}

fn keys(j: &Judged) -> Vec<(String, Option<String>, String)> {
    let mut out: Vec<_> = j
        .findings
        .iter()
        .map(|f| (f.key(), f.consumer_group.clone(), f.message_id.clone()))
        .collect();
    out.sort();
    out
}

#[test]
fn a_message_delivered_and_processed_once_everywhere_is_no_finding() {
    let mut t = Spans::default();
    for trace in 1..=3 {
        let send = t.send(trace, 1);
        t.deliver(trace, send, "billing", 2);
        t.deliver(trace, send, "shipping", 2);
    }
    let j = t.judge(100);
    assert!(j.findings.is_empty(), "{:?}", j.findings);
    assert_eq!(j.messages(), 3);
    assert!(j.unanalysed.is_empty());
    assert_eq!(
        j.streams.into_iter().collect::<Vec<_>>(),
        [(("orders-svc".to_owned(), "orders".to_owned()), 3)]
    );
}

#[test]
fn a_send_never_delivered_to_an_expected_group_is_lost_without_a_stage() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    t.deliver(1, a, "billing", 2);
    t.deliver(1, a, "shipping", 2);
    let b = t.send(2, 1);
    t.deliver(2, b, "billing", 2);
    t.send(3, 1);
    let j = t.judge(100);
    let found = keys(&j);
    assert_eq!(
        found,
        [
            (
                "lost".into(),
                Some("billing".into()),
                format!("{:032x}-{:016x}", 3, 6)
            ),
            (
                "lost".into(),
                Some("shipping".into()),
                format!("{:032x}-{:016x}", 2, 4)
            ),
            (
                "lost".into(),
                Some("shipping".into()),
                format!("{:032x}-{:016x}", 3, 6)
            ),
        ]
    );
    for f in &j.findings {
        assert_eq!((f.seq, f.stage, f.basis), (None, None, Basis::Semconv));
        assert_eq!(
            (f.producer_id.as_str(), f.stream.as_str()),
            ("orders-svc", "orders")
        );
        assert!(
            f.evidence_text().contains("stage unknown"),
            "{}",
            f.evidence_text()
        );
    }
    // Within the grace, not yet.
    assert!(
        judge(&t.list, &Numbered::default(), 100 * S, 200 * S)
            .findings
            .is_empty()
    );
}

#[test]
fn with_no_group_at_all_one_loss_names_none() {
    let mut t = Spans::default();
    t.send(1, 1);
    let j = t.judge(100);
    assert_eq!(
        keys(&j),
        [("lost".into(), None, format!("{:032x}-{:016x}", 1, 1))]
    );
}

#[test]
fn failed_sends_nobody_delivered_are_lost_at_the_producer() {
    let mut t = Spans::default();
    let ok = t.send(1, 1);
    t.deliver(1, ok, "billing", 2);
    t.send(2, 1);
    t.list.last_mut().expect("sent").error = true;
    let j = t.judge(100);
    assert_eq!(j.findings.len(), 1);
    assert_eq!(j.findings[0].key(), "lost/produce");
    assert_eq!(j.findings[0].consumer_group, None);
}

#[test]
fn processed_twice_redelivered_and_never_processed_per_group() {
    let mut t = Spans::default();
    // Processed twice in billing.
    let a = t.send(1, 1);
    t.deliver(1, a, "billing", 2);
    t.deliver(1, a, "billing", 3);
    // Refused once (ERROR), then processed: redelivered.
    let b = t.send(2, 1);
    t.deliver(2, b, "billing", 2);
    t.list.last_mut().expect("d").error = true;
    t.deliver(2, b, "billing", 3);
    // Refused by a settle span (nack), never processed: lost/consume.
    let c = t.send(3, 1);
    let d = t.deliver(3, c, "billing", 2);
    let settle = t.add(CLIENT, 3, Some(d), 2);
    settle.operation = Some("settle".into());
    settle.operation_name = Some("nack".into());
    // Refused by a settle span that links to the delivery (a batched nack).
    let e = t.send(4, 1);
    let d = t.deliver(4, e, "billing", 2);
    let settle = t.add(CLIENT, 44, None, 2);
    settle.operation = Some("settle".into());
    settle.operation_name = Some("reject".into());
    settle.links = vec![(4, d)].into();
    let j = t.judge(100);
    let found: Vec<String> = keys(&j).into_iter().map(|k| k.0).collect();
    assert_eq!(
        found,
        [
            "duplicate/consume",
            "lost/consume",
            "lost/consume",
            "redelivered"
        ]
    );
    // A refused delivery still recent is not judged yet.
    assert_eq!(
        judge(&t.list, &Numbered::default(), 100 * S, 99 * S)
            .findings
            .iter()
            .filter(|f| f.key() == "lost/consume")
            .count(),
        0
    );
}

#[test]
fn nested_sends_are_one_send_and_their_inner_span_identifies_too() {
    let mut t = Spans::default();
    let outer = t.send(1, 1);
    let inner = t.add(PRODUCER, 1, Some(outer), 1);
    inner.destination = Some("orders".into());
    let inner = inner.span_id;
    t.deliver(1, inner, "billing", 2);
    let j = t.judge(100);
    assert_eq!(j.messages(), 1);
    assert!(j.findings.is_empty(), "{:?}", j.findings);
}

#[test]
fn linked_deliveries_and_batches_reach_each_message() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    let b = t.send(2, 1);
    // One batch receive in a trace of its own, linking both sends.
    let batch = t.add(CONSUMER, 9, None, 2);
    batch.operation = Some("receive".into());
    batch.group = Some("billing".into());
    batch.links = vec![(1, a), (2, b)].into();
    // And a process span linking the first again: process spans outweigh receive ones.
    let p = t.add(CONSUMER, 10, None, 3);
    p.operation = Some("process".into());
    p.group = Some("billing".into());
    p.links = vec![(1, a)].into();
    let j = t.judge(100);
    assert!(j.findings.is_empty(), "{:?}", j.findings);
    assert_eq!(j.messages(), 2);
}

#[test]
fn message_ids_and_kafka_offsets_identify_across_traces() {
    let mut t = Spans::default();
    let s = t.add(PRODUCER, 1, None, 1);
    s.destination = Some("orders".into());
    s.message_id = Some("m-1".into());
    let s = t.add(PRODUCER, 2, None, 1);
    s.destination = Some("orders".into());
    s.partition = Some("0".into());
    s.offset = Some(41);
    // Deliveries in new traces: one by id (twice: processed twice), one by offset.
    for _ in 0..2 {
        let d = t.add(CONSUMER, 7, None, 2);
        d.group = Some("g".into());
        d.message_id = Some("m-1".into());
    }
    let d = t.add(CONSUMER, 8, None, 2);
    d.group = Some("g".into());
    d.destination = Some("orders".into());
    d.partition = Some("0".into());
    d.offset = Some(41);
    let j = t.judge(100);
    assert_eq!(
        keys(&j),
        [("duplicate/consume".into(), Some("g".into()), "m-1".into())]
    );
    assert_eq!(j.messages(), 2);
}

#[test]
fn what_cannot_be_tied_to_a_message_is_counted_by_reason() {
    let mut t = Spans::default();
    // A delivery whose send was not read and that has no id.
    let d = t.add(CONSUMER, 1, Some(99), 2);
    d.group = Some("g".into());
    // A settle of a delivery not read.
    let s = t.add(CLIENT, 2, Some(98), 2);
    s.operation = Some("settle".into());
    // A messaging span that neither sends, delivers nor settles: no message, not counted.
    t.add(INTERNAL, 3, None, 2).operation = Some("declare".into());
    // A delivery whose send was not read, but with an id: judged (processed twice).
    for _ in 0..2 {
        let d = t.add(CONSUMER, 4, None, 2);
        d.group = Some("g".into());
        d.message_id = Some("m-9".into());
    }
    let j = t.judge(100);
    assert_eq!(
        j.unanalysed.clone().into_iter().collect::<Vec<_>>(),
        [
            ("delivery_without_identity".to_owned(), 1),
            ("settle_without_delivery".to_owned(), 1),
        ]
    );
    assert_eq!(
        keys(&j),
        [("duplicate/consume".into(), Some("g".into()), "m-9".into())]
    );
    assert_eq!(j.findings[0].producer_id, "", "its send was not read");
}

#[test]
fn a_numbered_message_is_judged_here_only_for_its_third_party_consumers() {
    let mut t = Spans::default();
    // A third-party consumer of a numbered message: child of its produce span (processed
    // twice), or naming its id (refused once, then processed: redelivered).
    t.deliver(1, 5, "billing", 2);
    t.deliver(1, 5, "billing", 3);
    let d = t.add(CONSUMER, 2, None, 2);
    d.message_id = Some("p:orders:7".into());
    d.service = Some("shipping".into());
    d.error = true;
    let d = t.add(CONSUMER, 2, None, 3);
    d.message_id = Some("p:orders:7".into());
    d.service = Some("shipping".into());
    // A third-party send wrapping a numbered produce span (its parent): the same send.
    let wrapper = t.send(3, 1);
    let numbered = Numbered {
        sends: [(1, 5), (3, wrapper)].into_iter().collect(),
        ids: ["p:orders:7".to_owned()].into_iter().collect(),
    };
    let j = judge(&t.list, &numbered, 100 * S, 0);
    assert!(j.unanalysed.is_empty(), "{j:?}");
    assert_eq!(
        keys(&j),
        [
            (
                "duplicate/consume".into(),
                Some("billing".into()),
                format!("{:032x}-{:016x}", 1, 5)
            ),
            (
                "redelivered".into(),
                Some("shipping".into()),
                "p:orders:7".into()
            ),
        ]
    );
    assert_eq!(j.messages(), 0, "the numbered path counts them");
}

#[test]
fn a_span_exported_twice_is_one_span() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    t.deliver(1, a, "billing", 2);
    let again = t.list.last().expect("delivered").clone();
    t.list.push(again);
    let j = t.judge(100);
    assert!(
        j.findings.is_empty(),
        "not processed twice: {:?}",
        j.findings
    );
}

#[test]
fn a_consumer_span_inside_another_of_its_group_is_one_delivery() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    let outer = t.deliver(1, a, "billing", 3);
    t.deliver(1, outer, "billing", 2);
    let j = t.judge(100);
    assert!(j.findings.is_empty(), "{:?}", j.findings);
    assert!(j.unanalysed.is_empty(), "{:?}", j.unanalysed);
}

#[test]
fn nested_sends_of_different_ids_are_different_messages() {
    let mut t = Spans::default();
    // An envelope span around two sends with ids of their own; one is never delivered.
    let envelope = t.send(1, 1);
    for id in ["m-1", "m-2"] {
        let s = t.add(PRODUCER, 1, Some(envelope), 1);
        s.message_id = Some(id.into());
        s.service = Some("orders-svc".into());
        s.destination = Some("orders".into());
    }
    t.list[0].message_id = Some("batch-1".into());
    let d = t.add(CONSUMER, 7, None, 2);
    d.message_id = Some("m-1".into());
    d.service = Some("billing".into());
    let j = t.judge(100);
    let mut lost: Vec<String> = j
        .findings
        .iter()
        .filter(|f| f.key() == "lost")
        .map(|f| f.message_id.clone())
        .collect();
    lost.sort();
    assert_eq!(lost, ["batch-1", "m-2"], "m-1 delivered, its sibling not");
}

#[test]
fn the_groups_expected_are_per_producer_and_destination() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    t.deliver(1, a, "billing", 2);
    // Another producer's message to another destination, never delivered: its own stream,
    // without billing among its expected groups.
    let s = t.add(PRODUCER, 2, None, 1);
    s.service = Some("audit-svc".into());
    s.destination = Some("audit".into());
    let j = t.judge(100);
    assert_eq!(j.findings.len(), 1);
    let f = &j.findings[0];
    assert_eq!(
        (f.key(), f.consumer_group.as_deref()),
        ("lost".into(), None)
    );
    assert_eq!(
        (f.producer_id.as_str(), f.stream.as_str()),
        ("audit-svc", "audit")
    );
    assert_eq!(f.stage, None::<Where>);
    assert_eq!(f.kind, Kind::Lost);
}

/// A batch poll (a CLIENT or CONSUMER `receive` span) whose children process each message,
/// linked to their sends: the poll names no message itself and is not unanalysed.
#[test]
fn a_batch_poll_stands_for_its_children() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    let b = t.send(2, 1);
    let poll = t.add(CLIENT, 9, None, 2);
    poll.operation = Some("receive".into());
    let poll = poll.span_id;
    for (trace, send) in [(1, a), (2, b)] {
        let p = t.add(CONSUMER, 9, Some(poll), 2);
        p.operation = Some("process".into());
        p.service = Some("billing".into());
        p.links = vec![(trace, send)].into();
    }
    let j = t.judge(100);
    assert!(j.unanalysed.is_empty(), "{:?}", j.unanalysed);
    assert!(j.findings.is_empty(), "{:?}", j.findings);
    assert_eq!(j.messages(), 2);
}

#[test]
fn routing_keys_route_rabbitmq_messages_to_their_own_groups() {
    let mut t = Spans::default();
    // One exchange, two keys bound to two queues consumed by two services; one message of
    // the `eu` key is never delivered.
    for (trace, key, group) in [
        (1, "eu", "billing-eu"),
        (2, "us", "billing-us"),
        (3, "eu", ""),
    ] {
        let send = t.send(trace, 1);
        t.list.last_mut().expect("sent").routing_key = Some(key.into());
        if !group.is_empty() {
            t.deliver(trace, send, group, 2);
        }
    }
    let j = t.judge(100);
    assert_eq!(
        keys(&j),
        [(
            "lost".into(),
            Some("billing-eu".into()),
            format!("{:032x}-{:016x}", 3, 5)
        )],
        "the us group is not expected to get eu messages"
    );
}

#[test]
fn links_a_delivery_had_but_the_reader_did_not_keep_are_counted() {
    let mut t = Spans::default();
    let a = t.send(1, 1);
    let batch = t.add(CONSUMER, 9, None, 2);
    batch.operation = Some("receive".into());
    batch.links = vec![(1, a)].into();
    batch.links_dropped = 3;
    let j = t.judge(100);
    assert_eq!(
        j.unanalysed.into_iter().collect::<Vec<_>>(),
        [("delivery_links_not_read".to_owned(), 3)]
    );
}
