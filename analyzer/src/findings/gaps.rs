//! `unobserved`: seqs no span carries, between seqs of the same stream that some span does.

use mqtrace_vocab::finding::Kind;
use polars::prelude::*;

use super::messages::{kind, stage_of};

/// Gaps wider than this are reported as one finding (at the gap's first seq) instead of one
/// per seq: a jump of billions is a producer restart or a bad record, not billions of losses.
pub const MAX_EXPANDED_GAP: i64 = 1_000_000;

/// `unobserved` findings, from [`messages`](super::messages) (one row per message seen) and
/// `covered` (`stream`, `seq`, `last`: runs of clean ledger seqs, observed without rows):
/// sorted by the key of each one's first seq, which orders by stream and then seq, each
/// one's successor in the same stream shows the hole between them (they never overlap).
pub fn unobserved(messages: LazyFrame, covered: LazyFrame) -> PolarsResult<LazyFrame> {
    let points = messages.select([
        col("msg"),
        col("stream"),
        col("seq"),
        col("seq").alias("last"),
    ]);
    let runs = covered.select([
        crate::keys::message_key_expr(),
        col("stream"),
        col("seq"),
        col("last"),
    ]);
    let seqs = concat([points, runs], UnionArgs::default())?
        .sort(
            ["msg"],
            SortMultipleOptions::default().with_maintain_order(false),
        )
        .with_columns([
            col("seq").shift(lit(-1)).alias("next_seq"),
            col("stream").shift(lit(-1)).alias("next_stream"),
        ])
        // From here `seq` is the last seen before the hole.
        .with_column(col("last").alias("seq"))
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

    fn covered(runs: &[(u32, i64, i64)]) -> LazyFrame {
        let stream: Vec<u32> = runs.iter().map(|r| r.0).collect();
        let seq: Vec<i64> = runs.iter().map(|r| r.1).collect();
        let last: Vec<i64> = runs.iter().map(|r| r.2).collect();
        df!("stream" => stream, "seq" => seq, "last" => last)
            .expect("frame")
            .lazy()
    }

    /// (stream, seq, stands_for) of the holes found, sorted.
    fn holes(found: PolarsResult<LazyFrame>) -> Vec<(u32, i64, Option<i64>)> {
        let found = found
            .and_then(|lf| {
                lf.sort(["stream", "seq"], SortMultipleOptions::default())
                    .collect()
            })
            .expect("plan");
        let col = |name: &str| found.column(name).expect(name).clone();
        let (stream, seq, stands_for) = (col("stream"), col("seq"), col("stands_for"));
        let (stream, seq, stands_for) = (
            stream.u32().expect("u32").clone(),
            seq.i64().expect("i64").clone(),
            stands_for.i64().expect("i64").clone(),
        );
        stream
            .iter()
            .zip(seq.iter())
            .zip(stands_for.iter())
            .map(|((s, q), w)| (s.expect("stream"), q.expect("seq"), w))
            .collect()
    }

    #[test]
    fn holes_within_a_stream_are_listed_and_wide_ones_summarised() {
        // Out of order on purpose; stream 0 ends at 5 and stream 1 starts at 10: no hole
        // spans the two streams.
        let found = unobserved(
            messages(&[(1, 2_000_010), (0, 5), (1, 10), (0, 1), (0, 2), (1, 11)]),
            covered(&[]),
        );
        assert_eq!(
            holes(found),
            [(0, 3, None), (0, 4, None), (1, 12, Some(1_999_998))]
        );
    }

    #[test]
    fn clean_ledger_runs_count_as_observed() {
        // Stream 1 observed 13..=30 and 40..=2_000_000 through clean ledger seqs only.
        let found = unobserved(
            messages(&[(1, 10), (1, 11), (1, 2_000_003), (0, 1)]),
            covered(&[(1, 40, 2_000_000), (1, 13, 30), (0, 2, 9)]),
        );
        let want: Vec<(u32, i64, Option<i64>)> = [12]
            .into_iter()
            .chain(31..40)
            .chain(2_000_001..2_000_003)
            .map(|q| (1, q, None))
            .collect();
        assert_eq!(holes(found), want);
    }
}
