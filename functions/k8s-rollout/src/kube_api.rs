//! The Kubernetes calls: list, read and patch Deployments, each with a time limit, each failure a
//! shared [`CallError`] that keeps the API's `Status` reason and code.
//!
//! `kube::Client` is the seam: the real client against a cluster (or the test kit's stand-in),
//! or kube's mock service (`tower_test::mock::pair`) in unit tests.

use std::time::Duration;

use autonomic::{CallError, ErrorClass};
use kube::api::{Api, ApiResource, ListParams, Patch, PatchParams};
use kube::core::{GroupVersionKind, Object};
use serde::{Deserialize, Serialize};
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
            autonomic::error::source_chain(&other),
            ErrorClass::Retryable,
        ),
    }
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

/// An apps/v1 Deployment as the roller reads it: only the fields [`view`] uses. serde skips the
/// rest, so the binary carries no deserializer for the whole Pod spec, as k8s-openapi's typed
/// `Deployment` would (135 KB of the arm64 zip). Patches are JSON, so nothing is lost
/// when a Deployment is written.
pub type Deployment = Object<DeploymentSpec, DeploymentStatus>;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    pub replicas: Option<i32>,
    pub paused: Option<bool>,
    pub progress_deadline_seconds: Option<i32>,
    #[serde(default)]
    pub template: PodTemplate,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PodTemplate {
    pub spec: Option<PodSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
    pub conditions: Option<Vec<DeploymentCondition>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct DeploymentCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
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
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "Deployment"),
            "deployments",
        );
        Api::namespaced_with(self.client.clone(), namespace, &resource)
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
    let spec = &d.spec;
    let status = d.status.as_ref();
    let containers = spec
        .template
        .spec
        .as_ref()
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
        annotations: meta.annotations.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        containers,
        paused: spec.paused.unwrap_or(false),
        progress_deadline_seconds: spec.progress_deadline_seconds.unwrap_or(600),
        replicas: spec.replicas.unwrap_or(1),
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

#[cfg(test)]
mod tests {
    //! kube's mock-service idiom: the client talks to a `tower_test` handle that checks each
    //! request and answers it, which is simpler than a server for the error mapping.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;
    use tower_test::mock;

    use super::*;

    /// A client whose next request is checked by `check` and answered with `status` and `body`.
    fn answering(
        status: u16,
        body: Value,
        check: impl FnOnce(&Request<Body>) + Send + 'static,
    ) -> (Workloads, tokio::task::JoinHandle<()>) {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("a request");
            check(&request);
            send.send_response(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        });
        (
            Workloads::new("test", kube::Client::new(service, "default")),
            server,
        )
    }

    fn status(code: u16, reason: &str) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{reason} here"), "reason": reason, "code": code})
    }

    fn at() -> WorkloadRef {
        WorkloadRef {
            cluster: "test".into(),
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    #[tokio::test]
    async fn status_answers_keep_their_reason_and_class() {
        for (code, reason, class, refused) in [
            (409, "Conflict", ErrorClass::Retryable, true),
            (401, "Unauthorized", ErrorClass::Retryable, true),
            (429, "TooManyRequests", ErrorClass::Retryable, false),
            (403, "Forbidden", ErrorClass::Permanent, true),
            (404, "NotFound", ErrorClass::Permanent, true),
            (422, "Invalid", ErrorClass::Permanent, true),
            (500, "InternalError", ErrorClass::Retryable, false),
        ] {
            let (w, server) = answering(code, status(code, reason), |_| {});
            let e = w
                .patch_strategic(&at(), &json!({}), false)
                .await
                .unwrap_err();
            server.await.unwrap();
            assert_eq!(
                (e.code.as_str(), e.class, e.refused),
                (reason, class, refused),
                "{code}"
            );
            assert_eq!(e.service, "kubernetes");
            assert!(e.message.contains("here"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_strategic_patch_in_dry_run_says_so_to_the_server() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "generation": 2},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "web", "image": "img:2"}]}}}});
        let (w, server) = answering(200, deployment, |r| {
            assert_eq!(r.method(), "PATCH");
            assert_eq!(
                r.uri().path(),
                "/apis/apps/v1/namespaces/shop/deployments/web"
            );
            let query = r.uri().query().unwrap_or_default();
            assert!(query.contains("dryRun=All"), "{query}");
            assert!(
                query.contains(&format!("fieldManager={FIELD_MANAGER}")),
                "{query}"
            );
            assert_eq!(
                r.headers()["content-type"],
                "application/strategic-merge-patch+json"
            );
        });
        let view = w
            .patch_strategic(&at(), &json!({"spec": {}}), true)
            .await
            .unwrap();
        server.await.unwrap();
        assert_eq!(view.containers, [("web".to_string(), "img:2".to_string())]);
        assert_eq!(
            (
                view.resource_version.as_str(),
                view.generation,
                view.replicas
            ),
            ("7", 2, 1)
        );
    }

    #[tokio::test]
    async fn a_missing_deployment_reads_as_none_and_json_patches_go_as_such() {
        let (w, server) = answering(404, status(404, "NotFound"), |_| {});
        assert!(w.get("shop", "web").await.unwrap().is_none());
        server.await.unwrap();
        let (w, server) = answering(422, status(422, "Invalid"), |r| {
            assert_eq!(r.headers()["content-type"], "application/json-patch+json");
        });
        let e = w
            .patch_json(&at(), &json!([{"op": "test", "path": "/x", "value": 1}]))
            .await
            .unwrap_err();
        server.await.unwrap();
        assert_eq!(e.code, "Invalid");
    }
}
