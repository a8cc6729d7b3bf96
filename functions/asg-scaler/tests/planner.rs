//! The planner on the `events/` samples, and its invariants under proptest.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::time::Duration;

use asg_scaler::planner::{
    CLOCK_SKEW_ALLOWANCE_MS, GroupState, Observed, Route, ScaleAction, Settings, plan, route,
};
use asg_scaler::rules::{Adjustment, Rule, Rules};
use autonomic::Plan;
use autonomic::events::{AlarmTransition, parse_alarm_transitions};
use autonomic_testkit::event;
use proptest::prelude::*;

const RULES: &str = r#"{"rules": [
  {"name": "web-cpu", "match": {"name": "web-cpu-high"},
   "onAlarm": {"change": 2}, "onOk": {"change": -1},
   "maxStep": 3, "minCapacity": 2, "maxCapacity": 8, "cooldownSeconds": 300},
  {"name": "web-latency", "match": {"namePrefix": "web-latency"},
   "onAlarm": {"percent": 50, "minStep": 1}, "maxStep": 4, "cooldownSeconds": 300},
  {"name": "web-degraded", "match": {"nameGlob": "web-degr*"}, "group": "autonomic-demo-web",
   "onAlarm": {"change": 1}, "maxStep": 1, "cooldownSeconds": 300},
  {"name": "payments", "match": {"tag": {"key": "team", "value": "payments"}},
   "groupFromTag": "autonomic:scale-group",
   "onAlarm": {"change": 1}, "maxStep": 1, "cooldownSeconds": 60}
]}"#;

fn rules() -> Rules {
    Rules::parse(RULES).unwrap()
}

fn transition(sample: &str) -> AlarmTransition {
    parse_alarm_transitions(&event(sample)).unwrap().remove(0)
}

fn group(name: &str, min: i32, max: i32, desired: i32) -> GroupState {
    GroupState {
        name: name.into(),
        min_size: min,
        max_size: max,
        desired,
        pending: 0,
    }
}

fn observed(g: GroupState) -> Observed {
    Observed {
        group: g,
        cooldown_until_ms: None,
        newest_handled_ms: None,
    }
}

const NO_AGE_LIMIT: Settings = Settings {
    max_event_age: None,
};

fn at(t: &AlarmTransition, plus_ms: i64) -> i64 {
    t.state_changed_at.timestamp_millis() + plus_ms
}

/// Routes and plans a sample against a group.
fn plan_sample(
    sample: &str,
    g: GroupState,
    settings: Settings,
    now_offset_ms: i64,
) -> Plan<ScaleAction> {
    let rules = rules();
    let t = transition(sample);
    match route(&t, &rules) {
        Route::Scale {
            rule, adjustment, ..
        } => plan(
            &t,
            rule,
            adjustment,
            &observed(g),
            settings,
            at(&t, now_offset_ms),
        ),
        Route::Skip(s) => Plan::skip(s),
    }
}

/// The rule and adjustment a transition that scales is routed to.
fn scaled<'r>(t: &AlarmTransition, rules: &'r Rules) -> (&'r Rule, Adjustment) {
    match route(t, rules) {
        Route::Scale {
            rule, adjustment, ..
        } => (rule, adjustment),
        Route::Skip(s) => panic!("{} does not scale: {s:?}", t.name),
    }
}

fn skip_reason(p: &Plan<ScaleAction>) -> &str {
    assert!(p.actions.is_empty(), "{p:?}");
    &p.skips[0].reason
}

#[test]
fn alarm_scales_out_and_ok_scales_in() {
    let out = plan_sample(
        "eventbridge-alarm-metric-alarm.json",
        group("autonomic-demo-web", 1, 10, 2),
        NO_AGE_LIMIT,
        0,
    );
    assert_eq!((out.actions[0].from, out.actions[0].to), (2, 4));
    assert_eq!(out.actions[0].group, "autonomic-demo-web");
    let back = plan_sample(
        "eventbridge-alarm-metric-ok.json",
        group("autonomic-demo-web", 1, 10, 4),
        NO_AGE_LIMIT,
        0,
    );
    assert_eq!((back.actions[0].from, back.actions[0].to), (4, 3));
}

#[test]
fn every_delivery_shape_routes_the_same() {
    for sample in [
        "eventbridge-alarm-metric-alarm.json",
        "lambda-alarm-action-alarm.json",
        "sns-alarm-alarm.json",
    ] {
        let p = plan_sample(
            sample,
            group("autonomic-demo-web", 1, 10, 2),
            NO_AGE_LIMIT,
            0,
        );
        assert_eq!(p.actions.len(), 1, "{sample}");
        assert_eq!(p.actions[0].to, 4, "{sample}");
    }
}

#[test]
fn skips_carry_their_reasons() {
    let g = || group("autonomic-demo-web", 1, 10, 2);
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-insufficient-data.json",
            g(),
            NO_AGE_LIMIT,
            0
        )),
        "insufficient_data"
    );
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-unmatched.json",
            g(),
            NO_AGE_LIMIT,
            0
        )),
        "no_matching_rule"
    );
    // The latency rule has no onOk.
    let rules = rules();
    let mut ok = transition("eventbridge-alarm-math-alarm.json");
    ok.state = autonomic::events::AlarmState::Ok;
    let Route::Skip(s) = route(&ok, &rules) else {
        panic!()
    };
    assert_eq!(s.reason, "no_action_for_state");
}

#[test]
fn metric_math_composite_and_tagged_alarms_find_their_groups() {
    let rules = rules();
    let cases = [
        ("eventbridge-alarm-math-alarm.json", "autonomic-demo-web"),
        (
            "eventbridge-alarm-composite-alarm.json",
            "autonomic-demo-web",
        ),
        ("eventbridge-alarm-tagged-alarm.json", "autonomic-demo-api"),
    ];
    for (sample, want) in cases {
        let Route::Scale { group, .. } = route(&transition(sample), &rules) else {
            panic!("{sample}")
        };
        assert_eq!(group, want, "{sample}");
    }
}

#[test]
fn a_rule_without_a_group_source_on_the_alarm_is_skipped() {
    let rules = Rules::parse(
        r#"{"rules": [{"name": "r", "match": {"name": "web-degraded"},
        "onAlarm": {"change": 1}, "maxStep": 1, "cooldownSeconds": 1}]}"#,
    )
    .unwrap();
    // A composite alarm has no metrics, so no AutoScalingGroupName dimension.
    let Route::Skip(s) = route(
        &transition("eventbridge-alarm-composite-alarm.json"),
        &rules,
    ) else {
        panic!()
    };
    assert_eq!(s.reason, "group_unknown");
}

#[test]
fn stale_superseded_and_cooling_down_transitions_are_skipped() {
    let ten_min = Settings {
        max_event_age: Some(Duration::from_secs(600)),
    };
    let g = || group("autonomic-demo-web", 1, 10, 2);
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-alarm.json",
            g(),
            ten_min,
            600_001
        )),
        "stale"
    );
    assert_eq!(
        plan_sample("eventbridge-alarm-metric-alarm.json", g(), ten_min, 600_000)
            .actions
            .len(),
        1
    );

    let rules = rules();
    let t = transition("eventbridge-alarm-metric-alarm.json");
    let (rule, adjustment) = scaled(&t, &rules);
    let mut o = observed(g());
    o.newest_handled_ms = Some(at(&t, 1));
    assert_eq!(
        skip_reason(&plan(&t, rule, adjustment, &o, NO_AGE_LIMIT, at(&t, 5))),
        "superseded"
    );
    o.newest_handled_ms = Some(at(&t, 0));
    assert_eq!(
        plan(&t, rule, adjustment, &o, NO_AGE_LIMIT, at(&t, 5))
            .actions
            .len(),
        1
    );
    o.cooldown_until_ms = Some(at(&t, 6));
    assert_eq!(
        skip_reason(&plan(&t, rule, adjustment, &o, NO_AGE_LIMIT, at(&t, 5))),
        "cooldown"
    );
    assert_eq!(
        plan(&t, rule, adjustment, &o, NO_AGE_LIMIT, at(&t, 6))
            .actions
            .len(),
        1
    );
}

#[test]
fn a_future_dated_transition_is_rejected_and_a_future_watermark_ignored() {
    let g = || group("autonomic-demo-web", 1, 10, 2);
    // Dated 2 min + 1 ms after "now": more than clocks may differ.
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-alarm.json",
            g(),
            NO_AGE_LIMIT,
            -CLOCK_SKEW_ALLOWANCE_MS - 1
        )),
        "future_dated"
    );
    assert_eq!(
        plan_sample(
            "eventbridge-alarm-metric-alarm.json",
            g(),
            NO_AGE_LIMIT,
            -CLOCK_SKEW_ALLOWANCE_MS
        )
        .actions
        .len(),
        1
    );
    // A watermark far in the future (a forged transition handled before this check) does not
    // block a genuine transition.
    let rules = rules();
    let t = transition("eventbridge-alarm-metric-alarm.json");
    let (rule, adjustment) = scaled(&t, &rules);
    let mut o = observed(g());
    o.newest_handled_ms = Some(at(&t, 86_400_000));
    assert_eq!(
        plan(&t, rule, adjustment, &o, NO_AGE_LIMIT, at(&t, 5))
            .actions
            .len(),
        1
    );
}

#[test]
fn scale_in_waits_for_pending_instances() {
    let mut g = group("autonomic-demo-web", 1, 10, 4);
    g.pending = 2;
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-ok.json",
            g.clone(),
            NO_AGE_LIMIT,
            0
        )),
        "scale_out_in_progress"
    );
    // Scaling out further is not blocked by launching instances.
    assert_eq!(
        plan_sample("eventbridge-alarm-metric-alarm.json", g, NO_AGE_LIMIT, 0)
            .actions
            .len(),
        1
    );
}

#[test]
fn bounds_hold_at_the_edges() {
    // Group max 10, rule max 8: from 7, +2 stops at 8; at 8, nothing.
    let p = plan_sample(
        "eventbridge-alarm-metric-alarm.json",
        group("autonomic-demo-web", 1, 10, 7),
        NO_AGE_LIMIT,
        0,
    );
    assert_eq!(p.actions[0].to, 8);
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-alarm.json",
            group("autonomic-demo-web", 1, 10, 8),
            NO_AGE_LIMIT,
            0
        )),
        "at_max"
    );
    // The group's own max (5) is tighter than the rule's.
    let p = plan_sample(
        "eventbridge-alarm-metric-alarm.json",
        group("autonomic-demo-web", 1, 5, 4),
        NO_AGE_LIMIT,
        0,
    );
    assert_eq!(p.actions[0].to, 5);
    // Rule min 2: from 2, -1 is refused.
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-ok.json",
            group("autonomic-demo-web", 0, 10, 2),
            NO_AGE_LIMIT,
            0
        )),
        "at_min"
    );
    // Desired above the bounds on a scale-out alarm: never moves down.
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-alarm.json",
            group("autonomic-demo-web", 1, 20, 12),
            NO_AGE_LIMIT,
            0
        )),
        "at_max"
    );
    // Rule bounds outside the group's: no room.
    assert_eq!(
        skip_reason(&plan_sample(
            "eventbridge-alarm-metric-alarm.json",
            group("autonomic-demo-web", 9, 12, 9),
            NO_AGE_LIMIT,
            0
        )),
        "bounds_conflict"
    );
}

#[test]
fn the_cap_limits_one_step() {
    // 50 % of 20 is 10, capped at maxStep 4.
    let p = plan_sample(
        "eventbridge-alarm-math-alarm.json",
        group("autonomic-demo-web", 1, 100, 20),
        NO_AGE_LIMIT,
        0,
    );
    assert_eq!((p.actions[0].from, p.actions[0].to), (20, 24));
}

prop_compose! {
    fn any_rule()(
        change in prop_oneof![(-20i32..=20).prop_filter("non-zero", |c| *c != 0).prop_map(|c| format!(r#""change": {c}"#)),
                              (1i32..=300, any::<bool>(), 1i32..=5).prop_map(|(p, neg, m)| format!(r#""percent": {}, "minStep": {m}"#, if neg { -p } else { p }))],
        max_step in 1i32..=10,
        bounds in proptest::option::of((0i32..=30, 0i32..=30)),
    ) -> String {
        let bounds = bounds
            .map(|(a, b)| format!(r#", "minCapacity": {}, "maxCapacity": {}"#, a.min(b), a.max(b)))
            .unwrap_or_default();
        format!(r#"{{"rules": [{{"name": "r", "match": {{"name": "web-cpu-high"}}, "onAlarm": {{{change}}}, "onOk": {{{change}}}, "maxStep": {max_step}, "cooldownSeconds": 60{bounds}}}]}}"#)
    }
}

prop_compose! {
    fn any_group()(min in 0i32..=20, span in 0i32..=30, desired in 0i32..=60, pending in 0i32..=3) -> GroupState {
        GroupState { name: "g".into(), min_size: min, max_size: min + span, desired, pending }
    }
}

proptest! {
    #[test]
    fn a_planned_step_stays_within_every_bound_and_the_cap(
        doc in any_rule(), g in any_group(), ok in any::<bool>(),
        cooldown in proptest::option::of(-100_000i64..100_000), age_ms in 0i64..1_200_000,
    ) {
        let rules = Rules::parse(&doc).unwrap();
        let sample = if ok { "eventbridge-alarm-metric-ok.json" } else { "eventbridge-alarm-metric-alarm.json" };
        let t = transition(sample);
        let (rule, adjustment) = scaled(&t, &rules);
        let now = at(&t, age_ms);
        let o = Observed { group: g.clone(), cooldown_until_ms: cooldown.map(|c| now + c), newest_handled_ms: None };
        let settings = Settings { max_event_age: Some(Duration::from_secs(600)) };
        let p = plan(&t, rule, adjustment, &o, settings, now);
        prop_assert_eq!(p.actions.len() + p.skips.len(), 1);
        if let Some(a) = p.actions.first() {
            let lo = g.min_size.max(rule.spec.min_capacity.unwrap_or(i32::MIN));
            let hi = g.max_size.min(rule.spec.max_capacity.unwrap_or(i32::MAX));
            prop_assert!(lo <= a.to && a.to <= hi, "{} outside [{}, {}]", a.to, lo, hi);
            prop_assert!(g.min_size <= a.to && a.to <= g.max_size);
            prop_assert!((a.to - a.from).abs() <= rule.spec.max_step);
            prop_assert!(a.to != a.from);
            // Never against the rule's direction.
            prop_assert_eq!((a.to - a.from).signum(), adjustment.step(g.desired).signum());
            // Not in a cooldown, not stale, no scale-in over pending instances.
            prop_assert!(cooldown.is_none_or(|c| c <= 0));
            prop_assert!(age_ms <= 600_000);
            prop_assert!(a.to > a.from || g.pending == 0);
        }
    }
}
