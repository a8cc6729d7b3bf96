//! The pure decisions: which containers of a workload a push rolls, and whether a rollout is done.
//!
//! No I/O and no clock: a push, what was read of one workload and the digests rolled back before
//! go in; a [`Decision`] comes out. The patches are built here too, so what dry-run shows is what
//! is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use autonomic::Skip;
use autonomic::tags::{TagFilter, parse_version};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The annotation prefix of everything k8s-rollout reads and writes on a workload.
pub const PREFIX: &str = "autonomic.dev/";
/// `autonomic.dev/image.<container>: <repository>`: the container follows that ECR repository.
pub const IMAGE_ANNOTATION: &str = "autonomic.dev/image.";
/// `autonomic.dev/policy.<container>: tag:|glob:|regex:|semver:...`: which tags it takes.
pub const POLICY_ANNOTATION: &str = "autonomic.dev/policy.";
/// `"true"`: roll even though a GitOps controller manages the workload.
pub const ALLOW_GITOPS_ANNOTATION: &str = "autonomic.dev/allow-gitops";
/// `"true"`: leave the workload alone.
pub const PAUSED_ANNOTATION: &str = "autonomic.dev/paused";
/// Written with a roll: the image the container ran before it (for a rollback by hand).
pub const PREVIOUS_IMAGE_ANNOTATION: &str = "autonomic.dev/previous-image.";
/// Shown by `kubectl rollout history`.
pub const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";

/// The operations, as audit records name them.
pub const ROLL: &str = "RollWorkload";
pub const ROLLBACK: &str = "RollBackWorkload";

/// A tagged push, as it is rolled out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Push {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// `<account>.dkr.ecr.<region>.amazonaws.com` (`.com.cn` in China).
    pub registry: String,
    /// When ECR saw the push (epoch milliseconds; 0 when unknown).
    #[serde(default)]
    pub pushed_at_ms: i64,
}

impl Push {
    pub fn new(repository: &str, tag: &str, digest: &str, account: &str, region: &str) -> Self {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Self {
            repository: repository.into(),
            tag: tag.into(),
            digest: digest.into(),
            registry: format!("{account}.dkr.ecr.{region}.{suffix}"),
            pushed_at_ms: 0,
        }
    }

    /// The push as made at `ms`.
    pub fn at(mut self, ms: i64) -> Self {
        self.pushed_at_ms = ms;
        self
    }

    /// The image a container is set to: the tag for people, pinned to the digest for the kubelet.
    pub fn image(&self) -> String {
        format!(
            "{}/{}:{}@{}",
            self.registry, self.repository, self.tag, self.digest
        )
    }
}

/// `cluster/namespace/name` of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.name)
    }
}

/// The `Progressing` condition of a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Condition {
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// What was read of a Deployment (built from the API object by `observe`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct WorkloadView {
    pub at: WorkloadRef,
    pub resource_version: String,
    pub generation: i64,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `spec.template.spec.containers`: name and image, in order.
    pub containers: Vec<(String, String)>,
    pub paused: bool,
    /// `spec.replicas` (1 when unset).
    pub replicas: i32,
    pub observed_generation: i64,
    /// `status.replicas`, `status.updatedReplicas`, `status.availableReplicas`.
    pub status_replicas: i32,
    pub updated_replicas: i32,
    pub available_replicas: i32,
    pub progressing: Option<Condition>,
    /// `spec.progressDeadlineSeconds` (600 when unset): when Kubernetes calls a rollout failed.
    pub progress_deadline_seconds: i32,
}

/// Where a rollout stands, read the way `kubectl rollout status` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum RolloutState {
    Complete,
    Progressing(String),
    Failed(String),
}

/// `kubectl rollout status` for a Deployment: the spec observed, the progress deadline not
/// exceeded, every replica updated, no old replica left and every updated one available.
pub fn rollout_state(w: &WorkloadView) -> RolloutState {
    if w.observed_generation < w.generation {
        return RolloutState::Progressing(
            "waiting for the deployment spec update to be observed".into(),
        );
    }
    if let Some(c) = &w.progressing
        && c.reason == "ProgressDeadlineExceeded"
    {
        return RolloutState::Failed(format!("exceeded its progress deadline: {}", c.message));
    }
    if w.updated_replicas < w.replicas {
        return RolloutState::Progressing(format!(
            "{} of {} new replicas have been updated",
            w.updated_replicas, w.replicas
        ));
    }
    if w.status_replicas > w.updated_replicas {
        return RolloutState::Progressing(format!(
            "{} old replicas are pending termination",
            w.status_replicas - w.updated_replicas
        ));
    }
    if w.available_replicas < w.updated_replicas {
        return RolloutState::Progressing(format!(
            "{} of {} updated replicas are available",
            w.available_replicas, w.updated_replicas
        ));
    }
    RolloutState::Complete
}

/// A container that follows a repository, from the workload's annotations.
#[derive(Debug, Clone)]
pub struct Follow {
    pub container: String,
    pub repository: String,
    pub policy: Result<(String, TagFilter), String>,
}

/// The containers of a workload that opted in, with their policies (a bad or missing policy is
/// kept as its problem, so the workload is skipped with it rather than ignored).
pub fn follows(annotations: &BTreeMap<String, String>) -> Vec<Follow> {
    annotations
        .iter()
        .filter_map(|(k, v)| {
            let container = k.strip_prefix(IMAGE_ANNOTATION)?;
            let policy = match annotations.get(&format!("{POLICY_ANNOTATION}{container}")) {
                None => Err(format!(
                    "{POLICY_ANNOTATION}{container} is missing: say which tags it takes (tag:, glob:, regex: or semver:)"
                )),
                Some(p) => TagFilter::parse_prefixed(p)
                    .map(|f| (p.clone(), f))
                    .map_err(|e| format!("{POLICY_ANNOTATION}{container}: {e}")),
            };
            Some(Follow {
                container: container.to_string(),
                repository: v.trim().to_string(),
                policy,
            })
        })
        .collect()
}

/// Whether a GitOps controller (Argo CD, Flux) manages the workload, and the marker that says so.
pub fn gitops_marker(w: &WorkloadView) -> Option<String> {
    let label = |k: &str| w.labels.contains_key(k).then(|| format!("label {k}"));
    label("argocd.argoproj.io/instance")
        .or_else(|| label("kustomize.toolkit.fluxcd.io/name"))
        .or_else(|| label("helm.toolkit.fluxcd.io/name"))
        .or_else(|| {
            w.annotations
                .keys()
                .find(|k| k.starts_with("argocd.argoproj.io/"))
                .map(|k| format!("annotation {k}"))
        })
}

/// An image reference split: `(name, tag, digest)`; `repo:1.2@sha256:..` → `(repo, 1.2, sha256:..)`.
pub fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// One container's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerChange {
    pub container: String,
    /// Its index in `spec.template.spec.containers` when read (the rollback's JSON patch tests it).
    pub index: usize,
    pub from: String,
    pub to: String,
}

/// A roll of one workload: the intent recorded on its claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Roll {
    pub workload: WorkloadRef,
    /// The version read: the patch applies only to it (optimistic concurrency).
    pub resource_version: String,
    pub image: String,
    pub changes: Vec<ContainerChange>,
}

impl Roll {
    /// Strategic merge patch: the containers by name, the annotations that record the roll, and
    /// the resourceVersion read, so a workload changed since is a 409 Conflict, not overwritten.
    pub fn patch(&self, push: &Push) -> Value {
        let mut annotations = serde_json::Map::new();
        for c in &self.changes {
            annotations.insert(
                format!("{PREVIOUS_IMAGE_ANNOTATION}{}", c.container),
                json!(c.from),
            );
        }
        annotations.insert(
            CHANGE_CAUSE_ANNOTATION.into(),
            json!(format!(
                "k8s-rollout: ECR push of {}:{} ({})",
                push.repository, push.tag, push.digest
            )),
        );
        let containers: Vec<Value> = self
            .changes
            .iter()
            .map(|c| json!({"name": c.container, "image": c.to}))
            .collect();
        json!({
            "metadata": {"resourceVersion": self.resource_version, "annotations": annotations},
            "spec": {"template": {"spec": {"containers": containers}}},
        })
    }

    /// JSON patch back to the previous images, only while each container still runs the image
    /// this roll set (a `test` per container): a change someone made since is never overwritten.
    pub fn rollback_patch(&self, reason: &str) -> Value {
        let mut ops = Vec::new();
        for c in &self.changes {
            let path = format!("/spec/template/spec/containers/{}", c.index);
            ops.push(json!({"op": "test", "path": format!("{path}/name"), "value": c.container}));
            ops.push(json!({"op": "test", "path": format!("{path}/image"), "value": c.to}));
            ops.push(json!({"op": "replace", "path": format!("{path}/image"), "value": c.from}));
        }
        ops.push(json!({
            "op": "add",
            "path": format!("/metadata/annotations/{}", CHANGE_CAUSE_ANNOTATION.replace('/', "~1")),
            "value": format!("k8s-rollout: rolled back {}: {reason}", self.image),
        }));
        Value::Array(ops)
    }
}

/// What to do with one workload for a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It does not follow the pushed repository: not part of this push at all.
    NotFollowing,
    Roll(Roll),
    /// Left alone for good, with the reason.
    Skip(Skip),
    /// Not now: its previous rollout is still progressing. The delivery is retried.
    Wait(Skip),
}

/// The digests rolled back on a workload before: `digest → detail`.
pub type BadDigests = BTreeMap<String, Value>;

/// The decision for one workload.
pub fn decide(push: &Push, w: &WorkloadView, bad: &BadDigests) -> Decision {
    let target = w.at.to_string();
    let skip = |reason: &str, detail: String| Decision::Skip(Skip::new(&target, reason, detail));
    let relevant: Vec<Follow> = follows(&w.annotations)
        .into_iter()
        .filter(|f| f.repository == push.repository)
        .collect();
    if relevant.is_empty() {
        return Decision::NotFollowing;
    }
    if w.paused
        || w.annotations
            .get(PAUSED_ANNOTATION)
            .is_some_and(|v| v == "true")
    {
        return skip("paused", "the deployment is paused".into());
    }
    if let Some(marker) = gitops_marker(w)
        && w.annotations
            .get(ALLOW_GITOPS_ANNOTATION)
            .is_none_or(|v| v != "true")
    {
        return skip(
            "gitops_managed",
            format!(
                "a GitOps controller manages it ({marker}) and would revert the change; {ALLOW_GITOPS_ANNOTATION}: \"true\" allows it"
            ),
        );
    }
    if let Some(detail) = bad.get(&push.digest) {
        return skip(
            "rolled_back_before",
            format!(
                "{} was rolled back on this workload before: {detail}",
                push.digest
            ),
        );
    }
    let image = push.image();
    let mut changes = Vec::new();
    let mut reasons: Vec<(&str, String)> = Vec::new();
    for f in &relevant {
        let Some(index) = w.containers.iter().position(|(n, _)| *n == f.container) else {
            reasons.push((
                "no_such_container",
                format!(
                    "{IMAGE_ANNOTATION}{} names a container the pod template does not have",
                    f.container
                ),
            ));
            continue;
        };
        // The annotation written with a roll must be a valid key: its name part is 63 at most.
        if PREVIOUS_IMAGE_ANNOTATION.len() - PREFIX.len() + f.container.len() > 63 {
            reasons.push((
                "bad_annotation",
                format!("container name {} is too long for {PREVIOUS_IMAGE_ANNOTATION}<container> (48 characters at most)", f.container),
            ));
            continue;
        }
        let (policy_text, policy) = match &f.policy {
            Ok(p) => p,
            Err(e) => {
                reasons.push(("bad_annotation", e.clone()));
                continue;
            }
        };
        let current = &w.containers[index].1;
        let (_, current_tag, current_digest) = split_image(current);
        if current_digest == Some(push.digest.as_str()) {
            reasons.push((
                "already_running",
                format!("{} already runs {}", f.container, push.digest),
            ));
            continue;
        }
        let Some(version) = policy.matches(&push.tag) else {
            reasons.push((
                "policy",
                format!(
                    "tag {} is not what {} takes ({policy_text})",
                    push.tag, f.container
                ),
            ));
            continue;
        };
        // Never down, never sideways under semver: a re-push of a version it runs is not newer.
        if let (Some(new), Some(old)) = (version, current_tag.and_then(parse_version))
            && new <= old
        {
            reasons.push((
                "not_newer",
                format!("{} runs {old}; {new} is not newer", f.container),
            ));
            continue;
        }
        changes.push(ContainerChange {
            container: f.container.clone(),
            index,
            from: current.clone(),
            to: image.clone(),
        });
    }
    if changes.is_empty() {
        // The first reason stands for the workload; every one is in the detail.
        let reason = reasons.first().map_or("policy", |r| r.0);
        let detail = reasons
            .iter()
            .map(|r| r.1.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return skip(reason, detail);
    }
    if let RolloutState::Progressing(why) = rollout_state(w) {
        return Decision::Wait(Skip::new(
            &target,
            "rollout_in_progress",
            format!("its previous rollout is still progressing ({why})"),
        ));
    }
    Decision::Roll(Roll {
        workload: w.at.clone(),
        resource_version: w.resource_version.clone(),
        image,
        changes,
    })
}

/// A push older than the newest push already rolled on the workload is skipped: a delivery
/// retried late (or out of order) never overwrites a newer image, whatever the policy.
pub fn older_push(push: &Push, at: &WorkloadRef, newest_rolled_ms: Option<i64>) -> Option<Skip> {
    let newest = newest_rolled_ms?;
    (push.pushed_at_ms < newest).then(|| {
        Skip::new(
            at.to_string(),
            "older_push",
            format!(
                "a push made {} s later was already rolled out here",
                (newest - push.pushed_at_ms) / 1000
            ),
        )
    })
}

/// Whether a container that follows the pushed repository runs the pushed digest.
pub fn runs_digest(w: &WorkloadView, push: &Push) -> bool {
    follows(&w.annotations)
        .iter()
        .filter(|f| f.repository == push.repository)
        .any(|f| {
            w.containers.iter().any(|(n, image)| {
                *n == f.container && split_image(image).2 == Some(push.digest.as_str())
            })
        })
}

/// Whether the workload runs what `roll` set (a taken-over attempt's roll that happened). By
/// digest: an admission webhook may rewrite the registry part (a pull-through mirror).
pub fn runs(w: &WorkloadView, roll: &Roll) -> bool {
    roll.changes.iter().all(|c| {
        let want = split_image(&c.to).2;
        w.containers
            .iter()
            .any(|(n, image)| *n == c.container && want.is_some() && split_image(image).2 == want)
    })
}

/// Whether this push was rolled out on the workload at some point: its change-cause (ours,
/// written with the roll and with the rollback) names the push's digest.
pub fn rolled_for(w: &WorkloadView, push: &Push) -> bool {
    w.annotations
        .get(CHANGE_CAUSE_ANNOTATION)
        .is_some_and(|cause| cause.starts_with("k8s-rollout:") && cause.contains(&push.digest))
}

/// The claim key of a push on a workload: each (repository, digest, tag) rolls a workload once.
pub fn claim_key(push: &Push, w: &WorkloadRef) -> String {
    format!("{}:{}@{}#{w}", push.repository, push.tag, push.digest)
}

/// The names of the containers a set of changes touches.
pub fn containers(changes: &[ContainerChange]) -> BTreeSet<&str> {
    changes.iter().map(|c| c.container.as_str()).collect()
}
