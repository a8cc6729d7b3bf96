//! One invocation: parse → route → claim → observe → plan → guard → apply → audit.

use autonomic::audit::{AuditRecord, Outcome, Reporter};
use autonomic::events::{AlarmTransition, parse_alarm_transitions};
use autonomic::guard::{Claim, Lease, StateTable};
use autonomic::runtime::{Handler, now_ms};
use autonomic::{FunctionError, Plan, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::AsgApi;
use crate::config::ScalerConfig;
use crate::planner::{self, Observed, Route, SET_DESIRED_CAPACITY, ScaleAction};

pub const FUNCTION: &str = "asg-scaler";
/// Idempotency scope of this function's claims.
const SCOPE: &str = "asg-scaler";

/// The scaler, built once per container.
pub struct AsgScaler<A> {
    pub api: A,
    pub state: StateTable,
    pub config: ScalerConfig,
    pub reporter: Reporter,
}

fn cooldown_lease(group: &str) -> String {
    format!("asg-cooldown#{group}")
}

fn watermark(t: &AlarmTransition) -> String {
    format!("alarm#{}", t.arn)
}

/// Per-transition context from the invocation.
struct Invocation<'a> {
    request_id: &'a str,
    deadline_ms: i64,
}

impl<A: AsgApi> Handler for AsgScaler<A> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let inv = Invocation {
            request_id: &event.context.request_id,
            deadline_ms: event.context.deadline as i64,
        };
        let transitions = parse_alarm_transitions(&event.payload).inspect_err(|e| {
            tracing::warn!(field = %e.field, error = %e, "rejected event");
        })?;
        let mut responses = Vec::with_capacity(transitions.len());
        let mut records = Vec::new();
        let mut first_error = None;
        // Each transition on its own: one failing does not stop the others. The invocation then
        // fails so the delivery is retried; the ones that succeeded are claimed and not repeated.
        for t in &transitions {
            match self.handle_transition(t, &inv, &mut records).await {
                Ok(r) => responses.push(r),
                Err(e) => {
                    tracing::error!(alarm = %t.name, error_type = %e.error_type(), error = %e, "transition failed");
                    responses.push(json!({"alarm": t.name, "transition": t.transition_id(), "error": e.to_string()}));
                    first_error.get_or_insert(e);
                }
            }
        }
        self.reporter.metrics(&records, now_ms());
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
    fn audit(&self, inv: &Invocation, records: &mut Vec<AuditRecord>, record: AuditRecord) {
        self.reporter
            .audit(inv.request_id, self.config.common.dry_run, &record);
        records.push(record);
    }

    fn audit_skips(
        &self,
        inv: &Invocation,
        t: &AlarmTransition,
        skips: &[Skip],
        records: &mut Vec<AuditRecord>,
    ) {
        for s in skips {
            tracing::info!(alarm = %t.name, target = %s.target, reason = %s.reason, detail = %s.detail, "skip");
            self.audit(
                inv,
                records,
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

    async fn handle_transition(
        &self,
        t: &AlarmTransition,
        inv: &Invocation<'_>,
        records: &mut Vec<AuditRecord>,
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
                self.audit_skips(inv, t, &plan.skips, records);
                return Ok(response(&plan, None, vec![]));
            }
        };
        let dry_run = self.config.common.dry_run;
        let key = t.transition_id();
        let now = now_ms();
        if !dry_run {
            match self
                .state
                .claim(
                    SCOPE,
                    &key,
                    inv.request_id,
                    now,
                    inv.deadline_ms,
                    self.config.common.idempotency_ttl,
                )
                .await?
            {
                Claim::Claimed => {}
                Claim::Completed(previous) => {
                    tracing::info!(alarm = %t.name, transition = %key, "duplicate delivery: already handled");
                    let plan: Plan<ScaleAction> = Plan::skip(Skip::new(
                        &group,
                        "duplicate",
                        "this transition was already handled",
                    ));
                    self.audit_skips(inv, t, &plan.skips, records);
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
        let (plan, results) = match self
            .observe_plan_apply(t, rule, &group, adjustment, inv, records, now)
            .await
        {
            Ok(done) => done,
            Err(e) => {
                if !dry_run {
                    // Give the claim back so a retry acts at once instead of after the deadline.
                    if let Err(abandon) = self.state.abandon(SCOPE, &key, inv.request_id).await {
                        tracing::warn!(error = %abandon, "could not abandon the claim; it expires at the deadline");
                    }
                }
                return Err(e);
            }
        };
        let r = response(&plan, Some(&rule.spec.name), results);
        if !dry_run {
            self.state
                .complete(
                    SCOPE,
                    &key,
                    inv.request_id,
                    &r,
                    now_ms(),
                    self.config.common.idempotency_ttl,
                )
                .await?;
        }
        Ok(r)
    }

    #[allow(clippy::too_many_arguments)]
    async fn observe_plan_apply(
        &self,
        t: &AlarmTransition,
        rule: &crate::rules::Rule,
        group_name: &str,
        adjustment: crate::rules::Adjustment,
        inv: &Invocation<'_>,
        records: &mut Vec<AuditRecord>,
        now: i64,
    ) -> Result<(Plan<ScaleAction>, Vec<Value>), FunctionError> {
        let dry_run = self.config.common.dry_run;
        let group =
            self.api
                .describe_group(group_name)
                .await?
                .ok_or_else(|| FunctionError::NotFound {
                    what: "Auto Scaling group",
                    name: group_name.to_string(),
                })?;
        let lease = cooldown_lease(group_name);
        let observed = Observed {
            group,
            cooldown_until_ms: self.state.read_lease(&lease).await?.map(|(_, until)| until),
            newest_handled_ms: self.state.read_watermark(&watermark(t)).await?,
        };
        let mut plan = planner::plan(t, rule, adjustment, &observed, self.config.settings, now);
        self.audit_skips(inv, t, &plan.skips, records);
        let mut results = Vec::new();
        let mut actions = std::mem::take(&mut plan.actions);
        for action in actions.drain(..) {
            let record = |outcome, reason: Option<String>| AuditRecord {
                action: SET_DESIRED_CAPACITY.into(),
                outcome,
                target: action.group.clone(),
                trigger: t.transition_id(),
                reason,
                details: json!({"alarm": t.name, "state": t.state, "rule": action.rule, "from": action.from, "to": action.to}),
            };
            if dry_run {
                tracing::info!(group = %action.group, from = action.from, to = action.to, "dry run: would set desired capacity");
                self.audit(inv, records, record(Outcome::DryRun, None));
                results.push(json!({"group": action.group, "from": action.from, "to": action.to, "outcome": Outcome::DryRun}));
                plan.actions.push(action);
                continue;
            }
            // The cooldown lease is the guard: only one invocation per group per window gets it,
            // however many raced past the read above.
            let hold = std::time::Duration::from_secs(u64::from(action.cooldown_seconds));
            match self
                .state
                .acquire_lease(&lease, inv.request_id, now, hold)
                .await?
            {
                Lease::Held { holder, until_ms } => {
                    let skip = Skip::new(
                        &action.group,
                        "cooldown",
                        format!(
                            "another invocation ({holder}) scaled this group; cooling down until {until_ms} ms"
                        ),
                    );
                    self.audit_skips(inv, t, std::slice::from_ref(&skip), records);
                    plan.skips.push(skip);
                    continue;
                }
                Lease::Acquired { .. } => {}
            }
            if let Err(e) = self
                .api
                .set_desired_capacity(&action.group, action.to, action.honor_cooldown)
                .await
            {
                self.audit(inv, records, record(Outcome::Failed, Some(e.to_string())));
                if let Err(release) = self.state.release_lease(&lease, inv.request_id).await {
                    tracing::warn!(error = %release, "could not release the cooldown lease");
                }
                return Err(e.into());
            }
            tracing::info!(group = %action.group, from = action.from, to = action.to, rule = %action.rule, "set desired capacity");
            self.audit(inv, records, record(Outcome::Applied, None));
            results.push(json!({"group": action.group, "from": action.from, "to": action.to, "outcome": Outcome::Applied}));
            plan.actions.push(action);
        }
        if !dry_run {
            let ttl_s = now / 1000 + self.config.common.idempotency_ttl.as_secs() as i64;
            self.state
                .advance_watermark(&watermark(t), t.state_changed_at.timestamp_millis(), ttl_s)
                .await?;
        }
        Ok((plan, results))
    }
}
