//! The scaler's configuration, from environment variables at cold start.

use std::time::Duration;

use autonomic::config::{CommonConfig, ConfigError, Env};

use crate::planner::Settings;
use crate::rules::Rules;

/// `SCALING_RULES`: the rules document (JSON).
pub const SCALING_RULES: &str = "SCALING_RULES";

/// `MAX_EVENT_AGE_SECONDS`: older transitions are stale and skipped; `0` turns the check off.
pub const MAX_EVENT_AGE_SECONDS: &str = "MAX_EVENT_AGE_SECONDS";
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct ScalerConfig {
    pub common: CommonConfig,
    pub rules: Rules,
    pub settings: Settings,
}

impl ScalerConfig {
    /// Reads everything and reports every problem at once.
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::read(&mut env);
        let rules = env.parse(SCALING_RULES, true, |text| {
            Rules::parse(text).map_err(|e| e.to_string())
        });
        let max_event_age = env.max_event_age(MAX_EVENT_AGE_SECONDS, DEFAULT_MAX_EVENT_AGE);
        let (common, rules) = env.finish_with(common.zip(rules))?;
        Ok(Self {
            common,
            rules,
            settings: Settings { max_event_age },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_bad_variable() {
        let env = Env::from_map([
            ("SCALING_RULES", r#"{"rules": [{"name": "x"}]}"#),
            ("MAX_EVENT_AGE_SECONDS", "soon"),
        ]);
        let e = ScalerConfig::from_env(env).unwrap_err().to_string();
        assert!(e.contains("STATE_TABLE_NAME: required"), "{e}");
        assert!(e.contains(r#"SCALING_RULES: rules[0] ("x")"#), "{e}");
        assert!(e.contains("MAX_EVENT_AGE_SECONDS"), "{e}");
    }

    #[test]
    fn zero_max_age_turns_staleness_off() {
        let env = Env::from_map([
            (
                "SCALING_RULES",
                r#"{"rules": [{"name": "a", "match": {"name": "a"}, "onAlarm": {"change": 1},
                    "maxStep": 1, "cooldownSeconds": 60}]}"#,
            ),
            ("STATE_TABLE_NAME", "t"),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ]);
        let c = ScalerConfig::from_env(env).unwrap();
        assert_eq!(c.settings.max_event_age, None);
    }

    /// The example document infra/ deploys by default, read by reference as a file in the package.
    #[tokio::test]
    async fn the_example_document_is_valid() {
        let env = autonomic_testkit::example_document_env(
            SCALING_RULES,
            "rules.example.json",
            env!("CARGO_MANIFEST_DIR"),
        )
        .await;
        let c = ScalerConfig::from_env(env).unwrap();
        assert!(!c.rules.rules.is_empty());
    }
}
