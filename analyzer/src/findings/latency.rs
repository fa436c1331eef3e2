//! Per-stage latency percentiles: produce → store_ack per stream (one host's clock),
//! store_ack → deliver and deliver → consume_ack per stream and group. store_ack → deliver
//! spans two hosts, so clock skew shifts it: read it as a trend, not an exact figure.

use polars::prelude::*;

fn percentiles(gap_ns: Expr) -> Vec<Expr> {
    let ms = gap_ns.cast(DataType::Float64) / lit(1e6);
    vec![
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
    ]
}

/// One row per (hop, stream, group): `hop`, `stream`, `group` (null for produce → store_ack),
/// `count`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`.
///
/// The times come from [`messages`](super::messages) (`produced`, `stored`) and
/// [`group_activity`](super::group_activity) (`delivered_ns`, `settled_ns`): no pass of
/// its own over the spans.
pub fn latency(messages: LazyFrame, activity: LazyFrame) -> PolarsResult<LazyFrame> {
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
            .agg(percentiles(col(to) - col(from)))
            .with_column(lit(name.to_owned()).alias("hop"));
        if !by_group {
            out = out.with_column(lit(NULL).cast(DataType::UInt32).alias("group"));
        }
        out.select([
            col("hop"),
            col("stream"),
            col("group"),
            col("count"),
            col("p50_ms"),
            col("p90_ms"),
            col("p99_ms"),
            col("max_ms"),
        ])
    };
    concat(
        [
            hop(
                per_message,
                "produce→store_ack",
                "produced",
                "stored",
                false,
            ),
            hop(
                per_group.clone(),
                "store_ack→deliver",
                "stored",
                "delivered",
                true,
            ),
            hop(
                per_group,
                "deliver→consume_ack",
                "delivered",
                "settled",
                true,
            ),
        ],
        UnionArgs::default(),
    )
}
