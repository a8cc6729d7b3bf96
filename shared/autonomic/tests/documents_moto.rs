//! Configuration documents read by reference from the emulator: an SSM parameter and an S3
//! object replace the reference with their text; a reference to nothing is a problem naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic::config::Env;
use autonomic::{ErrorClass, FunctionError};
use autonomic_testkit::estate::{publish_document, publish_object};
use autonomic_testkit::fault_proxy::{Fault, FaultProxy, When};
use autonomic_testkit::{Moto, unique};

#[tokio::test]
async fn ssm_and_s3_references_are_read_and_missing_ones_named() {
    let sdk = Moto::shared().sdk_config().await;
    let bucket = unique("config");
    let object = publish_object(&sdk, &bucket, "autonomic/rules.json", r#"{"from": "s3"}"#).await;
    let parameter = publish_document(&sdk, &format!("/{bucket}/RULES"), r#"{"from": "ssm"}"#).await;
    let missing_key = format!("s3://{bucket}/autonomic/none.json");
    let missing_bucket = format!("s3://{bucket}-none/rules.json");
    let mut env = Env::from_map([
        ("FROM_S3", object.as_str()),
        ("FROM_SSM", parameter.as_str()),
        ("NO_KEY", missing_key.as_str()),
        ("NO_BUCKET", missing_bucket.as_str()),
    ]);
    env.load_documents(&["FROM_S3", "FROM_SSM", "NO_KEY", "NO_BUCKET"], &sdk)
        .await
        .unwrap();
    let text = |env: &mut Env, name| env.parse(name, true, |t| Ok(t.to_string()));
    assert_eq!(
        text(&mut env, "FROM_S3").as_deref(),
        Some(r#"{"from": "s3"}"#)
    );
    assert_eq!(
        text(&mut env, "FROM_SSM").as_deref(),
        Some(r#"{"from": "ssm"}"#)
    );
    let problems = env.finish().unwrap_err().to_string();
    assert!(
        problems.contains(&format!("NO_KEY (from S3 object {missing_key}): NoSuchKey")),
        "{problems}"
    );
    assert!(
        problems.contains(&format!(
            "NO_BUCKET (from S3 object {missing_bucket}): NoSuchBucket"
        )),
        "{problems}"
    );
    assert!(problems.contains("2 problems"), "{problems}");
}

/// The S3 reader is ours, not the SDK's, so its time limits and retries are proven here, with
/// faults injected between it and the emulator: throttling, a dropped connection and a hang are
/// retried and the document is read; a fault on every attempt fails the cold start as retryable
/// (the configuration may be fine), never as a configuration problem.
#[tokio::test]
async fn s3_faults_are_retried_then_reported_as_retryable() {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let bucket = unique("faults");
    let object = publish_object(&sdk, &bucket, "rules.json", r#"{"ok": true}"#).await;
    let proxy = FaultProxy::start(moto).await;
    let via_proxy = sdk.to_builder().endpoint_url(proxy.endpoint()).build();
    let read = async |sdk| {
        let mut env = Env::from_map([("RULES", object.as_str())]);
        env.load_documents(&["RULES"], sdk).await?;
        Ok::<_, FunctionError>(env.parse("RULES", true, |t| Ok(t.to_string())))
    };

    proxy.inject(
        "s3:GetObject",
        Fault::error(503, "SlowDown"),
        When::Before,
        1,
    );
    proxy.inject("s3:GetObject", Fault::Reset, When::Before, 1);
    let text = read(&via_proxy).await.unwrap();
    assert_eq!(text.as_deref(), Some(r#"{"ok": true}"#));
    assert_eq!(proxy.forwarded("s3:GetObject"), 1);

    // A hang ends with the attempt's time limit, and the next attempt reads the document.
    proxy.inject("s3:GetObject", Fault::Hang, When::Before, 1);
    let started = std::time::Instant::now();
    let text = read(&via_proxy).await.unwrap();
    assert_eq!(text.as_deref(), Some(r#"{"ok": true}"#));
    assert!(started.elapsed() < autonomic::aws::OPERATION_TIMEOUT);
    assert_eq!(proxy.forwarded("s3:GetObject"), 2);

    proxy.inject(
        "s3:GetObject",
        Fault::error(500, "InternalError"),
        When::Before,
        3,
    );
    match read(&via_proxy).await {
        Err(FunctionError::Call(e)) => {
            assert_eq!(e.class, ErrorClass::Retryable, "{e}");
            assert_eq!(e.code, "InternalError", "{e}");
        }
        other => panic!("expected a retryable call error, got {other:?}"),
    }
    assert_eq!(
        proxy.forwarded("s3:GetObject"),
        2,
        "every attempt was failed"
    );
    assert_eq!(proxy.injected(), 6);
}
