//! pipeline-trigger: an ECR push starts the CodePipeline V2 executions its routes name, with
//! variables, exactly once.
//!
//! - [`routes`] and [`template`]: the `PIPELINE_ROUTES` document.
//! - [`planner`]: the pure decisions (which pipelines, which variables; whether a pipeline as
//!   declared can take the start).
//! - [`api`]: the CodePipeline calls, behind a trait.
//! - [`trigger`]: the function itself (its names, the struct built once per container).
//! - [`handler`]: one invocation: parse, plan, then each pipeline through the guarded step.
//! - [`start`]: the start step: the check, the call, and finding an interrupted or uncertain
//!   start's execution.

pub mod api;
pub mod config;
pub mod handler;
pub mod planner;
pub mod routes;
pub mod start;
pub mod template;
pub mod trigger;

use autonomic::audit::{Reporter, Sink};
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::{FunctionError, aws};

pub use trigger::{FUNCTION, PipelineTrigger};

/// Builds the trigger at cold start: the routes document (read by reference if so given), the
/// configuration (a bad one fails here, naming every problem), then the SDK clients, once.
pub async fn init(
    sink: Sink,
) -> Result<PipelineTrigger<aws_sdk_codepipeline::Client>, FunctionError> {
    let sdk = aws::load_sdk_config().await;
    let mut env = Env::from_process();
    env.load_documents(&[config::PIPELINE_ROUTES], &sdk).await?;
    let config = config::TriggerConfig::from_env(env)?;
    autonomic::cold_start::phase("configuration");
    let state = StateTable::new(
        autonomic::sdk_client!(aws_sdk_dynamodb, &sdk),
        config.common.state_table.clone(),
    );
    state.probe_at_cold_start().await?;
    tracing::info!(
        routes = config.routes.routes.len(),
        pipelines = config.routes.pipelines().len(),
        dry_run = config.common.dry_run,
        "pipeline-trigger ready"
    );
    Ok(PipelineTrigger::new(
        autonomic::sdk_client!(aws_sdk_codepipeline, &sdk),
        state,
        config,
        Reporter::new(FUNCTION, sink),
    ))
}
