//! The roller itself: its name, its claims' scope and audit actions, its time allowances, the
//! names of its locks, marks and registries, the struct built once per container, the push being
//! rolled out and a workload's response line. Below the handler and the phases, which all use it.

use std::time::Duration;

use autonomic::Skip;
use autonomic::audit::Reporter;
use autonomic::batch::ItemLine;
use autonomic::guard::{Guards, LeaseName, StateTable};
use serde::Serialize;
use serde_json::Value;

use crate::api::Connect;
use crate::config::RolloutConfig;
use crate::connect::Connector;
use crate::planner::{ContainerChange, Push, WorkloadRef};

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
pub(crate) fn line(w: &WorkloadRef, outcome: &'static str) -> WorkloadLine {
    WorkloadLine {
        workload: w.to_string(),
        outcome,
        ..WorkloadLine::default()
    }
}

/// A skip's line (`skipped`, `waiting`, `would_wait`).
pub(crate) fn skip_line(skip: &Skip, outcome: &'static str) -> WorkloadLine {
    WorkloadLine {
        workload: skip.target.clone(),
        outcome,
        reason: Some(skip.reason.clone()),
        detail: Some(skip.detail.clone()),
        ..WorkloadLine::default()
    }
}

/// The function's answer to a push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub function: &'static str,
    pub dry_run: bool,
    pub image: String,
    pub workloads: Vec<ItemLine<WorkloadLine>>,
    pub skips: Vec<Skip>,
}

/// One workload's line: what became of it, and what it was rolled with, watched to, or rolled
/// back from.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadLine {
    pub workload: String,
    /// `rolled`, `would_roll`, `superseded`, `unverified`, `rolled_back`, `skipped`, `waiting`,
    /// `would_wait`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<ContainerChange>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Dry run: the API server's own answer to the patch (`dryRun=All`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_dry_run: Option<Value>,
    /// A duplicate delivery: what the first one recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
    /// The rollout's last state seen, when the window ended first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the rollout failed (rolled back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// `changed_since`: the rollback found the workload changed and left it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<&'static str>,
    /// The digest rolled back and never applied to this workload again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_digest: Option<String>,
}
