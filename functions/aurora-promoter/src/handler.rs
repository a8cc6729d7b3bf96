//! One invocation.
//!
//! An alarm transition: route → screen → claim → observe → plan → lease → trip the breaker →
//! promote → (if already visible) complete: the breaker `tripped`, the record pointed at the new
//! writer. An RDS event: find the target's promotion in flight and complete it, or release its
//! breaker when RDS reports the promotion failed or was cancelled and the clusters agree.

use autonomic::events::{AlarmTransition, is_rds_event, parse_alarm_transitions};
use autonomic::guard::Outcome;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Plan, Skip, batch};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::AuroraApi;
use crate::planner::{self, PROMOTE, Promotion};
use crate::promote::PromoteStep;
use crate::promoter::{AuroraPromoter, FUNCTION};

impl<A: AuroraApi> Handler for AuroraPromoter<A> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv =
            Invocation::from_lambda(&self.reporter, &event.context, self.config.common.dry_run);
        let result = if is_rds_event(&event.payload) {
            self.handle_rds_event(&event.payload, &mut inv).await
        } else {
            self.handle_alarms(&event.payload, &mut inv).await
        };
        inv.finish();
        result
    }
}

pub(crate) fn rejected(inv: &mut Invocation, e: autonomic::events::EventError) -> FunctionError {
    tracing::warn!(field = %e.field, error = %e, "rejected event");
    let e = FunctionError::from(e);
    inv.failed(
        PROMOTE,
        "event",
        "",
        &e.error_type(),
        json!({"error": e.to_string()}),
    );
    e
}

pub(crate) fn skipped(
    inv: &mut Invocation,
    action: &str,
    trigger: &str,
    skips: &[Skip],
    details: &Value,
) {
    for s in skips {
        inv.skipped(action, trigger, s, details.clone());
    }
}

impl<A: AuroraApi> AuroraPromoter<A> {
    async fn handle_alarms(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let transitions = parse_alarm_transitions(payload).map_err(|e| rejected(inv, e))?;
        let mut items = batch::Driver::new(PROMOTE);
        for t in &transitions {
            if items.start(inv, &t.name) {
                let result = self.handle_transition(t, inv).await;
                items.done(inv, &t.name, &t.transition_id(), result);
            }
        }
        let lines = items.finish(inv)?;
        Ok(json!({"function": FUNCTION, "dryRun": inv.dry_run, "transitions": lines}))
    }

    async fn handle_transition(
        &self,
        t: &AlarmTransition,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let trigger = t.transition_id();
        let line = |target: &str, outcome: &str, plan: &Plan<Promotion>, extra: Value| {
            let mut v = json!({
                "alarm": t.name,
                "target": target,
                "outcome": outcome,
                "plan": plan,
            });
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            v
        };
        let target = match planner::route(t, &self.config.targets) {
            Ok(target) => target,
            Err(skip) => {
                let plan = Plan::skip(skip);
                skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
                return Ok(line("", "skipped", &plan, json!({})));
            }
        };
        let name = target.name();
        let screened = planner::screen(t, target, now_ms(), self.config.max_event_age).or_else(|| {
            planner::health_check_id(t, target).is_none().then(|| {
                Skip::new(
                    name,
                    "no_health_check",
                    "neither the target nor the alarm's HealthCheckId dimension names a health check to confirm with",
                )
            })
        });
        if let Some(skip) = screened {
            let plan = Plan::skip(skip);
            skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
            return Ok(line(name, "skipped", &plan, json!({})));
        }
        let step = PromoteStep::new(self, t, target);
        let outcome = self.guards.step(inv, &trigger, &trigger, &step).await?;
        let mut extra = step.extra.lock().map(|e| e.clone()).unwrap_or_default();
        let skips = step.skips.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(match outcome {
            Outcome::WouldAct { intent, .. } => line(
                name,
                "would_promote",
                &Plan {
                    actions: vec![intent],
                    skips,
                },
                extra,
            ),
            Outcome::Acted { intent, .. } => line(name, "promoted", &Plan::act(intent), extra),
            Outcome::Skipped { skip } => line(name, "skipped", &Plan::skip(skip), extra),
            Outcome::Duplicate { skip, previous } => {
                extra["previous"] = previous;
                line(name, "skipped", &Plan::skip(skip), extra)
            }
        })
    }
}
