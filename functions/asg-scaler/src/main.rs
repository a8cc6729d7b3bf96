use std::process::ExitCode;

fn main() -> ExitCode {
    autonomic::runtime::run(asg_scaler::FUNCTION, asg_scaler::init)
}
