//! Settings of the export pipeline: `DEFAULT_*` values, overridable from the environment.

use std::time::Duration;

/// Spans the queue holds before the overflow policy applies.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 65_536;
/// Spans per export call.
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 2_048;
/// How long a partial batch waits before it is exported.
pub const DEFAULT_SCHEDULED_DELAY: Duration = Duration::from_millis(500);
/// Size at which the file exporter starts a new file.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Env var: queue size (spans).
pub const ENV_MAX_QUEUE_SIZE: &str = "MQTRACE_EXPORT_QUEUE_SIZE";
/// Env var: export batch size (spans).
pub const ENV_MAX_EXPORT_BATCH_SIZE: &str = "MQTRACE_EXPORT_BATCH_SIZE";
/// Env var: scheduled delay in milliseconds.
pub const ENV_SCHEDULED_DELAY_MS: &str = "MQTRACE_EXPORT_DELAY_MS";
/// Env var: `block` or `drop` (see [`Overflow`]).
pub const ENV_OVERFLOW: &str = "MQTRACE_EXPORT_OVERFLOW";

/// What happens to a span when the export queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop it and count it (the app never waits on telemetry).
    #[default]
    Drop,
    /// Block the app's thread until there is room (no span is ever dropped for lack of room).
    Block,
}

/// Batching settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// See [`DEFAULT_MAX_QUEUE_SIZE`].
    pub max_queue_size: usize,
    /// See [`DEFAULT_MAX_EXPORT_BATCH_SIZE`].
    pub max_export_batch_size: usize,
    /// See [`DEFAULT_SCHEDULED_DELAY`].
    pub scheduled_delay: Duration,
    /// See [`Overflow`].
    pub overflow: Overflow,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_queue_size: DEFAULT_MAX_QUEUE_SIZE,
            max_export_batch_size: DEFAULT_MAX_EXPORT_BATCH_SIZE,
            scheduled_delay: DEFAULT_SCHEDULED_DELAY,
            overflow: Overflow::default(),
        }
    }
}

impl BatchConfig {
    /// The defaults, overridden by the `MQTRACE_EXPORT_*` variables that are set and valid.
    pub fn from_env() -> Self {
        Self::default().with_overrides(|k| std::env::var(k).ok())
    }

    fn with_overrides(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        let num = |k: &str| var(k).and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = num(ENV_MAX_QUEUE_SIZE).filter(|n| *n > 0) {
            self.max_queue_size = n as usize;
        }
        if let Some(n) = num(ENV_MAX_EXPORT_BATCH_SIZE).filter(|n| *n > 0) {
            self.max_export_batch_size = n as usize;
        }
        if let Some(ms) = num(ENV_SCHEDULED_DELAY_MS) {
            self.scheduled_delay = Duration::from_millis(ms);
        }
        match var(ENV_OVERFLOW)
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("block") => self.overflow = Overflow::Block,
            Some("drop") => self.overflow = Overflow::Drop,
            _ => {}
        }
        self.max_export_batch_size = self.max_export_batch_size.min(self.max_queue_size);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_apply_and_bad_values_keep_defaults() {
        let env = |k: &str| match k {
            ENV_MAX_QUEUE_SIZE => Some("100".to_owned()),
            ENV_MAX_EXPORT_BATCH_SIZE => Some("500".to_owned()),
            ENV_SCHEDULED_DELAY_MS => Some("soon".to_owned()),
            ENV_OVERFLOW => Some("Block".to_owned()),
            _ => None,
        };
        let c = BatchConfig::default().with_overrides(env);
        assert_eq!(c.max_queue_size, 100);
        assert_eq!(
            c.max_export_batch_size, 100,
            "a batch never exceeds the queue"
        );
        assert_eq!(c.scheduled_delay, DEFAULT_SCHEDULED_DELAY);
        assert_eq!(c.overflow, Overflow::Block);
    }
}
