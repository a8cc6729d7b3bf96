//! One scaling step as a guarded step ([`autonomic::guard::Step`]): what is new here is the
//! decision (the planner on the group as read, its cooldown and the alarm's watermark), the
//! re-check under the group's lease (the group read again and the step re-planned if it moved; the
//! alarm's watermark raised, so an older transition never acts after a newer one), the call
//! (SetDesiredCapacity), and what a takeover checks: the interrupted attempt's capacity applied
//! means done, moved by someone else means `superseded`, untouched means plan afresh. The claim,
//! the lease (a lock, then the cooldown), the intent and the audit are the shared step's.

use std::sync::Mutex;

use autonomic::events::AlarmTransition;
use autonomic::guard::{Act, Decision, LeaseKind, Lock, Recheck, Resumed, Step};
use autonomic::time::now_ms;
use autonomic::{CallError, FunctionError, Invocation, Skip};
use serde_json::{Value, json};

use crate::api::AsgApi;
use crate::planner::{self, GroupState, Observed, SET_DESIRED_CAPACITY, ScaleAction, Settings};
use crate::rules::{Adjustment, Rule};
use crate::scaler::{AsgScaler, alarm_watermark, group_lease};

/// A routed transition's step on its group.
pub(crate) struct ScaleStep<'a, A> {
    pub scaler: &'a AsgScaler<A>,
    pub t: &'a AlarmTransition,
    pub rule: &'a Rule,
    pub group: &'a str,
    pub adjustment: Adjustment,
    pub settings: Settings,
    /// What the decision was made on, for the re-check under the lease.
    decided_on: Mutex<Option<Observed>>,
}

impl<'a, A: AsgApi> ScaleStep<'a, A> {
    pub(crate) fn new(
        scaler: &'a AsgScaler<A>,
        t: &'a AlarmTransition,
        rule: &'a Rule,
        group: &'a str,
        adjustment: Adjustment,
        settings: Settings,
    ) -> Self {
        Self {
            scaler,
            t,
            rule,
            group,
            adjustment,
            settings,
            decided_on: Mutex::new(None),
        }
    }

    async fn describe(&self) -> Result<GroupState, FunctionError> {
        self.scaler
            .api
            .describe_group(self.group)
            .await?
            .ok_or_else(|| FunctionError::NotFound {
                what: "Auto Scaling group",
                name: self.group.to_string(),
            })
    }

    fn watermark_ttl(&self, now: i64) -> i64 {
        now / 1000 + self.scaler.config.common.idempotency_ttl.as_secs() as i64
    }

    /// A skipped transition still counts as handled for staleness; failing to record that only
    /// weakens the superseded check, so it is logged, not fatal. A transition dated in the future
    /// never raises the mark.
    async fn raise_watermark_best_effort(&self, now: i64) {
        let mark = self.t.state_changed_at.timestamp_millis();
        if mark > now + planner::CLOCK_SKEW_ALLOWANCE_MS {
            return;
        }
        if let Err(e) = self
            .scaler
            .guards
            .advance_watermark(&alarm_watermark(self.t), mark, self.watermark_ttl(now))
            .await
        {
            tracing::warn!(error = %e, alarm = %self.t.name, "could not raise the alarm watermark");
        }
    }

    fn cooldown_ms(action: &ScaleAction) -> i64 {
        i64::from(action.cooldown_seconds) * 1000
    }
}

impl<A: AsgApi> Step for ScaleStep<'_, A> {
    type Intent = ScaleAction;
    type Done = ();

    fn action(&self) -> &str {
        SET_DESIRED_CAPACITY
    }

    fn target(&self) -> &str {
        self.group
    }

    /// The group's lease: a lock while scaling it, held at least to the end of the longest
    /// cooldown a rule can set, then settled as the step's cooldown.
    fn lock(&self, inv: &Invocation) -> Lock {
        Lock::Lease {
            name: group_lease(self.group),
            hold_until_ms: inv.deadline_ms,
        }
    }

    fn cooldown_until_ms(&self, action: &ScaleAction) -> i64 {
        now_ms() + Self::cooldown_ms(action)
    }

    async fn decide(&self, inv: &mut Invocation) -> Result<Decision<ScaleAction>, FunctionError> {
        let now = now_ms();
        let group = self.describe().await?;
        let lease = self
            .scaler
            .guards
            .read_lease(&group_lease(self.group))
            .await?;
        let observed = Observed {
            group,
            // Only a settled cooldown is one; a lock is contention, handled when taking it, and a
            // takeover already holds the lock of the attempt it took over.
            cooldown_until_ms: lease
                .filter(|l| l.kind == LeaseKind::Cooldown)
                .filter(|l| l.holder != inv.request_id)
                .map(|l| l.until_ms),
            newest_handled_ms: self
                .scaler
                .guards
                .read_watermark(&alarm_watermark(self.t))
                .await?,
        };
        let mut plan = planner::plan(
            self.t,
            self.rule,
            self.adjustment,
            &observed,
            self.settings,
            now,
        );
        if let Ok(mut d) = self.decided_on.lock() {
            *d = Some(observed);
        }
        match plan.actions.pop() {
            Some(action) => Ok(Decision::Act(Act {
                target: action.group.clone(),
                intent: action,
            })),
            None => {
                if !inv.dry_run {
                    self.raise_watermark_best_effort(now).await;
                }
                Ok(Decision::Skip(plan.skips.pop().unwrap_or_else(|| {
                    Skip::new(self.group, "no_step", "the planner decided nothing")
                })))
            }
        }
    }

    async fn resume(
        &self,
        _inv: &mut Invocation,
        intent: ScaleAction,
    ) -> Result<Resumed<()>, FunctionError> {
        let group = self.describe().await?;
        if group.desired == intent.to {
            tracing::info!(group = %intent.group, to = intent.to, "the interrupted attempt had applied its action");
            return Ok(Resumed::Done(()));
        }
        if group.desired != intent.from {
            return Ok(Resumed::Skip(Skip::new(
                self.group,
                "superseded",
                format!(
                    "capacity moved from {} to {} since an interrupted attempt planned {} -> {}",
                    intent.from, group.desired, intent.from, intent.to
                ),
            )));
        }
        Ok(Resumed::Afresh)
    }

    /// Under the lease: the group read again (the same action if nothing moved, a fresh one if it
    /// did and a step is still due), then the alarm's watermark raised to this transition.
    async fn recheck(
        &self,
        _inv: &mut Invocation,
        action: ScaleAction,
    ) -> Result<Recheck<ScaleAction>, FunctionError> {
        let group = self.describe().await?;
        let first = self.decided_on.lock().ok().and_then(|d| d.clone());
        let action = match first {
            Some(first) if group != first.group => {
                tracing::info!(group = %action.group, was = first.group.desired, now = group.desired, "group changed while planning: planning again");
                let observed = Observed {
                    group,
                    cooldown_until_ms: None, // the lease is ours now
                    newest_handled_ms: first.newest_handled_ms,
                };
                let mut plan = planner::plan(
                    self.t,
                    self.rule,
                    self.adjustment,
                    &observed,
                    self.settings,
                    now_ms(),
                );
                match plan.actions.pop() {
                    Some(fresh) => fresh,
                    None => {
                        return Ok(Recheck::Skip(Skip::new(
                            self.group,
                            "superseded",
                            "the group changed while planning and no step is due now",
                        )));
                    }
                }
            }
            _ => action,
        };
        let mark = self.t.state_changed_at.timestamp_millis();
        if !self
            .scaler
            .guards
            .advance_watermark(&alarm_watermark(self.t), mark, self.watermark_ttl(now_ms()))
            .await?
        {
            return Ok(Recheck::Skip(Skip::new(
                self.group,
                "superseded",
                "a newer transition of this alarm was handled meanwhile",
            )));
        }
        Ok(Recheck::Proceed(action))
    }

    async fn call(&self, action: &ScaleAction) -> Result<(), CallError> {
        self.scaler
            .api
            .set_desired_capacity(&action.group, action.to, action.honor_cooldown)
            .await?;
        tracing::info!(group = %action.group, from = action.from, to = action.to, rule = %action.rule, "set desired capacity");
        Ok(())
    }

    /// The group's own cooldown refused (HonorCooldown): a decision, not a failure.
    fn refused(&self, action: &ScaleAction, e: &CallError) -> Option<Skip> {
        (action.honor_cooldown && e.code == "ScalingActivityInProgress").then(|| {
            Skip::new(
                &action.group,
                "group_cooldown",
                format!("the group's own cooldown refused: {}", e.message),
            )
        })
    }

    fn audit_details(&self) -> Value {
        json!({"alarm": self.t.name, "state": self.t.state, "rule": self.rule.spec.name})
    }
}
