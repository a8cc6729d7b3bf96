//! One invocation.
//!
//! An alarm transition: route → screen → claim → observe → plan → lease → trip the breaker →
//! promote → (if already visible) complete: the breaker `tripped`, the record pointed at the new
//! writer. An RDS event: find the target's promotion in flight and complete it, or release its
//! breaker when RDS reports the promotion failed or was cancelled and the clusters agree.

use autonomic::batch::ItemLine;
use autonomic::events::{AlarmTransition, is_rds_event, parse_alarm_transitions};
use autonomic::guard::Outcome;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Plan, Skip, batch};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::AuroraApi;
use crate::planner::{self, Observed, PROMOTE, Promotion};
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

/// The function's answer to a health-check alarm delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub function: &'static str,
    pub dry_run: bool,
    pub transitions: Vec<ItemLine<TransitionLine>>,
}

/// One alarm transition: the target it stands for, the plan (the shape every function's plans
/// have), and what was observed and completed on the way.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionLine {
    pub alarm: String,
    pub target: String,
    pub outcome: &'static str,
    pub plan: Plan<Promotion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Value>,
    /// A duplicate delivery: what the first one recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
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
        let response = Response {
            function: FUNCTION,
            dry_run: inv.dry_run,
            transitions: items.finish(inv)?,
        };
        serde_json::to_value(response).map_err(|e| FunctionError::Serialize(e.to_string()))
    }

    async fn handle_transition(
        &self,
        t: &AlarmTransition,
        inv: &mut Invocation,
    ) -> Result<TransitionLine, FunctionError> {
        let trigger = t.transition_id();
        let line = |target: &str, outcome: &'static str, plan: Plan<Promotion>| TransitionLine {
            alarm: t.name.clone(),
            target: target.to_string(),
            outcome,
            plan,
            observed: None,
            completion: None,
            previous: None,
        };
        let target = match planner::route(t, &self.config.targets) {
            Ok(target) => target,
            Err(skip) => {
                let plan = Plan::skip(skip);
                skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
                return Ok(line("", "skipped", plan));
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
            return Ok(line(name, "skipped", plan));
        }
        let step = PromoteStep::new(self, t, target);
        let outcome = self.guards.step(inv, &trigger, &trigger, &step).await?;
        let skips = step.skips.lock().map(|s| s.clone()).unwrap_or_default();
        let (outcome, plan, previous) = match outcome {
            Outcome::WouldAct { intent, .. } => (
                "would_promote",
                Plan {
                    actions: vec![intent],
                    skips,
                },
                None,
            ),
            Outcome::Acted { intent, .. } => ("promoted", Plan::act(intent), None),
            Outcome::Skipped { skip } => ("skipped", Plan::skip(skip), None),
            Outcome::Duplicate { skip, previous } => ("skipped", Plan::skip(skip), Some(previous)),
        };
        Ok(TransitionLine {
            observed: step.observed.lock().ok().and_then(|o| o.clone()),
            completion: step.completion.lock().ok().and_then(|c| c.clone()),
            previous,
            ..line(name, outcome, plan)
        })
    }
}
