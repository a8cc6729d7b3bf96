//! A promotion decided on (the call it makes, from and to what), and whether the clusters show it
//! made or untouched.

use serde::{Deserialize, Serialize};

use super::observed::{Lag, Topology};
use crate::targets::RecordSpec;

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
