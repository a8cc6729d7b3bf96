//! Faults injected end to end: the built function binaries under the Runtime API emulator, talking
//! to moto through the test kit's fault-injecting proxy. For every mutating and guarding AWS call
//! of each function, and each kind of fault (an error status, a dropped connection, a hang;
//! before the request reaches moto or after moto acted on it), the event is redelivered as AWS
//! would until it is handled, and the test asserts: exactly one effect, nothing lost, and only
//! retryable errors on the way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeSet;
use std::time::Duration;

use autonomic_e2e::start_function_with;
use autonomic_testkit::estate::{
    create_distribution, create_group, create_pipeline, desired_capacity, invalidation_batches,
    pipeline_executions,
};
use autonomic_testkit::kube_stand_in::{
    KubeFault, KubeStandIn, TokenCheck, eks_clusters_document, seed_demo,
};
use autonomic_testkit::{
    Fault, FaultProxy, Invocation, Moto, create_state_table, event, event_text, unique,
};
use serde_json::Value;

/// Time each invocation gets: enough for a hung call's attempt timeout and the retry after it.
const INVOCATION_TIME: Duration = Duration::from_secs(20);
/// How many fault cases run at once, over both matrices.
static CASES_AT_ONCE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);
/// How many deliveries an event gets before the test calls it lost.
const DELIVERIES: usize = 12;

use autonomic_testkit::When::{After, Before};

/// The faults every operation meets. A retryable error three times outlasts the SDK's own three
/// attempts; a hang outlasts one attempt's time limit.
fn faults() -> Vec<(Fault, autonomic_testkit::When, usize)> {
    vec![
        (Fault::error(500, "InternalFailure"), Before, 3),
        (Fault::error(500, "InternalFailure"), After, 3),
        (Fault::error(400, "ThrottlingException"), After, 3),
        (Fault::Reset, Before, 3),
        (Fault::Reset, After, 3),
        (Fault::Hang, After, 1),
    ]
}

/// The shared moto, its SDK configuration, and a new state table.
async fn estate() -> (&'static Moto, aws_config::SdkConfig, String) {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    (moto, sdk, table)
}

/// An error on the way to handling an event must be retryable: the event comes back (an async
/// invocation's retry, an SQS redelivery) and is handled then.
fn check_retryable(case: &str, answer: &Invocation) {
    if let Invocation::Error {
        error_type,
        error_message,
    } = answer
    {
        assert!(
            error_type.starts_with("Retryable."),
            "{case}: a permanent error for a transient fault: {error_type}: {error_message}"
        );
    }
}

/// A fault case's function: started behind its own fault proxy in front of `moto` with `env`;
/// the next `times` calls of `operation` meet `fault`, `when`.
async fn behind_fault_proxy(
    moto: &Moto,
    function: &str,
    env: &[(&str, &str)],
    (operation, fault, when, times): (&str, Fault, autonomic_testkit::When, usize),
) -> (FaultProxy, autonomic_e2e::RunningFunction) {
    let proxy = FaultProxy::start(moto).await;
    let f = start_function_with(function, proxy.env(moto), env).await;
    proxy.inject(operation, fault, when, times);
    (proxy, f)
}

/// Delivers `payload` as an async invocation's retries do, until the function answers; the
/// answer and the (retryable) errors on the way.
async fn deliver_until_handled(
    f: &autonomic_e2e::RunningFunction,
    payload: &[u8],
    case: &str,
) -> (Value, Vec<String>) {
    deliver_until_handled_within(f, payload, case, INVOCATION_TIME).await
}

/// [`deliver_until_handled`] with `time` for each invocation.
async fn deliver_until_handled_within(
    f: &autonomic_e2e::RunningFunction,
    payload: &[u8],
    case: &str,
    time: Duration,
) -> (Value, Vec<String>) {
    let mut errors = Vec::new();
    for _ in 0..DELIVERIES {
        let answer = f.api.invoke_within(payload.to_vec(), time).await;
        check_retryable(case, &answer);
        match answer {
            Invocation::Response(r) => return (r, errors),
            Invocation::Error { error_type, .. } => errors.push(error_type),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{case}: lost after {errors:?}")
}

async fn asg_case(
    operation: &'static str,
    fault: Fault,
    when: autonomic_testkit::When,
    times: usize,
) -> String {
    let case = format!("{operation} {fault:?} {when:?} x{times}");
    let (moto, sdk, table) = estate().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let group = unique("web");
    create_group(&asg, &group, 1, 20, 2).await;
    let rules = format!(
        r#"{{"rules": [{{"name": "web", "match": {{"nameGlob": "web-*"}}, "group": "{group}",
            "onAlarm": {{"change": 3}}, "maxStep": 3, "cooldownSeconds": 300}}]}}"#
    );
    let (proxy, f) = behind_fault_proxy(
        moto,
        "asg-scaler",
        &[
            ("SCALING_RULES", rules.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ],
        (operation, fault, when, times),
    )
    .await;
    let payload = event("eventbridge-alarm-metric-alarm.json")
        .to_string()
        .into_bytes();
    let (handled, errors) = deliver_until_handled(&f, &payload, &case).await;
    assert_eq!(
        desired_capacity(&asg, &group).await,
        5,
        "{case}: exactly one step of +3 ({errors:?}, {handled})"
    );
    // And a later delivery of the same transition changes nothing.
    let again = f.api.invoke_within(payload, INVOCATION_TIME).await;
    assert_eq!(
        again.response()["transitions"][0]["plan"]["skips"][0]["reason"],
        "duplicate",
        "{case}"
    );
    assert_eq!(desired_capacity(&asg, &group).await, 5, "{case}");
    format!(
        "{case}: errors {errors:?}, SetDesiredCapacity reached moto {} time(s)",
        proxy.forwarded("autoscaling:SetDesiredCapacity")
    )
}

async fn run_matrix<F, Fut>(operations: &[&'static str], case: F)
where
    F: Fn(&'static str, Fault, autonomic_testkit::When, usize) -> Fut,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    // The cases run a few at a time (across both matrices, which run at once): each has its own
    // proxy, function process and resources, and all share one moto, which serialises requests.
    // Every case at once could slow moto past the invocations' time on a loaded machine.
    let mut all = Vec::new();
    for operation in operations {
        for (fault, when, times) in faults() {
            let run = case(operation, fault, when, times);
            all.push(tokio::spawn(async move {
                let _turn = CASES_AT_ONCE.acquire().await.unwrap();
                run.await
            }));
        }
    }
    let mut report = Vec::new();
    for handle in all {
        report.push(handle.await.unwrap());
    }
    for line in report {
        println!("{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asg_scaler_every_fault_on_every_call_gives_exactly_one_scaling() {
    run_matrix(
        &[
            "autoscaling:SetDesiredCapacity",
            "autoscaling:DescribeAutoScalingGroups",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        asg_case,
    )
    .await;
}

/// `sqs-invalidation-requests.json` for `domain`, keeping only the messages with these ids (all
/// when `None`), as SQS redelivers only the reported ones.
fn requests(domain: &str, only: Option<&BTreeSet<String>>) -> Value {
    let mut v: Value = serde_json::from_str(
        &event_text("sqs-invalidation-requests.json").replace("static.demo.example.com", domain),
    )
    .unwrap();
    if let Some(only) = only {
        v["Records"]
            .as_array_mut()
            .unwrap()
            .retain(|r| only.contains(r["messageId"].as_str().unwrap()));
    }
    v
}

async fn cdn_case(
    operation: &'static str,
    fault: Fault,
    when: autonomic_testkit::When,
    times: usize,
) -> String {
    let case = format!("{operation} {fault:?} {when:?} x{times}");
    let (moto, sdk, table) = estate().await;
    let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
    let domain = format!("{}.example.com", unique("static"));
    let distribution = create_distribution(&cloudfront, &domain).await;
    let (proxy, f) = behind_fault_proxy(
        moto,
        "cdn-invalidator",
        &[("STATE_TABLE_NAME", table.as_str())],
        (operation, fault, when, times),
    )
    .await;
    let mut pending: Option<BTreeSet<String>> = None;
    let mut rounds = Vec::new();
    for _ in 0..DELIVERIES {
        let payload = requests(&domain, pending.as_ref());
        let answer = f
            .api
            .invoke_within(payload.to_string().into_bytes(), INVOCATION_TIME)
            .await;
        check_retryable(&case, &answer);
        let reported: BTreeSet<String> = match &answer {
            Invocation::Response(r) => r["batchItemFailures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
                .collect(),
            // The whole batch comes back.
            Invocation::Error { .. } => payload["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["messageId"].as_str().unwrap().to_string())
                .collect(),
        };
        rounds.push(reported.len());
        if reported.is_empty() {
            pending = Some(reported);
            break;
        }
        pending = Some(reported);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        pending.map(|p| p.len()),
        Some(0),
        "{case}: messages lost after {rounds:?}"
    );
    let created = invalidation_batches(&cloudfront, &distribution).await;
    let references: BTreeSet<&str> = created.iter().map(|(_, r, _)| r.as_str()).collect();
    let paths: BTreeSet<&str> = created
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(String::as_str))
        .collect();
    for want in ["/index.html", "/css/site.css"] {
        assert!(
            paths.contains(want),
            "{case}: {want} never invalidated: {paths:?}"
        );
    }
    // moto makes a new invalidation for a repeated CallerReference, where CloudFront returns the
    // one it made: one reference is one invalidation in AWS.
    assert_eq!(references.len(), 1, "{case}: {created:?}");
    format!(
        "{case}: reported per round {rounds:?}, CreateInvalidation reached moto {} time(s) with one CallerReference",
        proxy.forwarded("cloudfront:CreateInvalidation")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cdn_invalidator_every_fault_on_every_call_loses_no_message() {
    run_matrix(
        &[
            "cloudfront:CreateInvalidation",
            "cloudfront:ListInvalidations",
            "cloudfront:ListDistributions",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        cdn_case,
    )
    .await;
}

async fn pipeline_case(
    operation: &'static str,
    fault: Fault,
    when: autonomic_testkit::When,
    times: usize,
) -> String {
    let case = format!("{operation} {fault:?} {when:?} x{times}");
    let (moto, sdk, table) = estate().await;
    let pipeline = unique("release");
    create_pipeline(&sdk, &pipeline, "autonomic-demo/web", &["IMAGE_TAG"]).await;
    let routes = format!(
        r#"{{"routes": [{{"name": "release", "repository": "autonomic-demo/web",
            "pipelines": ["{pipeline}"], "variables": {{"IMAGE_TAG": "{{tag}}"}}}}]}}"#
    );
    let (proxy, f) = behind_fault_proxy(
        moto,
        "pipeline-trigger",
        &[
            ("PIPELINE_ROUTES", routes.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
            // The redeliveries here come within a second; CodePipeline's own delay to list an
            // execution it accepted is not part of the emulator.
            ("START_SETTLE_SECONDS", "1"),
        ],
        (operation, fault, when, times),
    )
    .await;
    // The look-ups run only after a start that may have taken effect: the first start's answer
    // is lost (moto acted, a 500 came back), so the faults meet the look-ups it needs.
    if operation.ends_with("ListPipelineExecutions") || operation.ends_with("GetPipelineExecution")
    {
        proxy.inject(
            "codepipeline:StartPipelineExecution",
            Fault::error(500, "InternalFailure"),
            After,
            1,
        );
    }
    let payload = event("eventbridge-ecr-image-push-release.json")
        .to_string()
        .into_bytes();
    let (handled, errors) = deliver_until_handled(&f, &payload, &case).await;
    // Exactly one execution, whatever failed on the way: moto ignores clientRequestToken, as a
    // service that did not de-duplicate would, so a second start request would be a second run.
    let runs = pipeline_executions(&sdk, &pipeline).await;
    assert_eq!(
        runs.len(),
        1,
        "{case}: {} executions ({errors:?}, {handled})",
        runs.len()
    );
    assert_eq!(runs[0].1["IMAGE_TAG"], "1.4.0", "{case}");
    assert_eq!(
        handled["starts"][0]["executionId"],
        runs[0].0.as_str(),
        "{case}: the execution recorded is the one that runs"
    );
    // And a later delivery of the same push starts nothing.
    let again = f.api.invoke_within(payload, INVOCATION_TIME).await;
    assert_eq!(
        again.response()["starts"][0]["reason"],
        "duplicate",
        "{case}"
    );
    assert_eq!(
        pipeline_executions(&sdk, &pipeline).await.len(),
        1,
        "{case}"
    );
    format!(
        "{case}: errors {errors:?}, StartPipelineExecution reached moto {} time(s), one execution{}",
        proxy.forwarded("codepipeline:StartPipelineExecution"),
        handled["starts"][0]["foundBy"]
            .as_str()
            .map(|by| format!(", found by {by}"))
            .unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipeline_trigger_every_fault_on_every_call_starts_one_execution() {
    run_matrix(
        &[
            "codepipeline:StartPipelineExecution",
            "codepipeline:GetPipeline",
            // Read only after a start that may have taken effect.
            "codepipeline:ListPipelineExecutions",
            "codepipeline:GetPipelineExecution",
            // The claim and the lease; a start that succeeds after its faults reads and deletes
            // nothing (GetItem, DeleteItem), so those have no case here.
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ],
        pipeline_case,
    )
    .await;
}

async fn aurora_case(
    operation: &'static str,
    fault: Fault,
    when: autonomic_testkit::When,
    times: usize,
) -> String {
    use autonomic_testkit::estate::{
        create_global_database, create_health_check, global_writer, set_checkers,
    };
    let case = format!("{operation} {fault:?} {when:?} x{times}");
    let (moto, sdk, table) = estate().await;
    let global = unique("orders");
    let members = create_global_database(&sdk, &global, &["us-east-1", "us-west-2"]).await;
    let health_check = create_health_check(&sdk, &unique("hc")).await;
    set_checkers(moto, &health_check, 8, 8);
    let targets = serde_json::json!({"targets": [{
        "name": "orders", "alarms": ["orders-db-health"], "healthCheckId": health_check,
        "global": {"globalClusterIdentifier": global, "regions": ["us-east-1", "us-west-2"]}
    }]})
    .to_string();
    let (proxy, f) = behind_fault_proxy(
        moto,
        "aurora-promoter",
        &[
            ("PROMOTION_TARGETS", targets.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
            // The redeliveries here come within seconds; RDS's own delay to show an accepted
            // request is not part of the emulator.
            ("PROMOTION_SETTLE_SECONDS", "1"),
        ],
        (operation, fault, when, times),
    )
    .await;
    let payload = event("eventbridge-health-alarm-orders.json")
        .to_string()
        .into_bytes();
    let (handled, errors) = deliver_until_handled(&f, &payload, &case).await;
    // Switched over, by exactly one request that reached RDS, whatever failed on the way.
    assert_eq!(
        global_writer(&sdk, &global).await.as_deref(),
        Some(members[1].0.as_str()),
        "{case}: {handled}"
    );
    assert_eq!(
        proxy.forwarded("rds:SwitchoverGlobalCluster"),
        1,
        "{case}: {errors:?} {handled}"
    );
    // And the next alarm meets the breaker.
    let mut later = event("eventbridge-health-alarm-orders.json");
    later["detail"]["state"]["timestamp"] = serde_json::json!("2026-11-29T03:30:00.000+0000");
    let again = f
        .api
        .invoke_within(later.to_string().into_bytes(), INVOCATION_TIME)
        .await;
    assert_eq!(
        again.response()["transitions"][0]["plan"]["skips"][0]["reason"],
        "breaker_tripped",
        "{case}"
    );
    format!("{case}: errors {errors:?}, SwitchoverGlobalCluster reached moto once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aurora_promoter_every_fault_on_every_call_switches_over_once() {
    run_matrix(
        &[
            "rds:SwitchoverGlobalCluster",
            "rds:DescribeGlobalClusters",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "route53:GetHealthCheckStatus",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        aurora_case,
    )
    .await;
}

/// aurora-promoter's invocations when a failover may wait for the primary Region's silence: the
/// window (2 s here), a reading of a Region that hangs, and the call.
const SILENCE_INVOCATION_TIME: Duration = Duration::from_secs(45);

/// A global database whose target allows data loss, with the secondary's lag under the ceiling
/// and every checker failing: everything a failover needs but the primary Region's silence. The
/// setup's function runs behind a fault proxy; the proxy and the ids.
async fn aurora_consenting_to_data_loss(
    rules: &[(String, Fault, autonomic_testkit::When)],
) -> (
    FaultProxy,
    autonomic_e2e::RunningFunction,
    aws_config::SdkConfig,
    String,
    Vec<(String, String)>,
) {
    use autonomic_testkit::estate::{
        add_aurora_instance, create_global_database, create_health_check, put_lag, set_checkers,
    };
    let (moto, sdk, table) = estate().await;
    let global = unique("orders");
    let members = create_global_database(&sdk, &global, &["us-east-1", "us-west-2"]).await;
    // An instance each, so that a reading asks DescribeDBInstances too.
    for ((cluster, _), (region, zone)) in members
        .iter()
        .zip([("us-east-1", "us-east-1a"), ("us-west-2", "us-west-2a")])
    {
        add_aurora_instance(&sdk, region, cluster, (&format!("{cluster}-1"), 1, zone)).await;
    }
    put_lag(
        &sdk,
        "us-west-2",
        "AuroraGlobalDBRPOLag",
        (&members[1].0, None),
        1200.0,
    )
    .await;
    let health_check = create_health_check(&sdk, &unique("hc")).await;
    set_checkers(moto, &health_check, 8, 8);
    let targets = serde_json::json!({"targets": [{
        "name": "orders", "alarms": ["orders-db-health"], "healthCheckId": health_check,
        "global": {"globalClusterIdentifier": global, "regions": ["us-east-1", "us-west-2"],
                   "allowDataLoss": true, "rpoCeilingSeconds": 5}
    }]})
    .to_string();
    let proxy = FaultProxy::start(moto).await;
    let f = start_function_with(
        "aurora-promoter",
        proxy.env(moto),
        &[
            ("PROMOTION_TARGETS", targets.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
            ("PROMOTION_SETTLE_SECONDS", "1"),
            ("PRIMARY_SILENCE_SECONDS", "2"),
        ],
    )
    .await;
    for (operation, fault, when) in rules {
        proxy.inject(operation, fault.clone(), *when, 100_000);
    }
    (proxy, f, sdk, global, members)
}

/// One call of the reading of the primary's Region fails on every attempt (a server error, a
/// dropped connection, a hang), the others answer: the Region answers, so it is never failed
/// over, whatever the consent; the delivery comes back until it can be switched over.
async fn aurora_answering_case(
    operation: &'static str,
    fault: Fault,
    when: autonomic_testkit::When,
    _times: usize,
) -> String {
    use autonomic_testkit::estate::global_writer;
    let case = format!("{operation} {fault:?} {when:?} always");
    let rule = (format!("{operation}@us-east-1"), fault, when);
    let (proxy, f, sdk, global, members) = aurora_consenting_to_data_loss(&[rule]).await;
    let payload = event("eventbridge-health-alarm-orders.json")
        .to_string()
        .into_bytes();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let answer = f
            .api
            .invoke_within(payload.clone(), SILENCE_INVOCATION_TIME)
            .await;
        check_retryable(&case, &answer);
        seen.push(match answer {
            Invocation::Response(r) => r["transitions"][0]["outcome"].to_string(),
            Invocation::Error { error_type, .. } => error_type,
        });
        assert_eq!(
            proxy.forwarded("rds:FailoverGlobalCluster"),
            0,
            "{case}: a Region that answers was failed over ({seen:?})"
        );
    }
    // The fault clears: the event was not lost, and a switchover (no data lost) promotes.
    proxy.clear();
    let (handled, errors) =
        deliver_until_handled_within(&f, &payload, &case, SILENCE_INVOCATION_TIME).await;
    assert_eq!(proxy.forwarded("rds:FailoverGlobalCluster"), 0, "{case}");
    assert_eq!(
        global_writer(&sdk, &global).await.as_deref(),
        Some(members[1].0.as_str()),
        "{case}: {handled}"
    );
    assert!(
        proxy.forwarded("rds:SwitchoverGlobalCluster") == 1,
        "{case}: {seen:?} {errors:?} {handled}"
    );
    format!("{case}: {seen:?}, then switched over; no FailoverGlobalCluster")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aurora_promoter_never_fails_over_a_primary_region_that_answers_any_call() {
    let mut all = Vec::new();
    for operation in [
        "rds:DescribeGlobalClusters",
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
    ] {
        for (fault, when) in [
            (Fault::error(500, "InternalFailure"), Before),
            (Fault::error(503, "ServiceUnavailable"), After),
            (Fault::Reset, Before),
            (Fault::Hang, Before),
        ] {
            let run = aurora_answering_case(operation, fault, when, 0);
            all.push(tokio::spawn(async move {
                let _turn = CASES_AT_ONCE.acquire().await.unwrap();
                run.await
            }));
        }
    }
    for handle in all {
        println!("{}", handle.await.unwrap());
    }
}

/// The control: the primary's Region answers nothing at all, on any call; its silence is
/// confirmed over the window, and the consenting target is failed over, once.
#[tokio::test]
async fn aurora_promoter_fails_over_a_primary_region_that_answers_nothing() {
    use autonomic_testkit::estate::global_writer;
    let rules = [("rds:*@us-east-1".to_string(), Fault::Reset, Before)];
    let (proxy, f, sdk, global, members) = aurora_consenting_to_data_loss(&rules).await;
    let payload = event("eventbridge-health-alarm-orders.json")
        .to_string()
        .into_bytes();
    let (handled, errors) =
        deliver_until_handled_within(&f, &payload, "silent", SILENCE_INVOCATION_TIME).await;
    assert_eq!(
        handled["transitions"][0]["outcome"], "promoted",
        "{errors:?} {handled:#}"
    );
    assert_eq!(proxy.forwarded("rds:FailoverGlobalCluster"), 1);
    assert_eq!(
        global_writer(&sdk, &global).await.as_deref(),
        Some(members[1].0.as_str())
    );
    let heard = &handled["transitions"][0]["observed"]["topology"]["heard"]["us-east-1"];
    assert!(heard["readings"].as_u64().unwrap() >= 2, "{heard}");
    assert!(
        heard["lastReadingMs"].as_i64().unwrap() - heard["firstReadingMs"].as_i64().unwrap()
            >= 2000,
        "{heard}"
    );
}

/// k8s-rollout's invocations: long enough that the rollout is watched after the time kept back
/// for a rollback (27 s), and that a hung Kubernetes call's 10 s limit leaves time to answer.
const K8S_INVOCATION_TIME: Duration = Duration::from_secs(45);

/// The stand-in's version of a fault the proxy injects into AWS calls: an error status before or
/// after acting, a connection that fails (an unavailable answer), a hang after acting.
fn kube_fault(fault: &Fault, when: autonomic_testkit::When) -> KubeFault {
    match (fault, when) {
        (Fault::Hang | Fault::Delay(_), _) => KubeFault::HangAfter,
        (Fault::Reset, Before) => KubeFault::ErrorBefore(503),
        (Fault::Reset, After) => KubeFault::ErrorAfter(502),
        (Fault::Error { status, .. }, Before) => KubeFault::ErrorBefore(*status),
        // The proxy's "throttled after acting" is a 429 from the API server.
        (Fault::Error { status: 400, .. }, After) => KubeFault::ErrorAfter(429),
        (Fault::Error { status, .. }, After) => KubeFault::ErrorAfter(*status),
    }
}

async fn k8s_case(
    operation: &'static str,
    fault: Fault,
    when: autonomic_testkit::When,
    times: usize,
) -> String {
    use autonomic_testkit::estate::create_eks_cluster;
    let case = format!("{operation} {fault:?} {when:?} x{times}");
    let (moto, sdk, table) = estate().await;
    let cluster = unique("shop");
    create_eks_cluster(&sdk, &cluster).await;
    let kube = KubeStandIn::start(TokenCheck::EksPresigned {
        cluster: cluster.clone(),
    })
    .await;
    seed_demo(&kube);
    let clusters = eks_clusters_document(&kube, "shop", &cluster);
    let env = [
        ("ROLLOUT_CLUSTERS", clusters.as_str()),
        ("STATE_TABLE_NAME", table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("ROLLOUT_POLL_SECONDS", "1"),
    ];
    // Kubernetes faults come from the stand-in; AWS ones from the proxy.
    let (proxy, f) = match operation.strip_prefix("kubernetes:") {
        Some(method) => {
            kube.fail_next(method, kube_fault(&fault, when), times);
            behind_fault_proxy(moto, "k8s-rollout", &env, ("none:None", fault, when, 0)).await
        }
        None => {
            behind_fault_proxy(moto, "k8s-rollout", &env, (operation, fault, when, times)).await
        }
    };
    let payload = event("eventbridge-ecr-image-push-release.json")
        .to_string()
        .into_bytes();
    let (handled, errors) =
        deliver_until_handled_within(&f, &payload, &case, K8S_INVOCATION_TIME).await;
    // Both opted-in Deployments run the release, pinned, rolled and verified (by this delivery or
    // an earlier one), whatever failed on the way.
    let release = "123456789012.dkr.ecr.us-east-1.amazonaws.com/autonomic-demo/web:1.4.0@sha256:1a4000b7c0ffee5a1e5e2b8d0f4c6e8a9b1d3f5e7a9c1e3b5d7f9a1c3e5b7d9f";
    for name in ["web", "web-canary"] {
        let d = kube.deployment("shop", name).unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"], release,
            "{case}: {name} ({errors:?}, {handled})"
        );
        assert_eq!(
            d["metadata"]["generation"], 2,
            "{case}: {name} changed once"
        );
        let line = handled["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| {
                l["workload"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("/{name}"))
            })
            .unwrap();
        assert!(
            line["outcome"] == "rolled" || line["reason"] == "duplicate",
            "{case}: {name}: {line}"
        );
    }
    // No rollback, and a later delivery of the same push patches nothing.
    let patches = |kind: &str| {
        kube.patches()
            .iter()
            .filter(|p| p.content_type.as_deref().is_some_and(|c| c.contains(kind)))
            .count()
    };
    assert_eq!(patches("json-patch"), 0, "{case}");
    let rolls = patches("strategic");
    let again = f.api.invoke_within(payload, K8S_INVOCATION_TIME).await;
    for line in again.response()["workloads"].as_array().unwrap() {
        if line["workload"].as_str().unwrap().ends_with("/storefront") {
            continue;
        }
        assert_eq!(line["reason"], "duplicate", "{case}: {line}");
    }
    assert_eq!(patches("strategic"), rolls, "{case}");
    drop(proxy);
    format!("{case}: errors {errors:?}, {rolls} strategic patch request(s) for 2 workloads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn k8s_rollout_every_fault_on_every_call_rolls_each_workload_once() {
    run_matrix(
        &[
            "kubernetes:PATCH",
            "kubernetes:GET",
            "eks:DescribeCluster",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        ],
        k8s_case,
    )
    .await;
}
