//! The roller itself: its name, its claims' scope and audit actions, its time allowances, the
//! names of its locks, marks and registries, the struct built once per container, the push being
//! rolled out and a workload's response line. Below the handler and the phases, which all use it.

use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::guard::{Guards, LeaseName, StateTable};
use serde_json::{Value, json};

use crate::api::Connect;
use crate::config::RolloutConfig;
use crate::connect::Connector;
use crate::planner::{Push, WorkloadRef};

pub const FUNCTION: &str = "k8s-rollout";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "k8s-rollout";
/// The audit action of watching a rollout.
pub const VERIFY: &str = "VerifyRollout";
/// Time kept back from verification for the rollback and the audit after it.
pub const ROLLBACK_ALLOWANCE: Duration = Duration::from_secs(15);
/// The least time a roll is started with, to read its rollout at least once.
pub const MIN_VERIFY: Duration = Duration::from_secs(5);
/// How often a patch that met a 409 Conflict is re-planned and tried again.
pub const CONFLICT_ATTEMPTS: usize = 3;

/// A lock on a workload from its patch until its rollout is verified (or rolled back): a second
/// push waits instead of rolling on top of a rollout still in progress.
pub fn workload_lease(w: &WorkloadRef) -> LeaseName {
    LeaseName::new("k8s-rollout", &w.to_string())
}

/// The watermark of the newest push rolled on a workload (its time): older pushes are skipped.
pub fn newest_push_mark(w: &WorkloadRef) -> String {
    format!("k8s-rollout-push#{w}")
}

/// The registry of digests rolled back on a workload: never applied to it again.
pub fn bad_digests_registry(w: &WorkloadRef) -> String {
    format!("k8s-rollout-bad#{w}")
}

/// The roller, built once per container; `C` reaches the clusters ([`Connector`] in production).
pub struct Rollout<C = Connector> {
    pub connector: C,
    pub guards: Guards,
    pub config: RolloutConfig,
    pub reporter: Reporter,
}

impl<C: Connect> Rollout<C> {
    pub fn new(connector: C, state: StateTable, config: RolloutConfig, reporter: Reporter) -> Self {
        Self {
            connector,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }
}

/// The push being rolled out, and its audit records' trigger (`repository:tag@digest`).
pub(crate) struct Pushed {
    pub push: Push,
    pub trigger: String,
}

/// A workload's line in the response.
pub(crate) fn line(w: &WorkloadRef, outcome: &str, extra: Value) -> Value {
    let mut v = json!({"workload": w.to_string(), "outcome": outcome});
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}
