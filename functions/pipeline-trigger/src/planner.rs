//! The pure decisions: which pipelines a push starts, with which variables, and whether a
//! pipeline as it is declared can take that start.
//!
//! No I/O and no clock (time is an argument). The handler observes (GetPipeline), guards and
//! applies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use autonomic::events::{EcrEvent, EcrImageAction};
use autonomic::{Plan, Skip};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::routes::{OnRetag, Routes};
use crate::template::Image;

/// The audit action of a start.
pub const START_PIPELINE_EXECUTION: &str = "start_pipeline_execution";
/// The longest value CodePipeline takes for a variable.
pub const MAX_VARIABLE_VALUE: usize = 1000;

/// Planner settings from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Older pushes are `stale` (an EventBridge retry hours later must not start an old build
    /// after newer ones); `None`: no limit.
    pub max_event_age: Option<Duration>,
}

/// Pass the pushed digest as the revision of this ECR source action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevision {
    pub action_name: String,
    pub image_digest: String,
}

/// One pipeline execution to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub route: String,
    pub pipeline: String,
    pub repository: String,
    pub digest: String,
    pub tag: String,
    pub variables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<SourceRevision>,
    /// Derived from (pipeline, repository, digest, tag): a retried call is the same request to
    /// CodePipeline.
    pub client_request_token: String,
    /// What is started once: (pipeline, repository, digest), or with the tag when the route
    /// starts re-tags too.
    pub claim_key: String,
}

impl Start {
    /// `repository:tag@digest`
    pub fn image(&self) -> String {
        format!("{}:{}@{}", self.repository, self.tag, self.digest)
    }
}

/// `[0-9a-f]{64}`: within the token's `[a-zA-Z0-9-]{1,128}`, the same for the same start.
pub fn client_request_token(pipeline: &str, repository: &str, digest: &str, tag: &str) -> String {
    let hash = Sha256::digest(format!("{pipeline}\n{repository}\n{digest}\n{tag}").as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn claim_key(
    pipeline: &str,
    repository: &str,
    digest: &str,
    tag: &str,
    on_retag: OnRetag,
) -> String {
    match on_retag {
        OnRetag::Skip => format!("start#{pipeline}#{repository}#{digest}"),
        OnRetag::Start => format!("start#{pipeline}#{repository}#{digest}#{tag}"),
    }
}

/// What a push starts: one [`Start`] per routed pipeline, and the skips.
pub fn plan(event: &EcrEvent, routes: &Routes, settings: Settings, now_ms: i64) -> Plan<Start> {
    let push = match (event, event.skip_reason()) {
        (EcrEvent::ImageAction(push), None) => push,
        (EcrEvent::ImageAction(a), Some((reason, detail))) => {
            return Plan::skip(Skip::new(&a.repository_name, reason, detail));
        }
        (EcrEvent::Other { detail_type }, reason) => {
            let (reason, detail) = reason.unwrap_or(("other_ecr_event", String::new()));
            return Plan::skip(Skip::new(detail_type, reason, detail));
        }
    };
    let tag = push.image_tag.as_deref().unwrap_or_default();
    let target = format!("{}:{tag}", push.repository_name);
    if let Some(stale) = autonomic::plan::stale(
        &target,
        "push",
        push.time_ms,
        now_ms,
        settings.max_event_age,
    ) {
        return Plan::skip(stale);
    }
    let mut plan = Plan::default();
    let mut started_by: BTreeMap<&str, &str> = BTreeMap::new();
    for route in &routes.routes {
        if !route.repository.matches(&push.repository_name) {
            continue;
        }
        let Some(version) = route.tags.matches(tag) else {
            continue;
        };
        let image = Image {
            repository: &push.repository_name,
            digest: &push.image_digest,
            tag,
            account: &push.account,
            region: &push.region,
            version: version.as_ref(),
        };
        for pipeline in &route.spec.pipelines {
            if let Some(first) = started_by.get(pipeline.as_str()) {
                plan.skips.push(Skip::new(
                    pipeline,
                    "routed_twice",
                    format!("route {:?} already starts it for this push", first),
                ));
                continue;
            }
            started_by.insert(pipeline, &route.spec.name);
            plan.actions.push(start(push, tag, route, pipeline, &image));
        }
    }
    if plan.actions.is_empty() && plan.skips.is_empty() {
        plan.skips.push(Skip::new(
            target,
            "unrouted",
            "no route takes this repository and tag",
        ));
    }
    plan
}

fn start(
    push: &EcrImageAction,
    tag: &str,
    route: &crate::routes::Route,
    pipeline: &str,
    image: &Image<'_>,
) -> Start {
    let repository = &push.repository_name;
    let digest = &push.image_digest;
    Start {
        route: route.spec.name.clone(),
        pipeline: pipeline.to_string(),
        repository: repository.clone(),
        digest: digest.clone(),
        tag: tag.to_string(),
        variables: route
            .variables
            .iter()
            .map(|(name, template)| (name.clone(), template.render(image)))
            .collect(),
        source_revision: route.spec.source_revision.as_ref().map(|s| SourceRevision {
            action_name: s.action_name.clone(),
            image_digest: digest.clone(),
        }),
        client_request_token: client_request_token(pipeline, repository, digest, tag),
        claim_key: claim_key(pipeline, repository, digest, tag, route.spec.on_retag),
    }
}

/// A pipeline as GetPipeline declares it: what a start is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineShape {
    pub pipeline_type: String,
    pub variables: BTreeSet<String>,
    /// The names of its ECR source actions.
    pub ecr_source_actions: BTreeSet<String>,
}

/// Why a start cannot be made on the pipeline as declared (permanent until someone changes the
/// pipeline or the routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

/// Checks a start against the pipeline's declaration, so the answer names the problem rather
/// than CodePipeline's bare ValidationException.
pub fn check(start: &Start, shape: &PipelineShape) -> Result<(), Refusal> {
    let refuse = |code, detail: String| Err(Refusal { code, detail });
    if shape.pipeline_type != "V2" {
        return refuse(
            "PipelineNotV2",
            format!(
                "pipeline {} is of type {:?}; variables and source revisions need V2",
                start.pipeline, shape.pipeline_type
            ),
        );
    }
    for (name, value) in &start.variables {
        if !shape.variables.contains(name) {
            return refuse(
                "UndeclaredVariable",
                format!(
                    "pipeline {} does not declare the variable {name} (route {:?})",
                    start.pipeline, start.route
                ),
            );
        }
        if value.is_empty() || value.chars().count() > MAX_VARIABLE_VALUE {
            return refuse(
                "InvalidVariableValue",
                format!(
                    "variable {name} renders to {} characters for {}; CodePipeline takes 1 to {MAX_VARIABLE_VALUE}",
                    value.chars().count(),
                    start.image()
                ),
            );
        }
    }
    if let Some(sr) = &start.source_revision
        && !shape.ecr_source_actions.contains(&sr.action_name)
    {
        return refuse(
            "NoSuchSourceAction",
            format!(
                "pipeline {} has no ECR source action named {:?} (route {:?}, sourceRevision)",
                start.pipeline, sr.action_name, start.route
            ),
        );
    }
    Ok(())
}

/// A pipeline execution as ListPipelineExecutions shows it (and GetPipelineExecution, for its
/// variables, when they were asked for).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSeen {
    pub id: String,
    pub started_ms: i64,
    /// `StartPipelineExecution`, `Webhook`, `CloudWatchEvent`, ...; `None` when not given.
    pub trigger_type: Option<String>,
    /// (source action, revision) as the execution lists them once its sources are resolved.
    pub source_revisions: Vec<(String, String)>,
    /// The resolved pipeline variables, once read.
    pub variables: Option<BTreeMap<String, String>>,
}

/// How far an execution's start time may precede the recorded request (the two clocks differ).
pub const CLOCK_SKEW_MS: i64 = 30_000;

/// Whether an execution is the one a start that may have taken effect made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identified {
    /// It is, by what: `variables`, `source revision`, or only `time` (a start that passes
    /// neither is taken to be the execution started by API since it was requested: a second
    /// start is the harm this check exists to prevent).
    Yes(&'static str),
    No,
    /// Its variables are needed to tell.
    NeedsVariables,
}

/// Whether `e` is the execution `start`, requested at `requested_at_ms`, may have made: started
/// by the API since then, with the pushed digest as its source revision where it lists one, and
/// every variable the start passes with the value it passes.
pub fn identifies(start: &Start, requested_at_ms: i64, e: &ExecutionSeen) -> Identified {
    if e.started_ms < requested_at_ms - CLOCK_SKEW_MS {
        return Identified::No;
    }
    if e.trigger_type
        .as_deref()
        .is_some_and(|t| t != "StartPipelineExecution")
    {
        return Identified::No;
    }
    let mut by_revision = false;
    if let Some(sr) = &start.source_revision
        && let Some((_, revision)) = e
            .source_revisions
            .iter()
            .find(|(action, _)| action == &sr.action_name)
    {
        if revision != &sr.image_digest {
            return Identified::No;
        }
        by_revision = true;
    }
    if !start.variables.is_empty() {
        let Some(variables) = &e.variables else {
            return Identified::NeedsVariables;
        };
        let all = start
            .variables
            .iter()
            .all(|(name, value)| variables.get(name) == Some(value));
        return if all {
            Identified::Yes("variables")
        } else {
            Identified::No
        };
    }
    Identified::Yes(if by_revision {
        "source revision"
    } else {
        "time"
    })
}
