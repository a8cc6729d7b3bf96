//! One moto server per test binary, on a free loopback port.
//!
//! moto is installed into `.venv/moto` by `scripts/ensure-moto.sh` the first time it is needed
//! (set `MOTO_PYTHON` to use another interpreter with moto installed). It is started through
//! `moto_server.py` beside this crate, which serialises requests: moto's backends are not
//! thread-safe, and concurrent conditional writes must not both win. It runs under a small shell
//! guard that kills it when this process's end of a pipe closes, so the server stops with the test
//! binary even though a `static` is never dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::Credentials;

use crate::fixtures::workspace_root;

pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct Moto {
    endpoint: String,
    log: PathBuf,
    // Held open for the life of the process: closing it stops the server.
    _guard: Mutex<(Child, ChildStdin)>,
}

impl Moto {
    /// The server for this test binary, started on first use.
    pub fn shared() -> &'static Moto {
        static MOTO: OnceLock<Moto> = OnceLock::new();
        MOTO.get_or_init(Moto::start)
    }

    /// Starts a new server and waits until it answers.
    pub fn start() -> Moto {
        let python = moto_python();
        let server_script = workspace_root().join("shared/testkit/moto_server.py");
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("autonomic-moto-{port}.log"));
            let script = format!(
                "\"$0\" \"$2\" 127.0.0.1 {port} >\"$1\" 2>&1 & pid=$!; \
                 trap 'kill $pid 2>/dev/null' EXIT; read -r _ || true"
            );
            let mut child = Command::new("bash")
                .arg("-c")
                .arg(script)
                .arg(&python)
                .arg(&log)
                .arg(&server_script)
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn bash for moto server");
            let stdin = child.stdin.take().expect("moto guard stdin");
            let endpoint = format!("http://127.0.0.1:{port}");
            match wait_until_answers(port, &mut child, Duration::from_secs(60)) {
                Ok(()) => {
                    return Moto {
                        endpoint,
                        log,
                        _guard: Mutex::new((child, stdin)),
                    };
                }
                Err(e) => {
                    let _ = child.kill();
                    last_error = format!(
                        "{e}; log {}:\n{}",
                        log.display(),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        panic!("moto server did not start: {last_error}");
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// The environment a function process needs to talk to this server: the standard
    /// `AWS_ENDPOINT_URL` and dummy credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// SDK configuration for this server, for tests that call AWS themselves.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(autonomic::aws::http_client())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// Wipes all state (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let status = http_status(self.port(), "POST", "/moto-api/reset").expect("reset moto");
        assert_eq!(status, 200, "moto reset answered {status}");
    }

    /// A control request to the test kit's stand-ins (`POST /_autonomic/<name>`, see
    /// `moto_stand_ins.py`): sets what moto cannot be made to report, such as Route 53 checker
    /// observations or a global cluster's failover state.
    pub fn control(&self, name: &str, body: &serde_json::Value) {
        let status = http_request(
            self.port(),
            "POST",
            &format!("/_autonomic/{name}"),
            &body.to_string(),
        )
        .unwrap_or_else(|e| panic!("control request {name}: {e}"));
        assert_eq!(
            status, 200,
            "control request {name} {body} answered {status}"
        );
    }
}

fn moto_python() -> PathBuf {
    if let Ok(path) = std::env::var("MOTO_PYTHON") {
        return PathBuf::from(path);
    }
    let root = workspace_root();
    let status = Command::new("bash")
        .arg(root.join("scripts/ensure-moto.sh"))
        .status()
        .expect("run scripts/ensure-moto.sh");
    assert!(status.success(), "scripts/ensure-moto.sh failed: {status}");
    root.join(".venv/moto/bin/python")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

fn wait_until_answers(port: u16, child: &mut Child, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("moto_server exited: {status}"));
        }
        if http_status(port, "GET", "/moto-api/data.json").is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("moto_server did not answer within {limit:?}"))
}

/// A minimal HTTP/1.0 request; enough to probe and reset the server without a client crate.
fn http_status(port: u16, method: &str, path: &str) -> Result<u16, String> {
    http_request(port, method, path, "")
}

fn http_request(port: u16, method: &str, path: &str, body: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "not an HTTP response".to_string())
}
