//! The stages of a message's life and the outcomes recorded at them (SPEC §2).

/// Declares a closed set of contract strings: the enum, its values in order, and both
/// directions of the mapping, so a value is spelled once.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in the contract's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The attribute value.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// The value an attribute names, `None` for any other text.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary! {
    /// The stage a span records, the value of [`crate::attr::STAGE`].
    Stage {
        /// One send attempt, recorded when the client call returns.
        Produce => "produce",
        /// The broker's answer to one attempt (or the attempt giving up).
        StoreAck => "store_ack",
        /// One delivery of the message to a consumer.
        Deliver => "deliver",
        /// The consumer settling one delivery.
        ConsumeAck => "consume_ack",
    }
}

vocabulary! {
    /// The broker's answer to one send attempt (`store_ack`'s `mqtrace.outcome`).
    StoreOutcome {
        /// Stored: a confirm, a successful delivery report, a PubAck.
        Ok => "ok",
        /// The broker refused it (nack, returned as unroutable).
        Nack => "nack",
        /// The attempt failed with an error.
        Error => "error",
        /// No answer in time: the message may or may not be stored.
        Timeout => "timeout",
    }
}

vocabulary! {
    /// How the consumer settled one delivery (`consume_ack`'s `mqtrace.outcome`).
    SettleOutcome {
        /// Processed and acknowledged.
        Ack => "ack",
        /// Negatively acknowledged: the broker may deliver it again.
        Nack => "nack",
        /// Rejected: the broker will not deliver it again (or dead-letters it).
        Reject => "reject",
        /// An idempotent consumer recognised a copy it had already processed and acked it
        /// without processing it again.
        SkipDuplicate => "skip_duplicate",
        /// Settling failed.
        Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_spec_strings_and_parse_back() {
        let names: Vec<_> = Stage::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["produce", "store_ack", "deliver", "consume_ack"]);
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(*s));
        }
        for o in StoreOutcome::ALL {
            assert_eq!(StoreOutcome::parse(&o.to_string()), Some(*o));
        }
        for o in SettleOutcome::ALL {
            assert_eq!(SettleOutcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(StoreOutcome::Timeout.as_str(), "timeout");
        assert_eq!(SettleOutcome::parse("ACK"), None);
    }
}
