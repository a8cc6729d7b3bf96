use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    autonomic::runtime::main(k8s_rollout::FUNCTION, k8s_rollout::init).await
}
