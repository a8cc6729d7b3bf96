//! Acting on a routed transition that holds its claim: observe, plan, then the guards in order.
//!
//! 1. A claim taken over: did the interrupted attempt's recorded action happen? Applied means
//!    done; capacity moved by someone else means `superseded`; untouched means plan afresh.
//! 2. The group's lease as a lock (waited for while another live invocation holds it; a lock that
//!    outlives this invocation is retryable contention, never a skip; a settled cooldown is a
//!    `cooldown` skip). The lock of the attempt this one took over is inherited, not a cooldown.
//! 3. Under the lock, the group is read again and the step re-planned if it moved.
//! 4. The alarm's watermark, so an older transition never acts after a newer one.
//! 5. [`guard::apply`]: intent recorded, SetDesiredCapacity, then the lease settled as the
//!    cooldown, released (refused) or kept (may have taken effect).

use autonomic::events::AlarmTransition;
use autonomic::guard::{self, HeldClaim, HeldLease, LeaseKind, LeaseOutcome};
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Plan, Skip};
use serde_json::{Value, json};

use crate::api::AsgApi;
use crate::handler::{AsgScaler, alarm_watermark, group_lease};
use crate::planner::{self, GroupState, Observed, SET_DESIRED_CAPACITY, ScaleAction, Settings};
use crate::report::{action_made, skipped};
use crate::rules::{Adjustment, Rule};

/// What acting decided: the plan and the result lines.
pub(crate) type Decision = (Plan<ScaleAction>, Vec<Value>);

/// The claim held for a transition, and the action an interrupted attempt recorded on it.
pub(crate) type HeldTransition<'c> = (&'c mut HeldClaim, Option<ScaleAction>);

/// What a routed transition is planned with: its rule, the group, the adjustment and the
/// planner's settings.
pub(crate) type Step<'r> = (&'r Rule, &'r str, Adjustment, Settings);

impl<A: AsgApi> AsgScaler<A> {
    /// Observe, plan, guard and apply. `held` is `None` in dry run (nothing is claimed).
    pub(crate) async fn act(
        &self,
        inv: &mut Invocation,
        t: &AlarmTransition,
        (rule, group_name, adjustment, settings): Step<'_>,
        held: Option<HeldTransition<'_>>,
    ) -> Result<Decision, FunctionError> {
        let now = now_ms();
        let group = self.describe(group_name).await?;
        let lease_name = group_lease(group_name);
        let (claim, interrupted) = held.map_or((None, None), |(c, i)| (Some(c), i));
        let previous_owner = claim
            .as_ref()
            .and_then(|c| c.previous_owner())
            .map(str::to_owned);

        if let Some(intent) = interrupted {
            if group.desired == intent.to {
                tracing::info!(group = %intent.group, to = intent.to, "the interrupted attempt had applied its action");
                // Its cooldown may never have been settled: settle it now.
                let cooldown_end = now + i64::from(intent.cooldown_seconds) * 1000;
                if let LeaseOutcome::Acquired(lease) = self
                    .guards
                    .lease(inv, &lease_name, inv.deadline_ms, previous_owner.as_deref())
                    .await?
                {
                    lease.settle(cooldown_end).await;
                }
                let result = action_made(inv, t, &intent);
                return Ok((Plan::act(intent), vec![result]));
            }
            if group.desired != intent.from {
                let detail = format!(
                    "capacity moved from {} to {} since an interrupted attempt planned {} -> {}",
                    intent.from, group.desired, intent.from, intent.to
                );
                return Ok(skip(inv, t, Skip::new(group_name, "superseded", detail)));
            }
            // Not applied: plan afresh below.
        }

        let lease = self.guards.table.read_lease(lease_name.as_str()).await?;
        let observed = Observed {
            group,
            // Only a settled cooldown is one; a lock is contention, handled when taking it, and
            // the lock of the attempt taken over is this attempt's own.
            cooldown_until_ms: lease
                .filter(|l| l.kind == LeaseKind::Cooldown)
                .filter(|l| Some(&l.holder) != previous_owner.as_ref())
                .map(|l| l.until_ms),
            newest_handled_ms: self
                .guards
                .table
                .read_watermark(&alarm_watermark(t))
                .await?,
        };
        let mut plan = planner::plan(t, rule, adjustment, &observed, settings, now);
        skipped(inv, t, &plan.skips);
        let Some(action) = plan.actions.pop() else {
            if claim.is_some() {
                self.raise_watermark_best_effort(t, now).await;
            }
            return Ok((plan, vec![]));
        };
        let Some(claim) = claim else {
            tracing::info!(group = %action.group, from = action.from, to = action.to, "dry run: would set desired capacity");
            let result = action_made(inv, t, &action);
            plan.actions.push(action);
            return Ok((plan, vec![result]));
        };

        let cooldown_ms = i64::from(action.cooldown_seconds) * 1000;
        let hold_until = inv.deadline_ms.max(now + cooldown_ms);
        let lease = match self
            .guards
            .lease(inv, &lease_name, hold_until, previous_owner.as_deref())
            .await?
        {
            LeaseOutcome::Acquired(lease) => lease,
            LeaseOutcome::Cooldown { holder, until_ms } => {
                let detail = format!(
                    "group scaled by another invocation ({holder}); cooling down for {} s more",
                    (until_ms - now_ms() + 999) / 1000
                );
                return Ok(skip(inv, t, Skip::new(group_name, "cooldown", detail)));
            }
            LeaseOutcome::Contended { holder, until_ms } => {
                return Err(FunctionError::LeaseContention {
                    lease: lease_name.to_string(),
                    holder,
                    until_ms,
                });
            }
        };
        let step = (rule, group_name, adjustment, settings);
        let action = match self.under_lock(t, step, action, &observed).await {
            Ok(Ok(action)) => action,
            Ok(Err(detail)) => {
                lease.release().await;
                return Ok(skip(inv, t, Skip::new(group_name, "superseded", detail)));
            }
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        self.apply(inv, t, claim, lease, action).await
    }

    /// SetDesiredCapacity with the intent recorded and the lease settled by its result.
    async fn apply(
        &self,
        inv: &mut Invocation,
        t: &AlarmTransition,
        claim: &mut HeldClaim,
        lease: HeldLease,
        action: ScaleAction,
    ) -> Result<Decision, FunctionError> {
        let intent = match serde_json::to_value(&action) {
            Ok(v) => v,
            Err(e) => {
                lease.release().await;
                return Err(FunctionError::Serialize(e.to_string()));
            }
        };
        let cooldown_ms = i64::from(action.cooldown_seconds) * 1000;
        let call = self
            .api
            .set_desired_capacity(&action.group, action.to, action.honor_cooldown);
        match guard::apply(claim, lease, &intent, || now_ms() + cooldown_ms, call).await {
            Ok(()) => {
                tracing::info!(group = %action.group, from = action.from, to = action.to, rule = %action.rule, "set desired capacity");
                let result = action_made(inv, t, &action);
                Ok((Plan::act(action), vec![result]))
            }
            // The group's own cooldown refused (HonorCooldown): a decision, not a failure.
            Err(e) if action.honor_cooldown && e.code == "ScalingActivityInProgress" => {
                let detail = format!("the group's own cooldown refused: {}", e.message);
                Ok(skip(
                    inv,
                    t,
                    Skip::new(&action.group, "group_cooldown", detail),
                ))
            }
            Err(e) => {
                inv.failed(
                    SET_DESIRED_CAPACITY,
                    &action.group,
                    &t.transition_id(),
                    &e.code,
                    json!({"alarm": t.name, "from": action.from, "to": action.to, "error": e.to_string(), "ambiguous": e.may_have_taken_effect()}),
                );
                Err(e.into())
            }
        }
    }

    async fn describe(&self, group_name: &str) -> Result<GroupState, FunctionError> {
        self.api
            .describe_group(group_name)
            .await?
            .ok_or_else(|| FunctionError::NotFound {
                what: "Auto Scaling group",
                name: group_name.to_string(),
            })
    }

    /// With the lock held: the group read again (the same action if nothing moved, a fresh one if
    /// it did and a step is still due), then the alarm's watermark raised to this transition.
    /// `Ok(Err(detail))` is a supersession.
    async fn under_lock(
        &self,
        t: &AlarmTransition,
        (rule, _, adjustment, settings): Step<'_>,
        action: ScaleAction,
        first: &Observed,
    ) -> Result<Result<ScaleAction, String>, FunctionError> {
        let group = self.describe(&action.group).await?;
        let action = if group == first.group {
            action
        } else {
            tracing::info!(group = %action.group, was = first.group.desired, now = group.desired, "group changed while planning: planning again");
            let observed = Observed {
                group,
                cooldown_until_ms: None, // the lease is ours now
                newest_handled_ms: first.newest_handled_ms,
            };
            match planner::plan(t, rule, adjustment, &observed, settings, now_ms())
                .actions
                .pop()
            {
                Some(fresh) => fresh,
                None => {
                    return Ok(Err(
                        "the group changed while planning and no step is due now".into(),
                    ));
                }
            }
        };
        let mark = t.state_changed_at.timestamp_millis();
        if !self
            .guards
            .table
            .advance_watermark(&alarm_watermark(t), mark, self.watermark_ttl(now_ms()))
            .await?
        {
            return Ok(Err(
                "a newer transition of this alarm was handled meanwhile".into(),
            ));
        }
        Ok(Ok(action))
    }

    fn watermark_ttl(&self, now: i64) -> i64 {
        now / 1000 + self.config.common.idempotency_ttl.as_secs() as i64
    }

    /// A skipped transition still counts as handled for staleness; failing to record that only
    /// weakens the superseded check, so it is logged, not fatal. A transition dated in the future
    /// never raises the mark.
    async fn raise_watermark_best_effort(&self, t: &AlarmTransition, now: i64) {
        let mark = t.state_changed_at.timestamp_millis();
        if mark > now + planner::CLOCK_SKEW_ALLOWANCE_MS {
            return;
        }
        if let Err(e) = self
            .guards
            .table
            .advance_watermark(&alarm_watermark(t), mark, self.watermark_ttl(now))
            .await
        {
            tracing::warn!(error = %e, alarm = %t.name, "could not raise the alarm watermark");
        }
    }
}

/// Audits a skip decided while acting and makes it the outcome.
fn skip(inv: &mut Invocation, t: &AlarmTransition, skip: Skip) -> Decision {
    skipped(inv, t, std::slice::from_ref(&skip));
    (Plan::skip(skip), vec![])
}
