//! Findings that could depend on telemetry a killed process never exported.
//!
//! Every `mqtrace-export` pipeline names itself in its telemetry reports
//! (`mqtrace.telemetry.instance`) and reports at start, with every export and at shutdown
//! (`mqtrace.telemetry.final`). An instance whose reports stop without the final one died
//! with spans (and ledgers) it had not exported yet: an ack, a delivery or a broker confirm
//! may have happened and left no trace. The spans do not say which streams an instance
//! served (OTLP carries that in the resource, which the readers do not keep), so the rule is
//! conservative: while any instance stopped, no loss names a stage as certain.
//!
//! The rule: every `lost` finding loses its stage (its evidence keeps the stage the spans
//! alone point to, and names the stopped instances and when each last reported);
//! `in_flight`, `redelivered`, `unobserved` and `telemetry_gap` keep their kind and get the
//! same note (each rests on an event not seen); duplicates rest on events seen twice, which
//! missing spans cannot make up, and stay as they are.

use std::fmt;
use std::sync::Arc;

use mqtrace_reader::{StoppedInstance, TelemetryHealth};
use mqtrace_vocab::finding::{Kind, Where};

use super::Evidence;
use crate::report::Finding;

/// Instances named in each finding's evidence; the report's summary lists them all.
const NAMED: usize = 3;

/// The exporters whose telemetry may be incomplete, as the evidence names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Instances whose reports stopped without a final one, by when they stopped.
    pub instances: Vec<StoppedInstance>,
    /// Reports of instances that could not be tracked (too many, or an unreadable id).
    pub untracked_reports: u64,
}

impl Stopped {
    /// What `telemetry` says, or `None` when every tracked instance shut down cleanly and
    /// every report was tracked.
    pub fn of(telemetry: &TelemetryHealth) -> Option<Stopped> {
        if !telemetry.incomplete() {
            return None;
        }
        Some(Stopped {
            instances: telemetry.stopped_instances(),
            untracked_reports: telemetry.untracked_reports,
        })
    }
}

/// An instant as RFC 3339 (UTC, ms), or the raw value where it is not a time.
struct At(i64);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match u64::try_from(self.0) {
            Ok(ns) if ns > 0 => {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns);
                write!(f, "{}", humantime::format_rfc3339_millis(t))
            }
            _ => f.write_str("an unknown time"),
        }
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.instances.len();
        if n > 0 {
            write!(
                f,
                "the telemetry of {n} exporter instance(s) stopped without a final report (a \
                 killed process?), so spans it had not exported are missing: "
            )?;
            for (i, s) in self.instances.iter().take(NAMED).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(
                    f,
                    "{} last reported at {}",
                    s.instance,
                    At(s.last_report_unix_nano)
                )?;
            }
            if n > NAMED {
                write!(f, " and {} more (summary.telemetry)", n - NAMED)?;
            }
        }
        if self.untracked_reports > 0 {
            if n > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{} telemetry report(s) came from exporter instances that could not be tracked, \
                 which may have stopped without a final report",
                self.untracked_reports
            )?;
        }
        Ok(())
    }
}

/// Applies the rule of the [module docs](self) to `findings`.
pub fn qualify(findings: &mut [Finding], stopped: &Arc<Stopped>) {
    for f in findings {
        let spans_say = match f.kind {
            Kind::Lost => f.stage.take(),
            Kind::InFlight | Kind::Redelivered | Kind::Unobserved | Kind::TelemetryGap => None,
            Kind::Duplicate => continue,
        };
        let facts = std::mem::replace(&mut f.evidence, Evidence::InFlight { delivered: false });
        f.evidence = Evidence::TelemetryStopped {
            facts: Box::new(facts),
            spans_say,
            stopped: Arc::clone(stopped),
        };
    }
}

/// The evidence text of a finding the rule touched.
pub(super) fn fmt_stopped(
    f: &mut fmt::Formatter<'_>,
    facts: &Evidence,
    spans_say: Option<Where>,
    stopped: &Stopped,
) -> fmt::Result {
    write!(f, "{facts}")?;
    if let Some(stage) = spans_say {
        write!(
            f,
            "; the spans point to the {stage} stage, but the stage is not certain"
        )?;
    }
    write!(f, "; {stopped}")
}
