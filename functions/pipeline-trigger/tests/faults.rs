//! Faults moto cannot produce, injected through a wrapper of the API trait around the real SDK
//! client (moto behind it): CodePipeline's concurrency limit, and a start that took effect but
//! whose answer was lost. moto ignores clientRequestToken, so what these tests prove about the
//! token is that a retry sends the same one: real CodePipeline answers a repeated token with the
//! execution it already started.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

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
use pipeline_trigger::planner::{PipelineShape, Start};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    None,
    /// CodePipeline refuses: too many executions in progress.
    ConcurrencyLimit,
    /// The start is made, then the answer is lost (a timeout after the service acted).
    LostAnswer,
}

/// The real client, with a fault on the next start, and every token it was asked to send.
#[derive(Clone)]
struct Faulty {
    inner: aws_sdk_codepipeline::Client,
    fault: Arc<Mutex<Fault>>,
    tokens: Arc<Mutex<Vec<String>>>,
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
                Err(CallError::new(
                    "codepipeline",
                    "StartPipelineExecution",
                    "Timeout",
                    "operation timeout (all attempts) elapsed",
                    ErrorClass::Retryable,
                ))
            }
        }
    }
}

async fn setup(
    fault: Fault,
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
    ]))
    .unwrap();
    let api = Faulty {
        inner: aws_sdk_codepipeline::Client::new(&sdk),
        fault: Arc::new(Mutex::new(fault)),
        tokens: Arc::default(),
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
    let (trigger, api, sdk, pipeline) = setup(Fault::ConcurrencyLimit).await;
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

#[tokio::test]
async fn a_lost_answer_is_retried_as_the_same_request() {
    let (trigger, api, _sdk, _pipeline) = setup(Fault::LostAnswer).await;
    let push = || event("eventbridge-ecr-image-push-release.json");
    let e = trigger
        .handle(lambda_event(push(), "r1", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.Timeout");
    assert!(e.may_have_taken_effect());
    // The claim was handed over with the start recorded as its intent; the retry takes it over
    // and makes the same request with the same token, which CodePipeline answers with the
    // execution the lost answer was about (moto, ignoring tokens, starts a second one).
    let r = trigger
        .handle(lambda_event(push(), "r2", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["outcome"], "started");
    let tokens = api.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        tokens[0], tokens[1],
        "the retry is the same request to CodePipeline"
    );
    assert!(tokens[0].len() == 64 && tokens[0].chars().all(|c| c.is_ascii_hexdigit()));
    // And once it succeeded, a third delivery is a duplicate: no third request.
    let r = trigger
        .handle(lambda_event(push(), "r3", Duration::from_secs(30)))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["reason"], "duplicate");
    assert_eq!(api.tokens.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_retag_that_takes_over_a_lost_answer_replays_that_start_not_its_own() {
    let (trigger, api, _sdk, _pipeline) = setup(Fault::LostAnswer).await;
    let e = trigger
        .handle(lambda_event(
            event("eventbridge-ecr-image-push-release.json"),
            "r1",
            Duration::from_secs(30),
        ))
        .await
        .unwrap_err();
    assert!(e.may_have_taken_effect());
    // The same digest pushed as v1.4.0 takes the claim over: it makes the interrupted 1.4.0
    // start again (same token), not a start of its own that could be a second execution.
    let r = trigger
        .handle(lambda_event(
            event("eventbridge-ecr-image-push-retag.json"),
            "r2",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["outcome"], "started");
    assert_eq!(r["starts"][0]["tag"], "1.4.0");
    let tokens = api.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1]);
    // And the 1.4.0 push's redelivery is then a duplicate.
    let r = trigger
        .handle(lambda_event(
            event("eventbridge-ecr-image-push-release.json"),
            "r3",
            Duration::from_secs(30),
        ))
        .await
        .unwrap();
    assert_eq!(r["starts"][0]["reason"], "duplicate");
    assert_eq!(api.tokens.lock().unwrap().len(), 2);
}
