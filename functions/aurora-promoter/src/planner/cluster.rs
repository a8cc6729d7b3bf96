//! The decisions of an in-Region cluster (a failover to the best reader) and of a read replica
//! cluster (its promotion).

use std::cmp::Ordering;

use autonomic::{Plan, Skip};

use super::Observed;
use super::observed::{ClusterView, InstanceView};
use super::promotion::{Call, Promotion};
use crate::targets::ClusterSpec;

fn usable(i: &InstanceView) -> bool {
    i.status == "available"
}

/// In-Region: the best reader, when the cluster is not already failing over.
pub(super) fn decide(
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

/// A read replica cluster: promoted while it still replicates.
pub(super) fn replica(region: &str, c: &ClusterView, name: &str) -> Plan<Promotion> {
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
