//! RDS events from EventBridge (`source: aws.rds`, `RDS DB Cluster Event` / `RDS DB Instance
//! Event`), classified into the promotion phases a function keeps its bookkeeping by.
//!
//! RDS sends these on a best-effort basis: they may be missing, repeated or out of order, so a
//! function treats one as a hint to re-read the state (DescribeGlobalClusters, DescribeDBClusters),
//! never as the truth.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventError, from_value};
use crate::time::parse_aws_timestamp;

pub const RDS_SOURCE: &str = "aws.rds";
pub const RDS_CLUSTER_EVENT: &str = "RDS DB Cluster Event";
pub const RDS_INSTANCE_EVENT: &str = "RDS DB Instance Event";

/// Which promotion an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Promotion {
    /// An in-Region cluster failover (FailoverDBCluster, or Aurora's own).
    Failover,
    GlobalSwitchover,
    GlobalFailover,
    /// A read replica cluster promoted to a standalone cluster.
    ReplicaPromotion,
}

/// Where the promotion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Started,
    /// A step on the way (the old primary shut down, waiting for synchronisation, ...).
    Progress,
    Completed,
    Failed,
    Cancelled,
}

/// An RDS event, with the envelope fields a function needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdsEvent {
    pub detail_type: String,
    /// `RDS-EVENT-0071`; empty when RDS did not say.
    pub event_id: String,
    pub source_identifier: String,
    pub source_arn: String,
    pub source_type: String,
    pub categories: Vec<String>,
    pub message: String,
    pub region: String,
    /// When RDS says it happened (`detail.Date`, else the envelope's `time`), epoch milliseconds.
    pub time_ms: i64,
    /// What promotion phase it reports, if any.
    pub promotion: Option<(Promotion, Phase)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    #[serde(default, rename = "EventID")]
    event_id: String,
    source_identifier: String,
    #[serde(default)]
    source_arn: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    event_categories: Vec<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    date: Option<String>,
}

/// The documented event ids of promotions (Aurora User Guide, "DB cluster events").
fn by_event_id(id: &str) -> Option<(Promotion, Phase)> {
    use Phase::*;
    use Promotion::*;
    Some(match id {
        "RDS-EVENT-0069" => (Failover, Failed),
        // "Promoting previous primary again": the failover did not hold.
        "RDS-EVENT-0070" => (Failover, Failed),
        "RDS-EVENT-0071" => (Failover, Completed),
        "RDS-EVENT-0072" | "RDS-EVENT-0073" => (Failover, Started),
        "RDS-EVENT-0181" => (GlobalSwitchover, Started),
        "RDS-EVENT-0182" | "RDS-EVENT-0183" | "RDS-EVENT-0184" => (GlobalSwitchover, Progress),
        "RDS-EVENT-0185" => (GlobalSwitchover, Completed),
        "RDS-EVENT-0186" => (GlobalSwitchover, Cancelled),
        "RDS-EVENT-0187" => (GlobalSwitchover, Failed),
        "RDS-EVENT-0238" => (GlobalFailover, Started),
        "RDS-EVENT-0239" => (GlobalFailover, Completed),
        _ => return None,
    })
}

/// Events whose id is not in the table above (RDS adds ids; 0240 and 0241 are worded per
/// engine) are classified by their message, so a new id still moves the bookkeeping.
fn by_message(message: &str) -> Option<(Promotion, Phase)> {
    let m = message.to_ascii_lowercase();
    let promotion = if m.contains("global switchover") {
        Promotion::GlobalSwitchover
    } else if m.contains("global failover") {
        Promotion::GlobalFailover
    } else if m.contains("failover") {
        Promotion::Failover
    } else if m.contains("promot") && m.contains("replica") {
        Promotion::ReplicaPromotion
    } else {
        return None;
    };
    let phase = if m.contains("cancel") {
        Phase::Cancelled
    } else if m.contains("fail") && (m.contains(" failed") || m.contains("unsuccessful")) {
        Phase::Failed
    } else if m.contains("complete") || m.contains("finished") || m.contains("successfully") {
        Phase::Completed
    } else if m.contains("start") || m.contains("initiat") {
        Phase::Started
    } else {
        Phase::Progress
    };
    Some((promotion, phase))
}

/// Parses an RDS event from EventBridge; another source or detail-type is an error.
pub fn parse_rds_event(payload: &Value) -> Result<RdsEvent, EventError> {
    let event: EventBridgeEvent<Value> = from_value(payload)?;
    if event.source != RDS_SOURCE {
        return Err(EventError::new(
            "source",
            format!("expected {RDS_SOURCE:?}, got {:?}", event.source),
        ));
    }
    if event.detail_type != RDS_CLUSTER_EVENT && event.detail_type != RDS_INSTANCE_EVENT {
        return Err(EventError::new(
            "detail-type",
            format!(
                "expected {RDS_CLUSTER_EVENT:?} or {RDS_INSTANCE_EVENT:?}, got {:?}",
                event.detail_type
            ),
        ));
    }
    let detail: Detail = from_value(&event.detail).map_err(|e| e.nested_in("detail"))?;
    let region = event
        .region
        .ok_or_else(|| EventError::new("region", "missing required field"))?;
    let time_ms = match &detail.date {
        Some(d) => parse_aws_timestamp(d)
            .ok_or_else(|| EventError::new("detail.Date", format!("invalid timestamp {d:?}")))?
            .timestamp_millis(),
        None => event
            .time
            .ok_or_else(|| EventError::new("time", "missing required field"))?
            .timestamp_millis(),
    };
    let promotion = by_event_id(&detail.event_id).or_else(|| by_message(&detail.message));
    Ok(RdsEvent {
        detail_type: event.detail_type,
        event_id: detail.event_id,
        source_identifier: detail.source_identifier,
        source_arn: detail.source_arn,
        source_type: detail.source_type,
        categories: detail.event_categories,
        message: detail.message,
        region,
        time_ms,
        promotion,
    })
}

/// Whether a payload is an RDS event (by its `source`), so a function that takes several kinds
/// of event knows which parser names the problems of a bad one.
pub fn is_rds_event(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some(RDS_SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_are_classified_by_their_message() {
        assert_eq!(
            by_message(
                "Global failover to DB cluster orders-west in Region us-west-2 was cancelled."
            ),
            Some((Promotion::GlobalFailover, Phase::Cancelled))
        );
        assert_eq!(
            by_message("Global failover to DB cluster orders-west in Region us-west-2 failed."),
            Some((Promotion::GlobalFailover, Phase::Failed))
        );
        assert_eq!(
            by_message(
                "Promoted Read Replica cluster to a stand-alone database cluster successfully"
            ),
            Some((Promotion::ReplicaPromotion, Phase::Completed))
        );
        assert_eq!(by_message("Backup completed"), None);
    }

    #[test]
    fn the_table_wins_over_the_message() {
        assert_eq!(
            by_event_id("RDS-EVENT-0185"),
            Some((Promotion::GlobalSwitchover, Phase::Completed))
        );
        assert_eq!(by_event_id("RDS-EVENT-0001"), None);
    }
}
