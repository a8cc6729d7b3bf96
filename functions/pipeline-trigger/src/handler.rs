//! One invocation: parse → plan → for each routed pipeline: claim → check the pipeline → lease →
//! start → end the claim → respond.
//!
//! Each pipeline on its own: one failing does not stop the others, and on the retry of the
//! delivery the ones already started are claimed and skipped, so only the failed one is tried
//! again. The invocation fails when a pipeline did (a retryable error first, so the retry comes).

use autonomic::audit::Reporter;
use autonomic::events::{EcrEvent, parse_ecr_event};
use autonomic::guard::{self, Claimed, Guards, HeldClaim, LeaseName, StateTable};
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{CallError, FunctionError, Invocation, Skip, batch};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::PipelineApi;
use crate::config::TriggerConfig;
use crate::planner::{self, CLOCK_SKEW_MS, Identified, START_PIPELINE_EXECUTION, Start};

pub const FUNCTION: &str = "pipeline-trigger";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "pipeline-trigger";

/// A lock on a pipeline while a start of it is made: a start that may have taken effect holds
/// back the next start of the same pipeline until its retry has resolved it, so two pushes do not
/// start in an order CodePipeline did not see them in. It is settled at once: no cooldown.
pub fn pipeline_lease(pipeline: &str) -> LeaseName {
    LeaseName::new("pipeline-start", pipeline)
}

/// What a start records on its claim before it calls: the start, and when it was requested, so
/// that whoever takes the claim over can look for the execution it may have made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartIntent {
    #[serde(flatten)]
    start: Start,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requested_at_ms: Option<i64>,
}

/// An intent recorded without its time (before it was recorded) is looked for over this much.
const UNTIMED_INTENT_LOOKBACK_MS: i64 = 3_600_000;

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
        let mut items = batch::Driver::new(START_PIPELINE_EXECUTION);
        for start in &plan.actions {
            if items.start(inv, &start.pipeline) {
                let result = self.start_one(inv, start, &trigger).await;
                items.done(inv, &start.pipeline, &trigger, result);
            }
        }
        let lines = items.finish(inv)?;
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
            // A claim taken over with an intent resumes that start, even when this push is
            // another tag of the digest: its own request instead could start the pipeline twice.
            Claimed::Mine { claim, intent } => {
                let replayed = intent.and_then(|i| serde_json::from_value::<StartIntent>(i).ok());
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
            && previous.start.client_request_token != start.client_request_token
        {
            tracing::info!(pipeline = %start.pipeline, interrupted = %previous.start.image(), this = %start.image(), "resuming the interrupted start of this digest");
        }
        let interrupted_at = replayed.as_ref().map(|r| {
            r.requested_at_ms
                .unwrap_or_else(|| now_ms() - UNTIMED_INTENT_LOOKBACK_MS)
        });
        let start = replayed.as_ref().map_or(start, |r| &r.start);
        let result = self
            .guarded_start(inv, start, interrupted_at, trigger, &mut claim)
            .await;
        claim.end(result).await
    }

    /// Checked, locked, started once. A start that may have taken effect (an earlier attempt
    /// that recorded its intent, or this attempt's call failing without a refusal) is looked for
    /// among the pipeline's executions before anything starts it again: found, it is recorded;
    /// not found within the settle time, the delivery comes back; not found after it, the start
    /// never happened and is made.
    async fn guarded_start(
        &self,
        inv: &mut Invocation,
        start: &Start,
        interrupted_at: Option<i64>,
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
        if let Some(at) = interrupted_at {
            let found = match self.find_started(start, at).await {
                Ok(found) => found,
                Err(e) => {
                    // The lease passes with the claim to the next attempt, which looks again.
                    lease.keep("the interrupted start could not be looked for");
                    return Err(e.into());
                }
            };
            if let Some((id, how)) = found {
                lease.settle(now_ms()).await;
                return Ok(self.started(inv, start, trigger, &id, Some(how)));
            }
            let settle_ms = i64::try_from(self.config.start_settle.as_millis()).unwrap_or(0);
            let age_ms = now_ms() - at;
            if age_ms < settle_ms {
                lease.keep("waiting for the interrupted start to show");
                return Err(FunctionError::NotYet {
                    code: "StartUnsettled".into(),
                    detail: format!(
                        "{} was asked to start {} s ago and lists no such execution yet: looking again after {} s",
                        start.pipeline,
                        age_ms / 1000,
                        settle_ms / 1000
                    ),
                    acted: true,
                });
            }
            tracing::warn!(pipeline = %start.pipeline, image = %start.image(), "the interrupted start made no execution: starting");
        }
        let requested_at_ms = now_ms();
        let intent = json!(StartIntent {
            start: start.clone(),
            requested_at_ms: Some(requested_at_ms),
        });
        match guard::apply(
            claim,
            lease,
            &intent,
            now_ms,
            self.api.start_execution(start),
        )
        .await
        {
            Ok(id) => Ok(self.started(inv, start, trigger, &id, None)),
            Err(e) if e.may_have_taken_effect() => {
                // The answer is lost, not the start: look for it now; if it does not show yet,
                // the retry takes the claim over and looks again.
                match self.find_started(start, requested_at_ms).await {
                    Ok(Some((id, how))) => {
                        self.guards.release(&name, &inv.request_id).await;
                        Ok(self.started(inv, start, trigger, &id, Some(how)))
                    }
                    Ok(None) => Err(e.into()),
                    Err(look) => {
                        tracing::warn!(pipeline = %start.pipeline, error = %look, "could not look for the start whose answer was lost");
                        Err(e.into())
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The execution `start` (requested at `requested_at_ms`) may have made, and what identified
    /// it; newest first.
    async fn find_started(
        &self,
        start: &Start,
        requested_at_ms: i64,
    ) -> Result<Option<(String, &'static str)>, CallError> {
        let seen = self
            .api
            .executions_since(&start.pipeline, requested_at_ms - CLOCK_SKEW_MS)
            .await?;
        for mut e in seen {
            let mut identified = planner::identifies(start, requested_at_ms, &e);
            if identified == Identified::NeedsVariables {
                e.variables = Some(self.api.execution_variables(&start.pipeline, &e.id).await?);
                identified = planner::identifies(start, requested_at_ms, &e);
            }
            if let Identified::Yes(how) = identified {
                tracing::warn!(pipeline = %start.pipeline, execution = %e.id, by = how, "found the execution an uncertain start made");
                return Ok(Some((e.id, how)));
            }
        }
        Ok(None)
    }

    /// A start made (or found): logged, audited, its line.
    fn started(
        &self,
        inv: &mut Invocation,
        start: &Start,
        trigger: &str,
        execution_id: &str,
        found_by: Option<&str>,
    ) -> Value {
        tracing::info!(pipeline = %start.pipeline, execution = %execution_id, image = %start.image(), "started");
        let mut details = json!(start);
        details["executionId"] = json!(execution_id);
        let mut extra = json!({"executionId": execution_id});
        if let Some(how) = found_by {
            details["foundBy"] = json!(how);
            extra["foundBy"] = json!(how);
        }
        inv.applied(START_PIPELINE_EXECUTION, &start.pipeline, trigger, details);
        line(start, "started", extra)
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
