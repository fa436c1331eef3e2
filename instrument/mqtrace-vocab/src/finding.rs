//! What the analyzer reports (SPEC §4, §6): finding kinds, the stage a finding names, and
//! the `kind/stage` keys the summary counts.

use crate::stage::vocabulary;

vocabulary! {
    /// A finding's `kind`.
    Kind {
        /// The message never reached (a group) through the stage named.
        Lost => "lost",
        /// Stored or processed more than once.
        Duplicate => "duplicate",
        /// No span at all carries this seq, while lower and higher seqs exist.
        Unobserved => "unobserved",
        /// Delivered, but no `produce` span exists.
        TelemetryGap => "telemetry_gap",
        /// The same stored copy delivered ≥ 2 times in a group, processed once.
        Redelivered => "redelivered",
        /// Not delivered or settled yet, and the group has not passed it.
        InFlight => "in_flight",
    }
}

vocabulary! {
    /// The stage a finding names (`stage` in the report).
    Where {
        /// At the producer.
        Produce => "produce",
        /// At the broker.
        Store => "store",
        /// At the consumer.
        Consume => "consume",
    }
}

vocabulary! {
    /// What a finding rests on (`basis` in the report).
    Basis {
        /// mqtrace's numbered spans and ledgers: `seq` is set.
        Mqtrace => "mqtrace",
        /// Spans of other instrumentations, by the messaging conventions alone (SPEC §4b):
        /// `seq` is null and `message_id` names the message.
        Semconv => "semconv",
    }
}

impl Kind {
    /// Whether a finding of this kind makes the exit status 1 (SPEC §5).
    pub const fn is_problem(self) -> bool {
        matches!(self, Kind::Lost | Kind::Duplicate | Kind::Unobserved)
    }
}

/// The summary key of a finding: `kind/stage`, or `kind` without a stage.
pub fn key(kind: Kind, stage: Option<Where>) -> String {
    match stage {
        Some(s) => format!("{kind}/{s}"),
        None => kind.as_str().to_owned(),
    }
}

/// Every `kind/stage` pair the analyzer reports, in the order summaries list them. `lost`
/// without a stage is a loss whose stage the spans cannot settle (an exporter's telemetry
/// stopped without its final report).
pub const KEYS: [(Kind, Option<Where>); 10] = [
    (Kind::Lost, Some(Where::Produce)),
    (Kind::Lost, Some(Where::Store)),
    (Kind::Lost, Some(Where::Consume)),
    (Kind::Lost, None),
    (Kind::Duplicate, Some(Where::Produce)),
    (Kind::Duplicate, Some(Where::Consume)),
    (Kind::Unobserved, None),
    (Kind::TelemetryGap, None),
    (Kind::Redelivered, None),
    (Kind::InFlight, None),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_spec_pairs() {
        let keys: Vec<String> = KEYS.iter().map(|(k, s)| key(*k, *s)).collect();
        assert_eq!(
            keys,
            [
                "lost/produce",
                "lost/store",
                "lost/consume",
                "lost",
                "duplicate/produce",
                "duplicate/consume",
                "unobserved",
                "telemetry_gap",
                "redelivered",
                "in_flight"
            ]
        );
        assert!(Kind::Unobserved.is_problem() && !Kind::InFlight.is_problem());
    }
}
