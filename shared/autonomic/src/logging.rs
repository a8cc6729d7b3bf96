//! Log setup: what the Lambda runtime's `init_default_subscriber` does, without its EnvFilter
//! (whose regex engine cost each zip about 0.1 MB).
//!
//! - Format: JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON` (Lambda's advanced logging
//!   controls), plain text otherwise; no timestamp (CloudWatch Logs adds one) and no target.
//! - Level: `AWS_LAMBDA_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) when set,
//!   else `RUST_LOG` as a level or `target=level` pairs (`info,asg_scaler=debug`), else `INFO`.
//!   `RUST_LOG`'s span and field filters are not supported; a value that cannot be read is
//!   reported on the first log line and `INFO` is used.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// The filter the environment asks for, and the reason when a value was not understood.
pub fn filter(lambda_log_level: Option<&str>, rust_log: Option<&str>) -> (Targets, Option<String>) {
    let default = Targets::new().with_default(LevelFilter::INFO);
    if let Some(level) = lambda_log_level.map(str::trim).filter(|l| !l.is_empty()) {
        // FATAL is Lambda's name for the most severe level; tracing has ERROR.
        let level = if level.eq_ignore_ascii_case("fatal") {
            "error"
        } else {
            level
        };
        return match LevelFilter::from_str(level) {
            Ok(level) => (Targets::new().with_default(level), None),
            Err(_) => (
                default,
                Some(format!(
                    "AWS_LAMBDA_LOG_LEVEL={level:?} is not a level; using INFO"
                )),
            ),
        };
    }
    match rust_log.map(str::trim).filter(|l| !l.is_empty()) {
        None => (default, None),
        // Span and field filters (`target[span]=debug`, `{field}`): Targets would read them as
        // target names that match nothing.
        Some(directives) if directives.contains(['[', '{']) => (
            default,
            Some(format!(
                "RUST_LOG={directives:?}: span and field filters are not supported; using INFO"
            )),
        ),
        Some(directives) => match Targets::from_str(directives) {
            Ok(targets) if targets.default_level().is_some() => (targets, None),
            Ok(targets) => (targets.with_default(LevelFilter::INFO), None),
            Err(_) => (
                default,
                Some(format!(
                    "RUST_LOG={directives:?} is not a level or target=level list; using INFO"
                )),
            ),
        },
    }
}

/// Installs the process's log subscriber, writing to `writer`. Once per process; a second call
/// (a test that set one up already) changes nothing.
pub fn init<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (targets, problem) = filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let format = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let installed = if json {
        tracing_subscriber::registry()
            .with(format.json().with_filter(targets))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(format.with_filter(targets))
            .try_init()
    };
    if let (Ok(()), Some(problem)) = (installed, problem) {
        tracing::warn!(problem, "log level");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(t: &Targets, target: &str, level: tracing::Level) -> bool {
        t.would_enable(target, &level)
    }

    #[test]
    fn lambda_log_level_wins_and_fatal_is_error() {
        let (t, problem) = filter(Some("DEBUG"), Some("error"));
        assert!(problem.is_none());
        assert!(allows(&t, "asg_scaler", tracing::Level::DEBUG));
        assert!(!allows(&t, "asg_scaler", tracing::Level::TRACE));
        let (t, _) = filter(Some("FATAL"), None);
        assert!(allows(&t, "x", tracing::Level::ERROR));
        assert!(!allows(&t, "x", tracing::Level::WARN));
    }

    #[test]
    fn rust_log_takes_levels_and_targets() {
        let (t, problem) = filter(None, Some("warn,asg_scaler=debug"));
        assert!(problem.is_none());
        assert!(allows(&t, "asg_scaler::handler", tracing::Level::DEBUG));
        assert!(!allows(&t, "aws_config", tracing::Level::INFO));
        // Targets only: the default stays INFO.
        let (t, _) = filter(None, Some("asg_scaler=trace"));
        assert!(allows(&t, "asg_scaler", tracing::Level::TRACE));
        assert!(allows(&t, "hyper", tracing::Level::INFO));
        assert!(!allows(&t, "hyper", tracing::Level::DEBUG));
    }

    #[test]
    fn unset_is_info_and_nonsense_is_reported() {
        let (t, problem) = filter(None, None);
        assert!(problem.is_none());
        assert!(allows(&t, "x", tracing::Level::INFO));
        assert!(!allows(&t, "x", tracing::Level::DEBUG));
        let (t, problem) = filter(Some("loud"), None);
        assert!(problem.unwrap().contains("AWS_LAMBDA_LOG_LEVEL"));
        assert!(allows(&t, "x", tracing::Level::INFO));
        let (_, problem) = filter(None, Some("a=b=c"));
        assert!(problem.unwrap().contains("RUST_LOG"));
        let (_, problem) = filter(None, Some("asg_scaler[invoke]=debug"));
        assert!(problem.unwrap().contains("span and field filters"));
    }
}
