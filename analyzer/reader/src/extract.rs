//! From one span's kept attributes to what the span is: not messaging, a messaging span
//! without mqtrace's numbering, or a numbered stage span's row — or a precise reason why a
//! numbered span cannot be used. Every reader's spans come through here (via the sink), so
//! a value is judged the same whichever encoding carried it.

use std::borrow::Cow;

use mqtrace_vocab::limits::MAX_LEDGER_SEQS;
use mqtrace_vocab::seqs::SeqRanges;
use mqtrace_vocab::{Stage, attr, keys};

use crate::attrs::{Key, Scalar, clip};
use crate::columns::{SpanRow, outcome};

/// What a span turned out to be.
#[derive(Debug)]
// Returned by value once per span and matched at once: boxing the row would allocate per span.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Span<'a> {
    /// Not a messaging span: skipped (unless it is a telemetry report).
    Other,
    /// A messaging span without mqtrace's numbering (counted, not analysed).
    Unkeyed,
    /// A numbered stage span; the sink fills in its times and trace id.
    Keyed(SpanRow<'a>),
    /// A ledger span (SPEC §2b): `row` is every seq's row but for the seq (and, for a
    /// `store_ack` ledger, the stage: each seq stands for its `produce` and its `store_ack`).
    Ledger(SpanRow<'a>, SeqRanges),
}

/// Classifies a span by its attributes. Only numbered spans (`mqtrace.stage` with producer,
/// stream and seq) have their values' types checked: a third-party messaging span whose
/// partition or group is an int is a valid span, not a malformed one.
pub(crate) fn classify<'a>(values: &'a [(Key, Scalar<'a>)]) -> Result<Span<'a>, String> {
    let mut stage = None;
    let mut messaging = false;
    for (key, value) in values {
        match key {
            Key::Stage => stage = Some(value),
            Key::ConsumerGroup
            | Key::Partition
            | Key::MessageId
            | Key::Semconv(..)
            | Key::MessagingOther => messaging = true,
            _ => {}
        }
    }
    let Some(stage) = stage else {
        return Ok(if messaging {
            Span::Unkeyed
        } else {
            Span::Other
        });
    };
    let stage_text = string(stage, attr::STAGE)?;
    if stage_text == attr::LEDGER {
        return ledger(values);
    }
    let Some(stage) = Stage::parse(stage_text) else {
        let known: Vec<_> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        return Err(format!(
            "{} must be one of {}, got {:?}",
            attr::STAGE,
            known.join(", "),
            clip(stage_text)
        ));
    };
    let mut row = SpanRow {
        stage,
        ..SpanRow::default()
    };
    let (mut producer, mut stream, mut seq) = (None, None, None);
    for (key, value) in values {
        let name = key.name();
        match key {
            Key::ProducerId => producer = Some(string(value, name)?),
            Key::Stream => stream = Some(string(value, name)?),
            Key::Seq => seq = Some(int(value, name)?),
            Key::Attempt => row.attempt = Some(int(value, name)?),
            Key::DeliveryCount => row.delivery_count = Some(int(value, name)?),
            Key::Outcome => row.outcome = Some(outcome::code(string(value, name)?)),
            Key::BrokerPosition => row.position = Some(text(value, name)?),
            Key::LedgerPosition => row.earlier_position = Some(text(value, name)?),
            Key::ConsumerGroup => row.group = Some(text(value, name)?),
            Key::Partition => row.partition = Some(text(value, name)?),
            Key::MessageId => {
                if let Scalar::Str(s) = value {
                    row.message_id = Some(s);
                }
            }
            Key::Stage
            | Key::MessagingOther
            | Key::Semconv(..)
            | Key::TelemetryDropped
            | Key::TelemetryFinal
            | Key::TelemetryInstance
            | Key::LedgerOf
            | Key::Seqs
            | Key::LedgerCount => {}
        }
    }
    let (Some(producer), Some(stream), Some(seq)) = (producer, stream, seq) else {
        // A stage span of a message that carried no numbering: traced, not analysable.
        return Ok(Span::Unkeyed);
    };
    if seq < 1 {
        return Err(format!("{} must be ≥ 1, got {seq}", attr::SEQ));
    }
    if seq > keys::MAX_SEQ {
        return Err(format!(
            "{} must be at most {} (2^{} - 1), got {seq}",
            attr::SEQ,
            keys::MAX_SEQ,
            keys::SEQ_BITS
        ));
    }
    if producer.contains('\0') || stream.contains('\0') {
        return Err("producer id and stream must not contain NUL characters".to_owned());
    }
    row.producer_id = producer;
    row.stream = stream;
    row.seq = seq;
    Ok(Span::Keyed(row))
}

/// A ledger span: which stage it stands for, its seqs (checked against its count and bounded),
/// and the row every seq shares.
fn ledger<'a>(values: &'a [(Key, Scalar<'a>)]) -> Result<Span<'a>, String> {
    let mut row = SpanRow::default();
    let (mut of, mut seqs, mut count, mut producer, mut stream) = (None, None, None, None, None);
    for (key, value) in values {
        let name = key.name();
        match key {
            Key::LedgerOf => of = Some(string(value, name)?),
            Key::Seqs => seqs = Some(string(value, name)?),
            Key::LedgerCount => count = Some(int(value, name)?),
            Key::ProducerId => producer = Some(string(value, name)?),
            Key::Stream => stream = Some(string(value, name)?),
            Key::ConsumerGroup => row.group = Some(text(value, name)?),
            Key::Partition => row.partition = Some(text(value, name)?),
            _ => {}
        }
    }
    let of = of.ok_or_else(|| format!("a ledger span needs {}", attr::LEDGER_OF))?;
    row.stage = match Stage::parse(of) {
        Some(s @ (Stage::StoreAck | Stage::Deliver | Stage::ConsumeAck)) => s,
        _ => {
            return Err(format!(
                "{} must be store_ack, deliver or consume_ack, got {:?}",
                attr::LEDGER_OF,
                clip(of)
            ));
        }
    };
    let (Some(producer), Some(stream), Some(seqs)) = (producer, stream, seqs) else {
        return Err(format!(
            "a ledger span needs {}, {} and {}",
            attr::PRODUCER_ID,
            attr::STREAM,
            attr::SEQS
        ));
    };
    let seqs: SeqRanges = seqs
        .parse()
        .map_err(|e| format!("{} is not sorted, disjoint ranges of seqs: {e}", attr::SEQS))?;
    if count.is_some_and(|c| u64::try_from(c).ok() != Some(seqs.count())) {
        return Err(format!(
            "{} says {} seqs, {} holds {}",
            attr::LEDGER_COUNT,
            count.unwrap_or_default(),
            attr::SEQS,
            seqs.count()
        ));
    }
    if seqs.count() > MAX_LEDGER_SEQS {
        return Err(format!(
            "a ledger of {} seqs is over the {MAX_LEDGER_SEQS} the analyzer reads",
            seqs.count()
        ));
    }
    if seqs
        .ranges()
        .last()
        .is_some_and(|r| r.1 > keys::MAX_SEQ as u64)
    {
        return Err(format!("{} must be at most {}", attr::SEQ, keys::MAX_SEQ));
    }
    if producer.contains('\0') || stream.contains('\0') {
        return Err("producer id and stream must not contain NUL characters".to_owned());
    }
    row.producer_id = producer;
    row.stream = stream;
    match row.stage {
        Stage::StoreAck => {
            row.attempt = Some(1);
            row.outcome = Some(outcome::OK);
        }
        Stage::Deliver => row.delivery_count = Some(1),
        _ => row.outcome = Some(outcome::ACK),
    }
    Ok(Span::Ledger(row, seqs))
}

fn int(value: &Scalar<'_>, key: &str) -> Result<i64, String> {
    match value {
        Scalar::Int(v) => Ok(*v),
        Scalar::IntText(t) => t
            .parse::<i64>()
            .map_err(|_| format!("{key} must be a 64-bit int, got intValue {:?}", clip(t))),
        other => Err(format!(
            "{key} must be an int (intValue), got {}",
            other.describe()
        )),
    }
}

fn string<'a>(value: &'a Scalar<'a>, key: &str) -> Result<&'a str, String> {
    match value {
        Scalar::Str(s) => Ok(s),
        other => Err(format!(
            "{key} must be a string (stringValue), got {}",
            other.describe()
        )),
    }
}

/// A name the conventions type as a string that some clients record as an int (partitions,
/// groups, positions): both read as the same text, whichever encoding carried the int.
fn text<'a>(value: &'a Scalar<'a>, key: &str) -> Result<Cow<'a, str>, String> {
    match value {
        Scalar::Str(s) => Ok(Cow::Borrowed(s)),
        Scalar::IntText(t) => match t.parse::<i64>() {
            Ok(i) => Ok(Cow::Owned(i.to_string())),
            Err(_) => Err(format!(
                "{key} must be a string or an int, got intValue {:?}",
                clip(t)
            )),
        },
        Scalar::Int(i) => Ok(Cow::Owned(i.to_string())),
        other => Err(format!(
            "{key} must be a string (stringValue), got {}",
            other.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::known_key;

    fn keyed<'a>(attrs: &[(&str, Scalar<'a>)]) -> Vec<(Key, Scalar<'a>)> {
        attrs
            .iter()
            .filter_map(|(k, v)| Some((known_key(k)?, v.clone())))
            .collect()
    }

    fn s(v: &str) -> Scalar<'_> {
        Scalar::Str(Cow::Borrowed(v))
    }

    #[test]
    fn a_numbered_stage_span_becomes_a_row() {
        let attrs = keyed(&[
            ("mqtrace.stage", s("store_ack")),
            ("mqtrace.producer.id", s("p")),
            ("mqtrace.stream", s("orders")),
            ("mqtrace.seq", Scalar::IntText(Cow::Borrowed("42"))),
            ("mqtrace.outcome", s("ok")),
            ("mqtrace.broker.position", s("1/5512")),
            ("messaging.destination.partition.id", s("1")),
        ]);
        let Ok(Span::Keyed(row)) = classify(&attrs) else {
            panic!("not keyed");
        };
        assert_eq!(
            (row.seq, row.stage, row.outcome),
            (42, Stage::StoreAck, Some(outcome::OK))
        );
        assert_eq!(row.position.as_deref(), Some("1/5512"));
        assert_eq!(row.partition.as_deref(), Some("1"));
    }

    #[test]
    fn an_int_partition_reads_the_same_in_every_form() {
        for p in [s("3"), Scalar::IntText(Cow::Borrowed("3")), Scalar::Int(3)] {
            let attrs = keyed(&[
                ("mqtrace.stage", s("deliver")),
                ("mqtrace.producer.id", s("p")),
                ("mqtrace.stream", s("orders")),
                ("mqtrace.seq", Scalar::Int(1)),
                ("messaging.destination.partition.id", p),
            ]);
            let Ok(Span::Keyed(row)) = classify(&attrs) else {
                panic!("not keyed");
            };
            assert_eq!(row.partition.as_deref(), Some("3"));
        }
    }

    #[test]
    fn a_delivery_count_beyond_32_bits_is_a_count() {
        let attrs = keyed(&[
            ("mqtrace.stage", s("deliver")),
            ("mqtrace.producer.id", s("p")),
            ("mqtrace.stream", s("orders")),
            ("mqtrace.seq", Scalar::Int(1)),
            ("mqtrace.delivery.count", Scalar::Int(1 << 33)),
        ]);
        let Ok(Span::Keyed(row)) = classify(&attrs) else {
            panic!("not keyed");
        };
        assert_eq!(row.delivery_count, Some(1 << 33));
    }

    #[test]
    fn spans_without_stage_are_messaging_or_not_whatever_their_types() {
        assert!(matches!(
            classify(&keyed(&[("http.method", s("GET"))])),
            Ok(Span::Other)
        ));
        assert!(matches!(
            classify(&keyed(&[("messaging.system", s("kafka"))])),
            Ok(Span::Unkeyed)
        ));
        assert!(matches!(
            classify(&keyed(&[
                ("messaging.destination.partition.id", Scalar::Int(3)),
                ("messaging.consumer.group.name", Scalar::Double(1.5)),
            ])),
            Ok(Span::Unkeyed)
        ));
        assert!(matches!(
            classify(&keyed(&[("mqtrace.stage", s("deliver"))])),
            Ok(Span::Unkeyed)
        ));
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let base = |seq: Scalar<'static>| {
            keyed(&[
                ("mqtrace.stage", s("produce")),
                ("mqtrace.producer.id", s("p")),
                ("mqtrace.stream", s("orders")),
                ("mqtrace.seq", seq),
            ])
        };
        let err = |attrs: Vec<(Key, Scalar<'static>)>| match classify(&attrs) {
            Err(e) => e,
            Ok(other) => panic!("accepted: {other:?}"),
        };
        assert!(err(base(s("7"))).contains("mqtrace.seq must be an int (intValue), got a string"));
        assert!(err(base(Scalar::IntText(Cow::Borrowed("x")))).contains("got intValue \"x\""));
        assert!(err(base(Scalar::Int(0))).contains("≥ 1"));
        assert!(err(base(Scalar::Double(2.0))).contains("got a double (2)"));
        let mut bad_stage = base(Scalar::Int(1));
        bad_stage[0].1 = s("sent");
        assert!(err(bad_stage).contains("must be one of produce, store_ack"));
    }
}
