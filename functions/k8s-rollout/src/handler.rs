//! One invocation: parse → screen the push → survey every cluster ([`crate::survey`]: each
//! namespace read, each Deployment that follows the pushed repository planned) → roll each one
//! through the guarded step ([`crate::roll::RollStep`]: claim, lock, re-check, patch), one by one
//! (`rolling`) → wait for the rollouts found in progress, then roll those → watch every roll at once
//! ([`crate::verify`]) → conclude each, rolling a failed one back ([`crate::rollback`]) → respond.
//!
//! Each workload on its own ([`autonomic::batch::Driver`]): one failing does not stop the
//! others, and on the retry of the delivery the ones already rolled are claimed and skipped. The invocation fails
//! when a workload did (a retryable error first, so the retry comes).

use autonomic::batch::{Driver, ItemLine};
use autonomic::events::{EcrEvent, parse_ecr_event};
use autonomic::plan::stale;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::Connect;
use crate::planner::{Push, ROLL};
use crate::roller::{FUNCTION, Pushed, Response, Rollout, WorkloadLine, skip_line};
use crate::survey::{ToRoll, ToWait};
use crate::verify::InFlight;

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
pub(crate) struct Progress<K> {
    pub(crate) items: Driver<WorkloadLine>,
    pub(crate) skips: Vec<Skip>,
    pub(crate) in_flight: Vec<InFlight<K>>,
}

/// The response: the image, each workload's line, the skips.
fn respond(
    inv: &Invocation,
    image: String,
    workloads: Vec<ItemLine<WorkloadLine>>,
    skips: Vec<Skip>,
) -> Result<Value, FunctionError> {
    let r = Response {
        function: FUNCTION,
        dry_run: inv.dry_run,
        image,
        workloads,
        skips,
    };
    serde_json::to_value(r).map_err(|e| FunctionError::Serialize(e.to_string()))
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
            EcrEvent::Other { .. } => return self.skipped_push(inv, &event, ""),
        };
        let trigger = format!(
            "{}:{}@{}",
            action.repository_name,
            action.image_tag.as_deref().unwrap_or(""),
            action.image_digest
        );
        if event.skip_reason().is_some() {
            return self.skipped_push(inv, &event, &trigger);
        }
        if let Some(skip) = stale(
            &trigger,
            "the push",
            action.time_ms,
            now_ms(),
            self.config.max_event_age,
        ) {
            inv.skipped(ROLL, &trigger, &skip, json!({}));
            return respond(inv, trigger, vec![], vec![skip]);
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
        respond(inv, ev.push.image(), lines, progress.skips)
    }

    /// A push nothing is rolled for (not a tagged, successful push; another ECR event).
    fn skipped_push(
        &self,
        inv: &mut Invocation,
        event: &EcrEvent,
        trigger: &str,
    ) -> Result<Value, FunctionError> {
        let (reason, detail) = event
            .skip_reason()
            .unwrap_or(("other_ecr_event", String::new()));
        let skip = Skip::new(
            if trigger.is_empty() { "event" } else { trigger },
            reason,
            detail,
        );
        inv.skipped(ROLL, trigger, &skip, json!({}));
        respond(inv, trigger.to_string(), vec![], vec![skip])
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
                let l = skip_line(&skip, "skipped");
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
}
