//! The remote calls between the decisions and the clusters, behind two small traits: [`KubeApi`],
//! one cluster's Deployments (list, read, the strategic patch of a roll with the API server's dry
//! run, the JSON patch of a rollback), implemented for the real client ([`Workloads`], kube's
//! `Client`); and [`Connect`], reaching a cluster (a client per cluster, its token minted and
//! renewed), implemented for [`Connector`]. The handler and its phases use only the traits.

use std::future::Future;
use std::time::Duration;

use autonomic::CallError;
use serde_json::Value;

use crate::clusters::Cluster;
use crate::connect::Connector;
use crate::kube_api::Workloads;
use crate::planner::{WorkloadRef, WorkloadView};

/// One cluster's Deployments, as the roller calls them; each failure a [`CallError`] that keeps
/// the API's `Status` reason (a refusal is a 4xx other than 429).
pub trait KubeApi: Clone + Send + Sync + 'static {
    /// Every Deployment in `namespace`.
    fn list(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<WorkloadView>, CallError>> + Send;

    /// One Deployment; `None` if it is gone.
    fn get(
        &self,
        at: &WorkloadRef,
    ) -> impl Future<Output = Result<Option<WorkloadView>, CallError>> + Send;

    /// A strategic merge patch (a roll); with `dry_run` the API server validates it and answers
    /// without storing anything (`dryRun=All`).
    fn patch_strategic(
        &self,
        at: &WorkloadRef,
        patch: &Value,
        dry_run: bool,
    ) -> impl Future<Output = Result<WorkloadView, CallError>> + Send;

    /// A JSON patch (RFC 6902, a rollback): its `test` operations make it apply only to what was
    /// checked.
    fn patch_json(
        &self,
        at: &WorkloadRef,
        ops: &Value,
    ) -> impl Future<Output = Result<WorkloadView, CallError>> + Send;
}

impl KubeApi for Workloads {
    async fn list(&self, namespace: &str) -> Result<Vec<WorkloadView>, CallError> {
        Workloads::list(self, namespace).await
    }

    async fn get(&self, at: &WorkloadRef) -> Result<Option<WorkloadView>, CallError> {
        Workloads::get(self, &at.namespace, &at.name).await
    }

    async fn patch_strategic(
        &self,
        at: &WorkloadRef,
        patch: &Value,
        dry_run: bool,
    ) -> Result<WorkloadView, CallError> {
        Workloads::patch_strategic(self, at, patch, dry_run).await
    }

    async fn patch_json(&self, at: &WorkloadRef, ops: &Value) -> Result<WorkloadView, CallError> {
        Workloads::patch_json(self, at, ops).await
    }
}

/// Reaching the configured clusters: a cluster's [`KubeApi`], and forgetting it when its token
/// was refused.
pub trait Connect: Send + Sync + 'static {
    type Api: KubeApi;

    /// The cluster's Deployments API, with a token good for `needed` more (the rest of the
    /// invocation).
    fn workloads(
        &self,
        cluster: &Cluster,
        needed: Duration,
    ) -> impl Future<Output = Result<Self::Api, CallError>> + Send;

    /// Forgets a cluster's client (after a 401: the token, or the endpoint, may have changed).
    fn forget(&self, cluster: &str) -> impl Future<Output = ()> + Send;
}

impl Connect for Connector {
    type Api = Workloads;

    async fn workloads(&self, cluster: &Cluster, needed: Duration) -> Result<Workloads, CallError> {
        Connector::workloads(self, cluster, needed).await
    }

    async fn forget(&self, cluster: &str) {
        Connector::forget(self, cluster).await
    }
}
