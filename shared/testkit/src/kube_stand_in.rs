//! A STAND-IN for the Kubernetes API server, limited to apps/v1 Deployments.
//!
//! No kube-apiserver (nor kind, k3s or envtest) can be installed on these machines, so this speaks
//! the real HTTP API for what k8s-rollout and kubectl use, and nothing more: TLS from its own CA
//! (as a real API server, so the clients' CA handling is exercised), bearer tokens (an EKS
//! presigned STS token or a fixed one), discovery, list/get/watch of Deployments, the three patch
//! types with `resourceVersion` concurrency and `dryRun=All`, real `Status` objects for errors,
//! and a simulated Deployment controller that moves `status` along the way `kubectl rollout
//! status` reads it. Everything else is a 404 or a 405.
//!
//! What it cannot do: check an EKS token's signature (that needs STS), so an `EksPresigned`
//! check verifies the token's form and freshness only; and the cluster name is signed into the
//! `x-k8s-aws-id` header, not the URL, so it is not checked either.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// How bearer tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// An EKS token as aws-iam-authenticator and `aws eks get-token` mint it: `k8s-aws-v1.` and
    /// the base64url of a presigned STS GetCallerIdentity URL. Form and freshness are checked,
    /// not the signature (no STS here); `cluster` only names the cluster in refusals.
    EksPresigned { cluster: String },
    /// This exact token (the local emulator, kubectl runs).
    Static(String),
}

/// A fault the stand-in injects into the next requests of one method (end-to-end fault tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeFault {
    /// Answer this status (a Status with reason `InternalError` for 5xx) without acting.
    ErrorBefore(u16),
    /// Act (a PATCH is applied), then answer this status: the answer of a change is lost.
    ErrorAfter(u16),
    /// Act, then answer nothing for a minute: the client's time limit ends the call.
    HangAfter,
}

/// One request the stand-in received, authorized or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub authorized: bool,
    pub body: String,
}

/// A running stand-in; the server stops when it is dropped.
pub struct KubeStandIn {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KubeStandIn {
    fn drop(&mut self) {
        // Open watches run in their own tasks: the flag ends them too.
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.server.abort();
    }
}

struct Shared {
    addr: SocketAddr,
    tokens: TokenCheck,
    state: Mutex<State>,
    stopped: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide the state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When the simulated controller started rolling a Deployment's current template out.
#[derive(Debug, Clone, Copy)]
struct Rollout {
    started: Instant,
    started_at: DateTime<Utc>,
}

struct Stored {
    /// The object as stored: no `status` (that is computed on every read).
    object: Value,
    created: DateTime<Utc>,
    /// `None`: the Deployment was put in complete and nothing has changed its spec since.
    rollout: Option<Rollout>,
}

#[derive(Default)]
struct State {
    deployments: BTreeMap<(String, String), Stored>,
    resource_version: u64,
    failing_image: Option<String>,
    rollout_delay: Duration,
    conflicts_pending: usize,
    /// `(method, fault, times)`: the next `times` requests of `method` (a PATCH not in dry run)
    /// meet `fault`.
    fault: Option<(Method, Option<String>, KubeFault, usize)>,
    other_writes: usize,
    next_uid: u64,
    requests: Vec<RecordedRequest>,
}

impl KubeStandIn {
    /// Starts the stand-in on a free loopback port, with a new CA and a server certificate for
    /// `127.0.0.1` and `localhost`.
    pub async fn start(tokens: TokenCheck) -> Self {
        let tls = Tls::new();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind kube stand-in");
        let addr = listener.local_addr().expect("kube stand-in address");
        let shared = Arc::new(Shared {
            addr,
            tokens,
            state: Mutex::new(State::default()),
            stopped: AtomicBool::new(false),
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls.server_config));
        let served = shared.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Small JSON answers: without NODELAY each one waits for the peer's delayed ACK.
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = served.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        KubeStandIn {
            addr,
            ca_pem: tls.ca_pem,
            shared,
            server,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA as EKS gives it in `certificateAuthority.data`: base64 (standard, padded) of the PEM.
    pub fn ca_data(&self) -> String {
        STANDARD.encode(self.ca_pem.as_bytes())
    }

    /// Stores `deployment` (namespace from `metadata.namespace`, default `default`) as a real API
    /// server would after a create: uid, resourceVersion, generation 1, creationTimestamp; its
    /// status is that of a complete rollout.
    pub fn put_deployment(&self, deployment: Value) {
        let mut object = deployment;
        assert!(object.is_object(), "a Deployment is a JSON object");
        let name = object["metadata"]["name"]
            .as_str()
            .expect("the Deployment needs metadata.name")
            .to_string();
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let created = Utc::now();
        let mut state = self.shared.state();
        state.resource_version += 1;
        state.next_uid += 1;
        object["kind"] = json!("Deployment");
        object["apiVersion"] = json!("apps/v1");
        let meta = &mut object["metadata"];
        meta["namespace"] = json!(namespace);
        meta["uid"] = json!(format!("5a1d0000-0000-4000-8000-{:012x}", state.next_uid));
        meta["resourceVersion"] = json!(state.resource_version.to_string());
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!(timestamp(created));
        apply_defaults(&mut object);
        if let Some(o) = object.as_object_mut() {
            o.remove("status");
        }
        state.deployments.insert(
            (namespace, name),
            Stored {
                object,
                created,
                rollout: None,
            },
        );
    }

    /// The Deployment as a GET would answer it (status recomputed now).
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Value> {
        let state = self.shared.state();
        let stored = state
            .deployments
            .get(&(namespace.to_string(), name.to_string()))?;
        Some(state.view(stored, Instant::now()))
    }

    /// Rollouts of a template with an image containing `substring` fail (ProgressDeadlineExceeded)
    /// once the rollout delay has passed. An empty substring clears it.
    pub fn set_failing_image(&self, substring: &str) {
        self.shared.state().failing_image = (!substring.is_empty()).then(|| substring.to_string());
    }

    /// How long a rollout stays in progress before it completes or fails (default 0).
    pub fn set_rollout_delay(&self, delay: Duration) {
        self.shared.state().rollout_delay = delay;
    }

    /// The next `n` PATCH requests (not dry-run) of an existing Deployment meet another writer
    /// first: the object's resourceVersion moves on (annotation `stand-in/other-writer`), so a
    /// patch carrying the resourceVersion it read gets 409 Conflict.
    pub fn conflict_next_patches(&self, n: usize) {
        self.shared.state().conflicts_pending = n;
    }

    /// The next `times` requests of `method` (`"GET"`, `"PATCH"`; dry-run patches excepted) meet
    /// `fault`. `"PATCH json-patch"` narrows it to requests whose content type contains the
    /// second word (a rollback's JSON patch, not a roll's strategic one).
    pub fn fail_next(&self, method: &str, fault: KubeFault, times: usize) {
        let (method, content_type) = match method.split_once(' ') {
            Some((m, c)) => (m, Some(c.to_string())),
            None => (method, None),
        };
        let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        self.shared.state().fault = Some((method, content_type, fault, times));
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// The PATCH requests received so far (dry-run ones included).
    pub fn patches(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect()
    }

    /// Writes a kubeconfig with cluster, user and context `stand-in` (current), the CA inline and
    /// `token` as the user's bearer token. JSON, which kubectl reads as it reads YAML and
    /// k8s-rollout reads alone.
    pub fn write_kubeconfig(&self, path: &Path, token: &str) {
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {
                "server": self.endpoint(),
                "certificate-authority-data": self.ca_data(),
            }}],
            "users": [{"name": "stand-in", "user": {"token": token}}],
            "contexts": [{"name": "stand-in", "context": {
                "cluster": "stand-in", "user": "stand-in", "namespace": "default",
            }}],
            "current-context": "stand-in",
            "preferences": {},
        });
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// An apps/v1 Deployment manifest: 2 replicas, selector and template labels `app=<name>`,
/// progressDeadlineSeconds 600; `containers` are (name, image); `labels` are added to the
/// Deployment's own labels (next to `app`).
pub fn deployment(
    namespace: &str,
    name: &str,
    containers: &[(&str, &str)],
    annotations: &[(&str, &str)],
    labels: &[(&str, &str)],
) -> Value {
    let mut metadata = json!({"name": name, "namespace": namespace, "labels": {"app": name}});
    for (k, v) in labels {
        metadata["labels"][*k] = json!(v);
    }
    if !annotations.is_empty() {
        let map: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        metadata["annotations"] = Value::Object(map);
    }
    let containers: Vec<Value> = containers
        .iter()
        .map(|(n, image)| json!({"name": n, "image": image, "imagePullPolicy": "IfNotPresent"}))
        .collect();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
            },
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers}
            }
        }
    })
}

/// A `ROLLOUT_CLUSTERS` document naming `stand_in` as EKS cluster `eks_cluster` (moto's
/// DescribeCluster answers for it) under the name `name`, namespace `shop`: its endpoint and CA
/// are given as overrides, since moto's are fake.
pub fn eks_clusters_document(stand_in: &KubeStandIn, name: &str, eks_cluster: &str) -> String {
    json!({"clusters": [{
        "name": name,
        "eks": {"cluster": eks_cluster, "region": "us-east-1",
                "endpoint": stand_in.endpoint(), "certificateAuthorityData": stand_in.ca_data()},
        "namespaces": ["shop"],
    }]})
    .to_string()
}

/// A k8s-rollout response's outcomes: `workload name → outcome[:reason]`.
pub fn rollout_outcomes(response: &Value) -> BTreeMap<String, String> {
    response["workloads"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            let name = l["workload"].as_str()?.rsplit('/').next()?.to_string();
            let reason = l["reason"]
                .as_str()
                .map(|r| format!(":{r}"))
                .unwrap_or_default();
            Some((name, format!("{}{reason}", l["outcome"].as_str()?)))
        })
        .collect()
}

impl KubeStandIn {
    /// The image of the first container of Deployment `namespace/name`.
    pub fn image(&self, namespace: &str, name: &str) -> String {
        self.deployment(namespace, name)
            .and_then(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }
}

/// The demo workloads in namespace `shop`: `web` (releases, never down), `web-canary` (releases
/// and release candidates), `storefront` (opted in, but managed by Argo CD) and `worker` (not
/// opted in).
pub fn seed_demo(stand_in: &KubeStandIn) {
    const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let web = format!("{REGISTRY}/autonomic-demo/web:1.3.0");
    let web = web.as_str();
    let worker = format!("{REGISTRY}/autonomic-demo/worker:2.0.0");
    let worker = worker.as_str();
    let image = ("autonomic.dev/image.web", "autonomic-demo/web");
    let semver = ("autonomic.dev/policy.web", "semver:>=1.0.0");
    stand_in.put_deployment(deployment(
        "shop",
        "web",
        &[("web", web)],
        &[image, semver],
        &[],
    ));
    stand_in.put_deployment(deployment(
        "shop",
        "web-canary",
        &[("web", web)],
        &[
            image,
            (
                "autonomic.dev/policy.web",
                r"regex:[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?",
            ),
        ],
        &[],
    ));
    stand_in.put_deployment(deployment(
        "shop",
        "storefront",
        &[("web", web)],
        &[
            image,
            semver,
            (
                "argocd.argoproj.io/tracking-id",
                "storefront:apps/Deployment:shop/storefront",
            ),
        ],
        &[("app.kubernetes.io/instance", "storefront")],
    ));
    stand_in.put_deployment(deployment(
        "shop",
        "worker",
        &[("worker", worker)],
        &[],
        &[],
    ));
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Tls {
    ca_pem: String,
    server_config: rustls::ServerConfig,
}

impl Tls {
    /// A CA of its own and a server certificate it signed, as kubeadm or EKS set a cluster up:
    /// clients must trust the CA from the kubeconfig or DescribeCluster, not the system roots.
    fn new() -> Tls {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("generate the stand-in CA key");
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).expect("stand-in CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "autonomic kube stand-in CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .expect("self-sign the stand-in CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("generate the stand-in server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("stand-in server certificate parameters");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver stand-in");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("sign the stand-in server certificate");

        // The provider is named: the workspace links ring only, and no process-wide default is
        // installed.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> = vec![server_cert.der().clone()];
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("stand-in server certificate and key");
        // HTTP/1.1 only: the server below speaks nothing else.
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Tls {
            ca_pem: ca_cert.pem(),
            server_config,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

type Body = BoxBody<Bytes, Infallible>;

/// An error answer: a real `Status` object.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
    /// The Deployment named in `details`, if the error is about one.
    name: Option<String>,
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            reason,
            message: message.into(),
            name: None,
        }
    }

    fn about(mut self, name: &str) -> Failure {
        self.name = Some(name.to_string());
        self
    }

    fn not_found(name: &str) -> Failure {
        Failure::new(
            404,
            "NotFound",
            format!("deployments.apps \"{name}\" not found"),
        )
        .about(name)
    }

    fn conflict(name: &str) -> Failure {
        Failure::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on deployments.apps \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
        )
        .about(name)
    }

    fn invalid(name: &str, message: impl Into<String>) -> Failure {
        Failure::new(422, "Invalid", message).about(name)
    }

    fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, "BadRequest", message)
    }

    fn unknown_path() -> Failure {
        Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    fn method_not_allowed() -> Failure {
        Failure::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    fn body(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(name) = &self.name {
            status["details"] = json!({"name": name, "group": "apps", "kind": "deployments"});
        }
        status
    }

    fn response(&self) -> Response<Body> {
        json_response(
            StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &self.body(),
        )
    }
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn ok(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, value)
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(CONTENT_TYPE);
    let accept = header(ACCEPT).unwrap_or_default();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or_default().to_string();

    let verdict = match header(AUTHORIZATION)
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        Some(token) => check_token(&shared.tokens, token.trim(), Utc::now()),
        None => Err("no bearer token".to_string()),
    };
    shared.state().requests.push(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
        content_type: content_type.clone(),
        authorized: verdict.is_ok(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if let Err(why) = verdict {
        // The answer says only "Unauthorized", as a real API server's does; the reason is for
        // whoever reads the test's output.
        eprintln!("kube stand-in: refused {} {path}: {why}", parts.method);
        return Ok(Failure::new(401, "Unauthorized", "Unauthorized").response());
    }

    let query = Query::parse(&raw_query);
    let dry_run = query.all("dryRun").any(|v| v == "All");
    let fault = {
        let mut state = shared.state();
        match &mut state.fault {
            Some((method, kind, fault, times))
                if *method == parts.method
                    && kind
                        .as_deref()
                        .is_none_or(|k| content_type.as_deref().is_some_and(|c| c.contains(k)))
                    && !dry_run
                    && *times > 0 =>
            {
                *times -= 1;
                Some(*fault)
            }
            _ => None,
        }
    };
    if let Some(KubeFault::ErrorBefore(code)) = fault {
        return Ok(Failure::new(code, fault_reason(code), "injected by the stand-in").response());
    }
    let request = Req {
        method: &parts.method,
        path: &path,
        query: &query,
        accept: &accept,
        content_type: content_type.as_deref(),
        body: &body,
    };
    let answer = route(&shared, &request).unwrap_or_else(|f| f.response());
    match fault {
        Some(KubeFault::ErrorAfter(code)) => Ok(Failure::new(
            code,
            fault_reason(code),
            "injected by the stand-in after acting",
        )
        .response()),
        Some(KubeFault::HangAfter) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(answer)
        }
        _ => Ok(answer),
    }
}

/// The Status reason a real API server gives with an injected fault's code.
fn fault_reason(code: u16) -> &'static str {
    match code {
        429 => "TooManyRequests",
        502..=504 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

/// An authorized request, taken apart.
struct Req<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a Query,
    accept: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

fn route(shared: &Arc<Shared>, req: &Req<'_>) -> Result<Response<Body>, Failure> {
    let segments: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get_only = |value: Value| {
        if req.method == Method::GET {
            Ok(ok(&value))
        } else {
            Err(Failure::method_not_allowed())
        }
    };
    let version = json!({"groupVersion": "apps/v1", "version": "v1"});
    match segments.as_slice() {
        ["api"] => get_only(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string()}
            ]
        })),
        ["apis"] => get_only(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [{"name": "apps", "versions": [version], "preferredVersion": version}]
        })),
        ["apis", "apps"] => get_only(json!({
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": "apps",
            "versions": [version],
            "preferredVersion": version
        })),
        ["api", "v1"] => get_only(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "v1",
            "resources": []
        })),
        ["apis", "apps", "v1"] => get_only(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "apps/v1",
            "resources": [
                {
                    "name": "deployments",
                    "singularName": "deployment",
                    "namespaced": true,
                    "kind": "Deployment",
                    "verbs": ["get", "list", "patch", "update"],
                    "shortNames": ["deploy"],
                    "categories": ["all"]
                },
                {
                    "name": "deployments/status",
                    "singularName": "",
                    "namespaced": true,
                    "kind": "Deployment",
                    "verbs": ["get", "patch", "update"]
                }
            ]
        })),
        ["version"] => get_only(json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-autonomic-stand-in"
        })),
        ["apis", "apps", "v1", "deployments"] => collection(shared, req, None),
        ["apis", "apps", "v1", "namespaces", ns, "deployments"] => {
            collection(shared, req, Some(*ns))
        }
        ["apis", "apps", "v1", "namespaces", ns, "deployments", name] => {
            if req.method == Method::GET {
                let state = shared.state();
                let stored = state
                    .deployments
                    .get(&(ns.to_string(), name.to_string()))
                    .ok_or_else(|| Failure::not_found(name))?;
                let object = state.view(stored, Instant::now());
                let rv = state.resource_version;
                drop(state);
                Ok(if wants_table(req.accept) {
                    ok(&table(
                        &[object],
                        rv,
                        req.query.get("includeObject"),
                        Utc::now(),
                    ))
                } else {
                    ok(&object)
                })
            } else if req.method == Method::PATCH {
                let kind = patch_kind(req.content_type)?;
                let dry_run = req.query.all("dryRun").any(|v| v == "All");
                let object =
                    shared
                        .state()
                        .patch(ns, name, kind, req.body, dry_run, Instant::now())?;
                Ok(ok(&object))
            } else {
                Err(Failure::method_not_allowed())
            }
        }
        [
            "apis",
            "apps",
            "v1",
            "namespaces",
            ns,
            "deployments",
            name,
            "status",
        ] => {
            if req.method != Method::GET {
                return Err(Failure::method_not_allowed());
            }
            let state = shared.state();
            let stored = state
                .deployments
                .get(&(ns.to_string(), name.to_string()))
                .ok_or_else(|| Failure::not_found(name))?;
            Ok(ok(&state.view(stored, Instant::now())))
        }
        _ => Err(Failure::unknown_path()),
    }
}

/// GET of a Deployment collection: a list, a Table of it (kubectl get), or a watch.
fn collection(
    shared: &Arc<Shared>,
    req: &Req<'_>,
    namespace: Option<&str>,
) -> Result<Response<Body>, Failure> {
    if req.method != Method::GET {
        return Err(Failure::method_not_allowed());
    }
    if matches!(req.query.get("watch"), Some("true" | "1")) {
        return Ok(watch(
            shared.clone(),
            namespace.map(str::to_string),
            req.query,
        ));
    }
    let state = shared.state();
    let items = state.list(namespace, req.query, Instant::now());
    let rv = state.resource_version;
    drop(state);
    if wants_table(req.accept) {
        return Ok(ok(&table(
            &items,
            rv,
            req.query.get("includeObject"),
            Utc::now(),
        )));
    }
    Ok(ok(&json!({
        "kind": "DeploymentList",
        "apiVersion": "apps/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items
    })))
}

fn patch_kind(content_type: Option<&str>) -> Result<PatchKind, Failure> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/apply-patch+yaml" => Err(Failure::new(
            415,
            "UnsupportedMediaType",
            "the stand-in does not implement server-side apply (application/apply-patch+yaml)",
        )),
        _ => Err(Failure::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({media:?}) - accepted media \
                 types include: application/json-patch+json, application/merge-patch+json, \
                 application/strategic-merge-patch+json"
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Query strings and selectors

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn selects(&self, object: &Value) -> bool {
        self.get("fieldSelector")
            .is_none_or(|s| field_selector_matches(s, object))
            && self
                .get("labelSelector")
                .is_none_or(|s| label_selector_matches(s, object))
    }
}

/// Decodes `%XX` escapes (and `+` as a space, as in a form-encoded query). A broken escape is
/// kept as it is: the check that follows fails on it.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `metadata.name` and `metadata.namespace` terms (`=`, `==`, `!=`), as `kubectl rollout status`
/// sends them; other fields are not filtered on.
fn field_selector_matches(selector: &str, object: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            let (field, want, negate) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, false)
            } else {
                return true;
            };
            let actual = match field.trim() {
                "metadata.name" => object["metadata"]["name"].as_str(),
                "metadata.namespace" => object["metadata"]["namespace"].as_str(),
                _ => return true,
            };
            (actual == Some(want.trim())) != negate
        })
}

/// Equality-based label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`); a set-based one (`in`,
/// `notin`) is not evaluated and selects everything.
fn label_selector_matches(selector: &str, object: &Value) -> bool {
    if selector.contains('(') {
        return true;
    }
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels[k.trim()].is_null()
            } else {
                !labels[term].is_null()
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Whether `token` passes `check` at `now`; the error says why not.
fn check_token(check: &TokenCheck, token: &str, now: DateTime<Utc>) -> Result<(), String> {
    match check {
        TokenCheck::Static(expected) => {
            if token == expected {
                Ok(())
            } else {
                Err("not the configured token".to_string())
            }
        }
        TokenCheck::EksPresigned { cluster } => {
            check_eks_token(token, now).map_err(|why| format!("EKS token for {cluster}: {why}"))
        }
    }
}

fn check_eks_token(token: &str, now: DateTime<Utc>) -> Result<(), String> {
    let encoded = token
        .strip_prefix("k8s-aws-v1.")
        .ok_or("no k8s-aws-v1. prefix")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))?;
    let url = String::from_utf8(bytes).map_err(|_| "the URL is not UTF-8")?;
    let rest = url.strip_prefix("https://").ok_or("not an https URL")?;
    let (location, query) = rest.split_once('?').ok_or("the URL has no query")?;
    let (host, path) = location.split_once('/').unwrap_or((location, ""));
    if !path.is_empty() {
        return Err(format!("path /{path} is not /"));
    }
    let regional = host
        .strip_prefix("sts.")
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
        .is_some_and(|region| {
            !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if host != "sts.amazonaws.com" && !regional {
        return Err(format!("host {host} is not STS"));
    }
    let params = Query::parse(query);
    let need = |key: &str| {
        params
            .get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no {key}"))
    };
    let require = |key: &str, want: &str| -> Result<(), String> {
        let got = need(key)?;
        if got == want {
            Ok(())
        } else {
            Err(format!("{key} is {got}, not {want}"))
        }
    };
    require("Action", "GetCallerIdentity")?;
    require("Version", "2011-06-15")?;
    require("X-Amz-Algorithm", "AWS4-HMAC-SHA256")?;
    let credential: Vec<&str> = need("X-Amz-Credential")?.split('/').collect();
    if credential.len() != 5 || credential[3] != "sts" || credential[4] != "aws4_request" {
        return Err(format!(
            "X-Amz-Credential {} is not KEY/DATE/REGION/sts/aws4_request",
            credential.join("/")
        ));
    }
    let date = need("X-Amz-Date")?;
    let signed = NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
        .map_err(|e| format!("X-Amz-Date {date}: {e}"))?
        .and_utc();
    let age = now.signed_duration_since(signed);
    if age > TimeDelta::minutes(15) {
        return Err(format!("signed at {date}, more than 15 minutes ago"));
    }
    if age < -TimeDelta::minutes(5) {
        return Err(format!("signed at {date}, more than 5 minutes from now"));
    }
    let expires = need("X-Amz-Expires")?;
    if expires.parse::<u64>().is_err() {
        return Err(format!(
            "X-Amz-Expires {expires} is not a number of seconds"
        ));
    }
    if !need("X-Amz-SignedHeaders")?
        .split(';')
        .any(|h| h.eq_ignore_ascii_case("x-k8s-aws-id"))
    {
        return Err("x-k8s-aws-id is not a signed header".to_string());
    }
    let signature = need("X-Amz-Signature")?;
    if signature.len() != 64 || !signature.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("X-Amz-Signature is not 64 hex digits".to_string());
    }
    // The signature itself cannot be checked without STS.
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Store, patches and the simulated controller

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    Strategic,
    Merge,
    Json,
}

impl State {
    /// `stored` as a read answers it: with the status the controller would have written by `now`.
    fn view(&self, stored: &Stored, now: Instant) -> Value {
        let mut object = stored.object.clone();
        let rollout = stored
            .rollout
            .map(|r| (now.saturating_duration_since(r.started), r.started_at));
        object["status"] = status_of(
            &stored.object,
            stored.created,
            rollout,
            self.rollout_delay,
            self.failing_image.as_deref(),
        );
        object
    }

    fn list(&self, namespace: Option<&str>, query: &Query, now: Instant) -> Vec<Value> {
        self.deployments
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, stored)| self.view(stored, now))
            .filter(|object| query.selects(object))
            .collect()
    }

    fn patch(
        &mut self,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        dry_run: bool,
        now: Instant,
    ) -> Result<Value, Failure> {
        let key = (namespace.to_string(), name.to_string());
        if !self.deployments.contains_key(&key) {
            return Err(Failure::not_found(name));
        }
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| Failure::bad_request(format!("error decoding patch: {e}")))?;
        if !dry_run && self.conflicts_pending > 0 {
            // Another writer got there first: the object moves on under the patch.
            self.conflicts_pending -= 1;
            self.other_writes += 1;
            self.resource_version += 1;
            let (rv, n) = (self.resource_version, self.other_writes);
            if let Some(stored) = self.deployments.get_mut(&key) {
                let meta = &mut stored.object["metadata"];
                meta["resourceVersion"] = json!(rv.to_string());
                if !meta["annotations"].is_object() {
                    meta["annotations"] = json!({});
                }
                meta["annotations"]["stand-in/other-writer"] = json!(n.to_string());
            }
        }
        let Some(stored) = self.deployments.get(&key) else {
            return Err(Failure::not_found(name));
        };
        let mut result = stored.object.clone();
        match kind {
            PatchKind::Strategic => {
                if !patch.is_object() {
                    return Err(Failure::bad_request(
                        "a strategic merge patch must be a JSON object",
                    ));
                }
                strategic_merge(&mut result, &patch);
            }
            PatchKind::Merge => json_patch::merge(&mut result, &patch),
            PatchKind::Json => {
                let ops: json_patch::Patch = serde_json::from_value(patch)
                    .map_err(|e| Failure::bad_request(format!("invalid JSON patch: {e}")))?;
                if let Err(e) = json_patch::patch(&mut result, &ops) {
                    return Err(match e.kind {
                        json_patch::PatchErrorKind::TestFailed => Failure::invalid(
                            name,
                            "the server rejected our request due to an error in our request",
                        ),
                        _ => Failure::invalid(name, e.to_string()),
                    });
                }
            }
        }
        if !result.is_object() || !result["metadata"].is_object() {
            return Err(Failure::invalid(
                name,
                "the patched object is not a Deployment",
            ));
        }
        // Optimistic concurrency: a resourceVersion in the result (from the patch, or left in
        // place by a JSON patch) must be the stored one.
        let stored_meta = &stored.object["metadata"];
        match result.pointer("/metadata/resourceVersion") {
            None | Some(Value::Null) => {}
            Some(rv) if *rv == stored_meta["resourceVersion"] => {}
            Some(_) => return Err(Failure::conflict(name)),
        }
        // Fields the server owns: a patch does not change them.
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            match stored_meta.get(field) {
                Some(value) => result["metadata"][field] = value.clone(),
                None => {
                    if let Some(meta) = result["metadata"].as_object_mut() {
                        meta.remove(field);
                    }
                }
            }
        }
        result["kind"] = json!("Deployment");
        result["apiVersion"] = json!("apps/v1");
        apply_defaults(&mut result);
        if let Some(o) = result.as_object_mut() {
            o.remove("status");
        }
        let spec_changed = result["spec"] != stored.object["spec"];
        let generation = stored_meta["generation"].as_i64().unwrap_or(1) + i64::from(spec_changed);
        result["metadata"]["generation"] = json!(generation);
        let resource_version = self.resource_version + 1;
        result["metadata"]["resourceVersion"] = json!(resource_version.to_string());
        let updated = Stored {
            object: result,
            created: stored.created,
            rollout: if spec_changed {
                Some(Rollout {
                    started: now,
                    started_at: Utc::now(),
                })
            } else {
                stored.rollout
            },
        };
        let answer = self.view(&updated, now);
        if !dry_run {
            self.resource_version = resource_version;
            self.deployments.insert(key, updated);
        }
        Ok(answer)
    }
}

/// What the API server's defaulting fills in that the controller below reads.
fn apply_defaults(object: &mut Value) {
    if !object["spec"].is_object() {
        object["spec"] = json!({});
    }
    if object["spec"]["replicas"].is_null() {
        object["spec"]["replicas"] = json!(1);
    }
}

/// A strategic merge patch as the API server applies it to a Deployment: objects merge
/// recursively, `null` deletes, `containers` and `initContainers` merge by `name` (an element for
/// a new name is appended, `$patch: delete` removes one), every other list is replaced.
/// `$patch: replace` on an object replaces it; other `$` directives (`$setElementOrder/...`,
/// `$retainKeys`) are ignored.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = json!({});
        strategic_merge(&mut replacement, &without_directives(patch));
        *target = replacement;
        return;
    }
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            if let Some(o) = target.as_object_mut() {
                o.remove(key);
            }
            continue;
        }
        let merge_by_name = key == "containers" || key == "initContainers";
        match value {
            Value::Array(elements) if merge_by_name && target[key.as_str()].is_array() => {
                merge_list_by_name(&mut target[key.as_str()], elements);
            }
            Value::Array(elements) if merge_by_name => {
                let mut list = json!([]);
                merge_list_by_name(&mut list, elements);
                target[key.as_str()] = list;
            }
            Value::Object(_) => strategic_merge(&mut target[key.as_str()], value),
            _ => target[key.as_str()] = value.clone(),
        }
    }
}

fn merge_list_by_name(target: &mut Value, elements: &[Value]) {
    let Some(list) = target.as_array_mut() else {
        return;
    };
    for element in elements {
        let Some(name) = element["name"].as_str() else {
            list.push(without_directives(element));
            continue;
        };
        let position = list.iter().position(|e| e["name"].as_str() == Some(name));
        let delete = element["$patch"].as_str() == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], element),
            (None, false) => {
                let mut new = json!({});
                strategic_merge(&mut new, element);
                list.push(new);
            }
        }
    }
}

fn without_directives(value: &Value) -> Value {
    match value.as_object() {
        Some(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => value.clone(),
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The status the Deployment controller would have written: `rollout` is the time since the
/// current template's rollout started and when it started (`None`: complete since `created`).
fn status_of(
    object: &Value,
    created: DateTime<Utc>,
    rollout: Option<(Duration, DateTime<Utc>)>,
    delay: Duration,
    failing_image: Option<&str>,
) -> Value {
    #[derive(PartialEq)]
    enum Phase {
        Progressing,
        Failed,
        Complete,
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let spec = &object["spec"];
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let paused = spec["paused"].as_bool().unwrap_or(false);
    let replica_set = format!("{name}-{}", template_hash(&spec["template"]));
    let fails = failing_image.is_some_and(|bad| {
        ["containers", "initContainers"].iter().any(|list| {
            spec["template"]["spec"][*list]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["image"].as_str().is_some_and(|i| i.contains(bad)))
                })
        })
    });
    // (phase, when the Progressing condition last changed, when it was last updated)
    let (phase, transition, update) = match rollout {
        None => (Phase::Complete, created, created),
        Some((_, started_at)) if paused => (Phase::Progressing, started_at, started_at),
        Some((elapsed, started_at)) if elapsed < delay => {
            (Phase::Progressing, started_at, started_at)
        }
        Some((_, started_at)) => {
            let done_at = started_at + TimeDelta::from_std(delay).unwrap_or_default();
            if fails {
                (Phase::Failed, done_at, done_at)
            } else {
                (Phase::Complete, started_at, done_at)
            }
        }
    };
    let (total, updated, ready, available, unavailable) = match phase {
        Phase::Complete => (replicas, replicas, replicas, replicas, 0),
        Phase::Progressing | Phase::Failed => {
            let updated = if replicas == 0 && phase == Phase::Progressing {
                0
            } else {
                1
            };
            (replicas + 1, updated, replicas, replicas, 1)
        }
    };
    let (status, reason, message) = if paused {
        (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".to_string(),
        )
    } else {
        match phase {
            Phase::Progressing => (
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{replica_set}\" is progressing."),
            ),
            Phase::Failed => (
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{replica_set}\" has timed out progressing."),
            ),
            Phase::Complete => (
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
            ),
        }
    };
    json!({
        "observedGeneration": generation,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": timestamp(created),
                "lastTransitionTime": timestamp(created)
            },
            {
                "type": "Progressing",
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": timestamp(update),
                "lastTransitionTime": timestamp(transition)
            }
        ]
    })
}

/// A pod-template-hash lookalike: stable for a template, in the alphabet Kubernetes uses.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in template.to_string().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char;
            hash /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tables (kubectl get) and watches (kubectl rollout status)

fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// The Table `kubectl get deployments` asks for: NAME READY UP-TO-DATE AVAILABLE AGE (and, with
/// `-o wide`, CONTAINERS IMAGES SELECTOR).
fn table(
    items: &[Value],
    resource_version: u64,
    include: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let column = |name: &str, kind: &str, format: &str, priority: u8| json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority});
    let rows: Vec<Value> = items
        .iter()
        .map(|d| {
            let status = &d["status"];
            let count = |v: &Value| v.as_i64().unwrap_or(0);
            let containers = d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let joined = |field: &str| {
                containers
                    .iter()
                    .filter_map(|c| c[field].as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let selector = d["spec"]["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let age = d["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| human_age(now.signed_duration_since(t.with_timezone(&Utc))))
                .unwrap_or_else(|| "<unknown>".to_string());
            let mut row = json!({
                "cells": [
                    d["metadata"]["name"],
                    format!("{}/{}", count(&status["readyReplicas"]), count(&d["spec"]["replicas"])),
                    count(&status["updatedReplicas"]),
                    count(&status["availableReplicas"]),
                    age,
                    joined("name"),
                    joined("image"),
                    selector
                ]
            });
            match include {
                Some("None") => {}
                Some("Object") => row["object"] = d.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": d["metadata"]
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": [
            column("Name", "string", "name", 0),
            column("Ready", "string", "", 0),
            column("Up-to-date", "integer", "", 0),
            column("Available", "integer", "", 0),
            column("Age", "string", "", 0),
            column("Containers", "string", "", 1),
            column("Images", "string", "", 1),
            column("Selector", "string", "", 1)
        ],
        "rows": rows
    })
}

/// kubectl's short ages: `45s`, `3m20s`, `42m`, `5h3m`, `30h`, `12d`.
fn human_age(age: TimeDelta) -> String {
    let s = age.num_seconds().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 == 0 => format!("{m}m"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 && m % 60 == 0 => format!("{h}h"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ => format!("{d}d"),
    }
}

/// A response body fed by a channel: the watch task writes events as they happen.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// A watch of Deployments (`?watch=true`), as client-go's reflector (so `kubectl rollout status`)
/// uses it. The status is computed on read here, not written, so the watch polls the store and
/// sends an event whenever what a GET would answer changes. With `sendInitialEvents=true` the
/// current objects come first as ADDED, closed by the initial-events-end BOOKMARK; otherwise the
/// current objects are sent once as MODIFIED (a status may have moved since the client's list).
fn watch(shared: Arc<Shared>, namespace: Option<String>, query: &Query) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800)
        .min(1800);
    let initial_events = query.get("sendInitialEvents") == Some("true");
    let query = Query(query.0.clone());
    tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let event = |kind: &str, object: &Value| {
            Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut first = true;
        while Instant::now() < deadline
            && !tx.is_closed()
            && !shared.stopped.load(Ordering::Relaxed)
        {
            let (items, rv) = {
                let state = shared.state();
                (
                    state.list(namespace.as_deref(), &query, Instant::now()),
                    state.resource_version,
                )
            };
            let mut events = Vec::new();
            let mut current = HashMap::new();
            for item in items {
                let key = format!(
                    "{}/{}",
                    item["metadata"]["namespace"].as_str().unwrap_or_default(),
                    item["metadata"]["name"].as_str().unwrap_or_default()
                );
                let text = item.to_string();
                let kind = match seen.get(&key) {
                    None if first && !initial_events => Some("MODIFIED"),
                    None => Some("ADDED"),
                    Some(before) if *before != text => Some("MODIFIED"),
                    Some(_) => None,
                };
                if let Some(kind) = kind {
                    events.push(event(kind, &item));
                }
                current.insert(key, (text, item));
            }
            for (key, _) in seen.iter().filter(|(k, _)| !current.contains_key(*k)) {
                let (ns, name) = key.split_once('/').unwrap_or(("", key.as_str()));
                events.push(event(
                    "DELETED",
                    &json!({"kind": "Deployment", "apiVersion": "apps/v1",
                            "metadata": {"namespace": ns, "name": name}}),
                ));
            }
            if first && initial_events {
                events.push(event(
                    "BOOKMARK",
                    &json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {
                        "resourceVersion": rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}
                    }}),
                ));
            }
            seen = current
                .into_iter()
                .map(|(k, (text, _))| (k, text))
                .collect();
            first = false;
            for e in events {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut r = Response::new(ChannelBody { rx }.boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_images(d: &Value) -> Vec<(String, String)> {
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["image"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_replaces_other_lists() {
        let mut d = deployment(
            "shop",
            "web",
            &[("web", "web:1"), ("sidecar", "proxy:1")],
            &[("a", "1"), ("b", "2")],
            &[],
        );
        d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--x", "--y"]);
        let patch = json!({
            "metadata": {"annotations": {"a": null, "c": "3"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [
                    {"name": "web", "image": "web:2", "args": ["--z"]},
                    {"name": "new", "image": "new:1"}
                ]
            }}}
        });
        strategic_merge(&mut d, &patch);
        assert_eq!(d["metadata"]["annotations"], json!({"b": "2", "c": "3"}));
        assert_eq!(
            container_images(&d),
            vec![
                ("web".to_string(), "web:2".to_string()),
                ("sidecar".to_string(), "proxy:1".to_string()),
                ("new".to_string(), "new:1".to_string()),
            ]
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["--z"])
        );
        assert_eq!(d["spec"]["replicas"], 2, "untouched fields stay");
        assert!(
            d["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none(),
            "directives are not stored"
        );
    }

    fn stored(object: Value) -> State {
        let mut state = State::default();
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!("1");
        object["metadata"]["generation"] = json!(1);
        object["metadata"]["uid"] = json!("u");
        state.resource_version = 1;
        let key = (
            object["metadata"]["namespace"]
                .as_str()
                .unwrap()
                .to_string(),
            object["metadata"]["name"].as_str().unwrap().to_string(),
        );
        state.deployments.insert(
            key,
            Stored {
                object,
                created: Utc::now(),
                rollout: None,
            },
        );
        state
    }

    #[test]
    fn patches_check_the_resource_version_and_bump_the_generation() {
        let mut state = stored(deployment("shop", "web", &[("web", "web:1")], &[], &[]));
        let now = Instant::now();
        let image = br#"{"metadata":{"resourceVersion":"1"},"spec":{"template":{"spec":{"containers":[{"name":"web","image":"web:2"}]}}}}"#;

        let dry = state
            .patch("shop", "web", PatchKind::Strategic, image, true, now)
            .unwrap();
        assert_eq!(dry["metadata"]["generation"], 2);
        assert_eq!(
            state.deployments.values().next().unwrap().object["metadata"]["generation"],
            1
        );

        state.conflicts_pending = 1;
        let conflict = state
            .patch("shop", "web", PatchKind::Strategic, image, false, now)
            .unwrap_err();
        assert_eq!((conflict.code, conflict.reason), (409, "Conflict"));
        assert!(
            conflict
                .message
                .contains("\"web\": the object has been modified")
        );

        let rv = state.deployments.values().next().unwrap().object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(rv, "2");
        let ops = r#"[{"op":"test","path":"/metadata/resourceVersion","value":"1"},
            {"op":"replace","path":"/spec/template/spec/containers/0/image","value":"web:2"}]"#;
        let failed = state
            .patch("shop", "web", PatchKind::Json, ops.as_bytes(), false, now)
            .unwrap_err();
        assert_eq!((failed.code, failed.reason), (422, "Invalid"));

        let ops = ops.replace("\"value\":\"1\"", "\"value\":\"2\"");
        let done = state
            .patch("shop", "web", PatchKind::Json, ops.as_bytes(), false, now)
            .unwrap();
        assert_eq!(done["metadata"]["generation"], 2);
        assert_eq!(done["metadata"]["resourceVersion"], "3");
        assert_eq!(
            done["metadata"]["annotations"]["stand-in/other-writer"],
            "1"
        );
        assert_eq!(done["status"]["observedGeneration"], 2);
        assert_eq!(done["status"]["updatedReplicas"], 2);
    }

    #[test]
    fn status_follows_the_rollout() {
        let mut d = deployment("shop", "web", &[("web", "web:bad")], &[], &[]);
        d["metadata"]["generation"] = json!(3);
        let created = Utc::now();
        let delay = Duration::from_secs(10);

        let s = status_of(
            &d,
            created,
            Some((Duration::from_secs(1), created)),
            delay,
            None,
        );
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(
            (s["updatedReplicas"].as_i64(), s["replicas"].as_i64()),
            (Some(1), Some(3))
        );
        assert_eq!(s["conditions"][1]["reason"], "ReplicaSetUpdated");

        let s = status_of(&d, created, Some((delay, created)), delay, Some("bad"));
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "ProgressDeadlineExceeded");
        assert!(
            s["conditions"][1]["message"]
                .as_str()
                .unwrap()
                .starts_with("ReplicaSet \"web-")
        );

        let s = status_of(&d, created, Some((delay, created)), delay, Some("other"));
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            assert_eq!(s[field], 2, "{field}");
        }
    }

    fn presigned(host: &str, date: &str) -> String {
        let url = format!(
            "https://{host}/?Action=GetCallerIdentity&Version=2011-06-15\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20250101%2Fus-east-1%2Fsts%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id\
             &X-Amz-Signature={}",
            "0a".repeat(32)
        );
        format!("k8s-aws-v1.{}", URL_SAFE_NO_PAD.encode(url))
    }

    #[test]
    fn eks_tokens_are_checked_for_form_and_freshness() {
        let check = TokenCheck::EksPresigned {
            cluster: "prod".to_string(),
        };
        let now = Utc::now();
        let date = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        check_token(
            &check,
            &presigned("sts.eu-west-1.amazonaws.com", &date(now)),
            now,
        )
        .unwrap();
        check_token(&check, &presigned("sts.amazonaws.com", &date(now)), now).unwrap();
        let stale = date(now - TimeDelta::minutes(16));
        assert!(check_token(&check, &presigned("sts.amazonaws.com", &stale), now).is_err());
        let future = date(now + TimeDelta::minutes(6));
        assert!(check_token(&check, &presigned("sts.amazonaws.com", &future), now).is_err());
        assert!(check_token(&check, &presigned("evil.example.com", &date(now)), now).is_err());
        assert!(check_token(&check, "k8s-aws-v1.bm90IGEgdXJs", now).is_err());

        let fixed = TokenCheck::Static("t".to_string());
        check_token(&fixed, "t", now).unwrap();
        assert!(check_token(&fixed, "u", now).is_err());
        assert_eq!(percent_decode("a%2Fb%3bc+d%"), "a/b;c d%");
    }

    fn pem_to_der(pem: &str) -> CertificateDer<'static> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        CertificateDer::from(STANDARD.decode(body).unwrap())
    }

    async fn get(stand_in: &KubeStandIn, path: &str, token: &str) -> (u16, Value) {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pem_to_der(&stand_in.ca_pem())).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(stand_in.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::from(stand_in.addr.ip());
        let tls = connector.connect(name, tcp).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(path)
            .header("host", stand_in.addr.to_string())
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn serves_deployments_over_tls_to_a_client_trusting_its_ca() {
        let stand_in = KubeStandIn::start(TokenCheck::Static("t".to_string())).await;
        stand_in.put_deployment(deployment("shop", "web", &[("web", "web:1")], &[], &[]));

        let (code, d) = get(
            &stand_in,
            "/apis/apps/v1/namespaces/shop/deployments/web",
            "t",
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(d["status"]["updatedReplicas"], 2);
        assert_eq!(d["metadata"]["generation"], 1);

        let (code, status) = get(&stand_in, "/apis/apps/v1/namespaces/shop/deployments", "x").await;
        assert_eq!((code, &status["reason"]), (401, &json!("Unauthorized")));

        let (code, status) = get(
            &stand_in,
            "/apis/apps/v1/namespaces/shop/deployments/gone",
            "t",
        )
        .await;
        assert_eq!((code, &status["kind"]), (404, &json!("Status")));

        let authorized: Vec<bool> = stand_in.requests().iter().map(|r| r.authorized).collect();
        assert_eq!(authorized, vec![true, false, true]);
    }
}
