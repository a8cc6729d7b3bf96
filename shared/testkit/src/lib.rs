//! Dev-only test harness: the local AWS emulator (moto server), a Lambda Runtime API emulator that
//! runs real function binaries, and the sample events in `events/`.
//!
//! Start-up and set-up helpers panic with a clear message on failure: they are test scaffolding,
//! where a panic is the failure report.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod estate;
pub mod fault_proxy;
pub mod fixtures;
pub mod kube_stand_in;
pub mod moto;
pub mod mutate;
pub mod runtime_api;

pub use fault_proxy::{Fault, FaultProxy, When};
pub use fixtures::{event, event_text, events_dir, events_with_prefix, workspace_root};
pub use moto::Moto;
pub use runtime_api::{FunctionProcess, Invocation, RuntimeApi};

/// A client of `$service` on `$sdk` that records the operations it calls for `$function`
/// (`target/autonomic-operations/<function>.txt`), built through the same `sdk_client!` path as
/// the function binaries: `recording_client!(aws_sdk_dynamodb, &sdk, "asg-scaler")`.
#[macro_export]
macro_rules! recording_client {
    ($service:ident, $sdk:expr, $function:expr) => {
        autonomic::sdk_client!(
            $service,
            $sdk,
            Some(autonomic::aws::OperationRecorder::to_file(
                $crate::operations_file($function)
            ))
        )
    };
}

/// A new state table in the shared moto (unique name, as `infra/` defines it), whose client
/// records the operations `function` calls.
pub async fn state_table(function: &str) -> autonomic::guard::StateTable {
    let sdk = Moto::shared().sdk_config().await;
    let name = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &name).await;
    autonomic::guard::StateTable::new(recording_client!(aws_sdk_dynamodb, &sdk, function), name)
}

/// A Lambda event with `payload`, `request_id` and a deadline `deadline_in` from now.
pub fn lambda_event(
    payload: serde_json::Value,
    request_id: &str,
    deadline_in: std::time::Duration,
) -> lambda_runtime::LambdaEvent<serde_json::Value> {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_string();
    context.deadline = (autonomic::time::now_ms() + deadline_in.as_millis() as i64) as u64;
    lambda_runtime::LambdaEvent::new(payload, context)
}

/// An invocation context for `request_id` with `deadline_in` left, reporting to memory.
pub fn invocation(
    function: &str,
    request_id: &str,
    deadline_in: std::time::Duration,
) -> autonomic::Invocation {
    let (reporter, _) = autonomic::audit::Reporter::in_memory(function);
    autonomic::Invocation::new(
        &reporter,
        request_id,
        autonomic::time::now_ms() + deadline_in.as_millis() as i64,
        false,
    )
}

/// Takes the lease `name` as another invocation (`holder`, a minute from its deadline) would:
/// the lock a test holds while a function meets it.
pub async fn hold_lease(
    guards: &autonomic::guard::Guards,
    name: &autonomic::guard::LeaseName,
    holder: &str,
) -> autonomic::guard::HeldLease {
    let inv = invocation("test", holder, std::time::Duration::from_secs(60));
    match guards
        .lease(&inv, name, inv.deadline_ms, None)
        .await
        .unwrap_or_else(|e| panic!("take lease {name}: {e}"))
    {
        autonomic::guard::LeaseOutcome::Acquired(lease) => lease,
        other => panic!("lease {name} is not free: {other:?}"),
    }
}

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

/// The environment with which a function reads its example document as a file in its package
/// (`file:<file>`, relative to `crate_dir`, the crate's `CARGO_MANIFEST_DIR`), document loaded,
/// with `STATE_TABLE_NAME` set: what a config test of the example needs.
pub async fn example_document_env(
    variable: &str,
    file: &str,
    crate_dir: &str,
) -> autonomic::config::Env {
    let reference = format!("file:{file}");
    let mut env = autonomic::config::Env::from_map([
        (variable, reference.as_str()),
        ("LAMBDA_TASK_ROOT", crate_dir),
        ("STATE_TABLE_NAME", "t"),
    ]);
    env.load_documents(&[variable], &aws_config::SdkConfig::builder().build())
        .await
        .expect("a file reference needs no AWS call");
    env
}
