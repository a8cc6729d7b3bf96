//! The CodePipeline calls the function makes, behind a small trait implemented for the SDK
//! client.

use std::future::Future;

use std::collections::BTreeMap;

use autonomic::CallError;
use aws_sdk_codepipeline::config::retry::RetryConfig;
use aws_sdk_codepipeline::types::{
    ActionCategory, PipelineVariable, SourceRevisionOverride, SourceRevisionType,
};

use crate::planner::{ExecutionSeen, PipelineShape, Start};

/// At most this many executions are read back when looking for one a start may have made.
pub const EXECUTIONS_READ: usize = 100;

pub trait PipelineApi: Send + Sync + 'static {
    /// The pipeline's type, variables and ECR source actions; `None` if it does not exist.
    fn get_pipeline(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<PipelineShape>, CallError>> + Send;

    /// Starts an execution, in one attempt; the execution id.
    fn start_execution(
        &self,
        start: &Start,
    ) -> impl Future<Output = Result<String, CallError>> + Send;

    /// ListPipelineExecutions, newest first, back to `since_ms` (at most [`EXECUTIONS_READ`]).
    fn executions_since(
        &self,
        pipeline: &str,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<ExecutionSeen>, CallError>> + Send;

    /// GetPipelineExecution: the execution's resolved variables.
    fn execution_variables(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, CallError>> + Send;
}

impl PipelineApi for aws_sdk_codepipeline::Client {
    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineShape>, CallError> {
        let out = match self.get_pipeline().name(name).send().await {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_pipeline_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(CallError::aws("codepipeline", "GetPipeline", e)),
        };
        let Some(p) = out.pipeline else {
            return Ok(None);
        };
        let ecr_source_actions = p
            .stages()
            .iter()
            .flat_map(|s| s.actions())
            .filter(|a| {
                a.action_type_id().is_some_and(|t| {
                    t.category() == &ActionCategory::Source && t.provider() == "ECR"
                })
            })
            .map(|a| a.name().to_string())
            .collect();
        Ok(Some(PipelineShape {
            pipeline_type: p
                .pipeline_type()
                .map_or_else(|| "V1".to_string(), |t| t.as_str().to_string()),
            variables: p.variables().iter().map(|v| v.name().to_string()).collect(),
            ecr_source_actions,
        }))
    }

    async fn start_execution(&self, start: &Start) -> Result<String, CallError> {
        let call = |e: String| {
            CallError::new(
                "codepipeline",
                "StartPipelineExecution",
                "InvalidRequest",
                e,
                autonomic::ErrorClass::Permanent,
            )
        };
        let mut request = self
            .start_pipeline_execution()
            .name(&start.pipeline)
            .client_request_token(&start.client_request_token);
        // One attempt: the SDK's retry of an attempt whose answer was lost would start again,
        // trusting CodePipeline to answer the repeated token with the first execution, which it
        // does not document. The handler looks for the execution instead.
        let once =
            aws_sdk_codepipeline::config::Builder::new().retry_config(RetryConfig::disabled());
        for (name, value) in &start.variables {
            request = request.variables(
                PipelineVariable::builder()
                    .name(name)
                    .value(value)
                    .build()
                    .map_err(|e| call(e.to_string()))?,
            );
        }
        if let Some(sr) = &start.source_revision {
            request = request.source_revisions(
                SourceRevisionOverride::builder()
                    .action_name(&sr.action_name)
                    .revision_type(SourceRevisionType::ImageDigest)
                    .revision_value(&sr.image_digest)
                    .build()
                    .map_err(|e| call(e.to_string()))?,
            );
        }
        let out = request
            .customize()
            .config_override(once)
            .send()
            .await
            .map_err(|e| CallError::aws("codepipeline", "StartPipelineExecution", e))?;
        Ok(out.pipeline_execution_id.unwrap_or_default())
    }

    async fn executions_since(
        &self,
        pipeline: &str,
        since_ms: i64,
    ) -> Result<Vec<ExecutionSeen>, CallError> {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .list_pipeline_executions()
                .pipeline_name(pipeline)
                .max_results(50)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| CallError::aws("codepipeline", "ListPipelineExecutions", e))?;
            for e in out.pipeline_execution_summaries() {
                let started_ms = e.start_time().map_or(0, |t| t.to_millis().unwrap_or(0));
                if started_ms < since_ms || seen.len() >= EXECUTIONS_READ {
                    return Ok(seen);
                }
                seen.push(ExecutionSeen {
                    id: e.pipeline_execution_id().unwrap_or_default().to_string(),
                    started_ms,
                    trigger_type: e
                        .trigger()
                        .and_then(|t| t.trigger_type())
                        .map(|t| t.as_str().to_string()),
                    source_revisions: e
                        .source_revisions()
                        .iter()
                        .map(|r| {
                            (
                                r.action_name().to_string(),
                                r.revision_id().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                    variables: None,
                });
            }
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(seen),
            }
        }
    }

    async fn execution_variables(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<BTreeMap<String, String>, CallError> {
        let out = self
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(execution_id)
            .send()
            .await
            .map_err(|e| CallError::aws("codepipeline", "GetPipelineExecution", e))?;
        Ok(out
            .pipeline_execution()
            .map(|e| {
                e.variables()
                    .iter()
                    .filter_map(|v| Some((v.name()?.to_string(), v.resolved_value()?.to_string())))
                    .collect()
            })
            .unwrap_or_default())
    }
}
