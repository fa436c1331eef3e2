//! `unobserved`: seqs no span carries, between seqs of the same stream that some span does.

use mqtrace_vocab::finding::Kind;
use polars::prelude::*;

use super::messages::{kind, stage_of};

/// Gaps wider than this are reported as one finding (at the gap's first seq) instead of one
/// per seq: a jump of billions is a producer restart or a bad record, not billions of losses.
pub const MAX_EXPANDED_GAP: i64 = 1_000_000;

/// `unobserved` findings, from [`messages`](super::messages) (one row per message seen):
/// sorted by the message key, which orders by stream and then seq, each message's successor
/// in the same stream shows the hole between them.
pub fn unobserved(messages: LazyFrame) -> PolarsResult<LazyFrame> {
    let seqs = messages
        .select([col("msg"), col("stream"), col("seq")])
        .sort(
            ["msg"],
            SortMultipleOptions::default().with_maintain_order(false),
        )
        .with_columns([
            col("seq").shift(lit(-1)).alias("next_seq"),
            col("stream").shift(lit(-1)).alias("next_stream"),
        ])
        .filter(
            col("next_stream")
                .eq(col("stream"))
                .and(col("next_seq").gt(col("seq") + lit(1i64))),
        )
        .with_column((col("next_seq") - col("seq") - lit(1i64)).alias("width"))
        // Both kinds of hole below read it: sort once.
        .cache();
    let small = seqs
        .clone()
        .filter(col("width").lt_eq(lit(MAX_EXPANDED_GAP)))
        .select([
            col("stream"),
            col("seq").alias("prev_seq"),
            col("next_seq"),
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
            kind(Kind::Unobserved),
            stage_of(None),
            col("stream"),
            col("missing").alias("seq"),
            col("prev_seq"),
            col("next_seq"),
            lit(NULL).cast(DataType::Int64).alias("stands_for"),
        ]);
    let wide = seqs.filter(col("width").gt(lit(MAX_EXPANDED_GAP))).select([
        kind(Kind::Unobserved),
        stage_of(None),
        col("stream"),
        (col("seq") + lit(1i64)).alias("seq"),
        col("seq").alias("prev_seq"),
        col("next_seq"),
        col("width").alias("stands_for"),
    ]);
    concat([small, wide], UnionArgs::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtrace_reader::columns::message_key;

    fn messages(rows: &[(u32, i64)]) -> LazyFrame {
        let msg: Vec<u64> = rows.iter().map(|(s, q)| message_key(*s, *q)).collect();
        let stream: Vec<u32> = rows.iter().map(|r| r.0).collect();
        let seq: Vec<i64> = rows.iter().map(|r| r.1).collect();
        df!("msg" => msg, "stream" => stream, "seq" => seq)
            .expect("frame")
            .lazy()
    }

    #[test]
    fn holes_within_a_stream_are_listed_and_wide_ones_summarised() {
        // Out of order on purpose; stream 0 ends at 5 and stream 1 starts at 10: no hole
        // spans the two streams.
        let found = unobserved(messages(&[
            (1, 2_000_010),
            (0, 5),
            (1, 10),
            (0, 1),
            (0, 2),
            (1, 11),
        ]))
        .and_then(|lf| {
            lf.sort(["stream", "seq"], SortMultipleOptions::default())
                .collect()
        })
        .expect("plan");
        let stream: Vec<Option<u32>> = found
            .column("stream")
            .expect("stream")
            .u32()
            .expect("u32")
            .iter()
            .collect();
        let seq: Vec<Option<i64>> = found
            .column("seq")
            .expect("seq")
            .i64()
            .expect("i64")
            .iter()
            .collect();
        assert_eq!(stream, [Some(0), Some(0), Some(1)]);
        assert_eq!(seq, [Some(3), Some(4), Some(12)]);
        let stands_for: Vec<Option<i64>> = found
            .column("stands_for")
            .expect("stands_for")
            .i64()
            .expect("i64")
            .iter()
            .collect();
        assert_eq!(stands_for, [None, None, Some(1_999_998)]);
    }
}
