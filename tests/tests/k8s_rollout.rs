//! k8s-rollout end to end: the built binary under the Runtime API emulator, fed the ECR samples
//! in `events/`, against moto (state table, EKS DescribeCluster) and the test kit's Kubernetes API
//! stand-in (no API server can run here), which checks the binary's minted EKS token on every
//! request. The Deployments are asserted in the stand-in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;

use autonomic_e2e::start_function;
use autonomic_testkit::estate::{create_eks_cluster, publish_document};
use autonomic_testkit::kube_stand_in::{
    KubeStandIn, TokenCheck, eks_clusters_document, rollout_outcomes as outcomes, seed_demo,
};
use autonomic_testkit::{Moto, create_state_table, event, unique};

const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[tokio::test]
async fn ecr_pushes_roll_verify_and_roll_back_through_the_runtime_api() {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let cluster = unique("shop");
    create_eks_cluster(&sdk, &cluster).await;
    let kube = KubeStandIn::start(TokenCheck::EksPresigned {
        cluster: cluster.clone(),
    })
    .await;
    seed_demo(&kube);
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let clusters = eks_clusters_document(&kube, "shop", &cluster);
    // Read by reference from SSM, as infra/ deploys it.
    let clusters = publish_document(
        &sdk,
        &format!("/{table}/k8s-rollout/ROLLOUT_CLUSTERS"),
        &clusters,
    )
    .await;
    let f = start_function(
        "k8s-rollout",
        moto,
        &[
            ("ROLLOUT_CLUSTERS", clusters.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
            ("ROLLOUT_POLL_SECONDS", "1"),
        ],
    )
    .await;
    let invoke = |sample: &'static str| {
        let f = &f;
        // The function's timeout in infra/: a roll is started only with time to watch it.
        async move {
            f.api
                .invoke_within(event(sample).to_string().into_bytes(), TIMEOUT)
                .await
                .response()
                .clone()
        }
    };

    // A multi-arch push: the platform manifests and the attestation arrive untagged first.
    for sample in [
        "eventbridge-ecr-multiarch-1-amd64.json",
        "eventbridge-ecr-multiarch-2-arm64.json",
        "eventbridge-ecr-multiarch-3-attestation.json",
    ] {
        let r = invoke(sample).await;
        assert_eq!(r["skips"][0]["reason"], "untagged", "{sample}: {r:#}");
    }
    assert!(kube.patches().is_empty());

    // A release: the two opted-in Deployments roll, the Argo CD one is left to Argo CD.
    let r = invoke("eventbridge-ecr-image-push-release.json").await;
    let want: BTreeMap<String, String> = [
        ("web", "rolled"),
        ("web-canary", "rolled"),
        ("storefront", "skipped:gitops_managed"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(outcomes(&r), want, "{r:#}");
    let release = format!(
        "{REGISTRY}/autonomic-demo/web:1.4.0@sha256:1a4000b7c0ffee5a1e5e2b8d0f4c6e8a9b1d3f5e7a9c1e3b5d7f9a1c3e5b7d9f"
    );
    assert_eq!(kube.image("shop", "web"), release);
    assert_eq!(kube.image("shop", "web-canary"), release);
    assert_eq!(
        kube.image("shop", "storefront"),
        format!("{REGISTRY}/autonomic-demo/web:1.3.0")
    );
    assert!(
        kube.requests().iter().all(|r| r.authorized),
        "every request carried a valid token"
    );

    // Its duplicate delivery changes nothing.
    let patches = kube.patches().len();
    let r = invoke("eventbridge-ecr-image-push-release.json").await;
    assert_eq!(outcomes(&r)["web"], "skipped:duplicate", "{r:#}");
    assert_eq!(kube.patches().len(), patches);

    // The multi-arch index (1.5.0) is a bad image: both roll, fail their progress deadline and
    // go back to 1.4.0.
    kube.set_failing_image("ca0d460b0eaf");
    let r = invoke("eventbridge-ecr-multiarch-4-index.json").await;
    let o = outcomes(&r);
    assert_eq!(o["web"], "rolled_back", "{r:#}");
    assert_eq!(o["web-canary"], "rolled_back", "{r:#}");
    assert_eq!(kube.image("shop", "web"), release);
    assert_eq!(kube.image("shop", "web-canary"), release);

    // Other ECR events are skipped with their reason.
    for (sample, reason) in [
        ("eventbridge-ecr-image-delete.json", "not_a_push"),
        ("eventbridge-ecr-replication.json", "other_ecr_event"),
    ] {
        let r = invoke(sample).await;
        assert_eq!(r["skips"][0]["reason"], reason, "{sample}: {r:#}");
    }
    let bad = f
        .api
        .invoke_within(
            event("malformed-ecr-bad-digest.json")
                .to_string()
                .into_bytes(),
            TIMEOUT,
        )
        .await;
    assert!(
        matches!(&bad, autonomic_testkit::Invocation::Error { error_type, .. } if error_type == "Permanent.InvalidEvent"),
        "{bad:?}"
    );
}
