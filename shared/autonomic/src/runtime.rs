//! The process around a handler: under Lambda, the Runtime API loop; outside Lambda,
//! `<binary> --event PATH` runs the same handler once on a file.
//!
//! Local contract: the response JSON goes to stdout and the exit code is 0 when the event was
//! handled (a skip included); when the event is rejected or an action fails, the error goes to
//! stderr as `{"errorType", "errorMessage"}` and the exit code is 1. Logs go to stderr, so stdout
//! stays machine-readable. A bad configuration fails start-up in both modes, before any event.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Context, Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::audit::Sink;
use crate::cold_start;
use crate::error::FunctionError;

/// A function's event handler, built once per container.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        event: LambdaEvent<Value>,
    ) -> impl Future<Output = Result<Value, FunctionError>> + Send;
}

/// How the process was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Under Lambda (or an emulator of its Runtime API).
    Lambda,
    /// `--event PATH`: one event from a file.
    Local { event: PathBuf },
}

impl Mode {
    /// `--event PATH` wins; otherwise `AWS_LAMBDA_RUNTIME_API` must be set.
    pub fn detect(args: &[String], runtime_api: Option<&str>) -> Result<Mode, String> {
        match args {
            [_, flag, path] if flag == "--event" => Ok(Mode::Local {
                event: PathBuf::from(path),
            }),
            [_] if runtime_api.is_some_and(|v| !v.is_empty()) => Ok(Mode::Lambda),
            [_] => Err("not running under Lambda (AWS_LAMBDA_RUNTIME_API is not set)".into()),
            _ => Err(format!(
                "unexpected arguments: {:?}",
                args.get(1..).unwrap_or_default()
            )),
        }
    }

    /// Where audit records and metrics go in this mode.
    pub fn sink(&self) -> Sink {
        match self {
            Mode::Lambda => Sink::Stdout,
            Mode::Local { .. } => Sink::Stderr,
        }
    }
}

/// A function binary's `main`: builds the Tokio runtime, then runs [`main`] on it.
///
/// One thread: Lambda hands a process one event at a time, and below 1,769 MB of memory a
/// function has less than one vCPU, so worker threads would only add start-up time and memory.
/// Tasks the handler spawns still run concurrently, I/O included.
pub fn run<H, F>(function: &'static str, init: impl FnOnce(Sink) -> F) -> ExitCode
where
    H: Handler,
    F: Future<Output = Result<H, FunctionError>>,
{
    cold_start::begin();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{function}: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    cold_start::phase("tokio");
    runtime.block_on(main(function, init))
}

/// Runs a function: detect the mode, start logging, build the handler (config and clients, once),
/// then serve events. `init` gets the sink for audit records and metrics.
pub async fn main<H, F>(function: &'static str, init: impl FnOnce(Sink) -> F) -> ExitCode
where
    H: Handler,
    F: Future<Output = Result<H, FunctionError>>,
{
    let args: Vec<String> = std::env::args().collect();
    let runtime_api = std::env::var("AWS_LAMBDA_RUNTIME_API").ok();
    let mode = match Mode::detect(&args, runtime_api.as_deref()) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("{function}: {e}\nusage: {function} --event PATH   (outside Lambda)");
            return ExitCode::from(2);
        }
    };
    match mode {
        Mode::Lambda => crate::logging::init(std::io::stdout),
        Mode::Local { .. } => crate::logging::init(std::io::stderr),
    }

    cold_start::phase("logging");
    let handler = match init(mode.sink()).await {
        Ok(h) => {
            cold_start::ready(function);
            Arc::new(h)
        }
        Err(e) => {
            tracing::error!(error_type = %e.error_type(), error = %e, "cold start failed");
            if mode == Mode::Lambda {
                report_init_error(&e).await;
            } else {
                print_error(&e.into());
            }
            return ExitCode::FAILURE;
        }
    };

    match mode {
        Mode::Lambda => {
            let service = service_fn(move |event: LambdaEvent<Value>| {
                let handler = handler.clone();
                async move { handler.handle(event).await }
            });
            match lambda_runtime::run(service).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "runtime loop ended");
                    ExitCode::FAILURE
                }
            }
        }
        Mode::Local { event } => run_local(function, handler.as_ref(), &event).await,
    }
}

/// How long a local invocation may take; the deadline guards (idempotency expiry) use it.
const LOCAL_DEADLINE: Duration = Duration::from_secs(60);

async fn run_local<H: Handler>(function: &str, handler: &H, path: &PathBuf) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            print_error(&Diagnostic {
                error_type: "Permanent.InvalidEvent".into(),
                error_message: format!("cannot read {}: {e}", path.display()),
            });
            return ExitCode::FAILURE;
        }
    };
    let payload: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            print_error(&Diagnostic {
                error_type: "Permanent.InvalidEvent".into(),
                error_message: format!("invalid event: {} is not valid JSON: {e}", path.display()),
            });
            return ExitCode::FAILURE;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut context = Context::default();
    context.request_id = format!("local-{}-{}", std::process::id(), now.as_nanos());
    context.deadline = (now + LOCAL_DEADLINE).as_millis() as u64;
    context.invoked_function_arn = format!("arn:aws:lambda:local:000000000000:function:{function}");
    let span = tracing::info_span!("Lambda runtime invoke", requestId = %context.request_id);
    match handler
        .handle(LambdaEvent::new(payload, context))
        .instrument(span)
        .await
    {
        Ok(response) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&response).unwrap_or_else(|_| response.to_string())
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_error(&e.into());
            ExitCode::FAILURE
        }
    }
}

fn print_error(d: &Diagnostic) {
    eprintln!(
        "{}",
        json!({"errorType": d.error_type, "errorMessage": d.error_message})
    );
}

/// Tells Lambda why the cold start failed (`/runtime/init/error`), so the invoke error names the
/// configuration problems instead of a bare exit code.
async fn report_init_error(e: &FunctionError) {
    use lambda_runtime_api_client::body::Body;
    let client = lambda_runtime_api_client::PooledClient::builder().build();
    let body = json!({"errorType": e.error_type(), "errorMessage": e.to_string()}).to_string();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", e.error_type())
        .header("Content-Type", "application/json")
        .body(Body::from(body));
    match request {
        Ok(request) => {
            if let Err(err) = client.call(request).await {
                tracing::error!(error = %err, "could not report the init error");
            }
        }
        Err(err) => tracing::error!(error = %err, "could not build the init error request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_the_mode() {
        assert_eq!(
            Mode::detect(&args(&["f", "--event", "e.json"]), None),
            Ok(Mode::Local {
                event: "e.json".into()
            })
        );
        assert_eq!(
            Mode::detect(&args(&["f"]), Some("127.0.0.1:9001")),
            Ok(Mode::Lambda)
        );
        assert!(Mode::detect(&args(&["f"]), None).is_err());
        assert!(Mode::detect(&args(&["f", "--evnt", "x"]), Some("a")).is_err());
    }
}
