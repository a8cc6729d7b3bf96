//! One invocation: parse → plan → for each routed pipeline: claim → check the pipeline → lease →
//! start → end the claim → respond.
//!
//! Each pipeline on its own: one failing does not stop the others, and on the retry of the
//! delivery the ones already started are claimed and skipped, so only the failed one is tried
//! again. The invocation fails when a pipeline did (a retryable error first, so the retry comes).

use autonomic::audit::Reporter;
use autonomic::events::{EcrEvent, parse_ecr_event};
use autonomic::guard::{self, Claimed, Guards, HeldClaim, LeaseName, StateTable};
use autonomic::runtime::{Handler, now_ms};
use autonomic::{FunctionError, Invocation, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::PipelineApi;
use crate::config::TriggerConfig;
use crate::planner::{self, START_PIPELINE_EXECUTION, Start};

pub const FUNCTION: &str = "pipeline-trigger";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "pipeline-trigger";

/// A lock on a pipeline while a start of it is made: a start that may have taken effect holds
/// back the next start of the same pipeline until its retry has resolved it, so two pushes do not
/// start in an order CodePipeline did not see them in. It is settled at once: no cooldown.
pub fn pipeline_lease(pipeline: &str) -> LeaseName {
    LeaseName::new("pipeline-start", pipeline)
}

/// The trigger, built once per container.
pub struct PipelineTrigger<A> {
    pub api: A,
    pub guards: Guards,
    pub config: TriggerConfig,
    pub reporter: Reporter,
}

impl<A: PipelineApi> PipelineTrigger<A> {
    pub fn new(api: A, state: StateTable, config: TriggerConfig, reporter: Reporter) -> Self {
        Self {
            api,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }
}

impl<A: PipelineApi> Handler for PipelineTrigger<A> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv =
            Invocation::from_lambda(&self.reporter, &event.context, self.config.common.dry_run);
        let result = self.handle_payload(&event.payload, &mut inv).await;
        inv.finish();
        result
    }
}

/// What the push is, for the audit records' `trigger`.
fn trigger_of(event: &EcrEvent) -> String {
    match event {
        EcrEvent::ImageAction(a) => format!(
            "{}:{}@{}",
            a.repository_name,
            a.image_tag.as_deref().unwrap_or(""),
            a.image_digest
        ),
        EcrEvent::Other { detail_type } => detail_type.clone(),
    }
}

fn failed(inv: &mut Invocation, target: &str, trigger: &str, e: &FunctionError) {
    inv.failed(
        START_PIPELINE_EXECUTION,
        target,
        trigger,
        &e.error_type(),
        json!({ "error": e.to_string() }),
    );
}

/// One pipeline's line in the response.
fn line(start: &Start, outcome: &str, extra: Value) -> Value {
    let mut v = json!({
        "pipeline": start.pipeline,
        "route": start.route,
        "tag": start.tag,
        "outcome": outcome,
        "variables": start.variables,
    });
    if let Some(sr) = &start.source_revision {
        v["sourceRevision"] = json!(sr);
    }
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}

impl<A: PipelineApi> PipelineTrigger<A> {
    async fn handle_payload(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let event = parse_ecr_event(payload).map_err(|e| {
            tracing::warn!(field = %e.field, error = %e, "rejected event");
            let e = FunctionError::from(e);
            failed(inv, "event", "", &e);
            e
        })?;
        let trigger = trigger_of(&event);
        let plan = planner::plan(&event, &self.config.routes, self.config.settings, now_ms());
        for skip in &plan.skips {
            inv.skipped(START_PIPELINE_EXECUTION, &trigger, skip, json!({}));
        }
        let mut lines = Vec::with_capacity(plan.actions.len());
        let mut errors: Vec<FunctionError> = Vec::new();
        let mut not_done = Vec::new();
        for start in &plan.actions {
            // No new work this close to the deadline: what is left comes back with the retry.
            if inv.should_stop() {
                not_done.push(start.pipeline.clone());
                lines.push(line(start, "not_done", json!({})));
                continue;
            }
            match self.start_one(inv, start, &trigger).await {
                Ok(l) => lines.push(l),
                Err(e) => {
                    tracing::error!(pipeline = %start.pipeline, error_type = %e.error_type(), error = %e, "start failed");
                    failed(inv, &start.pipeline, &trigger, &e);
                    lines.push(line(
                        start,
                        "failed",
                        json!({"errorType": e.error_type(), "error": e.to_string()}),
                    ));
                    errors.push(e);
                }
            }
        }
        if !not_done.is_empty() {
            let e = FunctionError::DeadlineNear {
                not_done: not_done.join(", "),
            };
            failed(inv, &not_done.join(","), &trigger, &e);
            errors.insert(0, e);
        }
        if let Some(e) = FunctionError::first_retryable(errors) {
            return Err(e);
        }
        Ok(json!({
            "function": FUNCTION,
            "dryRun": inv.dry_run,
            "image": trigger,
            "starts": lines,
            "skips": plan.skips,
        }))
    }

    /// One pipeline: claimed (or a duplicate or re-tag skip), checked, leased, started.
    async fn start_one(
        &self,
        inv: &mut Invocation,
        start: &Start,
        trigger: &str,
    ) -> Result<Value, FunctionError> {
        if inv.dry_run {
            self.check_pipeline(start).await?;
            inv.applied(
                START_PIPELINE_EXECUTION,
                &start.pipeline,
                trigger,
                json!(start),
            );
            return Ok(line(start, "would_start", json!({})));
        }
        let (mut claim, replayed) = match self.guards.claim_event(inv, &start.claim_key).await? {
            // A claim taken over with an intent makes that start again, the same request with the
            // same clientRequestToken (which CodePipeline answers with the execution the
            // interrupted attempt started, if it did), even when this push is another tag of the
            // digest: starting this push's own request instead could start the pipeline twice.
            Claimed::Mine { claim, intent } => {
                let replayed = intent.and_then(|i| serde_json::from_value::<Start>(i).ok());
                (claim, replayed)
            }
            Claimed::Done(previous) => {
                let skip = if previous["tag"].as_str() == Some(start.tag.as_str()) {
                    Skip::new(
                        &start.pipeline,
                        "duplicate",
                        "already started for this push",
                    )
                } else {
                    Skip::new(
                        &start.pipeline,
                        "retag",
                        format!(
                            "{} already started for this digest as tag {}",
                            start.pipeline,
                            previous["tag"].as_str().unwrap_or("?")
                        ),
                    )
                };
                inv.skipped(START_PIPELINE_EXECUTION, trigger, &skip, json!({}));
                return Ok(line(
                    start,
                    "skipped",
                    json!({"reason": skip.reason, "detail": skip.detail, "previous": previous}),
                ));
            }
        };
        if let Some(previous) = &replayed
            && previous.client_request_token != start.client_request_token
        {
            tracing::info!(pipeline = %start.pipeline, interrupted = %previous.image(), this = %start.image(), "replaying the interrupted start of this digest");
        }
        let start = replayed.as_ref().unwrap_or(start);
        let result = self.guarded_start(inv, start, trigger, &mut claim).await;
        claim.end(&result).await;
        result
    }

    async fn guarded_start(
        &self,
        inv: &mut Invocation,
        start: &Start,
        trigger: &str,
        claim: &mut HeldClaim,
    ) -> Result<Value, FunctionError> {
        self.check_pipeline(start).await?;
        let name = pipeline_lease(&start.pipeline);
        let previous_owner = claim.previous_owner().map(str::to_owned);
        // Settled leases end at once, so a cooldown is only ever a clock's doubt: wait.
        let lease = self
            .guards
            .lock(inv, &name, inv.deadline_ms, previous_owner.as_deref())
            .await?;
        let intent = json!(start);
        let execution_id = guard::apply(
            claim,
            lease,
            &intent,
            now_ms,
            self.api.start_execution(start),
        )
        .await?;
        tracing::info!(pipeline = %start.pipeline, execution = %execution_id, image = %start.image(), "started");
        let mut details = json!(start);
        details["executionId"] = json!(execution_id);
        inv.applied(START_PIPELINE_EXECUTION, &start.pipeline, trigger, details);
        Ok(line(start, "started", json!({"executionId": execution_id})))
    }

    /// GetPipeline, then the pure check: the pipeline exists, is V2, declares every variable the
    /// route passes and has the source action named for the digest.
    async fn check_pipeline(&self, start: &Start) -> Result<(), FunctionError> {
        let shape = self
            .api
            .get_pipeline(&start.pipeline)
            .await?
            .ok_or_else(|| FunctionError::NotFound {
                what: "pipeline",
                name: start.pipeline.clone(),
            })?;
        planner::check(start, &shape).map_err(|r| FunctionError::Precondition {
            code: r.code,
            detail: r.detail,
        })
    }
}
