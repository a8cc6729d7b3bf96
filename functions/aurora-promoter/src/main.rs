use std::process::ExitCode;

fn main() -> ExitCode {
    autonomic::runtime::run(aurora_promoter::FUNCTION, aurora_promoter::init)
}
