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
//!
//! This module holds the public API ([`KubeStandIn`], the fault and token settings, and the
//! fixtures re-exported from `fixtures`); each submodule holds one part of the server:
//! `tls` (its CA), `http` (requests, routes, `Status` errors), `tokens`, `query` (query strings
//! and selectors), `store` (the Deployments and what a patch does to them), `strategic_merge`,
//! `controller` (the simulated `status`), `table` (kubectl get) and `watch`.

mod controller;
mod fixtures;
mod http;
mod query;
mod reply;
mod store;
mod strategic_merge;
mod table;
mod tls;
mod tokens;
mod watch;

pub use fixtures::{deployment, eks_clusters_document, rollout_outcomes, seed_demo};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use hyper::Method;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use controller::timestamp;
use http::handle;
use store::{Shared, State, Stored, apply_defaults};
use tls::Tls;

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

#[cfg(test)]
mod tests;
