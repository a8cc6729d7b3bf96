//! Keep stepping while an alarm holds, as a step scaling policy does.
//!
//! CloudWatch notifies a Lambda or EventBridge target once per transition, not again while an
//! alarm stays in ALARM. So after a step, or a step put off by a cooldown, the alarm is kept in a
//! small registry in the state table with the time its next step is due. A scheduled EventBridge
//! rule invokes the function every minute (the `Scheduled Event` it sends is the sweep); the sweep
//! asks CloudWatch (DescribeAlarms) whether each due alarm is still in that state and, if so,
//! handles its transition again as a new step, under its own claim, until the bound is reached or
//! the alarm changes state.

use std::collections::HashSet;

use autonomic::audit::Outcome;
use autonomic::events::{AlarmState, AlarmTransition};
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Skip};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::AsgApi;
use crate::report::{Sweep, SweepResponse, SweepStep, TransitionLine, failed, skipped};
use crate::rules::Rule;
use crate::scaler::{AsgScaler, FUNCTION};

/// The registry of held alarms in the state table.
pub const HELD_ALARMS: &str = "asg-scaler-held-alarms";

/// Skips after which a held alarm is checked again: the step is only put off.
const PUT_OFF: &[&str] = &["cooldown", "group_cooldown", "scale_out_in_progress"];
/// Skips that end the stepping: the bound is reached.
const AT_BOUND: &[&str] = &["at_max", "at_min", "step_too_large", "bounds_conflict"];

/// An alarm held in its state, and when its next step is due.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldAlarm {
    pub transition: AlarmTransition,
    pub due_ms: i64,
}

/// Whether `payload` is the scheduled sweep (EventBridge's `Scheduled Event`).
pub fn is_sweep(payload: &Value) -> bool {
    payload["source"] == "aws.events" && payload["detail-type"] == "Scheduled Event"
}

/// What comes after a handled transition: `Some(due)` to step again then, `None` to stop, or
/// no opinion (`Err(())`) when the outcome says nothing about the alarm's episode (a duplicate,
/// a superseded or stale transition, no rule).
fn next_step(line: &TransitionLine, rule: &Rule, now: i64) -> Result<Option<i64>, ()> {
    let applied = line.results.iter().any(|r| r.outcome == Outcome::Applied);
    if applied {
        return Ok(Some(now + i64::from(rule.spec.cooldown_seconds) * 1000));
    }
    let reason = line.plan.skips.first().map_or("", |s| s.reason.as_str());
    if PUT_OFF.contains(&reason) {
        return Ok(Some(now));
    }
    if AT_BOUND.contains(&reason) {
        return Ok(None);
    }
    Err(())
}

impl<A: AsgApi> AsgScaler<A> {
    /// After a first delivery: register the alarm for another step, or drop it at its bound.
    /// Best effort: the step itself is done, and a failure here is logged.
    pub(crate) async fn follow_up(&self, t: &AlarmTransition, rule: &Rule, line: &TransitionLine) {
        // Only an alarm that stays in ALARM keeps stepping, as a step scaling policy's alarm
        // does: OK is an alarm's resting state, and repeating `onOk` through it would walk the
        // group down to its minimum.
        if !rule.spec.keep_stepping || t.state != AlarmState::Alarm {
            return;
        }
        if let Ok(next) = next_step(line, rule, now_ms()) {
            self.hold(t, next).await;
        }
    }

    /// Keeps `t` held with its next step due at `next`, or drops it (`None`). Best effort: a
    /// failure is logged.
    async fn hold(&self, t: &AlarmTransition, next: Option<i64>) {
        let table = &self.guards;
        let written = match next {
            Some(due_ms) => {
                let held = HeldAlarm {
                    transition: t.clone(),
                    due_ms,
                };
                match serde_json::to_value(&held) {
                    Ok(v) => table.registry_set(HELD_ALARMS, &t.arn, &v).await,
                    Err(_) => return,
                }
            }
            None => table.registry_remove(HELD_ALARMS, &t.arn).await,
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, alarm = %t.name, "could not record whether to keep stepping");
        }
    }

    /// The scheduled sweep: each held alarm whose next step is due is checked against CloudWatch
    /// and, while it holds, stepped again.
    pub(crate) async fn sweep(&self, inv: &mut Invocation) -> Result<Value, FunctionError> {
        let table = &self.guards;
        let now = now_ms();
        let held: Vec<HeldAlarm> = table
            .registry(HELD_ALARMS)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value(v).ok())
            .collect();
        let due: Vec<&HeldAlarm> = held.iter().filter(|h| h.due_ms <= now).collect();
        let mut steps = Vec::new();
        if !due.is_empty() {
            let names: Vec<String> = due
                .iter()
                .map(|h| h.transition.name.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let states = self.api.alarm_states(&names).await?;
            for h in due {
                if inv.should_stop() {
                    break; // still registered: the next sweep takes it
                }
                steps.push(
                    self.step_again(inv, h, states.get(&h.transition.name))
                        .await,
                );
            }
        }
        let response = SweepResponse {
            function: FUNCTION,
            dry_run: inv.dry_run,
            sweep: Sweep {
                held: held.len(),
                steps,
            },
        };
        serde_json::to_value(response).map_err(|e| FunctionError::Serialize(e.to_string()))
    }

    async fn step_again(
        &self,
        inv: &mut Invocation,
        h: &HeldAlarm,
        now_state: Option<&AlarmState>,
    ) -> SweepStep {
        let t = &h.transition;
        if now_state != Some(&t.state) {
            let detail = format!(
                "the alarm is {} now, not {}",
                now_state.map_or("gone", |s| s.as_str()),
                t.state
            );
            skipped(inv, t, &[Skip::new(&t.name, "alarm_changed", &detail)]);
            self.hold(t, None).await;
            return SweepStep::Dropped {
                alarm: t.name.clone(),
                dropped: detail,
            };
        }
        let rule = self.config.rules.find(t);
        match self.handle_transition(t, inv, Some(h.due_ms)).await {
            Ok(r) => {
                let next = rule
                    .filter(|rule| rule.spec.keep_stepping)
                    .and_then(|rule| next_step(&r, rule, now_ms()).unwrap_or(None));
                self.hold(t, next).await;
                SweepStep::Stepped(r)
            }
            Err(e) => {
                // Still registered: the next sweep tries again.
                tracing::error!(alarm = %t.name, error_type = %e.error_type(), error = %e, "step while held failed");
                failed(inv, &t.name, &t.transition_id(), &e);
                SweepStep::Failed {
                    alarm: t.name.clone(),
                    error: e.to_string(),
                }
            }
        }
    }
}
