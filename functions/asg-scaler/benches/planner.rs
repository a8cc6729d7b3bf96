//! Planner time per event: parse, route and plan every alarm sample in `events/`, many times over.
//! Prints figures; asserts nothing about speed. Run: `cargo bench -p asg-scaler --bench planner`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use asg_scaler::planner::{GroupState, Observed, Route, Settings, plan, route};
use asg_scaler::rules::Rules;
use autonomic::events::parse_alarm_transitions;
use autonomic_testkit::fixtures::{event, events_with_prefix};
use serde_json::Value;

fn main() {
    let rules_text = std::fs::read_to_string(
        autonomic_testkit::workspace_root().join("functions/asg-scaler/rules.example.json"),
    )
    .unwrap();
    let rules = Rules::parse(&rules_text).unwrap();
    let payloads: Vec<Value> = ["eventbridge-alarm-", "lambda-alarm-", "sns-alarm-"]
        .iter()
        .flat_map(|p| events_with_prefix(p))
        .map(|n| event(&n))
        .collect();
    let group = GroupState {
        name: "autonomic-demo-web".into(),
        min_size: 1,
        max_size: 10,
        desired: 4,
        pending: 0,
    };
    let observed = Observed {
        group,
        cooldown_until_ms: None,
        newest_handled_ms: None,
    };
    let settings = Settings {
        max_event_age: None,
    };

    // Plan only (the pure decision), on already-parsed transitions.
    let transitions: Vec<_> = payloads
        .iter()
        .flat_map(|p| parse_alarm_transitions(p).unwrap())
        .collect();
    let plan_only = measure(|| {
        for t in &transitions {
            if let Route::Scale {
                rule, adjustment, ..
            } = route(black_box(t), &rules)
            {
                black_box(plan(t, rule, adjustment, &observed, settings, 0));
            }
        }
        transitions.len()
    });
    // Parse + route + plan, from the JSON payload (what one event costs before any I/O).
    let end_to_end = measure(|| {
        let mut n = 0;
        for p in &payloads {
            for t in parse_alarm_transitions(black_box(p)).unwrap() {
                n += 1;
                if let Route::Scale {
                    rule, adjustment, ..
                } = route(&t, &rules)
                {
                    black_box(plan(&t, rule, adjustment, &observed, settings, 0));
                }
            }
        }
        n
    });
    println!(
        "asg-scaler planner over {} sample transitions",
        transitions.len()
    );
    println!("  route + plan:          {:>8.0} ns per event", plan_only);
    println!("  parse + route + plan:  {:>8.0} ns per event", end_to_end);
}

/// Runs `f` for about two seconds after a warm-up; returns nanoseconds per event.
fn measure(mut f: impl FnMut() -> usize) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        f();
    }
    let start = Instant::now();
    let mut events = 0usize;
    while start.elapsed() < Duration::from_secs(2) {
        events += f();
    }
    start.elapsed().as_nanos() as f64 / events as f64
}
