//! The key layout, in one place: how a message and a (message, group) pair are packed into one
//! integer, as Rust ([`mqtrace_vocab::keys`]) and as the polars expressions the plans group
//! and join on. Single-integer keys group and join about twice as fast as two columns, which
//! polars row-encodes.
//!
//! - `msg` = stream code << [`SEQ_BITS`] | seq
//! - `pair` = (stream, group) code << [`SEQ_BITS`] | seq
//! - `pair_base` = `pair` − seq: the (stream, group) part
//! - `pair_partition` = `pair_base` + partition code (< 2^32): (stream, group, partition)

use polars::prelude::*;

pub use mqtrace_vocab::keys::SEQ_BITS;

/// `msg` from a frame's `stream` and `seq` columns.
pub fn message_key_expr() -> Expr {
    (col("stream").cast(DataType::UInt64) * lit(1u64 << SEQ_BITS)
        + col("seq").cast(DataType::UInt64))
    .alias("msg")
}

/// The (stream, group) part of a `pair` key: the seq subtracted, not divided out (polars'
/// integer division needs another feature).
pub fn pair_base() -> Expr {
    (col("pair") - col("seq").cast(DataType::UInt64)).alias("pair_base")
}

/// A message's `pair` key in the group of `pair_base`.
pub fn pair_of_base() -> Expr {
    (col("pair_base") + col("seq").cast(DataType::UInt64)).alias("pair")
}

/// (stream, group, partition) as one integer: the partition's code sits below the seq bits'
/// top, where `pair_base` has zeros. The high-water joins run on every pair.
pub fn pair_partition() -> Expr {
    (col("pair_base") + col("partition").cast(DataType::UInt64)).alias("pair_partition")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtrace_vocab::keys::{message_key, split_key};

    #[test]
    fn the_expressions_pack_as_the_rust_functions_do() {
        let df = df!("stream" => [3u32, 0], "seq" => [42i64, 1]).expect("frame");
        let out = df
            .lazy()
            .with_column(message_key_expr())
            .collect()
            .expect("plan");
        let keys: Vec<Option<u64>> = out
            .column("msg")
            .and_then(|c| c.u64().map(|c| c.iter().collect()))
            .expect("u64");
        assert_eq!(keys, [Some(message_key(3, 42)), Some(message_key(0, 1))]);
        assert_eq!(split_key(message_key(3, 42)), (3, 42));
    }
}
