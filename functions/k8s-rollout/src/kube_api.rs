//! The Kubernetes calls: list, read and patch Deployments, each with a time limit, each failure a
//! shared [`CallError`] that keeps the API's `Status` reason and code.
//!
//! `kube::Client` is the seam: the real client against a cluster (or the test kit's stand-in),
//! or kube's mock service (`tower_test::mock::pair`) in unit tests.

use std::collections::BTreeMap;
use std::time::Duration;

use autonomic::{CallError, ErrorClass};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::Value;

use crate::planner::{Condition, WorkloadRef, WorkloadView};

/// The field manager our patches are recorded under (`kubectl get -o yaml --show-managed-fields`).
pub const FIELD_MANAGER: &str = "autonomic-k8s-rollout";
/// The most one Kubernetes call may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps a kube error: an API `Status` keeps its reason and code; anything else (no connection,
/// TLS, a body that is not JSON) is a transport failure, retryable, and may have taken effect.
pub fn call_error(operation: &'static str, e: kube::Error) -> CallError {
    match e {
        kube::Error::Api(status) => CallError::kubernetes(
            operation,
            status.code,
            &status.reason,
            status.message.clone(),
        ),
        other => CallError::new(
            "kubernetes",
            operation,
            "Transport",
            error_chain(&other),
            ErrorClass::Retryable,
        ),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn limited<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, CallError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(r) => r.map_err(|e| call_error(operation, e)),
        Err(_) => Err(CallError::new(
            "kubernetes",
            operation,
            "Timeout",
            format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
            ErrorClass::Retryable,
        )),
    }
}

/// One cluster's Deployments.
#[derive(Clone)]
pub struct Workloads {
    pub cluster: String,
    pub client: kube::Client,
}

impl Workloads {
    pub fn new(cluster: impl Into<String>, client: kube::Client) -> Self {
        Self {
            cluster: cluster.into(),
            client,
        }
    }

    fn api(&self, namespace: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Every Deployment in `namespace`.
    pub async fn list(&self, namespace: &str) -> Result<Vec<WorkloadView>, CallError> {
        let list = limited(
            "ListDeployments",
            self.api(namespace).list(&ListParams::default()),
        )
        .await?;
        Ok(list
            .items
            .iter()
            .map(|d| view(&self.cluster, namespace, d))
            .collect())
    }

    /// One Deployment; `None` if it is gone.
    pub async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<WorkloadView>, CallError> {
        let d = limited("GetDeployment", self.api(namespace).get_opt(name)).await?;
        Ok(d.map(|d| view(&self.cluster, namespace, &d)))
    }

    /// A strategic merge patch; with `dry_run` the API server validates and answers without
    /// storing anything.
    pub async fn patch_strategic(
        &self,
        at: &WorkloadRef,
        patch: &Value,
        dry_run: bool,
    ) -> Result<WorkloadView, CallError> {
        let params = PatchParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let d = limited(
            "PatchDeployment",
            self.api(&at.namespace)
                .patch(&at.name, &params, &Patch::Strategic(patch)),
        )
        .await?;
        Ok(view(&self.cluster, &at.namespace, &d))
    }

    /// A JSON patch (RFC 6902): its `test` operations make it apply only to what was checked.
    pub async fn patch_json(
        &self,
        at: &WorkloadRef,
        ops: &Value,
    ) -> Result<WorkloadView, CallError> {
        let ops: json_patch::Patch = serde_json::from_value(ops.clone()).map_err(|e| {
            CallError::new(
                "kubernetes",
                "PatchDeployment",
                "ConstructionFailure",
                e.to_string(),
                ErrorClass::Permanent,
            )
        })?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let d = limited(
            "PatchDeployment",
            self.api(&at.namespace)
                .patch(&at.name, &params, &Patch::Json::<()>(ops)),
        )
        .await?;
        Ok(view(&self.cluster, &at.namespace, &d))
    }
}

/// What the planner reads of a Deployment.
pub fn view(cluster: &str, namespace: &str, d: &Deployment) -> WorkloadView {
    let meta = &d.metadata;
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    let containers = spec
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let progressing = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"))
        .map(|c| Condition {
            status: c.status.clone(),
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        });
    WorkloadView {
        at: WorkloadRef {
            cluster: cluster.to_string(),
            namespace: meta
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_string()),
            name: meta.name.clone().unwrap_or_default(),
        },
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or_default(),
        annotations: meta
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        labels: meta
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
        containers,
        paused: spec.and_then(|s| s.paused).unwrap_or(false),
        replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
        observed_generation: status
            .and_then(|s| s.observed_generation)
            .unwrap_or_default(),
        status_replicas: status.and_then(|s| s.replicas).unwrap_or_default(),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or_default(),
        available_replicas: status
            .and_then(|s| s.available_replicas)
            .unwrap_or_default(),
        progressing,
    }
}
