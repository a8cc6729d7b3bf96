//! The scaler's handler with real SDK clients against moto: capacity moves exactly as planned,
//! bounds hold where moto would accept more, duplicates and cooldowns give one change.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use asg_scaler::AsgScaler;
use asg_scaler::api::{AsgApi, AwsApi};
use asg_scaler::config::ScalerConfig;
use autonomic::FunctionError;
use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic::time::now_ms;
use autonomic_testkit::estate::{create_group, desired_capacity};
use autonomic_testkit::{
    Moto, create_state_table, event, hold_lease, lambda_event, recording_client, unique,
};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Setup {
    scaler: Arc<AsgScaler<AwsApi>>,
    /// The scaler's state table, for what a test arranges in it by hand.
    state: StateTable,
    asg: aws_sdk_autoscaling::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    group: String,
    audit: Arc<Mutex<Vec<String>>>,
}

/// A group and a scaler whose rules point every sample alarm at it.
async fn setup(min: i32, max: i32, desired: i32, rule_bounds: &str, dry_run: bool) -> Setup {
    setup_with_cooldown(min, max, desired, rule_bounds, dry_run, 300).await
}

async fn setup_with_cooldown(
    min: i32,
    max: i32,
    desired: i32,
    rule_bounds: &str,
    dry_run: bool,
    cooldown: u32,
) -> Setup {
    let sdk = Moto::shared().sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let group = unique("web");
    let table = unique("state");
    create_group(&asg, &group, min, max, desired).await;
    create_state_table(&ddb, &table).await;
    let rules = format!(
        r#"{{"rules": [{{"name": "cpu", "match": {{"namePrefix": "web-"}}, "group": "{group}",
            "onAlarm": {{"change": 3}}, "onOk": {{"change": -1}}, "maxStep": 3,
            "cooldownSeconds": {cooldown}{rule_bounds}}}]}}"#
    );
    let config = ScalerConfig::from_env(Env::from_map([
        ("SCALING_RULES", rules.as_str()),
        ("STATE_TABLE_NAME", table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("DRY_RUN", if dry_run { "true" } else { "false" }),
    ]))
    .unwrap();
    let (reporter, audit) = Reporter::in_memory("asg-scaler");
    // The scaler's own clients record what it calls, for the IAM-equals-use infra test.
    let state = StateTable::new(
        recording_client!(aws_sdk_dynamodb, &sdk, "asg-scaler"),
        table,
    );
    let scaler = AsgScaler::new(
        AwsApi {
            autoscaling: recording_client!(aws_sdk_autoscaling, &sdk, "asg-scaler"),
            cloudwatch: recording_client!(aws_sdk_cloudwatch, &sdk, "asg-scaler"),
        },
        state.clone(),
        config,
        reporter,
    );
    Setup {
        scaler: Arc::new(scaler),
        state,
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        asg,
        group,
        audit,
    }
}

fn invocation(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    lambda_event(payload, request_id, Duration::from_secs(30))
}

async fn handle(s: &Setup, sample: &str, request_id: &str) -> Result<Value, FunctionError> {
    s.scaler.handle(invocation(event(sample), request_id)).await
}

#[tokio::test]
async fn capacity_moves_exactly_as_planned() {
    let s = setup(1, 10, 2, "", false).await;
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "r1")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    let audit: Vec<Value> = s
        .audit
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let applied: Vec<_> = audit
        .iter()
        .filter(|a| a["type"] == "audit" && a["record"]["outcome"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["record"]["details"]["intent"]["from"], 2);
    assert_eq!(applied[0]["record"]["details"]["intent"]["to"], 5);
    assert_eq!(applied[0]["requestId"], "r1");
}

#[tokio::test]
async fn bounds_hold_where_moto_would_accept_more() {
    // moto accepts desired > MaxSize; the planner stops at the group's MaxSize (4).
    let s = setup(1, 4, 3, "", false).await;
    handle(&s, "eventbridge-alarm-metric-alarm.json", "r1")
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 4);
    // And at the rule's narrower bound.
    let s = setup(1, 10, 3, r#", "maxCapacity": 5"#, false).await;
    handle(&s, "eventbridge-alarm-metric-alarm.json", "r1")
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_duplicate_deliveries_change_capacity_once() {
    let s = setup(1, 20, 2, "", false).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let scaler = s.scaler.clone();
            tokio::spawn(async move {
                scaler
                    .handle(invocation(
                        event("eventbridge-alarm-metric-alarm.json"),
                        &format!("dup-{i}"),
                    ))
                    .await
            })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        // Losers either see the completed result or are told to retry (in progress): never a second change.
        if let Ok(r) = t.await.unwrap() {
            applied += r["transitions"][0]["results"]
                .as_array()
                .map_or(0, |a| a.len());
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    // A later redelivery returns the stored result and changes nothing.
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "late")
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "duplicate"
    );
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test]
async fn two_alarms_on_one_group_inside_the_cooldown_give_one_change() {
    let s = setup(1, 20, 2, "", false).await;
    handle(&s, "eventbridge-alarm-metric-alarm.json", "a")
        .await
        .unwrap();
    let r = handle(&s, "eventbridge-alarm-math-alarm.json", "b")
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "cooldown"
    );
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_different_alarms_racing_on_one_group_give_one_change() {
    let s = setup(1, 20, 2, "", false).await;
    let a = {
        let sc = s.scaler.clone();
        tokio::spawn(async move {
            sc.handle(invocation(
                event("eventbridge-alarm-metric-alarm.json"),
                "a",
            ))
            .await
        })
    };
    let b = {
        let sc = s.scaler.clone();
        tokio::spawn(async move {
            sc.handle(invocation(event("lambda-alarm-action-alarm.json"), "b"))
                .await
        })
    };
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test]
async fn an_older_transition_after_a_newer_one_is_superseded() {
    let s = setup(1, 20, 4, "", false).await;
    // The OK at 11:20 (Lambda action) is handled first; the ALARM at 10:00 arrives late.
    handle(&s, "lambda-alarm-action-ok.json", "a")
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 3);
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "b")
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "superseded"
    );
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 3);
}

#[tokio::test]
async fn dry_run_returns_the_plan_and_changes_nothing() {
    let s = setup(1, 10, 2, "", true).await;
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "r1")
        .await
        .unwrap();
    assert_eq!(r["dryRun"], true);
    assert_eq!(r["transitions"][0]["plan"]["actions"][0]["to"], 5);
    assert_eq!(r["transitions"][0]["results"][0]["outcome"], "dry_run");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 2);
    // Nothing was claimed either: the same event in dry run plans the same again.
    let again = handle(&s, "eventbridge-alarm-metric-alarm.json", "r2")
        .await
        .unwrap();
    assert_eq!(again["transitions"][0]["plan"]["actions"][0]["to"], 5);
}

#[tokio::test]
async fn a_missing_group_is_an_error_naming_it_and_can_be_retried() {
    let s = setup(1, 10, 2, "", false).await;
    s.asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name(&s.group)
        .force_delete(true)
        .send()
        .await
        .unwrap();
    let e = handle(&s, "eventbridge-alarm-metric-alarm.json", "r1")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.NotFound");
    assert!(e.to_string().contains(&s.group), "{e}");
    // The claim was given back: a retry is not told "in progress".
    let e = handle(&s, "eventbridge-alarm-metric-alarm.json", "r2")
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.NotFound");
}

#[tokio::test]
async fn an_sns_batch_handles_each_record() {
    let s = setup(1, 10, 2, "", false).await;
    let r = handle(&s, "sns-alarm-batch.json", "r1").await.unwrap();
    let t = r["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0]["results"][0]["to"], 5);
    assert_eq!(t[1]["plan"]["skips"][0]["reason"], "no_matching_rule");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

/// Fault injection for what moto cannot produce: SetDesiredCapacity failing after (maybe) taking
/// effect. Describe goes to moto; the mutating call fails with the given error, optionally after
/// really being applied.
struct FaultyAsg {
    inner: AwsApi,
    error: autonomic::CallError,
    apply_first: bool,
}

impl asg_scaler::api::AsgApi for FaultyAsg {
    async fn describe_group(
        &self,
        name: &str,
    ) -> Result<Option<asg_scaler::planner::GroupState>, autonomic::CallError> {
        self.inner.describe_group(name).await
    }
    async fn set_desired_capacity(
        &self,
        name: &str,
        desired: i32,
        honor: bool,
    ) -> Result<(), autonomic::CallError> {
        if self.apply_first {
            AsgApi::set_desired_capacity(&self.inner, name, desired, honor).await?;
        }
        Err(self.error.clone())
    }
    async fn alarm_states(
        &self,
        names: &[String],
    ) -> Result<
        std::collections::HashMap<String, autonomic::events::AlarmState>,
        autonomic::CallError,
    > {
        self.inner.alarm_states(names).await
    }
}

fn faulty(s: &Setup, code: &str, apply_first: bool) -> AsgScaler<FaultyAsg> {
    let class = if code == "ValidationError" {
        autonomic::ErrorClass::Permanent
    } else {
        autonomic::ErrorClass::Retryable
    };
    AsgScaler::new(
        FaultyAsg {
            inner: s.scaler.api.clone(),
            error: autonomic::CallError::new(
                "autoscaling",
                "SetDesiredCapacity",
                code,
                "injected",
                class,
            ),
            apply_first,
        },
        s.state.clone(),
        s.scaler.config.clone(),
        Reporter::in_memory("asg-scaler").0,
    )
}

#[tokio::test]
async fn an_ambiguous_failure_keeps_every_guard_in_place() {
    let s = setup(1, 20, 2, "", false).await;
    // The call timed out after AWS applied it.
    let timing_out = faulty(&s, "Timeout", true);
    let e = timing_out
        .handle(invocation(
            event("eventbridge-alarm-metric-alarm.json"),
            "first",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.Timeout");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    // The claim was handed over with its intent: the redelivery takes it over at once, finds the
    // action applied and completes it without acting again.
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    // Another alarm on the group is held off by the cooldown the takeover settled.
    let r = handle(&s, "eventbridge-alarm-math-alarm.json", "other")
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "cooldown"
    );
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test]
async fn a_clear_rejection_gives_the_guards_back() {
    let s = setup(1, 20, 2, "", false).await;
    let rejecting = faulty(&s, "ValidationError", false);
    let e = rejecting
        .handle(invocation(
            event("eventbridge-alarm-metric-alarm.json"),
            "first",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Permanent.ValidationError");
    // The retry is neither "in progress" nor cooling down: it acts.
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

/// Leaves a claim as an invocation that died after recording its intent would.
async fn interrupted_claim(s: &Setup, from: i32, to: i32) {
    let t =
        autonomic::events::parse_alarm_transitions(&event("eventbridge-alarm-metric-alarm.json"))
            .unwrap()
            .remove(0);
    let now = now_ms();
    let state = &s.state;
    // Its deadline has passed.
    state
        .claim(
            "asg-scaler",
            &t.transition_id(),
            "dead",
            now - 60_000,
            now - 1,
            std::time::Duration::from_secs(86_400),
        )
        .await
        .unwrap();
    let intent = serde_json::json!({"group": s.group, "from": from, "to": to, "honorCooldown": false,
        "cooldownSeconds": 300, "rule": "cpu", "alarm": t.name});
    state
        .record_intent("asg-scaler", &t.transition_id(), "dead", &intent)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_takeover_completes_an_interrupted_action_without_repeating_it() {
    let s = setup(1, 20, 2, "", false).await;
    interrupted_claim(&s, 2, 5).await;
    // The dead invocation's call had gone through.
    s.asg
        .set_desired_capacity()
        .auto_scaling_group_name(&s.group)
        .desired_capacity(5)
        .send()
        .await
        .unwrap();
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    let again = handle(&s, "eventbridge-alarm-metric-alarm.json", "again")
        .await
        .unwrap();
    assert_eq!(
        again["transitions"][0]["plan"]["skips"][0]["reason"],
        "duplicate"
    );
}

#[tokio::test]
async fn a_takeover_applies_an_action_that_never_happened() {
    let s = setup(1, 20, 2, "", false).await;
    interrupted_claim(&s, 2, 5).await;
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test]
async fn a_takeover_does_not_undo_a_later_change() {
    let s = setup(1, 20, 2, "", false).await;
    interrupted_claim(&s, 2, 5).await;
    // Someone else moved the group since.
    s.asg
        .set_desired_capacity()
        .auto_scaling_group_name(&s.group)
        .desired_capacity(9)
        .send()
        .await
        .unwrap();
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "superseded"
    );
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 9);
}

/// The metric-alarm sample, its transition dated `offset_ms` from now.
fn transition_at(offset_ms: i64) -> Value {
    let mut e = event("eventbridge-alarm-metric-alarm.json");
    let at = chrono::DateTime::from_timestamp_millis(now_ms() + offset_ms).unwrap();
    e["detail"]["state"]["timestamp"] =
        Value::String(at.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string());
    e
}

#[tokio::test]
async fn throttling_after_the_change_is_not_applied_twice() {
    let s = setup(1, 20, 2, "", false).await;
    // SetDesiredCapacity took effect, but the answer was Throttling.
    let e = faulty(&s, "Throttling", true)
        .handle(invocation(
            event("eventbridge-alarm-metric-alarm.json"),
            "first",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.Throttling");
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5, "{r}");
    assert_eq!(
        desired_capacity(&s.asg, &s.group).await,
        5,
        "2 -> 5, not 2 -> 5 -> 8"
    );
}

#[tokio::test]
async fn a_call_that_never_reached_the_group_is_retried_not_lost_to_its_own_lease() {
    let s = setup(1, 20, 2, "", false).await;
    // The connection failed before SetDesiredCapacity reached the service; the attempt's lease
    // and claim stay (it may have gone through).
    let e = faulty(&s, "DispatchFailure", false)
        .handle(invocation(
            event("eventbridge-alarm-metric-alarm.json"),
            "first",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.DispatchFailure");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 2);
    // The retry takes the claim over, inherits the lease as its own, sees the group untouched
    // and scales: not a `cooldown` skip that would complete the claim for good.
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "retry")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5, "{r}");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_an_invocation_that_then_does_nothing_is_waited_for() {
    let s = setup(1, 20, 2, "", false).await;
    let guards = s.scaler.guards.clone();
    let lock = hold_lease(
        &guards,
        &asg_scaler::scaler::group_lease(&s.group),
        "holder",
    )
    .await;
    let scaler = s.scaler.clone();
    let waiting = tokio::spawn(async move {
        scaler
            .handle(invocation(
                event("eventbridge-alarm-metric-alarm.json"),
                "waiter",
            ))
            .await
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished());
    // The holder was superseded and gives the lock back without scaling.
    lock.release().await;
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5, "{r}");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
}

#[tokio::test]
async fn a_lock_outliving_the_invocation_is_a_retryable_error_not_a_skip() {
    let s = setup(1, 20, 2, "", false).await;
    let lease = asg_scaler::scaler::group_lease(&s.group);
    let lock = hold_lease(&s.scaler.guards, &lease, "holder").await;
    // 13 s left: one second of waiting, then the reserve.
    let e = s
        .scaler
        .handle(lambda_event(
            event("eventbridge-alarm-metric-alarm.json"),
            "short",
            Duration::from_secs(13),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "Retryable.LeaseContention");
    lock.release().await;
    // The claim was given back: the redelivery acts.
    let r = handle(&s, "eventbridge-alarm-metric-alarm.json", "again")
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_transitions_of_one_alarm_scale_once() {
    let s = setup(1, 20, 2, "", false).await;
    let runs = (0..20).map(|i| {
        let scaler = s.scaler.clone();
        tokio::spawn(async move {
            scaler
                .handle(invocation(transition_at(-1_000 * i), &format!("r{i}")))
                .await
        })
    });
    let mut reasons = Vec::new();
    for r in runs.collect::<Vec<_>>() {
        let r = r.await.unwrap().unwrap();
        let t = &r["transitions"][0];
        reasons.push(
            t["plan"]["skips"][0]["reason"]
                .as_str()
                .unwrap_or("scaled")
                .to_string(),
        );
    }
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5, "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| *r == "scaled").count(),
        1,
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .all(|r| ["scaled", "cooldown", "superseded"].contains(&r.as_str())),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_future_dated_transition_is_rejected_and_blocks_nothing() {
    let s = setup(1, 20, 2, "", false).await;
    let r = s
        .scaler
        .handle(invocation(transition_at(3_600_000), "forged"))
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "future_dated"
    );
    let r = s
        .scaler
        .handle(invocation(transition_at(-1_000), "genuine"))
        .await
        .unwrap();
    assert_eq!(r["transitions"][0]["results"][0]["to"], 5, "{r}");
}

/// The metric-alarm sample for an alarm of its own (`web-<unique>`), created in moto in `state`.
async fn held_alarm(s: &Setup, state: &str) -> (String, Value) {
    let name = unique("web-held");
    let sample = autonomic_testkit::event_text("eventbridge-alarm-metric-alarm.json")
        .replace("web-cpu-high", &name);
    s.cloudwatch
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(70.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    set_alarm(s, &name, state).await;
    (name, serde_json::from_str(&sample).unwrap())
}

async fn set_alarm(s: &Setup, name: &str, state: &str) {
    s.cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state.into())
        .state_reason("test")
        .send()
        .await
        .unwrap();
}

async fn sweep(s: &Setup) -> Value {
    s.scaler
        .handle(invocation(
            event("eventbridge-scheduled-sweep.json"),
            &unique("sweep"),
        ))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_held_alarm_keeps_stepping_each_cooldown_until_the_bound() {
    let s = setup_with_cooldown(1, 11, 2, "", false, 1).await;
    let (_, transition) = held_alarm(&s, "ALARM").await;
    s.scaler
        .handle(invocation(transition, "first"))
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    // Nothing is due inside the cooldown.
    let r = sweep(&s).await;
    assert_eq!(r["sweep"]["steps"].as_array().unwrap().len(), 0, "{r}");
    for want in [8, 11] {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = sweep(&s).await;
        assert_eq!(desired_capacity(&s.asg, &s.group).await, want, "{r}");
    }
    // At MaxSize: the last sweep drops it, and nothing is held any more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = sweep(&s).await;
    assert_eq!(
        r["sweep"]["steps"][0]["plan"]["skips"][0]["reason"], "at_max",
        "{r}"
    );
    let r = sweep(&s).await;
    assert_eq!(r["sweep"]["held"], 0, "{r}");
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 11);
}

#[tokio::test]
async fn a_held_alarm_that_changed_state_is_dropped_without_a_step() {
    let s = setup_with_cooldown(1, 20, 2, "", false, 1).await;
    let (name, transition) = held_alarm(&s, "ALARM").await;
    s.scaler
        .handle(invocation(transition, "first"))
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    set_alarm(&s, &name, "OK").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = sweep(&s).await;
    assert!(
        r["sweep"]["steps"][0]["dropped"]
            .as_str()
            .unwrap()
            .contains("OK"),
        "{r}"
    );
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    assert_eq!(sweep(&s).await["sweep"]["held"], 0);
}

#[tokio::test]
async fn a_step_put_off_by_a_cooldown_comes_back_when_it_ends() {
    // Another transition of the group took the cooldown: this one is put off, not lost.
    let s = setup_with_cooldown(1, 20, 2, "", false, 2).await;
    handle(&s, "eventbridge-alarm-math-alarm.json", "other")
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 5);
    let (_, transition) = held_alarm(&s, "ALARM").await;
    let r = s
        .scaler
        .handle(invocation(transition, "held"))
        .await
        .unwrap();
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"], "cooldown",
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = sweep(&s).await;
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 8, "{r}");
}

#[tokio::test]
async fn an_ok_transition_acts_once_and_is_not_held() {
    let s = setup_with_cooldown(1, 20, 5, "", false, 1).await;
    handle(&s, "eventbridge-alarm-metric-ok.json", "ok")
        .await
        .unwrap();
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(sweep(&s).await["sweep"]["held"], 0);
    assert_eq!(desired_capacity(&s.asg, &s.group).await, 4);
}
