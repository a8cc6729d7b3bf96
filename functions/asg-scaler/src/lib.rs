//! asg-scaler: CloudWatch alarm transitions scale Auto Scaling groups, within bounds and exactly
//! once.
//!
//! - [`rules`]: the `SCALING_RULES` document.
//! - [`planner`]: the pure decisions (route a transition to a rule and group, then plan one step).
//! - [`api`]: the Auto Scaling calls, behind a trait.
//! - [`scaler`]: the function itself (its names, the struct built once per container).
//! - [`handler`]: one invocation: parse, route, each transition through the guarded step, respond.
//! - [`guarded`]: the scaling step on the shared guarded step: decide, what a takeover checks,
//!   the re-check under the group's lease, the call.
//! - [`followup`]: stepping again while an alarm holds (the scheduled sweep).

pub mod api;
pub mod config;
pub mod followup;
pub mod guarded;
pub mod handler;
pub mod planner;
mod report;
pub mod rules;
pub mod scaler;

use autonomic::audit::{Reporter, Sink};
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::{FunctionError, aws};

pub use scaler::{AsgScaler, FUNCTION};

/// Builds the scaler at cold start: configuration first (a bad one fails here, naming every
/// problem), then the SDK clients, once.
pub async fn init(sink: Sink) -> Result<AsgScaler<api::AwsApi>, FunctionError> {
    let sdk = aws::load_sdk_config().await;
    let mut env = Env::from_process();
    env.load_documents(&[config::SCALING_RULES], &sdk).await?;
    let config = config::ScalerConfig::from_env(env)?;
    autonomic::cold_start::phase("configuration");
    let state = StateTable::new(
        autonomic::sdk_client!(aws_sdk_dynamodb, &sdk),
        config.common.state_table.clone(),
    );
    state.probe_at_cold_start().await?;
    tracing::info!(
        rules = config.rules.rules.len(),
        dry_run = config.common.dry_run,
        table = %config.common.state_table,
        "asg-scaler ready"
    );
    Ok(AsgScaler::new(
        api::AwsApi {
            autoscaling: autonomic::sdk_client!(aws_sdk_autoscaling, &sdk),
            cloudwatch: autonomic::sdk_client!(aws_sdk_cloudwatch, &sdk),
        },
        state,
        config,
        Reporter::new(FUNCTION, sink),
    ))
}
