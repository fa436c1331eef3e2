//! What the instrumentation records: every stage as a span ([`Mode::Full`]), the ordinary path
//! in ledgers ([`Mode::Ledger`], SPEC §2b), or nothing ([`Mode::Off`]).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The environment variable the builders read their default [`Mode`] from: `full`, `ledger` or
/// `off` (case-insensitive). Unset or empty means `full`; any other value means `full` too,
/// with one warning on stderr per process.
pub const ENV_MODE: &str = "MQTRACE_MODE";

/// How often a ledger-mode producer or consumer exports its ledgers, by default (SPEC §2b:
/// "at least every flush interval (default 1 s)").
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What a [`Producer`](crate::Producer) or [`Consumer`](crate::Consumer) records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// One span per stage event (SPEC §2); the compact `mqtrace` header and `traceparent`
    /// (SPEC §3 v2; the five headers with [`HeaderForm::Five`]).
    #[default]
    Full,
    /// SPEC §2b: the ordinary path of a message goes into per-stream ledgers, exported as one
    /// span per (stream, destination, partition), stage and flush interval; everything else is
    /// a full span, exactly as in full mode. The compact `mqtrace` header (SPEC §3 v2),
    /// `traceparent` only with a full span.
    ///
    /// Ordinary: on the producer, a first attempt answered `ok` (its seq stands for its
    /// `produce` and its `store_ack`); on the consumer, a first delivery (count 1, a seq this
    /// instance has not delivered recently) and its settle with `ack`. Never ordinary: a
    /// message the app's sampler keeps, decided when the attempt begins or the delivery
    /// arrives — the app's current span (its `tracing` span through tracing-opentelemetry,
    /// else OpenTelemetry's current span) is sampled and recording, or, on the consumer, the
    /// headers carry a sampled `traceparent` (the producer kept it).
    Ledger,
    /// Nothing: no spans, no headers. Seqs are still handed out, so that
    /// [`OutgoingMessage::key`](crate::OutgoingMessage::key) keeps its meaning.
    Off,
}

impl Mode {
    /// The value of [`ENV_MODE`] (`full`, `ledger`, `off`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Ledger => "ledger",
            Mode::Off => "off",
        }
    }

    /// The mode [`ENV_MODE`] names: `Full` when it is unset, empty or unknown (an unknown
    /// value is reported once per process on stderr: telemetry set-up must not stop an app).
    pub fn from_env() -> Mode {
        Self::from_env_value(std::env::var(ENV_MODE).ok().as_deref())
    }

    /// [`from_env`](Self::from_env) for a given value of the variable.
    pub fn from_env_value(value: Option<&str>) -> Mode {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            return Mode::Full;
        };
        match value.parse() {
            Ok(mode) => mode,
            Err(UnknownMode(_)) => {
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "mqtrace: {ENV_MODE}={value:?} is not full, ledger or off; recording in full mode"
                    );
                }
                Mode::Full
            }
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which form of SPEC §3's headers a producer writes.
///
/// Both forms are always read back. The default is the one compact `mqtrace` header in every
/// mode that records (SPEC §3 v2: one header costs the client and the broker less than five,
/// which the overhead bench measures per client, and it costs the app's thread less: one value
/// formatted and handed to the client instead of four). [`HeaderForm::Five`] is for consumers
/// built before the compact form, which read only the five headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderForm {
    /// `mqtrace-producer-id`, `mqtrace-stream`, `mqtrace-seq`, `mqtrace-message-id`, and
    /// `traceparent` with a span.
    Five,
    /// The one `mqtrace` header `1;{producer_id};{stream};{seq};{attempt}[;{message_id}]`,
    /// and `traceparent` only with a span.
    Compact,
}

impl HeaderForm {
    /// The form a producer of `mode` writes unless told otherwise (`None`: off mode writes
    /// no headers).
    pub const fn default_for(mode: Mode) -> Option<HeaderForm> {
        match mode {
            Mode::Full | Mode::Ledger => Some(HeaderForm::Compact),
            Mode::Off => None,
        }
    }
}

/// A mode name that is not `full`, `ledger` or `off`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMode(pub String);

impl fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown mqtrace mode {:?} (full, ledger, off)", self.0)
    }
}

impl std::error::Error for UnknownMode {}

impl FromStr for Mode {
    type Err = UnknownMode;

    /// `full`, `ledger` or `off`, in any case, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        let t = s.trim();
        [Mode::Full, Mode::Ledger, Mode::Off]
            .into_iter()
            .find(|m| t.eq_ignore_ascii_case(m.as_str()))
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_parse_and_unknown_ones_fall_back_to_full() {
        assert_eq!(Mode::from_env_value(None), Mode::Full);
        assert_eq!(Mode::from_env_value(Some("")), Mode::Full);
        assert_eq!(Mode::from_env_value(Some(" Ledger ")), Mode::Ledger);
        assert_eq!(Mode::from_env_value(Some("OFF")), Mode::Off);
        assert_eq!(Mode::from_env_value(Some("full")), Mode::Full);
        assert_eq!(Mode::from_env_value(Some("sampled")), Mode::Full);
        assert_eq!("nope".parse::<Mode>(), Err(UnknownMode("nope".to_owned())));
        for m in [Mode::Full, Mode::Ledger, Mode::Off] {
            assert_eq!(m.to_string().parse::<Mode>(), Ok(m));
        }
    }
}
