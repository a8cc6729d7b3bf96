use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    autonomic::runtime::main(pipeline_trigger::FUNCTION, pipeline_trigger::init).await
}
