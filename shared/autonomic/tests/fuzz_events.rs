//! Fuzzing the event parsers with the samples in `events/`, broken in small ways: every input
//! gives a value or an error naming a field, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic::events::{parse_alarm_transitions, parse_ecr_event, parse_rds_event};
use autonomic_testkit::mutate::{mutated, samples};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn alarm_payloads_parse_or_fail_with_a_field(payload in mutated(samples(&["eventbridge-alarm-", "lambda-alarm-", "sns-alarm-", "malformed-alarm-", "eventbridge-health-alarm-", "lambda-health-alarm-", "sns-health-alarm-"]))) {
        if let Err(e) = parse_alarm_transitions(&payload) {
            prop_assert!(!e.field.is_empty(), "{e}");
        }
    }

    #[test]
    fn ecr_payloads_parse_or_fail_with_a_field(payload in mutated(samples(&["eventbridge-ecr-", "malformed-ecr-"]))) {
        match parse_ecr_event(&payload) {
            Ok(e) => {
                // Whatever parses is either a push to act on or a skip with a reason.
                let _ = e.skip_reason();
            }
            Err(e) => prop_assert!(!e.field.is_empty(), "{e}"),
        }
    }

    #[test]
    fn rds_payloads_parse_or_fail_with_a_field(payload in mutated(samples(&["eventbridge-rds-", "malformed-rds-"]))) {
        if let Err(e) = parse_rds_event(&payload) {
            prop_assert!(!e.field.is_empty(), "{e}");
        }
    }
}

/// The mutations really break things, and not everything: both outcomes occur.
#[test]
fn the_mutated_samples_both_parse_and_fail() {
    use proptest::strategy::ValueTree;
    let strategy = mutated(samples(&["eventbridge-alarm-", "sns-alarm-"]));
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..300 {
        let payload = strategy.new_tree(&mut runner).unwrap().current();
        match parse_alarm_transitions(&payload) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(ok > 30 && err > 30, "parsed {ok}, failed {err}");
}
