//! AWS SDK setup: aws-config's default chain (env, profile, web identity, container, IMDS).
//!
//! Nothing of ours touches endpoints: the standard `AWS_ENDPOINT_URL` (and the per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`) points every client at an emulator. Load once per container and
//! build each client from it once, at cold start, never per event.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the shared SDK configuration.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}
