//! Image tag filters, shared by the functions that act on ECR pushes: exact, glob, regular
//! expression (anchored), or a semver range (Cargo's rules; `v1.4.0` reads as `1.4.0`).

use regex_lite::Regex;
use semver::{Version, VersionReq};

use crate::glob::Glob;

/// A compiled tag filter.
#[derive(Debug, Clone)]
pub enum TagFilter {
    Any,
    Exact(String),
    Glob(Glob),
    Regex(Regex),
    Semver(VersionReq),
}

impl TagFilter {
    pub fn glob(pattern: &str) -> Result<Self, String> {
        Glob::new(pattern)
            .map(TagFilter::Glob)
            .map_err(|e| format!("glob: {e}"))
    }

    /// Anchored: the whole tag must match.
    pub fn regex(pattern: &str) -> Result<Self, String> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(TagFilter::Regex)
            .map_err(|e| format!("regex: {e}"))
    }

    pub fn semver(range: &str) -> Result<Self, String> {
        VersionReq::parse(range)
            .map(TagFilter::Semver)
            .map_err(|e| format!("semver: {e}"))
    }

    /// A filter written as `KIND:PATTERN`: `tag:latest`, `glob:release-*`, `regex:\d+`,
    /// `semver:>=1.2.0, <2` (the form of an annotation's value).
    pub fn parse_prefixed(text: &str) -> Result<Self, String> {
        let (kind, pattern) = text.split_once(':').ok_or_else(|| {
            format!("{text:?}: expected KIND:PATTERN (tag:, glob:, regex: or semver:)")
        })?;
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err(format!("{text:?}: the pattern is empty"));
        }
        match kind.trim() {
            "tag" => Ok(TagFilter::Exact(pattern.to_string())),
            "glob" => Self::glob(pattern),
            "regex" => Self::regex(pattern),
            "semver" => Self::semver(pattern),
            other => Err(format!(
                "{other:?} is not a policy kind: tag, glob, regex or semver"
            )),
        }
    }

    /// Whether `tag` passes, and the version it is when the filter is a semver range.
    pub fn matches(&self, tag: &str) -> Option<Option<Version>> {
        match self {
            TagFilter::Any => Some(None),
            TagFilter::Exact(t) => (t == tag).then_some(None),
            TagFilter::Glob(g) => g.is_match(tag).then_some(None),
            TagFilter::Regex(r) => r.is_match(tag).then_some(None),
            TagFilter::Semver(req) => {
                let version = parse_version(tag)?;
                req.matches(&version).then_some(Some(version))
            }
        }
    }
}

/// A tag as a version: `1.4.0`, `v1.4.0`, `1.4.0-rc1`.
pub fn parse_version(tag: &str) -> Option<Version> {
    Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_written() {
        let semver = TagFilter::semver(">=1.2.0, <2").unwrap();
        assert!(semver.matches("1.4.0").is_some());
        assert!(semver.matches("v1.4.0").is_some());
        assert!(semver.matches("1.1.9").is_none());
        assert!(semver.matches("2.0.0").is_none());
        assert!(
            semver.matches("1.4.0-rc1").is_none(),
            "a prerelease needs a prerelease range"
        );
        assert!(semver.matches("latest").is_none());
        let regex = TagFilter::regex(r"\d+\.\d+\.\d+-rc\d+").unwrap();
        assert!(regex.matches("1.4.0-rc1").is_some());
        assert!(regex.matches("x1.4.0-rc1").is_none(), "anchored");
        let glob = TagFilter::glob("*-rc*").unwrap();
        assert!(glob.matches("1.4.0-rc1").is_some());
        assert!(glob.matches("1.4.0").is_none());
        assert!(TagFilter::Any.matches("anything").is_some());
    }

    #[test]
    fn prefixed_forms() {
        assert!(
            matches!(TagFilter::parse_prefixed("tag:latest"), Ok(TagFilter::Exact(t)) if t == "latest")
        );
        assert!(
            TagFilter::parse_prefixed("semver: >=1.0.0")
                .unwrap()
                .matches("1.2.0")
                .is_some()
        );
        assert!(
            TagFilter::parse_prefixed("glob:*-rc*")
                .unwrap()
                .matches("1.0.0-rc1")
                .is_some()
        );
        assert!(
            TagFilter::parse_prefixed("regex:[0-9]+")
                .unwrap()
                .matches("42")
                .is_some()
        );
        for bad in ["latest", "tag:", "semver:one", "exact:x", "regex:("] {
            assert!(TagFilter::parse_prefixed(bad).is_err(), "{bad}");
        }
    }
}
