//! The invalidator's handler with real SDK clients against moto: invalidations are really created
//! with the expected paths, for distributions named by id or by alias, and the partial batch
//! response names exactly the messages not submitted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic_testkit::estate::{create_distribution, invalidations};
use autonomic_testkit::{
    Moto, event_text, lambda_event, recording_client, reported_messages, state_table, unique,
};
use cdn_invalidator::CdnInvalidator;
use cdn_invalidator::config::InvalidatorConfig;
use cdn_invalidator::submit::distribution_lease;
use serde_json::Value;

/// The domain the samples in `events/` name; each test swaps in a unique one.
const SAMPLE_DOMAIN: &str = "static.demo.example.com";
const SAMPLE_BUCKET: &str = "autonomic-demo-static";

struct Setup {
    invalidator: CdnInvalidator<aws_sdk_cloudfront::Client>,
    cloudfront: aws_sdk_cloudfront::Client,
    distribution: String,
    domain: String,
}

async fn setup(dry_run: bool) -> Setup {
    let sdk = Moto::shared().sdk_config().await;
    let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
    let domain = format!("{}.example.com", unique("static"));
    let distribution = create_distribution(&cloudfront, &domain).await;
    let table = state_table("cdn-invalidator").await;
    let buckets =
        format!(r#"{{"{SAMPLE_BUCKET}": {{"domain": "{domain}", "stripPrefix": "public/"}}}}"#);
    let config = InvalidatorConfig::from_env(Env::from_map([
        ("STATE_TABLE_NAME", table.table()),
        ("BUCKET_DISTRIBUTIONS", buckets.as_str()),
        ("COLLAPSE_THRESHOLD", "3"),
        ("DRY_RUN", if dry_run { "true" } else { "false" }),
    ]))
    .unwrap();
    // The invalidator's own clients record what it calls, for the IAM-equals-use infra test.
    Setup {
        invalidator: CdnInvalidator::new(
            recording_client!(aws_sdk_cloudfront, &sdk, "cdn-invalidator"),
            table,
            config,
            Reporter::in_memory("cdn-invalidator").0,
        ),
        cloudfront,
        distribution,
        domain,
    }
}

impl Setup {
    /// A sample with this test's domain in place of the sample domain.
    fn sample(&self, name: &str) -> Value {
        serde_json::from_str(&event_text(name).replace(SAMPLE_DOMAIN, &self.domain)).unwrap()
    }

    async fn handle(&self, payload: Value) -> Value {
        self.handle_within(payload, Duration::from_secs(30)).await
    }

    /// Handles `payload` with `time` left before the invocation's deadline.
    async fn handle_within(&self, payload: Value, time: Duration) -> Value {
        self.invalidator
            .handle(lambda_event(payload, &unique("req"), time))
            .await
            .unwrap()
    }

    async fn invalidations(&self) -> Vec<Vec<String>> {
        let mut paths: Vec<Vec<String>> = invalidations(&self.cloudfront, &self.distribution)
            .await
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        paths.iter_mut().for_each(|p| p.sort());
        paths
    }
}

fn sorted(paths: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn requests_by_alias_become_one_invalidation() {
    let s = setup(false).await;
    let r = s.handle(s.sample("sqs-invalidation-requests.json")).await;
    assert!(reported_messages(&r).is_empty(), "{r}");
    assert_eq!(
        s.invalidations().await,
        [sorted(&[
            "/img/*",
            "/index.html",
            "/css/site.css",
            "/about.html",
            "/docs/Getting%20Started.html"
        ])]
    );
}

#[tokio::test]
async fn a_request_by_distribution_id_works_too() {
    let s = setup(false).await;
    let body = format!(
        r#"{{"distributionId": "{}", "paths": ["/a.html"]}}"#,
        s.distribution
    );
    let mut payload = s.sample("sqs-invalidation-requests.json");
    payload["Records"].as_array_mut().unwrap().truncate(1);
    payload["Records"][0]["body"] = Value::String(body);
    let r = s.handle(payload).await;
    assert!(reported_messages(&r).is_empty(), "{r}");
    assert_eq!(s.invalidations().await, [sorted(&["/a.html"])]);
}

#[tokio::test]
async fn s3_notifications_map_keys_to_paths() {
    let s = setup(false).await;
    let r = s.handle(s.sample("sqs-s3-notifications.json")).await;
    // The private/ key is outside the mapping: acknowledged, not failed.
    assert!(reported_messages(&r).is_empty(), "{r}");
    assert_eq!(
        s.invalidations().await,
        [sorted(&[
            "/app.js",
            "/img/new%20logo%C3%A9.png",
            "/old/page.html"
        ])]
    );
}

#[tokio::test]
async fn s3_through_sns_and_the_test_event() {
    let s = setup(false).await;
    let r = s.handle(s.sample("sqs-s3-via-sns.json")).await;
    assert!(reported_messages(&r).is_empty(), "{r}");
    assert_eq!(s.invalidations().await, [sorted(&["/css/site.css"])]);
}

#[tokio::test]
async fn a_malformed_message_is_reported_and_the_rest_submitted() {
    let s = setup(false).await;
    let r = s.handle(s.sample("sqs-mixed.json")).await;
    assert_eq!(reported_messages(&r), ["34"]);
    assert_eq!(s.invalidations().await, [sorted(&["/index.html"])]);
}

#[tokio::test]
async fn every_malformed_body_is_reported_none_dropped() {
    let s = setup(false).await;
    let r = s.handle(s.sample("sqs-malformed-bodies.json")).await;
    assert_eq!(
        reported_messages(&r),
        ["51", "52", "53", "54", "55", "56", "57"]
    );
    assert!(s.invalidations().await.is_empty());
}

#[tokio::test]
async fn fifo_reports_the_rest_of_a_failed_group_and_submits_the_others() {
    let s = setup(false).await;
    let r = s.handle(s.sample("sqs-fifo.json")).await;
    // 42 is malformed; 43 follows it in group "site"; 44 is in group "docs".
    assert_eq!(reported_messages(&r), ["42", "43"]);
    let mut all: Vec<String> = s.invalidations().await.concat();
    all.sort();
    assert_eq!(all, sorted(&["/release/1.html", "/docs/index.html"]));
}

#[tokio::test]
async fn a_redelivered_batch_creates_no_second_invalidation() {
    let s = setup(false).await;
    s.handle(s.sample("sqs-invalidation-requests.json")).await;
    let r = s.handle(s.sample("sqs-invalidation-requests.json")).await;
    assert!(reported_messages(&r).is_empty());
    assert_eq!(s.invalidations().await.len(), 1);
}

#[tokio::test]
async fn crowded_folders_collapse_into_a_wildcard() {
    let s = setup(false).await;
    let body = format!(
        r#"{{"domain": "{}", "paths": ["/js/a.js", "/js/b.js", "/js/c.js", "/js/d.js", "/x.html"]}}"#,
        s.domain
    );
    let mut payload = s.sample("sqs-invalidation-requests.json");
    payload["Records"].as_array_mut().unwrap().truncate(1);
    payload["Records"][0]["body"] = Value::String(body);
    s.handle(payload).await;
    assert_eq!(s.invalidations().await, [sorted(&["/js/*", "/x.html"])]);
}

#[tokio::test]
async fn dry_run_creates_nothing_and_keeps_every_message() {
    let s = setup(true).await;
    let r = s.handle(s.sample("sqs-invalidation-requests.json")).await;
    assert_eq!(reported_messages(&r), ["1", "2", "3"]);
    assert_eq!(r["plan"]["calls"][0]["paths"].as_array().unwrap().len(), 5);
    assert!(s.invalidations().await.is_empty());
}

#[tokio::test]
async fn the_same_paths_asked_again_by_a_new_message_are_invalidated_again() {
    let s = setup(false).await;
    s.handle(s.sample("sqs-s3-via-sns.json")).await;
    // A later upload of the same object: a new message id, the same path.
    let mut again = s.sample("sqs-s3-via-sns.json");
    again["Records"][0]["messageId"] = Value::String("a-later-upload".into());
    s.handle(again).await;
    assert_eq!(s.invalidations().await.len(), 2);
}

#[tokio::test]
async fn s3_keys_are_literal_names() {
    let s = setup(false).await;
    let mut payload = s.sample("sqs-s3-notifications.json");
    payload["Records"].as_array_mut().unwrap().truncate(1);
    let body = r#"{"Records": [{"s3": {"bucket": {"name": "autonomic-demo-static"}, "object": {"key": "public/100%25+off*.html"}}}]}"#;
    payload["Records"][0]["body"] = Value::String(body.into());
    let r = s.handle(payload).await;
    assert!(reported_messages(&r).is_empty(), "{r}");
    // The key is "100% off*.html": its % and * are characters, not an escape and a wildcard.
    assert_eq!(
        s.invalidations().await,
        [sorted(&["/100%25%20off%2A.html"])]
    );
}

/// Takes the distribution's lease as another invocation would.
async fn hold_lease(s: &Setup) -> autonomic::guard::HeldLease {
    let lease = distribution_lease(&s.distribution);
    autonomic_testkit::hold_lease(&s.invalidator.guards, &lease, "other-invocation").await
}

#[tokio::test]
async fn one_invocation_at_a_time_submits_for_a_distribution() {
    let s = setup(false).await;
    let held = hold_lease(&s).await;
    // 13 s left: a second of waiting for the other invocation, then the messages go back.
    let r = s
        .handle_within(
            s.sample("sqs-invalidation-requests.json"),
            Duration::from_secs(13),
        )
        .await;
    assert_eq!(reported_messages(&r), ["1", "2", "3"]);
    assert!(s.invalidations().await.is_empty());
    // Once it is released, the batch goes through.
    held.release().await;
    let r = s.handle(s.sample("sqs-invalidation-requests.json")).await;
    assert!(reported_messages(&r).is_empty(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_distribution_lease_is_waited_for_before_bouncing_messages() {
    let s = std::sync::Arc::new(setup(false).await);
    let held = hold_lease(&s).await;
    let batch = {
        let s = s.clone();
        tokio::spawn(async move { s.handle(s.sample("sqs-invalidation-requests.json")).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!batch.is_finished(), "the batch waits for the lease");
    held.release().await;
    let r = batch.await.unwrap();
    assert!(reported_messages(&r).is_empty(), "{r}");
    assert_eq!(s.invalidations().await.len(), 1);
}

#[tokio::test]
async fn too_close_to_the_deadline_nothing_new_starts_and_every_message_goes_back() {
    let s = setup(false).await;
    let r = s
        .handle_within(
            s.sample("sqs-invalidation-requests.json"),
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(reported_messages(&r), ["1", "2", "3"]);
    assert!(s.invalidations().await.is_empty());
}

#[tokio::test]
async fn a_missing_state_table_fails_the_batch_rather_than_report_success() {
    let s = setup(false).await;
    let sdk = Moto::shared().sdk_config().await;
    let config =
        InvalidatorConfig::from_env(Env::from_map([("STATE_TABLE_NAME", "no-such-table")]))
            .unwrap();
    let missing = StateTable::new(aws_sdk_dynamodb::Client::new(&sdk), "no-such-table");
    let invalidator = CdnInvalidator::new(
        aws_sdk_cloudfront::Client::new(&sdk),
        missing.clone(),
        config,
        Reporter::in_memory("cdn-invalidator").0,
    );
    let e = invalidator
        .handle(lambda_event(
            s.sample("sqs-invalidation-requests.json"),
            "req",
            Duration::from_secs(30),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ResourceNotFoundException");
    // And the cold start finds it first.
    let e = missing.probe_at_cold_start().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("STATE_TABLE_NAME: table \"no-such-table\""),
        "{e}"
    );
}
