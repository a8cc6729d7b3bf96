//! k8s-rollout: an ECR push rolls the Kubernetes Deployments that opted in (pinned to the
//! pushed digest), verifies each rollout as `kubectl rollout status` does, and rolls a failed one
//! back, recording its digest so no later event applies it again.
//!
//! - [`clusters`]: the `ROLLOUT_CLUSTERS` document; [`config`]: the environment.
//! - [`planner`]: the pure decisions (annotations and policies, GitOps, semver never down,
//!   rollout state) and the patches.
//! - [`token`]: the EKS bearer token; [`connect`]: a client per cluster.
//! - [`kube_api`]: the Kubernetes calls, with time limits and the API's Status kept; [`api`]: the
//!   traits the handler calls them through ([`api::KubeApi`], [`api::Connect`]).
//! - [`roller`]: the function itself (its names, the struct built once per container).
//! - [`handler`]: one invocation, phase by phase: `survey` (read and plan), `roll` (each
//!   workload's roll, a guarded step), `rolling` (each workload through the step with the batch driver), `verify` (watching),
//!   `rollback` (concluding, rolling back).

pub mod api;
pub mod clusters;
pub mod config;
pub mod connect;
pub mod handler;
pub mod kube_api;
pub mod kubeconfig;
pub mod planner;
mod roll;
mod rollback;
pub mod roller;
mod rolling;
mod survey;
pub mod token;
mod verify;

use std::collections::BTreeMap;

use autonomic::audit::{Reporter, Sink};
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::{FunctionError, aws};

pub use roller::{FUNCTION, Rollout};

/// Builds the roller at cold start: the clusters document (read by reference if so given), the
/// configuration (a bad one fails here, naming every problem), then the SDK clients, once.
/// Clusters are connected on first use: a cluster that cannot be reached fails its own
/// workloads, not the cold start.
pub async fn init(sink: Sink) -> Result<Rollout, FunctionError> {
    let sdk = aws::load_sdk_config().await;
    let mut env = Env::from_process();
    env.load_documents(&[config::ROLLOUT_CLUSTERS], &sdk)
        .await?;
    let config = config::RolloutConfig::from_env(env)?;
    autonomic::cold_start::phase("configuration");
    let state = StateTable::new(
        autonomic::sdk_client!(aws_sdk_dynamodb, &sdk),
        config.common.state_table.clone(),
    );
    state.probe_at_cold_start().await?;
    let eks: BTreeMap<String, aws_sdk_eks::Client> = config
        .clusters
        .eks_regions()
        .into_iter()
        .map(|region| {
            let regional = sdk
                .to_builder()
                .region(aws_config::Region::new(region.clone()))
                .build();
            (region, autonomic::sdk_client!(aws_sdk_eks, &regional))
        })
        .collect();
    tracing::info!(
        clusters = config.clusters.clusters.len(),
        dry_run = config.common.dry_run,
        "k8s-rollout ready"
    );
    let connector = connect::Connector::new(eks, sdk.credentials_provider());
    Ok(Rollout::new(
        connector,
        state,
        config,
        Reporter::new(FUNCTION, sink),
    ))
}
