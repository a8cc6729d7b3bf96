//! Fuzzing cdn-invalidator's way from an SQS batch to planned calls with the SQS samples broken in
//! small ways (the bodies' JSON too): every batch and body gives a value or an error, never a
//! panic, and every planned call stays within CloudFront's limits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic_testkit::mutate::{mutated, samples};
use aws_lambda_events::sqs::SqsEvent;
use cdn_invalidator::messages::{Body, parse_body};
use cdn_invalidator::paths::{escape_literal, normalize};
use cdn_invalidator::planner::{InProgress, MAX_PATHS_PER_CALL, Part, plan_segment};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_batch_gives_calls_within_the_limits_or_errors(payload in mutated(samples(&["sqs-", "malformed-sqs-"]))) {
        let Ok(batch) = autonomic::events::from_value::<SqsEvent>(&payload) else {
            return Ok(());
        };
        let mut parts = Vec::new();
        for (i, record) in batch.records.iter().enumerate() {
            let Ok(body) = parse_body(record.body.as_deref().unwrap_or_default()) else {
                continue;
            };
            let raw: Vec<String> = match body {
                Body::Request(r) => {
                    let _ = r.target();
                    r.paths
                }
                Body::S3(objects) => objects.iter().map(|o| format!("/{}", escape_literal(&o.key))).collect(),
                Body::TestEvent => vec![],
            };
            let paths: Vec<String> = raw.iter().filter_map(|p| normalize(p).ok()).collect();
            if !paths.is_empty() {
                parts.push(Part { message: i, message_id: format!("m{i}"), distribution: "E1".into(), paths });
            }
        }
        let plan = plan_segment(&parts, InProgress::default(), 3, false);
        for call in &plan.actions {
            prop_assert!(!call.paths.is_empty() && call.paths.len() <= MAX_PATHS_PER_CALL);
        }
    }
}
