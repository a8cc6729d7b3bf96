//! asg-scaler end to end: the built binary under the Runtime API emulator, fed the `events/`
//! samples, against moto; the resulting capacity is asserted in moto.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::process::Command;
use std::time::Duration;

use autonomic_e2e::start_function;
use autonomic_testkit::estate::{create_group, desired_capacity, publish_document};
use autonomic_testkit::fixtures::events_with_prefix;
use autonomic_testkit::runtime_api::function_binary;
use autonomic_testkit::{
    Invocation, Moto, create_state_table, event, event_text, events_dir, unique,
};
use serde_json::Value;

struct Estate {
    asg: aws_sdk_autoscaling::Client,
    web: String,
    api: String,
    table: String,
    /// `SCALING_RULES`: a reference to the rules, published as an SSM parameter as infra/ does.
    rules: String,
    /// The same rules, inline.
    rules_inline: String,
}

/// Two groups and a state table; rules route the web alarms to `web` and the tagged alarm to `api`
/// (through its tag), with no cooldown so that each sample's effect can be seen on its own. The
/// rules are read by reference from an SSM parameter, as infra/ deploys them.
async fn estate() -> Estate {
    let sdk = Moto::shared().sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let web = unique("web");
    let api = unique("api");
    let table = unique("state");
    create_group(&asg, &web, 1, 10, 2).await;
    create_group(&asg, &api, 1, 3, 1).await;
    create_state_table(&ddb, &table).await;
    let rules = format!(
        r#"{{"rules": [
          {{"name": "web", "match": {{"nameGlob": "web-*"}}, "group": "{web}",
            "onAlarm": {{"change": 2}}, "onOk": {{"change": -1}}, "maxStep": 2, "cooldownSeconds": 0}},
          {{"name": "api", "match": {{"tag": {{"key": "team"}}}}, "group": "{api}",
            "onAlarm": {{"change": 5}}, "maxStep": 5, "cooldownSeconds": 0}}
        ]}}"#
    );
    let rules_inline = rules;
    let rules = publish_document(
        &sdk,
        &format!("/{table}/asg-scaler/SCALING_RULES"),
        &rules_inline,
    )
    .await;
    Estate {
        asg,
        web,
        api,
        table,
        rules,
        rules_inline,
    }
}

fn env(e: &Estate) -> Vec<(&str, &str)> {
    vec![
        ("SCALING_RULES", e.rules.as_str()),
        ("STATE_TABLE_NAME", e.table.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
    ]
}

#[tokio::test]
async fn every_sample_through_the_runtime_api() {
    let e = estate().await;
    let f = start_function("asg-scaler", Moto::shared(), &env(&e)).await;

    // In state-change order, so no transition is superseded by one handled before it.
    let steps: &[(&str, i32, i32)] = &[
        // sample, web desired after, api desired after
        ("eventbridge-alarm-metric-alarm.json", 4, 1),
        ("eventbridge-alarm-math-alarm.json", 6, 1),
        ("eventbridge-alarm-composite-alarm.json", 8, 1),
        ("eventbridge-alarm-tagged-alarm.json", 8, 3), // +5 capped by the group's MaxSize 3
        ("eventbridge-alarm-insufficient-data.json", 8, 3),
        ("eventbridge-alarm-unmatched.json", 8, 3),
        ("eventbridge-alarm-metric-ok.json", 7, 3),
        ("lambda-alarm-action-alarm.json", 9, 3),
        ("lambda-alarm-action-ok.json", 8, 3),
        ("sns-alarm-alarm.json", 10, 3),
        ("sns-alarm-ok.json", 9, 3),
        ("sns-alarm-batch.json", 10, 3), // web +2 capped at MaxSize 10; billing unmatched
        ("eventbridge-alarm-metric-alarm.json", 10, 3), // a redelivery: duplicate, no change
    ];
    for (sample, web, api) in steps {
        let answer = f.api.invoke(&event(sample)).await;
        let Invocation::Response(r) = &answer else {
            panic!("{sample}: {answer:?}")
        };
        assert_eq!(r["function"], "asg-scaler", "{sample}");
        assert_eq!(
            desired_capacity(&e.asg, &e.web).await,
            *web,
            "{sample}: web"
        );
        assert_eq!(
            desired_capacity(&e.asg, &e.api).await,
            *api,
            "{sample}: api"
        );
    }

    // The scheduled sweep: nothing is held (the rules have no cooldown, and each alarm is
    // stepped again only while it holds, which moto's alarms here do not: they do not exist).
    let answer = f
        .api
        .invoke(&event("eventbridge-scheduled-sweep.json"))
        .await;
    assert!(answer.response()["sweep"]["held"].is_number(), "{answer:?}");

    // One audit record per action taken or skipped, each a JSON line with the request id.
    let audit = f.process.audit_records();
    assert!(audit.iter().all(|a| {
        a["requestId"]
            .as_str()
            .is_some_and(|id| id.starts_with("req-"))
    }));
    let applied = audit
        .iter()
        .filter(|a| a["record"]["outcome"] == "applied")
        .count();
    assert_eq!(applied, 10, "{audit:#?}");
    let reasons: Vec<&str> = audit
        .iter()
        .filter_map(|a| a["record"]["reason"].as_str())
        .collect();
    for want in ["insufficient_data", "no_matching_rule", "duplicate"] {
        assert!(reasons.contains(&want), "no {want} skip in {reasons:?}");
    }
    // JSON logs: every line written while handling an event carries its request id.
    let logs: Vec<Value> = f
        .process
        .stdout_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"].is_string())
        .collect();
    let per_event: Vec<&Value> = logs
        .iter()
        .filter(|l| {
            ["skip", "set desired capacity"]
                .contains(&l["fields"]["message"].as_str().unwrap_or_default())
        })
        .collect();
    assert!(per_event.len() >= 10);
    for l in per_event {
        assert!(
            l["span"]["requestId"]
                .as_str()
                .is_some_and(|id| id.starts_with("req-")),
            "{l}"
        );
    }
    // EMF metric lines.
    assert!(
        f.process
            .stdout_lines()
            .iter()
            .any(|l| l.contains("\"CloudWatchMetrics\""))
    );
}

#[tokio::test]
async fn malformed_samples_get_a_structured_error_and_no_panic() {
    let e = estate().await;
    let f = start_function("asg-scaler", Moto::shared(), &env(&e)).await;
    let mut names = events_with_prefix("malformed-");
    // The alarm-shaped ones (ECR and SQS samples belong to other functions).
    names.retain(|n| !n.contains("ecr") && !n.contains("sqs"));
    assert!(names.len() >= 6);
    for name in &names {
        let answer = f.api.invoke_raw(event_text(name).into_bytes()).await;
        let Invocation::Error {
            error_type,
            error_message,
        } = &answer
        else {
            panic!("{name}: expected an error, got {answer:?}")
        };
        if name.contains("truncated") {
            // Not JSON at all: the runtime rejects it before our handler, with the position.
            assert!(!error_type.is_empty(), "{name}");
            assert!(
                error_message.contains("failed to deserialize"),
                "{name}: {error_message}"
            );
        } else {
            assert_eq!(error_type, "Permanent.InvalidEvent", "{name}");
            assert!(error_message.contains("field `"), "{name}: {error_message}");
        }
    }
    // Still serving, and nothing changed.
    let ok = f
        .api
        .invoke(&event("eventbridge-alarm-metric-alarm.json"))
        .await;
    assert_eq!(ok.response()["transitions"][0]["results"][0]["to"], 4);
    assert!(
        !f.process
            .stdout_lines()
            .iter()
            .chain(f.process.stderr_lines().iter())
            .any(|l| l.contains("panicked"))
    );
}

/// The process exits at cold start with an `InvalidConfig` init error: its message.
async fn failed_cold_start(f: &mut autonomic_e2e::RunningFunction) -> String {
    assert_eq!(
        f.process.wait_for_exit(Duration::from_secs(20)).await,
        Some(1)
    );
    let init = f
        .api
        .init_error()
        .expect("init error reported to the Runtime API");
    assert_eq!(init["errorType"], "Permanent.InvalidConfig");
    init["errorMessage"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_bad_configuration_fails_the_cold_start_naming_every_problem() {
    let moto = Moto::shared();
    let mut f = start_function(
        "asg-scaler",
        moto,
        &[
            (
                "SCALING_RULES",
                r#"{"rules": [{"name": "x", "match": {}}]}"#,
            ),
            ("DRY_RUN", "perhaps"),
        ],
    )
    .await;
    let message = failed_cold_start(&mut f).await;
    for want in ["DRY_RUN", "STATE_TABLE_NAME", "SCALING_RULES"] {
        assert!(message.contains(want), "{want} missing from {message}");
    }
}

#[tokio::test]
async fn a_rules_reference_that_cannot_be_read_fails_the_cold_start_naming_the_source() {
    let moto = Moto::shared();
    let table = unique("state");
    create_state_table(
        &aws_sdk_dynamodb::Client::new(&moto.sdk_config().await),
        &table,
    )
    .await;
    let missing = format!("ssm:/{table}/no-such-parameter");
    let mut f = start_function(
        "asg-scaler",
        moto,
        &[
            ("SCALING_RULES", missing.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
        ],
    )
    .await;
    let message = failed_cold_start(&mut f).await;
    let want =
        format!("SCALING_RULES (from SSM parameter /{table}/no-such-parameter): ParameterNotFound");
    assert!(message.contains(&want), "{message}");
}

#[tokio::test]
async fn cold_start_to_first_next_is_measured() {
    // With the rules inline, and read from SSM as infra/ deploys them (one GetParameter more).
    for how in ["inline", "ssm"] {
        let e = estate().await;
        let mut vars = env(&e);
        if how == "inline" {
            vars.retain(|(k, _)| *k != "SCALING_RULES");
            vars.push(("SCALING_RULES", e.rules_inline.as_str()));
        }
        let f = start_function("asg-scaler", Moto::shared(), &vars).await;
        // The first invocation only returns once the function has polled /next.
        f.api
            .invoke(&event("eventbridge-alarm-unmatched.json"))
            .await
            .response();
        let cold = f.api.first_next_at().unwrap() - f.process.started_at();
        for sample in [
            "eventbridge-alarm-metric-alarm.json",
            "eventbridge-alarm-metric-ok.json",
            "sns-alarm-batch.json",
            "lambda-alarm-action-alarm.json",
        ] {
            f.api.invoke(&event(sample)).await.response();
        }
        // Figures for the record (docs/functions/asg-scaler.md, issue notes), not timing assertions. With
        // AUTONOMIC_FUNCTION_DIR=target/release they describe the release binary.
        println!(
            "{} (rules {how}): cold start (process start to first /next) {:.1} ms; peak RSS after 5 events {} KiB",
            function_binary("asg-scaler").display(),
            cold.as_secs_f64() * 1000.0,
            f.process.peak_rss_kib().unwrap_or_default()
        );
    }
}

fn local(e: &Estate, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    Command::new(function_binary("asg-scaler"))
        .args(args)
        .env_clear()
        .envs(Moto::shared().env())
        .envs(env(e))
        .envs(extra.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test]
async fn local_event_flag_runs_the_same_handler() {
    let e = estate().await;
    let sample = events_dir().join("eventbridge-alarm-metric-alarm.json");
    let sample = sample.to_str().unwrap();

    // Dry run: the plan on stdout, exit 0, nothing changed.
    let out = local(&e, &["--event", sample], &[("DRY_RUN", "true")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["dryRun"], true);
    assert_eq!(r["transitions"][0]["plan"]["actions"][0]["to"], 4);
    assert_eq!(desired_capacity(&e.asg, &e.web).await, 2);

    // For real.
    let out = local(&e, &["--event", sample], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(desired_capacity(&e.asg, &e.web).await, 4);

    // A skip is handled: exit 0.
    let skip = events_dir().join("eventbridge-alarm-unmatched.json");
    let out = local(&e, &["--event", skip.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0));

    // A rejected event: the error on stderr, exit 1.
    let bad = events_dir().join("malformed-alarm-wrong-type.json");
    let out = local(&e, &["--event", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let last = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    let err: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(err["errorType"], "Permanent.InvalidEvent");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("detail.state.value")
    );

    // No arguments outside Lambda: usage, exit 2.
    assert_eq!(local(&e, &[], &[]).status.code(), Some(2));
    let _ = &e.api;
}
