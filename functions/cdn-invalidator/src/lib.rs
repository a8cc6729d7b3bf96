//! cdn-invalidator: SQS messages become CloudFront invalidations, batched, within limits, nothing
//! lost.
//!
//! - [`messages`]: what a message body can be (a request, an S3 notification, S3's test event).
//! - [`paths`]: normalising paths and reducing a set of them.
//! - [`planner`]: the pure decisions (segments, limits, calls, caller references).
//! - [`api`]: the CloudFront calls, behind a trait.
//! - [`invalidator`]: the function itself (its names, the struct built once per container, one
//!   batch's state).
//! - [`handler`]: one batch, with dry-run, audit and the partial batch response.
//! - [`resolve`]: a message's distributions and paths ([`domains`]: the domain name cache).
//! - [`submit`]: the distribution leases, and each call sent through the guarded step.
//! - [`ledger`]: what became of each message, the typed reasons, and the FIFO ordering rule.

pub mod api;
pub mod config;
pub mod domains;
pub mod handler;
pub mod invalidator;
pub mod ledger;
pub mod messages;
pub mod paths;
pub mod planner;
pub mod resolve;
pub mod submit;

use autonomic::audit::{Reporter, Sink};
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::{FunctionError, aws};

pub use invalidator::{CdnInvalidator, FUNCTION};

/// Builds the invalidator at cold start: configuration first, then the SDK clients, once.
pub async fn init(sink: Sink) -> Result<CdnInvalidator<aws_sdk_cloudfront::Client>, FunctionError> {
    let sdk = aws::load_sdk_config().await;
    let mut env = Env::from_process();
    env.load_documents(&[config::BUCKET_DISTRIBUTIONS], &sdk)
        .await?;
    let config = config::InvalidatorConfig::from_env(env)?;
    autonomic::cold_start::phase("configuration");
    let state = StateTable::new(
        autonomic::sdk_client!(aws_sdk_dynamodb, &sdk),
        config.common.state_table.clone(),
    );
    state.probe_at_cold_start().await?;
    tracing::info!(
        buckets = config.buckets.len(),
        collapse_threshold = config.collapse_threshold,
        dry_run = config.common.dry_run,
        "cdn-invalidator ready"
    );
    Ok(CdnInvalidator::new(
        autonomic::sdk_client!(aws_sdk_cloudfront, &sdk),
        state,
        config,
        Reporter::new(FUNCTION, sink),
    ))
}
