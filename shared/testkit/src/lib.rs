//! Dev-only test harness: the local AWS emulator (moto server), a Lambda Runtime API emulator that
//! runs real function binaries, and the sample events in `events/`.
//!
//! Start-up and set-up helpers panic with a clear message on failure: they are test scaffolding,
//! where a panic is the failure report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod estate;
pub mod fixtures;
pub mod moto;
pub mod runtime_api;

pub use fixtures::{event, event_text, events_dir, events_with_prefix, workspace_root};
pub use moto::Moto;
pub use runtime_api::{FunctionProcess, Invocation, RuntimeApi};

/// Creates the state table as `infra/` defines it: partition key `pk` (S), on demand.
pub async fn create_state_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create state table {name}: {e:?}"));
}

/// A name no other test in this process uses (tests share one moto server).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The message ids an SQS partial batch response reports, each cut to its last `-` segment with
/// leading zeros removed (the samples number their messages that way: `...-000000000034` → `34`).
pub fn reported_messages(response: &serde_json::Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| {
            let id = f["itemIdentifier"].as_str().expect("itemIdentifier");
            id.rsplit('-')
                .next()
                .unwrap_or(id)
                .trim_start_matches('0')
                .to_string()
        })
        .collect()
}

/// Where the tests record the AWS operations `function` performs (`AUTONOMIC_RECORD_OPERATIONS`):
/// `target/autonomic-operations/<function>.txt`. The infra tests compare them with the IAM policies.
pub fn operations_file(function: &str) -> std::path::PathBuf {
    let dir = workspace_root().join("target/autonomic-operations");
    std::fs::create_dir_all(&dir).expect("create target/autonomic-operations");
    dir.join(format!("{function}.txt"))
}
