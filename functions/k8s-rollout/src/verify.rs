//! Watching rollouts: every roll patched in this invocation is read until its rollout completes,
//! fails, or the verification window ends (all at once); and a workload whose previous rollout is
//! still in progress is waited for before it is rolled.

use autonomic::context::WORK_RESERVE;
use autonomic::guard::{HeldClaim, LeaseName};
use autonomic::time::now_ms;
use autonomic::{CallError, ErrorClass, Invocation};

use crate::api::{Connect, KubeApi};
use crate::planner::{self, Roll, RolloutState, WorkloadRef, WorkloadView};
use crate::roller::{MIN_VERIFY, ROLLBACK_ALLOWANCE, Rollout};

/// A roll patched (or found patched by a takeover) and not yet verified: its claim, still held,
/// and the workload's lock, both ended when it concludes.
pub(crate) struct InFlight<K> {
    pub roll: Roll,
    pub api: K,
    pub claim: HeldClaim,
    pub lease: LeaseName,
}

/// How a verification ended.
pub(crate) enum Verified {
    Complete,
    Failed(String),
    /// The window ended first: the last state seen.
    Unverified(String),
    /// The workload could not be read.
    Unreadable(CallError),
    /// Someone changed the image since the roll: nothing of ours to judge or roll back.
    Superseded,
}

/// What became of a rollout in progress that was waited for.
pub(crate) enum Settled {
    /// It ended: the workload as last read (`None`: gone).
    Ended(Option<Box<WorkloadView>>),
    /// Still in progress when this invocation had to stop waiting.
    Still,
}

/// The verdicts of every roll in flight, in order, and whether the invocation's deadline (not
/// the window) cut their watch short.
pub(crate) struct Verdicts {
    pub verdicts: Vec<Verified>,
    pub cut_by_deadline: bool,
}

impl<C: Connect> Rollout<C> {
    /// Watches every roll in flight at once, within the verification window and the time kept
    /// back for a rollback.
    pub(crate) async fn verify_all(
        &self,
        inv: &Invocation,
        in_flight: &[InFlight<C::Api>],
    ) -> Verdicts {
        let full_window_ms = now_ms() + self.config.verify.as_millis() as i64;
        let window_end_ms = full_window_ms
            .min(inv.deadline_ms - (WORK_RESERVE + ROLLBACK_ALLOWANCE).as_millis() as i64);
        let verdicts = futures_util::future::join_all(
            in_flight
                .iter()
                .map(|f| self.verify(&f.api, &f.roll, window_end_ms)),
        )
        .await;
        Verdicts {
            verdicts,
            cut_by_deadline: window_end_ms < full_window_ms,
        }
    }

    /// Reads the rollout until it completes, fails, or the window ends.
    async fn verify(&self, api: &C::Api, roll: &Roll, window_end_ms: i64) -> Verified {
        let mut last;
        loop {
            match api.get(&roll.workload).await {
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

    /// Waits for a workload's rollout in progress to end, reading it every poll, while this
    /// invocation still has time to roll it afterwards (and never longer than a verification
    /// window): the workload as it ended, or still in progress.
    pub(crate) async fn rollout_settles(
        &self,
        inv: &Invocation,
        api: &C::Api,
        at: &WorkloadRef,
    ) -> Settled {
        let give_up_ms = (now_ms() + self.config.verify.as_millis() as i64).min(
            inv.deadline_ms - (WORK_RESERVE + ROLLBACK_ALLOWANCE + MIN_VERIFY).as_millis() as i64,
        );
        loop {
            match api.get(at).await {
                Ok(Some(view))
                    if !matches!(planner::rollout_state(&view), RolloutState::Progressing(_)) =>
                {
                    return Settled::Ended(Some(Box::new(view)));
                }
                Ok(None) => return Settled::Ended(None),
                _ => {}
            }
            if now_ms() + self.config.poll.as_millis() as i64 > give_up_ms {
                return Settled::Still;
            }
            tracing::info!(workload = %at, "waiting for its previous rollout to end");
            tokio::time::sleep(self.config.poll).await;
        }
    }
}
