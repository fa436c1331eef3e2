//! How the analyzer packs a message into one integer: the stream's dictionary code in the
//! high bits, the seq in the low. The widths bound what one run can analyse.

/// The bits of the seq in a key.
pub const SEQ_BITS: u32 = 40;
/// Seqs must stay at or below this (2^40 − 1): a message's key packs its stream's code above.
pub const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;
/// The bits of a stream's (or a (stream, group) pair's) code in a key.
pub const CODE_BITS: u32 = 64 - SEQ_BITS;
/// How many distinct codes fit above the seq (2^24).
pub const MAX_CODES: u64 = 1 << CODE_BITS;

/// The key of (`code`, `seq`): `code << SEQ_BITS | seq`, for seq ≤ [`MAX_SEQ`].
pub const fn message_key(code: u32, seq: i64) -> u64 {
    ((code as u64) << SEQ_BITS) | (seq as u64 & MAX_SEQ as u64)
}

/// The code and seq a key holds.
pub const fn split_key(key: u64) -> (u32, i64) {
    ((key >> SEQ_BITS) as u32, (key & MAX_SEQ as u64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_at_the_edges() {
        for (code, seq) in [(0, 1), (7, MAX_SEQ), ((MAX_CODES - 1) as u32, 42)] {
            assert_eq!(split_key(message_key(code, seq)), (code, seq));
        }
    }
}
