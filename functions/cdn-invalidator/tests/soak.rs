//! Soak: several concurrent invocations over a stretch of time, fed by a real queue in moto with a
//! redrive policy, as Lambda's SQS event source feeds them (receive a batch, invoke, delete what
//! was not reported; what was reported comes back after the visibility timeout and counts toward
//! `maxReceiveCount`). Every message is valid and many name the same distribution, so the
//! invocations contend for its lease all the time: no valid message may reach the dead-letter
//! queue, and every one must be invalidated.
//!
//! `AUTONOMIC_SOAK_SECONDS` sets how long messages keep being sent (default 20; the test then
//! drains the queue).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::runtime::Handler;
use autonomic_testkit::estate::{create_distribution, invalidations};
use autonomic_testkit::{Moto, lambda_event, recording_client, state_table, unique};
use aws_sdk_sqs::types::QueueAttributeName;
use cdn_invalidator::CdnInvalidator;
use cdn_invalidator::config::InvalidatorConfig;
use serde_json::{Value, json};

const MAX_RECEIVE_COUNT: usize = 5;
const INVOCATIONS: usize = 4;
const DISTRIBUTIONS: usize = 2;

fn soak_time() -> Duration {
    Duration::from_secs(
        std::env::var("AUTONOMIC_SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    )
}

/// An SQS record as the event source mapping builds it from a received message.
fn record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0", "SenderId": "soak", "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contending_invocations_over_time_send_no_valid_message_to_the_dlq() {
    let sdk = Moto::shared().sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
    let mut distributions = Vec::new();
    for _ in 0..DISTRIBUTIONS {
        let domain = format!("{}.example.com", unique("soak"));
        distributions.push(create_distribution(&cloudfront, &domain).await);
    }
    let dlq = sqs
        .create_queue()
        .queue_name(unique("soak-dlq"))
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url().unwrap().to_string();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name(unique("soak"))
        .attributes(QueueAttributeName::VisibilityTimeout, "2")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_string();
    let queue_arn = format!(
        "arn:aws:sqs:us-east-1:123456789012:{}",
        queue_url.rsplit('/').next().unwrap()
    );

    let table = state_table("cdn-invalidator").await;
    let config =
        InvalidatorConfig::from_env(Env::from_map([("STATE_TABLE_NAME", table.table())])).unwrap();
    let invalidator = Arc::new(CdnInvalidator::new(
        recording_client!(aws_sdk_cloudfront, &sdk, "cdn-invalidator"),
        table,
        config,
        Reporter::in_memory("cdn-invalidator").0,
    ));

    let sending = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (sqs, queue_url, distributions, sending, sent) = (
            sqs.clone(),
            queue_url.clone(),
            distributions.clone(),
            sending.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            let until = Instant::now() + soak_time();
            let mut n = 0usize;
            while Instant::now() < until {
                // Bursts of ten, one message per distribution in turn: every batch names every
                // distribution, so concurrent invocations always meet each other's leases.
                let entries: Vec<_> = (0..10)
                    .map(|k| {
                        let body = json!({
                            "distributionId": distributions[(n + k) % DISTRIBUTIONS],
                            "paths": [format!("/soak/{}.html", n + k)],
                        });
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(format!("m{k}"))
                            .message_body(body.to_string())
                            .build()
                            .unwrap()
                    })
                    .collect();
                sqs.send_message_batch()
                    .queue_url(&queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .unwrap();
                n += 10;
                sent.store(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            sending.store(false, Ordering::Relaxed);
        })
    };

    let bounced = Arc::new(AtomicUsize::new(0));
    let pollers: Vec<_> = (0..INVOCATIONS)
        .map(|p| {
            let (sqs, queue_url, queue_arn, invalidator, sending, bounced) = (
                sqs.clone(),
                queue_url.clone(),
                queue_arn.clone(),
                invalidator.clone(),
                sending.clone(),
                bounced.clone(),
            );
            tokio::spawn(async move {
                let mut idle_after_send = 0;
                loop {
                    // Small batches, so that several invocations work on one burst at once.
                    let received = sqs
                        .receive_message()
                        .queue_url(&queue_url)
                        .max_number_of_messages(3)
                        .send()
                        .await
                        .unwrap();
                    let messages = received.messages();
                    if messages.is_empty() {
                        if !sending.load(Ordering::Relaxed) {
                            idle_after_send += 1;
                            // Reported messages come back after the 2 s visibility timeout.
                            if idle_after_send > 100 {
                                break;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    idle_after_send = 0;
                    let payload = json!({"Records": messages.iter().map(|m| record(m, &queue_arn)).collect::<Vec<_>>()});
                    let response = invalidator
                        .handle(lambda_event(payload, &format!("poller-{p}-{}", unique("r")), Duration::from_secs(60)))
                        .await
                        .unwrap();
                    let reported: BTreeSet<&str> = response["batchItemFailures"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| f["itemIdentifier"].as_str().unwrap())
                        .collect();
                    bounced.fetch_add(reported.len(), Ordering::Relaxed);
                    for m in messages {
                        if !reported.contains(m.message_id().unwrap()) {
                            sqs.delete_message()
                                .queue_url(&queue_url)
                                .receipt_handle(m.receipt_handle().unwrap())
                                .send()
                                .await
                                .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    producer.await.unwrap();
    for p in pollers {
        p.await.unwrap();
    }

    let in_dlq = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert!(
        in_dlq.messages().is_empty(),
        "valid messages reached the DLQ: {:?}",
        in_dlq.messages()
    );
    let sent = sent.load(Ordering::Relaxed);
    let mut paths = BTreeSet::new();
    for d in &distributions {
        for (_, p) in invalidations(&cloudfront, d).await {
            paths.extend(p);
        }
    }
    let missing: Vec<usize> = (0..sent)
        .filter(|n| !paths.contains(&format!("/soak/{n}.html")))
        .collect();
    assert!(missing.is_empty(), "never invalidated: {missing:?}");
    println!(
        "soak: {sent} messages over {:?} by {INVOCATIONS} concurrent invocations on {DISTRIBUTIONS} distributions; {} reported back and redelivered; 0 in the DLQ",
        soak_time(),
        bounced.load(Ordering::Relaxed)
    );
}
