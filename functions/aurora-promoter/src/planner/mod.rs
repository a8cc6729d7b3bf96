//! The pure decisions: which target an alarm stands for, and whether and how to promote it given
//! what was observed (the health check's checkers, the clusters, the lag, the breaker).
//!
//! No I/O and no clock (time is an argument). The handler observes, guards and applies.
//!
//! - [`observed`]: what a decision is made on (the checkers, the clusters, what each Region
//!   answered); the breaker as read is here, with the whole of what was observed.
//! - [`promotion`]: the promotion decided on, and whether the clusters show it made.
//! - this module: routing a transition, screening it, and the decision; `cluster` and `global`
//!   hold the decisions of each kind of target.

mod cluster;
mod global;
pub mod observed;
pub mod promotion;

pub use observed::{
    ClusterView, GlobalView, Health, InstanceView, Lag, MemberView, RegionHeard, Topology,
};
pub use promotion::{Call, Promotion, completed, untouched, writer_endpoint};

use autonomic::events::{AlarmState, AlarmTransition};
use autonomic::{Plan, Skip};
use serde::{Deserialize, Serialize};

use crate::targets::{Kind, MIN_FAILING_CHECKERS, Target, Targets};

/// The breaker as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakerView {
    pub state: String,
    pub since_ms: i64,
    pub holder: String,
    /// The promotion the breaker records, when it is one this function made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
}

/// Everything a decision is made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    pub health: Health,
    pub breaker: Option<BreakerView>,
    pub topology: Topology,
    /// When Aurora last reported a completed failover of the cluster (an RDS event).
    pub moved_at_ms: Option<i64>,
}

/// The audit action of a promotion.
pub const PROMOTE: &str = "promote";

/// Skips that rest on a fault or a passing state (the primary's Region did not answer; the lag
/// could not be read or has no recent datapoint; a secondary's Region did not answer or it is
/// not available yet; the primary is answering but busy): outside dry run they are retryable
/// errors, so the delivery comes back (until EventBridge's retries end) rather than ending in a
/// decision a passing fault made.
pub const RETRY_LATER: &[&str] = &[
    "data_loss_not_allowed",
    "lag_unreadable",
    "lag_unknown",
    "no_candidate_yet",
    "primary_not_available",
    "primary_unreadable",
    PRIMARY_SILENCE_UNCONFIRMED,
];

/// The primary's Region has answered nothing, but not yet over the whole window or in two
/// readings apart in time: the handler reads again while it has time, else the delivery comes
/// back.
pub const PRIMARY_SILENCE_UNCONFIRMED: &str = "primary_silence_unconfirmed";

/// Which target a transition stands for, or why none.
pub fn route<'a>(t: &AlarmTransition, targets: &'a Targets) -> Result<&'a Target, Skip> {
    let matched: Vec<&Target> = targets
        .targets
        .iter()
        .filter(|target| target.takes(&t.name, &t.tags))
        .collect();
    match matched.as_slice() {
        [one] => Ok(one),
        [] => Err(Skip::new(
            &t.name,
            "no_target",
            "no target takes this alarm",
        )),
        many => Err(Skip::new(
            &t.name,
            "ambiguous_target",
            format!(
                "the alarm matches {} targets ({}): none is promoted on a guess",
                many.len(),
                many.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// What a transition asks before anything is observed: only a transition into ALARM can promote,
/// and not a stale one.
pub fn screen(
    t: &AlarmTransition,
    target: &Target,
    now_ms: i64,
    max_event_age: Option<std::time::Duration>,
) -> Option<Skip> {
    if t.state != AlarmState::Alarm {
        return Some(Skip::new(
            target.name(),
            "not_alarm",
            format!("the alarm went to {}; failback is never automatic", t.state),
        ));
    }
    autonomic::plan::stale(
        target.name(),
        "the transition",
        t.state_changed_at.timestamp_millis(),
        now_ms,
        max_event_age,
    )
}

/// The health check to confirm with: the target's, else the alarm's `HealthCheckId` dimension.
pub fn health_check_id<'a>(t: &'a AlarmTransition, target: &'a Target) -> Option<&'a str> {
    target
        .spec
        .health_check_id
        .as_deref()
        .or_else(|| t.dimension("HealthCheckId"))
}

/// The decision on observed state. `alarm_ms` is when the alarm went to ALARM; a global
/// database's primary is taken as down only when its Region answered nothing for at least
/// `silence_window_ms`, in at least two readings that far apart.
pub fn decide(
    target: &Target,
    alarm_ms: i64,
    observed: &Observed,
    silence_window_ms: i64,
) -> Plan<Promotion> {
    let name = target.name();
    let skip = |reason: &str, detail: String| Plan::skip(Skip::new(name, reason, detail));
    if let Some(b) = &observed.breaker {
        return skip(
            "breaker_tripped",
            format!(
                "a promotion ({}) was made at {} for {}; nothing more is promoted until an operator resets the breaker",
                b.state,
                chrono::DateTime::from_timestamp_millis(b.since_ms)
                    .map_or_else(|| format!("{} ms", b.since_ms), |t| t.to_rfc3339()),
                b.holder
            ),
        );
    }
    let h = observed.health;
    if !h.confirms_failure(target.spec.min_failing_share) {
        return skip(
            "alarm_no_longer_holds",
            format!(
                "{} of {} Route 53 checkers report failure; promoting needs {:.0}% and at least {MIN_FAILING_CHECKERS}",
                h.failing,
                h.checkers,
                target.spec.min_failing_share * 100.0
            ),
        );
    }
    let mut plan = match (&target.kind, &observed.topology) {
        (_, Topology::Missing { what }) => skip("not_found", format!("{what} does not exist")),
        (Kind::Cluster(spec), Topology::Cluster(c)) => {
            cluster::decide(spec, c, alarm_ms, observed, name)
        }
        (Kind::Global(spec), Topology::Global(g)) => {
            global::decide(spec, g, name, silence_window_ms)
        }
        (Kind::ReadReplica(spec), Topology::ReadReplica(c)) => {
            cluster::replica(&spec.region, c, name)
        }
        (_, other) => skip(
            "unexpected_topology",
            format!("observed {other:?}, which is not what this target is configured as"),
        ),
    };
    for p in &mut plan.actions {
        p.record = target.spec.record.clone();
    }
    plan
}
