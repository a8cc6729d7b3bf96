//! Reaching a cluster: an EKS cluster's endpoint and CA from `DescribeCluster` and a token minted
//! from the function's own credentials, or a kubeconfig file. A client is kept per cluster and
//! rebuilt (a fresh token, a fresh `DescribeCluster`) when its token would not last the
//! invocation ([`TOKEN_LIFETIME`]).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use autonomic::{CallError, ErrorClass};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::Mutex;

use crate::clusters::{Access, Cluster, EksSpec};
use crate::kube_api::{CALL_TIMEOUT, Workloads};
use crate::token::{self, TOKEN_LIFETIME};

/// What `DescribeCluster` says of an EKS cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksEndpoint {
    pub status: String,
    pub endpoint: String,
    /// base64 of the PEM.
    pub certificate_authority_data: String,
}

/// The clients of every configured cluster, built on first use.
pub struct Connector {
    /// An EKS client per Region the document names.
    pub eks: BTreeMap<String, aws_sdk_eks::Client>,
    pub credentials: Option<SharedCredentialsProvider>,
    cache: Mutex<HashMap<String, (Workloads, Instant)>>,
}

fn failure(
    operation: &'static str,
    code: &str,
    message: impl Into<String>,
    class: ErrorClass,
) -> CallError {
    CallError::new("kubernetes", operation, code, message, class)
}

impl Connector {
    pub fn new(
        eks: BTreeMap<String, aws_sdk_eks::Client>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        Self {
            eks,
            credentials,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The cluster's Deployments API, from the cache while its token stays good for `needed`
    /// more (the rest of the invocation), else a new client with a new token.
    pub async fn workloads(
        &self,
        cluster: &Cluster,
        needed: Duration,
    ) -> Result<Workloads, CallError> {
        let mut cache = self.cache.lock().await;
        if let Some((w, built)) = cache.get(&cluster.name)
            && built.elapsed() + needed < TOKEN_LIFETIME
        {
            return Ok(w.clone());
        }
        let client = match &cluster.access {
            Access::Eks(spec) => self.eks_client(spec).await?,
            Access::Kubeconfig { path, context } => {
                kubeconfig_client(path, context.as_deref()).await?
            }
        };
        let w = Workloads::new(cluster.name.clone(), client);
        cache.insert(cluster.name.clone(), (w.clone(), Instant::now()));
        Ok(w)
    }

    /// Forgets a cluster's client (after a 401: the token, or the endpoint, may have changed).
    pub async fn forget(&self, cluster: &str) {
        self.cache.lock().await.remove(cluster);
    }

    async fn describe(&self, spec: &EksSpec) -> Result<EksEndpoint, CallError> {
        let eks = self.eks.get(&spec.region).ok_or_else(|| {
            CallError::new(
                "eks",
                "DescribeCluster",
                "RegionNotConfigured",
                format!("no EKS client for {}", spec.region),
                ErrorClass::Permanent,
            )
        })?;
        let out = eks
            .describe_cluster()
            .name(&spec.cluster)
            .send()
            .await
            .map_err(|e| CallError::aws("eks", "DescribeCluster", e))?;
        let c = out.cluster.ok_or_else(|| {
            CallError::new(
                "eks",
                "DescribeCluster",
                "ResourceNotFoundException",
                format!("no cluster {}", spec.cluster),
                ErrorClass::Permanent,
            )
        })?;
        Ok(EksEndpoint {
            status: c.status.map(|s| s.as_str().to_string()).unwrap_or_default(),
            endpoint: c.endpoint.unwrap_or_default(),
            certificate_authority_data: c
                .certificate_authority
                .and_then(|ca| ca.data)
                .unwrap_or_default(),
        })
    }

    async fn eks_client(&self, spec: &EksSpec) -> Result<kube::Client, CallError> {
        let described = self.describe(spec).await?;
        // CREATING has no endpoint yet; DELETING and FAILED are not places to roll anything to.
        if !matches!(described.status.as_str(), "ACTIVE" | "UPDATING") {
            return Err(CallError::new(
                "eks",
                "DescribeCluster",
                "ClusterNotActive",
                format!("cluster {} is {}", spec.cluster, described.status),
                ErrorClass::Retryable,
            ));
        }
        let endpoint = spec.endpoint.clone().unwrap_or(described.endpoint);
        let ca = spec
            .certificate_authority_data
            .clone()
            .unwrap_or(described.certificate_authority_data);
        let provider = self.credentials.as_ref().ok_or_else(|| {
            failure(
                "Authenticate",
                "NoCredentials",
                "the SDK configuration has no credentials provider",
                ErrorClass::Permanent,
            )
        })?;
        let credentials = tokio::time::timeout(CALL_TIMEOUT, provider.provide_credentials())
            .await
            .map_err(|_| {
                failure(
                    "Authenticate",
                    "Timeout",
                    "credentials did not come in time",
                    ErrorClass::Retryable,
                )
            })?
            .map_err(|e| {
                failure(
                    "Authenticate",
                    "NoCredentials",
                    e.to_string(),
                    ErrorClass::Retryable,
                )
            })?;
        let token = token::mint(credentials, &spec.region, &spec.cluster, SystemTime::now())
            .map_err(|e| failure("Authenticate", "TokenFailure", e, ErrorClass::Permanent))?;
        let kubeconfig: Kubeconfig = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": spec.cluster, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
            "users": [{"name": "k8s-rollout", "user": {"token": token}}],
            "contexts": [{"name": spec.cluster, "context": {"cluster": spec.cluster, "user": "k8s-rollout"}}],
            "current-context": spec.cluster,
        }))
        .map_err(|e| failure("Connect", "BadKubeconfig", e.to_string(), ErrorClass::Permanent))?;
        client_from(kubeconfig, None).await
    }
}

async fn kubeconfig_client(path: &str, context: Option<&str>) -> Result<kube::Client, CallError> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
        failure(
            "Connect",
            "BadKubeconfig",
            format!("{path}: {e}"),
            ErrorClass::Permanent,
        )
    })?;
    client_from(kubeconfig, context).await
}

async fn client_from(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
) -> Result<kube::Client, CallError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| {
            failure(
                "Connect",
                "BadKubeconfig",
                e.to_string(),
                ErrorClass::Permanent,
            )
        })?;
    config.connect_timeout = Some(autonomic::aws::CONNECT_TIMEOUT);
    config.read_timeout = Some(CALL_TIMEOUT);
    config.write_timeout = Some(CALL_TIMEOUT);
    // kube retries 429, 503 and 504 by default, PATCH included: a 504 may come after the change
    // was made, and the guards (not a blind retry) decide what happens next. Every call is one
    // attempt; the delivery is retried instead.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| {
        failure(
            "Connect",
            "ClientFailure",
            e.to_string(),
            ErrorClass::Permanent,
        )
    })
}
