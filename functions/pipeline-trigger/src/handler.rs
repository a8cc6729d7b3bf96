//! One invocation: parse → plan → for each routed pipeline: claim → check the pipeline → lease →
//! start → end the claim → respond.
//!
//! Each pipeline on its own: one failing does not stop the others, and on the retry of the
//! delivery the ones already started are claimed and skipped, so only the failed one is tried
//! again. The invocation fails when a pipeline did (a retryable error first, so the retry comes).

use std::collections::BTreeMap;

use autonomic::batch::ItemLine;
use autonomic::events::{EcrEvent, parse_ecr_event};
use autonomic::guard::Outcome;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Skip, batch};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::PipelineApi;
use crate::planner::{self, START_PIPELINE_EXECUTION, SourceRevision, Start};
use crate::start::{StartStep, Started};
use crate::trigger::{FUNCTION, PipelineTrigger};

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

/// The function's answer to a push.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub function: &'static str,
    pub dry_run: bool,
    pub image: String,
    pub starts: Vec<ItemLine<StartLine>>,
    pub skips: Vec<Skip>,
}

/// One pipeline's line: the start, and what became of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartLine {
    pub pipeline: String,
    pub route: String,
    pub tag: String,
    pub outcome: &'static str,
    pub variables: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<SourceRevision>,
    /// What was started (or found started).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub started: Option<Started>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A duplicate or re-tag: what the first start recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
}

fn line(start: &Start, outcome: &'static str) -> StartLine {
    StartLine {
        pipeline: start.pipeline.clone(),
        route: start.route.clone(),
        tag: start.tag.clone(),
        outcome,
        variables: start.variables.clone(),
        source_revision: start.source_revision.clone(),
        started: None,
        reason: None,
        detail: None,
        previous: None,
    }
}

fn skipped_line(start: &Start, skip: Skip, previous: Option<Value>) -> StartLine {
    StartLine {
        reason: Some(skip.reason),
        detail: Some(skip.detail),
        previous,
        ..line(start, "skipped")
    }
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
        let response = Response {
            function: FUNCTION,
            dry_run: inv.dry_run,
            image: trigger,
            starts: items.finish(inv)?,
            skips: plan.skips,
        };
        serde_json::to_value(response).map_err(|e| FunctionError::Serialize(e.to_string()))
    }

    /// One pipeline, through the guarded step ([`crate::start::StartStep`]): claimed (or a
    /// duplicate or re-tag skip), checked, locked, started once.
    async fn start_one(
        &self,
        inv: &mut Invocation,
        start: &Start,
        trigger: &str,
    ) -> Result<StartLine, FunctionError> {
        let step = StartStep::new(self, start);
        let outcome = self
            .guards
            .step(inv, trigger, &start.claim_key, &step)
            .await?;
        Ok(match outcome {
            Outcome::WouldAct { intent, .. } => line(&intent.start, "would_start"),
            Outcome::Acted { intent, done, .. } => {
                tracing::info!(pipeline = %intent.start.pipeline, execution = %done.execution_id, image = %intent.start.image(), "started");
                StartLine {
                    started: Some(done),
                    ..line(&intent.start, "started")
                }
            }
            Outcome::Skipped { skip } => skipped_line(start, skip, None),
            Outcome::Duplicate { previous, .. } => {
                // Recorded by this version (the intent's start) or an earlier one (the line).
                let tag = previous["intent"]["tag"]
                    .as_str()
                    .or_else(|| previous["tag"].as_str())
                    .unwrap_or("?");
                let skip = if tag == start.tag {
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
                            "{} already started for this digest as tag {tag}",
                            start.pipeline
                        ),
                    )
                };
                skipped_line(start, skip, Some(previous))
            }
        })
    }

    /// GetPipeline, then the pure check: the pipeline exists, is V2, declares every variable the
    /// route passes and has the source action named for the digest.
    pub(crate) async fn check_pipeline(&self, start: &Start) -> Result<(), FunctionError> {
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
