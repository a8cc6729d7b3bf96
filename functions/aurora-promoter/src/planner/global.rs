//! The decision of an Aurora Global Database: a switchover while the primary's Region answers
//! anything, a failover allowing data loss only when allowed, the primary's Region silent over the
//! window, and the lag known and under the ceiling.

use std::cmp::Ordering;

use autonomic::{Plan, Skip};

use super::PRIMARY_SILENCE_UNCONFIRMED;
use super::observed::{GlobalView, MemberView, RegionHeard};
use super::promotion::{Call, Promotion};
use crate::targets::GlobalSpec;

/// Global: switch over while the primary's Region answers; fail over with data loss only when
/// allowed, the primary's Region does not answer, and the lag is known and under the ceiling.
pub(super) fn decide(
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
