//! `mqtrace clickhouse ddl`: an optional narrow table beside the Collector's `otel_traces`,
//! fed by a materialized view from the Collector's own inserts. It keeps only the spans the
//! analysis reads (stage, messaging and telemetry spans) and only the columns it reads,
//! ordered by (producer id, stream); on a cluster the view writes through a Distributed table
//! sharded by `cityHash64(producer id, stream)`, so that every message's spans meet on one
//! shard. `mqtrace analyze` reads `TABLE_mqtrace` instead of `TABLE` when it exists.

use mqtrace_vocab::attr;

/// The columns of the Collector's table the narrow copy keeps: what the analysis reads.
const COLUMNS: &str = "Timestamp, TraceId, SpanId, SpanName, Duration, SpanAttributes, \
    ParentSpanId, SpanKind, StatusCode, ServiceName, `Links.TraceId`, `Links.SpanId`";

/// The narrow table's name beside `table`.
pub fn narrow_name(table: &str) -> String {
    format!("{table}_mqtrace")
}

/// `name` as a quoted identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// `text` as a string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The statements, in order, for `database.table` (the Collector's table), on `cluster` when
/// given.
pub fn statements(database: &str, table: &str, cluster: Option<&str>) -> Vec<String> {
    let db = ident(database);
    let narrow = narrow_name(table);
    let on = cluster.map_or(String::new(), |c| format!(" ON CLUSTER {}", ident(c)));
    let producer = format!("SpanAttributes[{}]", literal(attr::PRODUCER_ID));
    let stream = format!("SpanAttributes[{}]", literal(attr::STREAM));
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {db}.{narrow_q}{on}
(
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    `Links.TraceId` Array(String) CODEC(ZSTD(1)),
    `Links.SpanId` Array(String) CODEC(ZSTD(1)),
    Producer String MATERIALIZED {producer},
    Stream String MATERIALIZED {stream}
)
ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (Producer, Stream, Timestamp)",
        narrow_q = ident(&narrow)
    )];
    // On a cluster the view writes through a Distributed table: each message's spans go to
    // the shard of its (producer, stream).
    let target = match cluster {
        Some(c) => {
            let all = ident(&format!("{narrow}_all"));
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{all}{on} AS {db}.{narrow_q}
ENGINE = Distributed({cluster}, {database_l}, {narrow_l}, cityHash64({producer}, {stream}))",
                narrow_q = ident(&narrow),
                cluster = literal(c),
                database_l = literal(database),
                narrow_l = literal(&narrow),
            ));
            all
        }
        None => ident(&narrow),
    };
    out.push(format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{mv}{on} TO {db}.{target} AS
SELECT {columns}
FROM {db}.{source}
WHERE mapContains(SpanAttributes, {stage})
   OR mapContains(SpanAttributes, {telemetry})
   OR arrayExists(k -> startsWith(k, {messaging}), mapKeys(SpanAttributes))",
        mv = ident(&format!("{narrow}_mv")),
        columns = COLUMNS,
        source = ident(table),
        stage = literal(attr::STAGE),
        telemetry = literal(attr::TELEMETRY_DROPPED),
        messaging = literal(attr::MESSAGING_PREFIX),
    ));
    out
}

/// [`statements`] as one script.
pub fn script(database: &str, table: &str, cluster: Option<&str>) -> String {
    let mut out = format!(
        "-- mqtrace: a narrow copy of {database}.{table} for `mqtrace analyze` (SPEC §4c).\n\
         -- Spans inserted before these statements are not copied: to copy them, run\n\
         --   INSERT INTO {database}.{narrow} SELECT {COLUMNS}\n\
         --     FROM {database}.{table} WHERE <the view's condition>\n",
        narrow = narrow_name(table)
    );
    for s in statements(database, table, cluster) {
        out.push_str(&s);
        out.push_str(";\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_a_cluster_shards_by_stream() {
        let s = script("otel", "otel`traces", Some("c1"));
        assert!(s.contains("`otel`.`otel\\`traces_mqtrace` ON CLUSTER `c1`"));
        assert!(s.contains("Distributed('c1', 'otel', 'otel`traces_mqtrace', cityHash64("));
        assert!(s.contains("TO `otel`.`otel\\`traces_mqtrace_all`"));
        let one = script("otel", "otel_traces", None);
        assert!(!one.contains("Distributed") && !one.contains("ON CLUSTER"));
    }
}
