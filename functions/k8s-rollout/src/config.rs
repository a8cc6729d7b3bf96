//! The roller's configuration, from environment variables at cold start.

use std::time::Duration;

use autonomic::config::{CommonConfig, ConfigError, Env};

use crate::clusters::Clusters;

/// `ROLLOUT_CLUSTERS`: the clusters document (inline JSON, or a reference: `ssm:`, `s3://`, `file:`).
pub const ROLLOUT_CLUSTERS: &str = "ROLLOUT_CLUSTERS";

/// `MAX_EVENT_AGE_SECONDS`: older pushes are stale and skipped; `0` turns the check off.
pub const MAX_EVENT_AGE_SECONDS: &str = "MAX_EVENT_AGE_SECONDS";

/// `ROLLOUT_VERIFY_SECONDS`: how long a rollout is watched before it is reported unverified.
pub const ROLLOUT_VERIFY_SECONDS: &str = "ROLLOUT_VERIFY_SECONDS";

/// `ROLLOUT_POLL_SECONDS`: how often the rollout's status is read while it is watched.
pub const ROLLOUT_POLL_SECONDS: &str = "ROLLOUT_POLL_SECONDS";

/// An hour: a push retried for longer would roll an image older than what pushes since brought.
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(3600);
/// Four minutes: inside the function's five-minute timeout, with time left to roll back.
pub const DEFAULT_VERIFY: Duration = Duration::from_secs(240);
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RolloutConfig {
    pub common: CommonConfig,
    pub clusters: Clusters,
    pub max_event_age: Option<Duration>,
    pub verify: Duration,
    pub poll: Duration,
}

impl RolloutConfig {
    /// Reads everything and reports every problem at once.
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::read(&mut env);
        let clusters = env.parse(ROLLOUT_CLUSTERS, true, Clusters::parse);
        let max_event_age = env.max_event_age(MAX_EVENT_AGE_SECONDS, DEFAULT_MAX_EVENT_AGE);
        let verify = env.seconds(ROLLOUT_VERIFY_SECONDS, DEFAULT_VERIFY, 10, 840);
        let poll = env.seconds(ROLLOUT_POLL_SECONDS, DEFAULT_POLL, 1, 60);
        // A push redelivered after its claims are forgotten would roll again.
        if let (Some(c), Some(age)) = (&common, max_event_age)
            && age > c.idempotency_ttl
        {
            env.problem(
                MAX_EVENT_AGE_SECONDS,
                format!(
                    "must be at most IDEMPOTENCY_TTL_SECONDS ({} s): a push delivered after its claims are forgotten would roll again",
                    c.idempotency_ttl.as_secs()
                ),
            );
        }
        let (common, clusters) = env.finish_with(common.zip(clusters))?;
        Ok(Self {
            common,
            clusters,
            max_event_age,
            verify,
            poll,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_bad_variable() {
        let env = Env::from_map([
            (
                "ROLLOUT_CLUSTERS",
                r#"{"clusters": [{"eks": {"cluster": "a", "region": "r"}, "namespaces": []}]}"#,
            ),
            ("ROLLOUT_VERIFY_SECONDS", "5"),
            ("ROLLOUT_POLL_SECONDS", "often"),
        ]);
        let e = RolloutConfig::from_env(env).unwrap_err().to_string();
        for want in [
            "STATE_TABLE_NAME: required",
            "ROLLOUT_CLUSTERS: clusters[0].namespaces",
            "ROLLOUT_VERIFY_SECONDS",
            "ROLLOUT_POLL_SECONDS",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
    }

    /// The example document infra/ deploys by default, read by reference as a file in the package.
    #[tokio::test]
    async fn the_example_document_is_valid() {
        let env = autonomic_testkit::example_document_env(
            ROLLOUT_CLUSTERS,
            "clusters.example.json",
            env!("CARGO_MANIFEST_DIR"),
        )
        .await;
        let c = RolloutConfig::from_env(env).unwrap();
        assert!(!c.clusters.clusters.is_empty());
        assert_eq!(c.verify, DEFAULT_VERIFY);
    }
}
