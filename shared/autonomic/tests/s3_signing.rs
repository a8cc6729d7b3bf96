//! The `s3://` document reader signs its GetObject exactly as aws-sdk-s3 does: same URL, same
//! signature over the same headers. moto does not check signatures, so this is the check that a
//! real bucket will accept the request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::time::{Duration, SystemTime};

use autonomic::config::s3_object::{object_url, signed_get};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_smithy_async::time::StaticTimeSource;
use aws_smithy_http_client::test_util::capture_request;

/// Headers our signer sets itself; every other header of the SDK's request is signed as given.
const OURS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "host",
];

async fn compare(
    region: &str,
    bucket: &str,
    key: &str,
    endpoint: Option<&str>,
    fips: bool,
    dual_stack: bool,
) {
    let credentials = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".into()),
        None,
        "test",
    );
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let (http, captured) = capture_request(None);
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(credentials.clone())
        .time_source(StaticTimeSource::new(now))
        .use_fips(fips)
        .use_dual_stack(dual_stack)
        .http_client(http);
    if let Some(endpoint) = endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    let client = aws_sdk_s3::Client::from_conf(config.build());
    let _ = client.get_object().bucket(bucket).key(key).send().await;
    let theirs = captured.expect_request();

    let url = object_url(endpoint, region, fips, dual_stack, bucket, key);
    assert_eq!(url, theirs.uri(), "the URL");
    // The headers the SDK signed besides ours (its user agent, the checksum mode); the ones it
    // sends unsigned (its invocation id) do not enter the signature.
    let authorization = theirs.headers().get("authorization").unwrap();
    let signed = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    let headers: Vec<(&str, &str)> = signed
        .split(';')
        .filter(|name| !OURS.contains(name))
        .map(|name| (name, theirs.headers().get(name).unwrap()))
        .collect();
    let ours = signed_get(&url, &headers, credentials, region, now).unwrap();
    for name in [
        "authorization",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "x-amz-date",
    ] {
        assert_eq!(
            ours.headers().get(name).and_then(|v| v.to_str().ok()),
            theirs.headers().get(name),
            "{name} of s3://{bucket}/{key}"
        );
    }
}

#[tokio::test]
async fn the_signed_get_is_the_sdk_s() {
    compare(
        "eu-west-1",
        "config-bucket",
        "autonomic/rules.json",
        None,
        false,
        false,
    )
    .await;
    compare(
        "us-east-1",
        "config-bucket",
        "a b/c+d=e~f.json",
        None,
        false,
        false,
    )
    .await;
    compare(
        "eu-west-1",
        "dotted.bucket.name",
        "rules.json",
        None,
        false,
        false,
    )
    .await;
    compare(
        "us-gov-west-1",
        "config-bucket",
        "rules.json",
        None,
        true,
        false,
    )
    .await;
    compare(
        "eu-west-1",
        "config-bucket",
        "rules.json",
        None,
        false,
        true,
    )
    .await;
    compare("us-east-1", "config-bucket", "rules.json", None, true, true).await;
    compare(
        "cn-north-1",
        "config-bucket",
        "rules.json",
        None,
        false,
        false,
    )
    .await;
    let emulator = Some("http://127.0.0.1:5000");
    compare(
        "us-east-1",
        "config",
        "autonomic/rules.json",
        emulator,
        false,
        false,
    )
    .await;
}
