//! The published JSON Schema and the parser agree on the request's fields and limits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeSet;

use cdn_invalidator::messages::{InvalidationRequest, MAX_PATHS_PER_REQUEST};
use cdn_invalidator::paths::MAX_PATH_LEN;
use serde_json::Value;

#[test]
fn schema_matches_the_request_type() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/invalidation-request.schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let in_schema: BTreeSet<String> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let full = InvalidationRequest {
        distribution_id: Some("E1".into()),
        domain: Some("d".into()),
        paths: vec!["/a".into()],
        reason: Some("r".into()),
        requester: Some("q".into()),
    };
    let in_type: BTreeSet<String> = serde_json::to_value(&full)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(in_schema, in_type);
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["paths"]["maxItems"],
        MAX_PATHS_PER_REQUEST
    );
    assert_eq!(
        schema["properties"]["paths"]["items"]["maxLength"],
        MAX_PATH_LEN
    );
}
