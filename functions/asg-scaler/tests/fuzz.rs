//! Fuzzing asg-scaler's way from payload to plan with the alarm samples broken in small ways
//! (extreme timestamps, periods and thresholds included): parse, route and plan give a plan or an
//! error, never a panic, and a plan never leaves the group's bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use asg_scaler::planner::{GroupState, Observed, Route, Settings, plan, route};
use asg_scaler::rules::Rules;
use autonomic::events::parse_alarm_transitions;
use autonomic_testkit::mutate::{mutated, samples};
use proptest::prelude::*;

const RULES: &str = r#"{"rules": [
  {"name": "web", "match": {"namePrefix": "web-"}, "onAlarm": {"percent": 50, "minStep": 1},
   "onOk": {"change": -1}, "maxStep": 4, "maxCapacity": 12, "cooldownSeconds": 300},
  {"name": "tagged", "match": {"tag": {"key": "team"}}, "groupFromTag": "autonomic:scale-group",
   "onAlarm": {"change": 1}, "maxStep": 1, "cooldownSeconds": 60}
]}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_alarm_payload_gives_a_plan_within_bounds_or_an_error(
        payload in mutated(samples(&["eventbridge-alarm-", "lambda-alarm-", "sns-alarm-"])),
        desired in 0i32..40,
        now_offset in prop_oneof![Just(i64::MIN / 2), Just(0i64), Just(i64::MAX / 2), -10_000_000i64..10_000_000],
    ) {
        let rules = Rules::parse(RULES).unwrap();
        let Ok(transitions) = parse_alarm_transitions(&payload) else {
            return Ok(());
        };
        for t in transitions {
            if let Route::Scale { rule, adjustment, group } = route(&t, &rules) {
                let observed = Observed {
                    group: GroupState { name: group, min_size: 1, max_size: 20, desired, pending: 0 },
                    cooldown_until_ms: None,
                    newest_handled_ms: Some(i64::MIN),
                };
                let settings = Settings { max_event_age: Some(std::time::Duration::from_secs(600)) };
                let now = t.state_changed_at.timestamp_millis().saturating_add(now_offset);
                let p = plan(&t, rule, adjustment, &observed, settings, now);
                for a in &p.actions {
                    prop_assert!((1..=20).contains(&a.to));
                }
            }
        }
    }
}
