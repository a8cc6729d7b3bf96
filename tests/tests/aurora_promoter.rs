//! aurora-promoter end to end: the built binary under the Runtime API emulator, its targets
//! document read from SSM as infra/ deploys it, against moto with the test kit's stand-ins (the
//! global switchover, Route 53's checkers): a health-check alarm switches a two-Region global
//! database over once, the duplicate is skipped, the next alarm meets the breaker, the RDS
//! events are audited, and bad input is a structured error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic_e2e::start_function;
use autonomic_testkit::estate::{
    create_global_database, create_health_check, global_writer, publish_document, set_checkers,
};
use autonomic_testkit::{Invocation, Moto, create_state_table, event, unique};
use serde_json::json;

#[tokio::test]
async fn a_health_check_alarm_switches_a_global_database_over_once() {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    let global = unique("orders");
    let members = create_global_database(&sdk, &global, &["us-east-1", "us-west-2"]).await;
    let health_check = create_health_check(&sdk, &unique("hc")).await;
    let targets = json!({"targets": [{
        "name": "orders",
        "alarms": ["orders-db-health"],
        "healthCheckId": health_check,
        "minFailingShare": 0.6,
        "global": {"globalClusterIdentifier": global, "regions": ["us-east-1", "us-west-2"]}
    }]});
    let document = publish_document(
        &sdk,
        &format!("/{table}/aurora-promoter/PROMOTION_TARGETS"),
        &targets.to_string(),
    )
    .await;
    let f = start_function(
        "aurora-promoter",
        moto,
        &[
            ("PROMOTION_TARGETS", document.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ],
    )
    .await;
    let respond = |answer: Invocation, what: &str| match answer {
        Invocation::Response(r) => r,
        other => panic!("{what}: {other:?}"),
    };

    // Two of eight checkers failing: under the 60% the target asks for.
    set_checkers(moto, &health_check, 2, 8);
    let r = respond(
        f.api
            .invoke(&event("eventbridge-health-alarm-orders.json"))
            .await,
        "flap",
    );
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"], "alarm_no_longer_holds",
        "{r:#}"
    );
    assert_eq!(
        global_writer(&sdk, &global).await.as_deref(),
        Some(members[0].0.as_str())
    );

    set_checkers(moto, &health_check, 6, 8);
    // The same alarm, another transition (the SNS delivery, 15 minutes later): switched over.
    let r = respond(
        f.api.invoke(&event("sns-health-alarm-orders.json")).await,
        "outage",
    );
    assert_eq!(r["transitions"][0]["outcome"], "promoted", "{r:#}");
    assert_eq!(
        global_writer(&sdk, &global).await.as_deref(),
        Some(members[1].0.as_str())
    );
    // Its duplicate delivery, and a later transition (the Lambda alarm action's).
    let r = respond(
        f.api.invoke(&event("sns-health-alarm-orders.json")).await,
        "duplicate",
    );
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"],
        "duplicate"
    );
    let r = respond(
        f.api
            .invoke(&event("lambda-health-alarm-orders.json"))
            .await,
        "later",
    );
    assert_eq!(
        r["transitions"][0]["plan"]["skips"][0]["reason"], "breaker_tripped",
        "{r:#}"
    );
    assert_eq!(
        global_writer(&sdk, &global).await.as_deref(),
        Some(members[1].0.as_str())
    );

    // RDS events are audited and change nothing here (no target names the sample's cluster).
    for sample in [
        "eventbridge-rds-global-switchover-completed.json",
        "eventbridge-rds-instance-backup.json",
    ] {
        let r = respond(f.api.invoke(&event(sample)).await, sample);
        assert_eq!(r["function"], "aurora-promoter", "{sample}");
        assert_eq!(r["outcome"], "skipped", "{sample}: {r:#}");
    }

    // Bad input is a structured, permanent error, and the process lives on.
    for sample in [
        "malformed-rds-bad-date.json",
        "malformed-alarm-wrong-type.json",
    ] {
        let answer = f.api.invoke(&event(sample)).await;
        let Invocation::Error { error_type, .. } = &answer else {
            panic!("{sample}: {answer:?}")
        };
        assert_eq!(error_type, "Permanent.InvalidEvent", "{sample}");
    }
    let audit = f.process.audit_records();
    assert!(
        audit
            .iter()
            .any(|a| a["record"]["action"] == "promote" && a["record"]["outcome"] == "applied"),
        "{audit:#?}"
    );
    assert!(
        audit
            .iter()
            .any(|a| a["record"]["action"] == "complete_promotion"),
        "the stand-in completes at once, and the function records it: {audit:#?}"
    );
}
