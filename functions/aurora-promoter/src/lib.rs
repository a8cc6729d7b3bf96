//! aurora-promoter: a Route 53 health-check alarm promotes Aurora (an in-Region failover, a
//! global switchover or failover, a replica promotion), once, behind a circuit breaker.
//!
//! - [`targets`] and [`config`]: the `PROMOTION_TARGETS` document.
//! - [`planner`]: the pure decisions (which target; promote or not, how, to what).
//! - [`api`]: the RDS, CloudWatch and Route 53 calls, behind a trait, with clients per Region.
//! - [`arn`]: the parts of an ARN the planner and the API read.
//! - [`promoter`]: the function itself (its names, the struct built once per container).
//! - [`handler`]: one invocation: parse, route, the promotion through the guarded step, respond;
//!   [`observe`] the read-only calls; `promote` the promotion step and its completion;
//!   `rds_events` the RDS events (complete or release the promotion in flight).

pub mod api;
pub mod arn;
pub mod config;
pub mod handler;
pub mod observe;
pub mod planner;
mod promote;
pub mod promoter;
mod rds_events;
pub mod targets;

use std::collections::BTreeMap;

use autonomic::audit::{Reporter, Sink};
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::{FunctionError, aws};
use aws_config::Region;

pub use promoter::{AuroraPromoter, FUNCTION};

/// The SDK clients for `config`: RDS and CloudWatch in every Region a target names (the function
/// must work from the Region being promoted while another is down), Route 53 in its own Region.
pub fn clients(sdk: &aws_config::SdkConfig, config: &config::PromoterConfig) -> api::AwsApi {
    let in_region = |r: &str| sdk.to_builder().region(Region::new(r.to_string())).build();
    let mut rds = BTreeMap::new();
    let mut cloudwatch = BTreeMap::new();
    for region in config.targets.regions() {
        let sdk = in_region(&region);
        rds.insert(region.clone(), autonomic::sdk_client!(aws_sdk_rds, &sdk));
        cloudwatch.insert(region, autonomic::sdk_client!(aws_sdk_cloudwatch, &sdk));
    }
    api::AwsApi {
        rds,
        cloudwatch,
        route53: autonomic::sdk_client!(aws_sdk_route53, &in_region(&config.route53_region)),
    }
}

/// Builds the promoter at cold start: the targets document (read by reference if so given), the
/// configuration (a bad one fails here, naming every problem), then the clients, once.
pub async fn init(sink: Sink) -> Result<AuroraPromoter<api::AwsApi>, FunctionError> {
    let sdk = aws::load_sdk_config().await;
    let mut env = Env::from_process();
    env.load_documents(&[config::PROMOTION_TARGETS], &sdk)
        .await?;
    let config = config::PromoterConfig::from_env(env)?;
    autonomic::cold_start::phase("configuration");
    let state = StateTable::new(
        autonomic::sdk_client!(aws_sdk_dynamodb, &sdk),
        config.common.state_table.clone(),
    );
    state.probe_at_cold_start().await?;
    tracing::info!(
        targets = config.targets.targets.len(),
        regions = ?config.targets.regions(),
        dry_run = config.common.dry_run,
        "aurora-promoter ready"
    );
    Ok(AuroraPromoter::new(
        clients(&sdk, &config),
        state,
        config,
        Reporter::new(FUNCTION, sink),
    ))
}
