//! The verdicts of SPEC §4 as polars lazy plans over the span columns: each stage a
//! `LazyFrame -> LazyFrame` function on integer keys (stream code, seq, group code,
//! partition code), all collected in one pass.

mod gaps;
mod groups;
mod latency;
mod messages;
mod rows;
mod stopped;

pub use gaps::MAX_EXPANDED_GAP;
pub use groups::Passing;
pub use latency::{LATENCY_EDGES_MS, LATENCY_HOPS, NEGATIVE_COLUMN, at_least_column};
pub use rows::{Evidence, Names, Passed, decode};
pub use stopped::{Stopped, qualify};

use gaps::unobserved;
use groups::{group_activity, pair_findings};
use latency::latency;
use messages::{details, message_findings, messages};

use polars::prelude::*;

/// The findings and the counts the summary needs.
#[derive(Debug)]
pub struct Collected {
    /// One row per finding: `kind`, `stage` (codes), `stream`, `seq`, `group`, the evidence's
    /// fields, `message_id`, `partition`, `trace_ids`, `positions`: [`decode`] reads it.
    pub findings: DataFrame,
    /// Messages seen (distinct (stream, seq) with any span).
    pub messages: u64,
    /// Per-stage latency percentiles (see [`latency`]).
    pub latency: DataFrame,
}

/// Every finding of `spans` (the frame built by [`crate::input::frame`]); `covered`: runs of
/// clean ledger seqs (`stream`, `seq`, `last`), seen without rows. With `histograms`, the
/// latency rows also count gaps per bucket (for plots).
pub fn find(
    spans: LazyFrame,
    covered: LazyFrame,
    passing: Passing,
    histograms: bool,
) -> PolarsResult<Collected> {
    let messages = messages(spans.clone()).cache();
    let per_message = message_findings(messages.clone())?;
    let holes = unobserved(messages.clone(), covered)?;
    let activity = group_activity(spans.clone()).cache();
    let per_group = pair_findings(spans.clone(), messages.clone(), activity.clone(), passing)?;
    let latency = latency(messages.clone(), activity, histograms)?;
    let no_group = |lf: LazyFrame| lf.with_column(lit(NULL).cast(DataType::UInt32).alias("group"));
    // Each part carries the evidence fields of its kinds; the union fills the others with
    // nulls.
    let findings = concat(
        [no_group(per_message), no_group(holes), per_group],
        UnionArgs {
            to_supertypes: true,
            diagonal: true,
            ..UnionArgs::default()
        },
    )?
    .with_column(crate::keys::message_key_expr())
    .cache();
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
        .drop(by_name(["msg"], true, false));
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
