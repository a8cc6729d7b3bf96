//! One invocation: parse → route → claim → act (guarded, [`crate::guarded`]) → end the claim →
//! respond. Each transition on its own: one failing does not stop the others; the invocation then
//! fails so the delivery is retried, and those that succeeded are claimed and not repeated.

use autonomic::events::{AlarmTransition, parse_alarm_transitions};
use autonomic::guard::Outcome;
use autonomic::runtime::Handler;
use autonomic::{FunctionError, Invocation, Plan, batch};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::api::AsgApi;
use crate::followup;
use crate::guarded::ScaleStep;
use crate::planner::{self, Route, SET_DESIRED_CAPACITY};
use crate::report::{Response, TransitionLine, failed, line, result_line, skipped};
use crate::scaler::{AsgScaler, FUNCTION};

impl<A: AsgApi> Handler for AsgScaler<A> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv =
            Invocation::from_lambda(&self.reporter, &event.context, self.config.common.dry_run);
        let result = self.handle_payload(&event.payload, &mut inv).await;
        inv.finish();
        result
    }
}

impl<A: AsgApi> AsgScaler<A> {
    async fn handle_payload(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        if followup::is_sweep(payload) {
            return self.sweep(inv).await;
        }
        let transitions = parse_alarm_transitions(payload).map_err(|e| {
            tracing::warn!(field = %e.field, error = %e, "rejected event");
            let e = FunctionError::from(e);
            failed(inv, "event", "", &e);
            e
        })?;
        // One rule with the other functions: items left at the deadline first, then a retryable
        // failure (a permanent one first in the batch no longer hides a retryable one after it).
        let mut items = batch::Driver::new(SET_DESIRED_CAPACITY);
        for t in &transitions {
            if items.start(inv, &t.name) {
                let result = self.handle_transition(t, inv, None).await;
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

    /// Handles one transition; `step_due` is set when the sweep steps a held alarm again (its own
    /// claim, and no staleness: CloudWatch said the alarm holds now).
    pub(crate) async fn handle_transition(
        &self,
        t: &AlarmTransition,
        inv: &mut Invocation,
        step_due: Option<i64>,
    ) -> Result<TransitionLine, FunctionError> {
        let (rule, group, adjustment) = match planner::route(t, &self.config.rules) {
            Route::Scale {
                rule,
                group,
                adjustment,
            } => (rule, group, adjustment),
            Route::Skip(skip) => {
                let plan = Plan::skip(skip);
                skipped(inv, t, &plan.skips);
                return Ok(line(t, plan, None, vec![]));
            }
        };
        let rule_name = Some(rule.spec.name.as_str());
        let mut settings = self.config.settings;
        let mut key = t.transition_id();
        if let Some(due) = step_due {
            settings.max_event_age = None;
            key = format!("{key}|step@{due}");
        }
        let step = ScaleStep::new(self, t, rule, &group, adjustment, settings);
        let outcome = self
            .guards
            .step(inv, &t.transition_id(), &key, &step)
            .await?;
        let (plan, results, previous) = match outcome {
            Outcome::WouldAct { intent, .. } | Outcome::Acted { intent, .. } => {
                let line = result_line(inv, &intent);
                (Plan::act(intent), vec![line], None)
            }
            Outcome::Skipped { skip } => (Plan::skip(skip), vec![], None),
            Outcome::Duplicate { skip, previous } => {
                tracing::info!(alarm = %t.name, "duplicate delivery: already handled");
                (Plan::skip(skip), vec![], Some(previous))
            }
        };
        let mut r = line(t, plan, rule_name, results);
        if let Some(previous) = previous {
            r.previous = Some(previous);
            return Ok(r);
        }
        if step_due.is_none() && !inv.dry_run {
            self.follow_up(t, rule, &r).await;
        }
        Ok(r)
    }
}
