//! For benchmarks (scripts/bench-clickhouse): loads OTLP JSON lines into a ClickHouse data
//! directory as the Collector's ClickHouse exporter would store them (table `otel.otel_traces`,
//! the exporter's DDL), then writes each query's answer in ArrowStream, RowBinary and
//! JSONEachRow and prints their sizes: what a server would ship back per format.
//!
//! `chdb_load SPANS.jsonl DIR` (libchdb from MQTRACE_LIBCHDB or target/libchdb).

use std::path::{Path, PathBuf};

use mqtrace_analyzer::clickhouse::{Chdb, Engine, LIBCHDB_VAR, Layout, Scope, sql};

const DDL: &str = include_str!("../tests/data/otel_traces.sql");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, spans, dir] = args.as_slice() else {
        return Err("usage: chdb_load SPANS.jsonl DIR".into());
    };
    let lib = std::env::var_os(LIBCHDB_VAR).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/libchdb/libchdb.so"),
        PathBuf::from,
    );
    let dir = Path::new(dir);
    let rows_path = dir.with_extension("rows.jsonl");
    let started = std::time::Instant::now();
    let text = std::fs::read_to_string(spans)?;
    std::fs::write(
        &rows_path,
        mqtrace_tracegen::collector::otel_traces_rows(&text)?,
    )?;
    drop(text);
    let converted = started.elapsed();
    let mut ch = Chdb::open_with(&lib, dir, true)?;
    ch.execute("CREATE DATABASE IF NOT EXISTS otel")?;
    ch.execute(DDL)?;
    ch.execute(&format!(
        "INSERT INTO otel.otel_traces SELECT * FROM file('{}', 'JSONEachRow')",
        rows_path.display()
    ))?;
    std::fs::remove_file(&rows_path)?;
    let loaded = started.elapsed() - converted;
    eprintln!(
        "chdb_load: converted in {:.1} s, loaded in {:.1} s",
        converted.as_secs_f64(),
        loaded.as_secs_f64()
    );
    // What each answer weighs per format.
    let scope = Scope {
        database: "otel".into(),
        table: "otel_traces".into(),
        since: None,
        until: None,
        streams: Vec::new(),
        layout: Layout::Table,
    };
    let mut params = sql::params(&scope);
    let end = ch.query(
        "SELECT toInt64(max(toUnixTimestamp64Nano(Timestamp) + Duration)) AS e FROM otel.otel_traces",
        &[],
    )?;
    let end = end
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    params.push(("cutoff", (end - 30_000_000_000).to_string()));
    let out = dir.with_extension("answer");
    let dialect = sql::Dialect {
        materialized_cte: ch.query(sql::Dialect::PROBE, &[]).is_ok(),
    };
    ch.execute("SET engine_file_truncate_on_insert = 1")?;
    ch.execute("SET output_format_arrow_string_as_string = 1")?;
    for (name, query) in [
        ("stats", sql::stats(&Layout::Table)),
        ("streams", sql::streams(&Layout::Table, dialect)),
        ("findings", sql::findings(&Layout::Table, dialect)),
        ("latency", sql::latency(&Layout::Table, dialect, false)),
    ] {
        let mut sizes = Vec::new();
        for format in ["ArrowStream", "RowBinary", "JSONEachRow"] {
            ch.query(
                &format!(
                    "INSERT INTO FUNCTION file('{}', '{format}') {query}",
                    out.display()
                ),
                &params,
            )?;
            sizes.push(format!("{format} {} B", std::fs::metadata(&out)?.len()));
        }
        println!("answer {name}: {}", sizes.join(", "));
    }
    std::fs::remove_file(&out)?;
    Ok(())
}
