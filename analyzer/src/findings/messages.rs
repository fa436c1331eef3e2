//! Stage 1: one row per message (stream, seq), with what its spans say.

use polars::prelude::*;

use mqtrace_reader::columns::{outcome, stage};
use mqtrace_vocab::finding::{Kind, Where};

/// A finding's `kind` column value.
pub(crate) fn kind(k: Kind) -> Expr {
    lit(k as u8).cast(DataType::UInt8).alias("kind")
}

/// A finding's `stage` column value.
pub(crate) fn stage_of(w: Option<Where>) -> Expr {
    match w {
        Some(w) => lit(w as u8).cast(DataType::UInt8),
        None => lit(NULL).cast(DataType::UInt8),
    }
    .alias("stage")
}

/// A count column as the findings carry evidence numbers.
pub(crate) fn n(name: &str) -> Expr {
    col(name).cast(DataType::Int64)
}

pub(crate) fn is_stage(s: u8) -> Expr {
    col("stage").eq(lit(s))
}

pub(crate) fn count(cond: Expr) -> Expr {
    cond.cast(DataType::UInt32).sum()
}

/// A `store_ack` with outcome `ok`.
/// The earliest `column` among the rows where `cond` holds (vectorized, unlike a `filter`
/// inside the aggregation).
pub(crate) fn first_when(cond: Expr, column: &str) -> Expr {
    when(cond)
        .then(col(column))
        .otherwise(lit(NULL).cast(DataType::Int64))
        .min()
}

pub(crate) fn ok_ack() -> Expr {
    is_stage(stage::STORE_ACK).and(col("outcome").eq(lit(outcome::OK)))
}

/// How many distinct values `key` takes where `cond` holds (per group, in an aggregation):
/// the other rows become nulls, which `n_unique` counts as one more value.
pub(crate) fn distinct_where(cond: Expr, key: &str) -> Expr {
    let kept = when(cond.and(col(key).is_not_null()))
        .then(col(key))
        .otherwise(lit(NULL).cast(DataType::UInt64));
    (kept.clone().n_unique().cast(DataType::Int64)
        - kept.null_count().gt(lit(0)).cast(DataType::Int64))
    .cast(DataType::UInt32)
}

/// A row that names a stored copy by its position: an `ok` answer, a delivery, or the earlier
/// ledger delivery a repeat's `deliver` span names ([`stage::LEDGER_COPY`]).
pub(crate) fn stored_copy() -> Expr {
    ok_ack()
        .or(is_stage(stage::DELIVER))
        .or(is_stage(stage::LEDGER_COPY))
}

/// A row with times of its own: a full span, not a ledger seq (which has its ledger's).
pub(crate) fn own_times() -> Expr {
    col("ledger").not()
}

/// `position_key` where `cond` holds, null elsewhere.
fn stored_key(cond: Expr) -> Expr {
    when(cond)
        .then(col("position_key"))
        .otherwise(lit(NULL).cast(DataType::UInt64))
}

/// Per message: `produce_n`, `ok_acks`, `store_answers`, `deliveries`, `copy_min` and
/// `copy_max` (the least and greatest position hash among ok acks and deliveries: they differ
/// when it was stored twice or more), `partition`, `last_end`.
/// Only what the verdicts need: details for the report are looked up later, for the few
/// messages with a finding ([`details`]).
pub fn messages(spans: LazyFrame) -> LazyFrame {
    // Only plain columns and `when/then` go into the aggregations: a `filter` inside one is
    // evaluated group by group, which on millions of messages costs more than the rest.
    spans.group_by([col("msg")]).agg([
        col("stream").first(),
        col("seq").first(),
        count(is_stage(stage::PRODUCE)).alias("produce_n"),
        count(ok_ack()).alias("ok_acks"),
        count(is_stage(stage::STORE_ACK)).alias("store_answers"),
        count(is_stage(stage::DELIVER)).alias("deliveries"),
        col("partition").min().alias("partition"),
        col("end_ns").max().alias("last_end"),
        // For the latency percentiles (see `latency`): full spans only, a ledger's interval
        // is no message's latency.
        first_when(is_stage(stage::PRODUCE).and(own_times()), "start_ns").alias("produced"),
        first_when(ok_ack().and(own_times()), "end_ns").alias("stored"),
        // Two stored copies or more ⇔ the positions' hashes differ; no count is needed (an
        // `n_unique` per message cost a tenth of the analysis), the evidence counts the
        // positions of the few duplicates.
        stored_key(stored_copy()).min().alias("copy_min"),
        stored_key(stored_copy()).max().alias("copy_max"),
    ])
}

/// For the messages in `keys` (`msg`, unique): `message_id`, `trace_ids` (sorted) and
/// `positions` (the distinct stored positions, sorted).
pub fn details(spans: LazyFrame, keys: LazyFrame) -> LazyFrame {
    spans
        .join(
            keys,
            [col("msg")],
            [col("msg")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("msg")])
        .agg([
            col("message_id").drop_nulls().first().alias("message_id"),
            col("ledger").any(true).alias("ledger"),
            col("trace_id")
                .unique()
                .sort(SortOptions::default())
                .alias("trace_ids"),
            col("position")
                .filter(stored_copy())
                .drop_nulls()
                .unique()
                .sort(SortOptions::default())
                .alias("positions"),
        ])
}

/// A message whose attempts all failed and that nobody delivered: only `lost/produce`.
pub(crate) fn lost_at_produce() -> Expr {
    col("produce_n")
        .gt(lit(0u32))
        .and(col("ok_acks").eq(lit(0u32)))
        .and(col("deliveries").eq(lit(0u32)))
}

/// Message-level findings: `lost/produce`, `duplicate/produce`, `telemetry_gap`, each with
/// the fields its evidence is built from ([`super::rows`]).
pub fn message_findings(messages: LazyFrame) -> PolarsResult<LazyFrame> {
    let lost = messages.clone().filter(lost_at_produce()).select([
        kind(Kind::Lost),
        stage_of(Some(Where::Produce)),
        col("stream"),
        col("seq"),
        n("produce_n").alias("attempts"),
        n("store_answers").alias("answers"),
    ]);
    let two_positions = col("copy_min").neq(col("copy_max")).fill_null(lit(false));
    let stored_twice = two_positions.clone().or(col("copy_max")
        .is_null()
        .and(col("ok_acks").gt_eq(lit(2u32))));
    let duplicate = messages.clone().filter(stored_twice).select([
        kind(Kind::Duplicate),
        stage_of(Some(Where::Produce)),
        col("stream"),
        col("seq"),
        n("ok_acks"),
        two_positions.alias("two_positions"),
    ]);
    let gap = messages
        .filter(
            col("deliveries")
                .gt(lit(0u32))
                .and(col("produce_n").eq(lit(0u32))),
        )
        .select([
            kind(Kind::TelemetryGap),
            stage_of(None),
            col("stream"),
            col("seq"),
            n("deliveries"),
        ]);
    concat(
        [lost, duplicate, gap],
        UnionArgs {
            diagonal: true,
            ..UnionArgs::default()
        },
    )
}
