//! Concluding a roll after its verification: the audit of the verdict, the rollback of a failed
//! rollout (its digest recorded as bad first), then the roll's claim and the workload's lock.

use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Skip};
use serde_json::{Value, json};

use crate::api::{Connect, KubeApi};
use crate::planner::{ROLLBACK, Roll};
use crate::roller::{Pushed, Rollout, VERIFY, WorkloadLine, bad_digests_registry, line};
use crate::verify::{InFlight, Verified};

impl<C: Connect> Rollout<C> {
    /// After verification: the audit, the rollback of a failed rollout, the claim and the lock. A
    /// roll was made, so the claim is never given back: it completes with the conclusion (the
    /// response line, which a duplicate delivery gets back), or is kept (with the roll as its
    /// intent) for the retry to finish the job when the rollback failed or the deadline cut the
    /// verification short; the lock then stays too, for the attempt that takes the claim over.
    pub(crate) async fn conclude(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        f: InFlight<C::Api>,
        verdict: Verified,
        cut_by_deadline: bool,
    ) -> Result<WorkloadLine, FunctionError> {
        let InFlight {
            roll,
            api,
            claim,
            lease,
        } = f;
        let result = self
            .judge(inv, ev, &api, &roll, verdict, cut_by_deadline)
            .await;
        let ended = match result {
            // Completed; when that cannot be written, a retryable `ClaimNotCompleted`: the lock
            // stays for the takeover, which finds the roll concluded and records it.
            Ok(value) => claim.end(Ok(value)).await,
            // Kept whatever the error (a cut watch says nothing of the roll, which was made).
            Err(e) => {
                claim.keep("the roll was made and is not concluded").await;
                Err(e)
            }
        };
        if ended.is_ok() {
            self.guards.release(&lease, &inv.request_id).await;
        }
        ended
    }

    /// The verdict audited and acted on: the response line, or why the roll is not concluded.
    async fn judge(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        api: &C::Api,
        roll: &Roll,
        verdict: Verified,
        cut_by_deadline: bool,
    ) -> Result<WorkloadLine, FunctionError> {
        let target = roll.workload.to_string();
        let trigger = ev.trigger.as_str();
        match verdict {
            Verified::Complete => {
                inv.applied(VERIFY, &target, trigger, json!({"state": "complete"}));
                Ok(WorkloadLine {
                    changes: Some(roll.changes.clone()),
                    verified: Some(true),
                    ..line(&roll.workload, "rolled")
                })
            }
            Verified::Superseded => {
                let skip = Skip::new(
                    &target,
                    "superseded",
                    "the deployment's image was changed after the roll: not judged, not rolled back",
                );
                inv.skipped(VERIFY, trigger, &skip, json!({}));
                Ok(WorkloadLine {
                    changes: Some(roll.changes.clone()),
                    verified: Some(false),
                    ..line(&roll.workload, "superseded")
                })
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
                Ok(WorkloadLine {
                    changes: Some(roll.changes.clone()),
                    verified: Some(false),
                    last: Some(last),
                    ..line(&roll.workload, "unverified")
                })
            }
            Verified::Unreadable(e) => {
                inv.failed(
                    VERIFY,
                    &target,
                    trigger,
                    &e.code,
                    json!({"error": e.to_string()}),
                );
                Ok(WorkloadLine {
                    changes: Some(roll.changes.clone()),
                    verified: Some(false),
                    error: Some(e.to_string()),
                    ..line(&roll.workload, "unverified")
                })
            }
            Verified::Failed(why) => self.roll_back(inv, ev, api, roll, &why).await,
        }
    }

    /// Whether the workload still runs what `roll` set (unknown counts as yes: the rollback is
    /// then reported failed and retried, never called done).
    async fn still_runs(&self, api: &C::Api, roll: &Roll) -> bool {
        match api.get(&roll.workload).await {
            Ok(Some(view)) => crate::planner::runs(&view, roll),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// A failed rollout: its digest recorded as bad on the workload, then the JSON patch back to
    /// the previous images, only where our image is still in place.
    async fn roll_back(
        &self,
        inv: &mut Invocation,
        ev: &Pushed,
        api: &C::Api,
        roll: &Roll,
        why: &str,
    ) -> Result<WorkloadLine, FunctionError> {
        let push = &ev.push;
        let trigger = ev.trigger.as_str();
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
            .registry_set(&bad_digests_registry(&roll.workload), &push.digest, &record)
            .await?;
        match api
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
                Ok(WorkloadLine {
                    changes: Some(roll.changes.clone()),
                    failure: Some(why.to_string()),
                    bad_digest: Some(push.digest.clone()),
                    ..line(&roll.workload, "rolled_back")
                })
            }
            // A `test` failed: someone changed the workload since; their change is not undone.
            // (Another 422, with our image still in place, is a failed rollback.)
            Err(e) if e.code == "Invalid" && !self.still_runs(api, roll).await => {
                let skip = Skip::new(
                    &target,
                    "changed_since",
                    format!(
                        "not rolled back: the deployment was changed after the roll ({})",
                        e.message
                    ),
                );
                inv.skipped(ROLLBACK, trigger, &skip, json!({}));
                Ok(WorkloadLine {
                    failure: Some(why.to_string()),
                    rollback: Some("changed_since"),
                    bad_digest: Some(push.digest.clone()),
                    ..line(&roll.workload, "rollout_failed")
                })
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
