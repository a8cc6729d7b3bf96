//! The promoter's configuration, from environment variables at cold start.

use std::time::Duration;

use autonomic::config::{CommonConfig, ConfigError, Env};

use crate::targets::Targets;

/// `PROMOTION_TARGETS`: the targets document (inline JSON, or a reference: `ssm:`, `s3://`, `file:`).
pub const PROMOTION_TARGETS: &str = "PROMOTION_TARGETS";

/// `MAX_EVENT_AGE_SECONDS`: an alarm transition older than this is stale and skipped; `0` turns
/// the check off.
pub const MAX_EVENT_AGE_SECONDS: &str = "MAX_EVENT_AGE_SECONDS";

/// Fifteen minutes: a health alarm redelivered later than that describes an outage the estate
/// may have recovered from (and the confirmation re-reads the health check anyway).
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(900);

/// `ROUTE53_REGION`: where Route 53's API is called (its control plane is in us-east-1;
/// cn-northwest-1 in the China Regions).
pub const ROUTE53_REGION: &str = "ROUTE53_REGION";

/// `PROMOTION_SETTLE_SECONDS`: how long after a promotion call that may have taken effect the
/// clusters must still look untouched before the retry of the same alarm transition calls again
/// (RDS may take a moment to show an accepted request).
pub const PROMOTION_SETTLE_SECONDS: &str = "PROMOTION_SETTLE_SECONDS";

/// `PRIMARY_SILENCE_SECONDS`: how long a global database's primary Region must answer nothing,
/// in readings at least that far apart, before it is taken as down (and a failover allowing data
/// loss may be made). Long enough to outlast a burst of server errors or a slow network.
pub const PRIMARY_SILENCE_SECONDS: &str = "PRIMARY_SILENCE_SECONDS";

/// Thirty seconds: several readings, each of which outlasts the SDK's own retries.
pub const DEFAULT_PRIMARY_SILENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct PromoterConfig {
    pub common: CommonConfig,
    pub targets: Targets,
    pub max_event_age: Option<Duration>,
    pub route53_region: String,
    pub promotion_settle: Duration,
    pub primary_silence: Duration,
}

impl PromoterConfig {
    /// Reads everything and reports every problem at once.
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::read(&mut env);
        let targets = env.parse(PROMOTION_TARGETS, true, Targets::parse);
        let max_event_age = env.max_event_age(MAX_EVENT_AGE_SECONDS, DEFAULT_MAX_EVENT_AGE);
        let route53_region = env.optional::<String>(ROUTE53_REGION, "us-east-1".to_string());
        let promotion_settle =
            env.seconds(PROMOTION_SETTLE_SECONDS, Duration::from_secs(60), 0, 900);
        let primary_silence = env.seconds(PRIMARY_SILENCE_SECONDS, DEFAULT_PRIMARY_SILENCE, 1, 600);
        // A transition redelivered after its claim is forgotten would be handled again (the
        // breaker still stops a second promotion, but the claim is the first guard).
        if let (Some(c), Some(age)) = (&common, max_event_age)
            && age > c.idempotency_ttl
        {
            env.problem(
                MAX_EVENT_AGE_SECONDS,
                format!(
                    "must be at most IDEMPOTENCY_TTL_SECONDS ({} s)",
                    c.idempotency_ttl.as_secs()
                ),
            );
        }
        let (common, targets) = env.finish_with(common.zip(targets))?;
        Ok(Self {
            common,
            targets,
            max_event_age,
            route53_region,
            promotion_settle,
            primary_silence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_bad_variable() {
        let env = Env::from_map([
            ("PROMOTION_TARGETS", r#"{"targets": []}"#),
            ("MAX_EVENT_AGE_SECONDS", "soon"),
        ]);
        let e = PromoterConfig::from_env(env).unwrap_err().to_string();
        assert!(e.contains("STATE_TABLE_NAME: required"), "{e}");
        assert!(
            e.contains("PROMOTION_TARGETS: targets: at least one target"),
            "{e}"
        );
        assert!(e.contains("MAX_EVENT_AGE_SECONDS"), "{e}");
    }

    /// The example document infra/ deploys by default, read by reference as a file in the package.
    #[tokio::test]
    async fn the_example_document_is_valid() {
        let env = autonomic_testkit::example_document_env(
            PROMOTION_TARGETS,
            "targets.example.json",
            env!("CARGO_MANIFEST_DIR"),
        )
        .await;
        let c = PromoterConfig::from_env(env).unwrap();
        assert!(c.targets.targets.len() >= 3);
        assert_eq!(c.max_event_age, Some(DEFAULT_MAX_EVENT_AGE));
        assert_eq!(c.route53_region, "us-east-1");
    }
}
