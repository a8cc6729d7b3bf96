//! Starting one pipeline for one push, as a guarded step: what is new here is the decision (the
//! pipeline as declared can take the start), the call (StartPipelineExecution, one attempt), and
//! how an interrupted or uncertain start is found (its execution, among the pipeline's). The
//! claim, the lock, the intent and the audit are the shared step's ([`autonomic::guard::Step`]).

use autonomic::guard::{Act, Decision, Lock, Recheck, Resumed, Step};
use autonomic::time::now_ms;
use autonomic::{CallError, FunctionError, Invocation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::PipelineApi;
use crate::planner::{self, CLOCK_SKEW_MS, Identified, START_PIPELINE_EXECUTION, Start};
use crate::trigger::{PipelineTrigger, pipeline_lease};

/// An intent recorded without its time (by an earlier version) is looked for over this much.
const UNTIMED_INTENT_LOOKBACK_MS: i64 = 3_600_000;

/// What a start records on its claim before it calls: the start, and when it was requested, so
/// that whoever takes the claim over can look for the execution it may have made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartIntent {
    #[serde(flatten)]
    pub start: Start,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at_ms: Option<i64>,
}

impl StartIntent {
    fn requested_at_ms(&self) -> i64 {
        self.requested_at_ms
            .unwrap_or_else(|| now_ms() - UNTIMED_INTENT_LOOKBACK_MS)
    }
}

/// A start made, or found made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub execution_id: String,
    /// How an uncertain start's execution was recognised (`variables`, `source revision`,
    /// `time`), when it was found rather than answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_by: Option<&'static str>,
}

/// One pipeline's start for one push.
pub struct StartStep<'a, A> {
    trigger: &'a PipelineTrigger<A>,
    start: &'a Start,
}

impl<'a, A: PipelineApi> StartStep<'a, A> {
    pub fn new(trigger: &'a PipelineTrigger<A>, start: &'a Start) -> Self {
        Self { trigger, start }
    }

    /// The execution `start` (requested at `requested_at_ms`) may have made, and what identified
    /// it; newest first.
    async fn find_started(
        &self,
        start: &Start,
        requested_at_ms: i64,
    ) -> Result<Option<Started>, CallError> {
        let api = &self.trigger.api;
        let seen = api
            .executions_since(&start.pipeline, requested_at_ms - CLOCK_SKEW_MS)
            .await?;
        for mut e in seen {
            let mut identified = planner::identifies(start, requested_at_ms, &e);
            if identified == Identified::NeedsVariables {
                e.variables = Some(api.execution_variables(&start.pipeline, &e.id).await?);
                identified = planner::identifies(start, requested_at_ms, &e);
            }
            if let Identified::Yes(how) = identified {
                tracing::warn!(pipeline = %start.pipeline, execution = %e.id, by = how, "found the execution an uncertain start made");
                return Ok(Some(Started {
                    execution_id: e.id,
                    found_by: Some(how),
                }));
            }
        }
        Ok(None)
    }
}

impl<A: PipelineApi> Step for StartStep<'_, A> {
    type Intent = StartIntent;
    type Done = Started;

    fn action(&self) -> &str {
        START_PIPELINE_EXECUTION
    }

    fn target(&self) -> &str {
        &self.start.pipeline
    }

    /// A lock while starting, settled at once: a start that may have taken effect holds back the
    /// next start of the same pipeline until its retry has resolved it, so two pushes do not
    /// start in an order CodePipeline did not see them in.
    fn lock(&self, _inv: &Invocation) -> Lock {
        Lock::Lock(pipeline_lease(&self.start.pipeline))
    }

    async fn decide(&self, _inv: &mut Invocation) -> Result<Decision<StartIntent>, FunctionError> {
        self.trigger.check_pipeline(self.start).await?;
        Ok(Decision::Act(Act {
            target: self.start.pipeline.clone(),
            intent: StartIntent {
                start: self.start.clone(),
                requested_at_ms: None,
            },
        }))
    }

    /// The interrupted attempt's start (it may be another tag of this digest: that one is looked
    /// for, so this push never starts a second execution): found, it is this push's; not found
    /// within `START_SETTLE_SECONDS` of its request, the delivery comes back; after that, it
    /// never happened.
    async fn resume(
        &self,
        _inv: &mut Invocation,
        intent: StartIntent,
    ) -> Result<Resumed<Started>, FunctionError> {
        let at = intent.requested_at_ms();
        if let Some(found) = self.find_started(&intent.start, at).await? {
            return Ok(Resumed::Done(found));
        }
        let settle_ms = i64::try_from(self.trigger.config.start_settle.as_millis()).unwrap_or(0);
        let age_ms = now_ms() - at;
        if age_ms < settle_ms {
            return Err(FunctionError::NotYet {
                code: "StartUnsettled".into(),
                detail: format!(
                    "{} was asked to start {} s ago and lists no such execution yet: looking again after {} s",
                    intent.start.pipeline,
                    age_ms / 1000,
                    settle_ms / 1000
                ),
                acted: true,
            });
        }
        tracing::warn!(pipeline = %intent.start.pipeline, image = %intent.start.image(), "the interrupted start made no execution: starting");
        Ok(Resumed::Afresh)
    }

    /// The request's time, recorded with the intent just before the call.
    async fn recheck(
        &self,
        _inv: &mut Invocation,
        mut intent: StartIntent,
    ) -> Result<Recheck<StartIntent>, FunctionError> {
        intent.requested_at_ms = Some(now_ms());
        Ok(Recheck::Proceed(intent))
    }

    async fn call(&self, intent: &StartIntent) -> Result<Started, CallError> {
        let execution_id = self.trigger.api.start_execution(&intent.start).await?;
        Ok(Started {
            execution_id,
            found_by: None,
        })
    }

    /// The answer is lost, not the start: it is looked for now; not showing yet, the retry takes
    /// the claim over and looks again.
    async fn confirm(&self, intent: &StartIntent) -> Result<Option<Started>, CallError> {
        self.find_started(&intent.start, intent.requested_at_ms())
            .await
    }

    fn audit_details(&self) -> Value {
        json!({"image": self.start.image(), "route": self.start.route})
    }
}
