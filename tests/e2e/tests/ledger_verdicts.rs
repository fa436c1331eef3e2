//! Ledger mode (SPEC §2b) end to end without a broker: the same events recorded in full mode
//! and in ledger mode, written by the file exporter and read back by the analyzer, give the
//! same findings — the ones the test caused — from a fraction of the telemetry.

mod support;

use mqtrace::{Consumer, DeliveryInfo, Mode, Producer, SettleOutcome};
use std::collections::{BTreeSet, HashMap};
use support::{Traces, Verdict, verdicts};

type Headers = HashMap<String, String>;

/// Forty messages on one partition; what happens to each is decided here, not read back.
/// Returns the findings that must come out, and the telemetry's size on disk.
fn run(mode: Mode) -> (BTreeSet<Verdict>, u64) {
    let traces = Traces::new("ledger-e2e");
    let producer = Producer::builder("kafka")
        .producer_id("p")
        .tracer_provider(traces.provider())
        .mode(mode)
        .build();
    let consumer = Consumer::builder("kafka", "g")
        .consumer_id("g-1")
        .tracer_provider(traces.provider())
        .mode(mode)
        .build();
    let delivery = |headers: &Headers, seq: u64, count: u32| {
        let mut info = DeliveryInfo::new("orders");
        info.partition = Some("0".to_owned());
        info.position = Some(format!("0/{seq}"));
        info.delivery_count = count;
        consumer.deliver(headers, info)
    };
    for seq in 1..=40u64 {
        let mut message = producer.message("orders");
        message.set_partition(0);
        let mut headers = Headers::new();
        let attempt = message.begin_attempt(&mut headers).sent();
        if seq == 5 {
            attempt.nacked("broker refused it"); // lost at the producer
            continue;
        }
        attempt.acked(Some(&format!("0/{seq}")), Some("0"));
        match seq {
            10 => {}                                // stored, never delivered
            15 => drop(delivery(&headers, seq, 1)), // delivered, never settled
            20 => {
                // Processed twice: acked, then delivered and acked again.
                delivery(&headers, seq, 1).ack();
                delivery(&headers, seq, 2).ack();
            }
            25 => {
                // Nacked, redelivered, processed once.
                delivery(&headers, seq, 1).settle(SettleOutcome::Nack, "nack");
                delivery(&headers, seq, 2).ack();
            }
            _ => delivery(&headers, seq, 1).ack(),
        }
    }
    drop((producer, consumer));
    let (report, bytes) = traces.analyze_sized();
    (verdicts(&report), bytes)
}

#[test]
fn ledger_mode_gives_full_modes_findings_from_less_telemetry() {
    let v = |key: &str, group: Option<&str>, seq: u64| -> Verdict {
        (
            key.to_owned(),
            "orders".to_owned(),
            group.map(str::to_owned),
            seq,
        )
    };
    let expected: BTreeSet<Verdict> = [
        v("lost/produce", None, 5),
        v("lost/store", Some("g"), 10),
        v("lost/consume", Some("g"), 15),
        v("duplicate/consume", Some("g"), 20),
        v("redelivered", Some("g"), 25),
    ]
    .into_iter()
    .collect();
    let (full, full_bytes) = run(Mode::Full);
    assert_eq!(full, expected, "full mode");
    let (ledger, ledger_bytes) = run(Mode::Ledger);
    assert_eq!(ledger, expected, "ledger mode");
    assert!(
        ledger_bytes * 4 < full_bytes,
        "ledger mode wrote {ledger_bytes} bytes, full mode {full_bytes}"
    );
}
