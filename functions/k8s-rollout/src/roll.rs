//! One workload's roll as a guarded step ([`autonomic::guard::Step`]): what is new here is the
//! decision (the survey's plan; in dry run the API server's own dry run of the patch), what a
//! takeover checks on the recorded roll (in place: verified, not made again; the push rolled out
//! and the workload changed since: `superseded`; else decided afresh), the re-check under the
//! workload's lock (read again, the newest push rolled, the planner), the call (the strategic
//! patch, re-planned on a 409 Conflict) and the newest-push watermark after it. The claim, the
//! lock, the intent and the audit are the shared step's; the lock is held through the
//! verification ([`RollStep::cooldown_until_ms`] is the invocation's deadline), and the claim is
//! handed back still held ([`Step::concludes_later`]) to be ended when the roll concludes.

use std::sync::Mutex;

use autonomic::guard::{self, Act, Declined, Lock, Recheck, Resumed, Step};
use autonomic::time::now_ms;
use autonomic::{CallError, FunctionError, Invocation, Skip};
use serde_json::{Value, json};

use crate::api::{Connect, KubeApi};
use crate::planner::{self, Decision, ROLL, Roll, WorkloadRef, WorkloadView};
use crate::roller::{CONFLICT_ATTEMPTS, Pushed, Rollout, newest_push_mark, workload_lease};
use crate::survey::gone;

/// Nothing was done: a claim that ends with it is released, not kept.
pub(crate) fn retry_later(skip: &Skip) -> FunctionError {
    FunctionError::not_yet(
        "RolloutInProgress",
        format!("{}: {}", skip.target, skip.detail),
    )
}

/// One workload's roll for one push.
pub(crate) struct RollStep<'a, C: Connect> {
    rollout: &'a Rollout<C>,
    api: &'a C::Api,
    ev: &'a Pushed,
    at: &'a WorkloadRef,
    target: String,
    /// What the survey decided (or the plan made after waiting for a rollout in progress).
    decision: Decision,
    /// The invocation's deadline: the lock is held until then, through the verification.
    held_until_ms: i64,
    /// What a takeover's [`Step::resume`] read under the lock, for [`Step::recheck`]: one read.
    read: Mutex<Option<Option<WorkloadView>>>,
    /// The roll decided, made or found made: its changes go in the audit records.
    roll: Mutex<Option<Roll>>,
    /// Dry run: what the API server's dry run of the patch answered (the containers).
    server_dry_run: Mutex<Option<Value>>,
    /// A re-plan after a 409 Conflict that does not roll: what it decided.
    replanned: Mutex<Option<Decision>>,
}

/// What the patch came to: made, or re-planned after a conflict into something else.
enum Patched {
    Made(Roll),
    Replanned(Decision),
}

impl<'a, C: Connect> RollStep<'a, C> {
    pub(crate) fn new(
        rollout: &'a Rollout<C>,
        api: &'a C::Api,
        ev: &'a Pushed,
        at: &'a WorkloadRef,
        decision: Decision,
        inv: &Invocation,
    ) -> Self {
        Self {
            rollout,
            api,
            ev,
            at,
            target: at.to_string(),
            decision,
            held_until_ms: inv.deadline_ms,
            read: Mutex::new(None),
            roll: Mutex::new(None),
            server_dry_run: Mutex::new(None),
            replanned: Mutex::new(None),
        }
    }

    /// The API server's answer to the dry run, for the response line.
    pub(crate) fn server_dry_run(&self) -> Option<Value> {
        self.server_dry_run.lock().ok().and_then(|a| a.clone())
    }

    fn note(&self, roll: Option<&Roll>) {
        if let Ok(mut r) = self.roll.lock() {
            *r = roll.cloned();
        }
    }

    /// A decision that does not roll: its skip, or (a rollout in progress) the retry, audited.
    fn not_rolled(&self, inv: &mut Invocation, decision: Decision) -> Result<Skip, FunctionError> {
        match decision {
            Decision::Skip(s) => Ok(s),
            Decision::Wait(s) => {
                inv.skipped(ROLL, &self.ev.trigger, &s, json!({}));
                Err(retry_later(&s))
            }
            Decision::NotFollowing => Ok(not_following(self.at)),
            Decision::Roll(_) => Ok(Skip::new(
                &self.target,
                "not_rolled",
                "the plan changed while rolling",
            )),
        }
    }

    /// The strategic patch with the resourceVersion read; on a 409 Conflict the workload is read
    /// again and re-planned (someone changed it since), up to [`CONFLICT_ATTEMPTS`] times.
    /// [`Patched::Replanned`]: after a conflict, the new plan does not roll.
    async fn patch_until_applied(&self, mut roll: Roll) -> Result<Patched, CallError> {
        let push = &self.ev.push;
        let mut attempt = 1;
        loop {
            match self
                .api
                .patch_strategic(&roll.workload, &roll.patch(push), false)
                .await
            {
                Ok(_) => return Ok(Patched::Made(roll)),
                Err(e) if e.code == "Conflict" && attempt < CONFLICT_ATTEMPTS => {
                    attempt += 1;
                    tracing::info!(workload = %roll.workload, attempt, "conflict: re-reading and re-planning");
                    let Some(view) = self.api.get(&roll.workload).await? else {
                        return Ok(Patched::Replanned(Decision::Skip(gone(&roll.workload))));
                    };
                    let bad = self.rollout.bad_digests(&roll.workload).await?;
                    match planner::decide(push, &view, &bad) {
                        Decision::Roll(r) => roll = r,
                        other => return Ok(Patched::Replanned(other)),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Raises the workload's newest-push watermark to this push (kept as long as claims are).
    async fn mark_newest_push(&self) {
        let ttl_s = (now_ms() / 1000) + self.rollout.config.common.idempotency_ttl.as_secs() as i64;
        if let Err(e) = self
            .rollout
            .guards
            .advance_watermark(&newest_push_mark(self.at), self.ev.push.pushed_at_ms, ttl_s)
            .await
        {
            tracing::warn!(error = %e, workload = %self.at, "could not record the newest push rolled");
        }
    }
}

fn not_following(at: &WorkloadRef) -> Skip {
    Skip::new(
        at.to_string(),
        "not_following",
        "its annotations no longer follow this repository",
    )
}

impl<C: Connect> Step for RollStep<'_, C> {
    type Intent = Roll;
    /// The roll made: the intent, or the one re-planned after a conflict.
    type Done = Roll;

    fn action(&self) -> &str {
        ROLL
    }

    fn target(&self) -> &str {
        &self.target
    }

    /// A lock on the workload from its patch until its rollout is verified (or rolled back): a
    /// second push waits instead of rolling on top of a rollout still in progress.
    fn lock(&self, _inv: &Invocation) -> Lock {
        Lock::Lock(workload_lease(self.at))
    }

    /// The lock lasts until this invocation's deadline, the verification included; it is
    /// released once the roll concludes.
    fn cooldown_until_ms(&self, _roll: &Roll) -> i64 {
        self.held_until_ms
    }

    /// The survey's plan, not read again. In dry run the API server's own dry run of the patch:
    /// admission and validation run, nothing is stored.
    async fn decide(&self, inv: &mut Invocation) -> Result<guard::Decision<Roll>, FunctionError> {
        let roll = match self.decision.clone() {
            Decision::Roll(roll) => roll,
            other => return self.not_rolled(inv, other).map(guard::Decision::Skip),
        };
        if inv.dry_run {
            let answer = self
                .api
                .patch_strategic(self.at, &roll.patch(&self.ev.push), true)
                .await?;
            if let Ok(mut a) = self.server_dry_run.lock() {
                *a = Some(json!(answer.containers));
            }
        }
        self.note(Some(&roll));
        Ok(guard::Decision::Act(Act {
            target: self.target.clone(),
            intent: roll,
        }))
    }

    /// An interrupted attempt's recorded roll, under the lock it held: in place, it is verified,
    /// not made again; the push rolled out here and the workload moved on since (rolled back, or
    /// changed by hand), it is never rolled again; else decided afresh.
    async fn resume(
        &self,
        _inv: &mut Invocation,
        previous: Roll,
    ) -> Result<Resumed<Roll>, FunctionError> {
        let view = self.api.get(self.at).await?;
        let Some(v) = &view else {
            return Ok(Resumed::Skip(gone(self.at)));
        };
        if planner::runs(v, &previous) {
            tracing::info!(workload = %self.at, "the interrupted attempt's roll is in place: verifying it");
            self.note(Some(&previous));
            return Ok(Resumed::Done(previous));
        }
        if planner::rolled_for(v, &self.ev.push) {
            return Ok(Resumed::Skip(Skip::new(
                &self.target,
                "superseded",
                "this push was rolled out here by an interrupted attempt and the deployment changed since",
            )));
        }
        if let Ok(mut r) = self.read.lock() {
            *r = Some(view);
        }
        Ok(Resumed::Afresh)
    }

    /// Under the lock: the workload and its history read again (the plan was made before it),
    /// and planned again on them.
    async fn recheck(
        &self,
        inv: &mut Invocation,
        _planned: Roll,
    ) -> Result<Recheck<Roll>, FunctionError> {
        let read = self.read.lock().ok().and_then(|mut r| r.take());
        let view = match read {
            Some(view) => view,
            None => self.api.get(self.at).await?,
        };
        let (bad, newest) = self.rollout.history(self.at).await?;
        let Some(view) = view else {
            self.note(None);
            return Ok(Recheck::Skip(gone(self.at)));
        };
        let decision = match planner::older_push(&self.ev.push, self.at, newest) {
            Some(skip) => Decision::Skip(skip),
            None => planner::decide(&self.ev.push, &view, &bad),
        };
        match decision {
            Decision::Roll(roll) => {
                self.note(Some(&roll));
                Ok(Recheck::Proceed(roll))
            }
            other => {
                self.note(None);
                self.not_rolled(inv, other).map(Recheck::Skip)
            }
        }
    }

    async fn call(&self, roll: &Roll) -> Result<Roll, CallError> {
        match self.patch_until_applied(roll.clone()).await? {
            Patched::Made(made) => {
                self.note(Some(&made));
                Ok(made)
            }
            // Re-planned after a conflict: nothing to roll any more, nothing changed. The call
            // answered; `declined` turns the re-plan into its skip (or the wait's retry).
            Patched::Replanned(decision) => {
                self.note(None);
                if let Ok(mut r) = self.replanned.lock() {
                    *r = Some(decision);
                }
                Ok(roll.clone())
            }
        }
    }

    /// The re-plan after a conflict that does not roll: its skip, or, for a rollout in progress,
    /// the wait audited and the delivery brought back (`RolloutInProgress`).
    fn declined(&self, inv: &mut Invocation, _roll: &Roll) -> Option<Declined> {
        let decision = self.replanned.lock().ok()?.take()?;
        Some(match self.not_rolled(inv, decision) {
            Ok(skip) => Declined::Skip(skip),
            Err(e) => Declined::NotYet(e),
        })
    }

    /// After the patch: the newest push rolled on the workload, so an older one is skipped.
    async fn finish(
        &self,
        _inv: &mut Invocation,
        _roll: &Roll,
        made: Roll,
    ) -> Result<Roll, FunctionError> {
        self.mark_newest_push().await;
        Ok(made)
    }

    /// The image, and the changes of the roll decided or made (and the API server's dry-run
    /// answer).
    fn audit_details(&self) -> Value {
        let mut d = json!({"image": self.ev.push.image()});
        if let Some(roll) = self.roll.lock().ok().and_then(|r| r.clone()) {
            d["changes"] = json!(roll.changes);
        }
        if let Some(answer) = self.server_dry_run() {
            d["serverDryRun"] = answer;
        }
        d
    }

    /// The rollout the patch started is watched, and rolled back if it fails, before the claim
    /// ends.
    fn concludes_later(&self) -> bool {
        true
    }
}
