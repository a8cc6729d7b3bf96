//! Faults moto cannot produce, injected through a wrapper of the API trait around the real SDK
//! client (moto behind it): CodePipeline's concurrency limit, a start that took effect but whose
//! answer was lost, one whose request never arrived, and a listing that fails. moto ignores
//! clientRequestToken (every start is a new execution), so these tests count executions: a start
//! that may have taken effect is looked for among the pipeline's executions, never made again on
//! the strength of the token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic::{CallError, ErrorClass};
use autonomic_testkit::estate::{create_pipeline, pipeline_executions};
use autonomic_testkit::{Moto, create_state_table, event, lambda_event, unique};
use pipeline_trigger::PipelineTrigger;
use pipeline_trigger::api::PipelineApi;
use pipeline_trigger::config::TriggerConfig;
use pipeline_trigger::planner::{ExecutionSeen, PipelineShape, Start};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// CodePipeline refuses: too many executions in progress.
    ConcurrencyLimit,
    /// The start is made, then the answer is lost (a timeout after the service acted).
    LostAnswer,
    /// The start is made, the answer is lost, and the next listing of executions fails too.
    LostAnswerUnlisted,
    /// The request times out before it reaches the service: nothing started.
    LostRequest,
}

fn timeout() -> CallError {
    CallError::new(
        "codepipeline",
        "StartPipelineExecution",
        "Timeout",
        "operation timeout (all attempts) elapsed",
        ErrorClass::Retryable,
    )
}

/// The real client, with a fault on the next start, and every token it was asked to send.
#[derive(Clone)]
struct Faulty {
    inner: aws_sdk_codepipeline::Client,
    fault: Arc<Mutex<Fault>>,
    tokens: Arc<Mutex<Vec<String>>>,
    fail_next_listing: Arc<Mutex<bool>>,
}

impl PipelineApi for Faulty {
    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineShape>, CallError> {
        PipelineApi::get_pipeline(&self.inner, name).await
    }

    async fn start_execution(&self, start: &Start) -> Result<String, CallError> {
        self.tokens
            .lock()
            .unwrap()
            .push(start.client_request_token.clone());
        let fault = std::mem::replace(&mut *self.fault.lock().unwrap(), Fault::None);
        match fault {
            Fault::None => self.inner.start_execution(start).await,
            // As the SDK path classifies the service's answer.
            Fault::ConcurrencyLimit => Err(CallError::from_code(
                "codepipeline",
                "StartPipelineExecution",
                "ConcurrentPipelineExecutionsLimitExceededException",
                "the pipeline has reached its limit of concurrent executions",
            )),
            Fault::LostAnswer => {
                self.inner.start_execution(start).await?;
                Err(timeout())
            }
            Fault::LostAnswerUnlisted => {
                self.inner.start_execution(start).await?;
                *self.fail_next_listing.lock().unwrap() = true;
                Err(timeout())
            }
            Fault::LostRequest => Err(timeout()),
        }
    }

    async fn executions_since(
        &self,
        pipeline: &str,
        since_ms: i64,
    ) -> Result<Vec<ExecutionSeen>, CallError> {
        if std::mem::take(&mut *self.fail_next_listing.lock().unwrap()) {
            return Err(CallError::new(
                "codepipeline",
                "ListPipelineExecutions",
                "Timeout",
                "operation timeout (all attempts) elapsed",
                ErrorClass::Retryable,
            ));
        }
        self.inner.executions_since(pipeline, since_ms).await
    }

    async fn execution_variables(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<BTreeMap<String, String>, CallError> {
        self.inner.execution_variables(pipeline, execution_id).await
    }
}

async fn setup(
    fault: Fault,
    start_settle_seconds: &str,
) -> (
    PipelineTrigger<Faulty>,
    Faulty,
    aws_config::SdkConfig,
    String,
) {
    let sdk = Moto::shared().sdk_config().await;
    let pipeline = unique("release");
    create_pipeline(&sdk, &pipeline, "autonomic-demo/web", &["IMAGE_TAG"]).await;
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let routes = format!(
        r#"{{"routes": [{{"name": "release", "repository": "autonomic-demo/web",
            "pipelines": ["{pipeline}"], "variables": {{"IMAGE_TAG": "{{tag}}"}}}}]}}"#
    );
    let config = TriggerConfig::from_env(Env::from_map([
        ("PIPELINE_ROUTES", routes.as_str()),
        ("STATE_TABLE_NAME", table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("START_SETTLE_SECONDS", start_settle_seconds),
    ]))
    .unwrap();
    let api = Faulty {
        inner: aws_sdk_codepipeline::Client::new(&sdk),
        fault: Arc::new(Mutex::new(fault)),
        tokens: Arc::default(),
        fail_next_listing: Arc::default(),
    };
    let trigger = PipelineTrigger::new(
        api.clone(),
        StateTable::new(aws_sdk_dynamodb::Client::new(&sdk), table),
        config,
        Reporter::in_memory("pipeline-trigger").0,
    );
    (trigger, api, sdk, pipeline)
}

#[tokio::test]
async fn the_concurrency_limit_is_retryable_and_the_retry_starts_it() {
    let (trigger, api, sdk, pipeline) = setup(Fault::ConcurrencyLimit, "15").await;
    let push = || event("eventbridge-ecr-image-push-release.json");
    let e = trigger
        .handle(lambda_event(push(), "r1", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(
        e.error_type(),
        "Retryable.ConcurrentPipelineExecutionsLimitExceededException"
    );
    assert!(!e.may_have_taken_effect(), "a refusal: nothing started");
    assert!(pipeline_executions(&sdk, &pipeline).await.is_empty());
    // The service refused, so the claim was released: the retry starts it at once.
    let r = trigger
        .handle(lambda_event(push(), "r2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["outcome"], "started");
    assert_eq!(pipeline_executions(&sdk, &pipeline).await.len(), 1);
    let tokens = api.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1]);
}

fn push() -> serde_json::Value {
    event("eventbridge-ecr-image-push-release.json")
}

#[tokio::test]
async fn a_lost_answer_is_found_among_the_executions_never_started_again() {
    let (trigger, api, sdk, pipeline) = setup(Fault::LostAnswer, "15").await;
    // One attempt, its answer lost: the execution it made is looked for and recorded.
    let r = trigger
        .handle(lambda_event(push(), "r1", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["outcome"], "started", "{r:#}");
    assert_eq!(r["starts"][0]["foundBy"], "variables", "{r:#}");
    let runs = pipeline_executions(&sdk, &pipeline).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(r["starts"][0]["executionId"], runs[0].0.as_str());
    assert_eq!(api.tokens.lock().unwrap().len(), 1, "one start request");
    // And a later delivery is a duplicate.
    let r = trigger
        .handle(lambda_event(push(), "r2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["reason"], "duplicate");
    assert_eq!(pipeline_executions(&sdk, &pipeline).await.len(), 1);
}

#[tokio::test]
async fn a_takeover_finds_the_start_of_the_attempt_it_takes_over() {
    let (trigger, api, sdk, pipeline) = setup(Fault::LostAnswerUnlisted, "15").await;
    // Started, answer lost, and the executions could not be read: the claim is kept with its
    // intent.
    let e = trigger
        .handle(lambda_event(push(), "r1", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.Timeout");
    assert!(e.may_have_taken_effect());
    // The same digest pushed as v1.4.0 takes the claim over: it looks for the interrupted 1.4.0
    // start, finds it, and starts nothing of its own.
    let r = trigger
        .handle(lambda_event(
            event("eventbridge-ecr-image-push-retag.json"),
            "r2",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["outcome"], "started", "{r:#}");
    assert_eq!(r["starts"][0]["tag"], "1.4.0");
    assert_eq!(r["starts"][0]["foundBy"], "variables");
    assert_eq!(pipeline_executions(&sdk, &pipeline).await.len(), 1);
    assert_eq!(
        api.tokens.lock().unwrap().len(),
        1,
        "no second start request"
    );
    // And the 1.4.0 push's redelivery is then a duplicate.
    let r = trigger
        .handle(lambda_event(push(), "r3", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["reason"], "duplicate");
    assert_eq!(pipeline_executions(&sdk, &pipeline).await.len(), 1);
}

#[tokio::test]
async fn a_request_that_never_arrived_is_started_once_the_settle_time_shows_nothing() {
    // Within the settle time, nothing found is not yet proof: the delivery comes back.
    let (trigger, api, sdk, pipeline) = setup(Fault::LostRequest, "600").await;
    let e = trigger
        .handle(lambda_event(push(), "r1", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.Timeout");
    let e = trigger
        .handle(lambda_event(push(), "r2", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.StartUnsettled", "{e}");
    assert!(e.may_have_taken_effect(), "the claim stays with its intent");
    // And the attempt after that one still sees the first attempt's intent (each takeover
    // carries it forward), so it still only looks.
    let e = trigger
        .handle(lambda_event(push(), "r3", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.StartUnsettled", "{e}");
    assert!(pipeline_executions(&sdk, &pipeline).await.is_empty());
    assert_eq!(api.tokens.lock().unwrap().len(), 1);
    // Past the settle time (none here), the executions still show nothing: it is started.
    let (trigger, api, sdk, pipeline) = setup(Fault::LostRequest, "0").await;
    assert!(
        trigger
            .handle(lambda_event(push(), "r1", Duration::from_secs(30)))
            .await
            .is_err()
    );
    let r = trigger
        .handle(lambda_event(push(), "r2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["outcome"], "started", "{r:#}");
    assert!(r["starts"][0].get("foundBy").is_none());
    assert_eq!(pipeline_executions(&sdk, &pipeline).await.len(), 1);
    assert_eq!(api.tokens.lock().unwrap().len(), 2);
}
