//! One invocation: parse → screen the push → per cluster and namespace, read the Deployments →
//! plan each one that follows the pushed repository → roll (claim, lease, patch) one by one →
//! verify every roll at once → roll back a failed one → respond.
//!
//! Each workload on its own: one failing does not stop the others, and on the retry of the
//! delivery the ones already rolled are claimed and skipped. The invocation fails when a
//! workload did (a retryable error first, so the retry comes).

use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::context::WORK_RESERVE;
use autonomic::events::{EcrEvent, parse_ecr_event};
use autonomic::guard::{self, Claimed, Guards, HeldClaim, LeaseName, StateTable};
use autonomic::plan::stale;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{CallError, ErrorClass, FunctionError, Invocation, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::clusters::Cluster;
use crate::config::RolloutConfig;
use crate::connect::Connector;
use crate::kube_api::Workloads;
use crate::planner::{
    self, BadDigests, Decision, Push, ROLL, ROLLBACK, Roll, RolloutState, WorkloadRef, WorkloadView,
};

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

/// The roller, built once per container.
pub struct Rollout {
    pub connector: Connector,
    pub guards: Guards,
    pub config: RolloutConfig,
    pub reporter: Reporter,
}

impl Rollout {
    pub fn new(
        connector: Connector,
        state: StateTable,
        config: RolloutConfig,
        reporter: Reporter,
    ) -> Self {
        Self {
            connector,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }
}

impl Handler for Rollout {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv =
            Invocation::from_lambda(&self.reporter, &event.context, self.config.common.dry_run);
        let result = self.handle_payload(&event.payload, &mut inv).await;
        inv.finish();
        result
    }
}

/// A roll patched and not yet verified.
struct InFlight {
    roll: Roll,
    workloads: Workloads,
    claim: HeldClaim,
    lease: LeaseName,
}

/// How a verification ended.
enum Verified {
    Complete,
    Failed(String),
    /// The window ended first: the last state seen.
    Unverified(String),
    /// The workload could not be read.
    Unreadable(CallError),
    /// Someone changed the image since the roll: nothing of ours to judge or roll back.
    Superseded,
}

fn line(w: &WorkloadRef, outcome: &str, extra: Value) -> Value {
    let mut v = json!({"workload": w.to_string(), "outcome": outcome});
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}

/// Nothing was done: a claim that ends with it is released, not kept.
fn retry_later(skip: &Skip) -> FunctionError {
    FunctionError::not_yet(
        "RolloutInProgress",
        format!("{}: {}", skip.target, skip.detail),
    )
}

impl Rollout {
    async fn handle_payload(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let event = parse_ecr_event(payload).map_err(|e| {
            tracing::warn!(field = %e.field, error = %e, "rejected event");
            let e = FunctionError::from(e);
            inv.failed(
                ROLL,
                "event",
                "",
                &e.error_type(),
                json!({"error": e.to_string()}),
            );
            e
        })?;
        let action = match &event {
            EcrEvent::ImageAction(a) => a,
            EcrEvent::Other { .. } => return Ok(self.skipped_push(inv, &event, "")),
        };
        let trigger = format!(
            "{}:{}@{}",
            action.repository_name,
            action.image_tag.as_deref().unwrap_or(""),
            action.image_digest
        );
        if event.skip_reason().is_some() {
            return Ok(self.skipped_push(inv, &event, &trigger));
        }
        if let Some(skip) = stale(
            &trigger,
            "the push",
            action.time_ms,
            now_ms(),
            self.config.max_event_age,
        ) {
            inv.skipped(ROLL, &trigger, &skip, json!({}));
            return Ok(
                json!({"function": FUNCTION, "dryRun": inv.dry_run, "image": trigger, "workloads": [], "skips": [skip]}),
            );
        }
        let push = Push::new(
            &action.repository_name,
            action.image_tag.as_deref().unwrap_or_default(),
            &action.image_digest,
            &action.account,
            &action.region,
        )
        .at(action.time_ms);
        let mut lines = Vec::new();
        let mut skips = Vec::new();
        let mut errors = Vec::new();
        let mut not_done = Vec::new();
        // Read and plan every cluster first, then roll.
        let mut rolls: Vec<(Workloads, WorkloadRef, Option<Roll>)> = Vec::new();
        let mut waiting: Vec<(Workloads, WorkloadRef, Skip)> = Vec::new();
        for cluster in &self.config.clusters.clusters {
            if inv.should_stop() {
                not_done.push(cluster.name.clone());
                lines.push(json!({"cluster": cluster.name, "outcome": "not_done"}));
                continue;
            }
            let planned = match self.plan_cluster(inv, cluster, &push).await {
                Ok(p) => p,
                Err(e) => {
                    // Not reachable at all (DescribeCluster, credentials, the kubeconfig).
                    self.cluster_failed(inv, &trigger, &cluster.name, &e, &mut lines);
                    errors.push(e);
                    continue;
                }
            };
            for skip in &planned.skips {
                inv.skipped(ROLL, &trigger, skip, json!({"image": push.image()}));
                lines.push(line_for_skip(skip, "skipped"));
            }
            skips.extend(planned.skips);
            for (namespace, e) in planned.failed {
                self.cluster_failed(
                    inv,
                    &trigger,
                    &format!("{}/{namespace}", cluster.name),
                    &e,
                    &mut lines,
                );
                errors.push(e);
            }
            let w = planned.workloads;
            rolls.extend(planned.rolls.into_iter().map(|(at, r)| (w.clone(), at, r)));
            waiting.extend(planned.waits.into_iter().map(|(at, s)| (w.clone(), at, s)));
        }
        // Roll one by one (each behind its claim and lease); then, for the workloads whose
        // previous rollout was still in progress, wait for it (within this invocation's time) and
        // roll them too; then watch every roll at once.
        let mut in_flight = Vec::new();
        for (workloads, at, roll) in rolls {
            self.roll_one(
                inv,
                &push,
                &trigger,
                workloads,
                &at,
                roll,
                &mut in_flight,
                &mut lines,
                &mut errors,
                &mut not_done,
            )
            .await;
        }
        for (workloads, at, wait) in waiting {
            if !inv.dry_run && self.rollout_settles(inv, &workloads, &at).await {
                self.roll_one(
                    inv,
                    &push,
                    &trigger,
                    workloads,
                    &at,
                    None,
                    &mut in_flight,
                    &mut lines,
                    &mut errors,
                    &mut not_done,
                )
                .await;
                continue;
            }
            inv.skipped(ROLL, &trigger, &wait, json!({"image": push.image()}));
            // A dry run reports the wait with the rest of its plan; a real one comes back for it.
            if inv.dry_run {
                lines.push(line_for_skip(&wait, "would_wait"));
            } else {
                lines.push(line_for_skip(&wait, "waiting"));
                errors.push(retry_later(&wait));
            }
            skips.push(wait);
        }
        if !in_flight.is_empty() {
            let full_window_ms = now_ms() + self.config.verify.as_millis() as i64;
            let window_end_ms = full_window_ms
                .min(inv.deadline_ms - (WORK_RESERVE + ROLLBACK_ALLOWANCE).as_millis() as i64);
            let cut_by_deadline = window_end_ms < full_window_ms;
            let verdicts = futures_util::future::join_all(
                in_flight
                    .iter()
                    .map(|f| self.verify(&f.workloads, &f.roll, window_end_ms)),
            )
            .await;
            for (f, verdict) in in_flight.into_iter().zip(verdicts) {
                match self
                    .conclude(inv, &push, &trigger, f, verdict, cut_by_deadline)
                    .await
                {
                    Ok(l) => lines.push(l),
                    Err((w, e)) => {
                        lines.push(line(
                            &w,
                            "failed",
                            json!({"errorType": e.error_type(), "error": e.to_string()}),
                        ));
                        errors.push(e);
                    }
                }
            }
        }
        if !not_done.is_empty() {
            let e = FunctionError::DeadlineNear {
                not_done: not_done.join(", "),
            };
            inv.failed(
                ROLL,
                &not_done.join(","),
                &trigger,
                &e.error_type(),
                json!({}),
            );
            errors.insert(0, e);
        }
        if let Some(e) = FunctionError::first_retryable(errors) {
            return Err(e);
        }
        Ok(json!({
            "function": FUNCTION,
            "dryRun": inv.dry_run,
            "image": push.image(),
            "workloads": lines,
            "skips": skips,
        }))
    }

    /// One workload's roll started, if there is time to roll, watch and roll back: in flight,
    /// done (a skip), failed, or not done.
    #[allow(clippy::too_many_arguments)]
    async fn roll_one(
        &self,
        inv: &mut Invocation,
        push: &Push,
        trigger: &str,
        workloads: Workloads,
        at: &WorkloadRef,
        roll: Option<Roll>,
        in_flight: &mut Vec<InFlight>,
        lines: &mut Vec<Value>,
        errors: &mut Vec<FunctionError>,
        not_done: &mut Vec<String>,
    ) {
        // A roll needs time to be watched and, if it fails, rolled back; a dry run, neither.
        let needed = if inv.dry_run {
            Duration::ZERO
        } else {
            ROLLBACK_ALLOWANCE + MIN_VERIFY
        };
        if !inv.has_time_for(needed) {
            not_done.push(at.to_string());
            lines.push(line(at, "not_done", json!({})));
            return;
        }
        match self
            .start_roll(inv, push, trigger, workloads, at, roll)
            .await
        {
            Ok(Started::Done(l)) => lines.push(l),
            Ok(Started::InFlight(f)) => in_flight.push(*f),
            Err(e) => {
                tracing::error!(workload = %at, error_type = %e.error_type(), error = %e, "roll failed");
                inv.failed(
                    ROLL,
                    &at.to_string(),
                    trigger,
                    &e.error_type(),
                    json!({"error": e.to_string()}),
                );
                lines.push(line(
                    at,
                    "failed",
                    json!({"errorType": e.error_type(), "error": e.to_string()}),
                ));
                errors.push(e);
            }
        }
    }

    fn cluster_failed(
        &self,
        inv: &mut Invocation,
        trigger: &str,
        what: &str,
        e: &FunctionError,
        lines: &mut Vec<Value>,
    ) {
        tracing::error!(cluster = %what, error = %e, "cluster or namespace unreadable");
        inv.failed(
            ROLL,
            what,
            trigger,
            &e.error_type(),
            json!({"error": e.to_string()}),
        );
        lines.push(json!({"cluster": what, "outcome": "failed", "errorType": e.error_type(), "error": e.to_string()}));
    }

    /// Waits for a workload's rollout in progress to end, reading it every poll, while this
    /// invocation still has time to roll it afterwards (and never longer than a verification
    /// window): whether it ended.
    async fn rollout_settles(
        &self,
        inv: &Invocation,
        workloads: &Workloads,
        at: &WorkloadRef,
    ) -> bool {
        let give_up_ms = (now_ms() + self.config.verify.as_millis() as i64).min(
            inv.deadline_ms - (WORK_RESERVE + ROLLBACK_ALLOWANCE + MIN_VERIFY).as_millis() as i64,
        );
        loop {
            match workloads.get(&at.namespace, &at.name).await {
                Ok(Some(view))
                    if !matches!(planner::rollout_state(&view), RolloutState::Progressing(_)) =>
                {
                    return true;
                }
                Ok(None) => return true,
                _ => {}
            }
            if now_ms() + self.config.poll.as_millis() as i64 > give_up_ms {
                return false;
            }
            tracing::info!(workload = %at, "waiting for its previous rollout to end");
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// A push nothing is rolled for (not a tagged, successful push; another ECR event).
    fn skipped_push(&self, inv: &mut Invocation, event: &EcrEvent, trigger: &str) -> Value {
        let (reason, detail) = event
            .skip_reason()
            .unwrap_or(("other_ecr_event", String::new()));
        let skip = Skip::new(
            if trigger.is_empty() { "event" } else { trigger },
            reason,
            detail,
        );
        inv.skipped(ROLL, trigger, &skip, json!({}));
        json!({"function": FUNCTION, "dryRun": inv.dry_run, "image": trigger, "workloads": [], "skips": [skip]})
    }

    /// Lists a cluster's namespaces and plans each workload that follows the repository: the
    /// rolls, the final skips, the workloads to come back to (a rollout still in progress), and
    /// the namespaces that could not be read (the others are planned all the same).
    async fn plan_cluster(
        &self,
        inv: &Invocation,
        cluster: &Cluster,
        push: &Push,
    ) -> Result<Planned, FunctionError> {
        let needed = Duration::from_millis(inv.time_left_ms().max(0) as u64);
        let mut workloads = self.connector.workloads(cluster, needed).await?;
        let mut planned = Planned {
            workloads: workloads.clone(),
            rolls: Vec::new(),
            skips: Vec::new(),
            waits: Vec::new(),
            failed: Vec::new(),
        };
        let mut refreshed = false;
        for namespace in &cluster.namespaces {
            let views = match workloads.list(namespace).await {
                // A token refused: the cached client's may have outlived what the cluster
                // accepts; one fresh client, then the error stands.
                Err(e) if !refreshed && e.code == "Unauthorized" => {
                    tracing::warn!(cluster = %cluster.name, "token refused: minting a new one");
                    refreshed = true;
                    self.connector.forget(&cluster.name).await;
                    workloads = self.connector.workloads(cluster, needed).await?;
                    planned.workloads = workloads.clone();
                    workloads.list(namespace).await
                }
                other => other,
            };
            let views = match views {
                Ok(v) => v,
                Err(e) => {
                    planned.failed.push((namespace.clone(), e.into()));
                    continue;
                }
            };
            for view in views.iter().filter(|v| follows_repository(v, push)) {
                let (bad, newest) = match self.history(&view.at).await {
                    Ok(h) => h,
                    Err(e) => {
                        planned.failed.push((view.at.name.clone(), e));
                        continue;
                    }
                };
                let older = planner::older_push(push, &view.at, newest);
                match planner::decide(push, view, &bad) {
                    Decision::NotFollowing => {}
                    // Running the pushed digest: ours, perhaps, from an attempt interrupted
                    // before it verified or rolled back; its claim tells (a takeover finishes
                    // the job), else it is a final skip.
                    _ if planner::runs_digest(view, push) => {
                        planned.rolls.push((view.at.clone(), None))
                    }
                    _ if older.is_some() => planned.skips.extend(older),
                    Decision::Roll(r) => planned.rolls.push((view.at.clone(), Some(r))),
                    Decision::Skip(s) => planned.skips.push(s),
                    Decision::Wait(s) => planned.waits.push((view.at.clone(), s)),
                }
            }
        }
        Ok(planned)
    }

    /// What was done to a workload before: the digests rolled back on it, and the time of the
    /// newest push rolled on it.
    async fn history(&self, w: &WorkloadRef) -> Result<(BadDigests, Option<i64>), FunctionError> {
        let bad = self.bad_digests(w).await?;
        let newest = self
            .guards
            .table
            .read_watermark(&newest_push_mark(w))
            .await?;
        Ok((bad, newest))
    }

    async fn bad_digests(&self, w: &WorkloadRef) -> Result<BadDigests, CallError> {
        Ok(self
            .guards
            .table
            .registry(&bad_digests_registry(w))
            .await?
            .into_iter()
            .collect())
    }

    /// One workload: dry-run, or claimed (a duplicate is skipped), leased, re-read, patched.
    /// `roll` is `None` for a workload that already runs the pushed image: an interrupted
    /// attempt's, whose claim a takeover resumes, or anyone's, skipped.
    async fn start_roll(
        &self,
        inv: &mut Invocation,
        push: &Push,
        trigger: &str,
        workloads: Workloads,
        at: &WorkloadRef,
        roll: Option<Roll>,
    ) -> Result<Started, FunctionError> {
        let target = at.to_string();
        if inv.dry_run {
            let Some(roll) = roll else {
                let skip = Skip::new(
                    &target,
                    "already_running",
                    format!("it already runs {}", push.digest),
                );
                inv.skipped(ROLL, trigger, &skip, json!({}));
                return Ok(Started::Done(line(
                    at,
                    "skipped",
                    json!({"reason": skip.reason}),
                )));
            };
            // The API server's own dry run: admission and validation run, nothing is stored.
            let answer = workloads
                .patch_strategic(at, &roll.patch(push), true)
                .await?;
            let details = json!({"changes": roll.changes, "serverDryRun": answer.containers});
            inv.applied(ROLL, &target, trigger, details.clone());
            return Ok(Started::Done(line(at, "would_roll", details)));
        }
        let key = planner::claim_key(push, at);
        let (mut claim, intent) = match self.guards.claim_event(inv, &key).await? {
            Claimed::Mine { claim, intent } => (
                claim,
                intent.and_then(|i| serde_json::from_value::<Roll>(i).ok()),
            ),
            Claimed::Done(previous) => {
                let skip = Skip::new(
                    &target,
                    "duplicate",
                    "this push was already rolled out on this workload",
                );
                inv.skipped(ROLL, trigger, &skip, json!({}));
                return Ok(Started::Done(line(
                    at,
                    "skipped",
                    json!({"reason": "duplicate", "previous": previous}),
                )));
            }
        };
        match self
            .lease_and_patch(inv, push, trigger, &workloads, at, intent, &mut claim)
            .await
        {
            Ok(Patched::Rolled(roll)) => Ok(Started::InFlight(Box::new(InFlight {
                lease: workload_lease(&roll.workload),
                roll,
                workloads,
                claim,
            }))),
            Ok(Patched::NotNeeded(value)) => claim.end(Ok(value)).await.map(Started::Done),
            Err(e) => claim.end(Err(e)).await.map(Started::Done),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn lease_and_patch(
        &self,
        inv: &mut Invocation,
        push: &Push,
        trigger: &str,
        workloads: &Workloads,
        at: &WorkloadRef,
        intent: Option<Roll>,
        claim: &mut HeldClaim,
    ) -> Result<Patched, FunctionError> {
        let name = workload_lease(at);
        let previous_owner = claim.previous_owner().map(str::to_owned);
        // Another roll of this workload is being verified: come back when it is done.
        let lease = self
            .guards
            .lock(inv, &name, inv.deadline_ms, previous_owner.as_deref())
            .await?;
        // Re-read under the lease: the plan was made before it. Nothing is done yet: on an
        // error the lease goes.
        let (view, (bad, newest)) = match self.read_under_lease(workloads, at).await {
            Ok(read) => read,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        let Some(view) = view else {
            lease.release().await;
            let skip = Skip::new(at.to_string(), "gone", "the deployment no longer exists");
            inv.skipped(ROLL, trigger, &skip, json!({}));
            return Ok(Patched::NotNeeded(line(
                at,
                "skipped",
                json!({"reason": "gone"}),
            )));
        };
        // The lock lasts until this invocation's deadline, the verification included.
        let held_until = inv.deadline_ms;
        if let Some(previous) = intent {
            // An interrupted attempt whose patch went through: verify it, do not patch again.
            if planner::runs(&view, &previous) {
                tracing::info!(workload = %at, "the interrupted attempt's roll is in place: verifying it");
                lease.settle(held_until).await;
                return Ok(Patched::Rolled(previous));
            }
            // It went through and the workload moved on since (rolled back, or changed by hand):
            // never roll it again for this push.
            if planner::rolled_for(&view, push) {
                lease.release().await;
                let skip = Skip::new(
                    at.to_string(),
                    "superseded",
                    "this push was rolled out here by an interrupted attempt and the deployment changed since",
                );
                inv.skipped(ROLL, trigger, &skip, json!({}));
                return Ok(Patched::NotNeeded(line(
                    at,
                    "skipped",
                    json!({"reason": skip.reason, "detail": skip.detail}),
                )));
            }
        }
        let decision = match planner::older_push(push, at, newest) {
            Some(skip) => Decision::Skip(skip),
            None => planner::decide(push, &view, &bad),
        };
        let roll = match decision {
            Decision::Roll(r) => r,
            other => {
                lease.release().await;
                return self.not_rolled(inv, trigger, at, other);
            }
        };
        let patched = guard::apply(
            claim,
            lease,
            &json!(roll),
            || held_until,
            self.patch_until_applied(push, workloads, roll),
        )
        .await?;
        match patched {
            Ok(roll) => {
                self.mark_newest_push(at, push).await;
                inv.applied(
                    ROLL,
                    &at.to_string(),
                    trigger,
                    json!({"changes": roll.changes, "image": roll.image}),
                );
                Ok(Patched::Rolled(roll))
            }
            // Re-planned after a conflict: nothing to do any more.
            Err(decision) => {
                // The lease was settled by apply; nothing was rolled, so it goes.
                self.guards.release(&name, &inv.request_id).await;
                self.not_rolled(inv, trigger, at, decision)
            }
        }
    }

    /// Raises the workload's newest-push watermark to this push (kept as long as claims are).
    async fn mark_newest_push(&self, at: &WorkloadRef, push: &Push) {
        let ttl_s = (now_ms() / 1000) + self.config.common.idempotency_ttl.as_secs() as i64;
        if let Err(e) = self
            .guards
            .table
            .advance_watermark(&newest_push_mark(at), push.pushed_at_ms, ttl_s)
            .await
        {
            tracing::warn!(error = %e, workload = %at, "could not record the newest push rolled");
        }
    }

    /// The workload and its history, read under its lease.
    async fn read_under_lease(
        &self,
        workloads: &Workloads,
        at: &WorkloadRef,
    ) -> Result<(Option<WorkloadView>, (BadDigests, Option<i64>)), FunctionError> {
        let view = workloads.get(&at.namespace, &at.name).await?;
        let history = self.history(at).await?;
        Ok((view, history))
    }

    /// The strategic patch with the resourceVersion read; on a 409 Conflict the workload is read
    /// again and re-planned (someone changed it since), up to [`CONFLICT_ATTEMPTS`] times.
    /// `Err(decision)` inside: after a conflict, the new plan does not roll.
    async fn patch_until_applied(
        &self,
        push: &Push,
        workloads: &Workloads,
        mut roll: Roll,
    ) -> Result<Result<Roll, Decision>, CallError> {
        let mut attempt = 1;
        loop {
            match workloads
                .patch_strategic(&roll.workload, &roll.patch(push), false)
                .await
            {
                Ok(_) => return Ok(Ok(roll)),
                Err(e) if e.code == "Conflict" && attempt < CONFLICT_ATTEMPTS => {
                    attempt += 1;
                    tracing::info!(workload = %roll.workload, attempt, "conflict: re-reading and re-planning");
                    let Some(view) = workloads
                        .get(&roll.workload.namespace, &roll.workload.name)
                        .await?
                    else {
                        return Ok(Err(Decision::Skip(Skip::new(
                            roll.workload.to_string(),
                            "gone",
                            "the deployment no longer exists",
                        ))));
                    };
                    let bad = self.bad_digests(&roll.workload).await?;
                    match planner::decide(push, &view, &bad) {
                        Decision::Roll(r) => roll = r,
                        other => return Ok(Err(other)),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn not_rolled(
        &self,
        inv: &mut Invocation,
        trigger: &str,
        at: &WorkloadRef,
        decision: Decision,
    ) -> Result<Patched, FunctionError> {
        match decision {
            Decision::Skip(s) => {
                inv.skipped(ROLL, trigger, &s, json!({}));
                Ok(Patched::NotNeeded(line(
                    at,
                    "skipped",
                    json!({"reason": s.reason, "detail": s.detail}),
                )))
            }
            Decision::Wait(s) => {
                inv.skipped(ROLL, trigger, &s, json!({}));
                Err(retry_later(&s))
            }
            Decision::NotFollowing => {
                let s = Skip::new(
                    at.to_string(),
                    "not_following",
                    "its annotations no longer follow this repository",
                );
                inv.skipped(ROLL, trigger, &s, json!({}));
                Ok(Patched::NotNeeded(line(
                    at,
                    "skipped",
                    json!({"reason": s.reason}),
                )))
            }
            Decision::Roll(_) => Ok(Patched::NotNeeded(line(at, "skipped", json!({})))),
        }
    }

    /// Reads the rollout until it completes, fails, or the window ends.
    async fn verify(&self, workloads: &Workloads, roll: &Roll, window_end_ms: i64) -> Verified {
        let mut last;
        loop {
            match workloads
                .get(&roll.workload.namespace, &roll.workload.name)
                .await
            {
                Ok(Some(view)) => match planner::rollout_state(&view) {
                    RolloutState::Progressing(why)
                        if view.progress_deadline_seconds as u64 > self.config.verify.as_secs() =>
                    {
                        last = format!(
                            "{why}; its progressDeadlineSeconds ({} s) is longer than the {} s verification window, so a failure would show only after it",
                            view.progress_deadline_seconds,
                            self.config.verify.as_secs()
                        );
                    }
                    RolloutState::Complete if planner::runs(&view, roll) => {
                        return Verified::Complete;
                    }
                    RolloutState::Complete => return Verified::Superseded,
                    RolloutState::Failed(why) => return Verified::Failed(why),
                    RolloutState::Progressing(why) => last = why,
                },
                Ok(None) => {
                    return Verified::Unreadable(CallError::new(
                        "kubernetes",
                        "GetDeployment",
                        "NotFound",
                        "the deployment is gone",
                        ErrorClass::Permanent,
                    ));
                }
                Err(e) => last = e.to_string(),
            }
            let pause = self.config.poll.as_millis() as i64;
            if now_ms() + pause > window_end_ms {
                return Verified::Unverified(last);
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    /// After verification: the audit, the rollback of a failed rollout (its digest recorded as
    /// bad first), the claim and the lease. A roll was made, so the claim is never abandoned: it
    /// completes with the outcome, or is kept (with the roll as its intent) for the retry to
    /// finish the job when the rollback failed or the deadline cut the verification short.
    async fn conclude(
        &self,
        inv: &mut Invocation,
        push: &Push,
        trigger: &str,
        f: InFlight,
        verdict: Verified,
        cut_by_deadline: bool,
    ) -> Result<Value, (WorkloadRef, FunctionError)> {
        let InFlight {
            roll,
            workloads,
            claim,
            lease,
        } = f;
        let target = roll.workload.to_string();
        let result: Result<Value, FunctionError> = match verdict {
            Verified::Complete => {
                inv.applied(VERIFY, &target, trigger, json!({"state": "complete"}));
                Ok(line(
                    &roll.workload,
                    "rolled",
                    json!({"changes": roll.changes, "verified": true}),
                ))
            }
            Verified::Superseded => {
                let skip = Skip::new(
                    &target,
                    "superseded",
                    "the deployment's image was changed after the roll: not judged, not rolled back",
                );
                inv.skipped(VERIFY, trigger, &skip, json!({}));
                Ok(line(
                    &roll.workload,
                    "superseded",
                    json!({"changes": roll.changes, "verified": false}),
                ))
            }
            // The invocation's deadline, not the window, ended the watch: the retry watches on.
            Verified::Unverified(last) if cut_by_deadline => {
                tracing::warn!(workload = %target, last = %last, "deadline near: the retry verifies");
                inv.failed(
                    VERIFY,
                    &target,
                    trigger,
                    "deadline_near",
                    json!({"last": last}),
                );
                Err(FunctionError::DeadlineNear {
                    not_done: format!("verifying {target}"),
                })
            }
            Verified::Unverified(last) => {
                tracing::warn!(workload = %target, last = %last, "rollout not finished within the window");
                inv.failed(
                    VERIFY,
                    &target,
                    trigger,
                    "unverified",
                    json!({"last": last}),
                );
                Ok(line(
                    &roll.workload,
                    "unverified",
                    json!({"changes": roll.changes, "verified": false, "last": last}),
                ))
            }
            Verified::Unreadable(e) => {
                inv.failed(
                    VERIFY,
                    &target,
                    trigger,
                    &e.code,
                    json!({"error": e.to_string()}),
                );
                Ok(line(
                    &roll.workload,
                    "unverified",
                    json!({"changes": roll.changes, "verified": false, "error": e.to_string()}),
                ))
            }
            Verified::Failed(why) => {
                self.roll_back(inv, push, trigger, &workloads, &roll, &why)
                    .await
            }
        };
        let result = match result {
            Ok(value) => match claim.complete(&value).await {
                Ok(()) => {
                    self.guards.release(&lease, &inv.request_id).await;
                    Ok(value)
                }
                // Concluded, not yet written down: the lease stays for the takeover, which finds
                // the roll concluded (the image in place, or rolled back) and records it.
                Err(e) => Err(FunctionError::NotYet {
                    code: "ClaimNotCompleted".into(),
                    detail: format!(
                        "the roll is concluded, but recording it failed ({e}): the retry records it"
                    ),
                    acted: true,
                }),
            },
            // The lease stays too: the attempt that takes the claim over inherits it.
            Err(e) => {
                claim.keep("the roll was made and is not concluded").await;
                Err(e)
            }
        };
        result.map_err(|e| (roll.workload.clone(), e))
    }

    /// Whether the workload still runs what `roll` set (unknown counts as yes: the rollback is
    /// then reported failed and retried, never called done).
    async fn still_runs(&self, workloads: &Workloads, roll: &Roll) -> bool {
        match workloads
            .get(&roll.workload.namespace, &roll.workload.name)
            .await
        {
            Ok(Some(view)) => planner::runs(&view, roll),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    async fn roll_back(
        &self,
        inv: &mut Invocation,
        push: &Push,
        trigger: &str,
        workloads: &Workloads,
        roll: &Roll,
        why: &str,
    ) -> Result<Value, FunctionError> {
        let target = roll.workload.to_string();
        inv.failed(
            VERIFY,
            &target,
            trigger,
            "rollout_failed",
            json!({"detail": why}),
        );
        // Recorded before the rollback: even if the rollback fails, no later event re-applies it.
        let record = json!({"tag": push.tag, "image": roll.image, "reason": why, "atMs": now_ms()});
        self.guards
            .table
            .registry_set(&bad_digests_registry(&roll.workload), &push.digest, &record)
            .await?;
        match workloads
            .patch_json(&roll.workload, &roll.rollback_patch(why))
            .await
        {
            Ok(_) => {
                let back: Vec<Value> = roll
                    .changes
                    .iter()
                    .map(|c| json!({"container": c.container, "image": c.from}))
                    .collect();
                inv.applied(
                    ROLLBACK,
                    &target,
                    trigger,
                    json!({"to": back, "reason": why}),
                );
                Ok(line(
                    &roll.workload,
                    "rolled_back",
                    json!({"changes": roll.changes, "failure": why, "badDigest": push.digest}),
                ))
            }
            // A `test` failed: someone changed the workload since; their change is not undone.
            // (Another 422, with our image still in place, is a failed rollback.)
            Err(e) if e.code == "Invalid" && !self.still_runs(workloads, roll).await => {
                let skip = Skip::new(
                    &target,
                    "changed_since",
                    format!(
                        "not rolled back: the deployment was changed after the roll ({})",
                        e.message
                    ),
                );
                inv.skipped(ROLLBACK, trigger, &skip, json!({}));
                Ok(line(
                    &roll.workload,
                    "rollout_failed",
                    json!({"failure": why, "rollback": "changed_since", "badDigest": push.digest}),
                ))
            }
            Err(e) => {
                inv.failed(
                    ROLLBACK,
                    &target,
                    trigger,
                    &format!("{}.{}", e.class, e.code),
                    json!({"error": e.to_string()}),
                );
                Err(e.into())
            }
        }
    }
}

/// One cluster's plan.
struct Planned {
    workloads: Workloads,
    rolls: Vec<(WorkloadRef, Option<Roll>)>,
    skips: Vec<Skip>,
    waits: Vec<(WorkloadRef, Skip)>,
    /// What could not be read: a namespace (or a workload's bad digests) and why.
    failed: Vec<(String, FunctionError)>,
}

enum Started {
    Done(Value),
    InFlight(Box<InFlight>),
}

enum Patched {
    Rolled(Roll),
    NotNeeded(Value),
}

fn line_for_skip(skip: &Skip, outcome: &str) -> Value {
    json!({"workload": skip.target, "outcome": outcome, "reason": skip.reason, "detail": skip.detail})
}

/// Whether any container of the workload follows the pushed repository (only those are read
/// further: the rest of the namespace did not opt in to this push).
fn follows_repository(view: &WorkloadView, push: &Push) -> bool {
    planner::follows(&view.annotations)
        .iter()
        .any(|f| f.repository == push.repository)
}
