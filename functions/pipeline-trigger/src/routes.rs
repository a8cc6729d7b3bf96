//! The routes document (`PIPELINE_ROUTES`): which pushed images start which pipelines, with which
//! variables.
//!
//! Parsed and validated once at cold start. Unknown fields, and templates naming values that do
//! not exist, are errors naming the route and the field: a misspelt `{digets}` passed on as text
//! would build the wrong image.

use std::collections::BTreeMap;

use autonomic::glob::Glob;
use serde::{Deserialize, Serialize};

pub use autonomic::tags::{TagFilter, parse_version};

use crate::template::{Template, Value};

/// What a pipeline variable may be named (CodePipeline: `[A-Za-z0-9@\-_]+`, at most 128).
fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@-_".contains(c))
}

/// What a pipeline may be named (CodePipeline: `[A-Za-z0-9.@\-_]+`, at most 100).
fn valid_pipeline_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c))
}

/// CodePipeline takes at most 50 variables per execution.
pub const MAX_VARIABLES: usize = 50;

/// Which tags a route takes: exactly one criterion, or none for every tag.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagFilterSpec {
    /// A glob over the tag (`v1.*`, `*-rc*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// A regular expression the whole tag must match (anchored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// A semver range (`>=1.2.0, <2`), Cargo's rules: a prerelease (`1.4.0-rc1`) matches only a
    /// range that names a prerelease of the same version. A leading `v` on the tag is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
}

/// Pass the pushed digest as the source revision of this ECR source action, so the pipeline
/// builds exactly the pushed image rather than what its tag points at when it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRevisionSpec {
    pub action_name: String,
}

/// What a push of a digest already started for a pipeline under another tag does.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnRetag {
    /// Skipped (`retag`): the pipeline already ran for these bytes.
    #[default]
    Skip,
    /// Started again, once per tag.
    Start,
}

/// One route as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    /// The repository name, exactly, or a glob (`team/*`).
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagFilterSpec>,
    pub pipelines: Vec<String>,
    /// Pipeline variable → template over the push (`{tag}`, `{digest}`, ...).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<SourceRevisionSpec>,
    #[serde(default)]
    pub on_retag: OnRetag,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesDocument {
    routes: Vec<RouteSpec>,
}

/// How a route picks repositories.
#[derive(Debug, Clone)]
pub enum RepositoryFilter {
    Exact(String),
    Glob(Glob),
}

impl RepositoryFilter {
    pub fn matches(&self, repository: &str) -> bool {
        match self {
            RepositoryFilter::Exact(r) => r == repository,
            RepositoryFilter::Glob(g) => g.is_match(repository),
        }
    }
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    pub spec: RouteSpec,
    pub repository: RepositoryFilter,
    pub tags: TagFilter,
    pub variables: Vec<(String, Template)>,
}

/// Every route, in document order.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub routes: Vec<Route>,
}

/// A routes document problem; `at` names the route and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct RoutesError {
    pub at: String,
    pub problem: String,
}

impl Routes {
    /// Parses and validates a routes document.
    pub fn parse(text: &str) -> Result<Routes, RoutesError> {
        let doc: RoutesDocument =
            autonomic::config::parse_json_document(text).map_err(|e| RoutesError {
                at: match e.path.as_str() {
                    "." => "document".into(),
                    path => describe_path(text, path),
                },
                problem: e.problem,
            })?;
        if doc.routes.is_empty() {
            return Err(RoutesError {
                at: "routes".into(),
                problem: "must name at least one route".into(),
            });
        }
        let mut names = BTreeMap::new();
        // Each pipeline's onRetag: its claims have one shape, whichever route starts it.
        let mut retag_of: BTreeMap<String, (String, OnRetag)> = BTreeMap::new();
        let mut routes = Vec::with_capacity(doc.routes.len());
        for (i, spec) in doc.routes.into_iter().enumerate() {
            let bad = |field: &str, problem: String| RoutesError {
                at: format!("routes[{i}] ({:?}).{field}", spec.name),
                problem,
            };
            if spec.name.trim().is_empty() {
                return Err(bad("name", "must not be empty".into()));
            }
            if let Some(first) = names.insert(spec.name.clone(), i) {
                return Err(bad("name", format!("duplicates routes[{first}]")));
            }
            let repository =
                compile_repository(&spec.repository).map_err(|p| bad("repository", p))?;
            let tags = compile_tags(spec.tags.as_ref()).map_err(|p| bad("tags", p))?;
            if spec.pipelines.is_empty() {
                return Err(bad("pipelines", "must name at least one pipeline".into()));
            }
            for (j, p) in spec.pipelines.iter().enumerate() {
                if !valid_pipeline_name(p) {
                    return Err(bad(
                        &format!("pipelines[{j}]"),
                        format!("{p:?} is not a pipeline name ([A-Za-z0-9.@-_], at most 100)"),
                    ));
                }
                if spec.pipelines[..j].contains(p) {
                    return Err(bad(
                        &format!("pipelines[{j}]"),
                        format!("{p:?} is listed twice"),
                    ));
                }
            }
            if spec.variables.len() > MAX_VARIABLES {
                return Err(bad(
                    "variables",
                    format!(
                        "{} variables; CodePipeline takes at most {MAX_VARIABLES}",
                        spec.variables.len()
                    ),
                ));
            }
            let semver = matches!(tags, TagFilter::Semver(_));
            let mut variables = Vec::with_capacity(spec.variables.len());
            for (name, text) in &spec.variables {
                let field = format!("variables.{name}");
                if !valid_variable_name(name) {
                    return Err(bad(
                        &field,
                        "not a pipeline variable name ([A-Za-z0-9@-_], at most 128)".into(),
                    ));
                }
                let template = Template::parse(text).map_err(|p| bad(&field, p))?;
                if let Some(problem) = template.never_valid() {
                    return Err(bad(&field, problem));
                }
                if !semver && let Some(part) = template.values().find(|v| v.is_version_part()) {
                    return Err(bad(
                        &field,
                        format!(
                            "{{{}}} needs a semver tag filter (tags.semver), so that every tag is a version",
                            part.name()
                        ),
                    ));
                }
                variables.push((name.clone(), template));
            }
            for p in &spec.pipelines {
                if let Some((other, on_retag)) = retag_of.get(p)
                    && *on_retag != spec.on_retag
                {
                    return Err(bad(
                        "onRetag",
                        format!(
                            "{p} is also routed by {other:?} with another onRetag: a pipeline has one"
                        ),
                    ));
                }
                retag_of.insert(p.clone(), (spec.name.clone(), spec.on_retag));
            }
            if let Some(sr) = &spec.source_revision
                && sr.action_name.trim().is_empty()
            {
                return Err(bad("sourceRevision.actionName", "must not be empty".into()));
            }
            routes.push(Route {
                spec,
                repository,
                tags,
                variables,
            });
        }
        Ok(Routes { routes })
    }

    /// Every pipeline some route names, once.
    pub fn pipelines(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .routes
            .iter()
            .flat_map(|r| r.spec.pipelines.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

fn compile_repository(repository: &str) -> Result<RepositoryFilter, String> {
    if repository.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c);
    if !is_glob(repository) && !repository.chars().all(valid) {
        return Err(format!(
            "{repository:?} is not an ECR repository name (lowercase letters, digits, . _ - /)"
        ));
    }
    if is_glob(repository) {
        // `*` stays within one path segment, as in the repository names ECR shows (`team/app`).
        Ok(RepositoryFilter::Glob(Glob::within_segment(repository)?))
    } else {
        Ok(RepositoryFilter::Exact(repository.to_string()))
    }
}

fn compile_tags(spec: Option<&TagFilterSpec>) -> Result<TagFilter, String> {
    let Some(spec) = spec else {
        return Ok(TagFilter::Any);
    };
    match (&spec.glob, &spec.regex, &spec.semver) {
        (Some(g), None, None) => TagFilter::glob(g),
        (None, Some(r), None) => TagFilter::regex(r),
        (None, None, Some(s)) => TagFilter::semver(s),
        _ => Err("needs exactly one of glob, regex, semver".into()),
    }
}

/// `routes[2].pipelines` → `routes[2] ("release").pipelines`.
fn describe_path(text: &str, path: &str) -> String {
    let Some((index, field)) = path
        .strip_prefix("routes[")
        .and_then(|rest| rest.split_once(']'))
    else {
        return path.to_string();
    };
    let name = index.parse::<usize>().ok().and_then(|i| {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        v["routes"][i]["name"].as_str().map(str::to_owned)
    });
    match name {
        Some(name) => format!("routes[{index}] ({name:?}){field}"),
        None => path.to_string(),
    }
}

impl Value {
    /// `{major}` and the other parts of a version exist only for tags that are versions.
    pub fn is_version_part(&self) -> bool {
        matches!(
            self,
            Value::Major | Value::Minor | Value::Patch | Value::Prerelease
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"routes": [
        {"name": "release", "repository": "payments/api", "tags": {"semver": ">=1.0.0"},
         "pipelines": ["payments-release"],
         "variables": {"IMAGE_TAG": "{tag}", "IMAGE_URI": "{registry}/{repository}@{digest}",
                       "MAJOR": "{major}"},
         "sourceRevision": {"actionName": "Image"}},
        {"name": "staging", "repository": "payments/*", "tags": {"glob": "*-rc*"},
         "pipelines": ["payments-staging", "payments-smoke"], "onRetag": "start"}
    ]}"#;

    #[test]
    fn parses_a_valid_document() {
        let routes = Routes::parse(VALID).unwrap();
        assert_eq!(routes.routes.len(), 2);
        assert_eq!(
            routes.pipelines(),
            ["payments-release", "payments-smoke", "payments-staging"]
        );
        assert_eq!(routes.routes[1].spec.on_retag, OnRetag::Start);
        assert_eq!(routes.routes[0].spec.on_retag, OnRetag::Skip);
    }

    fn error(doc: &str) -> String {
        Routes::parse(doc).unwrap_err().to_string()
    }

    #[test]
    fn problems_name_the_route_and_field() {
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "pipeline": "x"}]}"#,
        );
        assert!(
            e.starts_with(r#"routes[0] ("r")"#) && e.contains("unknown field `pipeline`"),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "variables": {"D": "{digets}"}}]}"#,
        );
        assert!(
            e.contains(r#"routes[0] ("r").variables.D: unknown value {digets}"#),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "variables": {"M": "{major}"}}]}"#,
        );
        assert!(
            e.contains("variables.M: {major} needs a semver tag filter"),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "tags": {"glob": "a", "semver": "1"}}]}"#,
        );
        assert!(
            e.contains("tags: needs exactly one of glob, regex, semver"),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "tags": {"semver": "one"}}]}"#,
        );
        assert!(e.contains("tags: semver:"), "{e}");
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "tags": {"regex": "("}}]}"#,
        );
        assert!(e.contains("tags: regex:"), "{e}");
        let e = error(r#"{"routes": [{"name": "r", "repository": "a", "pipelines": []}]}"#);
        assert!(e.contains("pipelines: must name at least one"), "{e}");
        let e = error(r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p q"]}]}"#);
        assert!(e.contains("pipelines[0]"), "{e}");
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "variables": {"A B": "x"}}]}"#,
        );
        assert!(
            e.contains("variables.A B: not a pipeline variable name"),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"]}, {"name": "r", "repository": "b", "pipelines": ["p"]}]}"#,
        );
        assert!(
            e.contains(r#"routes[1] ("r").name: duplicates routes[0]"#),
            "{e}"
        );
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "onRetag": "sometimes"}]}"#,
        );
        assert!(e.contains(r#"routes[0] ("r").onRetag"#), "{e}");
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"], "variables": {"P": "{prerelease}"}, "tags": {"semver": "*"}}]}"#,
        );
        assert!(e.contains("variables.P: {prerelease} alone"), "{e}");
        let e = error(
            r#"{"routes": [{"name": "r", "repository": "a", "pipelines": ["p"]}, {"name": "s", "repository": "b", "pipelines": ["p"], "onRetag": "start"}]}"#,
        );
        assert!(
            e.contains(r#"routes[1] ("s").onRetag: p is also routed by "r""#),
            "{e}"
        );
        let e = error(r#"{"routes": [{"name": "r", "repository": "Web ", "pipelines": ["p"]}]}"#);
        assert!(
            e.contains("repository: \"Web \" is not an ECR repository name"),
            "{e}"
        );
        assert!(error(r#"{"routes": []}"#).contains("routes: must name at least one route"));
        assert!(error(r#"{"routes": []} {}"#).contains("unexpected text after the document"));
    }

    #[test]
    fn tag_filters_compile_to_their_kind() {
        // What each kind matches is the shared filter's (autonomic::tags); here, the mapping.
        let spec = |glob: Option<&str>, regex: Option<&str>, semver: Option<&str>| TagFilterSpec {
            glob: glob.map(Into::into),
            regex: regex.map(Into::into),
            semver: semver.map(Into::into),
        };
        assert!(matches!(
            compile_tags(Some(&spec(None, None, Some(">=1.2.0")))),
            Ok(TagFilter::Semver(_))
        ));
        assert!(matches!(
            compile_tags(Some(&spec(None, Some("a+"), None))),
            Ok(TagFilter::Regex(_))
        ));
        assert!(matches!(
            compile_tags(Some(&spec(Some("*-rc*"), None, None))),
            Ok(TagFilter::Glob(_))
        ));
        assert!(matches!(compile_tags(None), Ok(TagFilter::Any)));
    }

    #[test]
    fn repository_globs_stay_within_a_segment() {
        let f = compile_repository("team/*").unwrap();
        assert!(f.matches("team/api"));
        assert!(!f.matches("team/api/worker"));
        assert!(!f.matches("other/api"));
        let exact = compile_repository("web").unwrap();
        assert!(exact.matches("web") && !exact.matches("web2"));
    }
}
