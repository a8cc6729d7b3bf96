//! The promoter's handler with the real SDK clients against moto and the test kit's stand-ins
//! (global switchover and failover, Route 53 checker observations, a global cluster's failover
//! state): the observe → act → observe loop runs on one emulator. A Region that does not answer
//! is made by the fault proxy, resetting every RDS request signed for that Region.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aurora_promoter::AuroraPromoter;
use aurora_promoter::api::AwsApi;
use aurora_promoter::config::PromoterConfig;
use aurora_promoter::promoter::breaker_name;
use autonomic::audit::Reporter;
use autonomic::config::Env;
use autonomic::guard::StateTable;
use autonomic::runtime::Handler;
use autonomic::{ErrorClass, FunctionError};
use autonomic_testkit::estate::{
    cluster_writer, cname, create_aurora_cluster, create_global_database, create_health_check,
    create_replica_cluster, create_zone, global_writer, in_region, put_lag, set_checkers,
    set_failover_state,
};
use autonomic_testkit::fault_proxy::{Fault, FaultProxy, When};
use autonomic_testkit::{Moto, create_state_table, event, lambda_event, recording_client, unique};
use serde_json::{Value, json};

const PRIMARY: &str = "us-east-1";
const SECONDARY: &str = "us-west-2";

struct Setup {
    promoter: Arc<AuroraPromoter<AwsApi>>,
    sdk: aws_config::SdkConfig,
    table: StateTable,
    health_check: String,
    alarm: String,
}

/// The promoter's clients as `init` builds them (per Region), recording what they call.
fn api(sdk: &aws_config::SdkConfig, regions: &[&str]) -> AwsApi {
    let mut rds = BTreeMap::new();
    let mut cloudwatch = BTreeMap::new();
    for r in regions {
        let sdk = in_region(sdk, r);
        rds.insert(
            r.to_string(),
            recording_client!(aws_sdk_rds, &sdk, "aurora-promoter"),
        );
        cloudwatch.insert(
            r.to_string(),
            recording_client!(aws_sdk_cloudwatch, &sdk, "aurora-promoter"),
        );
    }
    AwsApi {
        rds,
        cloudwatch,
        route53: recording_client!(
            aws_sdk_route53,
            &in_region(sdk, "us-east-1"),
            "aurora-promoter"
        ),
    }
}

/// A promoter whose one target is `kind` (the JSON of `cluster`, `global` or `readReplica`),
/// taking the alarm `alarm`, confirming with a new health check. `endpoint` points its clients
/// elsewhere (a fault proxy).
async fn setup_with(kind: &str, extra: &str, dry_run: bool, endpoint: Option<String>) -> Setup {
    setup_settling(kind, extra, dry_run, endpoint, "0").await
}

/// [`setup_with`], with `PROMOTION_SETTLE_SECONDS` set to `settle`.
async fn setup_settling(
    kind: &str,
    extra: &str,
    dry_run: bool,
    endpoint: Option<String>,
    settle: &str,
) -> Setup {
    let moto_sdk = Moto::shared().sdk_config().await;
    // The time limits the function's own clients have (a hung call gives up as it would).
    let mut sdk = moto_sdk
        .to_builder()
        .timeout_config(autonomic::aws::timeouts());
    if let Some(e) = endpoint {
        sdk = sdk.endpoint_url(e);
    }
    let sdk = sdk.build();
    let table_name = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&moto_sdk), &table_name).await;
    let health_check = create_health_check(&moto_sdk, &unique("hc")).await;
    let alarm = unique("db-health");
    let targets = format!(
        r#"{{"targets": [{{"name": "orders", "alarms": ["{alarm}"], "healthCheckId": "{health_check}",
            "minFailingShare": 0.5, {kind} {extra}}}]}}"#
    );
    let config = PromoterConfig::from_env(Env::from_map([
        ("PROMOTION_TARGETS", targets.as_str()),
        ("STATE_TABLE_NAME", table_name.as_str()),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("PROMOTION_SETTLE_SECONDS", settle),
        // A primary Region's silence is confirmed over a second here, not the default 30.
        ("PRIMARY_SILENCE_SECONDS", "1"),
        ("DRY_RUN", if dry_run { "true" } else { "false" }),
    ]))
    .unwrap();
    let table = StateTable::new(
        recording_client!(aws_sdk_dynamodb, &sdk, "aurora-promoter"),
        table_name,
    );
    let (reporter, _) = Reporter::in_memory("aurora-promoter");
    let promoter = AuroraPromoter::new(
        api(&sdk, &[PRIMARY, SECONDARY]),
        table.clone(),
        config,
        reporter,
    );
    Setup {
        promoter: Arc::new(promoter),
        sdk: moto_sdk,
        table,
        health_check,
        alarm,
    }
}

/// A promoter of the global database `id` that points a record in a new zone at the new writer:
/// the setup, the zone and the record's name.
async fn setup_global_with_record(id: &str) -> (Setup, String, String) {
    let zone = create_zone(
        &Moto::shared().sdk_config().await,
        &format!("{id}.internal."),
    )
    .await;
    let record = format!("writer.{id}.internal.");
    let s = setup_with(
        &global_kind(id, ""),
        &format!(r#", "record": {{"hostedZoneId": "{zone}", "name": "{record}", "ttl": 30}}"#),
        false,
        None,
    )
    .await;
    (s, zone, record)
}

/// The target's breaker, as the table holds it.
async fn breaker_record(s: &Setup) -> Option<autonomic::guard::BreakerRecord> {
    s.table.read_breaker(&breaker_name("orders")).await.unwrap()
}

/// The promotion `earlier` requested is recorded complete: the breaker `tripped`, and the record
/// names `writer`'s endpoint.
async fn assert_completed(s: &Setup, zone: &str, record: &str, writer: &str) {
    let breaker = breaker_record(s).await.unwrap();
    assert_eq!(
        (breaker.state.as_str(), breaker.holder.as_str()),
        ("tripped", "earlier")
    );
    let value = cname(&s.sdk, zone, record)
        .await
        .expect("the record was written");
    assert!(value.starts_with(writer), "{value}");
}

/// A global database behind a fault proxy whose health check fails on every checker: the proxy,
/// the database's identifier, the promoter (with `PROMOTION_SETTLE_SECONDS` = `settle`) and the
/// members.
async fn failing_global_behind_proxy(
    settle: &str,
) -> (FaultProxy, String, Setup, Vec<(String, String)>) {
    let proxy = FaultProxy::start(Moto::shared()).await;
    let id = unique("orders");
    let s = setup_settling(
        &global_kind(&id, ""),
        "",
        false,
        Some(proxy.endpoint()),
        settle,
    )
    .await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 8, 8);
    (proxy, id, s, members)
}

fn global_kind(id: &str, extra: &str) -> String {
    format!(
        r#""global": {{"globalClusterIdentifier": "{id}", "regions": ["{PRIMARY}", "{SECONDARY}"] {extra}}}"#
    )
}

/// The sample alarm, renamed to the setup's alarm and health check, gone to ALARM at `at_ms`.
fn alarm_event(s: &Setup, at_ms: i64) -> Value {
    let mut e = event("eventbridge-health-alarm-orders.json");
    e["detail"]["alarmName"] = json!(s.alarm);
    e["resources"][0] = json!(format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}",
        s.alarm
    ));
    e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["HealthCheckId"] =
        json!(s.health_check);
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap();
    e["detail"]["state"]["timestamp"] = json!(at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
    e
}

async fn handle(s: &Setup, payload: Value, request_id: &str) -> Result<Value, FunctionError> {
    s.promoter
        .handle(lambda_event(payload, request_id, Duration::from_secs(60)))
        .await
}

/// (outcome, skip reason) of the one transition in a response.
fn outcome(r: &Value) -> (String, String) {
    let line = &r["transitions"][0];
    (
        line["outcome"].as_str().unwrap_or_default().to_string(),
        line["plan"]["skips"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

const T0: i64 = 1_795_000_000_000;

/// The breaker's record of a switchover of `id` to its second member, as the function writes it
/// when it requests one (with the record to point at the new writer).
fn in_flight_switchover(id: &str, members: &[(String, String)], zone: &str, record: &str) -> Value {
    in_flight(
        id,
        members,
        zone,
        record,
        "SwitchoverGlobalCluster",
        PRIMARY,
    )
}

/// The breaker's record of `operation` (sent to `region`) promoting `id`'s second member.
fn in_flight(
    id: &str,
    members: &[(String, String)],
    zone: &str,
    record: &str,
    operation: &str,
    region: &str,
) -> Value {
    json!({
        "target": "orders",
        "call": {"operation": operation, "region": region, "global_cluster": id,
                 "target_cluster_arn": members[1].1},
        "from": members[0].0, "to": members[1].0, "toRegion": SECONDARY, "toCluster": members[1].0,
        "why": "test",
        "record": {"hostedZoneId": zone, "name": record, "ttl": 30},
    })
}

#[tokio::test]
async fn a_health_check_alarm_switches_a_global_database_over_once_then_meets_the_breaker() {
    let id = unique("orders");
    let (s, zone, record) = setup_global_with_record(&id).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 6, 8);
    let r = handle(&s, alarm_event(&s, T0), "promote-1").await.unwrap();
    assert_eq!(outcome(&r).0, "promoted", "{r:#}");
    let action = &r["transitions"][0]["plan"]["actions"][0];
    assert_eq!(action["call"]["operation"], "SwitchoverGlobalCluster");
    assert_eq!(
        action["call"]["region"], PRIMARY,
        "sent to the primary's Region"
    );
    assert_eq!(action["call"]["target_cluster_arn"], members[1].1);
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[1].0.as_str())
    );
    // The stand-in completes at once: the breaker says so and the record names the new writer.
    let completion = &r["transitions"][0]["completion"];
    assert_eq!(completion["completed"], true, "{r:#}");
    let breaker = breaker_record(&s).await.unwrap();
    assert_eq!(
        (breaker.state.as_str(), breaker.holder.as_str()),
        (
            "tripped",
            format!(
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}|ALARM|{T0}",
                s.alarm
            )
            .as_str()
        ),
        "the breaker's holder is the transition that tripped it"
    );
    let value = cname(&s.sdk, &zone, &record)
        .await
        .expect("the record was written");
    assert!(
        value.starts_with(&format!("{}.cluster-", members[1].0)),
        "{value}"
    );
    assert!(value.contains(SECONDARY), "{value}");

    // The same transition delivered again is a duplicate; a new one meets the breaker.
    let again = handle(&s, alarm_event(&s, T0), "promote-2").await.unwrap();
    assert_eq!(outcome(&again), ("skipped".into(), "duplicate".into()));
    let next = handle(&s, alarm_event(&s, T0 + 60_000), "promote-3")
        .await
        .unwrap();
    assert_eq!(
        outcome(&next),
        ("skipped".into(), "breaker_tripped".into()),
        "{next:#}"
    );
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[1].0.as_str())
    );
    // Failback is never automatic: the alarm's OK does nothing.
    let mut ok = alarm_event(&s, T0 + 120_000);
    ok["detail"]["state"]["value"] = json!("OK");
    let r = handle(&s, ok, "promote-4").await.unwrap();
    assert_eq!(outcome(&r), ("skipped".into(), "not_alarm".into()));
}

#[tokio::test]
async fn too_few_failing_checkers_never_promote() {
    let id = unique("orders");
    let proxy = FaultProxy::start(Moto::shared()).await;
    let s = setup_with(&global_kind(&id, ""), "", false, Some(proxy.endpoint())).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    // One checker of eight, then three of eight (under the half this target asks for).
    for (n, failing) in [1, 3].into_iter().enumerate() {
        set_checkers(Moto::shared(), &s.health_check, failing, 8);
        let r = handle(&s, alarm_event(&s, T0 + n as i64), &unique("flap"))
            .await
            .unwrap();
        assert_eq!(
            outcome(&r),
            ("skipped".into(), "alarm_no_longer_holds".into()),
            "{r:#}"
        );
    }
    // One checker alone never counts, whatever the share.
    set_checkers(Moto::shared(), &s.health_check, 1, 1);
    let r = handle(&s, alarm_event(&s, T0 + 10), "one-checker")
        .await
        .unwrap();
    assert_eq!(outcome(&r).1, "alarm_no_longer_holds");
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[0].0.as_str())
    );
    assert!(breaker_record(&s).await.is_none());
    // The health check is confirmed before anything else is read: no cluster, instance or lag.
    let ops = proxy.operations();
    assert!(
        ops.iter().filter(|o| o.starts_with("route53:")).count() == 3,
        "{ops:?}"
    );
    assert!(
        ops.iter()
            .all(|o| !o.starts_with("rds:") && !o.starts_with("monitoring:")),
        "{ops:?}"
    );
}

#[tokio::test]
async fn a_switchover_in_progress_is_a_skip() {
    let id = unique("orders");
    let s = setup_with(&global_kind(&id, ""), "", false, None).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 8, 8);
    set_failover_state(
        Moto::shared(),
        &id,
        Some(
            json!({"Status": "switching-over", "FromDbClusterArn": members[0].1,
                    "ToDbClusterArn": members[1].1, "IsDataLossAllowed": false}),
        ),
    );
    let r = handle(&s, alarm_event(&s, T0), "busy").await.unwrap();
    assert_eq!(
        outcome(&r),
        ("skipped".into(), "promotion_in_progress".into()),
        "{r:#}"
    );
    assert!(
        r["transitions"][0]["plan"]["skips"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("switching-over")
    );
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[0].0.as_str())
    );
}

#[tokio::test]
async fn dry_run_returns_the_plan_with_the_chosen_secondary_and_its_lag_and_changes_nothing() {
    let id = unique("orders");
    let s = setup_with(&global_kind(&id, ""), "", true, None).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 5, 8);
    put_lag(
        &s.sdk,
        SECONDARY,
        "AuroraGlobalDBRPOLag",
        (&members[1].0, None),
        1200.0,
    )
    .await;
    let r = handle(&s, alarm_event(&s, T0), "dry").await.unwrap();
    assert_eq!(r["dryRun"], true);
    assert_eq!(outcome(&r).0, "would_promote", "{r:#}");
    let action = &r["transitions"][0]["plan"]["actions"][0];
    assert_eq!(action["to"], json!(members[1].0));
    assert_eq!(
        action["lag"],
        json!({"metric": "AuroraGlobalDBRPOLag", "seconds": 1.2})
    );
    assert_eq!(
        r["transitions"][0]["observed"]["health"],
        json!({"checkers": 8, "failing": 5})
    );
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[0].0.as_str())
    );
    assert!(breaker_record(&s).await.is_none());
    // Without the RPO lag, the replication lag, as published by cluster and source Region.
    let id = unique("orders");
    let s = setup_with(&global_kind(&id, ""), "", true, None).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 5, 8);
    put_lag(
        &s.sdk,
        SECONDARY,
        "AuroraGlobalDBReplicationLag",
        (&members[1].0, Some(PRIMARY)),
        800.0,
    )
    .await;
    let r = handle(&s, alarm_event(&s, T0), "dry-replication")
        .await
        .unwrap();
    let action = &r["transitions"][0]["plan"]["actions"][0];
    assert_eq!(
        action["lag"],
        json!({"metric": "AuroraGlobalDBReplicationLag", "seconds": 0.8}),
        "{r:#}"
    );
    // Dry run claims nothing: the same transition is planned again.
    let again = handle(&s, alarm_event(&s, T0), "dry-2").await.unwrap();
    assert_eq!(outcome(&again).0, "would_promote");
}

/// With the primary's Region down (every RDS request signed for it reset by the proxy), only a
/// failover could promote: it needs allowDataLoss, and a known lag under the ceiling.
#[tokio::test]
async fn with_the_primary_region_down_a_failover_needs_consent_and_a_lag_under_the_rpo() {
    let moto = Moto::shared();
    let proxy = FaultProxy::start(moto).await;
    proxy.inject(
        &format!("rds:*@{PRIMARY}"),
        Fault::Reset,
        When::Before,
        10_000,
    );
    let cases: [(&str, Option<f64>, &str); 4] = [
        ("", Some(100.0), "data_loss_not_allowed"),
        (
            r#", "allowDataLoss": true, "rpoCeilingSeconds": 5"#,
            None,
            "lag_unknown",
        ),
        (
            r#", "allowDataLoss": true, "rpoCeilingSeconds": 5"#,
            Some(9000.0),
            "lag_above_rpo",
        ),
        (
            r#", "allowDataLoss": true, "rpoCeilingSeconds": 5"#,
            Some(1200.0),
            "",
        ),
    ];
    for (extra, lag_ms, want) in cases {
        let id = unique("orders");
        let s = setup_with(&global_kind(&id, extra), "", false, Some(proxy.endpoint())).await;
        let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
        set_checkers(moto, &s.health_check, 8, 8);
        if let Some(ms) = lag_ms {
            put_lag(
                &s.sdk,
                SECONDARY,
                "AuroraGlobalDBRPOLag",
                (&members[1].0, None),
                ms,
            )
            .await;
        }
        let before = proxy.forwarded("rds:FailoverGlobalCluster");
        let r = handle(&s, alarm_event(&s, T0), &unique("down")).await;
        if want == "data_loss_not_allowed" || want == "lag_unknown" {
            // A decision a passing fault may have made is not final: the delivery comes back.
            let e = r.unwrap_err();
            assert_eq!((e.code(), e.class()), (want, ErrorClass::Retryable), "{e}");
            assert_eq!(
                global_writer(&s.sdk, &id).await.as_deref(),
                Some(members[0].0.as_str())
            );
            continue;
        }
        let r = r.unwrap();
        if want.is_empty() {
            assert_eq!(outcome(&r).0, "promoted", "{r:#}");
            let call = &r["transitions"][0]["plan"]["actions"][0]["call"];
            assert_eq!(call["operation"], "FailoverGlobalCluster");
            assert_eq!(call["region"], SECONDARY, "sent to the target's Region");
            assert_eq!(proxy.forwarded("rds:FailoverGlobalCluster"), before + 1);
            assert_eq!(
                global_writer(&s.sdk, &id).await.as_deref(),
                Some(members[1].0.as_str())
            );
        } else {
            assert_eq!(
                outcome(&r),
                ("skipped".into(), want.into()),
                "{extra} {lag_ms:?}: {r:#}"
            );
            assert_eq!(proxy.forwarded("rds:FailoverGlobalCluster"), before);
            assert_eq!(
                global_writer(&s.sdk, &id).await.as_deref(),
                Some(members[0].0.as_str())
            );
        }
    }
}

#[tokio::test]
async fn an_in_region_failover_goes_to_the_best_reader() {
    let cases: [(&str, &str); 2] = [
        // Equal tiers: out of the failed writer's zone first.
        ("", "r2"),
        (r#", "readerPriority": ["R1"]"#, "r1"),
    ];
    for (priority, want) in cases {
        let cluster = unique("billing");
        let names: Vec<String> = ["w", "r1", "r2", "r3"]
            .iter()
            .map(|n| format!("{cluster}-{n}"))
            .collect();
        let priority = priority.replace("R1", &names[1]);
        let s = setup_with(
            &format!(
                r#""cluster": {{"identifier": "{cluster}", "region": "{PRIMARY}" {priority}}}"#
            ),
            "",
            false,
            None,
        )
        .await;
        create_aurora_cluster(
            &s.sdk,
            PRIMARY,
            &cluster,
            &[
                (&names[0], 0, "us-east-1a"),
                (&names[1], 1, "us-east-1a"),
                (&names[2], 1, "us-east-1b"),
                (&names[3], 2, "us-east-1c"),
            ],
        )
        .await;
        set_checkers(Moto::shared(), &s.health_check, 4, 4);
        let r = handle(&s, alarm_event(&s, T0), &unique("fo"))
            .await
            .unwrap();
        assert_eq!(outcome(&r).0, "promoted", "{r:#}");
        let want = format!("{cluster}-{want}");
        assert_eq!(r["transitions"][0]["plan"]["actions"][0]["to"], json!(want));
        assert_eq!(cluster_writer(&s.sdk, PRIMARY, &cluster).await, Some(want));
    }
}

#[tokio::test]
async fn a_read_replica_cluster_is_promoted_once() {
    let source = unique("catalog");
    let replica = format!("{source}-replica");
    let s = setup_with(
        &format!(r#""readReplica": {{"identifier": "{replica}", "region": "{SECONDARY}"}}"#),
        "",
        false,
        None,
    )
    .await;
    let source_arn = create_aurora_cluster(&s.sdk, PRIMARY, &source, &[]).await;
    create_replica_cluster(&s.sdk, SECONDARY, &replica, &source_arn).await;
    set_checkers(Moto::shared(), &s.health_check, 3, 4);
    let r = handle(&s, alarm_event(&s, T0), "replica-1").await.unwrap();
    assert_eq!(outcome(&r).0, "promoted", "{r:#}");
    assert_eq!(
        r["transitions"][0]["plan"]["actions"][0]["call"]["operation"],
        "PromoteReadReplicaDBCluster"
    );
    let r = handle(&s, alarm_event(&s, T0 + 1000), "replica-2")
        .await
        .unwrap();
    assert_eq!(outcome(&r), ("skipped".into(), "breaker_tripped".into()));
}

/// Eight different transitions of the alarm at once (a flapping alarm, several deliveries):
/// exactly one promotion reaches RDS.
#[tokio::test]
async fn concurrent_alarms_promote_exactly_once() {
    let (proxy, id, s, members) = failing_global_behind_proxy("0").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let payload = alarm_event(&s, T0 + i * 1000);
        let promoter = s.promoter.clone();
        tasks.push(tokio::spawn(async move {
            promoter
                .handle(lambda_event(
                    payload,
                    &format!("concurrent-{i}"),
                    Duration::from_secs(60),
                ))
                .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        outcomes.push(outcome(&r));
    }
    let promoted = outcomes.iter().filter(|(o, _)| o == "promoted").count();
    assert_eq!(promoted, 1, "{outcomes:?}");
    for (o, reason) in &outcomes {
        assert!(
            o == "promoted" || ["breaker_tripped", "cooldown"].contains(&reason.as_str()),
            "{outcomes:?}"
        );
    }
    assert_eq!(proxy.forwarded("rds:SwitchoverGlobalCluster"), 1);
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[1].0.as_str())
    );
}

/// RDS refuses (the cluster is busy): nothing was promoted, so the breaker and the lease are
/// released and the redelivery promotes.
#[tokio::test]
async fn a_refused_promotion_releases_the_breaker_and_the_retry_promotes() {
    let (proxy, id, s, members) = failing_global_behind_proxy("0").await;
    proxy.inject(
        "rds:SwitchoverGlobalCluster",
        Fault::error(400, "InvalidGlobalClusterStateFault"),
        When::Before,
        1,
    );
    let e = handle(&s, alarm_event(&s, T0), "refused")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.class()),
        ("InvalidGlobalClusterStateFault", ErrorClass::Retryable)
    );
    assert!(breaker_record(&s).await.is_none());
    let r = handle(&s, alarm_event(&s, T0), "refused").await.unwrap();
    assert_eq!(outcome(&r).0, "promoted", "{r:#}");
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[1].0.as_str())
    );
}

/// Throttled on every attempt (it may have taken effect, as far as the function can tell): the
/// breaker stays; the redelivery reads the clusters, sees nothing moved, and promotes in its place.
/// The switchover times out after RDS acted: the redelivery sees it took effect and calls nothing.
#[tokio::test]
async fn an_uncertain_failure_is_resolved_by_reading_the_clusters_never_by_calling_twice() {
    for (fault, when, calls) in [
        (Fault::error(400, "Throttling"), When::Before, 1),
        (Fault::Hang, When::After, 0),
    ] {
        let (proxy, id, s, members) = failing_global_behind_proxy("0").await;
        proxy.inject("rds:SwitchoverGlobalCluster", fault.clone(), when, 3);
        let e = handle(&s, alarm_event(&s, T0), "uncertain")
            .await
            .unwrap_err();
        assert!(e.may_have_taken_effect(), "{fault:?}: {e}");
        let breaker = breaker_record(&s).await.unwrap();
        assert_eq!(breaker.state, "in_flight", "{fault:?}");
        proxy.clear();
        let reached = proxy.forwarded("rds:SwitchoverGlobalCluster");
        let r = handle(&s, alarm_event(&s, T0), "uncertain").await.unwrap();
        assert_eq!(
            proxy.forwarded("rds:SwitchoverGlobalCluster") - reached,
            calls,
            "{fault:?}: {r:#}"
        );
        let want = if calls == 1 { "promoted" } else { "skipped" };
        assert_eq!(outcome(&r).0, want, "{fault:?}: {r:#}");
        assert_eq!(
            global_writer(&s.sdk, &id).await.as_deref(),
            Some(members[1].0.as_str())
        );
        let breaker = breaker_record(&s).await.unwrap();
        assert_eq!(breaker.state, "tripped", "{fault:?}");
    }
}

/// Within PROMOTION_SETTLE_SECONDS of an uncertain failure, the clusters looking untouched is not
/// enough (RDS may not show an accepted request yet): the redelivery is a retryable error and
/// calls nothing.
#[tokio::test]
async fn an_uncertain_failure_is_not_called_again_before_it_settles() {
    let (proxy, id, s, members) = failing_global_behind_proxy("600").await;
    proxy.inject(
        "rds:SwitchoverGlobalCluster",
        Fault::error(400, "Throttling"),
        When::Before,
        1,
    );
    let e = handle(&s, alarm_event(&s, T0), "unsettled")
        .await
        .unwrap_err();
    assert!(e.may_have_taken_effect(), "{e}");
    let e = handle(&s, alarm_event(&s, T0), "unsettled")
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.class()),
        ("PromotionUnsettled", ErrorClass::Retryable),
        "{e}"
    );
    assert_eq!(proxy.forwarded("rds:SwitchoverGlobalCluster"), 0);
    assert_eq!(
        global_writer(&s.sdk, &id).await.as_deref(),
        Some(members[0].0.as_str())
    );
    let breaker = breaker_record(&s).await.unwrap();
    assert_eq!(breaker.state, "in_flight");
}

/// RDS events complete the promotion in flight (the record is written) or, when RDS reports it
/// failed and the clusters agree, release the breaker.
#[tokio::test]
async fn rds_events_complete_or_release_the_promotion_in_flight() {
    let id = unique("orders");
    let (s, zone, record) = setup_global_with_record(&id).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    // A switchover requested (as the function records it) and not yet done.
    let promotion = in_flight_switchover(&id, &members, &zone, &record);
    let since = autonomic::time::now_ms();
    assert!(
        s.table
            .trip_breaker(&breaker_name("orders"), "earlier", since, &promotion)
            .await
            .unwrap()
    );
    let rds_event = |sample: &str| {
        let mut e = event(sample);
        e["detail"]["SourceIdentifier"] = json!(members[1].0);
        e["detail"]["Date"] = json!(chrono::Utc::now().to_rfc3339());
        e
    };
    let started = handle(
        &s,
        rds_event("eventbridge-rds-global-switchover-started.json"),
        "ev-1",
    )
    .await
    .unwrap();
    assert_eq!(
        (
            started["outcome"].as_str(),
            started["skip"]["reason"].as_str()
        ),
        (Some("noted"), Some("in_progress"))
    );
    // A global failover failing says nothing about a switchover in flight.
    let other = handle(
        &s,
        rds_event("eventbridge-rds-global-failover-failed.json"),
        "ev-other",
    )
    .await
    .unwrap();
    assert_eq!(other["skip"]["reason"], "other_promotion", "{other:#}");
    assert!(breaker_record(&s).await.is_some());
    // A failover in flight instead; RDS says it failed, and the primary still writes with
    // nothing in progress: the breaker is released.
    let breaker = breaker_record(&s).await.unwrap();
    s.table
        .release_breaker(&breaker_name("orders"), &breaker.holder)
        .await
        .unwrap();
    let failover = in_flight(
        &id,
        &members,
        &zone,
        &record,
        "FailoverGlobalCluster",
        SECONDARY,
    );
    assert!(
        s.table
            .trip_breaker(&breaker_name("orders"), "earlier", since, &failover)
            .await
            .unwrap()
    );
    let failed = handle(
        &s,
        rds_event("eventbridge-rds-global-failover-failed.json"),
        "ev-2",
    )
    .await
    .unwrap();
    assert_eq!(failed["outcome"], "released", "{failed:#}");
    assert!(breaker_record(&s).await.is_none());

    // Again in flight; RDS completes it; its completion event finishes the bookkeeping.
    assert!(
        s.table
            .trip_breaker(&breaker_name("orders"), "earlier", since, &promotion)
            .await
            .unwrap()
    );
    let early = handle(
        &s,
        rds_event("eventbridge-rds-global-switchover-completed.json"),
        "ev-3",
    )
    .await
    .unwrap();
    assert_eq!(
        early["outcome"], "noted",
        "an event ahead of the API changes nothing: {early:#}"
    );
    aws_sdk_rds::Client::new(&s.sdk)
        .switchover_global_cluster()
        .global_cluster_identifier(&id)
        .target_db_cluster_identifier(&members[1].1)
        .send()
        .await
        .unwrap();
    let done = handle(
        &s,
        rds_event("eventbridge-rds-global-switchover-completed.json"),
        "ev-4",
    )
    .await
    .unwrap();
    assert_eq!(done["outcome"], "completed", "{done:#}");
    assert_completed(&s, &zone, &record, &members[1].0).await;
    // A failure reported after the clusters show it completed does not release the breaker.
    let late = handle(
        &s,
        rds_event("eventbridge-rds-global-failover-failed.json"),
        "ev-5",
    )
    .await
    .unwrap();
    assert_eq!(late["skip"]["reason"], "already_completed", "{late:#}");
    assert!(breaker_record(&s).await.is_some());
}

/// The promotion took effect and the clusters show it, but the record (and so the breaker's
/// `tripped`) cannot be written: the invocation fails retryably, not only a log line, and the
/// retry finishes the bookkeeping without promoting again.
#[tokio::test]
async fn a_completion_that_cannot_be_recorded_is_finished_by_the_retry() {
    let proxy = FaultProxy::start(Moto::shared()).await;
    let id = unique("orders");
    let zone = create_zone(
        &Moto::shared().sdk_config().await,
        &format!("{id}.internal."),
    )
    .await;
    let record = format!("writer.{id}.internal.");
    let s = setup_with(
        &global_kind(&id, ""),
        &format!(r#", "record": {{"hostedZoneId": "{zone}", "name": "{record}", "ttl": 30}}"#),
        false,
        Some(proxy.endpoint()),
    )
    .await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 8, 8);
    proxy.inject(
        "route53:ChangeResourceRecordSets",
        Fault::error(500, "InternalFailure"),
        When::Before,
        3,
    );
    let e = handle(&s, alarm_event(&s, T0), "first").await.unwrap_err();
    assert_eq!(e.error_type(), "Retryable.CompletionNotRecorded", "{e}");
    assert!(e.may_have_taken_effect());
    assert_eq!(breaker_record(&s).await.unwrap().state, "in_flight");
    let r = handle(&s, alarm_event(&s, T0), "retry").await.unwrap();
    assert_eq!(
        outcome(&r),
        ("skipped".into(), "already_promoted".into()),
        "{r:#}"
    );
    assert_eq!(proxy.forwarded("rds:SwitchoverGlobalCluster"), 1);
    let breaker = breaker_record(&s).await.unwrap();
    assert_eq!(breaker.state, "tripped");
    let value = cname(&s.sdk, &zone, &record)
        .await
        .expect("the record was written");
    assert!(value.starts_with(&members[1].0), "{value}");
}

/// RDS does not document which member of a global database sends a global event: one from the
/// old primary, the new one or the global cluster reaches the promotion in flight, and 0238
/// completes a global failover while 0239 releases it (they were once read the other way round).
#[tokio::test]
async fn global_events_reach_their_promotion_from_any_member() {
    let id = unique("orders");
    let (s, zone, record) = setup_global_with_record(&id).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    let since = autonomic::time::now_ms();
    let failover = in_flight(
        &id,
        &members,
        &zone,
        &record,
        "FailoverGlobalCluster",
        SECONDARY,
    );
    let switchover = in_flight_switchover(&id, &members, &zone, &record);
    let trip = |promotion: Value| {
        let table = s.table.clone();
        async move {
            assert!(
                table
                    .trip_breaker(&breaker_name("orders"), "earlier", since, &promotion)
                    .await
                    .unwrap()
            );
        }
    };
    let from = |sample: &str, source: &str, region: &str| {
        let mut e = event(sample);
        e["detail"]["SourceIdentifier"] = json!(source);
        e["region"] = json!(region);
        e["detail"]["Date"] = json!(chrono::Utc::now().to_rfc3339());
        e
    };
    // 0239 (failed) from the old primary, in its own Region: the failover is released.
    trip(failover.clone()).await;
    let r = handle(
        &s,
        from(
            "eventbridge-rds-global-failover-failed.json",
            &members[0].0,
            PRIMARY,
        ),
        "ev-1",
    )
    .await
    .unwrap();
    assert_eq!(r["outcome"], "released", "{r:#}");
    assert_eq!(
        r["event"]["promotion"],
        json!(["global_failover", "failed"])
    );
    // 0187 (switchover failed) from the old primary: the switchover is released too.
    trip(switchover).await;
    let mut failed = from(
        "eventbridge-rds-global-switchover-completed.json",
        &members[0].0,
        PRIMARY,
    );
    failed["detail"]["EventID"] = json!("RDS-EVENT-0187");
    failed["detail"]["Message"] = json!(format!(
        "Global switchover to DB cluster {} in Region {SECONDARY} failed.",
        members[1].0
    ));
    let r = handle(&s, failed, "ev-2").await.unwrap();
    assert_eq!(r["outcome"], "released", "{r:#}");
    // A 0238 whose message says it failed is read by its message: never a completion.
    trip(failover.clone()).await;
    let mut mislabelled = from(
        "eventbridge-rds-global-failover-failed.json",
        &members[1].0,
        SECONDARY,
    );
    mislabelled["detail"]["EventID"] = json!("RDS-EVENT-0238");
    let r = handle(&s, mislabelled, "ev-3").await.unwrap();
    assert_eq!(r["outcome"], "released", "{r:#}");
    // 0238 (completed) from the global cluster itself, once the clusters show it: completed.
    trip(failover).await;
    aws_sdk_rds::Client::new(&s.sdk)
        .switchover_global_cluster()
        .global_cluster_identifier(&id)
        .target_db_cluster_identifier(&members[1].1)
        .send()
        .await
        .unwrap();
    let r = handle(
        &s,
        from(
            "eventbridge-rds-global-failover-completed.json",
            &id,
            PRIMARY,
        ),
        "ev-4",
    )
    .await
    .unwrap();
    assert_eq!(r["outcome"], "completed", "{r:#}");
    assert_completed(&s, &zone, &record, &members[1].0).await;
}

/// A member cluster the target lists is the target's, breaker or not.
#[tokio::test]
async fn an_event_from_a_listed_member_names_its_target() {
    let id = unique("orders");
    let s = setup_with(
        &format!(
            r#""global": {{"globalClusterIdentifier": "{id}", "regions": ["{PRIMARY}", "{SECONDARY}"],
                "clusters": {{"{PRIMARY}": "{id}-east", "{SECONDARY}": "{id}-west"}}}}"#
        ),
        "",
        false,
        None,
    )
    .await;
    let mut e = event("eventbridge-rds-global-failover-completed.json");
    e["detail"]["SourceIdentifier"] = json!(format!("{id}-east"));
    e["region"] = json!(PRIMARY);
    let r = handle(&s, e, "ev-member").await.unwrap();
    assert_eq!(r["target"], "orders", "{r:#}");
    assert_eq!(r["skip"]["reason"], "no_promotion_in_flight", "{r:#}");
}

/// The completion event of a promotion was lost (RDS sent it in another Region): the next alarm
/// meets the breaker, and finishes the bookkeeping the event would have.
#[tokio::test]
async fn the_next_alarm_completes_a_promotion_whose_event_was_lost() {
    let id = unique("orders");
    let (s, zone, record) = setup_global_with_record(&id).await;
    let members = create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 8, 8);
    let promotion = in_flight_switchover(&id, &members, &zone, &record);
    let now = autonomic::time::now_ms();
    assert!(
        s.table
            .trip_breaker(&breaker_name("orders"), "earlier", now, &promotion)
            .await
            .unwrap()
    );
    // Not done yet: the alarm skips and leaves the breaker in flight.
    let r = handle(&s, alarm_event(&s, T0), "lost-1").await.unwrap();
    assert_eq!(outcome(&r), ("skipped".into(), "breaker_tripped".into()));
    assert_eq!(
        r["transitions"][0]["completion"]["completed"], false,
        "{r:#}"
    );
    aws_sdk_rds::Client::new(&s.sdk)
        .switchover_global_cluster()
        .global_cluster_identifier(&id)
        .target_db_cluster_identifier(&members[1].1)
        .send()
        .await
        .unwrap();
    let r = handle(&s, alarm_event(&s, T0 + 60_000), "lost-2")
        .await
        .unwrap();
    assert_eq!(outcome(&r), ("skipped".into(), "breaker_tripped".into()));
    assert_eq!(
        r["transitions"][0]["completion"]["completed"], true,
        "{r:#}"
    );
    assert_completed(&s, &zone, &record, &members[1].0).await;
}

/// After an operator resets the breaker, the cluster's cooldown still holds a second promotion
/// back until it ends.
#[tokio::test]
async fn a_reset_breaker_still_meets_the_cooldown() {
    let id = unique("orders");
    let s = setup_with(&global_kind(&id, ""), "", false, None).await;
    create_global_database(&s.sdk, &id, &[PRIMARY, SECONDARY]).await;
    set_checkers(Moto::shared(), &s.health_check, 8, 8);
    let r = handle(&s, alarm_event(&s, T0), "first").await.unwrap();
    assert_eq!(outcome(&r).0, "promoted", "{r:#}");
    let breaker = breaker_record(&s).await.unwrap();
    // What the runbook's `aws dynamodb delete-item` does.
    s.table
        .release_breaker(&breaker_name("orders"), &breaker.holder)
        .await
        .unwrap();
    let r = handle(&s, alarm_event(&s, T0 + 60_000), "after-reset")
        .await
        .unwrap();
    assert_eq!(outcome(&r), ("skipped".into(), "cooldown".into()), "{r:#}");
}

/// An in-Region failover RDS refuses (the cluster is busy): retryable, nothing tripped, and the
/// redelivery fails over.
#[tokio::test]
async fn a_refused_in_region_failover_is_retried() {
    let proxy = FaultProxy::start(Moto::shared()).await;
    let cluster = unique("billing");
    let s = setup_with(
        &format!(r#""cluster": {{"identifier": "{cluster}", "region": "{PRIMARY}"}}"#),
        "",
        false,
        Some(proxy.endpoint()),
    )
    .await;
    let (writer, reader) = (format!("{cluster}-1"), format!("{cluster}-2"));
    create_aurora_cluster(
        &s.sdk,
        PRIMARY,
        &cluster,
        &[(&writer, 0, "us-east-1a"), (&reader, 1, "us-east-1b")],
    )
    .await;
    set_checkers(Moto::shared(), &s.health_check, 4, 4);
    proxy.inject(
        "rds:FailoverDBCluster",
        Fault::error(400, "InvalidDBClusterStateFault"),
        When::Before,
        1,
    );
    let e = handle(&s, alarm_event(&s, T0), "busy").await.unwrap_err();
    assert_eq!(
        (e.code(), e.class()),
        ("InvalidDBClusterStateFault", ErrorClass::Retryable)
    );
    assert!(breaker_record(&s).await.is_none());
    assert_eq!(
        cluster_writer(&s.sdk, PRIMARY, &cluster).await,
        Some(writer)
    );
    let r = handle(&s, alarm_event(&s, T0), "busy").await.unwrap();
    assert_eq!(outcome(&r).0, "promoted", "{r:#}");
    assert_eq!(
        cluster_writer(&s.sdk, PRIMARY, &cluster).await,
        Some(reader)
    );
}
