//! The HTTP side: each request is recorded, its bearer token checked and an injected fault
//! applied, then it is routed (discovery, Deployments, their status); errors are answered as real
//! `Status` objects ([`Failure`], in `reply`).
//!
//! Separate from the store and the controller: this is the API's surface, they are its contents.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use super::query::Query;
use super::reply::{Body, Failure, ok};
use super::store::{PatchKind, Shared};
use super::table::{table, wants_table};
use super::tokens::check_token;
use super::watch::watch;
use super::{KubeFault, RecordedRequest};

pub(super) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
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
