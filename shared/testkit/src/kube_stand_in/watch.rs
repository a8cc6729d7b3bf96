//! Watches of Deployments (`?watch=true`), as `kubectl rollout status` (client-go's reflector)
//! uses them: a task polls the store and streams events into the response body.
//!
//! Separate: the one long-lived answer, with its own task and body type.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::{Bytes, Frame};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::query::Query;
use super::reply::Body;
use super::store::Shared;

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
pub(super) fn watch(
    shared: Arc<Shared>,
    namespace: Option<String>,
    query: &Query,
) -> Response<Body> {
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
