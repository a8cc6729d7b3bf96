//! End-to-end tests and the demo. The library part holds what both use: starting a built function
//! binary under the Runtime API emulator with the emulator's AWS endpoint.

use autonomic_testkit::runtime_api::function_binary;
use autonomic_testkit::{FunctionProcess, Moto, RuntimeApi};

/// A function binary running under its own Runtime API emulator.
pub struct RunningFunction {
    pub api: RuntimeApi,
    pub process: FunctionProcess,
}

/// Starts the built binary `name` as Lambda would, pointed at `moto`, with `env` on top.
pub async fn start_function(name: &str, moto: &Moto, env: &[(&str, &str)]) -> RunningFunction {
    start_function_with(name, moto.env(), env).await
}

/// Starts the built binary `name` with the AWS environment `aws` (moto's, or a fault proxy's in
/// front of it), with `env` on top.
pub async fn start_function_with(
    name: &str,
    aws: Vec<(String, String)>,
    env: &[(&str, &str)],
) -> RunningFunction {
    let api = RuntimeApi::start(name).await;
    let mut vars = aws;
    vars.push((
        "AUTONOMIC_RECORD_OPERATIONS".into(),
        autonomic_testkit::operations_file(name)
            .display()
            .to_string(),
    ));
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let process = FunctionProcess::spawn(&function_binary(name), &api, name, &vars);
    RunningFunction { api, process }
}
