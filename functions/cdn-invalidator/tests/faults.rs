//! Fault paths moto cannot produce (it completes invalidations at once and never throttles):
//! aws-smithy-mocks on the real CloudFront client, with the state table on moto. Each test
//! asserts the exact `batchItemFailures`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic::audit::Reporter;
use autonomic::aws::OperationRecorder;
use autonomic::config::Env;
use autonomic::runtime::Handler;
use autonomic_testkit::{event_text, lambda_event, operations_file, state_table, unique};
use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::error::ErrorMetadata;
use aws_sdk_cloudfront::operation::create_invalidation::{
    CreateInvalidationError, CreateInvalidationOutput,
};
use aws_sdk_cloudfront::operation::get_invalidation::GetInvalidationOutput;
use aws_sdk_cloudfront::operation::list_invalidations::ListInvalidationsOutput;
use aws_sdk_cloudfront::primitives::DateTime;
use aws_sdk_cloudfront::types::error::TooManyInvalidationsInProgress;
use aws_sdk_cloudfront::types::{
    Invalidation, InvalidationBatch, InvalidationList, InvalidationSummary, Paths,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use cdn_invalidator::CdnInvalidator;
use cdn_invalidator::config::InvalidatorConfig;
use serde_json::Value;

/// Records what the invalidator calls, for the IAM-equals-use infra test (GetInvalidation and the
/// failure paths are only reached here).
fn recorder() -> OperationRecorder {
    OperationRecorder::to_file(operations_file("cdn-invalidator"))
}

/// The real CloudFront client, answering from `rules`, recording what it is asked.
fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, rules, |b| b
        .interceptor(recorder()))
}

/// `sqs-invalidation-requests.json` with its three messages sent to distribution `id`.
fn requests_to(id: &str) -> Value {
    let text = event_text("sqs-invalidation-requests.json").replace(
        r#"\"domain\": \"static.demo.example.com\""#,
        &format!(r#"\"distributionId\": \"{id}\""#),
    );
    serde_json::from_str(&text).unwrap()
}

fn invalidation(id: &str, status: &str, paths: Vec<String>) -> Invalidation {
    Invalidation::builder()
        .id(id)
        .status(status)
        .create_time(DateTime::from_secs(0))
        .invalidation_batch(
            InvalidationBatch::builder()
                .caller_reference(id)
                .paths(
                    Paths::builder()
                        .quantity(paths.len() as i32)
                        .set_items(Some(paths))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// ListInvalidations answering with invalidations in progress, one per given id.
fn listing(in_progress: &[&str]) -> Rule {
    let ids: Vec<String> = in_progress.iter().map(|s| s.to_string()).collect();
    mock!(Client::list_invalidations).then_output(move || {
        let items: Vec<InvalidationSummary> = ids
            .iter()
            .map(|id| {
                InvalidationSummary::builder()
                    .id(id)
                    .status("InProgress")
                    .create_time(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            })
            .collect();
        ListInvalidationsOutput::builder()
            .invalidation_list(
                InvalidationList::builder()
                    .marker("")
                    .max_items(100)
                    .is_truncated(false)
                    .quantity(items.len() as i32)
                    .set_items(Some(items))
                    .build()
                    .unwrap(),
            )
            .build()
    })
}

fn created() -> Rule {
    mock!(Client::create_invalidation).then_output(|| {
        CreateInvalidationOutput::builder()
            .invalidation(invalidation("I-NEW", "InProgress", vec![]))
            .build()
    })
}

async fn invalidator(cloudfront: Client) -> CdnInvalidator<Client> {
    let table = state_table("cdn-invalidator").await;
    let config =
        InvalidatorConfig::from_env(Env::from_map([("STATE_TABLE_NAME", table.table())])).unwrap();
    CdnInvalidator::new(
        cloudfront,
        table,
        config,
        Reporter::in_memory("cdn-invalidator").0,
    )
}

async fn failures(inv: &CdnInvalidator<Client>, payload: Value) -> Vec<String> {
    let r = inv
        .handle(lambda_event(
            payload,
            &unique("req"),
            std::time::Duration::from_secs(30),
        ))
        .await
        .unwrap();
    r["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

fn message_ids(payload: &Value, which: &[usize]) -> Vec<String> {
    which
        .iter()
        .map(|&i| {
            payload["Records"][i]["messageId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn too_many_invalidations_in_progress_reports_the_call_s_messages() {
    let too_many = mock!(Client::create_invalidation).then_error(|| {
        CreateInvalidationError::TooManyInvalidationsInProgress(
            TooManyInvalidationsInProgress::builder()
                .message("Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations.")
                .meta(ErrorMetadata::builder().code("TooManyInvalidationsInProgress").build())
                .build(),
        )
    });
    let client = client(&[&listing(&[]), &too_many]);
    let inv = invalidator(client).await;
    let payload = requests_to("EFAULT");
    assert_eq!(
        failures(&inv, payload.clone()).await,
        message_ids(&payload, &[0, 1, 2])
    );
    assert!(too_many.num_calls() >= 1);
}

#[tokio::test]
async fn throttling_reports_the_call_s_messages() {
    let throttled = mock!(Client::create_invalidation).then_error(|| {
        CreateInvalidationError::generic(
            ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let client = client(&[&listing(&[]), &throttled]);
    let inv = invalidator(client).await;
    let payload = requests_to("EFAULT");
    assert_eq!(
        failures(&inv, payload.clone()).await,
        message_ids(&payload, &[0, 1, 2])
    );
}

#[tokio::test]
async fn limits_reached_with_invalidations_in_progress_defer_what_does_not_fit() {
    // 2,998 file paths are in progress: room for two more files (and all 15 wildcards).
    let busy: Vec<String> = (0..2998).map(|i| format!("/busy/{i}.html")).collect();
    let get = mock!(Client::get_invalidation).then_output(move || {
        GetInvalidationOutput::builder()
            .invalidation(invalidation("I-BUSY", "InProgress", busy.clone()))
            .build()
    });
    let create = mock!(Client::create_invalidation)
        .match_requests(|r| {
            let paths = r
                .invalidation_batch()
                .and_then(|b| b.paths())
                .map(|p| p.items().to_vec())
                .unwrap_or_default();
            paths == ["/img/*", "/css/site.css", "/index.html"]
        })
        .then_output(|| {
            CreateInvalidationOutput::builder()
                .invalidation(invalidation("I-NEW", "InProgress", vec![]))
                .build()
        });
    let client = client(&[&listing(&["I-BUSY"]), &get, &create]);
    let inv = invalidator(client).await;
    let payload = requests_to("EBUSY");
    // Messages 1 and 2 fit (two files and one wildcard); message 3 adds two more files: deferred.
    assert_eq!(
        failures(&inv, payload.clone()).await,
        message_ids(&payload, &[2])
    );
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn one_distribution_failing_does_not_fail_another() {
    let mut payload = requests_to("EGOOD");
    let bad_body = payload["Records"][1]["body"]
        .as_str()
        .unwrap()
        .replace("EGOOD", "EFAULT");
    payload["Records"][1]["body"] = Value::String(bad_body);
    let fail = mock!(Client::create_invalidation)
        .match_requests(|r| r.distribution_id() == Some("EFAULT"))
        .then_error(|| {
            CreateInvalidationError::generic(
                ErrorMetadata::builder()
                    .code("ServiceUnavailable")
                    .message("try later")
                    .build(),
            )
        });
    let client = client(&[&listing(&[]), &fail, &created()]);
    let inv = invalidator(client).await;
    assert_eq!(
        failures(&inv, payload.clone()).await,
        message_ids(&payload, &[1])
    );
}
