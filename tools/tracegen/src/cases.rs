//! Scenarios shared by the analyzer's tests and the HTML report's browser test.

use crate::{Host, Msg, Traces};

const P: Host = Host::PRODUCER;
const C: Host = Host::CONSUMER; // 90 s behind the producer

/// A trace with a known fault of every kind SPEC §4 defines, and the confounders real
/// traces have: recovered retries, renamed destinations, linked traces, a consumer clock 90 s
/// behind, unrelated spans, a group that joins late, partitions. `analyzer/tests/
/// every_finding.rs` lists the findings it must give, and nothing else.
pub fn every_kind() -> Traces {
    let mut t = Traces::new();
    let m = |seq| Msg::new("p1", "orders", seq);
    let both = ["shipping", "billing"];

    t.healthy(&m(1), "1", &["shipping"]);
    // 2: a retry that recovered.
    t.produce(&m(2), 1, P);
    t.store_ack(&m(2), 1, "timeout", None, P);
    t.produce(&m(2), 2, P);
    t.store_ack(&m(2), 2, "ok", Some("2"), P);
    t.deliver(&m(2), "shipping", Some("2"), 1, C);
    t.settle(&m(2), "shipping", "ack", C);
    // 3: every attempt failed, nobody delivered it.
    t.produce(&m(3), 1, P);
    t.store_ack(&m(3), 1, "error", None, P);
    t.produce(&m(3), 2, P);
    t.store_ack(&m(3), 2, "nack", None, P);
    // 4: no span at all.
    t.unrelated(P);
    // 5: billing's first message.
    t.healthy(&m(5), "5", &both);
    // 6: acked, delivered to billing only: shipping lost it.
    t.produce(&m(6), 1, P);
    t.store_ack(&m(6), 1, "ok", Some("6"), P);
    t.deliver(&m(6), "billing", Some("6"), 1, C);
    t.settle(&m(6), "billing", "ack", C);
    // 7: shipping received it and never settled it (consumers here keep their own traces,
    // linked to the producer's, and name the queue, not the topic).
    let mut seven = m(7);
    seven.linked = true;
    seven.consumer_destination = Some("orders-queue".into());
    t.produce(&seven, 1, P);
    t.store_ack(&seven, 1, "ok", Some("7"), P);
    t.deliver(&seven, "shipping", Some("7"), 1, C);
    t.deliver(&seven, "billing", Some("7"), 1, C);
    t.settle(&seven, "billing", "ack", C);
    // 8: a lost ack, a retry, stored twice; shipping is idempotent, billing is not.
    t.produce(&m(8), 1, P);
    t.store_ack(&m(8), 1, "timeout", None, P);
    t.produce(&m(8), 2, P);
    t.store_ack(&m(8), 2, "ok", Some("8b"), P);
    for pos in ["8a", "8b"] {
        t.deliver(&m(8), "shipping", Some(pos), 1, C);
        t.deliver(&m(8), "billing", Some(pos), 1, C);
    }
    t.settle(&m(8), "shipping", "ack", C);
    t.settle(&m(8), "shipping", "skip_duplicate", C);
    t.settle(&m(8), "billing", "ack", C);
    t.settle(&m(8), "billing", "ack", C);
    // 9: shipping crashed before acking; the copy came again and was processed once.
    t.produce(&m(9), 1, P);
    t.store_ack(&m(9), 1, "ok", Some("9"), P);
    t.deliver(&m(9), "shipping", Some("9"), 1, C);
    t.deliver(&m(9), "shipping", Some("9"), 2, C);
    t.settle(&m(9), "shipping", "ack", C);
    t.deliver(&m(9), "billing", Some("9"), 1, C);
    t.settle(&m(9), "billing", "ack", C);
    // 10: processed twice (crash after processing, before the ack reached the broker).
    t.healthy(&m(10), "10", &both);
    t.deliver(&m(10), "shipping", Some("10"), 2, C);
    t.settle(&m(10), "shipping", "ack", C);
    // 11: the same, but the consumer recognised the copy.
    t.healthy(&m(11), "11", &both);
    t.deliver(&m(11), "shipping", Some("11"), 2, C);
    t.settle(&m(11), "shipping", "skip_duplicate", C);
    // 12: delivered and processed, but its produce spans were lost.
    for g in both {
        t.deliver(&m(12), g, Some("12"), 1, C);
        t.settle(&m(12), g, "ack", C);
    }
    // 13: consumers name the destination differently and keep their own traces.
    let mut renamed = m(13);
    renamed.consumer_destination = Some("orders-queue".into());
    renamed.linked = true;
    t.healthy(&renamed, "13", &both);
    t.healthy(&m(14), "14", &both);
    t.unrelated(C);

    // Another producer's stream on two partitions: shipping passed partition 0, not 1.
    let pay = |seq, part| Msg::new("p2", "payments", seq).on(part);
    t.healthy(&pay(1, "0"), "0/1", &["shipping"]);
    t.healthy(&pay(2, "1"), "1/1", &["shipping"]);
    t.produce(&pay(3, "1"), 1, P);
    t.store_ack(&pay(3, "1"), 1, "ok", Some("1/2"), P);
    t.healthy(&pay(4, "0"), "0/2", &["shipping"]);
    t.healthy(&pay(5, "0"), "0/3", &["shipping"]);

    // The last messages, moments before the end of the window.
    t.advance(1_000_000_000);
    t.produce(&m(15), 1, P);
    t.store_ack(&m(15), 1, "ok", Some("15"), P);
    t.produce(&m(16), 1, P);
    t.store_ack(&m(16), 1, "ok", Some("16"), P);
    t.deliver(&m(16), "shipping", Some("16"), 1, P); // a consumer on the producer's host
    t
}
