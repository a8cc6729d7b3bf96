//! The trigger's configuration, from environment variables at cold start.

use std::time::Duration;

use autonomic::config::{CommonConfig, ConfigError, Env};

use crate::planner::Settings;
use crate::routes::Routes;

/// `PIPELINE_ROUTES`: the routes document (inline JSON, or a reference: `ssm:`, `s3://`, `file:`).
pub const PIPELINE_ROUTES: &str = "PIPELINE_ROUTES";

/// `MAX_EVENT_AGE_SECONDS`: older pushes are stale and skipped; `0` turns the check off.
pub const MAX_EVENT_AGE_SECONDS: &str = "MAX_EVENT_AGE_SECONDS";

/// An hour: EventBridge retries a failed delivery for up to a day, and a build of an image pushed
/// a day ago, started after the builds of newer pushes, would deploy the older image last.
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(3600);

/// `START_SETTLE_SECONDS`: after a start that may have taken effect, how long the executions
/// must still show none of it before it is started again (CodePipeline may take a moment to list
/// an execution it accepted).
pub const START_SETTLE_SECONDS: &str = "START_SETTLE_SECONDS";

#[derive(Debug, Clone)]
pub struct TriggerConfig {
    pub common: CommonConfig,
    pub routes: Routes,
    pub settings: Settings,
    pub start_settle: Duration,
}

impl TriggerConfig {
    /// Reads everything and reports every problem at once.
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::read(&mut env);
        let routes = env.parse(PIPELINE_ROUTES, true, |text| {
            Routes::parse(text).map_err(|e| e.to_string())
        });
        let max_event_age = env.max_event_age(MAX_EVENT_AGE_SECONDS, DEFAULT_MAX_EVENT_AGE);
        let start_settle = env.seconds(START_SETTLE_SECONDS, Duration::from_secs(15), 0, 600);
        // A push redelivered after its claim is forgotten would start again. (0, no age limit,
        // is allowed for replaying old samples; docs/functions/pipeline-trigger.md says what it gives up.)
        if let (Some(c), Some(age)) = (&common, max_event_age)
            && age > c.idempotency_ttl
        {
            env.problem(
                MAX_EVENT_AGE_SECONDS,
                format!(
                    "must be at most IDEMPOTENCY_TTL_SECONDS ({} s): a push delivered after its claim is forgotten would start its pipelines again",
                    c.idempotency_ttl.as_secs()
                ),
            );
        }
        let (common, routes) = env.finish_with(common.zip(routes))?;
        Ok(Self {
            common,
            routes,
            settings: Settings { max_event_age },
            start_settle,
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
                "PIPELINE_ROUTES",
                r#"{"routes": [{"name": "x", "repository": "r", "pipelines": ["p"], "variables": {"T": "{tags}"}}]}"#,
            ),
            ("MAX_EVENT_AGE_SECONDS", "soon"),
        ]);
        let e = TriggerConfig::from_env(env).unwrap_err().to_string();
        assert!(e.contains("STATE_TABLE_NAME: required"), "{e}");
        assert!(
            e.contains(r#"PIPELINE_ROUTES: routes[0] ("x").variables.T: unknown value {tags}"#),
            "{e}"
        );
        assert!(e.contains("MAX_EVENT_AGE_SECONDS"), "{e}");
    }

    #[test]
    fn pushes_older_than_the_claims_are_remembered_are_refused() {
        let routes = r#"{"routes": [{"name": "x", "repository": "r", "pipelines": ["p"]}]}"#;
        for (age, ttl) in [("7200", "3600"), ("90000", "86400")] {
            let env = Env::from_map([
                ("PIPELINE_ROUTES", routes),
                ("STATE_TABLE_NAME", "t"),
                ("MAX_EVENT_AGE_SECONDS", age),
                ("IDEMPOTENCY_TTL_SECONDS", ttl),
            ]);
            let e = TriggerConfig::from_env(env).unwrap_err().to_string();
            assert!(e.contains("MAX_EVENT_AGE_SECONDS: must be at most"), "{e}");
        }
    }

    /// The example document infra/ deploys by default, read by reference as a file in the package.
    #[tokio::test]
    async fn the_example_document_is_valid() {
        let env = autonomic_testkit::example_document_env(
            PIPELINE_ROUTES,
            "routes.example.json",
            env!("CARGO_MANIFEST_DIR"),
        )
        .await;
        let c = TriggerConfig::from_env(env).unwrap();
        assert!(!c.routes.routes.is_empty());
        assert_eq!(c.settings.max_event_age, Some(DEFAULT_MAX_EVENT_AGE));
    }
}
