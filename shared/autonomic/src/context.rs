//! One invocation's context: who it is, until when it may work, whether it only plans, and the
//! audit records of what it did. Every handler builds one and ends it with [`Invocation::finish`].

use std::time::Duration;

use serde_json::Value;

use crate::audit::{AuditRecord, Outcome, Reporter};
use crate::plan::Skip;
use crate::time::now_ms;

/// Time kept back at the end of an invocation: no new work (and no more waiting for a lease)
/// starts with less than this left, so what was started can finish and be reported before Lambda
/// ends the invocation. It covers one AWS call at its operation timeout plus the reporting.
pub const WORK_RESERVE: Duration = Duration::from_secs(12);

/// Deadlines before this (2020-01-01) are not epoch times at all: Lambda always sends one, but
/// `cargo lambda watch` sends the constant 600000 (ten minutes, as if relative).
const EARLIEST_PLAUSIBLE_DEADLINE_MS: i64 = 1_577_836_800_000;
/// The time an invocation gets when the runtime's deadline is not an epoch time.
pub const FALLBACK_TIME: Duration = Duration::from_secs(60);
/// Lambda's longest timeout: a deadline further away is not a Lambda deadline either.
const LONGEST_INVOCATION_MS: i64 = 15 * 60 * 1000;

pub struct Invocation {
    pub request_id: String,
    /// Epoch milliseconds at which Lambda ends the invocation.
    pub deadline_ms: i64,
    pub dry_run: bool,
    reporter: Reporter,
    records: Vec<AuditRecord>,
}

impl Invocation {
    pub fn new(reporter: &Reporter, request_id: &str, deadline_ms: i64, dry_run: bool) -> Self {
        Self {
            request_id: request_id.to_string(),
            deadline_ms,
            dry_run,
            reporter: reporter.clone(),
            records: Vec::new(),
        }
    }

    /// From the Lambda context.
    pub fn from_lambda(
        reporter: &Reporter,
        context: &lambda_runtime::Context,
        dry_run: bool,
    ) -> Self {
        let deadline_ms = plausible_deadline(context.deadline, now_ms());
        Self::new(reporter, &context.request_id, deadline_ms, dry_run)
    }

    /// Milliseconds left before the deadline.
    pub fn time_left_ms(&self) -> i64 {
        self.deadline_ms - now_ms()
    }

    /// Whether `work` (and the reserve after it) still fits before the deadline.
    pub fn has_time_for(&self, work: Duration) -> bool {
        let needed = i64::try_from((work + WORK_RESERVE).as_millis()).unwrap_or(i64::MAX);
        self.time_left_ms() >= needed
    }

    /// Whether to stop taking new work now.
    pub fn should_stop(&self) -> bool {
        !self.has_time_for(Duration::ZERO)
    }

    /// Writes an audit record now (so an invocation killed later still leaves it) and keeps it
    /// for the metrics.
    pub fn record(&mut self, record: AuditRecord) {
        self.reporter.audit(&self.request_id, self.dry_run, &record);
        self.records.push(record);
    }

    /// An action made (or, in dry run, planned): `dry_run` or `applied`. Returns the outcome.
    pub fn applied(
        &mut self,
        action: &str,
        target: &str,
        trigger: &str,
        details: Value,
    ) -> Outcome {
        let outcome = if self.dry_run {
            Outcome::DryRun
        } else {
            Outcome::Applied
        };
        self.record(AuditRecord {
            action: action.to_string(),
            outcome,
            target: target.to_string(),
            trigger: trigger.to_string(),
            reason: None,
            details,
        });
        outcome
    }

    /// A decision not to act, with its stable reason.
    pub fn skipped(&mut self, action: &str, trigger: &str, skip: &Skip, details: Value) {
        tracing::info!(target = %skip.target, reason = %skip.reason, detail = %skip.detail, "skip");
        self.record(AuditRecord {
            action: action.to_string(),
            outcome: Outcome::Skipped,
            target: skip.target.clone(),
            trigger: trigger.to_string(),
            reason: Some(skip.reason.clone()),
            details,
        });
    }

    /// Something that was not done because it failed; `reason` is its stable code.
    pub fn failed(
        &mut self,
        action: &str,
        target: &str,
        trigger: &str,
        reason: &str,
        details: Value,
    ) {
        self.record(AuditRecord {
            action: action.to_string(),
            outcome: Outcome::Failed,
            target: target.to_string(),
            trigger: trigger.to_string(),
            reason: Some(reason.to_string()),
            details,
        });
    }

    /// Ends the invocation: the EMF metrics of everything recorded.
    pub fn finish(self) {
        self.reporter.metrics(&self.records, now_ms());
    }
}

/// The runtime's deadline, or [`FALLBACK_TIME`] from now when it is not an epoch time in
/// milliseconds within Lambda's 15 minutes (a local emulator's): guards and the work reserve then still have a real deadline to keep, instead of
/// one that passed in 1970, which would stop all work at once.
fn plausible_deadline(deadline: u64, now_ms: i64) -> i64 {
    match i64::try_from(deadline) {
        Ok(d) if d >= EARLIEST_PLAUSIBLE_DEADLINE_MS && d <= now_ms + LONGEST_INVOCATION_MS => d,
        _ => {
            tracing::warn!(
                deadline,
                fallback_seconds = FALLBACK_TIME.as_secs(),
                "the runtime's deadline is not an epoch time; using a fallback"
            );
            now_ms + FALLBACK_TIME.as_millis() as i64
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_deadline_that_is_not_an_epoch_time_gets_the_fallback() {
        let now = 1_795_000_000_000;
        assert_eq!(super::plausible_deadline(600_000, now), now + 60_000);
        assert_eq!(
            super::plausible_deadline(now as u64 + 30_000, now),
            now + 30_000
        );
        assert_eq!(super::plausible_deadline(u64::MAX, now), now + 60_000);
        // Microseconds, or anything beyond Lambda's 15 minutes, is no deadline either.
        assert_eq!(
            super::plausible_deadline(now as u64 * 1000, now),
            now + 60_000
        );
    }

    use super::*;
    use crate::audit::Reporter;

    #[test]
    fn records_are_written_at_once_and_counted_at_finish() {
        let (reporter, lines) = Reporter::in_memory("f");
        let mut inv = Invocation::new(&reporter, "req-1", now_ms() + 60_000, false);
        assert_eq!(inv.applied("act", "t", "e", Value::Null), Outcome::Applied);
        inv.skipped("act", "e", &Skip::new("t", "cooldown", "d"), Value::Null);
        assert_eq!(lines.lock().unwrap().len(), 2);
        inv.finish();
        let lines = lines.lock().unwrap();
        let emf: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(
            (emf["Actions"].as_u64(), emf["Skips"].as_u64()),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn stops_taking_work_inside_the_reserve() {
        let (reporter, _) = Reporter::in_memory("f");
        let dry = Invocation::new(&reporter, "r", now_ms() + 60_000, true);
        assert!(!dry.should_stop());
        assert!(!dry.has_time_for(Duration::from_secs(50)));
        let late = Invocation::new(&reporter, "r", now_ms() + 5_000, false);
        assert!(late.should_stop());
    }
}
