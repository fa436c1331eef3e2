//! OTLP JSON lines: one `ExportTraceServiceRequest` per line, as the OpenTelemetry Collector's
//! file exporter writes them. Each line is one record of the sink: the fast scanner
//! ([`scan`]) reads well-formed lines; any line it does not take whole is read again by the
//! serde reader ([`serde`]), which reads what serde_json accepts and explains the rest. The
//! two never see each other's half-read record: the sink abandons it in between.

mod scan;
mod serde;

pub(crate) use scan::SERVICE_NAME;

use ::serde::de::{DeserializeSeed, IgnoredAny};

use crate::attrs::KeptAttributes;
use crate::malformed::Location;
use crate::sink::SpanSink;

/// What [`Blocks`](crate::load) puts in place of a line longer than
/// [`MAX_LINE_BYTES`](mqtrace_vocab::limits::MAX_LINE_BYTES): the line is skipped, not held.
pub(crate) const LONG_LINE_MARK: &[u8] = b"\0mqtrace: line too long\0";

/// Which readers may read a line: both (the scanner first), or serde alone (for tests and
/// the fuzz target that holds them to the same answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    /// The scanner, then serde for what it does not take.
    Fast,
    /// serde only.
    SerdeOnly,
}

/// JSON's whitespace (a form feed is not).
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// Whether the line holds a byte below 0x20: raw control characters are allowed in JSON only
/// as whitespace between tokens, never in strings; such a rare line goes to serde, which
/// knows which is which. Written to vectorise: it runs over every byte of the input.
fn has_control_bytes(line: &[u8]) -> bool {
    line.chunks(64)
        .any(|c| c.iter().fold(false, |acc, &b| acc | (b < 0x20)))
}

/// Reads one line (numbered `line_no`) into `sink` as one record; a line that cannot be read
/// is recorded as malformed with the reason (`torn`: it is the file's last line and has no
/// newline, so the writer probably died mid-write). `scratch` is reused across the lines of
/// a piece.
pub(crate) fn read_line<'de>(
    line: &'de [u8],
    line_no: u64,
    torn: bool,
    sink: &mut SpanSink,
    scratch: &mut KeptAttributes<'de>,
    readers: Readers,
) {
    if is_blank(line) {
        return;
    }
    let at = Location::line(line_no);
    if line == LONG_LINE_MARK || line.len() > mqtrace_vocab::limits::MAX_LINE_BYTES {
        return sink.reject(
            at,
            format!(
                "line longer than {} MiB: skipped (not OTLP JSON lines as the Collector writes \
                 them, or a file missing its newlines)",
                mqtrace_vocab::limits::MAX_LINE_BYTES >> 20
            ),
        );
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return sink.reject(
                at,
                format!(
                    "not UTF-8 text (byte {} of the line): not OTLP JSON",
                    e.valid_up_to()
                ),
            );
        }
    };
    if readers == Readers::Fast && !has_control_bytes(line) {
        sink.begin(at.clone());
        if let Ok(true) = scan::scan_line(text, sink, scratch) {
            return sink.commit();
        }
        sink.abandon();
    }
    sink.begin(at.clone());
    let mut de = serde_json::Deserializer::from_str(text);
    let result = serde::RequestSeed {
        out: &mut *sink,
        scratch,
    }
    .deserialize(&mut de)
    .and_then(|saw| de.end().map(|()| saw));
    let reason = match result {
        Ok(true) => return sink.commit(),
        Ok(false) => {
            "valid JSON but not an OTLP ExportTraceServiceRequest: no \"resourceSpans\"".to_owned()
        }
        Err(e) => {
            if serde_json::from_slice::<IgnoredAny>(line).is_ok() {
                format!("valid JSON but not an OTLP ExportTraceServiceRequest: {e}")
            } else if e.is_eof() {
                format!("incomplete JSON (a torn write?): {e}")
            } else {
                format!("not JSON: {e}")
            }
        }
    };
    sink.abandon();
    if torn {
        sink.reject(
            at,
            format!("torn last line (the writer was killed mid-write?): {reason}"),
        );
    } else {
        sink.reject(at, reason);
    }
}

/// Reads `lines` with the given readers into a fresh sink: what the differential tests and
/// the fuzz target compare.
pub fn read_lines(lines: &[u8], readers: Readers) -> SpanSink {
    let mut sink = SpanSink::default();
    let mut scratch = Vec::new();
    for (i, line) in lines.split(|b| *b == b'\n').enumerate() {
        read_line(line, i as u64 + 1, false, &mut sink, &mut scratch, readers);
    }
    sink
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtrace_tracegen::{Host, Msg, Traces};

    /// Both readers over the same lines, as comparable text.
    fn both(lines: &str) -> (String, String) {
        let run = |readers| read_lines(lines.as_bytes(), readers).comparable();
        (run(Readers::Fast), run(Readers::SerdeOnly))
    }

    /// Equal, or a readable window around the first difference.
    fn assert_same(fast: &str, slow: &str) {
        if let Some(at) = fast.bytes().zip(slow.bytes()).position(|(a, b)| a != b) {
            let from = at.saturating_sub(80);
            panic!(
                "fast: …{}…\nslow: …{}…",
                fast.get(from..at + 80).unwrap_or(fast),
                slow.get(from..at + 80).unwrap_or(slow)
            );
        }
        assert_eq!(fast.len(), slow.len());
    }

    #[test]
    fn the_fast_path_reads_what_serde_reads() {
        let mut t = Traces::new();
        for seq in 1..=50 {
            let m = Msg::new("p1", "orders", seq).on("3");
            t.healthy(&m, &format!("3/{seq}"), &["shipping", "billing"]);
            t.unrelated(Host::PRODUCER);
        }
        t.produce(&Msg::new("p\\u00e9\"q", "orders", 51), 1, Host::PRODUCER);
        let (fast, slow) = both(&t.finish());
        assert!(
            fast.contains("spans: 351"),
            "{}",
            &fast[..200.min(fast.len())]
        );
        assert_same(&fast, &slow);
    }

    /// Telemetry reports naming their instance (one per export, the last one final) are read
    /// alike by both readers: per instance, when it last reported and whether it shut down.
    #[test]
    fn both_readers_track_telemetry_instances_alike() {
        let mut t = Traces::new();
        t.telemetry("a", 0, false, Host::PRODUCER);
        t.healthy(&Msg::new("p1", "orders", 1), "0/1", &["shipping"]);
        t.telemetry("a", 0, false, Host::PRODUCER);
        t.telemetry("b", 2, false, Host::CONSUMER);
        t.telemetry("a", 0, true, Host::PRODUCER);
        let text = t.finish();
        let (fast, slow) = both(&text);
        assert_same(&fast, &slow);
        let sink = read_lines(text.as_bytes(), Readers::Fast);
        let health = &sink.stats.telemetry;
        assert_eq!((health.reports, health.final_reports), (4, 1));
        assert_eq!(health.instances(), 2);
        let stopped = health.stopped_instances();
        assert_eq!(stopped.len(), 1);
        assert_eq!((stopped[0].instance.as_str(), stopped[0].reports), ("b", 1));
        assert!(stopped[0].last_report_unix_nano > 0);
        assert!(health.incomplete());
        // An instance id of another type cannot be tracked: counted, and incomplete.
        let odd = text.replacen(r#"{"stringValue":"a"}"#, r#"{"intValue":"7"}"#, 1);
        let (fast, slow) = both(&odd);
        assert_same(&fast, &slow);
        let sink = read_lines(odd.as_bytes(), Readers::SerdeOnly);
        assert_eq!(sink.stats.telemetry.untracked_reports, 1);
    }

    const GOOD: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"send orders","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"mqtrace.stage","value":{"stringValue":"produce"}},{"key":"mqtrace.producer.id","value":{"stringValue":"p"}},{"key":"mqtrace.stream","value":{"stringValue":"orders"}},{"key":"mqtrace.seq","value":{"intValue":"1"}}]}]}]}]}"#;

    /// `GOOD` with `from` replaced by `to`.
    fn variant(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from}");
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn bad_lines_get_the_same_reason_either_way() {
        let lines = [
            "{".to_owned(),
            "not json".to_owned(),
            variant("4bf92f3577b34da6a3ce929d0e0e4736", "ab"),
            variant(r#"{"intValue":"1"}"#, r#"{"stringValue":"1"}"#),
            variant(r#""startTimeUnixNano":"1""#, r#""startTimeUnixNano":"x""#),
            r#"{"other":1}"#.to_owned(),
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"value":{}}]}]}]}]}"#
                .to_owned(),
        ]
        .join("\n");
        let (fast, slow) = both(&lines);
        assert_same(&fast, &slow);
    }

    /// Each of these was read differently by the two readers, or accepted by the scanner
    /// though serde_json rejects it.
    #[test]
    fn the_readers_agree_on_what_they_once_did_not() {
        let cases = [
            variant("send orders", r"send \q"),
            variant("send orders", r"send \u00zz"),
            variant("send orders", "send\u{1}orders"),
            variant("send orders", "send\torders"),
            variant(r#""name""#, r#""kind":01,"name""#),
            variant(r#""name""#, r#""kind":1.,"name""#),
            variant(r#""name""#, r#""kind":-.5,"name""#),
            variant(r#""name""#, r#""kind":1.e5,"name""#),
            variant(
                r#"{"intValue":"1"}"#,
                r#"{"stringValue":null,"intValue":"1"}"#,
            ),
            variant(r#"{"intValue":"1"}"#, r#"{"intValue":"1","intValue":"2"}"#),
            variant(
                r#""name":"send orders""#,
                r#""name":"a","name":"send orders""#,
            ),
            variant(r#"{"intValue":"1"}"#, r#"{"intValue":-0}"#),
            variant(r#"{"intValue":"1"}"#, r#"{"intValue":1e400}"#),
            variant(r#"{"intValue":"1"}"#, r#"{"intValue": "1"}"#),
            variant(r#"{"intValue":"1"}"#, r#"{"intValue":2.0}"#),
            variant(r#"{"intValue":"1"}"#, r#"{"intValue":1}"#),
            variant(
                r#"{"intValue":"1"}"#,
                r#"{"intValue":18446744073709551615}"#,
            ),
            variant(
                r#""resourceSpans":["#,
                r#""resourceSpans":[],"resourceSpans":["#,
            ),
        ];
        for case in &cases {
            let (fast, slow) = both(case);
            assert_same(&fast, &slow);
        }
        // And what each is read as.
        let seq_of = |line: &str| {
            read_lines(line.as_bytes(), Readers::Fast)
                .into_parts()
                .0
                .len()
        };
        assert_eq!(
            seq_of(&cases[13]),
            1,
            "a space after the colon is still an int"
        );
        assert_eq!(seq_of(&cases[8]), 1, "a null stringValue is absent");
        for bad in [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 17] {
            let sink = read_lines(cases[bad].as_bytes(), Readers::Fast);
            assert_eq!(sink.stats.malformed_total, 1, "{}", cases[bad]);
        }
    }

    #[test]
    fn a_form_feed_line_is_malformed_and_a_blank_one_is_skipped() {
        let sink = read_lines(b"\x0c\n \t\r\n", Readers::Fast);
        assert_eq!(sink.stats.malformed_total, 1);
        assert_eq!(sink.stats.malformed[0].at.line, Some(1));
    }
}

#[cfg(test)]
mod ledger_tests {
    use super::*;

    fn ledger_line(of: &str, seqs: &str, count: u64, extra: &str) -> String {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","name":"mqtrace ledger orders","startTimeUnixNano":"10","endTimeUnixNano":"20","attributes":[{{"key":"mqtrace.stage","value":{{"stringValue":"ledger"}}}},{{"key":"mqtrace.ledger.of","value":{{"stringValue":"{of}"}}}},{{"key":"mqtrace.producer.id","value":{{"stringValue":"p"}}}},{{"key":"mqtrace.stream","value":{{"stringValue":"orders"}}}},{{"key":"messaging.system","value":{{"stringValue":"kafka"}}}},{{"key":"mqtrace.seqs","value":{{"stringValue":"{seqs}"}}}},{{"key":"mqtrace.ledger.count","value":{{"intValue":"{count}"}}}}{extra}]}}]}}]}}]}}"#
        )
    }

    /// A ledger is kept as its ranges, with the fields every event it stands for carries,
    /// by both readers alike (which seqs become rows is decided over the whole input:
    /// crate::ledgers).
    #[test]
    fn a_ledger_is_kept_as_ranges() {
        let lines = [
            ledger_line("store_ack", "1-3,5", 4, ""),
            ledger_line(
                "deliver",
                "1-2",
                2,
                r#",{"key":"messaging.consumer.group.name","value":{"stringValue":"g"}}"#,
            ),
        ]
        .join("\n");
        let (mut fast, slow) = (
            read_lines(lines.as_bytes(), Readers::Fast),
            read_lines(lines.as_bytes(), Readers::SerdeOnly),
        );
        assert_eq!(fast.stats.malformed_total, 0, "{:?}", fast.stats.malformed);
        let ledgers = fast.take_ledgers();
        assert_eq!(ledgers.len(), 2);
        assert_eq!(ledgers[0].fields.of, mqtrace_vocab::Stage::StoreAck);
        assert_eq!(ledgers[0].fields.seqs.to_string(), "1-3,5");
        assert_eq!(ledgers[0].fields.outcome, Some(crate::columns::outcome::OK));
        assert_eq!(
            (ledgers[0].fields.start_ns, ledgers[0].fields.end_ns),
            (10, 20)
        );
        assert_eq!(ledgers[1].group.as_deref(), Some("g"));
        assert_eq!(ledgers[1].fields.delivery_count, Some(1));
        assert!(
            fast.into_parts().0.is_empty(),
            "no rows before the input is whole"
        );
        let mut slow = slow;
        assert_eq!(slow.take_ledgers(), ledgers);
    }

    #[test]
    fn a_bad_ledger_is_named() {
        for (line, why) in [
            (ledger_line("store_ack", "1-3", 4, ""), "says 4 seqs"),
            (ledger_line("store_ack", "3,1", 2, ""), "not sorted"),
            (ledger_line("produce", "1", 1, ""), "must be store_ack"),
            (
                ledger_line("deliver", "1-20000000", 20000000, ""),
                "over the",
            ),
        ] {
            let sink = read_lines(line.as_bytes(), Readers::Fast);
            assert_eq!(sink.stats.malformed_total, 1, "{line}");
            assert!(
                sink.stats.malformed[0].error.contains(why),
                "{:?}",
                sink.stats.malformed
            );
        }
    }
}
