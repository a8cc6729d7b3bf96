use std::process::ExitCode;

fn main() -> ExitCode {
    autonomic::runtime::run(k8s_rollout::FUNCTION, k8s_rollout::init)
}
