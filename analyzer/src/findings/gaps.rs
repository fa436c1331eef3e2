//! `unobserved`: seqs no span carries, between seqs of the same stream that some span does.

use polars::prelude::*;

/// Gaps wider than this are reported as one finding (at the gap's first seq) instead of one
/// per seq: a jump of billions is a producer restart or a bad record, not billions of losses.
pub const MAX_EXPANDED_GAP: i64 = 1_000_000;

/// `unobserved` findings.
pub fn unobserved(spans: LazyFrame) -> PolarsResult<LazyFrame> {
    let seqs = spans
        .select([col("stream"), col("seq")])
        .unique(None, UniqueKeepStrategy::Any)
        .sort(
            ["stream", "seq"],
            SortMultipleOptions::default().with_maintain_order(false),
        )
        .with_column(
            col("seq")
                .shift(lit(-1))
                .over([col("stream")])?
                .alias("next_seq"),
        )
        .filter(col("next_seq").gt(col("seq") + lit(1i64)))
        .with_column((col("next_seq") - col("seq") - lit(1i64)).alias("width"));
    let evidence = |e: Expr| {
        concat_str(
            [
                lit("no span carries this seq; the stream has seq "),
                col("seq").cast(DataType::String),
                lit(" and seq "),
                col("next_seq").cast(DataType::String),
                e,
            ],
            "",
            true,
        )
    };
    let small = seqs
        .clone()
        .filter(col("width").lt_eq(lit(MAX_EXPANDED_GAP)))
        .select([
            col("stream"),
            evidence(lit("")).alias("evidence"),
            int_ranges(
                col("seq") + lit(1i64),
                col("next_seq"),
                lit(1i64),
                DataType::Int64,
            )
            .alias("missing"),
        ])
        .explode(
            by_name(["missing"], true, false),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .select([
            lit("unobserved").alias("kind"),
            lit(NULL).cast(DataType::String).alias("stage"),
            col("stream"),
            col("missing").alias("seq"),
            col("evidence"),
        ]);
    let wide = seqs.filter(col("width").gt(lit(MAX_EXPANDED_GAP))).select([
        lit("unobserved").alias("kind"),
        lit(NULL).cast(DataType::String).alias("stage"),
        col("stream"),
        (col("seq") + lit(1i64)).alias("seq"),
        evidence(concat_str(
            [
                lit("; this finding stands for all "),
                col("width").cast(DataType::String),
                lit(" seqs in between"),
            ],
            "",
            true,
        ))
        .alias("evidence"),
    ]);
    concat([small, wide], UnionArgs::default())
}
