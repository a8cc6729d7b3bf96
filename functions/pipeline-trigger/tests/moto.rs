//! The trigger's handler with the real SDK client against moto's CodePipeline V2: executions
//! start with their variables, exactly once per pipeline and push, and nothing starts on a
//! pipeline that cannot take the start. (moto runs nothing and ignores clientRequestToken, so the
//! claim is what these tests prove; tests/faults.rs covers the token.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic::{ErrorClass, FunctionError};
use autonomic_testkit::estate::{create_pipeline, pipeline_executions};
use autonomic_testkit::{
    Moto, create_state_table, event, hold_lease, lambda_event, recording_client, unique,
};
use pipeline_trigger::PipelineTrigger;
use pipeline_trigger::config::TriggerConfig;
use pipeline_trigger::trigger::pipeline_lease;
use serde_json::Value;

const REPOSITORY: &str = "autonomic-demo/web";

struct Setup {
    trigger: Arc<PipelineTrigger<aws_sdk_codepipeline::Client>>,
    sdk: aws_config::SdkConfig,
    release: String,
    staging: String,
    audit: Arc<Mutex<Vec<String>>>,
}

/// A release and a staging pipeline (the release one declaring `release_variables`), routed as
/// the example document routes them; `extra_routes` are appended (`RELEASE` in them names the
/// release pipeline).
async fn setup_with(release_variables: &[&str], extra_routes: &str, dry_run: bool) -> Setup {
    let sdk = Moto::shared().sdk_config().await;
    let release = unique("release");
    let staging = unique("staging");
    create_pipeline(&sdk, &release, REPOSITORY, release_variables).await;
    create_pipeline(&sdk, &staging, REPOSITORY, &["IMAGE_TAG", "IMAGE_URI"]).await;
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let routes = format!(
        r#"{{"routes": [
          {{"name": "release", "repository": "{REPOSITORY}", "tags": {{"semver": ">=1.0.0"}},
            "pipelines": ["{release}"], "sourceRevision": {{"actionName": "Image"}},
            "variables": {{"IMAGE_TAG": "{{tag}}", "IMAGE_URI": "{{registry}}/{{repository}}@{{digest}}",
                           "RELEASE_LINE": "{{major}}.{{minor}}"}}}},
          {{"name": "candidates", "repository": "autonomic-demo/*", "tags": {{"glob": "*-rc*"}},
            "pipelines": ["{staging}"],
            "variables": {{"IMAGE_TAG": "{{tag}}", "IMAGE_URI": "{{registry}}/{{repository}}@{{digest}}"}}}}
          {extra_routes}
        ]}}"#,
        extra_routes = extra_routes.replace("RELEASE", &release),
    );
    let config = TriggerConfig::from_env(Env::from_map([
        ("PIPELINE_ROUTES", routes.as_str()),
        ("STATE_TABLE_NAME", table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("DRY_RUN", if dry_run { "true" } else { "false" }),
    ]))
    .unwrap();
    let (reporter, audit) = Reporter::in_memory("pipeline-trigger");
    // The function's own clients record what it calls, for the IAM-equals-use infra test.
    let trigger = PipelineTrigger::new(
        recording_client!(aws_sdk_codepipeline, &sdk, "pipeline-trigger"),
        StateTable::new(
            recording_client!(aws_sdk_dynamodb, &sdk, "pipeline-trigger"),
            table,
        ),
        config,
        reporter,
    );
    Setup {
        trigger: Arc::new(trigger),
        sdk,
        release,
        staging,
        audit,
    }
}

async fn setup() -> Setup {
    setup_with(&["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"], "", false).await
}

async fn handle(s: &Setup, sample: &str, request_id: &str) -> Result<Value, FunctionError> {
    s.trigger
        .handle(lambda_event(
            event(sample),
            request_id,
            Duration::from_secs(30),
        ))
        .await
}

async fn executions(s: &Setup, pipeline: &str) -> Vec<BTreeMap<String, String>> {
    pipeline_executions(&s.sdk, pipeline)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

fn outcomes(r: &Value) -> Vec<(String, String)> {
    r["starts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let outcome = l["outcome"].as_str().unwrap().to_string();
            let reason = l["reason"]
                .as_str()
                .map(|r| format!(":{r}"))
                .unwrap_or_default();
            (
                l["pipeline"].as_str().unwrap().to_string(),
                outcome + &reason,
            )
        })
        .collect()
}

const DIGEST: &str = "sha256:1a4000b7c0ffee5a1e5e2b8d0f4c6e8a9b1d3f5e7a9c1e3b5d7f9a1c3e5b7d9f";

#[tokio::test]
async fn a_release_push_starts_the_release_pipeline_once_with_its_variables() {
    let s = setup().await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "r1")
        .await
        .unwrap();
    assert_eq!(outcomes(&r), [(s.release.clone(), "started".to_string())]);
    let runs = executions(&s, &s.release).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["IMAGE_TAG"], "1.4.0");
    assert_eq!(
        runs[0]["IMAGE_URI"],
        format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/{REPOSITORY}@{DIGEST}")
    );
    assert_eq!(runs[0]["RELEASE_LINE"], "1.4");
    assert_eq!(r["starts"][0]["sourceRevision"]["imageDigest"], DIGEST);
    assert!(
        executions(&s, &s.staging).await.is_empty(),
        "1.4.0 is not a release candidate"
    );

    // The same delivery again, then the same digest pushed as another tag: nothing more starts.
    let again = handle(&s, "eventbridge-ecr-image-push-release.json", "r2")
        .await
        .unwrap();
    assert_eq!(
        outcomes(&again),
        [(s.release.clone(), "skipped:duplicate".to_string())]
    );
    let retag = handle(&s, "eventbridge-ecr-image-push-retag.json", "r3")
        .await
        .unwrap();
    assert_eq!(
        outcomes(&retag),
        [(s.release.clone(), "skipped:retag".to_string())]
    );
    assert!(
        retag["starts"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("as tag 1.4.0")
    );
    assert_eq!(executions(&s, &s.release).await.len(), 1);

    let audit: Vec<Value> = s
        .audit
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let applied: Vec<_> = audit
        .iter()
        .filter(|a| a["record"]["outcome"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["record"]["target"], s.release.as_str());
    assert!(applied[0]["record"]["details"]["done"]["executionId"].is_string());
}

#[tokio::test]
async fn a_release_candidate_starts_only_staging_and_an_unrouted_push_nothing() {
    let s = setup().await;
    let r = handle(&s, "eventbridge-ecr-image-push-rc.json", "r1")
        .await
        .unwrap();
    assert_eq!(outcomes(&r), [(s.staging.clone(), "started".to_string())]);
    assert!(
        executions(&s, &s.release).await.is_empty(),
        "a prerelease is outside >=1.0.0"
    );
    assert_eq!(
        executions(&s, &s.staging).await[0]["IMAGE_TAG"],
        "1.4.0-rc1"
    );

    let unrouted = handle(&s, "eventbridge-ecr-image-push.json", "r2")
        .await
        .unwrap();
    assert_eq!(unrouted["starts"], serde_json::json!([]));
    assert_eq!(unrouted["skips"][0]["reason"], "unrouted");
    for skipped in [
        "eventbridge-ecr-image-push-untagged.json",
        "eventbridge-ecr-image-delete.json",
    ] {
        let r = handle(&s, skipped, "r3").await.unwrap();
        assert!(r["skips"][0]["reason"].is_string(), "{skipped}: {r}");
    }
}

#[tokio::test]
async fn dry_run_returns_the_starts_it_would_make_and_starts_nothing() {
    let s = setup_with(&["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"], "", true).await;
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "r1")
        .await
        .unwrap();
    assert_eq!(r["dryRun"], true);
    assert_eq!(
        outcomes(&r),
        [(s.release.clone(), "would_start".to_string())]
    );
    assert_eq!(r["starts"][0]["variables"]["RELEASE_LINE"], "1.4");
    assert!(executions(&s, &s.release).await.is_empty());
}

#[tokio::test]
async fn a_variable_the_pipeline_does_not_declare_is_a_permanent_error_naming_it() {
    let s = setup_with(&["IMAGE_TAG", "IMAGE_URI"], "", false).await;
    let e = handle(&s, "eventbridge-ecr-image-push-release.json", "r1")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.UndeclaredVariable");
    assert!(
        e.to_string()
            .contains("does not declare the variable RELEASE_LINE"),
        "{e}"
    );
    assert!(executions(&s, &s.release).await.is_empty());
}

#[tokio::test]
async fn a_source_action_the_pipeline_does_not_have_is_refused() {
    let routes = r#", {"name": "other-action", "repository": "autonomic-demo/web", "tags": {"glob": "*-rc*"},
        "pipelines": ["RELEASE"], "sourceRevision": {"actionName": "Missing"}}"#;
    let s = setup_with(&["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"], routes, false).await;
    let e = handle(&s, "eventbridge-ecr-image-push-rc.json", "r1")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.NoSuchSourceAction");
    assert!(
        e.to_string()
            .contains(r#"no ECR source action named "Missing""#),
        "{e}"
    );
    // The other pipeline of the push still started.
    assert_eq!(executions(&s, &s.staging).await.len(), 1);
    assert!(executions(&s, &s.release).await.is_empty());
}

#[tokio::test]
async fn a_failing_pipeline_does_not_repeat_the_others_on_retry() {
    let routes = r#", {"name": "missing", "repository": "autonomic-demo/web", "pipelines": ["no-such-pipeline"]}"#;
    let s = setup_with(&["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"], routes, false).await;
    for delivery in ["r1", "r2", "r3"] {
        let e = handle(&s, "eventbridge-ecr-image-push-release.json", delivery)
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "Permanent.NotFound", "{delivery}");
        assert!(e.to_string().contains("no-such-pipeline"));
    }
    assert_eq!(
        executions(&s, &s.release).await.len(),
        1,
        "started once over three deliveries"
    );
    let audit = s.audit.lock().unwrap().join("\n");
    assert_eq!(
        audit.matches("\"reason\":\"duplicate\"").count(),
        2,
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_start_once() {
    let s = setup().await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let trigger = s.trigger.clone();
            tokio::spawn(async move {
                trigger
                    .handle(lambda_event(
                        event("eventbridge-ecr-image-push-release.json"),
                        &format!("c{i}"),
                        Duration::from_secs(30),
                    ))
                    .await
            })
        })
        .collect();
    let mut started = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) if r["starts"][0]["outcome"] == "started" => started += 1,
            Ok(r) => assert_eq!(r["starts"][0]["reason"], "duplicate", "{r}"),
            // Still in progress elsewhere: the delivery is retried, never a final skip.
            Err(e) => assert_eq!(e.error_type(), "Retryable.InProgress", "{e}"),
        }
    }
    assert_eq!(started, 1);
    assert_eq!(executions(&s, &s.release).await.len(), 1);
}

#[tokio::test]
async fn a_pipeline_locked_by_a_live_invocation_is_contention_not_a_skip() {
    let s = setup().await;
    let held = hold_lease(
        &s.trigger.guards,
        &pipeline_lease(&s.release),
        "other-invocation",
    )
    .await;
    // Less time than the lock has left: waiting cannot end it, so the delivery must come back.
    let e = s
        .trigger
        .handle(lambda_event(
            event("eventbridge-ecr-image-push-release.json"),
            "r1",
            Duration::from_secs(14),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Retryable);
    assert_eq!(e.error_type(), "Retryable.LeaseContention");
    assert!(executions(&s, &s.release).await.is_empty());
    held.release().await;
    // Once the lock is gone, the retried delivery starts it.
    let r = handle(&s, "eventbridge-ecr-image-push-release.json", "r2")
        .await
        .unwrap();
    assert_eq!(outcomes(&r), [(s.release.clone(), "started".to_string())]);
}
