use std::process::ExitCode;

fn main() -> ExitCode {
    autonomic::runtime::run(pipeline_trigger::FUNCTION, pipeline_trigger::init)
}
