//! The guarded promotion ([`PromoteStep`], on the shared guarded step): what is new here is the
//! decision (observe and plan, with the breaker and the primary Region's silence), the breaker
//! tripped under the cluster's lease before the call and given back when the call is refused or
//! never made, the call (one attempt), and completing a promotion (the breaker `tripped`, the
//! record pointed at the new writer) once the clusters show it. An earlier attempt at the same
//! transition is recognised by its breaker (its holder is the transition): completed, it is
//! completed here; in progress or moved elsewhere, nothing is called; visibly untouched for longer
//! than RDS takes to show an accepted request, this attempt acts in its place.

use std::sync::Mutex;

use autonomic::events::AlarmTransition;
use autonomic::guard::{Act, Decision, Lock, Recheck, Resumed, Step};
use autonomic::time::now_ms;
use autonomic::{CallError, FunctionError, Invocation, Skip};
use serde_json::{Value, json};

use crate::api::AuroraApi;
use crate::planner::{self, BreakerView, PROMOTE, Promotion};
use crate::promoter::{AuroraPromoter, COMPLETE, breaker_name, resource_lease};
use crate::targets::Target;

/// One alarm transition's promotion of its target.
pub(crate) struct PromoteStep<'a, A> {
    promoter: &'a AuroraPromoter<A>,
    t: &'a AlarmTransition,
    target: &'a Target,
    trigger: String,
    /// The transition's own earlier attempt whose breaker this one takes over (its promotion
    /// visibly did not take effect).
    resumed_from: Mutex<Option<String>>,
    /// What was observed, for the response and the audit.
    pub(crate) observed: Mutex<Option<planner::Observed>>,
    /// A completion read or recorded on the way, for the response and the audit.
    pub(crate) completion: Mutex<Option<Value>>,
    /// The plan's skips, for the response.
    pub(crate) skips: Mutex<Vec<Skip>>,
}

impl<'a, A: AuroraApi> PromoteStep<'a, A> {
    pub(crate) fn new(
        promoter: &'a AuroraPromoter<A>,
        t: &'a AlarmTransition,
        target: &'a Target,
    ) -> Self {
        Self {
            promoter,
            t,
            target,
            trigger: t.transition_id(),
            resumed_from: Mutex::new(None),
            observed: Mutex::new(None),
            completion: Mutex::new(None),
            skips: Mutex::new(Vec::new()),
        }
    }

    fn resumed(&self) -> Option<String> {
        self.resumed_from.lock().ok().and_then(|r| r.clone())
    }

    fn observed(&self, observed: &planner::Observed) {
        if let Ok(mut o) = self.observed.lock() {
            *o = Some(observed.clone());
        }
    }

    fn completed(&self, done: Value) {
        if let Ok(mut c) = self.completion.lock() {
            *c = Some(done);
        }
    }

    /// An earlier attempt at this same transition tripped the breaker and may have promoted:
    /// `None` to decide afresh in its place, or what this attempt comes to.
    async fn take_over(
        &self,
        inv: &mut Invocation,
        b: &BreakerView,
        observed: &mut planner::Observed,
    ) -> Result<Option<Skip>, FunctionError> {
        let name = self.target.name();
        observed.topology = self.promoter.observe_topology(self.target).await?;
        self.observed(observed);
        let Some(p) = b.promotion.clone() else {
            return Ok(Some(Skip::new(
                name,
                "unknown_promotion",
                "the breaker does not record a promotion this function made: nothing is done on a guess",
            )));
        };
        if planner::completed(&p, &observed.topology) {
            let done = self
                .promoter
                .complete(inv, self.target, &p, &b.holder, &self.trigger)
                .await?;
            self.completed(done);
            return Ok(Some(Skip::new(
                name,
                "already_promoted",
                "the interrupted attempt's promotion took effect",
            )));
        }
        if !planner::untouched(&p, &observed.topology) {
            return Ok(Some(Skip::new(
                name,
                "promotion_in_progress",
                format!(
                    "the interrupted attempt's {} may be under way ({} is no longer the plain writer, or a promotion is in progress): the breaker stays",
                    p.call.operation(),
                    p.from
                ),
            )));
        }
        let settle_ms =
            i64::try_from(self.promoter.config.promotion_settle.as_millis()).unwrap_or(i64::MAX);
        let age_ms = now_ms() - b.since_ms;
        if age_ms < settle_ms {
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
        if let Ok(mut r) = self.resumed_from.lock() {
            *r = Some(b.holder.clone());
        }
        Ok(None)
    }
}

impl<A: AuroraApi> Step for PromoteStep<'_, A> {
    type Intent = Promotion;
    type Done = Value;

    fn action(&self) -> &str {
        PROMOTE
    }

    fn target(&self) -> &str {
        self.target.name()
    }

    /// The cluster (or global cluster): two alarms or two Regions' functions never promote it at
    /// once, and after a request it cools down.
    fn lock(&self, inv: &Invocation) -> Lock {
        Lock::Lease {
            name: resource_lease(self.target),
            hold_until_ms: inv.deadline_ms,
        }
    }

    fn cooldown_until_ms(&self, _p: &Promotion) -> i64 {
        let cooldown_ms =
            i64::try_from(self.target.spec.cooldown_seconds * 1000).unwrap_or(i64::MAX / 4);
        now_ms() + cooldown_ms
    }

    async fn decide(&self, inv: &mut Invocation) -> Result<Decision<Promotion>, FunctionError> {
        let name = self.target.name();
        let mut observed = self.promoter.observe(self.t, self.target).await?;
        if let Some(b) = observed.breaker.clone()
            && b.state == "in_flight"
            && b.holder == self.trigger
            && !inv.dry_run
            && let Some(skip) = self.take_over(inv, &b, &mut observed).await?
        {
            return Ok(Decision::Skip(skip));
        }
        // A failover may lose data: it is planned only on a primary Region's silence confirmed
        // over the window, in readings apart in time.
        let (observed, plan) = self
            .promoter
            .decide_confirmed(inv, self.t, self.target, observed)
            .await?;
        self.observed(&observed);
        if !inv.dry_run
            && let Some(s) = plan
                .skips
                .iter()
                .find(|s| planner::RETRY_LATER.contains(&s.reason.as_str()))
        {
            return Err(FunctionError::not_yet(s.reason.clone(), s.detail.clone()));
        }
        if let Ok(mut skips) = self.skips.lock() {
            *skips = plan.skips.clone();
        }
        let Some(p) = plan.actions.into_iter().next() else {
            // A promotion still in flight may have completed with its RDS event lost (sent in
            // another Region, or never): finish its bookkeeping now.
            if !inv.dry_run
                && let Some(b) = observed.breaker.as_ref().filter(|b| b.state == "in_flight")
            {
                let done = self
                    .promoter
                    .complete_in_flight(inv, self.target, b, &self.trigger)
                    .await?;
                self.completed(done);
            }
            let skip =
                plan.skips.into_iter().next().unwrap_or_else(|| {
                    Skip::new(name, "no_promotion", "the planner decided nothing")
                });
            return Ok(Decision::Skip(skip));
        };
        Ok(Decision::Act(Act {
            target: name.to_string(),
            intent: p,
        }))
    }

    /// Not from the claim's intent: the breaker this transition tripped is its record of an
    /// attempt, and [`Step::decide`] reads it (a crash between the two leaves only the breaker).
    async fn resume(
        &self,
        _inv: &mut Invocation,
        _p: Promotion,
    ) -> Result<Resumed<Value>, FunctionError> {
        Ok(Resumed::Afresh)
    }

    /// Under the cluster's lease: the breaker tripped (or taken over from this transition's
    /// interrupted attempt). Tripped first by another invocation: a skip.
    async fn recheck(
        &self,
        _inv: &mut Invocation,
        p: Promotion,
    ) -> Result<Recheck<Promotion>, FunctionError> {
        let table = &self.promoter.guards;
        let breaker = breaker_name(self.target.name());
        let intent = json!(p);
        let resumed = self.resumed();
        let tripped = match &resumed {
            Some(from) => {
                table
                    .take_over_breaker(&breaker, from, &self.trigger, now_ms(), &intent)
                    .await
            }
            None => {
                table
                    .trip_breaker(&breaker, &self.trigger, now_ms(), &intent)
                    .await
            }
        };
        match tripped {
            Ok(true) => Ok(Recheck::Proceed(p)),
            Ok(false) => Ok(Recheck::Skip(Skip::new(
                self.target.name(),
                "breaker_tripped",
                "another invocation tripped the breaker first",
            ))),
            Err(e) => {
                // A fresh trip may have been written with its answer lost: give back what may be
                // ours. (A takeover that failed leaves the earlier holder's breaker as it was.)
                if resumed.is_none()
                    && let Err(r) = table.release_breaker(&breaker, &self.trigger).await
                {
                    tracing::warn!(error = %r, breaker = %breaker, "could not release a breaker after a failed trip");
                }
                Err(e.into())
            }
        }
    }

    async fn call(&self, p: &Promotion) -> Result<Value, CallError> {
        let resumed = self.resumed().is_some();
        // After an interrupted attempt, a refusal may be RDS refusing because that attempt's
        // promotion is running after all: it is not proof that nothing happened.
        self.promoter.api.promote(&p.call).await.map_err(|mut e| {
            if resumed {
                e.refused = false;
            }
            e
        })?;
        tracing::warn!(target = %self.target.name(), operation = p.call.operation(), from = %p.from, to = %p.to, "promotion requested");
        Ok(json!({"completed": false}))
    }

    /// Refused or never made: nothing was promoted, so the breaker this attempt tripped is not
    /// this promotion's. (Taken over from an interrupted attempt, it stays: it was that one's.)
    async fn undo(&self, _p: &Promotion) {
        if self.resumed().is_some() {
            return;
        }
        let breaker = breaker_name(self.target.name());
        if let Err(r) = self
            .promoter
            .guards
            .release_breaker(&breaker, &self.trigger)
            .await
        {
            tracing::warn!(error = %r, breaker = %breaker, "could not release the breaker of a promotion not made");
        }
    }

    /// What was observed (and any completion), in every record of this step.
    fn audit_details(&self) -> Value {
        let mut d = json!({});
        if let Ok(Some(o)) = self.observed.lock().map(|o| o.clone()) {
            d["observed"] = json!(o);
        }
        if let Ok(Some(c)) = self.completion.lock().map(|c| c.clone()) {
            d["completion"] = c;
        }
        d
    }

    /// Completion is usually minutes away (RDS then sends its event); a stand-in or a fast
    /// in-Region failover may be done already. Not readable now, it is left to the event or the
    /// next alarm; seen but not written down (the record, the breaker `tripped`), the delivery
    /// comes back to finish it: the retry takes the claim over and completes.
    async fn finish(
        &self,
        inv: &mut Invocation,
        p: &Promotion,
        _done: Value,
    ) -> Result<Value, FunctionError> {
        match self
            .promoter
            .complete(inv, self.target, p, &self.trigger, &self.trigger)
            .await
        {
            Ok(done) => {
                self.completed(done.clone());
                Ok(done)
            }
            Err(e) => {
                tracing::error!(target = %self.target.name(), error = %e, "the promotion took effect; its completion could not be recorded");
                Err(FunctionError::NotYet {
                    code: "CompletionNotRecorded".into(),
                    detail: format!(
                        "{} was requested and has taken effect, but recording its completion failed ({e}): the retry records it",
                        p.call.operation()
                    ),
                    acted: true,
                })
            }
        }
    }
}

impl<A: AuroraApi> AuroraPromoter<A> {
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
            .guards
            .update_breaker(&breaker_name(target.name()), holder, "tripped", &done)
            .await?;
        done["breakerUpdated"] = json!(changed);
        inv.applied(COMPLETE, target.name(), trigger, done.clone());
        Ok(done)
    }
}
