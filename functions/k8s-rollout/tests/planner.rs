//! The planner's decisions on fixtures, and its invariants under proptest.

use std::collections::BTreeMap;

use k8s_rollout::planner::{
    self, Condition, Decision, Push, RolloutState, WorkloadRef, WorkloadView, decide, rollout_state,
};
use proptest::prelude::*;
use serde_json::json;

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const DIGEST: &str = "sha256:1a4000b7c0ffee5a1e5e2b8d0f4c6e8a9b1d3f5e7a9c1e3b5d7f9a1c3e5b7d9f";

fn push(tag: &str) -> Push {
    Push::new(
        "autonomic-demo/web",
        tag,
        DIGEST,
        "123456789012",
        "us-east-1",
    )
}

/// A complete Deployment `web` following the repository with `policy`, running `image`.
fn workload(policy: &str, image: &str) -> WorkloadView {
    let annotations = [
        ("autonomic.dev/image.web", "autonomic-demo/web"),
        ("autonomic.dev/policy.web", policy),
    ];
    WorkloadView {
        at: WorkloadRef {
            cluster: "prod".into(),
            namespace: "shop".into(),
            name: "web".into(),
        },
        resource_version: "41".into(),
        generation: 3,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        labels: BTreeMap::new(),
        containers: vec![
            ("sidecar".into(), "envoy:1.30".into()),
            ("web".into(), image.into()),
        ],
        paused: false,
        replicas: 2,
        observed_generation: 3,
        status_replicas: 2,
        updated_replicas: 2,
        available_replicas: 2,
        progressing: Some(Condition {
            status: "True".into(),
            reason: "NewReplicaSetAvailable".into(),
            message: String::new(),
        }),
        progress_deadline_seconds: 120,
    }
}

fn running(tag: &str) -> String {
    format!("{REGISTRY}/autonomic-demo/web:{tag}")
}

fn reason(d: &Decision) -> &str {
    match d {
        Decision::Skip(s) | Decision::Wait(s) => &s.reason,
        Decision::Roll(_) => "roll",
        Decision::NotFollowing => "not_following",
    }
}

#[test]
fn a_newer_version_rolls_the_following_container_pinned_to_the_digest() {
    let w = workload("semver:>=1.0.0", &running("1.3.0"));
    let Decision::Roll(roll) = decide(&push("1.4.0"), &w, &BTreeMap::new()) else {
        panic!("expected a roll")
    };
    assert_eq!(roll.changes.len(), 1, "the sidecar does not follow");
    let c = &roll.changes[0];
    assert_eq!((c.container.as_str(), c.index), ("web", 1));
    assert_eq!(c.from, running("1.3.0"));
    assert_eq!(
        c.to,
        format!("{REGISTRY}/autonomic-demo/web:1.4.0@{DIGEST}")
    );
    assert_eq!(roll.resource_version, "41");
    let patch = roll.patch(&push("1.4.0"));
    assert_eq!(patch["metadata"]["resourceVersion"], "41");
    assert_eq!(
        patch["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": c.to}])
    );
    assert_eq!(
        patch["metadata"]["annotations"]["autonomic.dev/previous-image.web"],
        json!(c.from)
    );
}

#[test]
fn semver_never_moves_down_or_sideways() {
    let w = workload("semver:>=1.0.0", &running("1.4.0"));
    assert_eq!(
        reason(&decide(&push("1.3.9"), &w, &BTreeMap::new())),
        "not_newer"
    );
    assert_eq!(
        reason(&decide(&push("v1.4.0"), &w, &BTreeMap::new())),
        "not_newer"
    );
    assert_eq!(
        reason(&decide(&push("1.4.1"), &w, &BTreeMap::new())),
        "roll"
    );
    // A tag outside the range, and a prerelease a plain range does not take.
    assert_eq!(
        reason(&decide(&push("latest"), &w, &BTreeMap::new())),
        "policy"
    );
    assert_eq!(
        reason(&decide(&push("1.5.0-rc1"), &w, &BTreeMap::new())),
        "policy"
    );
}

#[test]
fn exact_glob_and_regex_policies() {
    let w = workload("tag:latest", &running("latest"));
    assert_eq!(
        reason(&decide(&push("latest"), &w, &BTreeMap::new())),
        "roll",
        "a new digest of the same tag rolls"
    );
    assert_eq!(
        reason(&decide(&push("1.0.0"), &w, &BTreeMap::new())),
        "policy"
    );
    let w = workload("glob:*-rc*", &running("1.4.0-rc1"));
    assert_eq!(
        reason(&decide(&push("1.5.0-rc1"), &w, &BTreeMap::new())),
        "roll"
    );
    let w = workload(r"regex:\d+\.\d+\.\d+", &running("1.4.0"));
    assert_eq!(
        reason(&decide(&push("1.5.0-rc1"), &w, &BTreeMap::new())),
        "policy"
    );
}

#[test]
fn what_is_left_alone_and_why() {
    let p = push("1.4.0");
    let none = BTreeMap::new();
    let base = workload("semver:>=1.0.0", &running("1.3.0"));

    let mut w = base.clone();
    w.annotations.clear();
    assert_eq!(reason(&decide(&p, &w, &none)), "not_following");

    let mut w = base.clone();
    w.annotations
        .insert("autonomic.dev/image.web".into(), "other/repo".into());
    assert_eq!(reason(&decide(&p, &w, &none)), "not_following");

    let mut w = base.clone();
    w.annotations.remove("autonomic.dev/policy.web");
    assert_eq!(reason(&decide(&p, &w, &none)), "bad_annotation");

    let mut w = base.clone();
    w.annotations
        .insert("autonomic.dev/policy.web".into(), "semver:one".into());
    assert_eq!(reason(&decide(&p, &w, &none)), "bad_annotation");

    let mut w = base.clone();
    w.annotations.insert(
        "autonomic.dev/image.api".into(),
        "autonomic-demo/web".into(),
    );
    w.annotations
        .insert("autonomic.dev/policy.api".into(), "semver:*".into());
    let Decision::Roll(roll) = decide(&p, &w, &none) else {
        panic!()
    };
    assert_eq!(
        roll.changes.len(),
        1,
        "the missing container is not invented"
    );

    let mut w = base.clone();
    w.containers[1].1 = format!("{REGISTRY}/autonomic-demo/web:1.4.0@{DIGEST}");
    assert_eq!(reason(&decide(&p, &w, &none)), "already_running");

    let mut w = base.clone();
    w.paused = true;
    assert_eq!(reason(&decide(&p, &w, &none)), "paused");
    let mut w = base.clone();
    w.annotations
        .insert("autonomic.dev/paused".into(), "true".into());
    assert_eq!(reason(&decide(&p, &w, &none)), "paused");

    for (label, value) in [
        ("argocd.argoproj.io/instance", "shop"),
        ("kustomize.toolkit.fluxcd.io/name", "apps"),
        ("helm.toolkit.fluxcd.io/name", "web"),
    ] {
        let mut w = base.clone();
        w.labels.insert(label.into(), value.into());
        assert_eq!(reason(&decide(&p, &w, &none)), "gitops_managed", "{label}");
        w.annotations
            .insert("autonomic.dev/allow-gitops".into(), "true".into());
        assert_eq!(reason(&decide(&p, &w, &none)), "roll", "{label} allowed");
    }
    let mut w = base.clone();
    w.annotations.insert(
        "argocd.argoproj.io/tracking-id".into(),
        "shop:apps/Deployment:shop/web".into(),
    );
    assert_eq!(reason(&decide(&p, &w, &none)), "gitops_managed");

    let bad = BTreeMap::from([(
        DIGEST.to_string(),
        json!({"reason": "ProgressDeadlineExceeded"}),
    )]);
    assert_eq!(reason(&decide(&p, &base, &bad)), "rolled_back_before");

    let mut w = base.clone();
    w.generation = 4;
    assert_eq!(reason(&decide(&p, &w, &none)), "rollout_in_progress");
    assert!(
        matches!(decide(&p, &w, &none), Decision::Wait(_)),
        "in progress is not final"
    );
}

#[test]
fn rollout_state_reads_as_kubectl_rollout_status() {
    let done = workload("semver:*", &running("1.0.0"));
    assert_eq!(rollout_state(&done), RolloutState::Complete);
    let mut w = done.clone();
    w.observed_generation = 2;
    assert!(matches!(rollout_state(&w), RolloutState::Progressing(m) if m.contains("spec update")));
    let mut w = done.clone();
    w.updated_replicas = 1;
    assert!(
        matches!(rollout_state(&w), RolloutState::Progressing(m) if m.contains("1 of 2 new replicas"))
    );
    let mut w = done.clone();
    w.status_replicas = 3;
    assert!(
        matches!(rollout_state(&w), RolloutState::Progressing(m) if m.contains("old replicas"))
    );
    let mut w = done.clone();
    w.available_replicas = 1;
    assert!(matches!(rollout_state(&w), RolloutState::Progressing(m) if m.contains("available")));
    let mut w = done;
    w.updated_replicas = 1;
    w.progressing = Some(Condition {
        status: "False".into(),
        reason: "ProgressDeadlineExceeded".into(),
        message: "ReplicaSet \"web-7d\" has timed out progressing.".into(),
    });
    assert!(
        matches!(rollout_state(&w), RolloutState::Failed(m) if m.contains("progress deadline"))
    );
}

#[test]
fn the_rollback_patch_only_undoes_our_own_change() {
    let w = workload("semver:*", &running("1.3.0"));
    let Decision::Roll(roll) = decide(&push("1.4.0"), &w, &BTreeMap::new()) else {
        panic!()
    };
    let ops = roll.rollback_patch("exceeded its progress deadline");
    assert_eq!(
        ops[0],
        json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "web"})
    );
    assert_eq!(ops[1]["op"], "test");
    assert_eq!(ops[1]["value"], json!(roll.changes[0].to));
    assert_eq!(
        ops[2],
        json!({"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": running("1.3.0")})
    );
    assert_eq!(
        ops[3]["path"],
        "/metadata/annotations/kubernetes.io~1change-cause"
    );
}

#[test]
fn images_split_into_name_tag_and_digest() {
    assert_eq!(
        planner::split_image("localhost:5000/web:1.2@sha256:ab"),
        ("localhost:5000/web", Some("1.2"), Some("sha256:ab"))
    );
    assert_eq!(
        planner::split_image("localhost:5000/web"),
        ("localhost:5000/web", None, None)
    );
    assert_eq!(
        planner::split_image("web@sha256:ab"),
        ("web", None, Some("sha256:ab"))
    );
    assert_eq!(
        planner::split_image("nginx:1.27"),
        ("nginx", Some("1.27"), None)
    );
}

fn version() -> impl Strategy<Value = (u64, u64, u64)> {
    (0u64..4, 0u64..4, 0u64..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Under semver, a roll only ever moves a container to a higher version, pinned to the
    /// pushed digest; a digest rolled back before is never applied again.
    #[test]
    fn semver_rolls_only_up_and_never_a_bad_digest(
        current in version(),
        pushed in version(),
        bad in any::<bool>(),
        in_progress in any::<bool>(),
    ) {
        let mut w = workload("semver:*", &running(&format!("{}.{}.{}", current.0, current.1, current.2)));
        if in_progress {
            w.generation += 1;
        }
        let tag = format!("{}.{}.{}", pushed.0, pushed.1, pushed.2);
        let bad_digests = if bad {
            BTreeMap::from([(DIGEST.to_string(), json!("rolled back"))])
        } else {
            BTreeMap::new()
        };
        match decide(&push(&tag), &w, &bad_digests) {
            Decision::Roll(roll) => {
                prop_assert!(!bad);
                prop_assert!(!in_progress);
                prop_assert!(pushed > current);
                let pinned = format!("@{DIGEST}");
                for c in &roll.changes {
                    prop_assert!(c.to.ends_with(&pinned));
                    prop_assert_eq!(&c.container, "web");
                }
            }
            Decision::Wait(_) => prop_assert!(in_progress && !bad && pushed > current),
            Decision::Skip(s) => prop_assert!(bad || pushed <= current, "{:?}", s),
            Decision::NotFollowing => prop_assert!(false, "it follows"),
        }
    }
}

#[test]
fn a_push_older_than_the_newest_rolled_is_skipped() {
    let at = WorkloadRef {
        cluster: "prod".into(),
        namespace: "shop".into(),
        name: "web".into(),
    };
    let p = push("main-aaa").at(1_000_000);
    assert!(planner::older_push(&p, &at, None).is_none());
    assert!(
        planner::older_push(&p, &at, Some(1_000_000)).is_none(),
        "the same push passes"
    );
    let skip = planner::older_push(&p, &at, Some(1_090_000)).unwrap();
    assert_eq!(skip.reason, "older_push");
    assert!(skip.detail.contains("90 s later"), "{}", skip.detail);
}
