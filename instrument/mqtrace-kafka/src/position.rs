//! A stored copy's Kafka identity as text, `partition/offset`, and its partition, written
//! into a buffer on the stack: every ack and delivery names them, and in ledger mode nothing
//! keeps them (an ordinary seq goes into a ledger), so they must not cost two allocations a
//! message. Full mode copies what its spans keep.

/// Room for `-2147483648/-9223372036854775808`.
const MAX: usize = 11 + 1 + 20;

/// `partition/offset` and `partition`, formatted once.
pub(crate) struct Position {
    buf: [u8; MAX],
    len: usize,
    partition_len: usize,
}

impl Position {
    pub(crate) fn new(partition: i32, offset: i64) -> Self {
        let mut buf = [0u8; MAX];
        let mut p = itoa::Buffer::new();
        let mut o = itoa::Buffer::new();
        let (p, o) = (p.format(partition).as_bytes(), o.format(offset).as_bytes());
        buf[..p.len()].copy_from_slice(p);
        buf[p.len()] = b'/';
        buf[p.len() + 1..p.len() + 1 + o.len()].copy_from_slice(o);
        Self {
            buf,
            len: p.len() + 1 + o.len(),
            partition_len: p.len(),
        }
    }

    /// `partition/offset`.
    pub(crate) fn position(&self) -> &str {
        // Only ASCII digits, '-' and '/' were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    /// `partition`.
    pub(crate) fn partition(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.partition_len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Position;

    #[test]
    fn position_and_partition_read_as_format_writes_them() {
        for (partition, offset) in [
            (0, 0),
            (3, 42),
            (i32::MIN, i64::MIN),
            (i32::MAX, i64::MAX),
            (-1, -1001),
        ] {
            let p = Position::new(partition, offset);
            assert_eq!(p.position(), format!("{partition}/{offset}"));
            assert_eq!(p.partition(), partition.to_string());
        }
    }
}
