//! `kube-stand-in --kubeconfig PATH [--token TOKEN] [--seed-demo]`: runs the Kubernetes API
//! stand-in (see `autonomic_testkit::kube_stand_in`: no kube-apiserver can be installed on these
//! machines) with a fixed bearer token, writes a kubeconfig for kubectl and for k8s-rollout's
//! `kubeconfig` clusters, optionally seeds the demo workloads in namespace `shop`, and serves
//! until killed.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use autonomic_testkit::kube_stand_in::{KubeStandIn, TokenCheck, seed_demo};

const USAGE: &str = "usage: kube-stand-in --kubeconfig PATH [--token TOKEN] [--seed-demo]";

/// The token when none is given (the local emulator's kubeconfig uses it).
const DEFAULT_TOKEN: &str = "autonomic-local";

fn usage(problem: &str) -> ! {
    eprintln!("kube-stand-in: {problem}\n{USAGE}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut kubeconfig: Option<PathBuf> = None;
    let mut token = DEFAULT_TOKEN.to_string();
    let mut seed = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kubeconfig" => {
                let path = args
                    .next()
                    .unwrap_or_else(|| usage("--kubeconfig needs a path"));
                kubeconfig = Some(PathBuf::from(path));
            }
            "--token" => {
                token = args
                    .next()
                    .unwrap_or_else(|| usage("--token needs a value"));
            }
            "--seed-demo" => seed = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let kubeconfig = kubeconfig.unwrap_or_else(|| usage("--kubeconfig is required"));

    let stand_in = KubeStandIn::start(TokenCheck::Static(token.clone())).await;
    stand_in.write_kubeconfig(&kubeconfig, &token);
    if seed {
        seed_demo(&stand_in);
    }
    eprintln!(
        "kube stand-in ready on {}, kubeconfig {}",
        stand_in.endpoint(),
        kubeconfig.display()
    );
    // Serves from its own tasks; `stand_in` lives (and the server with it) until the process is
    // killed.
    std::future::pending::<()>().await;
    drop(stand_in);
}
