//! Each workload through the roll step, one by one, with the batch driver: a roll started when
//! there is time to watch and roll it back, the workloads that waited for a rollout in progress,
//! then every roll in flight watched at once and concluded.

use std::time::Duration;

use autonomic::guard::{Begun, Outcome};
use autonomic::{FunctionError, Invocation};
use serde_json::json;

use crate::api::Connect;
use crate::handler::Progress;
use crate::planner::{self, Decision, ROLL, Roll, WorkloadRef};
use crate::roll::{RollStep, retry_later};
use crate::roller::{
    MIN_VERIFY, Pushed, ROLLBACK_ALLOWANCE, Rollout, WorkloadLine, line, skip_line, workload_lease,
};
use crate::survey::{ToRoll, ToWait, gone};
use crate::verify::{InFlight, Settled};

impl<C: Connect> Rollout<C> {
    /// One workload's roll started, if there is time to roll, watch and roll back (a dry run
    /// needs neither): in flight, done (a skip), failed, or not done.
    pub(crate) async fn roll_one(
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
            Ok(Rolled::Done(l)) => progress.items.done(inv, &target, &ev.trigger, Ok(*l)),
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
        let begun = self.guards.begin(inv, &ev.trigger, &key, &step).await?;
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
            Begun::Concluding { outcome, claim } => Rolled::Done(Box::new(
                claim.end(Ok(outcome_line(&at, &step, outcome))).await?,
            )),
            Begun::Ended(outcome) => Rolled::Done(Box::new(outcome_line(&at, &step, outcome))),
        })
    }

    /// A workload whose previous rollout was in progress: waited for (not in a dry run), then
    /// planned on what the wait read and rolled; still in progress, the delivery comes back for
    /// it (a dry run reports the wait with the rest of its plan).
    pub(crate) async fn after_wait(
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
            Ok(skip_line(&skip, "would_wait"))
        } else {
            Err(retry_later(&skip))
        };
        // The wait is audited above as a skip: its error is not audited again.
        progress.items.done_audited(&skip.target, result);
        progress.skips.push(skip);
    }

    /// Every roll in flight watched at once, then each concluded: its line, or its failure.
    pub(crate) async fn conclude_all(
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
    Done(Box<WorkloadLine>),
    InFlight(Box<InFlight<K>>),
}

/// The response line of a roll step that did not leave a roll to watch.
fn outcome_line<C: Connect>(
    at: &WorkloadRef,
    step: &RollStep<'_, C>,
    o: Outcome<Roll, Roll>,
) -> WorkloadLine {
    match o {
        Outcome::WouldAct { intent, .. } => WorkloadLine {
            changes: Some(intent.changes),
            server_dry_run: step.server_dry_run(),
            ..line(at, "would_roll")
        },
        Outcome::Skipped { skip } => WorkloadLine {
            reason: Some(skip.reason),
            detail: Some(skip.detail),
            ..line(at, "skipped")
        },
        Outcome::Duplicate { previous, .. } => WorkloadLine {
            reason: Some("duplicate".into()),
            previous: Some(previous),
            ..line(at, "skipped")
        },
        Outcome::Acted { done, .. } => WorkloadLine {
            changes: Some(done.changes),
            verified: Some(false),
            ..line(at, "rolled")
        },
    }
}
