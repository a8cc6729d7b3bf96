//! The CodePipeline calls the function makes, behind a small trait implemented for the SDK
//! client.

use std::future::Future;

use autonomic::CallError;
use aws_sdk_codepipeline::types::{
    ActionCategory, PipelineVariable, SourceRevisionOverride, SourceRevisionType,
};

use crate::planner::{PipelineShape, Start};

pub trait PipelineApi: Send + Sync + 'static {
    /// The pipeline's type, variables and ECR source actions; `None` if it does not exist.
    fn get_pipeline(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<PipelineShape>, CallError>> + Send;

    /// Starts an execution; the execution id.
    fn start_execution(
        &self,
        start: &Start,
    ) -> impl Future<Output = Result<String, CallError>> + Send;
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
            .send()
            .await
            .map_err(|e| CallError::aws("codepipeline", "StartPipelineExecution", e))?;
        Ok(out.pipeline_execution_id.unwrap_or_default())
    }
}
