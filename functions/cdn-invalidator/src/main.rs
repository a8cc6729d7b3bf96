use std::process::ExitCode;

fn main() -> ExitCode {
    autonomic::runtime::run(cdn_invalidator::FUNCTION, cdn_invalidator::init)
}
