//! A fault-injecting HTTP proxy between the function binaries and moto, driven per AWS operation:
//! an error code with an HTTP status, a dropped connection, a delay or a hang, before the request
//! reaches moto or after moto has acted on it, a given number of times. It also counts the
//! requests of each operation that reached moto (moto's own DescribeScalingActivities is always
//! empty, so this is how tests count SetDesiredCapacity calls).
//!
//! Operations are named `service:Operation` (`autoscaling:SetDesiredCapacity`,
//! `dynamodb:PutItem`, `cloudfront:CreateInvalidation`), as the IAM actions are. A rule may name
//! every operation of a service (`rds:*`) and be limited to one Region (`rds:*@us-east-1`: the
//! Region of the request's signature), which is how a test takes a Region down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::Moto;

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An AWS error: this HTTP status and error code.
    Error { status: u16, code: String },
    /// The connection is closed without an answer.
    Reset,
    /// The answer comes this much later.
    Delay(Duration),
    /// No answer until the client gives up.
    Hang,
}

impl Fault {
    pub fn error(status: u16, code: &str) -> Fault {
        Fault::Error {
            status,
            code: code.to_string(),
        }
    }
}

/// Whether the fault happens before the request reaches moto, or after moto acted on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After,
}

#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    fault: Fault,
    when: When,
    times: usize,
}

#[derive(Default)]
struct State {
    rules: Mutex<Vec<Rule>>,
    forwarded: Mutex<HashMap<String, usize>>,
    /// The bodies of the requests that reached moto, per operation.
    bodies: Mutex<HashMap<String, Vec<Bytes>>>,
    /// Every operation that reached moto, in order.
    sequence: Mutex<Vec<String>>,
    injected: Mutex<usize>,
}

/// The running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `moto`.
    pub async fn start(moto: &Moto) -> FaultProxy {
        let upstream: SocketAddr = moto
            .endpoint()
            .trim_start_matches("http://")
            .parse()
            .expect("moto address");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let state = Arc::new(State::default());
        let served = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), upstream, req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy {
            addr,
            state,
            server,
        }
    }

    /// The endpoint to give the SDK instead of moto's.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `moto`'s environment for a function process, with the endpoint pointed at this proxy.
    pub fn env(&self, moto: &Moto) -> Vec<(String, String)> {
        moto.env()
            .into_iter()
            .map(|(k, v)| {
                if k == "AWS_ENDPOINT_URL" {
                    (k, self.endpoint())
                } else {
                    (k, v)
                }
            })
            .collect()
    }

    /// The next `times` requests of `operation` meet `fault`, `when`.
    pub fn inject(&self, operation: &str, fault: Fault, when: When, times: usize) {
        self.state.rules.lock().unwrap().push(Rule {
            operation: operation.to_string(),
            fault,
            when,
            times,
        });
    }

    /// Removes every rule not yet used up.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// How many requests of `operation` reached moto.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.state
            .forwarded
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or_default()
    }

    /// The bodies of the requests of `operation` that reached moto, in order (what a service that
    /// deduplicates by a request token would have seen).
    pub fn forwarded_bodies(&self, operation: &str) -> Vec<Bytes> {
        self.state
            .bodies
            .lock()
            .unwrap()
            .get(operation)
            .cloned()
            .unwrap_or_default()
    }

    /// Every operation that reached moto so far, in the order it arrived.
    pub fn operations(&self) -> Vec<String> {
        self.state.sequence.lock().unwrap().clone()
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        *self.state.injected.lock().unwrap()
    }
}

type Answer = Result<Response<Full<Bytes>>, std::io::Error>;

async fn handle(state: Arc<State>, upstream: SocketAddr, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let operation = operation_of(&parts, &body);
    let json = parts.headers.contains_key("x-amz-target");
    let rule = take_rule(&state, &operation, &region_of(&parts));
    if let Some(r) = &rule {
        *state.injected.lock().unwrap() += 1;
        if r.when == When::Before {
            return match &r.fault {
                Fault::Delay(d) => {
                    tokio::time::sleep(*d).await;
                    forward(&state, upstream, &operation, parts, body).await
                }
                fault => apply(fault, json).await,
            };
        }
    }
    let answer = forward(&state, upstream, &operation, parts, body).await;
    match rule {
        Some(r) => match r.fault {
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                answer
            }
            fault => apply(&fault, json).await,
        },
        None => answer,
    }
}

/// Whether a rule's operation (`service:Operation`, `service:*`, either with `@region`) takes a
/// request of `operation` signed for `region`.
fn rule_takes(rule: &str, operation: &str, region: &str) -> bool {
    let (op, in_region) = match rule.split_once('@') {
        Some((op, r)) => (op, r == region),
        None => (rule, true),
    };
    let service_wide = op
        .strip_suffix(":*")
        .is_some_and(|service| operation.split(':').next() == Some(service));
    in_region && (op == operation || service_wide)
}

fn take_rule(state: &State, operation: &str, region: &str) -> Option<Rule> {
    let mut rules = state.rules.lock().unwrap();
    let i = rules
        .iter()
        .position(|r| r.times > 0 && rule_takes(&r.operation, operation, region))?;
    rules[i].times -= 1;
    let rule = rules[i].clone();
    if rules[i].times == 0 {
        rules.remove(i);
    }
    Some(rule)
}

async fn apply(fault: &Fault, json: bool) -> Answer {
    match fault {
        Fault::Error { status, code } => Ok(error_response(*status, code, json)),
        Fault::Reset => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        )),
        Fault::Hang => {
            // Longer than any call's time limit: the client gives up first.
            tokio::time::sleep(Duration::from_secs(120)).await;
            Err(std::io::Error::other("injected hang"))
        }
        Fault::Delay(_) => unreachable!("a delay forwards"),
    }
}

/// An AWS error in the protocol the client speaks: JSON (`X-Amz-Target`) or XML.
fn error_response(status: u16, code: &str, json: bool) -> Response<Full<Bytes>> {
    let (content_type, body) = if json {
        (
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type": "com.amazonaws.dynamodb.v20120810#{code}", "message": "injected by the fault proxy"}}"#
            ),
        )
    } else {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the fault proxy</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
            ),
        )
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    r.headers_mut()
        .insert("x-amzn-errortype", code.parse().unwrap());
    r
}

async fn forward(
    state: &State,
    upstream: SocketAddr,
    operation: &str,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Answer {
    *state
        .forwarded
        .lock()
        .unwrap()
        .entry(operation.to_string())
        .or_default() += 1;
    state
        .bodies
        .lock()
        .unwrap()
        .entry(operation.to_string())
        .or_default()
        .push(body.clone());
    state.sequence.lock().unwrap().push(operation.to_string());
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let req = Request::from_parts(parts, Full::new(body));
    let resp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// The Region of an AWS request's SigV4 credential scope.
fn region_of(parts: &hyper::http::request::Parts) -> String {
    parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("unknown")
        .to_string()
}

/// `service:Operation` of an AWS request: the service from the SigV4 credential scope, the
/// operation from `X-Amz-Target` (JSON protocols), `Action=` (query protocols) or the REST path.
fn operation_of(parts: &hyper::http::request::Parts, body: &[u8]) -> String {
    let service = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let operation = if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        target.rsplit('.').next().unwrap_or(target).to_string()
    } else if let Some(action) = std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("Action=")))
    {
        action.to_string()
    } else if let Some(id) = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("x-id=")))
    {
        // S3 names its operation in the query (`?x-id=GetObject`).
        id.to_string()
    } else {
        rest_operation(parts.method.as_str(), parts.uri.path())
    };
    format!("{service}:{operation}")
}

/// The CloudFront and Route 53 REST operations the functions call.
fn rest_operation(method: &str, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", [_, "distribution"]) => "ListDistributions",
        ("POST", [_, "distribution", _, "invalidation"]) => "CreateInvalidation",
        ("GET", [_, "distribution", _, "invalidation"]) => "ListInvalidations",
        ("GET", [_, "distribution", _, "invalidation", _]) => "GetInvalidation",
        ("GET", [_, "healthcheck", _, "status"]) => "GetHealthCheckStatus",
        ("POST", [_, "hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        _ => "Unknown",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_an_operation_or_a_service_in_a_region() {
        assert!(rule_takes(
            "rds:FailoverDBCluster",
            "rds:FailoverDBCluster",
            "us-east-1"
        ));
        assert!(rule_takes("rds:*", "rds:DescribeDBClusters", "eu-west-1"));
        assert!(rule_takes(
            "rds:*@us-east-1",
            "rds:DescribeDBClusters",
            "us-east-1"
        ));
        assert!(!rule_takes(
            "rds:*@us-east-1",
            "rds:DescribeDBClusters",
            "us-west-2"
        ));
        assert!(!rule_takes(
            "rds:*",
            "route53:GetHealthCheckStatus",
            "us-east-1"
        ));
        assert!(!rule_takes(
            "rds:Failover",
            "rds:FailoverDBCluster",
            "us-east-1"
        ));
    }

    #[test]
    fn names_rest_operations() {
        assert_eq!(
            rest_operation("POST", "/2020-05-31/distribution/E1/invalidation"),
            "CreateInvalidation"
        );
        assert_eq!(
            rest_operation("GET", "/2020-05-31/distribution/E1/invalidation/I1"),
            "GetInvalidation"
        );
        assert_eq!(
            rest_operation("GET", "/2020-05-31/distribution"),
            "ListDistributions"
        );
    }
}
