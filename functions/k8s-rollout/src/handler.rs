//! One invocation: parse → screen the push → survey every cluster ([`crate::survey`]: each
//! namespace read, each Deployment that follows the pushed repository planned) → roll each one
//! through the guarded step ([`crate::roll::RollStep`]: claim, lock, re-check, patch), one by one
//! → wait for the rollouts found in progress, then roll those → watch every roll at once
//! ([`crate::verify`]) → conclude each, rolling a failed one back ([`crate::rollback`]) → respond.
//!
//! Each workload on its own ([`autonomic::batch::Driver`]): one failing does not stop the others, and on the
//! retry of the delivery the ones already rolled are claimed and skipped. The invocation fails
//! when a workload did (a retryable error first, so the retry comes).

use std::time::Duration;

use autonomic::batch::Driver;
use autonomic::events::{EcrEvent, parse_ecr_event};
use autonomic::guard::{Begun, Outcome};
use autonomic::plan::stale;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::Connect;
use crate::planner::{self, Decision, Push, ROLL, Roll, WorkloadRef};
use crate::roll::{RollStep, retry_later};
use crate::roller::{
    FUNCTION, MIN_VERIFY, Pushed, ROLLBACK_ALLOWANCE, Rollout, line, workload_lease,
};
use crate::survey::{ToRoll, ToWait, gone};
use crate::verify::{InFlight, Settled};

impl<C: Connect> Handler for Rollout<C> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv =
            Invocation::from_lambda(&self.reporter, &event.context, self.config.common.dry_run);
        let result = self.handle_payload(&event.payload, &mut inv).await;
        inv.finish();
        result
    }
}

/// What an invocation gathers on its way: every workload's line and failure (the batch driver),
/// the skips, and the rolls patched and not yet verified.
struct Progress<K> {
    items: Driver<Value>,
    skips: Vec<Skip>,
    in_flight: Vec<InFlight<K>>,
}

fn line_for_skip(skip: &Skip, outcome: &str) -> Value {
    json!({"workload": skip.target, "outcome": outcome, "reason": skip.reason, "detail": skip.detail})
}

impl<C: Connect> Rollout<C> {
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
        let ev = Pushed { push, trigger };
        let mut progress = Progress {
            items: Driver::new(ROLL),
            skips: Vec::new(),
            in_flight: Vec::new(),
        };
        // Read and plan every cluster first; roll one by one (each behind its claim and lock);
        // then, for the workloads whose previous rollout was still in progress, wait for it
        // (within this invocation's time) and roll them too; then watch every roll at once.
        let (rolls, waits) = self.survey(inv, &ev, &mut progress).await;
        for item in rolls {
            self.roll_one(inv, &ev, &mut progress, item).await;
        }
        for wait in waits {
            self.after_wait(inv, &ev, &mut progress, wait).await;
        }
        self.conclude_all(inv, &ev, &mut progress).await;
        let lines = progress.items.finish(inv)?;
        Ok(json!({
            "function": FUNCTION,
            "dryRun": inv.dry_run,
            "image": ev.push.image(),
            "workloads": lines,
            "skips": progress.skips,
        }))
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

    /// Every cluster read and planned, one by one: the final skips audited and reported, a
    /// cluster or namespace that cannot be read failed (the others go on); the workloads to roll,
    /// and those to wait for.
    async fn survey(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        progress: &mut Progress<C::Api>,
    ) -> (Vec<ToRoll<C::Api>>, Vec<ToWait<C::Api>>) {
        let mut rolls = Vec::new();
        let mut waits = Vec::new();
        for cluster in &self.config.clusters.clusters {
            if !progress.items.start(inv, &cluster.name) {
                continue;
            }
            let planned = match self.plan_cluster(inv, cluster, &ev.push).await {
                Ok(p) => p,
                // Not reachable at all (DescribeCluster, credentials, the kubeconfig).
                Err(e) => {
                    progress.items.done(inv, &cluster.name, &ev.trigger, Err(e));
                    continue;
                }
            };
            for skip in planned.skips {
                inv.skipped(ROLL, &ev.trigger, &skip, json!({"image": ev.push.image()}));
                let l = line_for_skip(&skip, "skipped");
                progress.items.done(inv, &skip.target, &ev.trigger, Ok(l));
                progress.skips.push(skip);
            }
            for (namespace, e) in planned.failed {
                let what = format!("{}/{namespace}", cluster.name);
                progress.items.done(inv, &what, &ev.trigger, Err(e));
            }
            rolls.extend(planned.rolls);
            waits.extend(planned.waits);
        }
        (rolls, waits)
    }

    /// One workload's roll started, if there is time to roll, watch and roll back (a dry run
    /// needs neither): in flight, done (a skip), failed, or not done.
    async fn roll_one(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        progress: &mut Progress<C::Api>,
        item: ToRoll<C::Api>,
    ) {
        let target = item.at.to_string();
        let needed = if inv.dry_run {
            Duration::ZERO
        } else {
            ROLLBACK_ALLOWANCE + MIN_VERIFY
        };
        if !progress.items.start_needing(inv, &target, needed) {
            return;
        }
        match self.roll(inv, ev, item).await {
            Ok(Rolled::InFlight(f)) => progress.in_flight.push(*f),
            Ok(Rolled::Done(l)) => progress.items.done(inv, &target, &ev.trigger, Ok(l)),
            Err(e) => progress.items.done(inv, &target, &ev.trigger, Err(e)),
        }
    }

    /// One workload through the roll step: dry-run, or claimed (a duplicate is skipped), locked,
    /// re-read and patched, its claim and lock held until the roll concludes. A workload that
    /// already runs the pushed image goes through it too: an interrupted attempt's roll, whose
    /// claim a takeover resumes and verifies, or anyone's, skipped.
    async fn roll(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        item: ToRoll<C::Api>,
    ) -> Result<Rolled<C::Api>, FunctionError> {
        let ToRoll { api, at, decision } = item;
        let step = RollStep::new(self, &api, ev, &at, decision, inv);
        let key = planner::claim_key(&ev.push, &at);
        let begun = match self.guards.begin(inv, &ev.trigger, &key, &step).await {
            Ok(begun) => begun,
            Err(e) => return Err(step.waited(inv, e)),
        };
        Ok(match begun {
            Begun::Concluding {
                outcome: Outcome::Acted { done, .. },
                claim,
            } => Rolled::InFlight(Box::new(InFlight {
                lease: workload_lease(&done.workload),
                roll: done,
                api: api.clone(),
                claim,
            })),
            // Not an action made: nothing to watch.
            Begun::Concluding { outcome, claim } => {
                Rolled::Done(claim.end(Ok(outcome_line(&at, &step, outcome))).await?)
            }
            Begun::Ended(outcome) => Rolled::Done(outcome_line(&at, &step, outcome)),
        })
    }

    /// A workload whose previous rollout was in progress: waited for (not in a dry run), then
    /// planned on what the wait read and rolled; still in progress, the delivery comes back for
    /// it (a dry run reports the wait with the rest of its plan).
    async fn after_wait(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        progress: &mut Progress<C::Api>,
        wait: ToWait<C::Api>,
    ) {
        if !inv.dry_run
            && let Settled::Ended(view) = self.rollout_settles(inv, &wait.api, &wait.at).await
        {
            let decision = match view {
                Some(view) => planner::decide(&ev.push, &view, &wait.bad),
                None => Decision::Skip(gone(&wait.at)),
            };
            let item = ToRoll {
                api: wait.api,
                at: wait.at,
                decision,
            };
            self.roll_one(inv, ev, progress, item).await;
            return;
        }
        let skip = wait.skip;
        inv.skipped(ROLL, &ev.trigger, &skip, json!({"image": ev.push.image()}));
        let result = if inv.dry_run {
            Ok(line_for_skip(&skip, "would_wait"))
        } else {
            Err(retry_later(&skip))
        };
        // The wait is audited above as a skip: its error is not audited again.
        progress.items.done_audited(&skip.target, result);
        progress.skips.push(skip);
    }

    /// Every roll in flight watched at once, then each concluded: its line, or its failure.
    async fn conclude_all(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        progress: &mut Progress<C::Api>,
    ) {
        let in_flight = std::mem::take(&mut progress.in_flight);
        if in_flight.is_empty() {
            return;
        }
        let watched = self.verify_all(inv, &in_flight).await;
        for (f, verdict) in in_flight.into_iter().zip(watched.verdicts) {
            let target = f.roll.workload.to_string();
            let result = self
                .conclude(inv, ev, f, verdict, watched.cut_by_deadline)
                .await;
            // A conclusion's failure is audited where it happens (the watch, the rollback).
            progress.items.done_audited(&target, result);
        }
    }
}

/// What the roll step came to for a workload.
enum Rolled<K> {
    Done(Value),
    InFlight(Box<InFlight<K>>),
}

/// The response line of a roll step that did not leave a roll to watch.
fn outcome_line<C: Connect>(
    at: &WorkloadRef,
    step: &RollStep<'_, C>,
    o: Outcome<Roll, Roll>,
) -> Value {
    match o {
        Outcome::WouldAct { intent, .. } => line(
            at,
            "would_roll",
            json!({"changes": intent.changes, "serverDryRun": step.server_dry_run()}),
        ),
        Outcome::Skipped { skip } => line(
            at,
            "skipped",
            json!({"reason": skip.reason, "detail": skip.detail}),
        ),
        Outcome::Duplicate { previous, .. } => line(
            at,
            "skipped",
            json!({"reason": "duplicate", "previous": previous}),
        ),
        Outcome::Acted { done, .. } => line(
            at,
            "rolled",
            json!({"changes": done.changes, "verified": false}),
        ),
    }
}
