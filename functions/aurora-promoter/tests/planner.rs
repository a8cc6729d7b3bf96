//! The planner on fixtures and with proptest invariants: never a promotion on fewer than two
//! failing checkers or the configured share, never past a tripped breaker or during a promotion
//! in progress, a failover with data loss only when allowed, the primary does not answer and
//! the lag is known and under the ceiling; a switchover only while the primary answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeMap;

use aurora_promoter::planner::{
    self, BreakerView, Call, ClusterView, GlobalView, Health, InstanceView, Lag, MemberView,
    Observed, RegionHeard, Topology,
};
use aurora_promoter::targets::{Target, Targets};
use autonomic::events::parse_alarm_transitions;
use autonomic_testkit::event;
use proptest::prelude::*;

fn targets(json: &str) -> Targets {
    Targets::parse(json).unwrap()
}

fn global_target(extra: &str) -> Targets {
    targets(&format!(
        r#"{{"targets": [{{"name": "orders", "alarms": ["orders-db-health"], "minFailingShare": 0.5,
            "global": {{"globalClusterIdentifier": "orders", "regions": ["us-east-1", "us-west-2", "eu-west-1"] {extra}}}}}]}}"#
    ))
}

fn cluster(id: &str, status: &str, version: &str) -> ClusterView {
    ClusterView {
        identifier: id.into(),
        arn: format!("arn:aws:rds:r:1:cluster:{id}"),
        status: status.into(),
        engine_version: version.into(),
        endpoint: Some(format!("{id}.cluster-x.example")),
        replication_source: None,
        instances: vec![],
    }
}

fn member(id: &str, region: &str, writer: bool, lag: Option<f64>) -> MemberView {
    MemberView {
        arn: format!("arn:aws:rds:{region}:123456789012:cluster:{id}"),
        identifier: id.into(),
        region: region.into(),
        is_writer: writer,
        synchronization_status: None,
        answered: true,
        cluster: Some(cluster(id, "available", "15.4")),
        lag: lag.map(|s| Lag {
            metric: "AuroraGlobalDBRPOLag".into(),
            seconds: s,
        }),
        lag_error: None,
    }
}

fn observed(topology: Topology) -> Observed {
    Observed {
        health: Health {
            checkers: 8,
            failing: 8,
        },
        breaker: None,
        topology,
        moved_at_ms: None,
    }
}

/// The primary Region's silence window the tests decide with.
const WINDOW_MS: i64 = 30_000;

/// What each member's Region answered, as if read `readings` times over `span_ms`: a member its
/// Region answered for answered DescribeDBClusters, another answered nothing.
fn heard(members: &[MemberView], readings: u32, span_ms: i64) -> BTreeMap<String, RegionHeard> {
    let mut heard: BTreeMap<String, RegionHeard> = BTreeMap::new();
    for m in members {
        let h = heard
            .entry(m.region.clone())
            .or_insert_with(|| RegionHeard {
                readings,
                first_reading_ms: 0,
                last_reading_ms: span_ms,
                ..RegionHeard::default()
            });
        h.heard("DescribeDBClusters", m.answered, || "Timeout".into());
    }
    heard
}

/// A global database read twice over the whole window.
fn global(members: Vec<MemberView>) -> Topology {
    global_heard(members, 2, WINDOW_MS)
}

fn global_heard(members: Vec<MemberView>, readings: u32, span_ms: i64) -> Topology {
    Topology::Global(GlobalView {
        identifier: "orders".into(),
        engine_version: Some("15.4".into()),
        failover_status: None,
        heard: heard(&members, readings, span_ms),
        members,
    })
}

fn reasons(plan: &autonomic::Plan<planner::Promotion>) -> Vec<&str> {
    plan.skips.iter().map(|s| s.reason.as_str()).collect()
}

#[test]
fn the_alarm_samples_route_to_their_target_in_every_delivery_shape() {
    let t = targets(
        r#"{"targets": [
            {"name": "orders", "alarms": ["orders-db-*"], "global": {"globalClusterIdentifier": "orders", "regions": ["us-east-1", "us-west-2"]}},
            {"name": "billing", "cluster": {"identifier": "billing", "region": "us-east-1"}}
        ]}"#,
    );
    for (sample, want) in [
        ("eventbridge-health-alarm-orders.json", "orders"),
        ("lambda-health-alarm-orders.json", "orders"),
        ("sns-health-alarm-orders.json", "orders"),
        ("eventbridge-health-alarm-tagged.json", "billing"),
    ] {
        let transitions = parse_alarm_transitions(&event(sample)).unwrap();
        let target = planner::route(&transitions[0], &t).unwrap();
        assert_eq!(target.name(), want, "{sample}");
        assert_eq!(
            planner::health_check_id(&transitions[0], target),
            Some("11111111-2222-3333-4444-555555555555"),
            "{sample}"
        );
    }
    let ok = parse_alarm_transitions(&event("eventbridge-health-alarm-orders-ok.json")).unwrap();
    let target = planner::route(&ok[0], &t).unwrap();
    assert_eq!(
        planner::screen(&ok[0], target, 0, None).unwrap().reason,
        "not_alarm"
    );
}

#[test]
fn an_alarm_two_targets_take_is_never_promoted_on_a_guess() {
    let t = targets(
        r#"{"targets": [
            {"name": "a", "alarms": ["orders-*"], "cluster": {"identifier": "a", "region": "us-east-1"}},
            {"name": "b", "alarms": ["*-health"], "cluster": {"identifier": "b", "region": "us-east-1"}}
        ]}"#,
    );
    let transitions =
        parse_alarm_transitions(&event("eventbridge-health-alarm-orders.json")).unwrap();
    assert_eq!(
        planner::route(&transitions[0], &t).unwrap_err().reason,
        "ambiguous_target"
    );
}

#[test]
fn a_switchover_while_the_primary_answers_to_the_first_configured_region() {
    let t = global_target("");
    let plan = planner::decide(
        &t.targets[0],
        0,
        &observed(global(vec![
            member("orders-eu", "eu-west-1", false, Some(0.1)),
            member("orders-east", "us-east-1", true, None),
            member("orders-west", "us-west-2", false, Some(3.0)),
        ])),
        WINDOW_MS,
    );
    let p = &plan.actions[0];
    assert_eq!(p.to, "orders-west", "configured Region order before lag");
    assert!(
        matches!(&p.call, Call::SwitchoverGlobalCluster { region, .. } if region == "us-east-1")
    );
}

#[test]
fn secondaries_that_cannot_take_over_are_named() {
    let t = global_target("");
    let mut lagging = member("orders-west", "us-west-2", false, None);
    lagging.synchronization_status = Some("pending-resync".into());
    let mut old = member("orders-eu", "eu-west-1", false, None);
    old.cluster = Some(cluster("orders-eu", "available", "14.9"));
    let plan = planner::decide(
        &t.targets[0],
        0,
        &observed(global(vec![
            member("orders-east", "us-east-1", true, None),
            lagging,
            old.clone(),
        ])),
        WINDOW_MS,
    );
    // A resynchronisation passes: not final.
    assert_eq!(reasons(&plan), ["no_candidate_yet"]);
    let detail = &plan.skips[0].detail;
    assert!(
        detail.contains("synchronization pending-resync"),
        "{detail}"
    );
    assert!(detail.contains("engine version 14.9"), "{detail}");
    // Only an engine version apart: final.
    let plan = planner::decide(
        &t.targets[0],
        0,
        &observed(global(vec![
            member("orders-east", "us-east-1", true, None),
            old,
        ])),
        WINDOW_MS,
    );
    assert_eq!(reasons(&plan), ["no_candidate"]);
}

#[test]
fn a_primary_that_answers_busy_or_outside_the_regions_is_never_failed_over() {
    let t = global_target(r#", "allowDataLoss": true, "rpoCeilingSeconds": 60"#);
    let mut busy = member("orders-east", "us-east-1", true, None);
    busy.cluster = Some(cluster("orders-east", "modifying", "15.4"));
    let mut missing = member("orders-east", "us-east-1", true, None);
    missing.cluster = None;
    let elsewhere = member("orders-ap", "ap-south-1", true, None);
    for (primary, want) in [
        (busy, "primary_not_available"),
        (missing, "primary_missing"),
        (elsewhere, "primary_region_not_configured"),
    ] {
        let plan = planner::decide(
            &t.targets[0],
            0,
            &observed(global(vec![
                primary,
                member("orders-west", "us-west-2", false, Some(0.1)),
            ])),
            WINDOW_MS,
        );
        assert_eq!(reasons(&plan), [want]);
    }
    let mut down = member("orders-east", "us-east-1", true, None);
    down.answered = false;
    down.cluster = None;
    let plan = planner::decide(
        &t.targets[0],
        0,
        &observed(global(vec![
            down,
            member("orders-west", "us-west-2", false, Some(0.1)),
        ])),
        WINDOW_MS,
    );
    assert!(
        matches!(plan.actions[0].call, Call::FailoverGlobalCluster { .. }),
        "{plan:?}"
    );
}

#[test]
fn a_failover_needs_the_primary_region_silent_over_the_window_in_two_readings() {
    let t = global_target(r#", "allowDataLoss": true, "rpoCeilingSeconds": 60"#);
    let down = || {
        let mut m = member("orders-east", "us-east-1", true, None);
        m.answered = false;
        m.cluster = None;
        m
    };
    let west = || member("orders-west", "us-west-2", false, Some(0.1));
    for (readings, span_ms, want) in [
        (1, 0, Some("primary_silence_unconfirmed")),
        (1, WINDOW_MS, Some("primary_silence_unconfirmed")),
        (2, WINDOW_MS - 1, Some("primary_silence_unconfirmed")),
        (2, WINDOW_MS, None),
        (4, 2 * WINDOW_MS, None),
    ] {
        let plan = planner::decide(
            &t.targets[0],
            0,
            &observed(global_heard(vec![down(), west()], readings, span_ms)),
            WINDOW_MS,
        );
        match want {
            Some(reason) => assert_eq!(reasons(&plan), [reason], "{readings} {span_ms}"),
            None => assert!(
                matches!(plan.actions[0].call, Call::FailoverGlobalCluster { .. }),
                "{readings} {span_ms}: {plan:?}"
            ),
        }
    }
    // Any call the Region answered, in any reading (a result, a refusal, throttling), means it
    // answers: the primary unread is then no reason to fail over, only to read again.
    for operation in [
        "DescribeGlobalClusters",
        "DescribeDBInstances",
        "DescribeDBClusters",
    ] {
        let mut topology = global(vec![down(), west()]);
        if let Topology::Global(g) = &mut topology {
            g.heard
                .get_mut("us-east-1")
                .unwrap()
                .heard(operation, true, String::new);
        }
        let plan = planner::decide(&t.targets[0], 0, &observed(topology), WINDOW_MS);
        assert_eq!(reasons(&plan), ["primary_unreadable"], "{operation}");
        assert!(planner::RETRY_LATER.contains(&"primary_unreadable"));
    }
    // Without consent, the silence is not waited for: data loss is not allowed anyway.
    let t = global_target("");
    let plan = planner::decide(
        &t.targets[0],
        0,
        &observed(global_heard(vec![down(), west()], 1, 0)),
        WINDOW_MS,
    );
    assert_eq!(reasons(&plan), ["data_loss_not_allowed"]);
}

#[test]
fn what_a_region_answered_adds_up_over_readings() {
    let mut first = RegionHeard::asked_at(1_000);
    first.heard("DescribeDBClusters", false, || "Timeout".into());
    let mut second = RegionHeard::asked_at(31_000);
    second.heard("DescribeGlobalClusters", false, || "HTTP500".into());
    let both = second.clone().after(&first);
    assert_eq!(
        (both.readings, both.first_reading_ms, both.last_reading_ms),
        (2, 1_000, 31_000)
    );
    assert!(!both.answers());
    assert_eq!(both.unanswered.len(), 2);
    let mut third = RegionHeard::asked_at(61_000);
    third.heard("DescribeDBInstances", true, String::new);
    assert!(
        third.after(&both).answers(),
        "an answer in any reading is an answer"
    );
}

#[test]
fn an_in_region_failover_that_aurora_already_made_is_a_skip() {
    let t = targets(
        r#"{"targets": [{"name": "billing", "cluster": {"identifier": "billing", "region": "us-east-1"}}]}"#,
    );
    let instance = |id: &str, writer: bool, tier: i32| InstanceView {
        identifier: id.into(),
        is_writer: writer,
        status: "available".into(),
        promotion_tier: tier,
        availability_zone: None,
    };
    let mut c = cluster("billing", "available", "15.4");
    c.instances = vec![instance("b1", true, 0), instance("b2", false, 1)];
    let mut o = observed(Topology::Cluster(c.clone()));
    o.moved_at_ms = Some(2_000);
    assert_eq!(
        reasons(&planner::decide(&t.targets[0], 1_000, &o, WINDOW_MS)),
        ["already_moved"]
    );
    assert_eq!(
        planner::decide(&t.targets[0], 3_000, &o, WINDOW_MS).actions[0].to,
        "b2"
    );
    c.status = "failing-over".into();
    let o = observed(Topology::Cluster(c));
    assert_eq!(
        reasons(&planner::decide(&t.targets[0], 0, &o, WINDOW_MS)),
        ["promotion_in_progress"]
    );
}

#[test]
fn completion_is_read_from_the_clusters() {
    let t = global_target("");
    let o = observed(global(vec![
        member("orders-east", "us-east-1", true, None),
        member("orders-west", "us-west-2", false, None),
    ]));
    let p = planner::decide(&t.targets[0], 0, &o, WINDOW_MS)
        .actions
        .remove(0);
    assert!(!planner::completed(&p, &o.topology));
    let moved = global(vec![
        member("orders-east", "us-east-1", false, None),
        member("orders-west", "us-west-2", true, None),
    ]);
    assert!(planner::completed(&p, &moved));
    assert_eq!(
        planner::writer_endpoint(&p, &moved).as_deref(),
        Some("orders-west.cluster-x.example")
    );
}

fn arb_member(i: usize) -> impl Strategy<Value = MemberView> {
    let regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"];
    (
        0..regions.len(),
        any::<bool>(),
        prop::option::of(prop_oneof![Just(0.0), 0.0..20.0f64]),
        prop::sample::select(vec!["available", "modifying", "failing-over"]),
        prop::option::of(prop::sample::select(vec!["connected", "pending-resync"])),
        any::<bool>(),
        prop::sample::select(vec!["15.4", "15.4", "14.9"]),
    )
        .prop_map(move |(r, writer, lag, status, sync, answered, version)| {
            let id = format!("m{i}");
            let mut m = member(&id, regions[r], writer, lag);
            m.synchronization_status = sync.map(str::to_string);
            m.answered = answered;
            m.cluster = answered.then(|| cluster(&id, status, version));
            m
        })
}

fn arb_case() -> impl Strategy<Value = (Target, Observed)> {
    (
        any::<bool>(),
        1.0..10.0f64,
        prop::collection::vec(arb_member(0), 1..5),
        // Mostly one writer (the case that can promote); sometimes none or two.
        prop::sample::select(vec![0usize, 0, 0, 1, 2]),
        0usize..4,
        (0usize..10, 1usize..10),
        // Mostly not tripped, mostly no promotion in progress: the interesting cases act.
        prop::sample::select(vec![false, false, false, true]),
        prop::sample::select(vec![
            None,
            None,
            None,
            Some(""),
            Some("pending"),
            Some("switching-over"),
        ]),
        // How often and over how long the clusters were read; whether the primary's Region
        // answered some other call.
        (
            1u32..4,
            0i64..2 * WINDOW_MS,
            prop::sample::select(vec![false, false, true]),
        ),
    )
        .prop_map(
            |(
                allow,
                ceiling,
                members,
                writers,
                writer_at,
                (failing, checkers),
                breaker,
                failover,
                (readings, span_ms, other_answer),
            )| {
                let extra = if allow {
                    format!(r#", "allowDataLoss": true, "rpoCeilingSeconds": {ceiling}"#)
                } else {
                    String::new()
                };
                let target = global_target(&extra).targets.remove(0);
                let n = members.len();
                let members = members
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut m)| {
                        m.identifier = format!("m{i}");
                        m.is_writer = match writers {
                            0 => i == writer_at % n,
                            1 => false,
                            _ => i < 2,
                        };
                        m
                    })
                    .collect();
                let members: Vec<MemberView> = members;
                let mut heard = heard(&members, readings, span_ms);
                if other_answer && let Some(w) = members.iter().find(|m| m.is_writer) {
                    heard.get_mut(&w.region).unwrap().heard(
                        "DescribeGlobalClusters",
                        true,
                        String::new,
                    );
                }
                let mut o = observed(Topology::Global(GlobalView {
                    identifier: "orders".into(),
                    engine_version: Some("15.4".into()),
                    failover_status: failover.map(str::to_string),
                    members,
                    heard,
                }));
                o.health = Health {
                    checkers,
                    failing: failing.min(checkers),
                };
                o.breaker = breaker.then(|| BreakerView {
                    state: "tripped".into(),
                    since_ms: 0,
                    holder: "x".into(),
                    promotion: None,
                });
                (target, o)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn promotions_keep_every_safety_rule((target, o) in arb_case()) {
        let plan = planner::decide(&target, 0, &o, WINDOW_MS);
        prop_assert!(plan.actions.len() + plan.skips.len() == 1, "one decision: {plan:?}");
        let Some(p) = plan.actions.first() else { return Ok(()) };
        prop_assert!(o.breaker.is_none());
        prop_assert!(o.health.failing >= 2);
        prop_assert!(o.health.failing as f64 >= 0.5 * o.health.checkers as f64);
        let Topology::Global(g) = &o.topology else { unreachable!() };
        prop_assert!(g.failover_status.as_deref().is_none_or(str::is_empty));
        let writers: Vec<_> = g.members.iter().filter(|m| m.is_writer).collect();
        prop_assert_eq!(writers.len(), 1);
        let primary = writers[0];
        let chosen = g.members.iter().find(|m| m.identifier == p.to).unwrap();
        prop_assert!(!chosen.is_writer);
        let c = chosen.cluster.as_ref().unwrap();
        prop_assert_eq!(c.status.as_str(), "available");
        prop_assert!(chosen.synchronization_status.as_deref().is_none_or(|s| s == "connected"));
        prop_assert!(["us-east-1", "us-west-2", "eu-west-1"].contains(&chosen.region.as_str()));
        let primary_answers = primary.answered && primary.cluster.as_ref().is_some_and(|c| c.status == "available");
        prop_assert!(["us-east-1", "us-west-2", "eu-west-1"].contains(&primary.region.as_str()), "the primary's Region is configured");
        match &p.call {
            Call::SwitchoverGlobalCluster { region, .. } => {
                prop_assert!(primary_answers);
                prop_assert_eq!(region, &primary.region);
            }
            Call::FailoverGlobalCluster { region, .. } => {
                let spec = match &target.kind { aurora_promoter::targets::Kind::Global(g) => g, _ => unreachable!() };
                prop_assert!(!primary.answered, "a failover only when the primary's Region did not answer at all");
                let h = &g.heard[&primary.region];
                prop_assert!(!h.answers(), "nothing answered in the primary's Region, in any reading: {h:?}");
                prop_assert!(h.readings >= 2 && h.last_reading_ms - h.first_reading_ms >= WINDOW_MS, "silent over the window: {h:?}");
                prop_assert!(spec.allow_data_loss);
                let lag = chosen.lag.as_ref().unwrap().seconds;
                prop_assert!(lag <= spec.rpo_ceiling_seconds.unwrap());
                prop_assert_eq!(region, &chosen.region);
            }
            other => prop_assert!(false, "a global target made {other:?}"),
        }
    }

    #[test]
    fn fewer_than_two_failing_checkers_never_confirm(checkers in 0usize..50, share in 0.01..1.0f64) {
        for failing in 0..2.min(checkers + 1) {
            let health = Health { checkers, failing };
            prop_assert!(!health.confirms_failure(share));
        }
    }
}
