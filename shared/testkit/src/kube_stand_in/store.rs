//! The stand-in's state: the Deployments as stored (without `status`), the settings tests make
//! (failing image, rollout delay, conflicts, faults) and the requests received; and what a read
//! and a patch do to it (`resourceVersion` concurrency, server-owned fields, `dryRun`).
//!
//! Separate from the HTTP side, so a patch can be tested on a `State` directly, without a server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hyper::Method;
use serde_json::{Value, json};

use super::controller::status_of;
use super::query::Query;
use super::reply::Failure;
use super::strategic_merge::strategic_merge;
use super::{KubeFault, RecordedRequest, TokenCheck};

pub(super) struct Shared {
    pub(super) addr: SocketAddr,
    pub(super) tokens: TokenCheck,
    pub(super) state: Mutex<State>,
    pub(super) stopped: AtomicBool,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide the state from the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When the simulated controller started rolling a Deployment's current template out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rollout {
    started: Instant,
    started_at: DateTime<Utc>,
}

pub(super) struct Stored {
    /// The object as stored: no `status` (that is computed on every read).
    pub(super) object: Value,
    pub(super) created: DateTime<Utc>,
    /// `None`: the Deployment was put in complete and nothing has changed its spec since.
    pub(super) rollout: Option<Rollout>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) deployments: BTreeMap<(String, String), Stored>,
    pub(super) resource_version: u64,
    pub(super) failing_image: Option<String>,
    pub(super) rollout_delay: Duration,
    pub(super) conflicts_pending: usize,
    /// `(method, fault, times)`: the next `times` requests of `method` (a PATCH not in dry run)
    /// meet `fault`.
    pub(super) fault: Option<(Method, Option<String>, KubeFault, usize)>,
    other_writes: usize,
    pub(super) next_uid: u64,
    pub(super) requests: Vec<RecordedRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PatchKind {
    Strategic,
    Merge,
    Json,
}

impl State {
    /// `stored` as a read answers it: with the status the controller would have written by `now`.
    pub(super) fn view(&self, stored: &Stored, now: Instant) -> Value {
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

    pub(super) fn list(&self, namespace: Option<&str>, query: &Query, now: Instant) -> Vec<Value> {
        self.deployments
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, stored)| self.view(stored, now))
            .filter(|object| query.selects(object))
            .collect()
    }

    pub(super) fn patch(
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

/// What the API server's defaulting fills in that the simulated controller (`controller`) reads.
pub(super) fn apply_defaults(object: &mut Value) {
    if !object["spec"].is_object() {
        object["spec"] = json!({});
    }
    if object["spec"]["replicas"].is_null() {
        object["spec"]["replicas"] = json!(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_stand_in::deployment;

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
}
