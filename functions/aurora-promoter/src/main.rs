use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    autonomic::runtime::main(aurora_promoter::FUNCTION, aurora_promoter::init).await
}
