//! What the scaler reports: the response of a transition, and its audit records.

use autonomic::audit::Outcome;
use autonomic::events::AlarmTransition;
use autonomic::{FunctionError, Invocation, Plan, Skip};
use serde_json::{Value, json};

use crate::planner::{SET_DESIRED_CAPACITY, ScaleAction};

pub(crate) fn response(
    t: &AlarmTransition,
    plan: &Plan<ScaleAction>,
    rule: Option<&str>,
    results: Vec<Value>,
) -> Value {
    json!({
        "alarm": t.name,
        "state": t.state,
        "transition": t.transition_id(),
        "rule": rule,
        "plan": plan,
        "results": results,
    })
}

pub(crate) fn failed(inv: &mut Invocation, target: &str, trigger: &str, e: &FunctionError) {
    inv.failed(
        SET_DESIRED_CAPACITY,
        target,
        trigger,
        &e.error_type(),
        json!({"error": e.to_string()}),
    );
}

pub(crate) fn skipped(inv: &mut Invocation, t: &AlarmTransition, skips: &[Skip]) {
    for s in skips {
        inv.skipped(
            SET_DESIRED_CAPACITY,
            &t.transition_id(),
            s,
            json!({"alarm": t.name, "state": t.state, "detail": s.detail}),
        );
    }
}

/// The result line of an action the step made (or, in dry run, planned).
pub(crate) fn result_line(inv: &Invocation, a: &ScaleAction) -> Value {
    let outcome = if inv.dry_run {
        Outcome::DryRun
    } else {
        Outcome::Applied
    };
    json!({"group": a.group, "from": a.from, "to": a.to, "outcome": outcome})
}
