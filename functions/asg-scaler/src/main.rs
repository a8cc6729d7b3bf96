use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    autonomic::runtime::main(asg_scaler::FUNCTION, asg_scaler::init).await
}
