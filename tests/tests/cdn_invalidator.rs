//! cdn-invalidator end to end: the built binary under the Runtime API emulator, fed the SQS
//! samples in `events/`, against moto; invalidations and `batchItemFailures` are asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic_e2e::start_function;
use autonomic_testkit::estate::{create_distribution, invalidations, publish_document};
use autonomic_testkit::{
    Invocation, Moto, create_state_table, event_text, reported_messages, unique,
};
use serde_json::Value;

const SAMPLE_DOMAIN: &str = "static.demo.example.com";

#[tokio::test]
async fn every_sqs_sample_through_the_runtime_api() {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let domain = format!("{}.example.com", unique("e2e"));
    let distribution = create_distribution(&cloudfront, &domain).await;
    let table = unique("state");
    create_state_table(&ddb, &table).await;
    let buckets = format!(
        r#"{{"autonomic-demo-static": {{"domain": "{domain}", "stripPrefix": "public/"}}}}"#
    );
    // Read by reference from an SSM parameter, as infra/ deploys it.
    let buckets = publish_document(
        &sdk,
        &format!("/{table}/cdn-invalidator/BUCKET_DISTRIBUTIONS"),
        &buckets,
    )
    .await;
    let f = start_function(
        "cdn-invalidator",
        moto,
        &[
            ("STATE_TABLE_NAME", table.as_str()),
            ("BUCKET_DISTRIBUTIONS", buckets.as_str()),
        ],
    )
    .await;

    // sample, the message-id suffixes reported failed
    let cases: &[(&str, &[&str])] = &[
        ("sqs-invalidation-requests.json", &[]),
        ("sqs-s3-notifications.json", &[]),
        ("sqs-s3-via-sns.json", &[]),
        ("sqs-mixed.json", &["34"]),
        ("sqs-fifo.json", &["42", "43"]),
        (
            "sqs-malformed-bodies.json",
            &["51", "52", "53", "54", "55", "56", "57"],
        ),
    ];
    for (sample, want) in cases {
        let payload = event_text(sample).replace(SAMPLE_DOMAIN, &domain);
        let answer = f.api.invoke_raw(payload.into_bytes()).await;
        let Invocation::Response(r) = &answer else {
            panic!("{sample}: {answer:?}")
        };
        let failed = reported_messages(r);
        assert_eq!(failed, *want, "{sample}");
    }
    // One invalidation per batch that had something to send: in the FIFO batch, what is left
    // after the failed group (41 and 44) is one run on one distribution, so one call.
    let made = invalidations(&cloudfront, &distribution).await;
    assert_eq!(made.len(), 5, "{made:?}");
    let mut all: Vec<String> = made.into_iter().flat_map(|(_, p)| p).collect();
    all.sort();
    all.dedup();
    for want in [
        "/img/*",
        "/app.js",
        "/img/new%20logo%C3%A9.png",
        "/css/site.css",
        "/release/1.html",
        "/docs/index.html",
    ] {
        assert!(
            all.contains(&want.to_string()),
            "{want} not invalidated: {all:?}"
        );
    }
    let applied = f
        .process
        .audit_records()
        .iter()
        .filter(|a| {
            a["record"]["action"] == "create_invalidation" && a["record"]["outcome"] == "applied"
        })
        .count();
    assert_eq!(applied, 5);

    // Not an SQS event at all: a structured error, and the function keeps serving.
    let bad = f
        .api
        .invoke_raw(event_text("malformed-sqs-records-not-a-list.json").into_bytes())
        .await;
    let Invocation::Error {
        error_type,
        error_message,
    } = bad
    else {
        panic!("{bad:?}")
    };
    assert_eq!(error_type, "Permanent.InvalidEvent");
    assert!(error_message.contains("Records"), "{error_message}");
    let again: Value = f
        .api
        .invoke_raw(
            event_text("sqs-s3-via-sns.json")
                .replace(SAMPLE_DOMAIN, &domain)
                .into_bytes(),
        )
        .await
        .response()
        .clone();
    assert_eq!(again["batchItemFailures"], serde_json::json!([]));
}
