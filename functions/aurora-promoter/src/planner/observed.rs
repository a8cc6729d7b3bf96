//! What a decision is made on: Route 53's checkers, the clusters as each one's own Region
//! reports them, what each Region answered, and the breaker.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::targets::MIN_FAILING_CHECKERS;

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
