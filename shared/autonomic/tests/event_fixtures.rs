//! Every sample in `events/` parses (or fails naming the field), and round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic::events::{
    AlarmKind, AlarmState, AlarmTransition, Delivery, EcrEvent, EcrImageActionType,
    parse_alarm_transitions, parse_ecr_event, parse_ecr_image_action, parse_rds_event,
};
use autonomic_testkit::fixtures::{event, event_text, events_with_prefix};
use serde_json::Value;

fn transitions(name: &str) -> Vec<AlarmTransition> {
    parse_alarm_transitions(&event(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn one(name: &str) -> AlarmTransition {
    let mut t = transitions(name);
    assert_eq!(t.len(), 1, "{name}");
    t.remove(0)
}

#[test]
fn eventbridge_metric_alarm() {
    let t = one("eventbridge-alarm-metric-alarm.json");
    assert_eq!(t.name, "web-cpu-high");
    assert_eq!(
        t.arn,
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web-cpu-high"
    );
    assert_eq!(t.account, "123456789012");
    assert_eq!(t.region, "us-east-1");
    assert_eq!(t.state, AlarmState::Alarm);
    assert_eq!(t.previous_state, Some(AlarmState::Ok));
    assert_eq!(t.state_changed_at.to_rfc3339(), "2026-11-27T10:00:00+00:00");
    assert_eq!(t.kind, AlarmKind::Metric);
    assert_eq!(t.delivery, Delivery::EventBridge);
    let m = t.metric().unwrap();
    assert_eq!(m.namespace.as_deref(), Some("AWS/EC2"));
    assert_eq!(m.name, "CPUUtilization");
    assert_eq!(
        t.dimension("AutoScalingGroupName"),
        Some("autonomic-demo-web")
    );
    assert!(t.tags.is_empty());
}

#[test]
fn eventbridge_ok_and_insufficient_data() {
    assert_eq!(
        one("eventbridge-alarm-metric-ok.json").state,
        AlarmState::Ok
    );
    let t = one("eventbridge-alarm-insufficient-data.json");
    assert_eq!(t.state, AlarmState::InsufficientData);
}

#[test]
fn metric_math_alarm_keeps_every_metric() {
    let t = one("eventbridge-alarm-math-alarm.json");
    assert_eq!(t.kind, AlarmKind::MetricMath);
    assert_eq!(t.metrics.len(), 2);
    assert!(t.metric().is_none());
    // Both metrics name the same group, so the dimension is unambiguous.
    assert_eq!(
        t.dimension("AutoScalingGroupName"),
        Some("autonomic-demo-web")
    );
}

#[test]
fn composite_alarm_has_its_rule_and_no_metrics() {
    let t = one("eventbridge-alarm-composite-alarm.json");
    assert_eq!(
        t.kind,
        AlarmKind::Composite {
            rule: "ALARM(web-cpu-high) AND ALARM(web-latency-math)".into()
        }
    );
    assert!(t.metrics.is_empty());
    assert_eq!(t.dimension("AutoScalingGroupName"), None);
}

#[test]
fn propagated_tags_are_exposed() {
    let t = one("eventbridge-alarm-tagged-alarm.json");
    assert_eq!(
        t.tags.get("autonomic:scale-group").map(String::as_str),
        Some("autonomic-demo-api")
    );
    assert_eq!(t.tags.get("team").map(String::as_str), Some("payments"));
}

#[test]
fn lambda_action_payload() {
    let t = one("lambda-alarm-action-alarm.json");
    assert_eq!(t.delivery, Delivery::LambdaAction);
    assert_eq!(t.name, "web-cpu-high");
    assert_eq!(t.state, AlarmState::Alarm);
    assert_eq!(t.region, "us-east-1");
    assert_eq!(
        t.dimension("AutoScalingGroupName"),
        Some("autonomic-demo-web")
    );
    assert_eq!(one("lambda-alarm-action-ok.json").state, AlarmState::Ok);
}

#[test]
fn sns_notification_takes_region_from_the_arn() {
    let t = one("sns-alarm-alarm.json");
    assert_eq!(t.delivery, Delivery::Sns);
    assert_eq!(t.region, "us-east-1");
    assert_eq!(t.account, "123456789012");
    assert_eq!(t.previous_state, Some(AlarmState::Ok));
    assert_eq!(t.kind, AlarmKind::Metric);
    assert_eq!(
        t.dimension("AutoScalingGroupName"),
        Some("autonomic-demo-web")
    );
    assert_eq!(t.state_changed_at.to_rfc3339(), "2026-11-27T12:00:00+00:00");
}

#[test]
fn sns_batch_gives_one_transition_per_record() {
    let t = transitions("sns-alarm-batch.json");
    let names: Vec<_> = t.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["web-cpu-high", "billing-estimate-high"]);
}

#[test]
fn one_transition_has_one_id_whatever_the_delivery() {
    // The same alarm at the same instant must be recognised as a duplicate across shapes.
    let a = one("eventbridge-alarm-metric-alarm.json");
    let mut b = a.clone();
    b.delivery = Delivery::Sns;
    assert_eq!(a.transition_id(), b.transition_id());
    assert_ne!(
        a.transition_id(),
        one("eventbridge-alarm-metric-ok.json").transition_id()
    );
}

#[test]
fn every_valid_alarm_sample_round_trips() {
    let mut seen = 0;
    for prefix in [
        "eventbridge-alarm-",
        "lambda-alarm-",
        "sns-alarm-",
        "eventbridge-health-alarm-",
        "lambda-health-alarm-",
        "sns-health-alarm-",
    ] {
        for name in events_with_prefix(prefix) {
            for t in transitions(&name) {
                let json = serde_json::to_string(&t).unwrap();
                let back: AlarmTransition = serde_json::from_str(&json).unwrap();
                assert_eq!(t, back, "{name}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 12, "only {seen} transitions in the samples");
}

#[test]
fn ecr_image_push() {
    let e = parse_ecr_image_action(&event("eventbridge-ecr-image-push.json")).unwrap();
    assert!(e.is_successful_push());
    assert_eq!(e.repository_name, "web");
    assert_eq!(e.image_tag.as_deref(), Some("v1.4.2"));
    assert_eq!(e.account, "123456789012");
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["repository-name"], "web");
}

#[test]
fn every_ecr_sample_parses_into_a_push_or_a_reasoned_skip() {
    let expected = [
        ("eventbridge-ecr-image-push.json", None),
        ("eventbridge-ecr-image-push-release.json", None),
        ("eventbridge-ecr-image-push-rc.json", None),
        ("eventbridge-ecr-image-push-retag.json", None),
        ("eventbridge-ecr-image-archive.json", Some("not_a_push")),
        ("eventbridge-ecr-image-delete.json", Some("not_a_push")),
        (
            "eventbridge-ecr-image-push-failed.json",
            Some("push_failed"),
        ),
        ("eventbridge-ecr-image-push-untagged.json", Some("untagged")),
        // A multi-arch push: the platform manifests and the attestation untagged, then the index.
        ("eventbridge-ecr-multiarch-1-amd64.json", Some("untagged")),
        ("eventbridge-ecr-multiarch-2-arm64.json", Some("untagged")),
        (
            "eventbridge-ecr-multiarch-3-attestation.json",
            Some("untagged"),
        ),
        ("eventbridge-ecr-multiarch-4-index.json", None),
        ("eventbridge-ecr-replication.json", Some("other_ecr_event")),
        ("eventbridge-ecr-image-scan.json", Some("other_ecr_event")),
    ];
    for name in events_with_prefix("eventbridge-ecr-") {
        let want = expected
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} has no expectation in this test"))
            .1;
        let e = parse_ecr_event(&event(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(e.skip_reason().map(|(r, _)| r), want, "{name}");
    }
    let archive = parse_ecr_event(&event("eventbridge-ecr-image-archive.json")).unwrap();
    let EcrEvent::ImageAction(a) = archive else {
        panic!("an image action")
    };
    assert_eq!(
        a.action_type,
        EcrImageActionType::Other("UPDATE_STORAGE_CLASS".into())
    );
    // Round trip keeps the action type's name.
    assert_eq!(
        serde_json::to_value(&a).unwrap()["action-type"],
        "UPDATE_STORAGE_CLASS"
    );
    let err = parse_ecr_event(&event("eventbridge-alarm-metric-alarm.json")).unwrap_err();
    assert_eq!(err.field, "source");
}

/// Each malformed sample, and the field its error must name.
const MALFORMED: &[(&str, &str)] = &[
    ("malformed-alarm-empty.json", "."),
    ("malformed-alarm-wrong-type.json", "detail.state.value"),
    ("malformed-alarm-missing-state.json", "detail.state"),
    (
        "malformed-alarm-bad-timestamp.json",
        "detail.state.timestamp",
    ),
    (
        "malformed-sns-missing-state.json",
        "Records[0].Sns.Message.NewStateValue",
    ),
    ("malformed-lambda-wrong-type.json", "alarmData.alarmName"),
];

#[test]
fn malformed_samples_name_the_field() {
    for (name, field) in MALFORMED {
        let err = parse_alarm_transitions(&event(name)).expect_err(name);
        assert_eq!(err.field, *field, "{name}: {err}");
    }
    let err = parse_ecr_image_action(&event("malformed-ecr-missing-repository.json")).unwrap_err();
    assert_eq!(err.field, "detail.repository-name");
    let err = parse_ecr_event(&event("malformed-ecr-bad-digest.json")).unwrap_err();
    assert_eq!(err.field, "detail.image-digest", "{err}");
    for (name, field) in [
        (
            "malformed-rds-missing-source-identifier.json",
            "detail.SourceIdentifier",
        ),
        ("malformed-rds-bad-date.json", "detail.Date"),
    ] {
        let err = parse_rds_event(&event(name)).expect_err(name);
        assert_eq!(err.field, field, "{name}: {err}");
    }
}

#[test]
fn every_rds_sample_is_classified() {
    use autonomic::events::{Phase, Promotion};
    let expected = [
        (
            "eventbridge-rds-global-switchover-started.json",
            Some((Promotion::GlobalSwitchover, Phase::Started)),
        ),
        (
            "eventbridge-rds-global-switchover-completed.json",
            Some((Promotion::GlobalSwitchover, Phase::Completed)),
        ),
        (
            "eventbridge-rds-global-failover-failed.json",
            Some((Promotion::GlobalFailover, Phase::Failed)),
        ),
        (
            "eventbridge-rds-global-failover-completed.json",
            Some((Promotion::GlobalFailover, Phase::Completed)),
        ),
        (
            "eventbridge-rds-cluster-failover-completed.json",
            Some((Promotion::Failover, Phase::Completed)),
        ),
        ("eventbridge-rds-instance-backup.json", None),
    ];
    for name in events_with_prefix("eventbridge-rds-") {
        let want = expected
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} has no expectation in this test"))
            .1;
        let e = parse_rds_event(&event(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(e.promotion, want, "{name}");
        assert!(e.time_ms > 0 && !e.source_identifier.is_empty(), "{name}");
    }
    let err = parse_rds_event(&event("eventbridge-alarm-metric-alarm.json")).unwrap_err();
    assert_eq!(err.field, "source");
}

#[test]
fn every_malformed_sample_is_covered() {
    let listed: Vec<&str> = MALFORMED.iter().map(|(n, _)| *n).collect();
    for name in events_with_prefix("malformed-") {
        let covered = listed.contains(&name.as_str())
            || name == "malformed-alarm-truncated.json"
            || name.starts_with("malformed-ecr-")
            || name.starts_with("malformed-rds-")
            // SQS payloads: functions/cdn-invalidator's tests cover them.
            || name.starts_with("malformed-sqs-");
        assert!(covered, "{name} has no expectation in this test");
    }
}

#[test]
fn truncated_json_is_an_error_not_a_panic() {
    let text = event_text("malformed-alarm-truncated.json");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let err = autonomic::events::from_json_str::<Value>(&text).unwrap_err();
    assert!(err.message.contains("not valid JSON"), "{err}");
}

#[test]
fn non_alarm_payloads_are_rejected_with_a_reason() {
    let err = parse_alarm_transitions(&event("eventbridge-ecr-image-push.json")).unwrap_err();
    assert_eq!(err.field, "detail-type");
    let err = parse_alarm_transitions(&serde_json::json!([1, 2])).unwrap_err();
    assert!(err.message.contains("JSON object"));
}
