//! Reaching a cluster: an EKS cluster's endpoint and CA from `DescribeCluster` and a token minted
//! from the function's own credentials, or a kubeconfig file ([`crate::kubeconfig`]). A client is
//! kept per cluster and rebuilt (a fresh token, a fresh `DescribeCluster`) when its token would
//! not last the invocation ([`TOKEN_LIFETIME`]).
//!
//! The client is kube's `Client` over a service built here: HTTP/1.1 over hyper, rustls (ring)
//! trusting only the cluster's CA, the bearer token or client certificate, and the cluster's URL
//! as the base of every request. kube's own `Config` would do the same, but it brings its whole
//! kubeconfig and auth-plugin support along.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use autonomic::{CallError, ErrorClass};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::Mutex;
use tower::ServiceBuilder;

use crate::clusters::{Access, Cluster, EksSpec};
use crate::kube_api::{CALL_TIMEOUT, Workloads};
use crate::kubeconfig::{self, Credential, Endpoint};
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
                let endpoint = kubeconfig::read(path, context.as_deref())
                    .map_err(|e| failure("Connect", "BadKubeconfig", e, ErrorClass::Permanent))?;
                client(&endpoint)?
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
        let ca_pem = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, ca.trim())
            .map_err(|e| {
                failure(
                    "Connect",
                    "BadCertificateAuthority",
                    format!("the cluster's CA is not base64: {e}"),
                    ErrorClass::Permanent,
                )
            })?;
        client(&Endpoint {
            server: endpoint,
            ca_pem,
            credential: Credential::token(token),
        })
    }
}

/// The TLS setup for one cluster: only its CA is trusted; a client certificate if that is the
/// credential.
fn tls_config(endpoint: &Endpoint) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&endpoint.ca_pem) {
        let cert = cert.map_err(|e| format!("the CA is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA holds no certificate".into());
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    match &endpoint.credential.certificate {
        None => Ok(builder.with_no_client_auth()),
        Some(kubeconfig::ClientCertificate { chain, key }) => {
            let chain = CertificateDer::pem_slice_iter(chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the client certificate is not PEM: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| format!("the client key is not PEM: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate is not usable: {e}"))
        }
    }
}

/// kube's `Client` for one cluster: connect within [`autonomic::aws::CONNECT_TIMEOUT`] (each
/// call's whole time limit is [`CALL_TIMEOUT`], in `kube_api`), no retries (a PATCH answered 504
/// may have been applied: the guards decide what happens next, not a blind retry).
pub fn client(endpoint: &Endpoint) -> Result<kube::Client, CallError> {
    let bad = |code: &str, e: String| failure("Connect", code, e, ErrorClass::Permanent);
    let server: http::Uri = endpoint
        .server
        .parse()
        .map_err(|e| bad("BadEndpoint", format!("{}: {e}", endpoint.server)))?;
    if server.scheme_str() != Some("https") {
        return Err(bad(
            "BadEndpoint",
            format!("{} is not https://", endpoint.server),
        ));
    }
    let tls = tls_config(endpoint).map_err(|e| bad("BadTls", e))?;
    let pool = autonomic::aws::http::https_pool(tls, Some(autonomic::aws::CONNECT_TIMEOUT));
    let authorization = match &endpoint.credential.token {
        Some(token) => {
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| bad("BadToken", "the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    let service = ServiceBuilder::new()
        .layer(kube::client::middleware::BaseUriLayer::new(server))
        .map_request(move |mut request: http::Request<kube::client::Body>| {
            if let Some(value) = &authorization {
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value.clone());
            }
            request
        })
        .service(pool);
    Ok(kube::Client::new(service, "default"))
}
