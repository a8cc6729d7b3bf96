//! The audit trail and metrics of what a function did.
//!
//! Each action taken or skipped gives one audit record, a JSON line of its own (`"type":"audit"`),
//! so CloudWatch Logs Insights can query it whatever the log format. Counts go out as CloudWatch
//! Embedded Metric Format lines: no API call, no client, nothing to fail at the end of an event.
//!
//! EMF is written here rather than with `metrique` or `metrics_cloudwatch_embedded`: we emit a
//! handful of counters per invocation, and those crates bring a global recorder or `lambda_http`
//! into every function for it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

/// The CloudWatch namespace of Autonomic's metrics.
pub const METRIC_NAMESPACE: &str = "Autonomic";

/// What became of one planned item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The mutating call was made and succeeded.
    Applied,
    /// Dry-run: the action was planned and not made.
    DryRun,
    /// The planner or a guard decided not to act.
    Skipped,
    /// The call was made and failed.
    Failed,
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// The action kind (`set_desired_capacity`), also for skips of that kind.
    pub action: String,
    pub outcome: Outcome,
    /// What was acted on.
    pub target: String,
    /// What caused it (an alarm transition id, a message id).
    pub trigger: String,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Action-specific facts: old and new capacity, the rule, the paths.
    pub details: Value,
}

/// Where lines go: stdout under Lambda, stderr when run locally (stdout then carries only the
/// response), or memory in tests.
#[derive(Debug, Clone)]
pub enum Sink {
    Stdout,
    Stderr,
    Memory(Arc<Mutex<Vec<String>>>),
}

impl Sink {
    fn write_line(&self, line: &str) {
        match self {
            // A failed log write must not fail the event: the action already happened.
            Sink::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Sink::Memory(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.push(line.to_string());
                }
            }
        }
    }
}

/// Writes audit records and metrics for one function.
#[derive(Debug, Clone)]
pub struct Reporter {
    function: String,
    sink: Sink,
}

impl Reporter {
    pub fn new(function: impl Into<String>, sink: Sink) -> Self {
        Self {
            function: function.into(),
            sink,
        }
    }

    /// A reporter whose lines can be read back (tests).
    pub fn in_memory(function: &str) -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (Self::new(function, Sink::Memory(lines.clone())), lines)
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// Writes one audit record for `request_id`.
    pub fn audit(&self, request_id: &str, dry_run: bool, record: &AuditRecord) {
        let line = json!({
            "type": "audit",
            "function": self.function,
            "requestId": request_id,
            "dryRun": dry_run,
            "record": record,
        });
        self.sink.write_line(&line.to_string());
    }

    /// Writes the EMF lines for one invocation: per action kind, how many were applied (or
    /// planned in dry-run), skipped and failed.
    pub fn metrics(&self, records: &[AuditRecord], timestamp_ms: i64) {
        let mut by_action: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
        for r in records {
            let counts = by_action.entry(r.action.as_str()).or_default();
            match r.outcome {
                Outcome::Applied | Outcome::DryRun => counts[0] += 1,
                Outcome::Skipped => counts[1] += 1,
                Outcome::Failed => counts[2] += 1,
            }
        }
        for (action, [actions, skips, errors]) in by_action {
            self.sink.write_line(
                &emf_line(&self.function, action, actions, skips, errors, timestamp_ms).to_string(),
            );
        }
    }
}

fn emf_line(function: &str, action: &str, actions: u64, skips: u64, errors: u64, ts: i64) -> Value {
    json!({
        "_aws": {
            "Timestamp": ts,
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["Function"], ["Function", "Action"]],
                "Metrics": [
                    {"Name": "Actions", "Unit": "Count"},
                    {"Name": "Skips", "Unit": "Count"},
                    {"Name": "Errors", "Unit": "Count"}
                ]
            }]
        },
        "Function": function,
        "Action": action,
        "Actions": actions,
        "Skips": skips,
        "Errors": errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            action: action.into(),
            outcome,
            target: "web".into(),
            trigger: "alarm|ALARM|1".into(),
            reason: None,
            details: json!({}),
        }
    }

    #[test]
    fn audit_lines_are_json_with_request_id() {
        let (reporter, lines) = Reporter::in_memory("asg-scaler");
        reporter.audit(
            "req-1",
            true,
            &record("set_desired_capacity", Outcome::DryRun),
        );
        let lines = lines.lock().unwrap();
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["type"], "audit");
        assert_eq!(v["requestId"], "req-1");
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["record"]["outcome"], "dry_run");
    }

    #[test]
    fn emf_counts_by_action() {
        let (reporter, lines) = Reporter::in_memory("asg-scaler");
        reporter.metrics(
            &[
                record("set_desired_capacity", Outcome::Applied),
                record("set_desired_capacity", Outcome::Skipped),
                record("set_desired_capacity", Outcome::Skipped),
                record("other", Outcome::Failed),
            ],
            1_700_000_000_000,
        );
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 2);
        let other: Value = serde_json::from_str(&lines[0]).unwrap();
        let scale: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(other["Errors"], 1);
        assert_eq!(scale["Actions"], 1);
        assert_eq!(scale["Skips"], 2);
        assert_eq!(
            scale["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Autonomic"
        );
        assert_eq!(scale["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
