//! `tracegen SPANS OUT_FILE [--semconv]`: writes about SPANS spans of healthy traffic with a
//! sprinkle of faults (one lost at each stage, one duplicate, per 10,000 messages) as OTLP JSON
//! lines, for benchmarks. With `--semconv`, the same traffic as a third-party instrumentation
//! traces it, without mqtrace's numbering (SPEC §4b).
//!
//! `tracegen --every-kind OUT_FILE` writes the analyzer's every-kind scenario;
//! `tracegen --collector-rows IN OUT` turns OTLP JSON lines into the rows the Collector's
//! ClickHouse exporter would insert into `otel_traces` (`JSONEachRow`), to load them into a
//! ClickHouse engine.

use mqtrace_tracegen::{Host, Msg, Traces};
use std::io::Write;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, input, output] = args.as_slice()
        && flag == "--collector-rows"
    {
        return collector_rows(input, output);
    }
    if let [_, flag, output] = args.as_slice()
        && flag == "--every-kind"
    {
        return write(output, &mqtrace_tracegen::cases::every_kind().finish());
    }
    let (Some(spans), Some(path)) = (args.get(1).and_then(|s| s.parse::<u64>().ok()), args.get(2))
    else {
        eprintln!("usage: tracegen SPANS OUT_FILE [--semconv]");
        return std::process::ExitCode::from(2);
    };
    let file = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tracegen: {path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut t = Traces::new();
    let mut seq = 0u64;
    let streams = ["orders", "payments", "audit", "emails"];
    let semconv = args.get(3).is_some_and(|a| a == "--semconv");
    while t.span_count() < spans {
        seq += 1;
        for (s, stream) in streams.iter().enumerate() {
            if semconv {
                let id = seq * 4 + s as u64;
                // (group, refused deliveries, processed deliveries)
                let deliveries: &[(&str, u32, u32)] = match (seq + s as u64) % 10_000 {
                    17 => &[],             // never delivered
                    18 => &[("g1", 1, 0)], // refused, never processed
                    19 => &[("g1", 0, 2)], // processed twice
                    _ => &[("g1", 0, 1)],
                };
                t.third_party(id, stream, deliveries);
                if seq.is_multiple_of(50) {
                    t.unrelated(Host::PRODUCER);
                }
                continue;
            }
            let m = Msg::new("svc-1", stream, seq).on(&(seq % 4).to_string());
            let pos = format!("{}/{}", seq % 4, seq);
            match (seq + s as u64) % 10_000 {
                17 => {
                    // lost at the store: acked, never delivered
                    t.produce(&m, 1, Host::PRODUCER);
                    t.store_ack(&m, 1, "ok", Some(&pos), Host::PRODUCER);
                }
                18 => {
                    // lost at the consumer: delivered, never settled
                    t.produce(&m, 1, Host::PRODUCER);
                    t.store_ack(&m, 1, "ok", Some(&pos), Host::PRODUCER);
                    t.deliver(&m, "g1", Some(&pos), 1, Host::CONSUMER);
                }
                19 => {
                    t.produce(&m, 1, Host::PRODUCER);
                    t.store_ack(&m, 1, "error", None, Host::PRODUCER);
                }
                _ => t.healthy(&m, &pos, &["g1"]),
            }
            if seq.is_multiple_of(50) {
                t.unrelated(Host::PRODUCER);
            }
        }
        if seq.is_multiple_of(1000)
            && let Err(e) = out.write_all(t.drain().as_bytes())
        {
            eprintln!("tracegen: {path}: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    let spans = t.span_count();
    if let Err(e) = out
        .write_all(t.finish().as_bytes())
        .and_then(|()| out.flush())
    {
        eprintln!("tracegen: {path}: {e}");
        return std::process::ExitCode::from(2);
    }
    eprintln!("tracegen: {spans} spans, {seq} messages per stream, to {path}");
    std::process::ExitCode::SUCCESS
}

fn write(path: &str, text: &str) -> std::process::ExitCode {
    match std::fs::write(path, text) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tracegen: {path}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn collector_rows(input: &str, output: &str) -> std::process::ExitCode {
    let rows = std::fs::read_to_string(input)
        .map_err(|e| e.to_string())
        .and_then(|text| mqtrace_tracegen::collector::otel_traces_rows(&text));
    match rows {
        Ok(rows) => write(output, &rows),
        Err(e) => {
            eprintln!("tracegen: {input}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
