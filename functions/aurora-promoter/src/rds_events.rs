//! RDS events: complete the promotion in flight, or release its breaker when RDS reports it failed
//! and the clusters agree; note everything else. Aurora's own completed failovers are remembered,
//! so an alarm from before one does not fail the cluster over again.

use autonomic::events::{Phase, Promotion as RdsPromotion, RdsEvent, parse_rds_event};
use autonomic::{CallError, FunctionError, Invocation, Skip};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::AuroraApi;
use crate::arn::arn_name;
use crate::handler::rejected;
use crate::planner::{self, Call, Promotion};
use crate::promoter::{
    AuroraPromoter, FUNCTION, NOTE, RELEASE, breaker_name, moved_mark, resource_lease,
};
use crate::targets::{Kind, Target};

/// How long after a promotion was asked for a failure RDS reports can release its breaker.
const RELEASE_WINDOW_MS: i64 = 2 * 3_600_000;

/// Whether an event about `promotion` can report on `p`.
fn reports_on(promotion: RdsPromotion, p: &Promotion) -> bool {
    matches!(
        (promotion, &p.call),
        (RdsPromotion::Failover, Call::FailoverDBCluster { .. })
            | (
                RdsPromotion::GlobalSwitchover,
                Call::SwitchoverGlobalCluster { .. }
            )
            | (
                RdsPromotion::GlobalFailover,
                Call::FailoverGlobalCluster { .. }
            )
            | (
                RdsPromotion::ReplicaPromotion,
                Call::PromoteReadReplicaDBCluster { .. }
            )
    )
}

/// The event as the response repeats it.
#[derive(Debug, Clone, Serialize)]
pub struct EventSeen {
    pub id: String,
    pub source: String,
    pub region: String,
    /// What it reports, as the documented table (or its message) reads it.
    pub promotion: Option<(RdsPromotion, Phase)>,
    pub message: String,
}

/// The function's answer to an RDS event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    pub function: &'static str,
    pub dry_run: bool,
    pub event: EventSeen,
    pub target: String,
    /// `completed`, `released`, `noted` or `skipped`.
    pub outcome: &'static str,
    pub skip: Option<Skip>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Promotion>,
}

impl<A: AuroraApi> AuroraPromoter<A> {
    pub(crate) async fn handle_rds_event(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let ev = parse_rds_event(payload).map_err(|e| rejected(inv, e))?;
        let trigger = format!("{}:{}@{}", ev.event_id, ev.source_identifier, ev.time_ms);
        let dry_run = inv.dry_run;
        let seen = EventSeen {
            id: ev.event_id.clone(),
            source: ev.source_identifier.clone(),
            region: ev.region.clone(),
            promotion: ev.promotion,
            message: ev.message.clone(),
        };
        let respond = |target: &str,
                       outcome: &'static str,
                       reason: Option<&Skip>,
                       completion: Option<Value>,
                       promotion: Option<Promotion>| {
            let r = EventResponse {
                function: FUNCTION,
                dry_run,
                event: seen.clone(),
                target: target.to_string(),
                outcome,
                skip: reason.cloned(),
                completion,
                promotion,
            };
            serde_json::to_value(r).map_err(|e| FunctionError::Serialize(e.to_string()))
        };
        let Some((promotion, phase)) = ev.promotion else {
            let skip = Skip::new(
                &ev.source_identifier,
                "not_a_promotion",
                format!("{} is not about a promotion", ev.event_id),
            );
            inv.skipped(NOTE, &trigger, &skip, json!({}));
            return respond("", "skipped", Some(&skip), None, None);
        };
        // Aurora's own failovers too: an alarm from before one must not fail the cluster over again.
        if (promotion, phase) == (RdsPromotion::Failover, Phase::Completed) && !inv.dry_run {
            let ttl = (ev.time_ms / 1000) + self.config.common.idempotency_ttl.as_secs() as i64;
            self.guards
                .advance_watermark(
                    &moved_mark(&ev.region, arn_name(&ev.source_identifier)),
                    ev.time_ms,
                    ttl,
                )
                .await?;
        }
        let Some((target, breaker)) = self.target_of(&ev).await? else {
            let skip = Skip::new(
                &ev.source_identifier,
                "no_target",
                "no target names this cluster",
            );
            inv.skipped(NOTE, &trigger, &skip, json!({}));
            return respond("", "skipped", Some(&skip), None, None);
        };
        let name = target.name();
        let note = |inv: &mut Invocation, reason: &str, detail: String| {
            let skip = Skip::new(name, reason, detail);
            inv.skipped(NOTE, &trigger, &skip, json!({"event": ev}));
            respond(name, "noted", Some(&skip), None, None)
        };
        let Some(b) = breaker else {
            return note(
                inv,
                "no_promotion_in_flight",
                "the breaker is not tripped: nothing of ours to complete or release".into(),
            );
        };
        let Some(p) = Promotion::recorded(&b.details) else {
            return note(
                inv,
                "unknown_promotion",
                "the breaker does not record a promotion this function made".into(),
            );
        };
        // Clocks differ a little between RDS and Lambda; an event from well before the promotion
        // is about an earlier one.
        if ev.time_ms < b.since_ms - 60_000 {
            return note(
                inv,
                "predates_promotion",
                format!(
                    "the event ({} ms) is from before the promotion ({} ms)",
                    ev.time_ms, b.since_ms
                ),
            );
        }
        if inv.dry_run {
            return note(
                inv,
                "dry_run",
                format!("{phase:?}: the bookkeeping is left as it is in dry run"),
            );
        }
        match phase {
            Phase::Started | Phase::Progress => {
                note(inv, "in_progress", format!("{promotion:?} {phase:?}"))
            }
            Phase::Completed if b.state == "tripped" => note(
                inv,
                "already_completed",
                "the promotion was completed before".into(),
            ),
            Phase::Completed => {
                let done = self.complete(inv, target, &p, &b.holder, &trigger).await?;
                let outcome = if done["completed"] == json!(true) {
                    "completed"
                } else {
                    "noted"
                };
                respond(name, outcome, None, Some(done), None)
            }
            Phase::Failed | Phase::Cancelled => {
                if b.state == "tripped" {
                    return note(
                        inv,
                        "already_completed",
                        "the breaker records a completed promotion".into(),
                    );
                }
                // Only a failure of this promotion, reported where it runs, soon after it was
                // asked for: the old primary's own in-Region failover failing during a Regional
                // outage says nothing about a global failover.
                if !reports_on(promotion, &p) {
                    return note(
                        inv,
                        "other_promotion",
                        format!(
                            "{promotion:?} {phase:?} is not about the {} in flight",
                            p.call.operation()
                        ),
                    );
                }
                // A global database's events may come from any of its members' Regions (RDS does
                // not document which member sends them); a cluster's from its own.
                let from_its_regions = ev.region == p.to_region
                    || ev.region == p.call.region()
                    || (matches!(target.kind, Kind::Global(_))
                        && target.regions().contains(&ev.region.as_str()));
                if !from_its_regions {
                    return note(
                        inv,
                        "other_region",
                        format!(
                            "the event is from {}, the promotion runs in {}",
                            ev.region, p.to_region
                        ),
                    );
                }
                if ev.time_ms > b.since_ms + RELEASE_WINDOW_MS {
                    return note(
                        inv,
                        "too_late",
                        format!(
                            "the event is more than {} h after the promotion was asked for",
                            RELEASE_WINDOW_MS / 3_600_000
                        ),
                    );
                }
                // The clusters are the truth: release only when the old writer still writes and
                // nothing is in progress.
                let topology = self.completion_view(target, &p).await?;
                if planner::completed(&p, &topology) {
                    return note(
                        inv,
                        "contradicted",
                        format!(
                            "RDS reports {phase:?}, but {} is the writer: the breaker stays",
                            p.to
                        ),
                    );
                }
                if !planner::untouched(&p, &topology) {
                    return note(
                        inv,
                        "contradicted",
                        format!(
                            "RDS reports {phase:?}, but {} is not the plain writer or a promotion is in progress: the breaker stays",
                            p.from
                        ),
                    );
                }
                self.guards
                    .release_breaker(&breaker_name(name), &b.holder)
                    .await?;
                // Nothing was promoted: the cooldown of the attempt goes too, so the next alarm
                // can try again.
                let lease = resource_lease(target);
                if let Some(l) = self.guards.read_lease(&lease).await? {
                    self.guards.release_lease(&lease, &l.holder).await?;
                }
                tracing::warn!(target = %name, event = %ev.event_id, "the promotion failed; breaker and cooldown released");
                inv.applied(
                    RELEASE,
                    name,
                    &trigger,
                    json!({"event": ev, "promotion": p}),
                );
                respond(name, "released", None, None, Some(p))
            }
        }
    }

    /// The target an RDS event is about: one whose configuration names its source (a cluster, a
    /// global cluster, or a member cluster a global target lists), else a global target whose
    /// promotion in flight names it (the cluster promoted from or to). RDS does not document
    /// which member of a global database sends its global events, so any member may.
    pub(crate) async fn target_of(
        &self,
        ev: &RdsEvent,
    ) -> Result<Option<(&Target, Option<autonomic::guard::BreakerRecord>)>, CallError> {
        let source = arn_name(&ev.source_identifier);
        for target in &self.config.targets.targets {
            if target
                .identifiers()
                .iter()
                .any(|i| i.eq_ignore_ascii_case(source))
            {
                let breaker = self
                    .guards
                    .read_breaker(&breaker_name(target.name()))
                    .await?;
                return Ok(Some((target, breaker)));
            }
        }
        for target in &self.config.targets.targets {
            if !matches!(target.kind, Kind::Global(_)) {
                continue;
            }
            let Some(b) = self
                .guards
                .read_breaker(&breaker_name(target.name()))
                .await?
            else {
                continue;
            };
            let Some(p) = Promotion::recorded(&b.details) else {
                continue;
            };
            if [&p.from, &p.to, &p.to_cluster]
                .iter()
                .any(|c| c.eq_ignore_ascii_case(source))
            {
                return Ok(Some((target, Some(b))));
            }
        }
        Ok(None)
    }
}
