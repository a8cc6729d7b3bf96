//! The Kubernetes API stand-in against the real client people use, kubectl: discovery, get,
//! `set image` (a strategic merge patch), `rollout status` (a watch), a JSON patch whose `test`
//! fails. If kubectl speaks to it as to an API server, the stand-in speaks the API as clients
//! expect it. kubectl comes with the machine; without it the test says so and, on CI, fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use autonomic_testkit::kube_stand_in::{KubeStandIn, TokenCheck, seed_demo};
use autonomic_testkit::unique;
use serde_json::Value;

const TOKEN: &str = "kubectl-token";

fn kubectl_available() -> bool {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is not installed on this CI machine"
        );
        eprintln!("kubectl is not installed: the stand-in is not checked against it here");
    }
    found
}

async fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--request-timeout", "20s", "-n", "shop"])
        .args(args)
        .output()
        .await
        .expect("run kubectl")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Kube {
    stand_in: KubeStandIn,
    kubeconfig: PathBuf,
    cache: PathBuf,
}

async fn start() -> Kube {
    let stand_in = KubeStandIn::start(TokenCheck::Static(TOKEN.into())).await;
    seed_demo(&stand_in);
    let dir = std::env::temp_dir().join(unique("kubectl"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    stand_in.write_kubeconfig(&kubeconfig, TOKEN);
    Kube {
        stand_in,
        kubeconfig,
        cache: dir.join("cache"),
    }
}

#[tokio::test]
async fn kubectl_lists_patches_and_watches_a_rollout_through_the_stand_in() {
    if !kubectl_available() {
        return;
    }
    let k = start().await;
    let list = kubectl(
        &k.kubeconfig,
        &k.cache,
        &["get", "deployments", "-o", "json"],
    )
    .await;
    assert!(list.status.success(), "{}", text(&list));
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["storefront", "web", "web-canary", "worker"]);

    // `set image` sends a strategic merge patch; the simulated controller rolls it out.
    k.stand_in.set_rollout_delay(Duration::from_millis(1500));
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/autonomic-demo/web:1.4.0";
    let set = kubectl(
        &k.kubeconfig,
        &k.cache,
        &["set", "image", "deployment/web", &format!("web={image}")],
    )
    .await;
    assert!(set.status.success(), "{}", text(&set));
    let web = k.stand_in.deployment("shop", "web").unwrap();
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
    assert_eq!(web["metadata"]["generation"], 2);
    let status = kubectl(
        &k.kubeconfig,
        &k.cache,
        &["rollout", "status", "deployment/web", "--timeout=30s"],
    )
    .await;
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("successfully rolled out"),
        "{}",
        text(&status)
    );

    // A rollout that hits its progress deadline: rollout status fails as it would on a cluster.
    k.stand_in.set_rollout_delay(Duration::from_millis(200));
    k.stand_in.set_failing_image("broken");
    let set = kubectl(
        &k.kubeconfig,
        &k.cache,
        &[
            "set",
            "image",
            "deployment/web-canary",
            "web=registry.example/web:broken",
        ],
    )
    .await;
    assert!(set.status.success(), "{}", text(&set));
    let status = kubectl(
        &k.kubeconfig,
        &k.cache,
        &[
            "rollout",
            "status",
            "deployment/web-canary",
            "--timeout=30s",
        ],
    )
    .await;
    assert!(!status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("exceeded its progress deadline"),
        "{}",
        text(&status)
    );

    // A JSON patch whose `test` does not hold is refused (422) and changes nothing.
    let patch = r#"[{"op": "test", "path": "/spec/template/spec/containers/0/image", "value": "not-this"},
                    {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "other"}]"#;
    let refused = kubectl(
        &k.kubeconfig,
        &k.cache,
        &["patch", "deployment", "web", "--type=json", "-p", patch],
    )
    .await;
    assert!(!refused.status.success(), "{}", text(&refused));
    let web = k.stand_in.deployment("shop", "web").unwrap();
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        image
    );
}

#[tokio::test]
async fn kubectl_with_a_wrong_token_is_refused() {
    if !kubectl_available() {
        return;
    }
    let k = start().await;
    k.stand_in.write_kubeconfig(&k.kubeconfig, "wrong");
    let get = kubectl(&k.kubeconfig, &k.cache, &["get", "deployments"]).await;
    assert!(!get.status.success(), "{}", text(&get));
    assert!(
        text(&get).contains("Unauthorized") || text(&get).contains("provide credentials"),
        "{}",
        text(&get)
    );
}
