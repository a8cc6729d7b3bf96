//! The invalidator's configuration, from environment variables at cold start.

use std::collections::BTreeMap;

use autonomic::config::{CommonConfig, ConfigError, Env};
use serde::Deserialize;

use crate::messages::Target;

/// `BUCKET_DISTRIBUTIONS`: which distribution serves each bucket's objects (JSON).
pub const BUCKET_DISTRIBUTIONS: &str = "BUCKET_DISTRIBUTIONS";
/// `COLLAPSE_THRESHOLD`: a folder with more paths than this in one batch becomes `folder/*`.
pub const COLLAPSE_THRESHOLD: &str = "COLLAPSE_THRESHOLD";
pub const DEFAULT_COLLAPSE_THRESHOLD: usize = 20;

/// How a bucket's object keys become paths on a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketMapping {
    #[serde(default)]
    pub distribution_id: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    /// Only keys under this prefix are served; it is removed before `pathPrefix` is added.
    #[serde(default)]
    pub strip_prefix: Option<String>,
    /// Put in front of the key (default `/`).
    #[serde(default)]
    pub path_prefix: Option<String>,
}

impl BucketMapping {
    pub fn target(&self) -> Option<Target> {
        match (&self.distribution_id, &self.domain) {
            (Some(id), None) => Some(Target::DistributionId(id.clone())),
            (None, Some(d)) => Some(Target::Domain(d.to_ascii_lowercase())),
            _ => None,
        }
    }

    /// Why this mapping can never work, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        let blank = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim().is_empty());
        if blank(&self.distribution_id) {
            return Err("distributionId: must not be empty".into());
        }
        if blank(&self.domain) {
            return Err("domain: must not be blank".into());
        }
        if self.target().is_none() {
            return Err("needs exactly one of distributionId, domain".into());
        }
        if let Some(p) = &self.path_prefix
            && (!p.starts_with('/') || p.contains(['*', '?', '#']))
        {
            return Err(format!(
                "pathPrefix: {p:?} must start with / and hold no *, ? or #"
            ));
        }
        Ok(())
    }

    /// The path for `key`, or `None` when the key is outside `stripPrefix`.
    pub fn path_for(&self, key: &str) -> Option<String> {
        let rest = match &self.strip_prefix {
            Some(p) => key.strip_prefix(p.as_str())?,
            None => key,
        };
        let prefix = self.path_prefix.as_deref().unwrap_or("/");
        Some(format!(
            "{}/{}",
            prefix.trim_end_matches('/'),
            rest.trim_start_matches('/')
        ))
    }
}

#[derive(Debug, Clone)]
pub struct InvalidatorConfig {
    pub common: CommonConfig,
    pub buckets: BTreeMap<String, BucketMapping>,
    pub collapse_threshold: usize,
}

impl InvalidatorConfig {
    pub fn from_env(mut env: Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::read(&mut env);
        let buckets = env
            .parse(BUCKET_DISTRIBUTIONS, false, |text| {
                let map: BTreeMap<String, BucketMapping> =
                    autonomic::config::parse_json_document(text).map_err(|e| e.to_string())?;
                for (bucket, m) in &map {
                    m.validate().map_err(|p| format!("{bucket}: {p}"))?;
                }
                Ok(map)
            })
            .unwrap_or_default();
        let collapse_threshold =
            env.parse(COLLAPSE_THRESHOLD, false, |s| match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
            });
        let common = env.finish_with(common)?;
        Ok(Self {
            common,
            buckets,
            collapse_threshold: collapse_threshold.unwrap_or(DEFAULT_COLLAPSE_THRESHOLD),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_to_paths() {
        let m = BucketMapping {
            distribution_id: Some("E1".into()),
            domain: None,
            strip_prefix: Some("public/".into()),
            path_prefix: Some("/static/".into()),
        };
        assert_eq!(
            m.path_for("public/a/b.css").as_deref(),
            Some("/static/a/b.css")
        );
        assert_eq!(m.path_for("private/x"), None);
        let plain = BucketMapping {
            distribution_id: Some("E1".into()),
            domain: None,
            strip_prefix: None,
            path_prefix: None,
        };
        assert_eq!(plain.path_for("a.png").as_deref(), Some("/a.png"));
    }

    #[test]
    fn reports_every_bad_variable() {
        let env = Env::from_map([
            (
                "BUCKET_DISTRIBUTIONS",
                r#"{"b": {"distributionId": "E1", "domain": "x"}}"#,
            ),
            ("COLLAPSE_THRESHOLD", "0"),
        ]);
        let e = InvalidatorConfig::from_env(env).unwrap_err().to_string();
        assert!(
            e.contains("STATE_TABLE_NAME")
                && e.contains("BUCKET_DISTRIBUTIONS: b: needs exactly one")
                && e.contains("COLLAPSE_THRESHOLD"),
            "{e}"
        );
    }

    #[test]
    fn mappings_that_can_never_work_are_rejected() {
        let cases = [
            (
                r#"{"b": {"distributionId": ""}}"#,
                "b: distributionId: must not be empty",
            ),
            (r#"{"b": {"domain": "  "}}"#, "b: domain: must not be blank"),
            (
                r#"{"b": {"domain": "x.example", "pathPrefix": "/*"}}"#,
                "b: pathPrefix",
            ),
            (
                r#"{"b": {"domain": "x.example"}} {}"#,
                "unexpected text after the document",
            ),
        ];
        for (doc, want) in cases {
            let env = Env::from_map([("BUCKET_DISTRIBUTIONS", doc), ("STATE_TABLE_NAME", "t")]);
            let e = InvalidatorConfig::from_env(env).unwrap_err().to_string();
            assert!(
                e.contains(&format!("BUCKET_DISTRIBUTIONS: {want}")),
                "want {want:?}, got {e}"
            );
        }
    }

    /// The example document infra/ deploys by default, read by reference as a file in the package.
    #[tokio::test]
    async fn the_example_document_is_valid() {
        let env = autonomic_testkit::example_document_env(
            BUCKET_DISTRIBUTIONS,
            "buckets.example.json",
            env!("CARGO_MANIFEST_DIR"),
        )
        .await;
        let c = InvalidatorConfig::from_env(env).unwrap();
        assert!(!c.buckets.is_empty());
    }
}
