//! Per-stage latency percentiles: produce → store_ack per stream (one host's clock),
//! store_ack → deliver and deliver → consume_ack per stream and group. store_ack → deliver
//! spans two hosts, so clock skew shifts it: read it as a trend, not an exact figure.

use polars::prelude::*;

/// The edges of the latency histogram, in ms: a 1-2-5 series from 10 µs to 100 s. Bucket 0
/// holds gaps below the first edge, bucket `i` gaps in `[EDGES[i-1], EDGES[i])`, the last one
/// gaps of 100 s or more.
pub const LATENCY_EDGES_MS: [f64; 22] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0,
    2_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0, 100_000.0,
];

/// The hops measured, as the report names them (the ClickHouse source numbers them 0, 1, 2
/// in this order).
pub const LATENCY_HOPS: [&str; 3] = [
    "produce→store_ack",
    "store_ack→deliver",
    "deliver→consume_ack",
];

/// The name of the column counting the gaps below zero (clocks skewed between two hosts).
pub const NEGATIVE_COLUMN: &str = "negative";

/// The name of the column counting the gaps at or above edge `i`.
pub fn at_least_column(i: usize) -> String {
    format!("at_least_{i}")
}

fn percentiles(gap_ns: Expr, histogram: bool) -> Vec<Expr> {
    let ms = gap_ns.cast(DataType::Float64) / lit(1e6);
    // A histogram as one comparison and sum per edge, in the same group-by as the
    // percentiles: no feature of polars' own (log, cut) and no second pass.
    let buckets = histogram.then(|| {
        let negative = ms
            .clone()
            .lt(lit(0.0))
            .cast(DataType::UInt64)
            .sum()
            .alias(NEGATIVE_COLUMN);
        LATENCY_EDGES_MS
            .iter()
            .enumerate()
            .map({
                let ms = ms.clone();
                move |(i, edge)| {
                    ms.clone()
                        .gt_eq(lit(*edge))
                        .cast(DataType::UInt64)
                        .sum()
                        .alias(at_least_column(i))
                }
            })
            .chain([negative])
    });
    let mut out = vec![
        ms.clone().count().alias("count"),
        ms.clone()
            .quantile(lit(0.5), QuantileMethod::Nearest)
            .alias("p50_ms"),
        ms.clone()
            .quantile(lit(0.9), QuantileMethod::Nearest)
            .alias("p90_ms"),
        ms.clone()
            .quantile(lit(0.99), QuantileMethod::Nearest)
            .alias("p99_ms"),
        ms.max().alias("max_ms"),
    ];
    out.extend(buckets.into_iter().flatten());
    out
}

/// One row per (hop, stream, group): `hop`, `stream`, `group` (null for produce → store_ack),
/// `count`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`, and with `histogram` the counts at or
/// above each of [`LATENCY_EDGES_MS`] (`at_least_0`, …) and below zero (`negative`).
///
/// The times come from [`messages`](super::messages) (`produced`, `stored`) and
/// [`group_activity`](super::group_activity) (`delivered_ns`, `settled_ns`): no pass of
/// its own over the spans.
pub fn latency(
    messages: LazyFrame,
    activity: LazyFrame,
    histogram: bool,
) -> PolarsResult<LazyFrame> {
    let per_message = messages.select([col("msg"), col("stream"), col("produced"), col("stored")]);
    let per_group = activity
        .select([
            col("msg"),
            col("group"),
            col("delivered_ns").alias("delivered"),
            col("settled_ns").alias("settled"),
        ])
        .join(
            per_message.clone(),
            [col("msg")],
            [col("msg")],
            JoinArgs::new(JoinType::Left),
        );
    let hop = |lf: LazyFrame, name: &str, from: &str, to: &str, by_group: bool| {
        let mut keys = vec![col("stream")];
        if by_group {
            keys.push(col("group"));
        }
        let mut out = lf
            .filter(col(from).is_not_null().and(col(to).is_not_null()))
            .group_by(keys)
            .agg(percentiles(col(to) - col(from), histogram))
            .with_column(lit(name.to_owned()).alias("hop"));
        if !by_group {
            out = out.with_column(lit(NULL).cast(DataType::UInt32).alias("group"));
        }
        let mut columns = vec![
            col("hop"),
            col("stream"),
            col("group"),
            col("count"),
            col("p50_ms"),
            col("p90_ms"),
            col("p99_ms"),
            col("max_ms"),
        ];
        if histogram {
            columns.extend((0..LATENCY_EDGES_MS.len()).map(|i| col(at_least_column(i))));
            columns.push(col(NEGATIVE_COLUMN));
        }
        out.select(columns)
    };
    concat(
        [
            hop(per_message, LATENCY_HOPS[0], "produced", "stored", false),
            hop(
                per_group.clone(),
                LATENCY_HOPS[1],
                "stored",
                "delivered",
                true,
            ),
            hop(per_group, LATENCY_HOPS[2], "delivered", "settled", true),
        ],
        UnionArgs::default(),
    )
}
