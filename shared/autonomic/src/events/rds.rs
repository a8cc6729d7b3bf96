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

/// One RDS event the Aurora User Guide documents ("Amazon RDS event categories and event messages
/// for Aurora", DB cluster events): its ID, its message as documented (`{}` where the guide names
/// a value: a cluster, a Region, a lag), and what it says of a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentedEvent {
    pub id: &'static str,
    pub message: &'static str,
    pub class: Option<(Promotion, Phase)>,
}

const fn row(
    id: &'static str,
    message: &'static str,
    class: Option<(Promotion, Phase)>,
) -> DocumentedEvent {
    DocumentedEvent { id, message, class }
}

use Phase::{Cancelled, Completed, Failed, Progress, Started};
use Promotion::{Failover, GlobalFailover, GlobalSwitchover};

/// Every RDS event ID this project reads, with the message the Aurora User Guide documents for it
/// (categories `failover` and `global failover`). `shared/autonomic/tests/rds_event_table.rs`
/// compares it with a copy of the guide's rows.
pub const DOCUMENTED_EVENTS: &[DocumentedEvent] = &[
    row(
        "RDS-EVENT-0069",
        "Cluster failover failed, check the health of your cluster instances and try again.",
        Some((Failover, Failed)),
    ),
    // The failover did not hold: the previous primary is promoted back.
    row(
        "RDS-EVENT-0070",
        "Promoting previous primary again: {}.",
        Some((Failover, Failed)),
    ),
    row(
        "RDS-EVENT-0071",
        "Completed failover to DB instance: {}.",
        Some((Failover, Completed)),
    ),
    row(
        "RDS-EVENT-0072",
        "Started same AZ failover to DB instance: {}.",
        Some((Failover, Started)),
    ),
    row(
        "RDS-EVENT-0073",
        "Started cross AZ failover to DB instance: {}.",
        Some((Failover, Started)),
    ),
    row(
        "RDS-EVENT-0181",
        "Global switchover to DB cluster {} in Region {} started.",
        Some((GlobalSwitchover, Started)),
    ),
    row(
        "RDS-EVENT-0182",
        "Old primary DB cluster {} in Region {} successfully shut down.",
        Some((GlobalSwitchover, Progress)),
    ),
    row(
        "RDS-EVENT-0183",
        "Waiting for data synchronization across global cluster members. Current lags behind primary DB cluster: {}.",
        Some((GlobalSwitchover, Progress)),
    ),
    row(
        "RDS-EVENT-0184",
        "New primary DB cluster {} in Region {} was successfully promoted.",
        Some((GlobalSwitchover, Progress)),
    ),
    row(
        "RDS-EVENT-0185",
        "Global switchover to DB cluster {} in Region {} finished.",
        Some((GlobalSwitchover, Completed)),
    ),
    row(
        "RDS-EVENT-0186",
        "Global switchover to DB cluster {} in Region {} is cancelled.",
        Some((GlobalSwitchover, Cancelled)),
    ),
    row(
        "RDS-EVENT-0187",
        "Global switchover to DB cluster {} in Region {} failed.",
        Some((GlobalSwitchover, Failed)),
    ),
    row(
        "RDS-EVENT-0238",
        "Global failover to DB cluster {} in Region {} completed.",
        Some((GlobalFailover, Completed)),
    ),
    row(
        "RDS-EVENT-0239",
        "Global failover to DB cluster {} in Region {} failed.",
        Some((GlobalFailover, Failed)),
    ),
    // After the failover completed: the bookkeeping waits for 0238 (or the clusters).
    row(
        "RDS-EVENT-0240",
        "Started resynchronizing members of DB cluster {} in Region {} after global failover.",
        Some((GlobalFailover, Progress)),
    ),
    row(
        "RDS-EVENT-0241",
        "Finished resynchronizing members of DB cluster {} in Region {} after global failover.",
        Some((GlobalFailover, Progress)),
    ),
    // Either a switchover or a failover: it says nothing of which, so it moves nothing.
    row(
        "RDS-EVENT-0397",
        "Aurora finished changing the DNS name that the global writer endpoint resolves to.",
        None,
    ),
    row(
        "RDS-EVENT-0423",
        "Waiting for data synchronization with the target DB cluster. Current target DB cluster lag behind the primary DB cluster: {}.",
        Some((GlobalSwitchover, Progress)),
    ),
    row(
        "RDS-EVENT-0519",
        "Global database failover to DB cluster {} in global database {} completed. The DB cluster has no instances. Create a DB instance to access your data.",
        Some((GlobalFailover, Completed)),
    ),
];

/// `text` without surrounding space and a final full stop, in ASCII lower case: the guide and
/// the events differ in these only.
fn normalised(text: &str) -> String {
    text.trim()
        .trim_end_matches('.')
        .trim_end()
        .to_ascii_lowercase()
}

/// Whether `message` is `template` with each `{}` standing for a non-empty value.
fn matches_template(template: &str, message: &str) -> bool {
    let template = normalised(template);
    let message = normalised(message);
    let mut pieces = template.split("{}");
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = message.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        // A value is at least one character, and the text after it is the piece.
        let value_start = rest.chars().next().map_or(0, char::len_utf8);
        match rest[value_start..].find(piece) {
            Some(at) if value_start > 0 => rest = &rest[value_start + at + piece.len()..],
            _ => return false,
        }
    }
    rest.len() > last.len() && rest.ends_with(last)
}

/// The documented event whose message `message` is, if any.
fn by_message(message: &str) -> Option<&'static DocumentedEvent> {
    DOCUMENTED_EVENTS
        .iter()
        .find(|d| matches_template(d.message, message))
}

/// An undocumented message, read by its wording: which promotion its opening names, and the phase
/// its last word gives (the documented messages end in their verb, after every name, so a
/// cluster called `failed-orders` does not make a failure).
fn by_wording(message: &str) -> Option<(Promotion, Phase)> {
    let m = normalised(message);
    let promotion = if m.contains("global switchover") {
        GlobalSwitchover
    } else if m.contains("global failover") || m.contains("global database failover") {
        GlobalFailover
    } else if m.contains("failover") {
        Failover
    } else if m.contains("promot") && m.contains("replica") {
        Promotion::ReplicaPromotion
    } else {
        return None;
    };
    let last = m.rsplit(' ').next().unwrap_or_default();
    let first = m.split(' ').next().unwrap_or_default();
    let phase = match (first, last) {
        (_, "failed" | "unsuccessful") => Failed,
        (_, "cancelled" | "canceled") => Cancelled,
        (_, "completed" | "complete" | "finished" | "successfully")
        | ("completed" | "finished", _) => Completed,
        (_, "started" | "initiated") | ("started" | "initiated", _) => Started,
        _ => Progress,
    };
    Some((promotion, phase))
}

/// What an event reports of a promotion, and, when its ID and its message disagree, why the
/// message was taken (to be logged).
///
/// The message decides where it is a documented one: RDS has sent IDs that do not match the
/// guide's message, and reading a "failed" as a completion would leave a failed promotion marked
/// done. A documented ID with an undocumented message keeps the ID's class unless the wording
/// says otherwise; neither documented, the wording decides (RDS adds IDs).
pub fn classify(event_id: &str, message: &str) -> (Option<(Promotion, Phase)>, Option<String>) {
    let by_id = DOCUMENTED_EVENTS.iter().find(|d| d.id == event_id);
    if let Some(documented) = by_message(message) {
        let note = by_id.filter(|d| d.class != documented.class).map(|d| {
            format!(
                "{event_id} is documented as {:?}, but its message is {}'s ({:?}): read by the message",
                d.class, documented.id, documented.class
            )
        });
        return (documented.class, note);
    }
    let wording = by_wording(message);
    match by_id {
        Some(d) => match wording {
            Some(w) if d.class.is_some_and(|c| c.1 != w.1) && w.1 != Progress => (
                Some(w),
                Some(format!(
                    "{event_id} is documented as {:?}, but its message reads {w:?}: read by the message",
                    d.class
                )),
            ),
            _ => (d.class, None),
        },
        None => (wording, None),
    }
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
    let (promotion, disagreement) = classify(&detail.event_id, &detail.message);
    if let Some(why) = disagreement {
        tracing::warn!(event = %detail.event_id, source = %detail.source_identifier, message = %detail.message, "{why}");
    }
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

    /// Each documented message with values filled in, as RDS sends it.
    fn filled(template: &str) -> String {
        let mut values = ["orders-west", "us-west-2", "1250ms"].iter().cycle();
        template
            .split("{}")
            .enumerate()
            .map(|(i, piece)| {
                if i == 0 {
                    piece.to_string()
                } else {
                    format!("{}{piece}", values.next().copied().unwrap_or_default())
                }
            })
            .collect()
    }

    #[test]
    fn every_documented_message_is_classified_as_its_id_is() {
        for d in DOCUMENTED_EVENTS {
            let message = filled(d.message);
            assert_eq!(
                classify(d.id, &message),
                (d.class, None),
                "{}: {message}",
                d.id
            );
            // Without the ID (or with one RDS has not documented), the message alone.
            assert_eq!(classify("", &message).0, d.class, "{}: {message}", d.id);
            assert_eq!(classify("RDS-EVENT-9999", &message).0, d.class, "{}", d.id);
            // Without its full stop, or in other case.
            assert_eq!(
                classify(d.id, message.trim_end_matches('.')).0,
                d.class,
                "{}",
                d.id
            );
            assert_eq!(
                classify(d.id, &message.to_uppercase()).0,
                d.class,
                "{}",
                d.id
            );
        }
    }

    #[test]
    fn the_message_decides_when_the_id_disagrees() {
        // The defect this table replaced: 0238 read as started, 0239 as completed.
        let failed = "Global failover to DB cluster orders-west in Region us-west-2 failed.";
        let (class, note) = classify("RDS-EVENT-0238", failed);
        assert_eq!(class, Some((GlobalFailover, Failed)));
        assert!(note.is_some_and(|n| n.contains("RDS-EVENT-0239")));
        let completed = "Global failover to DB cluster orders-west in Region us-west-2 completed.";
        assert_eq!(
            classify("RDS-EVENT-0239", completed).0,
            Some((GlobalFailover, Completed))
        );
        // An undocumented wording of a documented ID: a failure is never read as a completion.
        let (class, note) = classify(
            "RDS-EVENT-0238",
            "Global failover of orders to orders-west was unsuccessful.",
        );
        assert_eq!(class, Some((GlobalFailover, Failed)));
        assert!(note.is_some());
    }

    #[test]
    fn names_in_a_message_do_not_change_its_class() {
        let m = "Global failover to DB cluster failed-orders in Region us-west-2 completed.";
        assert_eq!(classify("", m).0, Some((GlobalFailover, Completed)));
        let m = "Global switchover to DB cluster started-completed in Region us-west-2 failed.";
        assert_eq!(classify("", m).0, Some((GlobalSwitchover, Failed)));
    }

    #[test]
    fn undocumented_ids_are_read_by_their_wording() {
        assert_eq!(
            classify(
                "RDS-EVENT-0999",
                "Global failover to DB cluster orders-west in Region us-west-2 was cancelled."
            )
            .0,
            Some((GlobalFailover, Cancelled))
        );
        assert_eq!(
            classify(
                "",
                "Promoted Read Replica cluster to a stand-alone database cluster successfully"
            )
            .0,
            Some((Promotion::ReplicaPromotion, Completed))
        );
        assert_eq!(classify("RDS-EVENT-0001", "Backup completed").0, None);
        assert_eq!(
            classify(
                "RDS-EVENT-0397",
                "Aurora finished changing the DNS name that the global writer endpoint resolves to."
            )
            .0,
            None
        );
    }

    #[test]
    fn templates_need_a_value_for_each_placeholder() {
        let t = "Global failover to DB cluster {} in Region {} failed.";
        assert!(matches_template(
            t,
            "Global failover to DB cluster a in Region b failed."
        ));
        assert!(!matches_template(
            t,
            "Global failover to DB cluster  in Region b failed."
        ));
        assert!(!matches_template(
            t,
            "Global failover to DB cluster a in Region b failed. Again."
        ));
        assert!(!matches_template(
            t,
            "Global failover to DB cluster a failed."
        ));
    }
}
