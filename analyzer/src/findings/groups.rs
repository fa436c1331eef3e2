//! Stage 2: per (message, expected group) verdicts: `lost/store`, `lost/consume`,
//! `duplicate/consume`, `redelivered`, `in_flight`, at most one per pair, in that precedence.

use polars::prelude::*;

use super::messages::{count, distinct_where, first_when, is_stage, lost_at_produce, n, own_times};
use crate::keys::{pair_base, pair_of_base, pair_partition};
use mqtrace_reader::columns::{outcome, stage};
use mqtrace_vocab::finding::{Kind, Where};

/// When a span's end counts as "long ago": `window_end - grace`.
#[derive(Clone, Copy, Debug)]
pub struct Passing {
    /// The latest span end in the input, ns.
    pub window_end_ns: i64,
    /// `--grace`, ns.
    pub grace_ns: i64,
}

fn join_left(left: LazyFrame, right: LazyFrame, on: &[&str]) -> LazyFrame {
    let keys: Vec<Expr> = on.iter().map(|k| col(*k)).collect();
    left.join(right, keys.clone(), keys, JoinArgs::new(JoinType::Left))
}

/// Expected groups: every group that delivered any message of a stream, from the first seq
/// it delivered; `pair_base` + seq is a message's `pair` key in that group.
pub fn expected_groups(spans: LazyFrame) -> LazyFrame {
    spans
        .filter(is_stage(stage::DELIVER).and(col("pair").is_not_null()))
        .group_by([pair_base()])
        .agg([
            col("stream").first(),
            col("group").first(),
            col("seq").min().alias("first_seq"),
        ])
}

/// What each group did with each message it saw, keyed by `pair` ((stream, group, seq) as
/// one integer: a single-key group-by is twice as fast as one on (`msg`, `group`)), with
/// `msg` and `group`; also the first delivery's start and first settle's end
/// (`delivered_ns`, `settled_ns`) for the latencies. (Taking the expected groups and the
/// high-water marks from these rows instead of the spans was tried: the extra aggregations
/// cost more than the passes they save.)
pub fn group_activity(spans: LazyFrame) -> LazyFrame {
    let settled_ok = is_stage(stage::CONSUME_ACK).and(
        col("outcome")
            .eq(lit(outcome::ACK))
            .or(col("outcome").eq(lit(outcome::SKIP_DUPLICATE))),
    );
    // Only plain columns and `when/then` in the aggregations (see `messages`).
    spans
        .filter(col("pair").is_not_null())
        .group_by([col("pair")])
        .agg([
            col("msg").first(),
            col("group").first(),
            count(is_stage(stage::DELIVER)).alias("delivered"),
            count(settled_ok).alias("settled_ok"),
            count(is_stage(stage::CONSUME_ACK).and(col("outcome").eq(lit(outcome::ACK))))
                .alias("acks"),
            count(is_stage(stage::CONSUME_ACK)).alias("settles"),
            when(is_stage(stage::DELIVER))
                .then(col("delivery_count"))
                .otherwise(lit(NULL).cast(DataType::Int64))
                .max()
                .alias("max_delivery_count"),
            first_when(is_stage(stage::DELIVER).and(own_times()), "start_ns").alias("delivered_ns"),
            first_when(is_stage(stage::CONSUME_ACK).and(own_times()), "end_ns").alias("settled_ns"),
            // A ledger delivery whose position a repeat named counts as a positioned one, so
            // that ledger mode tells copies apart as full mode does.
            count(delivered_copy().and(col("position_key").is_not_null()))
                .alias("positioned_deliveries"),
            distinct_where(delivered_copy(), "position_key").alias("delivered_copies"),
        ])
}

/// A delivery, or the earlier ledger delivery a repeat names.
fn delivered_copy() -> Expr {
    is_stage(stage::DELIVER).or(is_stage(stage::LEDGER_COPY))
}

/// Where each of the `pairs` was delivered last (`delivered_at`): looked up for the few
/// pairs with a finding, not aggregated for every pair.
fn delivered_at(spans: LazyFrame, pairs: LazyFrame) -> LazyFrame {
    spans
        .filter(is_stage(stage::DELIVER).and(col("position").is_not_null()))
        .select([col("pair"), col("position"), col("start_ns")])
        .join(
            pairs
                .select([col("pair")])
                .unique(None, UniqueKeepStrategy::Any),
            [col("pair")],
            [col("pair")],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("pair")])
        .agg([col("position")
            .sort_by([col("start_ns")], SortMultipleOptions::default())
            .last()
            .alias("delivered_at")])
}

/// The highest seq each group delivered (or settled), per partition and over all partitions.
/// Keyed by `pair_partition` and by `pair_base` (see [`pair_partition`]).
fn high_water(spans: LazyFrame, of_stage: u8, name: &str) -> (LazyFrame, LazyFrame) {
    let done = spans
        .filter(is_stage(of_stage).and(col("pair").is_not_null()))
        .select([pair_base(), col("partition"), col("seq")]);
    let per_partition = done
        .clone()
        .filter(col("partition").is_not_null())
        .group_by([pair_partition()])
        .agg([col("seq").max().alias(format!("{name}_part"))]);
    let any = done
        .group_by([col("pair_base")])
        .agg([col("seq").max().alias(format!("{name}_any"))]);
    (per_partition, any)
}

/// `{name}_passed`: the group went past the message (a higher seq on the message's partition,
/// or on any partition when the message's is unknown), or the message is older than the grace.
fn passed(name: &str, passing: Passing) -> Expr {
    let part = col(format!("{name}_part"));
    let any = col(format!("{name}_any"));
    let by_seq = when(col("partition").is_not_null())
        .then(part.gt(col("seq")))
        .otherwise(any.gt(col("seq")))
        .fill_null(lit(false));
    let cutoff = passing.window_end_ns.saturating_sub(passing.grace_ns);
    by_seq.or(col("last_end").lt(lit(cutoff)))
}

/// The later seq by which the group passed a message (null when it passed by age only), for
/// the evidence.
fn passed_seq(name: &str) -> Expr {
    let seq = when(col("partition").is_not_null())
        .then(col(format!("{name}_part")))
        .otherwise(col(format!("{name}_any")));
    when(seq.clone().gt(col("seq")).fill_null(lit(false)))
        .then(seq)
        .otherwise(lit(NULL).cast(DataType::Int64))
}

/// Per (message, expected group) findings; `activity` is [`group_activity`] of the spans.
pub fn pair_findings(
    spans: LazyFrame,
    messages: LazyFrame,
    activity: LazyFrame,
    passing: Passing,
) -> PolarsResult<LazyFrame> {
    let pairs = messages
        .filter(lost_at_produce().not())
        .join(
            expected_groups(spans.clone()),
            [col("stream")],
            [col("stream")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("seq").gt_eq(col("first_seq")))
        .with_column(pair_of_base());
    let (dp, da) = high_water(spans.clone(), stage::DELIVER, "delivered");
    let (sp, sa) = high_water(spans.clone(), stage::CONSUME_ACK, "settled");
    let activity = activity.drop(by_name(["msg", "group"], true, false));
    let pairs = join_left(pairs, activity, &["pair"]);
    let pairs = pairs.with_column(pair_partition());
    let pairs = join_left(pairs, dp, &["pair_partition"]);
    let pairs = join_left(pairs, da, &["pair_base"]);
    let pairs = join_left(pairs, sp, &["pair_partition"]);
    let pairs = join_left(pairs, sa, &["pair_base"]).with_columns([
        col("delivered").fill_null(lit(0u32)),
        col("settled_ok").fill_null(lit(0u32)),
        col("acks").fill_null(lit(0u32)),
        col("settles").fill_null(lit(0u32)),
        col("positioned_deliveries").fill_null(lit(0u32)),
        col("delivered_copies").fill_null(lit(0u32)),
    ]);

    let delivered_passed = passed("delivered", passing);
    let settled_passed = passed("settled", passing);
    let stored = col("ok_acks")
        .gt(lit(0u32))
        .or(col("deliveries").gt(lit(0u32)));
    let delivered = col("delivered").gt(lit(0u32));
    let unsettled = col("settled_ok").eq(lit(0u32));
    let lost_store = stored
        .clone()
        .and(delivered.clone().not())
        .and(delivered_passed.clone());
    let lost_consume = delivered
        .clone()
        .and(unsettled.clone())
        .and(settled_passed.clone());
    let duplicate_consume = col("acks").gt_eq(lit(2u32));
    // The same stored copy came twice: a repeated position, a delivery count ≥ 2, or (where
    // the system gives no positions) two deliveries at all.
    let same_copy_again = col("positioned_deliveries")
        .gt(col("delivered_copies"))
        .or(col("max_delivery_count")
            .gt_eq(lit(2i64))
            .fill_null(lit(false)))
        .or(col("positioned_deliveries")
            .eq(lit(0u32))
            .and(col("delivered").gt_eq(lit(2u32))));
    let redelivered = same_copy_again.and(col("settled_ok").gt_eq(lit(1u32)));
    let in_flight = delivered
        .clone()
        .not()
        .and(delivered_passed.clone().not())
        .or(delivered.clone().and(unsettled).and(settled_passed.not()));

    let code = |k: Kind| lit(k as u8).cast(DataType::UInt8);
    let kind_code = when(lost_store.clone())
        .then(code(Kind::Lost))
        .when(lost_consume.clone())
        .then(code(Kind::Lost))
        .when(duplicate_consume.clone())
        .then(code(Kind::Duplicate))
        .when(redelivered)
        .then(code(Kind::Redelivered))
        .when(in_flight)
        .then(code(Kind::InFlight))
        .otherwise(lit(NULL).cast(DataType::UInt8));
    let stage_code = when(lost_store.clone())
        .then(lit(Where::Store as u8).cast(DataType::UInt8))
        .when(lost_consume.clone().or(duplicate_consume))
        .then(lit(Where::Consume as u8).cast(DataType::UInt8))
        .otherwise(lit(NULL).cast(DataType::UInt8));
    let passed_by = when(lost_store)
        .then(passed_seq("delivered"))
        .when(lost_consume)
        .then(passed_seq("settled"))
        .otherwise(lit(NULL).cast(DataType::Int64));

    // Verdicts first, then the evidence fields for the few pairs that have one: `when/then`
    // evaluates every branch on every row.
    let judged = pairs
        .with_columns([kind_code.alias("kind"), stage_code.alias("stage")])
        .filter(col("kind").is_not_null())
        .cache();
    let judged = join_left(judged.clone(), delivered_at(spans, judged), &["pair"]);
    Ok(judged.select([
        col("kind"),
        col("stage"),
        col("stream"),
        col("seq"),
        col("group"),
        n("ok_acks"),
        n("delivered"),
        n("settles"),
        n("acks"),
        passed_by.alias("passed_seq"),
        col("last_end"),
        col("delivered_at"),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtrace_reader::columns::{Dictionaries, SpanColumns, SpanRow};
    use mqtrace_vocab::Stage;
    use std::borrow::Cow;

    fn delivery<'a>(seq: i64, group: &'a str, position: Option<&'a str>) -> SpanRow<'a> {
        SpanRow {
            producer_id: "p",
            stream: "orders",
            seq,
            stage: Stage::Deliver,
            group: Some(Cow::Borrowed(group)),
            position: position.map(Cow::Borrowed),
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            ..SpanRow::default()
        }
    }

    /// Copies are told apart by position within each (message, group): a position seen twice
    /// is a redelivery, two positions are two stored copies, no positions count nothing.
    #[test]
    fn group_activity_counts_deliveries_and_distinct_copies_per_pair() {
        let mut columns = SpanColumns::default();
        for row in [
            delivery(1, "g1", Some("0/7")),
            delivery(1, "g1", Some("0/7")),
            delivery(1, "g1", Some("0/9")),
            delivery(1, "g2", Some("0/7")),
            delivery(2, "g1", None),
            delivery(2, "g1", None),
            SpanRow {
                stage: Stage::ConsumeAck,
                outcome: Some(outcome::ACK),
                position: None,
                ..delivery(1, "g1", None)
            },
        ] {
            columns.push(row);
        }
        columns.remap_into(&mut Dictionaries::default());
        let activity = group_activity(
            crate::input::frame(columns.into_parts())
                .expect("frame")
                .lazy(),
        )
        .sort(["msg", "group"], SortMultipleOptions::default())
        .collect()
        .expect("plan");
        let get = |name: &str| -> Vec<Option<u32>> {
            activity
                .column(name)
                .and_then(|c| c.cast(&DataType::UInt32))
                .map(|c| c.u32().expect("u32").iter().collect())
                .expect(name)
        };
        // Rows: (seq 1, g1), (seq 1, g2), (seq 2, g1).
        assert_eq!(get("delivered"), [Some(3), Some(1), Some(2)]);
        assert_eq!(get("positioned_deliveries"), [Some(3), Some(1), Some(0)]);
        assert_eq!(get("delivered_copies"), [Some(2), Some(1), Some(0)]);
        assert_eq!(get("acks"), [Some(1), Some(0), Some(0)]);
    }
}
