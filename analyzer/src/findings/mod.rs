//! The verdicts of SPEC §4 as polars lazy plans over the span columns: each stage a
//! `LazyFrame -> LazyFrame` function on integer keys (stream code, seq, group code,
//! partition code), all collected in one pass.

mod gaps;
mod groups;
mod latency;
mod messages;

pub use gaps::{MAX_EXPANDED_GAP, unobserved};
pub use groups::{Passing, expected_groups, group_activity, pair_findings};
pub use latency::latency;
pub use messages::{details, message_findings, messages};

use polars::prelude::*;

/// The findings and the counts the summary needs.
#[derive(Debug)]
pub struct Collected {
    /// One row per finding: `kind`, `stage`, `stream`, `seq`, `group`, `evidence`,
    /// `message_id`, `partition`, `trace_ids`.
    pub findings: DataFrame,
    /// Messages seen (distinct (stream, seq) with any span).
    pub messages: u64,
    /// Per-stage latency percentiles (see [`latency`]).
    pub latency: DataFrame,
}

/// The message's distinct positions, comma-separated, for the evidence texts.
fn positions_text() -> Expr {
    let joined = col("positions").list().join(lit(", "), true);
    when(joined.clone().fill_null(lit("")).eq(lit("")))
        .then(lit("none given"))
        .otherwise(joined)
}

/// Every finding of `spans` (the frame built by [`crate::input::frame`]).
pub fn find(spans: LazyFrame, passing: Passing) -> PolarsResult<Collected> {
    let messages = messages(spans.clone()).cache();
    let per_message = message_findings(messages.clone())?;
    let holes = unobserved(messages.clone())?;
    let activity = group_activity(spans.clone()).cache();
    let per_group = pair_findings(spans.clone(), messages.clone(), activity.clone(), passing)?;
    let latency = latency(messages.clone(), activity)?;
    let columns = || {
        [
            col("kind"),
            col("stage"),
            col("stream"),
            col("seq"),
            col("group"),
            col("evidence"),
        ]
    };
    let no_group = |lf: LazyFrame| {
        lf.with_column(lit(NULL).cast(DataType::UInt32).alias("group"))
            .select(columns())
    };
    let findings = concat(
        [
            no_group(per_message),
            no_group(holes),
            per_group.select(columns()),
        ],
        UnionArgs {
            to_supertypes: true,
            ..UnionArgs::default()
        },
    )?
    .cache();
    // Joined on the message key: one integer, not (stream, seq).
    let findings = findings.with_column(
        (col("stream").cast(DataType::UInt64) * lit(1u64 << mqtrace_vocab::keys::SEQ_BITS)
            + col("seq").cast(DataType::UInt64))
        .alias("msg"),
    );
    let keys = findings
        .clone()
        .select([col("msg")])
        .unique(None, UniqueKeepStrategy::Any);
    let findings = findings
        .join(
            messages.clone().select([col("msg"), col("partition")]),
            [col("msg")],
            [col("msg")],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            details(spans, keys),
            [col("msg")],
            [col("msg")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            col("evidence")
                .str()
                .replace(lit(messages::POSITIONS), positions_text(), true)
                .str()
                .replace(
                    lit(messages::COPIES),
                    col("positions").list().len().cast(DataType::String),
                    true,
                )
                .alias("evidence"),
        )
        .drop(by_name(["positions", "msg"], true, false));
    let counts = messages.select([len().alias("messages")]);
    let mut frames = LazyFrame::collect_all_with_engine(
        vec![
            findings.logical_plan,
            counts.logical_plan,
            latency.logical_plan,
        ],
        Engine::Auto,
        OptFlags::default(),
    )?;
    let latency = frames.pop().unwrap_or_default();
    let counts = frames.pop().unwrap_or_default();
    let findings = frames.pop().unwrap_or_default();
    let messages = counts
        .column("messages")
        .ok()
        .and_then(|c| c.get(0).ok())
        .and_then(|v| v.extract::<u64>())
        .unwrap_or(0);
    Ok(Collected {
        findings,
        messages,
        latency,
    })
}
