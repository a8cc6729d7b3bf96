//! The pure decisions: which target an alarm stands for, and whether and how to promote it given
//! what was observed (the health check's checkers, the clusters, the lag, the breaker).
//!
//! No I/O and no clock (time is an argument). The handler observes, guards and applies.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use autonomic::events::{AlarmState, AlarmTransition};
use autonomic::{Plan, Skip};
use serde::{Deserialize, Serialize};

use crate::targets::{
    ClusterSpec, GlobalSpec, Kind, MIN_FAILING_CHECKERS, RecordSpec, Target, Targets,
};

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

/// What one Region answered while the clusters were read, over every reading so far. A call is
/// answered by any reply from the service (a result, a refusal, throttling); it is not answered
/// when no connection was made, no reply came in time, or the reply was a server error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionHeard {
    /// The operations it answered.
    pub answered: BTreeSet<String>,
    /// The calls it did not answer (`operation: why`), the first few.
    pub unanswered: Vec<String>,
    /// How many readings asked it, and when the first and the last of them began.
    pub readings: u32,
    pub first_reading_ms: i64,
    pub last_reading_ms: i64,
}

/// At most this many unanswered calls are kept per Region (enough to say why).
const UNANSWERED_KEPT: usize = 8;

impl RegionHeard {
    /// A Region asked in a reading that began at `at_ms`.
    pub fn asked_at(at_ms: i64) -> Self {
        RegionHeard {
            readings: 1,
            first_reading_ms: at_ms,
            last_reading_ms: at_ms,
            ..RegionHeard::default()
        }
    }

    /// Whether it answered anything, in any reading.
    pub fn answers(&self) -> bool {
        !self.answered.is_empty()
    }

    /// Records one call's outcome.
    pub fn heard(&mut self, operation: &str, answered: bool, why: impl FnOnce() -> String) {
        if answered {
            self.answered.insert(operation.to_string());
        } else if self.unanswered.len() < UNANSWERED_KEPT {
            self.unanswered.push(format!("{operation}: {}", why()));
        }
    }

    /// This reading after `earlier` ones.
    pub fn after(mut self, earlier: &RegionHeard) -> Self {
        self.answered.extend(earlier.answered.iter().cloned());
        let mut unanswered = earlier.unanswered.clone();
        unanswered.extend(self.unanswered);
        unanswered.truncate(UNANSWERED_KEPT);
        self.unanswered = unanswered;
        self.readings += earlier.readings;
        self.first_reading_ms = self.first_reading_ms.min(earlier.first_reading_ms);
        self.last_reading_ms = self.last_reading_ms.max(earlier.last_reading_ms);
        self
    }
}

/// What Route 53's checkers report now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub checkers: usize,
    pub failing: usize,
}

impl Health {
    /// At least `share` of the checkers, and at least two, report failure.
    pub fn confirms_failure(&self, share: f64) -> bool {
        let needed = ((share * self.checkers as f64).ceil() as usize).max(MIN_FAILING_CHECKERS);
        self.checkers > 0 && self.failing >= needed
    }
}

/// One DB instance of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub identifier: String,
    pub is_writer: bool,
    pub status: String,
    pub promotion_tier: i32,
    pub availability_zone: Option<String>,
}

/// An Aurora cluster in one Region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub identifier: String,
    pub arn: String,
    pub status: String,
    pub engine_version: String,
    pub endpoint: Option<String>,
    /// Set while the cluster replicates from another (a read replica cluster).
    pub replication_source: Option<String>,
    pub instances: Vec<InstanceView>,
}

impl ClusterView {
    pub fn writer(&self) -> Option<&InstanceView> {
        self.instances.iter().find(|i| i.is_writer)
    }
}

/// Replication lag as CloudWatch last reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lag {
    pub metric: String,
    pub seconds: f64,
}

/// One member of a global cluster, with what its own Region says of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    pub arn: String,
    pub identifier: String,
    pub region: String,
    pub is_writer: bool,
    pub synchronization_status: Option<String>,
    /// Whether its Region answered DescribeDBClusters.
    pub answered: bool,
    /// From its Region, when it answered.
    pub cluster: Option<ClusterView>,
    pub lag: Option<Lag>,
    /// Why the lag could not be read (CloudWatch failed), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_error: Option<String>,
}

impl MemberView {
    /// A member as DescribeGlobalClusters lists it (its Region and identifier from its ARN),
    /// before its own Region is asked about it.
    pub fn listed(arn: String, is_writer: bool, synchronization_status: Option<String>) -> Self {
        let region = crate::arn::arn_region(&arn).unwrap_or_default().to_string();
        let identifier = crate::arn::arn_name(&arn).to_string();
        MemberView {
            arn,
            identifier,
            region,
            is_writer,
            synchronization_status,
            answered: false,
            cluster: None,
            lag: None,
            lag_error: None,
        }
    }
}

/// A global cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalView {
    pub identifier: String,
    pub engine_version: Option<String>,
    /// `FailoverState.Status`, matched as a string: the SDK's enum lacks `switching-over`.
    pub failover_status: Option<String>,
    pub members: Vec<MemberView>,
    /// What each Region asked answered, over every reading (Region → what it answered).
    #[serde(default)]
    pub heard: BTreeMap<String, RegionHeard>,
}

impl GlobalView {
    /// This reading after `earlier` ones: the clusters as now read, what each Region answered
    /// over all of them.
    pub fn after(mut self, earlier: &GlobalView) -> Self {
        for (region, before) in &earlier.heard {
            let now = self.heard.remove(region).unwrap_or_else(|| RegionHeard {
                readings: 0,
                first_reading_ms: before.first_reading_ms,
                last_reading_ms: before.last_reading_ms,
                ..RegionHeard::default()
            });
            self.heard.insert(region.clone(), now.after(before));
        }
        self
    }
}

/// The clusters as observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Topology {
    Cluster(ClusterView),
    Global(GlobalView),
    ReadReplica(ClusterView),
    /// The cluster does not exist (or not in the Region named).
    Missing {
        what: String,
    },
}

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

/// The call a promotion makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation")]
pub enum Call {
    FailoverDBCluster {
        region: String,
        cluster: String,
        target_instance: String,
    },
    /// Sent to the primary's Region.
    SwitchoverGlobalCluster {
        region: String,
        global_cluster: String,
        target_cluster_arn: String,
    },
    /// Sent to the target's Region, with `AllowDataLoss`.
    FailoverGlobalCluster {
        region: String,
        global_cluster: String,
        target_cluster_arn: String,
    },
    PromoteReadReplicaDBCluster {
        region: String,
        cluster: String,
    },
}

impl Call {
    pub fn operation(&self) -> &'static str {
        match self {
            Call::FailoverDBCluster { .. } => "FailoverDBCluster",
            Call::SwitchoverGlobalCluster { .. } => "SwitchoverGlobalCluster",
            Call::FailoverGlobalCluster { .. } => "FailoverGlobalCluster",
            Call::PromoteReadReplicaDBCluster { .. } => "PromoteReadReplicaDBCluster",
        }
    }

    /// The Region the call goes to.
    pub fn region(&self) -> &str {
        match self {
            Call::FailoverDBCluster { region, .. }
            | Call::SwitchoverGlobalCluster { region, .. }
            | Call::FailoverGlobalCluster { region, .. }
            | Call::PromoteReadReplicaDBCluster { region, .. } => region,
        }
    }
}

/// One promotion to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    pub target: String,
    pub call: Call,
    /// The writer now (instance or cluster), and what will be the writer.
    pub from: String,
    pub to: String,
    /// The Region of the new writer, and the cluster whose endpoint the record gets.
    pub to_region: String,
    pub to_cluster: String,
    /// The lag read for the chosen secondary, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<Lag>,
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordSpec>,
}

impl Promotion {
    /// The promotion a breaker's details record: the intent itself while it is in flight, or
    /// under `promotion` once it completed.
    pub fn recorded(details: &serde_json::Value) -> Option<Promotion> {
        let promotion = details.get("promotion").unwrap_or(details);
        serde_json::from_value(promotion.clone()).ok()
    }
}

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
        (Kind::Cluster(spec), Topology::Cluster(c)) => cluster(spec, c, alarm_ms, observed, name),
        (Kind::Global(spec), Topology::Global(g)) => global(spec, g, name, silence_window_ms),
        (Kind::ReadReplica(spec), Topology::ReadReplica(c)) => replica(&spec.region, c, name),
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

fn usable(i: &InstanceView) -> bool {
    i.status == "available"
}

/// In-Region: the best reader, when the cluster is not already failing over.
fn cluster(
    spec: &ClusterSpec,
    c: &ClusterView,
    alarm_ms: i64,
    observed: &Observed,
    name: &str,
) -> Plan<Promotion> {
    let skip = |reason: &str, detail: String| Plan::skip(Skip::new(name, reason, detail));
    if c.status == "failing-over" {
        return skip(
            "promotion_in_progress",
            format!("cluster {} is failing over already", c.identifier),
        );
    }
    if let Some(moved) = observed.moved_at_ms
        && moved >= alarm_ms
    {
        return skip(
            "already_moved",
            format!(
                "Aurora completed a failover of {} at {moved} ms, after the alarm ({alarm_ms} ms)",
                c.identifier
            ),
        );
    }
    let Some(writer) = c.writer() else {
        return skip(
            "no_writer",
            format!("cluster {} reports no writer instance", c.identifier),
        );
    };
    let mut readers: Vec<&InstanceView> = c
        .instances
        .iter()
        .filter(|i| !i.is_writer && usable(i))
        .collect();
    readers.sort_by(|a, b| reader_order(spec, writer, a, b));
    let Some(best) = readers.first() else {
        return skip(
            "no_candidate",
            format!(
                "cluster {} has no available reader to fail over to",
                c.identifier
            ),
        );
    };
    Plan::act(Promotion {
        target: name.to_string(),
        call: Call::FailoverDBCluster {
            region: spec.region.clone(),
            cluster: c.identifier.clone(),
            target_instance: best.identifier.clone(),
        },
        from: writer.identifier.clone(),
        to: best.identifier.clone(),
        to_region: spec.region.clone(),
        to_cluster: c.identifier.clone(),
        lag: None,
        why: format!(
            "writer {} ({}) fails its health check; reader {} is tier {}{}",
            writer.identifier,
            writer.status,
            best.identifier,
            best.promotion_tier,
            best.availability_zone
                .as_deref()
                .map(|z| format!(" in {z}"))
                .unwrap_or_default()
        ),
        record: None,
    })
}

/// Configured priority, then promotion tier, then zone preference, then name (deterministic).
fn reader_order(
    spec: &ClusterSpec,
    writer: &InstanceView,
    a: &InstanceView,
    b: &InstanceView,
) -> Ordering {
    let priority = |i: &InstanceView| {
        spec.reader_priority
            .iter()
            .position(|p| p == &i.identifier)
            .unwrap_or(usize::MAX)
    };
    let zone = |i: &InstanceView| -> usize {
        let z = i.availability_zone.as_deref();
        if spec.preferred_availability_zones.is_empty() {
            // Out of the failed writer's zone first.
            usize::from(z.is_some() && z == writer.availability_zone.as_deref())
        } else {
            z.and_then(|z| {
                spec.preferred_availability_zones
                    .iter()
                    .position(|p| p == z)
            })
            .unwrap_or(usize::MAX)
        }
    };
    priority(a)
        .cmp(&priority(b))
        .then(a.promotion_tier.cmp(&b.promotion_tier))
        .then(zone(a).cmp(&zone(b)))
        .then(a.identifier.cmp(&b.identifier))
}

/// Global: switch over while the primary's Region answers; fail over with data loss only when
/// allowed, the primary's Region does not answer, and the lag is known and under the ceiling.
fn global(
    spec: &GlobalSpec,
    g: &GlobalView,
    name: &str,
    silence_window_ms: i64,
) -> Plan<Promotion> {
    let skip = |reason: &str, detail: String| Plan::skip(Skip::new(name, reason, detail));
    if let Some(status) = g.failover_status.as_deref().filter(|s| !s.is_empty()) {
        return skip(
            "promotion_in_progress",
            format!(
                "global cluster {} has a switchover or failover {status}",
                g.identifier
            ),
        );
    }
    let writers: Vec<&MemberView> = g.members.iter().filter(|m| m.is_writer).collect();
    let [primary] = writers.as_slice() else {
        return skip(
            "no_writer",
            format!(
                "global cluster {} reports {} writers",
                g.identifier,
                writers.len()
            ),
        );
    };
    if !spec.regions.contains(&primary.region) {
        return skip(
            "primary_region_not_configured",
            format!(
                "the primary {} is in {}, which the target's regions do not name: whether it answers is unknown",
                primary.identifier, primary.region
            ),
        );
    }
    let primary_version = primary
        .cluster
        .as_ref()
        .map(|c| c.engine_version.clone())
        .or_else(|| g.engine_version.clone());
    let mut rejected = Vec::new();
    // A rejection that may pass (a Region that did not answer, a cluster not available yet, a
    // resynchronisation): no candidate now is then not final.
    let mut passing = false;
    let mut candidates: Vec<(usize, &MemberView)> = Vec::new();
    for m in g.members.iter().filter(|m| !m.is_writer) {
        let Some(order) = spec.regions.iter().position(|r| r == &m.region) else {
            rejected.push(format!(
                "{}: Region {} is not configured",
                m.identifier, m.region
            ));
            continue;
        };
        if let Some(listed) = spec.clusters.get(&m.region)
            && !listed.eq_ignore_ascii_case(&m.identifier)
        {
            rejected.push(format!(
                "{}: the configuration names {listed} in {}",
                m.identifier, m.region
            ));
            continue;
        }
        let Some(c) = &m.cluster else {
            passing |= !m.answered;
            rejected.push(if m.answered {
                format!("{}: its Region does not know it", m.identifier)
            } else {
                format!("{}: its Region did not answer", m.identifier)
            });
            continue;
        };
        if c.status != "available" {
            passing = true;
            rejected.push(format!("{}: status {}", m.identifier, c.status));
            continue;
        }
        if let Some(s) = m.synchronization_status.as_deref()
            && s != "connected"
        {
            passing = true;
            rejected.push(format!("{}: synchronization {s}", m.identifier));
            continue;
        }
        if let Some(v) = &primary_version
            && v != &c.engine_version
        {
            rejected.push(format!(
                "{}: engine version {} differs from the primary's {v}",
                m.identifier, c.engine_version
            ));
            continue;
        }
        candidates.push((order, m));
    }
    // Configured Region order, then least lag (unknown last).
    candidates.sort_by(|(oa, a), (ob, b)| {
        oa.cmp(ob).then(
            lag_seconds(a)
                .partial_cmp(&lag_seconds(b))
                .unwrap_or(Ordering::Equal),
        )
    });
    let Some((_, chosen)) = candidates.first() else {
        return skip(
            if passing {
                "no_candidate_yet"
            } else {
                "no_candidate"
            },
            format!(
                "no secondary of {} can take over: {}",
                g.identifier,
                if rejected.is_empty() {
                    "it has none".to_string()
                } else {
                    rejected.join("; ")
                }
            ),
        );
    };
    let promotion = |call, why: String| Promotion {
        target: name.to_string(),
        call,
        from: primary.identifier.clone(),
        to: chosen.identifier.clone(),
        to_region: chosen.region.clone(),
        to_cluster: chosen.identifier.clone(),
        lag: chosen.lag.clone(),
        why,
        record: None,
    };
    // Only a primary whose Region answered nothing at all may be failed over: a Region that
    // answered any call (a result, a refusal, throttling), in any reading, is up, however busy
    // or broken, and only a switchover, which loses no data, may then promote.
    let heard = g.heard.get(&primary.region);
    if primary.answered || heard.is_some_and(RegionHeard::answers) {
        if !primary.answered {
            return skip(
                "primary_unreadable",
                format!(
                    "{} answers ({}) but the primary {} could not be read: a switchover needs it available, and a failover is only for a Region that answers nothing",
                    primary.region,
                    heard
                        .map(|h| h.answered.iter().cloned().collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                    primary.identifier
                ),
            );
        }
        let Some(c) = &primary.cluster else {
            return skip(
                "primary_missing",
                format!(
                    "{} answers but does not know the primary {}",
                    primary.region, primary.identifier
                ),
            );
        };
        if c.status != "available" {
            return skip(
                "primary_not_available",
                format!(
                    "the primary {} answers with status {}: a switchover needs it available, and a failover is only for a primary that does not answer",
                    primary.identifier, c.status
                ),
            );
        }
        return Plan::act(promotion(
            Call::SwitchoverGlobalCluster {
                region: primary.region.clone(),
                global_cluster: g.identifier.clone(),
                target_cluster_arn: chosen.arn.clone(),
            },
            format!(
                "the health check fails while {}'s Region ({}) answers: a switchover, which loses no data, to {} in {}",
                primary.identifier, primary.region, chosen.identifier, chosen.region
            ),
        ));
    }
    if !spec.allow_data_loss {
        return skip(
            "data_loss_not_allowed",
            format!(
                "the primary {} in {} does not answer, so only a failover could promote {}, and it may lose writes; this target does not allow data loss",
                primary.identifier, primary.region, chosen.identifier
            ),
        );
    }
    let ceiling = spec.rpo_ceiling_seconds.unwrap_or(0.0);
    match &chosen.lag {
        None if chosen.lag_error.is_some() => skip(
            "lag_unreadable",
            format!(
                "the replication lag of {} could not be read ({}): the data a failover would lose is unknown",
                chosen.identifier,
                chosen.lag_error.as_deref().unwrap_or_default()
            ),
        ),
        None => skip(
            "lag_unknown",
            format!(
                "no recent AuroraGlobalDBRPOLag or AuroraGlobalDBReplicationLag for {}: the data a failover would lose is unknown",
                chosen.identifier
            ),
        ),
        Some(lag) if lag.seconds > ceiling => skip(
            "lag_above_rpo",
            format!(
                "{} lags {:.3} s ({}), more than the {ceiling} s ceiling",
                chosen.identifier, lag.seconds, lag.metric
            ),
        ),
        Some(_) if !silence_confirmed(heard, silence_window_ms) => skip(
            PRIMARY_SILENCE_UNCONFIRMED,
            format!(
                "{} has answered nothing ({}), but for {} s in {} reading(s): a failover needs {} s of silence in two readings",
                primary.region,
                heard.map(|h| h.unanswered.join("; ")).unwrap_or_default(),
                heard.map_or(0, |h| h.last_reading_ms - h.first_reading_ms) / 1000,
                heard.map_or(0, |h| h.readings),
                silence_window_ms / 1000
            ),
        ),
        Some(lag) => Plan::act(promotion(
            Call::FailoverGlobalCluster {
                region: chosen.region.clone(),
                global_cluster: g.identifier.clone(),
                target_cluster_arn: chosen.arn.clone(),
            },
            format!(
                "the primary {} in {} does not answer; {} lags {:.3} s ({}), within the {ceiling} s ceiling: a failover allowing data loss",
                primary.identifier, primary.region, chosen.identifier, lag.seconds, lag.metric
            ),
        )),
    }
}

/// Whether a Region that answered nothing did so in at least two readings at least the window
/// apart.
fn silence_confirmed(heard: Option<&RegionHeard>, window_ms: i64) -> bool {
    heard.is_some_and(|h| {
        !h.answers() && h.readings >= 2 && h.last_reading_ms - h.first_reading_ms >= window_ms
    })
}

fn lag_seconds(m: &MemberView) -> f64 {
    m.lag.as_ref().map_or(f64::INFINITY, |l| l.seconds)
}

/// A read replica cluster: promoted while it still replicates.
fn replica(region: &str, c: &ClusterView, name: &str) -> Plan<Promotion> {
    let skip = |reason: &str, detail: String| Plan::skip(Skip::new(name, reason, detail));
    let Some(source) = &c.replication_source else {
        return skip(
            "already_promoted",
            format!("{} no longer replicates from another cluster", c.identifier),
        );
    };
    if c.status != "available" {
        return skip("not_available", format!("{} is {}", c.identifier, c.status));
    }
    Plan::act(Promotion {
        target: name.to_string(),
        call: Call::PromoteReadReplicaDBCluster {
            region: region.to_string(),
            cluster: c.identifier.clone(),
        },
        from: source.clone(),
        to: c.identifier.clone(),
        to_region: region.to_string(),
        to_cluster: c.identifier.clone(),
        lag: None,
        why: format!(
            "the health check fails; {} is promoted from a replica of {source} to a standalone cluster",
            c.identifier
        ),
        record: None,
    })
}

/// Whether `topology` shows no sign of `p`: the old writer still writes and nothing is in
/// progress. Only then may a promotion whose call may have taken effect be made again.
pub fn untouched(p: &Promotion, topology: &Topology) -> bool {
    match (&p.call, topology) {
        (Call::FailoverDBCluster { .. }, Topology::Cluster(c)) => {
            c.status == "available" && c.writer().is_some_and(|w| w.identifier == p.from)
        }
        (
            Call::SwitchoverGlobalCluster { .. } | Call::FailoverGlobalCluster { .. },
            Topology::Global(g),
        ) => {
            g.failover_status.as_deref().is_none_or(str::is_empty)
                && g.members
                    .iter()
                    .any(|m| m.is_writer && m.identifier.eq_ignore_ascii_case(&p.from))
        }
        (Call::PromoteReadReplicaDBCluster { .. }, Topology::ReadReplica(c)) => {
            c.replication_source.is_some() && c.status == "available"
        }
        _ => false,
    }
}

/// Whether the promotion has taken effect in `topology` (the new writer is the writer).
pub fn completed(p: &Promotion, topology: &Topology) -> bool {
    match (&p.call, topology) {
        (Call::FailoverDBCluster { .. }, Topology::Cluster(c)) => {
            c.writer().is_some_and(|w| w.identifier == p.to)
        }
        (
            Call::SwitchoverGlobalCluster { .. } | Call::FailoverGlobalCluster { .. },
            Topology::Global(g),
        ) => {
            g.members
                .iter()
                .any(|m| m.is_writer && m.identifier == p.to)
                && g.failover_status.as_deref().is_none_or(str::is_empty)
        }
        (Call::PromoteReadReplicaDBCluster { .. }, Topology::ReadReplica(c)) => {
            c.replication_source.is_none() && c.status == "available"
        }
        _ => false,
    }
}

/// The new writer's endpoint for the record.
pub fn writer_endpoint(p: &Promotion, topology: &Topology) -> Option<String> {
    match topology {
        Topology::Cluster(c) | Topology::ReadReplica(c) => c.endpoint.clone(),
        Topology::Global(g) => g
            .members
            .iter()
            .find(|m| m.identifier == p.to_cluster)
            .and_then(|m| m.cluster.as_ref())
            .and_then(|c| c.endpoint.clone()),
        Topology::Missing { .. } => None,
    }
}
