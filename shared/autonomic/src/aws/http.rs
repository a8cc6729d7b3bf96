//! The HTTP client of every AWS client of a process: HTTP/1.1 over hyper, one connection pool for
//! `https://` endpoints (rustls with ring, the system's root certificates) and one for `http://`
//! endpoints (an emulator), each built on its first request.
//!
//! Ours rather than aws-smithy-http-client's, which also carries HTTP/2, proxy routing and its
//! test hooks, none of which these functions use: about 0.25 MB of each zip. What the SDK relies
//! on is kept: the read time limit of [`HttpConnectorSettings`] (to the answer's headers), TLS 1.2
//! and 1.3 with the SDK's cipher suites, and failures classified as the SDK's own client
//! classifies them (a timeout, an I/O failure, anything else), since its retry strategy decides
//! by that class. The connect time limit covers the TCP connection; name resolution and the TLS
//! handshake are bounded by the attempt's time limit ([`super::ATTEMPT_TIMEOUT`]), which covers
//! the whole attempt. No proxy is used, as with the SDK's client unless one is configured in code.

use std::error::Error;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The connector under an [`https_pool`].
pub type HttpsConnector = hyper_rustls::HttpsConnector<TcpConnector>;
type BoxError = Box<dyn Error + Send + Sync>;

/// The shared client: the service clients built from one SDK configuration share its pools. A
/// client with other time limits (aws-config's own credential clients) gets pools of its own, so
/// that whichever client calls first does not set the limits of the others.
pub fn http_client() -> SharedHttpClient {
    let pools: Arc<PoolsByLimits> = Arc::default();
    http_client_fn(move |settings, _components| {
        let limits = (settings.connect_timeout(), settings.read_timeout());
        let mut by_limits = pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let shared = match by_limits.iter().find(|(l, _)| *l == limits) {
            Some((_, p)) => p.clone(),
            None => {
                let p = Arc::new(Pools::default());
                by_limits.push((limits, p.clone()));
                p
            }
        };
        SharedHttpConnector::new(Http1Connector {
            settings: settings.clone(),
            pools: shared,
        })
    })
}

/// Connect and read time limits.
type Limits = (Option<Duration>, Option<Duration>);
/// The pools of each set of time limits.
type PoolsByLimits = Mutex<Vec<(Limits, Arc<Pools>)>>;

/// A connector with pools of its own, for a request made outside an SDK client (the `s3://`
/// document reader).
pub fn connector(settings: &HttpConnectorSettings) -> SharedHttpConnector {
    SharedHttpConnector::new(Http1Connector {
        settings: settings.clone(),
        pools: Arc::new(Pools::default()),
    })
}

#[derive(Default)]
struct Pools {
    https: OnceLock<Client<HttpsConnector, SdkBody>>,
    http: OnceLock<Client<TcpConnector, SdkBody>>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools")
            .field("https", &self.https.get().is_some())
            .field("http", &self.http.get().is_some())
            .finish()
    }
}

/// Hands each request to the pool of its scheme, building the pool on first use (every connector
/// sharing these pools has the same time limits).
#[derive(Debug)]
struct Http1Connector {
    settings: HttpConnectorSettings,
    pools: Arc<Pools>,
}

/// The root certificates and cipher suites, built once per process: parsing the system's roots
/// is the slow part of a TLS setup.
static TLS_CONFIG: LazyLock<Result<rustls::ClientConfig, String>> = LazyLock::new(|| {
    let roots = system_roots();
    // The suites the SDK's own client allows: AES-GCM with ECDHE for TLS 1.2, AES-GCM for 1.3.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|suite| {
        use rustls::CipherSuite::*;
        matches!(
            suite.suite(),
            TLS13_AES_256_GCM_SHA384
                | TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| format!("no TLS configuration: {e}"))
});

/// The system's root certificates (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else the distribution's
/// bundle, as rustls-native-certs finds them).
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::warn!(errors = ?native.errors, "some root certificates could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(ignored, "no root certificates: https calls will fail");
    }
    roots
}

/// The TCP connector under every pool: no Nagle delay, the connect limit given.
fn tcp(connect_timeout: Option<Duration>) -> TcpConnector {
    let mut tcp = TcpConnector::new();
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    tcp.enforce_http(false);
    tcp
}

fn pool<C, B>(connector: C) -> Client<C, B>
where
    C: hyper_util::client::legacy::connect::Connect + Clone,
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// An HTTP/1.1 connection pool for `https://` URIs only, with `tls` deciding whom to trust (and
/// any client certificate): the AWS clients' pool, and k8s-rollout's per cluster.
pub fn https_pool<B>(
    tls: rustls::ClientConfig,
    connect_timeout: Option<Duration>,
) -> Client<HttpsConnector, B>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(tcp(connect_timeout));
    pool(https)
}

impl HttpConnector for Http1Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = if request.uri().scheme_str() == Some("http") {
            let connect = self.settings.connect_timeout();
            let pool = self.pools.http.get_or_init(|| pool(tcp(connect)));
            pool.request(request)
        } else {
            let tls = match &*TLS_CONFIG {
                Ok(tls) => tls,
                Err(e) => {
                    return HttpConnectorFuture::ready(Err(ConnectorError::other(
                        e.clone().into(),
                        None,
                    )));
                }
            };
            let connect = self.settings.connect_timeout();
            let pool = self
                .pools
                .https
                .get_or_init(|| https_pool(tls.clone(), connect));
            pool.request(request)
        };
        let read_timeout = self.settings.read_timeout();
        HttpConnectorFuture::new(async move {
            let answered = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|_| ConnectorError::timeout(ReadTimeout(limit).into()))?,
                None => response.await,
            };
            let response = answered.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// No answer (its status line and headers) within the read time limit.
#[derive(Debug)]
struct ReadTimeout(Duration);

impl std::fmt::Display for ReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within the read timeout ({:?})", self.0)
    }
}

impl Error for ReadTimeout {}

/// The first error of type `E` in `err`'s chain.
fn find<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Classifies a failure as aws-smithy-http-client does: a timed-out connect or read is a
/// timeout; a refused, reset or closed connection (DNS included) is I/O; both are retried. A
/// message cut short is transient. Anything else is passed on unclassified.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = find::<std::io::Error>(&err)
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        || find::<hyper::Error>(&err).is_some_and(hyper::Error::is_timeout);
    if timed_out {
        return ConnectorError::timeout(BoxError::from(err));
    }
    if let Some(hyper_err) = find::<hyper::Error>(&err) {
        if hyper_err.is_user() {
            return ConnectorError::user(BoxError::from(err));
        }
        if hyper_err.is_closed()
            || hyper_err.is_canceled()
            || find::<std::io::Error>(hyper_err).is_some()
        {
            return ConnectorError::io(BoxError::from(err));
        }
        if hyper_err.is_incomplete_message() {
            return ConnectorError::other(BoxError::from(err), Some(ErrorKind::TransientError));
        }
    }
    if err.is_connect() || find::<std::io::Error>(&err).is_some() {
        return ConnectorError::io(BoxError::from(err));
    }
    ConnectorError::other(BoxError::from(err), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_allows_only_the_sdk_s_suites_and_has_roots() {
        let config = TLS_CONFIG.as_ref().unwrap();
        let suites: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert!(suites.iter().all(|s| s.contains("AES")), "{suites:?}");
        assert!(suites.iter().any(|s| s.starts_with("TLS13")), "{suites:?}");
        assert_eq!(suites.len(), 6, "{suites:?}");
        assert!(
            !system_roots().is_empty(),
            "this machine's root certificates"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_io_and_a_silent_server_a_timeout() {
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_millis(300))
            .build();
        let connector = connector(&settings);

        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let refused = connector
            .call(HttpRequest::get(format!("http://127.0.0.1:{port}/")).unwrap())
            .await
            .unwrap_err();
        assert!(refused.is_io(), "{refused:?}");

        // A server that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        let silent_err = connector
            .call(HttpRequest::get(format!("http://{addr}/")).unwrap())
            .await
            .unwrap_err();
        assert!(silent_err.is_timeout(), "{silent_err:?}");
    }
}
