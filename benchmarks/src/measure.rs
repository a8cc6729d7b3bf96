//! One run of one side: reset moto, seed the estate, start the process under a fresh Runtime API
//! emulator, and measure init, the first invocation, the warm invocations, CPU and memory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use autonomic_testkit::{FaultProxy, FunctionProcess, Moto, RuntimeApi};
use serde_json::Value;
use tokio::process::Command;

use crate::subjects::Subject;

/// Which implementation of a function runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// The function's binary (`<dir>/<function>`).
    Rust { dir: PathBuf },
    /// The Python peer (`benchmarks/python/<module>.py`) under awslambdaric, with this interpreter.
    Python { python: PathBuf },
}

impl Side {
    pub fn label(&self) -> &'static str {
        match self {
            Side::Rust { .. } => "Rust",
            Side::Python { .. } => "Python",
        }
    }

    fn start(
        &self,
        subject: &Subject,
        api: &RuntimeApi,
        env: &[(String, String)],
    ) -> FunctionProcess {
        let function = subject.function();
        match self {
            Side::Rust { dir } => {
                let binary = dir.join(function);
                assert!(binary.exists(), "{} is not built", binary.display());
                FunctionProcess::spawn(&binary, api, function, env)
            }
            Side::Python { python } => {
                let mut cmd = Command::new(python);
                cmd.args(["-m", "awslambdaric"])
                    .arg(format!("{}.handler", subject.python_module()))
                    .current_dir(python_dir());
                FunctionProcess::spawn_command(cmd, api, function, env)
            }
        }
    }
}

/// Where the Python peers are.
pub fn python_dir() -> PathBuf {
    autonomic_testkit::workspace_root().join("benchmarks/python")
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// Process start to the first `GET /next`.
    pub init: Duration,
    /// The first invocation, as billed: event handed out to answer posted.
    pub first: Duration,
    /// Each warm invocation after it.
    pub warm: Vec<Duration>,
    /// CPU time per warm invocation (all the process's threads).
    pub cpu_per_warm: Duration,
    /// CPU time of the first invocation.
    pub cpu_first: Duration,
    /// Peak resident memory at the end of the run, KiB.
    pub peak_rss_kib: u64,
    /// The function's own account of its cold start (`cold start phases`), when it logs one.
    pub phases: Vec<(String, u64)>,
    /// The function's own measure of its cold start, main to ready, µs.
    pub init_in_process_us: Option<u64>,
}

/// The AWS operations one side made: at init, then per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calls {
    pub init: Vec<String>,
    pub events: Vec<Vec<String>>,
}

/// Seeds a fresh estate, starts `side` with `aws` as its AWS environment (moto's, or a recording
/// proxy's) and hands it `events` events (at least one): the first, then the warm ones.
/// `after_each` is called after init and after each event.
async fn drive(
    subject: &Subject,
    side: &Side,
    moto: &Moto,
    aws: Vec<(String, String)>,
    events: usize,
    mut after_each: impl FnMut(),
) -> Result<Run, String> {
    moto.reset();
    let mut env = aws;
    env.extend(subject.seed(moto, events).await);
    let api = RuntimeApi::start(subject.function()).await;
    let process = side.start(subject, &api, &env);
    let init = wait_for_first_next(&api, &process).await?;
    after_each();
    let cpu = || process.cpu_time().unwrap_or_default();
    let cpu_at_init = cpu();
    let mut cpu_after_first = cpu_at_init;
    let mut durations = Vec::with_capacity(events);
    for n in 0..events {
        let body = subject.event(n).to_string().into_bytes();
        let (answer, took) = api.invoke_measured(body, Duration::from_secs(30)).await;
        if n == 0 {
            cpu_after_first = cpu();
        }
        if let Err(problem) = subject.check_answer(n, &answer) {
            return Err(format!(
                "{} {} event {n}: {problem}; stderr: {}",
                side.label(),
                subject.function(),
                process.stderr_lines().join("\n")
            ));
        }
        durations.push(took);
        after_each();
    }
    let warm_events = events.saturating_sub(1).max(1) as u32;
    let (phases, init_in_process_us) = cold_start_phases(&process.stdout_lines());
    Ok(Run {
        init,
        first: durations.first().copied().unwrap_or_default(),
        warm: durations.iter().skip(1).copied().collect(),
        cpu_first: cpu_after_first.saturating_sub(cpu_at_init),
        cpu_per_warm: cpu().saturating_sub(cpu_after_first) / warm_events,
        peak_rss_kib: process.peak_rss_kib().unwrap_or_default(),
        phases,
        init_in_process_us,
    })
}

/// One timed run, straight to moto.
pub async fn run(
    subject: &Subject,
    side: &Side,
    moto: &Moto,
    events: usize,
) -> Result<Run, String> {
    drive(subject, side, moto, moto.env(), events, || {}).await
}

/// One run through a recording proxy: the AWS operations `side` made, at init and per event.
pub async fn calls(
    subject: &Subject,
    side: &Side,
    moto: &Moto,
    events: usize,
) -> Result<Calls, String> {
    let proxy = FaultProxy::start(moto).await;
    let mut marks = Vec::new();
    drive(subject, side, moto, proxy.env(moto), events, || {
        marks.push(proxy.operations().len())
    })
    .await?;
    // The log only grows, so each mark is within it.
    let ops = proxy.operations();
    Ok(Calls {
        init: ops[..marks[0]].to_vec(),
        events: marks.windows(2).map(|w| ops[w[0]..w[1]].to_vec()).collect(),
    })
}

async fn wait_for_first_next(
    api: &RuntimeApi,
    process: &FunctionProcess,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if let Some(at) = api.first_next_at() {
            return Ok(at - process.started_at());
        }
        if let Some(e) = api.init_error() {
            return Err(format!("init failed: {e}"));
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "no GET /next within 60 s; stderr: {}",
                process.stderr_lines().join("\n")
            ));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The `cold start phases` log line: each phase in µs, and the total.
fn cold_start_phases(stdout: &[String]) -> (Vec<(String, u64)>, Option<u64>) {
    for line in stdout {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = if v.get("fields").is_some() {
            &v["fields"]
        } else {
            &v
        };
        if fields["message"] != "cold start phases" {
            continue;
        }
        let phases = fields["phases"]
            .as_str()
            .unwrap_or_default()
            .split(',')
            .filter_map(|p| p.split_once('='))
            .filter_map(|(name, us)| Some((name.to_string(), us.parse().ok()?)))
            .collect();
        return (phases, fields["init_us"].as_u64());
    }
    (Vec::new(), None)
}
