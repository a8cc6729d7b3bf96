//! What the scaler reports: the response of a transition, and its audit records.

use autonomic::audit::Outcome;
use autonomic::batch::ItemLine;
use autonomic::events::{AlarmState, AlarmTransition};
use autonomic::{FunctionError, Invocation, Plan, Skip};
use serde::Serialize;
use serde_json::{Value, json};

use crate::planner::{SET_DESIRED_CAPACITY, ScaleAction};

/// The function's answer to an alarm delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub function: &'static str,
    pub dry_run: bool,
    pub transitions: Vec<ItemLine<TransitionLine>>,
}

/// The function's answer to the scheduled sweep.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepResponse {
    pub function: &'static str,
    pub dry_run: bool,
    pub sweep: Sweep,
}

/// What the sweep found held, and what it did with each alarm due.
#[derive(Debug, Serialize)]
pub struct Sweep {
    pub held: usize,
    pub steps: Vec<SweepStep>,
}

/// One held alarm's step in a sweep.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SweepStep {
    Stepped(TransitionLine),
    /// No longer in the state it was held in: dropped.
    Dropped {
        alarm: String,
        dropped: String,
    },
    /// The step failed; the alarm stays held for the next sweep.
    Failed {
        alarm: String,
        error: String,
    },
}

/// One transition: its plan (the one shape every function's plans have) and what was done.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionLine {
    pub alarm: String,
    pub state: AlarmState,
    pub transition: String,
    pub rule: Option<String>,
    pub plan: Plan<ScaleAction>,
    pub results: Vec<ActionResult>,
    /// A duplicate delivery: what the first one recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
}

/// A step made (or, in dry run, planned).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResult {
    pub group: String,
    pub from: i32,
    pub to: i32,
    pub outcome: Outcome,
}

pub(crate) fn line(
    t: &AlarmTransition,
    plan: Plan<ScaleAction>,
    rule: Option<&str>,
    results: Vec<ActionResult>,
) -> TransitionLine {
    TransitionLine {
        alarm: t.name.clone(),
        state: t.state,
        transition: t.transition_id(),
        rule: rule.map(str::to_string),
        plan,
        results,
        previous: None,
    }
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

/// The result of an action the step made (or, in dry run, planned).
pub(crate) fn result_line(inv: &Invocation, a: &ScaleAction) -> ActionResult {
    ActionResult {
        group: a.group.clone(),
        from: a.from,
        to: a.to,
        outcome: if inv.dry_run {
            Outcome::DryRun
        } else {
            Outcome::Applied
        },
    }
}
