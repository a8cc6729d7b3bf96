//! Configuration documents read by reference from the emulator: an SSM parameter and an S3
//! object replace the reference with their text; a reference to nothing is a problem naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic::config::Env;
use autonomic_testkit::estate::{publish_document, publish_object};
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
