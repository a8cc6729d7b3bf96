use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    autonomic::runtime::main(cdn_invalidator::FUNCTION, cdn_invalidator::init).await
}
