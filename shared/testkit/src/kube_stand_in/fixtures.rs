//! What tests set the stand-in up and read results with: Deployment manifests, the demo
//! workloads, the `ROLLOUT_CLUSTERS` document naming a stand-in, k8s-rollout's outcomes and a
//! Deployment's image.
//!
//! Separate from the server, which does not use them; re-exported from `kube_stand_in`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::KubeStandIn;

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
