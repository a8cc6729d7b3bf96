//! Fault tests through a fake of the API trait (`k8s_rollout::api::KubeApi`), named as such: an
//! in-memory cluster whose next patch meets a 409 Conflict after "someone" changed the workload
//! in a way the stand-in cannot (paused it, started a rollout), or whose patch is applied with
//! its answer lost. The state table is moto's, as in the other tests.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic::{CallError, FunctionError};
use autonomic_testkit::kube_stand_in::rollout_outcomes as outcomes;
use autonomic_testkit::{Moto, create_state_table, event, lambda_event, unique};
use k8s_rollout::Rollout;
use k8s_rollout::api::{Connect, KubeApi};
use k8s_rollout::clusters::Cluster;
use k8s_rollout::config::RolloutConfig;
use k8s_rollout::planner::{WorkloadRef, WorkloadView};
use k8s_rollout::roller::workload_lease;
use serde_json::Value;

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// The digest of events/eventbridge-ecr-image-push-release.json (1.4.0).
const RELEASE_DIGEST: &str =
    "sha256:1a4000b7c0ffee5a1e5e2b8d0f4c6e8a9b1d3f5e7a9c1e3b5d7f9a1c3e5b7d9f";
const RELEASE: &str = "eventbridge-ecr-image-push-release.json";

/// What someone else does to the workload just before a patch, which then meets a 409.
type Meanwhile = Box<dyn FnOnce(&mut WorkloadView) + Send>;

#[derive(Default)]
struct Cluster1 {
    web: WorkloadView,
    conflicts: Vec<Meanwhile>,
    /// The next patch is applied and its answer lost (a 502 after acting).
    lose_next_answer: bool,
    /// Strategic patches that reached the cluster (dry runs excluded).
    patches: usize,
}

/// One cluster holding one Deployment, `shop/web`, following `autonomic-demo/web` (semver).
#[derive(Clone)]
struct FakeCluster(Arc<Mutex<Cluster1>>);

impl FakeCluster {
    fn new() -> Self {
        let web = WorkloadView {
            at: WorkloadRef {
                cluster: "prod".into(),
                namespace: "shop".into(),
                name: "web".into(),
            },
            resource_version: "1".into(),
            generation: 1,
            annotations: BTreeMap::from([
                (
                    "autonomic.dev/image.web".to_string(),
                    "autonomic-demo/web".to_string(),
                ),
                (
                    "autonomic.dev/policy.web".to_string(),
                    "semver:>=1.0.0".to_string(),
                ),
            ]),
            containers: vec![(
                "web".to_string(),
                format!("{REGISTRY}/autonomic-demo/web:1.3.0"),
            )],
            replicas: 1,
            observed_generation: 1,
            status_replicas: 1,
            updated_replicas: 1,
            available_replicas: 1,
            progress_deadline_seconds: 60,
            ..WorkloadView::default()
        };
        Self(Arc::new(Mutex::new(Cluster1 {
            web,
            ..Cluster1::default()
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Cluster1) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn image(&self) -> String {
        self.with(|c| c.web.containers[0].1.clone())
    }
}

fn bump(v: &mut WorkloadView) {
    let rv: u64 = v.resource_version.parse().unwrap();
    v.resource_version = (rv + 1).to_string();
}

impl KubeApi for FakeCluster {
    async fn list(&self, namespace: &str) -> Result<Vec<WorkloadView>, CallError> {
        Ok(self.with(|c| {
            (c.web.at.namespace == namespace)
                .then(|| c.web.clone())
                .into_iter()
                .collect()
        }))
    }

    async fn get(&self, at: &WorkloadRef) -> Result<Option<WorkloadView>, CallError> {
        Ok(self.with(|c| (c.web.at == *at).then(|| c.web.clone())))
    }

    async fn patch_strategic(
        &self,
        _at: &WorkloadRef,
        patch: &Value,
        dry_run: bool,
    ) -> Result<WorkloadView, CallError> {
        self.with(|c| {
            if dry_run {
                return Ok(c.web.clone());
            }
            c.patches += 1;
            let conflict = || CallError::kubernetes("PatchDeployment", 409, "Conflict", "changed");
            if let Some(meanwhile) = c.conflicts.pop() {
                meanwhile(&mut c.web);
                bump(&mut c.web);
                return Err(conflict());
            }
            if patch["metadata"]["resourceVersion"] != c.web.resource_version.as_str() {
                return Err(conflict());
            }
            for container in patch["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
            {
                let name = container["name"].as_str().unwrap();
                let image = container["image"].as_str().unwrap();
                for (n, i) in &mut c.web.containers {
                    if n == name {
                        *i = image.to_string();
                    }
                }
            }
            for (k, v) in patch["metadata"]["annotations"].as_object().unwrap() {
                c.web
                    .annotations
                    .insert(k.clone(), v.as_str().unwrap().to_string());
            }
            // The controller rolls it out at once.
            c.web.generation += 1;
            c.web.observed_generation = c.web.generation;
            bump(&mut c.web);
            if std::mem::take(&mut c.lose_next_answer) {
                return Err(CallError::kubernetes(
                    "PatchDeployment",
                    502,
                    "",
                    "bad gateway",
                ));
            }
            Ok(c.web.clone())
        })
    }

    async fn patch_json(&self, _at: &WorkloadRef, _ops: &Value) -> Result<WorkloadView, CallError> {
        panic!("no rollback is expected here")
    }
}

struct FakeConnect(FakeCluster);

impl Connect for FakeConnect {
    type Api = FakeCluster;

    async fn workloads(
        &self,
        _cluster: &Cluster,
        _needed: Duration,
    ) -> Result<FakeCluster, CallError> {
        Ok(self.0.clone())
    }

    async fn forget(&self, _cluster: &str) {}
}

struct Setup {
    rollout: Rollout<FakeConnect>,
    cluster: FakeCluster,
    audit: Arc<Mutex<Vec<String>>>,
}

async fn setup() -> Setup {
    let sdk = Moto::shared().sdk_config().await;
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let config = RolloutConfig::from_env(Env::from_map([
        (
            "ROLLOUT_CLUSTERS",
            r#"{"clusters": [{"name": "prod", "kubeconfig": "unused", "namespaces": ["shop"]}]}"#,
        ),
        ("STATE_TABLE_NAME", table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("ROLLOUT_POLL_SECONDS", "1"),
    ]))
    .unwrap();
    let (reporter, audit) = Reporter::in_memory("k8s-rollout");
    let cluster = FakeCluster::new();
    let state = StateTable::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    Setup {
        rollout: Rollout::new(FakeConnect(cluster.clone()), state, config, reporter),
        cluster,
        audit,
    }
}

async fn handle(s: &Setup, request_id: &str) -> Result<Value, FunctionError> {
    s.rollout
        .handle(lambda_event(
            event(RELEASE),
            request_id,
            Duration::from_secs(60),
        ))
        .await
}

fn web() -> WorkloadRef {
    WorkloadRef {
        cluster: "prod".into(),
        namespace: "shop".into(),
        name: "web".into(),
    }
}

/// The audit records of action `RollWorkload` with `outcome`, as JSON.
fn roll_records(s: &Setup, outcome: &str) -> Vec<Value> {
    s.audit
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["record"].clone())
        .filter(|r| r["action"] == "RollWorkload" && r["outcome"] == outcome)
        .collect()
}

async fn lease_held(s: &Setup) -> bool {
    s.rollout
        .guards
        .read_lease(&workload_lease(&web()))
        .await
        .unwrap()
        .is_some()
}

/// A 409 whose re-plan finds the workload paused: skipped for good (the claim completed), the lock
/// released, nothing rolled.
#[tokio::test]
async fn fault_api_a_conflict_whose_replan_finds_the_workload_paused_is_a_skip() {
    let s = setup().await;
    s.cluster
        .with(|c| c.conflicts.push(Box::new(|v| v.paused = true)));
    let r = handle(&s, "paused").await.unwrap();
    assert_eq!(outcomes(&r)["web"], "skipped:paused", "{r:#}");
    assert_eq!(s.cluster.with(|c| c.patches), 1);
    assert!(!lease_held(&s).await, "the lock is released");
    let skipped = roll_records(&s, "skipped");
    assert!(
        skipped.iter().any(|r| r.to_string().contains("paused")),
        "{skipped:?}"
    );
    assert!(roll_records(&s, "applied").is_empty());
    // Unpaused later: the push was handled (its claim completed with the skip).
    s.cluster.with(|c| c.web.paused = false);
    let again = handle(&s, "paused-again").await.unwrap();
    assert_eq!(outcomes(&again)["web"], "skipped:duplicate", "{again:#}");
    assert_eq!(s.cluster.with(|c| c.patches), 1);
}

/// A 409 whose re-plan finds a rollout in progress: `RolloutInProgress` (retryable), the claim
/// and the lock given back, and the redelivery rolls once that rollout is done.
#[tokio::test]
async fn fault_api_a_conflict_whose_replan_finds_a_rollout_in_progress_comes_back() {
    let s = setup().await;
    s.cluster
        .with(|c| c.conflicts.push(Box::new(|v| v.generation += 1)));
    let e = handle(&s, "busy").await.unwrap_err();
    assert_eq!(e.error_type(), "Retryable.RolloutInProgress", "{e}");
    assert!(!lease_held(&s).await, "the lock is released");
    assert!(
        roll_records(&s, "skipped")
            .iter()
            .any(|r| r.to_string().contains("rollout_in_progress")),
        "the wait is audited"
    );
    // The other rollout ends; the delivery comes back and rolls.
    s.cluster
        .with(|c| c.web.observed_generation = c.web.generation);
    let r = handle(&s, "busy-retry").await.unwrap();
    assert_eq!(outcomes(&r)["web"], "rolled", "{r:#}");
    assert_eq!(
        s.cluster.image(),
        format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}")
    );
    assert!(!lease_held(&s).await, "released once verified");
    // The step audits the roll: its intent and what was done, with the image and the changes.
    let applied = roll_records(&s, "applied");
    assert_eq!(applied.len(), 1, "{applied:?}");
    let details = &applied[0]["details"];
    for key in ["intent", "done", "image", "changes"] {
        assert!(!details[key].is_null(), "{key} in {details}");
    }
}

/// A patch applied with its answer lost, then the image changed by hand: the takeover finds the
/// push rolled out here and the workload moved on since, and does not roll it again.
#[tokio::test]
async fn fault_api_a_lost_patch_superseded_by_hand_is_not_rolled_again() {
    let s = setup().await;
    s.cluster.with(|c| c.lose_next_answer = true);
    let e = handle(&s, "lost").await.unwrap_err();
    assert_eq!(e.class(), autonomic::ErrorClass::Retryable, "{e}");
    assert!(lease_held(&s).await, "kept for the takeover");
    let by_hand = format!("{REGISTRY}/autonomic-demo/web:1.3.1");
    s.cluster.with(|c| {
        c.web.containers[0].1 = by_hand.clone();
        bump(&mut c.web);
    });
    let r = handle(&s, "lost-retry").await.unwrap();
    assert_eq!(outcomes(&r)["web"], "skipped:superseded", "{r:#}");
    assert_eq!(s.cluster.image(), by_hand);
    assert_eq!(s.cluster.with(|c| c.patches), 1, "one patch");
    assert!(!lease_held(&s).await, "released");
}
