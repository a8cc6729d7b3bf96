//! One invocation: parse → route → claim → observe → plan → guard → apply → audit.
//!
//! The guards, in the order they are taken for an action:
//! 1. the idempotency claim on the transition (alarm ARN + state + state-change time): one
//!    invocation per transition, however many deliveries;
//! 2. the group's lease, held as a lock while acting and then as the cooldown: one scaling per
//!    group per window, across concurrent invocations;
//! 3. the alarm's watermark, raised before acting: an older transition never acts after a newer one;
//! 4. the intent recorded on the claim: if this invocation dies after SetDesiredCapacity was sent,
//!    the one that takes the claim over checks the group before acting again.

use std::time::Duration;

use autonomic::audit::{AuditRecord, Outcome, Reporter};
use autonomic::events::{AlarmTransition, parse_alarm_transitions};
use autonomic::guard::{Claim, Lease, StateTable};
use autonomic::runtime::{Handler, now_ms};
use autonomic::{AwsError, FunctionError, Plan, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::AsgApi;
use crate::config::ScalerConfig;
use crate::planner::{self, Observed, Route, SET_DESIRED_CAPACITY, ScaleAction};
use crate::rules::{Adjustment, Rule};

pub const FUNCTION: &str = "asg-scaler";
/// Idempotency scope of this function's claims.
const SCOPE: &str = "asg-scaler";
/// The group lease is held at least this long while acting, then settled to the cooldown.
const APPLY_LOCK: Duration = Duration::from_secs(60);

/// The scaler, built once per container.
pub struct AsgScaler<A> {
    pub api: A,
    pub state: StateTable,
    pub config: ScalerConfig,
    pub reporter: Reporter,
}

fn group_lease(group: &str) -> String {
    format!("asg-cooldown#{group}")
}

fn watermark(t: &AlarmTransition) -> String {
    format!("alarm#{}", t.arn)
}

/// Per-invocation context.
struct Invocation<'a> {
    request_id: &'a str,
    deadline_ms: i64,
    records: Vec<AuditRecord>,
}

/// How acting on a transition ended, when it did not end well.
struct Failure {
    error: FunctionError,
    /// The claim may be given back at once: nothing was sent that could have taken effect.
    release_claim: bool,
}

impl From<FunctionError> for Failure {
    fn from(error: FunctionError) -> Self {
        Failure {
            error,
            release_claim: true,
        }
    }
}

impl From<AwsError> for Failure {
    fn from(error: AwsError) -> Self {
        FunctionError::from(error).into()
    }
}

impl<A: AsgApi> Handler for AsgScaler<A> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv = Invocation {
            request_id: &event.context.request_id,
            deadline_ms: event.context.deadline as i64,
            records: Vec::new(),
        };
        let transitions = match parse_alarm_transitions(&event.payload) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(field = %e.field, error = %e, "rejected event");
                let e = FunctionError::from(e);
                self.failed(&mut inv, "event", "", &e);
                self.reporter.metrics(&inv.records, now_ms());
                return Err(e);
            }
        };
        let mut responses = Vec::with_capacity(transitions.len());
        let mut first_error = None;
        // Each transition on its own: one failing does not stop the others. The invocation then
        // fails so the delivery is retried; those that succeeded are claimed and not repeated.
        for t in &transitions {
            match self.handle_transition(t, &mut inv).await {
                Ok(r) => responses.push(r),
                Err(e) => {
                    tracing::error!(alarm = %t.name, error_type = %e.error_type(), error = %e, "transition failed");
                    self.failed(&mut inv, &t.name, &t.transition_id(), &e);
                    responses.push(json!({"alarm": t.name, "transition": t.transition_id(), "error": e.to_string()}));
                    first_error.get_or_insert(e);
                }
            }
        }
        self.reporter.metrics(&inv.records, now_ms());
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(json!({
            "function": FUNCTION,
            "dryRun": self.config.common.dry_run,
            "transitions": responses,
        }))
    }
}

impl<A: AsgApi> AsgScaler<A> {
    fn audit(&self, inv: &mut Invocation, record: AuditRecord) {
        self.reporter
            .audit(inv.request_id, self.config.common.dry_run, &record);
        inv.records.push(record);
    }

    fn failed(&self, inv: &mut Invocation, target: &str, trigger: &str, e: &FunctionError) {
        self.audit(
            inv,
            AuditRecord {
                action: SET_DESIRED_CAPACITY.into(),
                outcome: Outcome::Failed,
                target: target.to_string(),
                trigger: trigger.to_string(),
                reason: Some(e.error_type()),
                details: json!({"error": e.to_string()}),
            },
        );
    }

    fn audit_skips(&self, inv: &mut Invocation, t: &AlarmTransition, skips: &[Skip]) {
        for s in skips {
            tracing::info!(alarm = %t.name, target = %s.target, reason = %s.reason, detail = %s.detail, "skip");
            self.audit(
                inv,
                AuditRecord {
                    action: SET_DESIRED_CAPACITY.into(),
                    outcome: Outcome::Skipped,
                    target: s.target.clone(),
                    trigger: t.transition_id(),
                    reason: Some(s.reason.clone()),
                    details: json!({"alarm": t.name, "state": t.state, "detail": s.detail}),
                },
            );
        }
    }

    /// Audits a skip decided while acting and makes it the outcome.
    fn skipped(
        &self,
        inv: &mut Invocation,
        t: &AlarmTransition,
        skip: Skip,
    ) -> (Plan<ScaleAction>, Vec<Value>) {
        self.audit_skips(inv, t, std::slice::from_ref(&skip));
        (Plan::skip(skip), vec![])
    }

    fn audit_action(
        &self,
        inv: &mut Invocation,
        t: &AlarmTransition,
        a: &ScaleAction,
        outcome: Outcome,
    ) -> Value {
        self.audit(
            inv,
            AuditRecord {
                action: SET_DESIRED_CAPACITY.into(),
                outcome,
                target: a.group.clone(),
                trigger: t.transition_id(),
                reason: None,
                details: json!({"alarm": t.name, "state": t.state, "rule": a.rule, "from": a.from, "to": a.to}),
            },
        );
        json!({"group": a.group, "from": a.from, "to": a.to, "outcome": outcome})
    }

    async fn handle_transition(
        &self,
        t: &AlarmTransition,
        inv: &mut Invocation<'_>,
    ) -> Result<Value, FunctionError> {
        let response = |plan: &Plan<ScaleAction>, rule: Option<&str>, results: Vec<Value>| {
            json!({
                "alarm": t.name,
                "state": t.state,
                "transition": t.transition_id(),
                "rule": rule,
                "plan": plan,
                "results": results,
            })
        };
        let (rule, group, adjustment) = match planner::route(t, &self.config.rules) {
            Route::Scale {
                rule,
                group,
                adjustment,
            } => (rule, group, adjustment),
            Route::Skip(skip) => {
                let plan = Plan::skip(skip);
                self.audit_skips(inv, t, &plan.skips);
                return Ok(response(&plan, None, vec![]));
            }
        };
        let dry_run = self.config.common.dry_run;
        let key = t.transition_id();
        let ttl = self.config.common.idempotency_ttl;
        let mut interrupted = None;
        if !dry_run {
            match self
                .state
                .claim(SCOPE, &key, inv.request_id, now_ms(), inv.deadline_ms, ttl)
                .await?
            {
                Claim::Claimed => {}
                Claim::TakenOver { intent } => {
                    tracing::warn!(alarm = %t.name, transition = %key, ?intent, "taking over an interrupted attempt");
                    interrupted =
                        intent.and_then(|i| serde_json::from_value::<ScaleAction>(i).ok());
                }
                Claim::Completed(previous) => {
                    tracing::info!(alarm = %t.name, transition = %key, "duplicate delivery: already handled");
                    let plan: Plan<ScaleAction> = Plan::skip(Skip::new(
                        &group,
                        "duplicate",
                        "this transition was already handled",
                    ));
                    self.audit_skips(inv, t, &plan.skips);
                    let mut r = response(&plan, Some(&rule.spec.name), vec![]);
                    r["previous"] = previous;
                    return Ok(r);
                }
                Claim::InProgress { owner, .. } => {
                    return Err(FunctionError::InProgress(format!(
                        "transition {key} is being handled by {owner}"
                    )));
                }
            }
        }
        match self
            .act(t, rule, &group, adjustment, interrupted, inv)
            .await
        {
            Ok((plan, results)) => {
                let r = response(&plan, Some(&rule.spec.name), results);
                if !dry_run
                    && let Err(e) = self
                        .state
                        .complete(SCOPE, &key, inv.request_id, &r, now_ms(), ttl)
                        .await
                {
                    // The action is done; a retry takes the claim over at the deadline, finds the
                    // recorded intent fulfilled and completes it then.
                    tracing::error!(error = %e, transition = %key, "could not complete the claim");
                }
                Ok(r)
            }
            Err(Failure {
                error,
                release_claim,
            }) => {
                if !dry_run && release_claim {
                    // Give the claim back so a retry acts at once instead of after the deadline.
                    if let Err(e) = self.state.abandon(SCOPE, &key, inv.request_id).await {
                        tracing::warn!(error = %e, "could not abandon the claim; it expires at the deadline");
                    }
                }
                Err(error)
            }
        }
    }

    /// Observe, plan, guard and apply for a routed transition holding its claim.
    async fn act(
        &self,
        t: &AlarmTransition,
        rule: &Rule,
        group_name: &str,
        adjustment: Adjustment,
        interrupted: Option<ScaleAction>,
        inv: &mut Invocation<'_>,
    ) -> Result<(Plan<ScaleAction>, Vec<Value>), Failure> {
        let dry_run = self.config.common.dry_run;
        let now = now_ms();
        let group = self.describe(group_name).await?;

        // A previous attempt recorded this action and then ran out of time: did it happen?
        if let Some(intent) = interrupted {
            if group.desired == intent.to {
                tracing::info!(group = %intent.group, to = intent.to, "the interrupted attempt had applied its action");
                let result = self.audit_action(inv, t, &intent, Outcome::Applied);
                return Ok((Plan::act(intent), vec![result]));
            }
            if group.desired != intent.from {
                let skip = Skip::new(
                    group_name,
                    "superseded",
                    format!(
                        "capacity moved from {} to {} since an interrupted attempt planned {} -> {}",
                        intent.from, group.desired, intent.from, intent.to
                    ),
                );
                return Ok(self.skipped(inv, t, skip));
            }
            // Not applied: plan afresh below.
        }

        let lease = group_lease(group_name);
        let newest_handled_ms = self.state.read_watermark(&watermark(t)).await?;
        let observed = Observed {
            group,
            cooldown_until_ms: self.state.read_lease(&lease).await?.map(|(_, until)| until),
            newest_handled_ms,
        };
        let mut plan = planner::plan(t, rule, adjustment, &observed, self.config.settings, now);
        self.audit_skips(inv, t, &plan.skips);
        let Some(mut action) = plan.actions.pop() else {
            if !dry_run {
                self.raise_watermark_best_effort(t, now).await;
            }
            return Ok((plan, vec![]));
        };
        if dry_run {
            tracing::info!(group = %action.group, from = action.from, to = action.to, "dry run: would set desired capacity");
            let result = self.audit_action(inv, t, &action, Outcome::DryRun);
            plan.actions.push(action);
            return Ok((plan, vec![result]));
        }

        // Guard 2: the group lease, as a lock while acting.
        let hold = APPLY_LOCK.max(Duration::from_secs(u64::from(action.cooldown_seconds)));
        if let Lease::Held { holder, until_ms } = self
            .state
            .acquire_lease(&lease, inv.request_id, now, hold)
            .await?
        {
            let skip = Skip::new(
                &action.group,
                "cooldown",
                format!(
                    "another invocation ({holder}) is scaling this group or cooling down until {until_ms} ms"
                ),
            );
            return Ok(self.skipped(inv, t, skip));
        }
        // With the lock held, the group cannot change under us by our hand: re-read it, and
        // re-plan if it moved since the first read.
        match self
            .plan_again(t, rule, adjustment, &action, &observed, now)
            .await
        {
            Ok(Some(fresh)) => action = fresh,
            Err(failure) => {
                self.release(&lease, inv.request_id).await;
                return Err(failure);
            }
            Ok(None) => {
                let detail = "the group changed while planning and no step is due now";
                return Ok(self
                    .superseded_under_lock(inv, t, &lease, &action.group, detail)
                    .await);
            }
        }
        // Guard 3: the watermark, so an older transition cannot act after a newer one.
        match self
            .state
            .advance_watermark(
                &watermark(t),
                t.state_changed_at.timestamp_millis(),
                self.watermark_ttl(now),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let detail = "a newer transition of this alarm was handled meanwhile";
                return Ok(self
                    .superseded_under_lock(inv, t, &lease, &action.group, detail)
                    .await);
            }
            Err(e) => {
                self.release(&lease, inv.request_id).await;
                return Err(e.into());
            }
        }
        // Guard 4: the intent, for whoever takes this claim over if we die from here on.
        let intent = serde_json::to_value(&action).unwrap_or(Value::Null);
        if let Err(e) = self
            .state
            .record_intent(SCOPE, &t.transition_id(), inv.request_id, &intent)
            .await
        {
            self.release(&lease, inv.request_id).await;
            return Err(e.into());
        }

        match self
            .api
            .set_desired_capacity(&action.group, action.to, action.honor_cooldown)
            .await
        {
            Ok(()) => {
                let cooldown_end = now_ms() + i64::from(action.cooldown_seconds) * 1000;
                if let Err(e) = self
                    .state
                    .settle_lease(&lease, inv.request_id, cooldown_end)
                    .await
                {
                    tracing::warn!(error = %e, "could not settle the group lease; it ends after the apply lock");
                }
                tracing::info!(group = %action.group, from = action.from, to = action.to, rule = %action.rule, "set desired capacity");
                let result = self.audit_action(inv, t, &action, Outcome::Applied);
                Ok((Plan::act(action), vec![result]))
            }
            // The group's own cooldown refused (HonorCooldown): a decision, not a failure.
            Err(e) if action.honor_cooldown && e.code == "ScalingActivityInProgress" => {
                self.release(&lease, inv.request_id).await;
                let skip = Skip::new(
                    &action.group,
                    "group_cooldown",
                    format!("the group's own cooldown refused: {}", e.message),
                );
                Ok(self.skipped(inv, t, skip))
            }
            Err(e) => {
                self.audit(
                    inv,
                    AuditRecord {
                        action: SET_DESIRED_CAPACITY.into(),
                        outcome: Outcome::Failed,
                        target: action.group.clone(),
                        trigger: t.transition_id(),
                        reason: Some(e.code.clone()),
                        details: json!({"alarm": t.name, "from": action.from, "to": action.to, "error": e.to_string(), "ambiguous": e.is_ambiguous()}),
                    },
                );
                // The request may have taken effect: keep the lease and the claim (with its
                // intent) so nothing acts again before that is checked.
                let ambiguous = e.is_ambiguous();
                if !ambiguous {
                    self.release(&lease, inv.request_id).await;
                }
                Err(Failure {
                    error: e.into(),
                    release_claim: !ambiguous,
                })
            }
        }
    }

    async fn describe(&self, group_name: &str) -> Result<planner::GroupState, Failure> {
        self.api.describe_group(group_name).await?.ok_or_else(|| {
            FunctionError::NotFound {
                what: "Auto Scaling group",
                name: group_name.to_string(),
            }
            .into()
        })
    }

    /// Re-reads the group under the lock; the same action if nothing moved, a fresh one if it did
    /// and a step is still due, or `None`.
    async fn plan_again(
        &self,
        t: &AlarmTransition,
        rule: &Rule,
        adjustment: Adjustment,
        action: &ScaleAction,
        first: &Observed,
        now: i64,
    ) -> Result<Option<ScaleAction>, Failure> {
        let group = self.describe(&action.group).await?;
        if group == first.group {
            return Ok(Some(action.clone()));
        }
        tracing::info!(group = %action.group, was = first.group.desired, now = group.desired, "group changed while planning: planning again");
        let observed = Observed {
            group,
            cooldown_until_ms: None, // the lease is ours now
            newest_handled_ms: first.newest_handled_ms,
        };
        Ok(
            planner::plan(t, rule, adjustment, &observed, self.config.settings, now)
                .actions
                .pop(),
        )
    }

    /// Gives the group lease back and skips: something changed between planning and acting.
    async fn superseded_under_lock(
        &self,
        inv: &mut Invocation<'_>,
        t: &AlarmTransition,
        lease: &str,
        group: &str,
        detail: &str,
    ) -> (Plan<ScaleAction>, Vec<Value>) {
        self.release(lease, inv.request_id).await;
        self.skipped(inv, t, Skip::new(group, "superseded", detail))
    }

    async fn release(&self, lease: &str, holder: &str) {
        if let Err(e) = self.state.release_lease(lease, holder).await {
            tracing::warn!(error = %e, lease, "could not release the group lease; it ends after the apply lock");
        }
    }

    fn watermark_ttl(&self, now: i64) -> i64 {
        now / 1000 + self.config.common.idempotency_ttl.as_secs() as i64
    }

    /// A skipped transition still counts as handled for staleness; failing to record that only
    /// weakens the superseded check, so it is logged, not fatal.
    async fn raise_watermark_best_effort(&self, t: &AlarmTransition, now: i64) {
        if let Err(e) = self
            .state
            .advance_watermark(
                &watermark(t),
                t.state_changed_at.timestamp_millis(),
                self.watermark_ttl(now),
            )
            .await
        {
            tracing::warn!(error = %e, alarm = %t.name, "could not raise the alarm watermark");
        }
    }
}
