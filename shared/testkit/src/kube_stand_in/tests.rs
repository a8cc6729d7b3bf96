//! End-to-end test of the stand-in: a client that trusts only the stand-in's CA, over TLS.
//!
//! Separate: it exercises the whole server (TLS, tokens, routes, store), not one module.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};

use super::{KubeStandIn, TokenCheck, deployment};

fn pem_to_der(pem: &str) -> CertificateDer<'static> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    CertificateDer::from(STANDARD.decode(body).unwrap())
}

async fn get(stand_in: &KubeStandIn, path: &str, token: &str) -> (u16, Value) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem_to_der(&stand_in.ca_pem())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(stand_in.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::from(stand_in.addr.ip());
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .uri(path)
        .header("host", stand_in.addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn serves_deployments_over_tls_to_a_client_trusting_its_ca() {
    let stand_in = KubeStandIn::start(TokenCheck::Static("t".to_string())).await;
    stand_in.put_deployment(deployment("shop", "web", &[("web", "web:1")], &[], &[]));

    let (code, d) = get(
        &stand_in,
        "/apis/apps/v1/namespaces/shop/deployments/web",
        "t",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(d["status"]["updatedReplicas"], 2);
    assert_eq!(d["metadata"]["generation"], 1);

    let (code, status) = get(&stand_in, "/apis/apps/v1/namespaces/shop/deployments", "x").await;
    assert_eq!((code, &status["reason"]), (401, &json!("Unauthorized")));

    let (code, status) = get(
        &stand_in,
        "/apis/apps/v1/namespaces/shop/deployments/gone",
        "t",
    )
    .await;
    assert_eq!((code, &status["kind"]), (404, &json!("Status")));

    let authorized: Vec<bool> = stand_in.requests().iter().map(|r| r.authorized).collect();
    assert_eq!(authorized, vec![true, false, true]);
}
