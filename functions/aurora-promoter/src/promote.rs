//! The guarded promotion: lease the cluster, trip the breaker, record the intent, call once; and
//! completing a promotion (the breaker `tripped`, the record pointed at the new writer) once the
//! clusters show it.

use autonomic::events::AlarmTransition;
use autonomic::guard::{self, LeaseOutcome};
use autonomic::time::now_ms;
use autonomic::{FunctionError, Invocation, Plan, Skip};
use serde_json::{Value, json};

use crate::api::AuroraApi;
use crate::handler::{AuroraPromoter, COMPLETE, breaker_name, resource_lease, skipped};
use crate::planner::{self, BreakerView, PROMOTE, Promotion};
use crate::targets::Target;

/// A skip, audited: the line `promote_guarded` returns for it.
fn skipping(
    inv: &mut Invocation,
    trigger: &str,
    skip: Skip,
    details: Value,
) -> (&'static str, Plan<Promotion>, Value) {
    let plan = Plan::skip(skip);
    skipped(inv, PROMOTE, trigger, &plan.skips, &details);
    ("skipped", plan, details)
}

impl<A: AuroraApi> AuroraPromoter<A> {
    pub(crate) async fn promote_guarded(
        &self,
        inv: &mut Invocation,
        t: &AlarmTransition,
        target: &Target,
        claim: &mut guard::HeldClaim,
    ) -> Result<(&'static str, Plan<Promotion>, Value), FunctionError> {
        let trigger = t.transition_id();
        let name = target.name();
        let breaker = breaker_name(name);
        let mut observed = self.observe(t, target).await?;
        // An earlier attempt at this same transition tripped the breaker (its holder is the
        // transition), then failed in a way that may have taken effect. This attempt holds the
        // transition's claim, so that attempt is over, and the clusters say what became of its
        // call: completed, it is completed here; in progress or moved elsewhere, nothing is
        // called; visibly untouched (the old writer writes, nothing in progress) for longer than
        // RDS takes to show an accepted request, this attempt acts in its place. Another
        // transition meets the breaker.
        let mut resumed_from = None;
        if let Some(b) = observed.breaker.clone()
            && b.state == "in_flight"
            && b.holder == trigger
        {
            observed.topology = self.observe_topology(target).await?;
            let Some(p) = b.promotion.clone() else {
                let skip = Skip::new(
                    name,
                    "unknown_promotion",
                    "the breaker does not record a promotion this function made: nothing is done on a guess",
                );
                return Ok(skipping(inv, &trigger, skip, json!({"observed": observed})));
            };
            if planner::completed(&p, &observed.topology) {
                let done = self.complete(inv, target, &p, &b.holder, &trigger).await?;
                let skip = Skip::new(
                    name,
                    "already_promoted",
                    "the interrupted attempt's promotion took effect",
                );
                return Ok(skipping(
                    inv,
                    &trigger,
                    skip,
                    json!({"completion": done, "observed": observed}),
                ));
            }
            if !planner::untouched(&p, &observed.topology) {
                let skip = Skip::new(
                    name,
                    "promotion_in_progress",
                    format!(
                        "the interrupted attempt's {} may be under way ({} is no longer the plain writer, or a promotion is in progress): the breaker stays",
                        p.call.operation(),
                        p.from
                    ),
                );
                return Ok(skipping(inv, &trigger, skip, json!({"observed": observed})));
            }
            let settle_ms =
                i64::try_from(self.config.promotion_settle.as_millis()).unwrap_or(i64::MAX);
            let age_ms = now_ms() - b.since_ms;
            if age_ms < settle_ms {
                // The lease the interrupted attempt kept passes to this attempt and stays held,
                // so the next redelivery (which takes the claim over from this one) inherits it.
                if let Ok(lease) = self.lease_cluster(inv, target, claim).await? {
                    lease.keep("waiting for the interrupted promotion to settle");
                }
                return Err(FunctionError::NotYet {
                    code: "PromotionUnsettled".into(),
                    detail: format!(
                        "the interrupted {} was requested {} s ago; RDS may not show an accepted request yet: trying again after {} s",
                        p.call.operation(),
                        age_ms / 1000,
                        settle_ms / 1000
                    ),
                    acted: true,
                });
            }
            tracing::warn!(target = %name, holder = %b.holder, "the interrupted attempt's promotion did not take effect: deciding again");
            observed.breaker = None;
            resumed_from = Some(b.holder);
        }
        // A failover may lose data: it is planned only on a primary Region's silence confirmed
        // over the window, in readings apart in time.
        let (observed, plan) = self.decide_confirmed(inv, t, target, observed).await?;
        if let Some(s) = plan
            .skips
            .iter()
            .find(|s| planner::RETRY_LATER.contains(&s.reason.as_str()))
        {
            return Err(FunctionError::not_yet(s.reason.clone(), s.detail.clone()));
        }
        let mut details = json!({"observed": observed});
        let Some(p) = plan.actions.first().cloned() else {
            // A promotion still in flight may have completed with its RDS event lost (sent in
            // another Region, or never): finish its bookkeeping now. Best effort.
            if let Some(b) = observed.breaker.as_ref().filter(|b| b.state == "in_flight") {
                details["completion"] = self.complete_in_flight(inv, target, b, &trigger).await?;
            }
            skipped(inv, PROMOTE, &trigger, &plan.skips, &details);
            return Ok(("skipped", plan, details));
        };
        let lease = match self.lease_cluster(inv, target, claim).await? {
            Ok(lease) => lease,
            Err(cooldown) => return Ok(skipping(inv, &trigger, cooldown, details)),
        };
        let intent = json!(p);
        let tripped = match &resumed_from {
            Some(from) => {
                self.table()
                    .take_over_breaker(&breaker, from, &trigger, now_ms(), &intent)
                    .await
            }
            None => {
                self.table()
                    .trip_breaker(&breaker, &trigger, now_ms(), &intent)
                    .await
            }
        };
        match tripped {
            Ok(true) => {}
            Ok(false) => {
                lease.release().await;
                let skip = Skip::new(
                    name,
                    "breaker_tripped",
                    "another invocation tripped the breaker first",
                );
                return Ok(skipping(inv, &trigger, skip, details));
            }
            Err(e) => {
                // A fresh trip may have been written with its answer lost: give back what may be
                // ours. (A takeover that failed leaves the earlier holder's breaker as it was.)
                if resumed_from.is_none()
                    && let Err(r) = self.table().release_breaker(&breaker, &trigger).await
                {
                    tracing::warn!(error = %r, breaker = %breaker, "could not release a breaker after a failed trip");
                }
                lease.release().await;
                return Err(e.into());
            }
        }
        let cooldown_ms =
            i64::try_from(target.spec.cooldown_seconds * 1000).unwrap_or(i64::MAX / 4);
        // Whether the promotion call was made: a failure before it (recording the intent on the
        // claim) leaves nothing promoted, and the breaker this attempt tripped is given back.
        let reached_call = std::sync::atomic::AtomicBool::new(false);
        let resumed = resumed_from.is_some();
        let call = async {
            reached_call.store(true, std::sync::atomic::Ordering::SeqCst);
            // After an interrupted attempt, a refusal may be RDS refusing because that attempt's
            // promotion is running after all: it is not proof that nothing happened.
            self.api.promote(&p.call).await.map_err(|mut e| {
                if resumed {
                    e.refused = false;
                }
                e
            })
        };
        let called = guard::apply(claim, lease, &intent, || now_ms() + cooldown_ms, call).await;
        if let Err(e) = called {
            if resumed {
                // The breaker was the interrupted attempt's before it was ours: it stays.
            } else if !reached_call.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(r) = self.table().release_breaker(&breaker, &trigger).await {
                    tracing::warn!(error = %r, breaker = %breaker, "could not release the breaker of a promotion never called");
                }
            } else if e.may_have_taken_effect() {
                tracing::error!(target = %name, error = %e, "the promotion call failed and may have taken effect: the breaker stays tripped until the retry reads the clusters");
            } else if let Err(r) = self.table().release_breaker(&breaker, &trigger).await {
                // Refused: nothing was promoted, so the breaker is not this promotion's.
                tracing::warn!(error = %r, breaker = %breaker, "could not release the breaker of a refused promotion");
            }
            return Err(e.into());
        }
        tracing::warn!(target = %name, operation = p.call.operation(), from = %p.from, to = %p.to, "promotion requested");
        inv.applied(PROMOTE, name, &trigger, json!(p));
        let mut extra = details;
        // Completion is usually minutes away (RDS then sends its event); a stand-in or a fast
        // in-Region failover may be done already. Not readable now, it is left to the event or
        // the next alarm; seen but not written down (the record, the breaker `tripped`), the
        // delivery comes back to finish it: the retry takes the claim over and completes.
        match self.complete(inv, target, &p, &trigger, &trigger).await {
            Ok(done) => extra["completion"] = done,
            Err(e) => {
                tracing::error!(target = %name, error = %e, "the promotion took effect; its completion could not be recorded");
                return Err(FunctionError::NotYet {
                    code: "CompletionNotRecorded".into(),
                    detail: format!(
                        "{} was requested and has taken effect, but recording its completion failed ({e}): the retry records it",
                        p.call.operation()
                    ),
                    acted: true,
                });
            }
        }
        Ok(("promoted", plan, extra))
    }

    /// [`Self::complete`] for the promotion a tripped, in-flight breaker records.
    async fn complete_in_flight(
        &self,
        inv: &mut Invocation,
        target: &Target,
        breaker: &BreakerView,
        trigger: &str,
    ) -> Result<Value, FunctionError> {
        let Some(p) = &breaker.promotion else {
            return Ok(json!({"completed": false}));
        };
        self.complete(inv, target, p, &breaker.holder, trigger)
            .await
    }

    /// The cluster's lease for this attempt (inheriting the lease of the claim's previous owner):
    /// held, or the cooldown skip; a lock another live invocation kept past this one's time is a
    /// retryable error.
    async fn lease_cluster(
        &self,
        inv: &Invocation,
        target: &Target,
        claim: &guard::HeldClaim,
    ) -> Result<Result<guard::HeldLease, Skip>, FunctionError> {
        let lease_name = resource_lease(target);
        match self
            .guards
            .lease(inv, &lease_name, inv.deadline_ms, claim.previous_owner())
            .await?
        {
            LeaseOutcome::Acquired(lease) => Ok(Ok(lease)),
            LeaseOutcome::Cooldown { holder, until_ms } => Ok(Err(Skip::new(
                target.name(),
                "cooldown",
                format!(
                    "{} was promoted by {holder}; cooling down until {until_ms} ms",
                    target.resource()
                ),
            ))),
            LeaseOutcome::Contended { holder, until_ms } => Err(FunctionError::LeaseContention {
                lease: lease_name.to_string(),
                holder,
                until_ms,
            }),
        }
    }

    /// Checks whether `p` has taken effect; if so, marks the breaker `tripped` (completed) and
    /// points the record at the new writer. Clusters that cannot be read leave it not completed
    /// (with why); a failure to write the record or the breaker is the error.
    pub(crate) async fn complete(
        &self,
        inv: &mut Invocation,
        target: &Target,
        p: &Promotion,
        holder: &str,
        trigger: &str,
    ) -> Result<Value, FunctionError> {
        let topology = match self.completion_view(target, p).await {
            Ok(topology) => topology,
            Err(e) => {
                tracing::warn!(target = %target.name(), error = %e, "could not read whether the promotion completed");
                return Ok(json!({"completed": false, "error": e.to_string()}));
            }
        };
        if !planner::completed(p, &topology) {
            return Ok(json!({"completed": false}));
        }
        let mut done = json!({"completed": true, "promotion": p, "completedAtMs": now_ms()});
        if let Some(r) = &p.record {
            let endpoint = planner::writer_endpoint(p, &topology).ok_or_else(|| {
                FunctionError::Precondition {
                    code: "NoEndpoint",
                    detail: format!("{} reports no endpoint for the record", p.to_cluster),
                }
            })?;
            self.api
                .upsert_cname(&r.hosted_zone_id, &r.name, r.ttl, &endpoint)
                .await?;
            done["record"] = json!({"name": r.name, "value": endpoint, "ttl": r.ttl});
        }
        let changed = self
            .table()
            .update_breaker(&breaker_name(target.name()), holder, "tripped", &done)
            .await?;
        done["breakerUpdated"] = json!(changed);
        inv.applied(COMPLETE, target.name(), trigger, done.clone());
        Ok(done)
    }
}
