//! The survey: a cluster's namespaces listed and each Deployment that follows the pushed repository
//! planned, before anything is rolled. Its plan is what each workload's roll step decides on
//! ([`crate::roll::RollStep`]): the step reads the workload again only under its lock.

use std::time::Duration;

use autonomic::{CallError, FunctionError, Invocation, Skip};

use crate::api::{Connect, KubeApi};
use crate::clusters::Cluster;
use crate::planner::{self, BadDigests, Decision, Push, WorkloadRef, WorkloadView};
use crate::roller::{Rollout, bad_digests_registry, newest_push_mark};

/// A workload to go through the roll step: its cluster's API, and what was decided on the read
/// the survey made (a roll, or why not).
pub(crate) struct ToRoll<K> {
    pub api: K,
    pub at: WorkloadRef,
    pub decision: Decision,
}

/// A workload whose previous rollout was still in progress: waited for, then planned again.
pub(crate) struct ToWait<K> {
    pub api: K,
    pub at: WorkloadRef,
    /// The `rollout_in_progress` skip, reported if the rollout does not end in time.
    pub skip: Skip,
    /// The digests rolled back on it, as the survey read them.
    pub bad: BadDigests,
}

/// One cluster's plan.
pub(crate) struct Planned<K> {
    pub rolls: Vec<ToRoll<K>>,
    pub skips: Vec<Skip>,
    pub waits: Vec<ToWait<K>>,
    /// What could not be read: a namespace (or a workload's bad digests) and why.
    pub failed: Vec<(String, FunctionError)>,
}

/// What the survey makes of one workload.
enum Planning {
    /// Not part of this push.
    None,
    /// Through the roll step, with this decision.
    Roll(Decision),
    /// A final skip.
    Skip(Skip),
    /// Its previous rollout is still in progress.
    Wait(Skip),
}

/// The skip of a workload that no longer exists.
pub(crate) fn gone(at: &WorkloadRef) -> Skip {
    Skip::new(at.to_string(), "gone", "the deployment no longer exists")
}

impl<C: Connect> Rollout<C> {
    /// Lists a cluster's namespaces and plans each workload that follows the repository: the
    /// rolls, the final skips, the workloads to come back to (a rollout still in progress), and
    /// the namespaces that could not be read (the others are planned all the same).
    pub(crate) async fn plan_cluster(
        &self,
        inv: &Invocation,
        cluster: &Cluster,
        push: &Push,
    ) -> Result<Planned<C::Api>, FunctionError> {
        let needed = Duration::from_millis(inv.time_left_ms().max(0) as u64);
        let mut api = self.connector.workloads(cluster, needed).await?;
        let mut rolls = Vec::new();
        let mut waits = Vec::new();
        let mut skips = Vec::new();
        let mut failed = Vec::new();
        let mut refreshed = false;
        for namespace in &cluster.namespaces {
            let views = match api.list(namespace).await {
                // A token refused: the cached client's may have outlived what the cluster
                // accepts; one fresh client, then the error stands.
                Err(e) if !refreshed && e.code == "Unauthorized" => {
                    tracing::warn!(cluster = %cluster.name, "token refused: minting a new one");
                    refreshed = true;
                    self.connector.forget(&cluster.name).await;
                    api = self.connector.workloads(cluster, needed).await?;
                    api.list(namespace).await
                }
                other => other,
            };
            let views = match views {
                Ok(v) => v,
                Err(e) => {
                    failed.push((namespace.clone(), e.into()));
                    continue;
                }
            };
            for view in views.iter().filter(|v| follows_repository(v, push)) {
                let (bad, newest) = match self.history(&view.at).await {
                    Ok(h) => h,
                    Err(e) => {
                        failed.push((view.at.name.clone(), e));
                        continue;
                    }
                };
                match plan_workload(inv.dry_run, push, view, &bad, newest) {
                    Planning::None => {}
                    Planning::Roll(decision) => rolls.push((view.at.clone(), decision)),
                    Planning::Skip(s) => skips.push(s),
                    Planning::Wait(s) => waits.push((view.at.clone(), s, bad)),
                }
            }
        }
        // Every workload of the cluster is rolled with its latest client.
        Ok(Planned {
            rolls: rolls
                .into_iter()
                .map(|(at, decision)| ToRoll {
                    api: api.clone(),
                    at,
                    decision,
                })
                .collect(),
            waits: waits
                .into_iter()
                .map(|(at, skip, bad)| ToWait {
                    api: api.clone(),
                    at,
                    skip,
                    bad,
                })
                .collect(),
            skips,
            failed,
        })
    }

    /// What was done to a workload before: the digests rolled back on it, and the time of the
    /// newest push rolled on it.
    pub(crate) async fn history(
        &self,
        w: &WorkloadRef,
    ) -> Result<(BadDigests, Option<i64>), FunctionError> {
        let bad = self.bad_digests(w).await?;
        let newest = self.guards.read_watermark(&newest_push_mark(w)).await?;
        Ok((bad, newest))
    }

    /// The digests rolled back on a workload before: never rolled onto it again.
    pub(crate) async fn bad_digests(&self, w: &WorkloadRef) -> Result<BadDigests, CallError> {
        Ok(self
            .guards
            .registry(&bad_digests_registry(w))
            .await?
            .into_iter()
            .collect())
    }
}

/// One workload's plan, from what the survey read of it and of its history.
fn plan_workload(
    dry_run: bool,
    push: &Push,
    view: &WorkloadView,
    bad: &BadDigests,
    newest: Option<i64>,
) -> Planning {
    let older = planner::older_push(push, &view.at, newest);
    match planner::decide(push, view, bad) {
        Decision::NotFollowing => Planning::None,
        // Running the pushed digest: ours, perhaps, from an attempt interrupted before it
        // verified or rolled back; its claim tells (a takeover finishes the job). Else what the
        // survey's read decides (a dry run, which takes no claim, says it already runs it).
        _ if planner::runs_digest(view, push) && dry_run => {
            Planning::Roll(Decision::Skip(Skip::new(
                view.at.to_string(),
                "already_running",
                format!("it already runs {}", push.digest),
            )))
        }
        decision if planner::runs_digest(view, push) => {
            Planning::Roll(older.map(Decision::Skip).unwrap_or(decision))
        }
        _ if older.is_some() => older.map_or(Planning::None, Planning::Skip),
        decision @ Decision::Roll(_) => Planning::Roll(decision),
        Decision::Skip(s) => Planning::Skip(s),
        Decision::Wait(s) => Planning::Wait(s),
    }
}

/// Whether any container of the workload follows the pushed repository (only those are read
/// further: the rest of the namespace did not opt in to this push).
fn follows_repository(view: &WorkloadView, push: &Push) -> bool {
    planner::follows(&view.annotations)
        .iter()
        .any(|f| f.repository == push.repository)
}
