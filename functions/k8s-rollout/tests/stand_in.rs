//! The roller's handler with its real clients: DynamoDB and EKS `DescribeCluster` in moto, and
//! the Kubernetes API stand-in from the test kit (no real API server can run here) serving the
//! cluster over TLS from its own CA, checking the minted EKS token's form on every request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic::{ErrorClass, FunctionError};
use autonomic_testkit::estate::create_eks_cluster;
use autonomic_testkit::kube_stand_in::{
    KubeFault, KubeStandIn, TokenCheck, eks_clusters_document, rollout_outcomes, seed_demo,
};
use autonomic_testkit::{Moto, create_state_table, event, lambda_event, recording_client, unique};
use k8s_rollout::Rollout;
use k8s_rollout::config::RolloutConfig;
use k8s_rollout::connect::Connector;
use serde_json::Value;

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
/// The digest of events/eventbridge-ecr-image-push-release.json (1.4.0) and -retag (v1.4.0).
const RELEASE_DIGEST: &str =
    "sha256:1a4000b7c0ffee5a1e5e2b8d0f4c6e8a9b1d3f5e7a9c1e3b5d7f9a1c3e5b7d9f";

struct Setup {
    rollout: Arc<Rollout>,
    kube: KubeStandIn,
    table: StateTable,
    audit: Arc<Mutex<Vec<String>>>,
}

/// An EKS cluster in moto, served by a stand-in seeded with the demo workloads; `extra` env.
async fn setup_with(extra: &[(&str, &str)]) -> Setup {
    // moto's DescribeCluster gives a fake endpoint and random bytes as the CA: the stand-in's own
    // are given by configuration, as the document allows.
    setup_on(
        None,
        |kube, cluster| eks_clusters_document(kube, "prod", cluster),
        extra,
    )
    .await
}

/// The roller with its recording clients, a stand-in checking `token` (an EKS token's form when
/// `None`), and the clusters document `clusters(stand-in, EKS cluster name in moto)`.
async fn setup_on(
    token: Option<&str>,
    clusters: impl FnOnce(&KubeStandIn, &str) -> String,
    extra: &[(&str, &str)],
) -> Setup {
    let sdk = Moto::shared().sdk_config().await;
    let cluster = unique("prod");
    create_eks_cluster(&sdk, &cluster).await;
    let tokens = match token {
        Some(t) => TokenCheck::Static(t.into()),
        None => TokenCheck::EksPresigned {
            cluster: cluster.clone(),
        },
    };
    let kube = KubeStandIn::start(tokens).await;
    seed_demo(&kube);
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let clusters = clusters(&kube, &cluster);
    let mut env: Vec<(&str, &str)> = vec![
        ("ROLLOUT_CLUSTERS", clusters.as_str()),
        ("STATE_TABLE_NAME", table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("ROLLOUT_POLL_SECONDS", "1"),
    ];
    env.extend_from_slice(extra);
    let config = RolloutConfig::from_env(Env::from_map(env)).unwrap();
    let (reporter, audit) = Reporter::in_memory("k8s-rollout");
    let eks = BTreeMap::from([(
        "us-east-1".to_string(),
        recording_client!(aws_sdk_eks, &sdk, "k8s-rollout"),
    )]);
    let state = StateTable::new(
        recording_client!(aws_sdk_dynamodb, &sdk, "k8s-rollout"),
        table,
    );
    let rollout = Rollout::new(
        Connector::new(eks, sdk.credentials_provider()),
        state.clone(),
        config,
        reporter,
    );
    Setup {
        rollout: Arc::new(rollout),
        kube,
        table: state,
        audit,
    }
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

async fn handle(s: &Setup, sample: &str, request_id: &str) -> Result<Value, FunctionError> {
    handle_within(s, sample, request_id, Duration::from_secs(120)).await
}

async fn handle_within(
    s: &Setup,
    sample: &str,
    request_id: &str,
    deadline: Duration,
) -> Result<Value, FunctionError> {
    s.rollout
        .handle(lambda_event(event(sample), request_id, deadline))
        .await
}

fn outcomes(r: &Value) -> BTreeMap<String, String> {
    rollout_outcomes(r)
}

fn image(s: &Setup, name: &str) -> String {
    s.kube.image("shop", name)
}

fn real_patches(s: &Setup) -> usize {
    s.kube
        .patches()
        .iter()
        .filter(|p| !p.query.contains("dryRun"))
        .count()
}

fn outcomes_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_release_push_rolls_the_opted_in_deployments_pinned_and_skips_the_gitops_one() {
    let s = setup().await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "r1")
        .await
        .unwrap();
    assert_eq!(
        outcomes(&r),
        outcomes_map(&[
            ("web", "rolled"),
            ("web-canary", "rolled"),
            ("storefront", "skipped:gitops_managed"),
        ]),
        "{r:#}"
    );
    let pinned = format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}");
    assert_eq!(image(&s, "web"), pinned);
    assert_eq!(image(&s, "web-canary"), pinned);
    assert_eq!(
        image(&s, "storefront"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    assert_eq!(
        image(&s, "worker"),
        format!("{REGISTRY}/autonomic-demo/worker:2.0.0")
    );
    let web = s.kube.deployment("shop", "web").unwrap();
    assert_eq!(
        web["metadata"]["annotations"]["autonomic.dev/previous-image.web"],
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    // Every request carried a token minted from the credentials, accepted by its form.
    assert!(s.kube.requests().iter().all(|r| r.authorized));
    let patches = s.kube.patches();
    assert_eq!(patches.len(), 2);
    assert!(
        patches
            .iter()
            .all(|p| p.content_type.as_deref() == Some("application/strategic-merge-patch+json"))
    );
    assert!(
        patches
            .iter()
            .all(|p| p.body.contains("\"resourceVersion\"")),
        "optimistic concurrency"
    );

    // The same push again (a duplicate delivery), and the same digest under another tag.
    let again = handle(&s, "eventbridge-ecr-image-push-release.json", "r2")
        .await
        .unwrap();
    assert_eq!(outcomes(&again)["web"], "skipped:duplicate", "{again:#}");
    let retag = handle(&s, "eventbridge-ecr-image-push-retag.json", "r3")
        .await
        .unwrap();
    assert_eq!(
        outcomes(&retag)["web"],
        "skipped:already_running",
        "{retag:#}"
    );
    assert_eq!(real_patches(&s), 2, "nothing was patched twice");
    // Someone sets the old images back by hand; a late redelivery of the push does not undo that:
    // the claim remembers the push was rolled out.
    seed_demo(&s.kube);
    let late = handle(&s, "eventbridge-ecr-image-push-release.json", "r4")
        .await
        .unwrap();
    assert_eq!(outcomes(&late)["web"], "skipped:duplicate", "{late:#}");
    assert_eq!(
        outcomes(&late)["web-canary"],
        "skipped:duplicate",
        "{late:#}"
    );
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    assert_eq!(real_patches(&s), 2);
}

#[tokio::test]
async fn a_release_candidate_rolls_only_the_canary() {
    let s = setup().await;
    let r = handle(&s, "eventbridge-ecr-image-push-rc.json", "rc")
        .await
        .unwrap();
    assert_eq!(
        outcomes(&r),
        outcomes_map(&[
            ("web", "skipped:policy"),
            ("web-canary", "rolled"),
            ("storefront", "skipped:gitops_managed"),
        ]),
        "{r:#}"
    );
}

#[tokio::test]
async fn a_rollout_that_exceeds_its_progress_deadline_is_rolled_back_and_never_reapplied() {
    let s = setup().await;
    s.kube.set_failing_image(&RELEASE_DIGEST[7..20]);
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "bad")
        .await
        .unwrap();
    let o = outcomes(&r);
    assert_eq!(o["web"], "rolled_back", "{r:#}");
    assert_eq!(o["web-canary"], "rolled_back", "{r:#}");
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    let rollback = s
        .kube
        .patches()
        .into_iter()
        .find(|p| p.content_type.as_deref() == Some("application/json-patch+json"))
        .unwrap();
    assert!(
        rollback.body.contains("\"test\""),
        "the rollback tests the image it undoes"
    );
    // The digest is recorded as bad on each workload.
    let bad = s
        .table
        .registry("k8s-rollout-bad#prod/shop/web")
        .await
        .unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, RELEASE_DIGEST);
    let audit = s.audit.lock().unwrap().join("\n");
    assert!(audit.contains("RollBackWorkload"), "{audit}");
    assert!(audit.contains("rollout_failed"), "{audit}");

    // The same digest pushed under another tag, with the controller healthy again: never re-applied.
    s.kube.set_failing_image("");
    let retag = handle(&s, "eventbridge-ecr-image-push-retag.json", "retag")
        .await
        .unwrap();
    assert_eq!(
        outcomes(&retag)["web"],
        "skipped:rolled_back_before",
        "{retag:#}"
    );
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
}

#[tokio::test]
async fn a_conflict_is_read_again_and_the_roll_made_on_the_new_version() {
    let s = setup().await;
    s.kube.conflict_next_patches(1);
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "c1")
        .await
        .unwrap();
    let o = outcomes(&r);
    assert_eq!(o["web"], "rolled", "{r:#}");
    assert_eq!(o["web-canary"], "rolled", "{r:#}");
    // Three patches: one refused with 409, then its retry on the new version, then the other.
    assert_eq!(real_patches(&s), 3);
    let web = s.kube.deployment("shop", "web").unwrap();
    assert!(
        web["metadata"]["annotations"]["stand-in/other-writer"].is_string() || {
            let canary = s.kube.deployment("shop", "web-canary").unwrap();
            canary["metadata"]["annotations"]["stand-in/other-writer"].is_string()
        },
        "the other writer's change is kept"
    );
}

#[tokio::test]
async fn dry_run_asks_the_api_server_and_changes_nothing() {
    let s = setup_with(&[("DRY_RUN", "true")]).await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "dry")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "would_roll", "{r:#}");
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    let patches = s.kube.patches();
    assert_eq!(patches.len(), 2);
    assert!(
        patches.iter().all(|p| p.query.contains("dryRun=All")),
        "{patches:?}"
    );
    assert_eq!(real_patches(&s), 0);
}

#[tokio::test]
async fn a_rollout_longer_than_the_window_is_reported_unverified_never_rolled() {
    let s = setup_with(&[("ROLLOUT_VERIFY_SECONDS", "10")]).await;
    s.kube.set_rollout_delay(Duration::from_secs(600));
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "slow")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "unverified", "{r:#}");
    let line = r["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["workload"].as_str().unwrap().ends_with("/web"))
        .unwrap();
    assert_eq!(line["verified"], false);
    assert!(
        line["last"]
            .as_str()
            .unwrap()
            .contains("progressDeadlineSeconds"),
        "{line}"
    );
    assert!(
        s.audit
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("unverified"))
    );
}

/// A watch that the invocation's deadline cuts short is not a result: the claim stays with the
/// roll as its intent, and the retry watches on and concludes.
#[tokio::test]
async fn a_watch_cut_short_by_the_deadline_is_finished_by_the_retry() {
    let s = setup().await;
    s.kube.set_rollout_delay(Duration::from_secs(9));
    // 35 s to the deadline: the watch ends 27 s before it, with the rollout still going.
    let e = handle_within(
        &s,
        "eventbridge-ecr-image-push-release.json",
        "short",
        Duration::from_secs(35),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.DeadlineNear", "{e}");
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "short-retry")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "rolled", "{r:#}");
    assert_eq!(outcomes(&r)["web-canary"], "rolled", "{r:#}");
    assert_eq!(real_patches(&s), 2, "verified, not patched again");
}

/// A push whose workload is still rolling out (someone else's change) waits for that rollout
/// within its invocation, then rolls.
#[tokio::test]
async fn a_push_meeting_a_rollout_in_progress_waits_for_it_then_rolls() {
    let s = setup().await;
    // Someone else starts a rollout of web (as kubectl would), which takes 3 s.
    let by_hand = roll_web_by_hand(&s, Duration::from_secs(3)).await;
    // The release arrives meanwhile: web waits for that rollout, then rolls and is verified.
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "wait")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "rolled", "{r:#}");
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}")
    );
    let web = s.kube.deployment("shop", "web").unwrap();
    assert_eq!(
        web["metadata"]["annotations"]["autonomic.dev/previous-image.web"],
        by_hand
    );
}

/// A dry run that meets a rollout in progress still answers, with what it would roll everywhere
/// else, instead of failing the whole invocation as `RolloutInProgress`.
#[tokio::test]
async fn a_dry_run_meeting_a_rollout_in_progress_reports_the_rest_of_its_plan() {
    let s = setup_with(&[("DRY_RUN", "true"), ("ROLLOUT_VERIFY_SECONDS", "10")]).await;
    roll_web_by_hand(&s, Duration::from_secs(600)).await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "dry-wait")
        .await
        .unwrap();
    let got = outcomes(&r);
    assert_eq!(got["web"], "would_wait:rollout_in_progress", "{r:#}");
    assert!(
        got.values().any(|o| o == "would_roll"),
        "the other workloads' plans are there: {r:#}"
    );
    assert_eq!(real_patches(&s), 1, "only the patch made by hand");
}

/// Someone else changes web's image, as `kubectl set image` would, starting a rollout that takes
/// `delay`; the image set.
async fn roll_web_by_hand(s: &Setup, delay: Duration) -> String {
    use aws_credential_types::Credentials;
    s.kube.set_rollout_delay(delay);
    let token = k8s_rollout::token::mint(
        Credentials::new("AKID", "secret", None, None, "test"),
        "us-east-1",
        "prod",
        std::time::SystemTime::now(),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(unique("someone"));
    std::fs::create_dir_all(&dir).unwrap();
    s.kube.write_kubeconfig(&dir.join("config"), &token);
    let someone = k8s_rollout::connect::Connector::new(BTreeMap::new(), None);
    let cluster = k8s_rollout::clusters::Clusters::parse(&format!(
        r#"{{"clusters": [{{"name": "prod", "kubeconfig": "{}", "namespaces": ["shop"]}}]}}"#,
        dir.join("config").display()
    ))
    .unwrap();
    let w = someone
        .workloads(&cluster.clusters[0], Duration::from_secs(60))
        .await
        .unwrap();
    let at = k8s_rollout::planner::WorkloadRef {
        cluster: "prod".into(),
        namespace: "shop".into(),
        name: "web".into(),
    };
    let by_hand = format!("{REGISTRY}/autonomic-demo/web:1.3.1");
    w.patch_strategic(&at, &serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": by_hand}]}}}}), false)
        .await
        .unwrap();
    by_hand
}

#[tokio::test]
async fn a_refused_token_is_a_retryable_unauthorized_and_nothing_is_rolled() {
    let s = setup_on(
        Some("not-what-is-minted"),
        |kube, cluster| eks_clusters_document(kube, "prod", cluster),
        &[],
    )
    .await;
    let e = handle(&s, "eventbridge-ecr-image-push-release.json", "u")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.Unauthorized", "{e}");
    assert!(s.kube.patches().is_empty());
}

#[tokio::test]
async fn a_cluster_from_a_kubeconfig_file() {
    let s = setup_on(
        Some("local-token"),
        |kube, _| {
            let dir = std::env::temp_dir().join(unique("kubeconfig"));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("config");
            kube.write_kubeconfig(&path, "local-token");
            format!(
                r#"{{"clusters": [{{"name": "local", "kubeconfig": "{}", "namespaces": ["shop"]}}]}}"#,
                path.display()
            )
        },
        &[],
    )
    .await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "k")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "rolled", "{r:#}");
}

#[tokio::test]
async fn a_patch_whose_answer_was_lost_is_verified_on_the_retry_not_made_again() {
    let s = setup().await;
    // The first patch (web's) is applied, then its answer is lost.
    s.kube.fail_next("PATCH", KubeFault::ErrorAfter(500), 1);
    let e = handle(&s, "eventbridge-ecr-image-push-release.json", "lost-1")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
    let pinned = format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}");
    assert_eq!(image(&s, "web"), pinned, "the lost patch took effect");
    // The delivery comes back: the interrupted roll is verified, not made again.
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "lost-2")
        .await
        .unwrap();
    let o = outcomes(&r);
    assert_eq!(o["web"], "rolled", "{r:#}");
    assert_eq!(o["web-canary"], "skipped:duplicate", "{r:#}");
    assert_eq!(real_patches(&s), 2, "one patch per workload");
}

#[tokio::test]
async fn a_patch_refused_before_acting_leaves_nothing_held() {
    let s = setup().await;
    s.kube.fail_next("PATCH", KubeFault::ErrorBefore(503), 2);
    let e = handle(&s, "eventbridge-ecr-image-push-release.json", "down-1")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "down-2")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "rolled", "{r:#}");
    assert_eq!(outcomes(&r)["web-canary"], "rolled", "{r:#}");
}

/// Two deliveries of the same push at once (an EventBridge retry racing the first attempt):
/// each workload is patched once; a delivery that meets the other's claim fails retryably and,
/// delivered again, finds the work done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_patch_each_workload_once() {
    let s = setup().await;
    s.kube.set_rollout_delay(Duration::from_millis(1500));
    let (a, b) = tokio::join!(
        handle(&s, "eventbridge-ecr-image-push-release.json", "race-a"),
        handle(&s, "eventbridge-ecr-image-push-release.json", "race-b"),
    );
    for r in [&a, &b] {
        if let Err(e) = r {
            assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
        }
    }
    let mut last = None;
    for attempt in 0..10 {
        match handle(
            &s,
            "eventbridge-ecr-image-push-release.json",
            &format!("race-retry-{attempt}"),
        )
        .await
        {
            Ok(r) => {
                last = Some(r);
                break;
            }
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let last = last.expect("handled within ten deliveries");
    let o = outcomes(&last);
    for w in ["web", "web-canary"] {
        assert!(o[w] == "skipped:duplicate" || o[w] == "rolled", "{last:#}");
    }
    let pinned = format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}");
    assert_eq!(image(&s, "web"), pinned);
    assert_eq!(image(&s, "web-canary"), pinned);
    assert_eq!(real_patches(&s), 2, "one patch per workload");
}

#[tokio::test]
async fn a_rollback_that_failed_is_made_by_the_retry() {
    let s = setup().await;
    s.kube.set_failing_image(&RELEASE_DIGEST[7..20]);
    // Both rollbacks are refused (the API server unavailable) the first time.
    s.kube
        .fail_next("PATCH json-patch", KubeFault::ErrorBefore(503), 2);
    let e = handle(&s, "eventbridge-ecr-image-push-release.json", "rb-1")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Retryable, "{e}");
    let pinned = format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}");
    assert_eq!(image(&s, "web"), pinned, "still on the bad image");
    // The delivery comes back: the bad image is found, verified failed again, and rolled back.
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "rb-2")
        .await
        .unwrap();
    let o = outcomes(&r);
    assert_eq!(o["web"], "rolled_back", "{r:#}");
    assert_eq!(o["web-canary"], "rolled_back", "{r:#}");
    assert_eq!(
        image(&s, "web"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    // And once more: nothing left to do.
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "rb-3")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web"], "skipped:rolled_back_before", "{r:#}");
}

/// Under a policy without an order (the canary's regex), a push made earlier than one already
/// rolled out, delivered late, does not put the older image back.
#[tokio::test]
async fn a_late_delivery_of_an_older_push_never_overwrites_a_newer_one() {
    let s = setup().await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "new")
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web-canary"], "rolled", "{r:#}");
    let mut older = event("eventbridge-ecr-image-push-rc.json");
    older["time"] = serde_json::json!("2026-11-27T13:00:00Z");
    let r = s
        .rollout
        .handle(lambda_event(older, "old", Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(outcomes(&r)["web-canary"], "skipped:older_push", "{r:#}");
    assert_eq!(
        image(&s, "web-canary"),
        format!("{REGISTRY}/autonomic-demo/web:1.4.0@{RELEASE_DIGEST}")
    );
}
