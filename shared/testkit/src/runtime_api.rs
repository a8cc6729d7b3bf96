//! A Lambda Runtime API emulator: serves `GET /invocation/next`, `POST /invocation/{id}/response`,
//! `POST /invocation/{id}/error` and `POST /init/error` with the request id, deadline, function ARN
//! and trace id headers, and runs a real built function binary against it, as Lambda does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Response(Value),
    Error {
        error_type: String,
        error_message: String,
    },
}

impl Invocation {
    pub fn response(&self) -> &Value {
        match self {
            Invocation::Response(v) => v,
            Invocation::Error {
                error_type,
                error_message,
            } => {
                panic!("expected a response, got error {error_type}: {error_message}")
            }
        }
    }
}

struct Pending {
    request_id: String,
    body: Bytes,
    deadline_ms: u64,
}

/// An invocation waiting for its answer: where to send it, and when the function took the event.
struct Waiting {
    answer: oneshot::Sender<(Invocation, Duration)>,
    delivered: Option<Instant>,
}

struct State {
    function_arn: String,
    queue_tx: mpsc::UnboundedSender<Pending>,
    queue_rx: Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: StdMutex<HashMap<String, Waiting>>,
    first_next: StdMutex<Option<Instant>>,
    init_error: StdMutex<Option<Value>>,
}

/// A running Runtime API for one function.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    next_id: AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts the API on a free loopback port for a function called `function_name`.
    pub async fn start(function_name: &str) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime api");
        let addr = listener.local_addr().expect("runtime api address");
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            queue_tx,
            queue_rx: Mutex::new(queue_rx),
            waiting: StdMutex::new(HashMap::new()),
            first_next: StdMutex::new(None),
            init_error: StdMutex::new(None),
        });
        let served = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Without it, a reply written in two parts on a kept-alive connection waits for
                // the client's delayed ACK (40 ms): every invocation would look 40 ms slower.
                let _ = stream.set_nodelay(true);
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            state,
            next_id: AtomicU64::new(1),
            server,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// When the function first asked for an event (its cold start ends there).
    pub fn first_next_at(&self) -> Option<Instant> {
        *self.state.first_next.lock().unwrap()
    }

    /// What the function reported to `/init/error`, if it failed to start.
    pub fn init_error(&self) -> Option<Value> {
        self.state.init_error.lock().unwrap().clone()
    }

    /// Invokes the function with a JSON payload.
    pub async fn invoke(&self, payload: &Value) -> Invocation {
        self.invoke_raw(payload.to_string().into_bytes()).await
    }

    /// Invokes the function with raw bytes (malformed payloads included) and waits for its answer.
    pub async fn invoke_raw(&self, body: Vec<u8>) -> Invocation {
        self.invoke_within(body, Duration::from_secs(30)).await
    }

    /// Invokes the function with `time` left before the invocation's deadline.
    pub async fn invoke_within(&self, body: Vec<u8>, time: Duration) -> Invocation {
        self.invoke_measured(body, time).await.0
    }

    /// Invokes the function and returns its answer with the invocation's duration as Lambda
    /// bills it: from the event handed out on `/next` to the answer posted.
    pub async fn invoke_measured(&self, body: Vec<u8>, time: Duration) -> (Invocation, Duration) {
        let request_id = format!("req-{:06}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.state.waiting.lock().unwrap().insert(
            request_id.clone(),
            Waiting {
                answer: tx,
                delivered: None,
            },
        );
        let deadline_ms =
            (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + time).as_millis() as u64;
        self.state
            .queue_tx
            .send(Pending {
                request_id: request_id.clone(),
                body: Bytes::from(body),
                deadline_ms,
            })
            .expect("queue invocation");
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("function did not answer {request_id} within 60 s"))
            .expect("invocation dropped")
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
    };
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);

    if method == Method::GET && rest == "/invocation/next" {
        state
            .first_next
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now);
        let next = state.queue_rx.lock().await.recv().await;
        let Some(p) = next else {
            return Ok(reply(StatusCode::GONE, "shut down"));
        };
        if let Some(w) = state.waiting.lock().unwrap().get_mut(&p.request_id) {
            w.delivered = Some(Instant::now());
        }
        let mut r = reply(StatusCode::OK, p.body);
        let h = r.headers_mut();
        h.insert(
            "Lambda-Runtime-Aws-Request-Id",
            p.request_id.parse().unwrap(),
        );
        h.insert(
            "Lambda-Runtime-Deadline-Ms",
            p.deadline_ms.to_string().parse().unwrap(),
        );
        h.insert(
            "Lambda-Runtime-Invoked-Function-Arn",
            state.function_arn.parse().unwrap(),
        );
        h.insert(
            "Lambda-Runtime-Trace-Id",
            format!("Root=1-00000000-{};Sampled=0", p.request_id)
                .parse()
                .unwrap(),
        );
        h.insert("Content-Type", "application/json".parse().unwrap());
        return Ok(r);
    }
    if method == Method::POST && rest == "/init/error" {
        *state.init_error.lock().unwrap() = Some(json());
        return Ok(reply(StatusCode::ACCEPTED, "{}"));
    }
    if method == Method::POST
        && let Some(id_and_kind) = rest.strip_prefix("/invocation/")
    {
        let (id, kind) = id_and_kind.split_once('/').unwrap_or((id_and_kind, ""));
        let result = match kind {
            "response" => Invocation::Response(json()),
            "error" => {
                let v = json();
                Invocation::Error {
                    error_type: v["errorType"].as_str().unwrap_or_default().to_string(),
                    error_message: v["errorMessage"].as_str().unwrap_or_default().to_string(),
                }
            }
            _ => return Ok(reply(StatusCode::NOT_FOUND, "unknown invocation path")),
        };
        let answered = Instant::now();
        let waiter = state.waiting.lock().unwrap().remove(id);
        return Ok(match waiter {
            Some(w) => {
                let took = answered - w.delivered.unwrap_or(answered);
                let _ = w.answer.send((result, took));
                reply(StatusCode::ACCEPTED, "{}")
            }
            None => reply(StatusCode::BAD_REQUEST, "unknown request id"),
        });
    }
    Ok(reply(StatusCode::NOT_FOUND, "unknown path"))
}

/// A function binary running against a [`RuntimeApi`]; killed when dropped.
pub struct FunctionProcess {
    child: Child,
    started: Instant,
    stdout: Arc<StdMutex<Vec<String>>>,
    stderr: Arc<StdMutex<Vec<String>>>,
}

impl FunctionProcess {
    /// Starts `binary` as Lambda would: the Runtime API address, the function's identity, JSON
    /// logs, and `env` (the emulator endpoint, the function's own configuration).
    pub fn spawn(
        binary: &Path,
        api: &RuntimeApi,
        function_name: &str,
        env: &[(String, String)],
    ) -> FunctionProcess {
        Self::spawn_command(Command::new(binary), api, function_name, env)
    }

    /// Starts `cmd` (a program with its arguments and working directory: another runtime's
    /// function, such as a Python one under its runtime interface client) as [`Self::spawn`] does.
    pub fn spawn_command(
        mut cmd: Command,
        api: &RuntimeApi,
        function_name: &str,
        env: &[(String, String)],
    ) -> FunctionProcess {
        let program = cmd.as_std().get_program().to_os_string();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let stdout = Arc::new(StdMutex::new(Vec::new()));
        let stderr = Arc::new(StdMutex::new(Vec::new()));
        collect_lines(child.stdout.take().expect("stdout"), stdout.clone());
        collect_lines(child.stderr.take().expect("stderr"), stderr.clone());
        FunctionProcess {
            child,
            started,
            stdout,
            stderr,
        }
    }

    /// When the process was started.
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// The lines the function has written to stdout so far (logs, audit records, EMF).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The stdout lines that parse as JSON objects with `"type": "audit"`.
    pub fn audit_records(&self) -> Vec<Value> {
        self.stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "audit")
            .collect()
    }

    /// Waits for the process to exit (a failed cold start) and returns its exit code.
    pub async fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
            .and_then(|s| s.code())
    }

    /// The process id (for resource measurements).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU time the process's threads have used so far (the sum of each live thread's
    /// `/proc/PID/task/TID/schedstat`, in nanoseconds; Linux only). A thread that has exited is no
    /// longer counted.
    pub fn cpu_time(&self) -> Option<Duration> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()?)).ok()?;
        let mut total = 0u64;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or_default();
        }
        Some(Duration::from_nanos(total))
    }

    /// Peak resident memory so far, in KiB (`VmHWM`; Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

fn collect_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    into: Arc<StdMutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    });
}

/// The path of a function binary built in this workspace's target directory (`cargo build
/// --workspace --bins` builds them; the test command does that first).
/// `AUTONOMIC_FUNCTION_DIR` overrides the directory (for example `target/release`, to measure
/// release binaries).
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let profile_dir = match std::env::var_os("AUTONOMIC_FUNCTION_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        // Test executables live in target/<profile>/deps/; binaries in target/<profile>/.
        None => {
            let exe = std::env::current_exe().expect("current exe");
            let dir = exe.parent().expect("target profile dir");
            if dir.ends_with("deps") {
                dir.parent().expect("target profile dir").to_path_buf()
            } else {
                dir.to_path_buf()
            }
        }
    };
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}
