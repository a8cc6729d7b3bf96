//! AWS SDK setup: aws-config's default chain (env, profile, web identity, container, IMDS).
//!
//! Nothing of ours touches endpoints: the standard `AWS_ENDPOINT_URL` (and the per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`) points every client at an emulator. Load once per container and
//! build each client from it once, at cold start, never per event.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub mod http;
pub use http::http_client;

/// How long one attempt of an AWS call may take, connection included. The SDK sets only a
/// connect timeout by default: a service that accepts the connection and never answers would
/// hold the invocation until Lambda kills it.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one AWS call may take with its retries.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The time limits every AWS call gets.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the shared SDK configuration, with [`timeouts`] on every call and one [`http_client`]
/// for every client.
pub async fn load_sdk_config() -> SdkConfig {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .http_client(http_client())
        .load()
        .await;
    crate::cold_start::phase("aws config");
    sdk
}

/// `AUTONOMIC_RECORD_OPERATIONS`: a file to which every AWS operation a function calls is
/// appended as `service:Operation` (for example `autoscaling:SetDesiredCapacity`). The tests set
/// it to prove that the Terraform policies grant exactly what the code uses; leave it unset in
/// production.
pub const RECORD_OPERATIONS: &str = "AUTONOMIC_RECORD_OPERATIONS";

/// An SDK interceptor that records each operation's IAM action name to a file.
#[derive(Debug, Clone)]
pub struct OperationRecorder {
    path: std::path::PathBuf,
}

impl OperationRecorder {
    pub fn to_file(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The recorder `AUTONOMIC_RECORD_OPERATIONS` asks for, if any.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(RECORD_OPERATIONS)
            .filter(|p| !p.is_empty())
            .map(Self::to_file)
    }

    /// Appends `service:Operation`. Recording must never fail a call: a write error is ignored.
    pub fn record(&self, service: &str, operation: &str) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = f.write_all(format!("{service}:{operation}\n").as_bytes());
        }
    }
}

/// The IAM prefix of an SDK service name ("Auto Scaling" → "autoscaling").
pub fn iam_prefix(service: &str) -> String {
    service
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

// `read_before_serialization`, not `read_before_execution`: a client interceptor's
// before-execution hook runs before the operation's metadata is in the config bag.
impl aws_smithy_runtime_api::client::interceptors::Intercept for OperationRecorder {
    fn name(&self) -> &'static str {
        "OperationRecorder"
    }

    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(m) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            self.record(&iam_prefix(m.service()), m.name());
        }
        Ok(())
    }
}

/// Builds a service client from the shared SDK configuration, with the [`OperationRecorder`] when
/// `AUTONOMIC_RECORD_OPERATIONS` asks for one: `autonomic::sdk_client!(aws_sdk_dynamodb, &sdk)`.
/// Tests pass the recorder themselves as a third argument (`Option<OperationRecorder>`), so the
/// binaries and the tests build their clients the same way.
#[macro_export]
macro_rules! sdk_client {
    ($service:ident, $sdk:expr) => {
        $crate::sdk_client!($service, $sdk, $crate::aws::OperationRecorder::from_env())
    };
    ($service:ident, $sdk:expr, $recorder:expr) => {{
        let mut builder = $service::config::Builder::from($sdk);
        if let Some(recorder) = $recorder {
            builder = builder.interceptor(recorder);
        }
        $service::Client::from_conf(builder.build())
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_prefixes() {
        assert_eq!(iam_prefix("Auto Scaling"), "autoscaling");
        assert_eq!(iam_prefix("CloudFront"), "cloudfront");
        assert_eq!(iam_prefix("DynamoDB"), "dynamodb");
    }
}
