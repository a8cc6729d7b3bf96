//! One invocation.
//!
//! An alarm transition: route → screen → claim → observe → plan → lease → trip the breaker →
//! promote → (if already visible) complete: the breaker `tripped`, the record pointed at the new
//! writer. An RDS event: find the target's promotion in flight and complete it, or release its
//! breaker when RDS reports the promotion failed or was cancelled and the clusters agree.

use autonomic::audit::Reporter;
use autonomic::events::{
    AlarmTransition, Phase, Promotion as RdsPromotion, RdsEvent, is_rds_event,
    parse_alarm_transitions, parse_rds_event,
};
use autonomic::guard::{self, Claimed, Guards, LeaseName, LeaseOutcome, StateTable};
use autonomic::runtime::{Handler, now_ms};
use autonomic::{CallError, ErrorClass, FunctionError, Invocation, Plan, Skip};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use crate::api::{AuroraApi, arn_name, arn_region};
use crate::config::PromoterConfig;
use crate::planner::{
    self, BreakerView, ClusterView, GlobalView, MemberView, Observed, PROMOTE, Promotion, Topology,
};
use crate::targets::{GlobalSpec, Kind, Target};

pub const FUNCTION: &str = "aurora-promoter";
/// Idempotency scope of this function's claims.
pub const SCOPE: &str = "aurora-promoter";
/// The audit action of completing a promotion (breaker `tripped`, record updated).
pub const COMPLETE: &str = "complete_promotion";
/// The audit action of releasing a breaker after RDS reported the promotion failed.
pub const RELEASE: &str = "release_breaker";
/// The audit action of an RDS event that changed nothing.
pub const NOTE: &str = "note_rds_event";

/// The lock on a cluster (or global cluster) while it is promoted, then its cooldown.
pub fn resource_lease(target: &Target) -> LeaseName {
    LeaseName::new("aurora-promote", &target.resource())
}

/// The breaker item of a target: `breaker#aurora-promoter#<target>`.
pub fn breaker_name(target: &str) -> String {
    format!("{SCOPE}#{target}")
}

/// When Aurora last completed a failover of a cluster (from RDS events).
pub fn moved_mark(region: &str, cluster: &str) -> String {
    format!("aurora-moved#{region}#{}", cluster.to_ascii_lowercase())
}

/// Whether a failed call means the Region did not answer (no connection, no answer in time, a
/// server error), as opposed to answering with a refusal. Throttling is an answer.
pub fn unanswered(e: &CallError) -> bool {
    matches!(
        e.code.as_str(),
        "Timeout"
            | "DispatchFailure"
            | "ResponseError"
            | "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
    ) || e
        .code
        .strip_prefix("HTTP")
        .is_some_and(|s| s.starts_with('5'))
}

/// The promoter, built once per container.
pub struct AuroraPromoter<A> {
    pub api: A,
    pub guards: Guards,
    pub config: PromoterConfig,
    pub reporter: Reporter,
}

impl<A: AuroraApi> AuroraPromoter<A> {
    pub fn new(api: A, state: StateTable, config: PromoterConfig, reporter: Reporter) -> Self {
        Self {
            api,
            guards: Guards::new(state, SCOPE, config.common.idempotency_ttl),
            config,
            reporter,
        }
    }

    fn table(&self) -> &StateTable {
        &self.guards.table
    }
}

impl<A: AuroraApi> Handler for AuroraPromoter<A> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
        let mut inv =
            Invocation::from_lambda(&self.reporter, &event.context, self.config.common.dry_run);
        let result = if is_rds_event(&event.payload) {
            self.handle_rds_event(&event.payload, &mut inv).await
        } else {
            self.handle_alarms(&event.payload, &mut inv).await
        };
        inv.finish();
        result
    }
}

fn rejected(inv: &mut Invocation, e: autonomic::events::EventError) -> FunctionError {
    tracing::warn!(field = %e.field, error = %e, "rejected event");
    let e = FunctionError::from(e);
    inv.failed(
        PROMOTE,
        "event",
        "",
        &e.error_type(),
        json!({"error": e.to_string()}),
    );
    e
}

fn skipped(inv: &mut Invocation, action: &str, trigger: &str, skips: &[Skip], details: &Value) {
    for s in skips {
        inv.skipped(action, trigger, s, details.clone());
    }
}

impl<A: AuroraApi> AuroraPromoter<A> {
    async fn handle_alarms(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let transitions = parse_alarm_transitions(payload).map_err(|e| rejected(inv, e))?;
        let mut lines = Vec::with_capacity(transitions.len());
        let mut errors: Vec<FunctionError> = Vec::new();
        let mut not_done = Vec::new();
        for t in &transitions {
            // No new work this close to the deadline: what is left comes back with the retry.
            if inv.should_stop() {
                not_done.push(t.transition_id());
                lines.push(json!({"alarm": t.name, "outcome": "not_done"}));
                continue;
            }
            match self.handle_transition(t, inv).await {
                Ok(line) => lines.push(line),
                Err(e) => {
                    tracing::error!(alarm = %t.name, error_type = %e.error_type(), error = %e, "transition failed");
                    inv.failed(
                        PROMOTE,
                        &t.name,
                        &t.transition_id(),
                        &e.error_type(),
                        json!({"error": e.to_string()}),
                    );
                    lines.push(json!({"alarm": t.name, "outcome": "failed", "errorType": e.error_type(), "error": e.to_string()}));
                    errors.push(e);
                }
            }
        }
        if !not_done.is_empty() {
            let e = FunctionError::DeadlineNear {
                not_done: not_done.join(", "),
            };
            inv.failed(PROMOTE, &not_done.join(","), "", &e.error_type(), json!({}));
            errors.insert(0, e);
        }
        if let Some(i) = errors
            .iter()
            .position(|e| e.class() == ErrorClass::Retryable)
        {
            return Err(errors.swap_remove(i));
        }
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        Ok(json!({"function": FUNCTION, "dryRun": inv.dry_run, "transitions": lines}))
    }

    async fn handle_transition(
        &self,
        t: &AlarmTransition,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let trigger = t.transition_id();
        let line = |target: &str, outcome: &str, plan: &Plan<Promotion>, extra: Value| {
            let mut v = json!({
                "alarm": t.name,
                "target": target,
                "outcome": outcome,
                "plan": plan,
            });
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            v
        };
        let target = match planner::route(t, &self.config.targets) {
            Ok(target) => target,
            Err(skip) => {
                let plan = Plan::skip(skip);
                skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
                return Ok(line("", "skipped", &plan, json!({})));
            }
        };
        let name = target.name();
        let screened = planner::screen(t, target, now_ms(), self.config.max_event_age).or_else(|| {
            planner::health_check_id(t, target).is_none().then(|| {
                Skip::new(
                    name,
                    "no_health_check",
                    "neither the target nor the alarm's HealthCheckId dimension names a health check to confirm with",
                )
            })
        });
        if let Some(skip) = screened {
            let plan = Plan::skip(skip);
            skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
            return Ok(line(name, "skipped", &plan, json!({})));
        }
        let alarm_ms = t.state_changed_at.timestamp_millis();
        if inv.dry_run {
            let observed = self.observe(t, target).await?;
            let plan = planner::decide(target, alarm_ms, &observed);
            skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
            for p in &plan.actions {
                inv.applied(PROMOTE, name, &trigger, json!(p));
            }
            let outcome = if plan.actions.is_empty() {
                "skipped"
            } else {
                "would_promote"
            };
            return Ok(line(name, outcome, &plan, json!({"observed": observed})));
        }
        let mut claim = match self.guards.claim_event(inv, &trigger).await? {
            Claimed::Mine { claim, .. } => claim,
            Claimed::Done(previous) => {
                let plan = Plan::skip(Skip::new(
                    name,
                    "duplicate",
                    "this alarm transition was already handled",
                ));
                skipped(inv, PROMOTE, &trigger, &plan.skips, &json!({}));
                return Ok(line(name, "skipped", &plan, json!({"previous": previous})));
            }
        };
        // A claim taken over with an intent needs nothing special: that attempt tripped the
        // breaker before it called, so the plan below meets the breaker and promotes nothing.
        let result = self
            .promote_guarded(inv, t, target, &mut claim)
            .await
            .map(|(outcome, plan, extra)| line(name, outcome, &plan, extra));
        claim.end(&result).await;
        result
    }

    async fn promote_guarded(
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
        // transition's claim, so that attempt is over: the clusters say whether its promotion
        // happened. Completed or in progress, nothing is called again; untouched, this attempt
        // acts in its place. Another transition meets the breaker.
        let mut resumed_from = None;
        if let Some(b) = observed.breaker.clone()
            && b.state == "in_flight"
            && b.holder == trigger
        {
            let record = self.table().read_breaker(&breaker).await?;
            let intent = record.and_then(|r| serde_json::from_value::<Promotion>(r.details).ok());
            observed.topology = self.observe_topology(target).await?;
            if let Some(p) = &intent
                && planner::completed(p, &observed.topology)
            {
                let done = self.complete(inv, target, p, &b.holder, &trigger).await?;
                let plan = Plan::skip(Skip::new(
                    name,
                    "already_promoted",
                    "the interrupted attempt's promotion took effect",
                ));
                skipped(
                    inv,
                    PROMOTE,
                    &trigger,
                    &plan.skips,
                    &json!({"completion": done}),
                );
                return Ok((
                    "skipped",
                    plan,
                    json!({"completion": done, "observed": observed}),
                ));
            }
            tracing::warn!(target = %name, holder = %b.holder, "the interrupted attempt's promotion did not take effect: deciding again");
            observed.breaker = None;
            resumed_from = Some(b.holder);
        }
        let alarm_ms = t.state_changed_at.timestamp_millis();
        let mut plan = planner::decide(target, alarm_ms, &observed);
        // A failover may lose data on the word of one observation that the primary's Region is
        // down: read the clusters once more, and act only if the decision stands.
        if plan
            .actions
            .first()
            .is_some_and(|p| matches!(p.call, planner::Call::FailoverGlobalCluster { .. }))
        {
            observed.topology = self.observe_topology(target).await?;
            plan = planner::decide(target, alarm_ms, &observed);
        }
        if let Some(s) = plan
            .skips
            .iter()
            .find(|s| planner::RETRY_LATER.contains(&s.reason.as_str()))
        {
            return Err(CallError::new(
                "rds",
                "DescribeDBClusters",
                s.reason.clone(),
                s.detail.clone(),
                ErrorClass::Retryable,
            )
            .into());
        }
        let mut details = json!({"observed": observed});
        let Some(p) = plan.actions.first().cloned() else {
            // A promotion still in flight may have completed with its RDS event lost (sent in
            // another Region, or never): finish its bookkeeping now. Best effort.
            if let Some(b) = observed.breaker.as_ref().filter(|b| b.state == "in_flight") {
                details["completion"] = self
                    .complete_in_flight(inv, target, &b.holder, &trigger)
                    .await;
            }
            skipped(inv, PROMOTE, &trigger, &plan.skips, &details);
            return Ok(("skipped", plan, details));
        };
        let lease_name = resource_lease(target);
        let previous_owner = claim.previous_owner().map(str::to_owned);
        let lease = match self
            .guards
            .lease(inv, &lease_name, inv.deadline_ms, previous_owner.as_deref())
            .await?
        {
            LeaseOutcome::Acquired(lease) => lease,
            LeaseOutcome::Cooldown { holder, until_ms } => {
                let plan = Plan::skip(Skip::new(
                    name,
                    "cooldown",
                    format!(
                        "{} was promoted by {holder}; cooling down until {until_ms} ms",
                        target.resource()
                    ),
                ));
                skipped(inv, PROMOTE, &trigger, &plan.skips, &details);
                return Ok(("skipped", plan, details));
            }
            LeaseOutcome::Contended { holder, until_ms } => {
                return Err(FunctionError::LeaseContention {
                    lease: lease_name.to_string(),
                    holder,
                    until_ms,
                });
            }
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
                let plan = Plan::skip(Skip::new(
                    name,
                    "breaker_tripped",
                    "another invocation tripped the breaker first",
                ));
                skipped(inv, PROMOTE, &trigger, &plan.skips, &details);
                return Ok(("skipped", plan, details));
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
        let call = async {
            reached_call.store(true, std::sync::atomic::Ordering::SeqCst);
            self.api.promote(&p.call).await
        };
        let called = guard::apply(claim, lease, &intent, || now_ms() + cooldown_ms, call).await;
        if let Err(e) = called {
            if !reached_call.load(std::sync::atomic::Ordering::SeqCst) {
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
        // in-Region failover may be done already. A failure here changes nothing made.
        let holder = trigger.clone();
        match self.complete(inv, target, &p, &holder, &trigger).await {
            Ok(done) => extra["completion"] = done,
            Err(e) => {
                tracing::warn!(target = %name, error = %e, "could not check the promotion's completion");
                extra["completion"] = json!({"completed": false, "error": e.to_string()});
            }
        }
        Ok(("promoted", plan, extra))
    }

    /// [`Self::complete`] for the promotion a tripped, in-flight breaker records; never fails.
    async fn complete_in_flight(
        &self,
        inv: &mut Invocation,
        target: &Target,
        holder: &str,
        trigger: &str,
    ) -> Value {
        let intent = match self
            .table()
            .read_breaker(&breaker_name(target.name()))
            .await
        {
            Ok(Some(r)) => serde_json::from_value::<Promotion>(r.details).ok(),
            Ok(None) => None,
            Err(e) => return json!({"completed": false, "error": e.to_string()}),
        };
        let Some(p) = intent else {
            return json!({"completed": false});
        };
        match self.complete(inv, target, &p, holder, trigger).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(target = %target.name(), error = %e, "could not check the promotion in flight");
                json!({"completed": false, "error": e.to_string()})
            }
        }
    }

    /// Checks whether `p` has taken effect; if so, marks the breaker `tripped` (completed) and
    /// points the record at the new writer.
    async fn complete(
        &self,
        inv: &mut Invocation,
        target: &Target,
        p: &Promotion,
        holder: &str,
        trigger: &str,
    ) -> Result<Value, FunctionError> {
        let topology = self.completion_view(target, p).await?;
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

    /// The least that shows whether `p` completed: the cluster, or the global cluster asked of
    /// the new primary's Region first, with the new primary's own cluster.
    async fn completion_view(
        &self,
        target: &Target,
        p: &Promotion,
    ) -> Result<Topology, FunctionError> {
        Ok(match &target.kind {
            Kind::Cluster(c) => {
                self.cluster_topology(&c.region, &c.identifier, Topology::Cluster)
                    .await?
            }
            Kind::ReadReplica(r) => {
                self.cluster_topology(&r.region, &r.identifier, Topology::ReadReplica)
                    .await?
            }
            Kind::Global(spec) => {
                let mut regions = vec![p.to_region.as_str()];
                regions.extend(
                    spec.regions
                        .iter()
                        .map(String::as_str)
                        .filter(|r| *r != p.to_region),
                );
                let Some(info) = self.global_info(spec, &regions).await? else {
                    return Ok(Topology::Missing {
                        what: format!("global cluster {}", spec.global_cluster_identifier),
                    });
                };
                let cluster = self
                    .api
                    .describe_cluster(&p.to_region, &p.to_cluster)
                    .await?;
                Topology::Global(GlobalView {
                    identifier: info.identifier,
                    engine_version: info.engine_version,
                    failover_status: info.failover_status,
                    members: info
                        .members
                        .into_iter()
                        .map(|(arn, is_writer, sync)| {
                            let identifier = arn_name(&arn).to_string();
                            let mine = identifier.eq_ignore_ascii_case(&p.to_cluster);
                            MemberView {
                                region: arn_region(&arn).unwrap_or_default().to_string(),
                                arn,
                                identifier,
                                is_writer,
                                synchronization_status: sync,
                                answered: mine,
                                cluster: if mine { cluster.clone() } else { None },
                                lag: None,
                                lag_error: None,
                            }
                        })
                        .collect(),
                })
            }
        })
    }

    async fn cluster_topology(
        &self,
        region: &str,
        identifier: &str,
        wrap: fn(ClusterView) -> Topology,
    ) -> Result<Topology, CallError> {
        Ok(match self.api.describe_cluster(region, identifier).await? {
            Some(c) => wrap(c),
            None => Topology::Missing {
                what: format!("cluster {identifier} in {region}"),
            },
        })
    }

    /// DescribeGlobalClusters from the first of `regions` that answers.
    async fn global_info(
        &self,
        spec: &GlobalSpec,
        regions: &[&str],
    ) -> Result<Option<crate::api::GlobalInfo>, CallError> {
        let mut last = None;
        for region in regions {
            match self
                .api
                .describe_global_cluster(region, &spec.global_cluster_identifier)
                .await
            {
                Ok(info) => return Ok(info),
                Err(e) if unanswered(&e) => {
                    tracing::warn!(region, error = %e, "a Region did not answer DescribeGlobalClusters; asking the next");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            CallError::new(
                "rds",
                "DescribeGlobalClusters",
                "NoRegion",
                "no Region configured",
                ErrorClass::Permanent,
            )
        }))
    }

    /// Everything [`planner::decide`] needs, read-only.
    async fn observe(
        &self,
        t: &AlarmTransition,
        target: &Target,
    ) -> Result<Observed, FunctionError> {
        let breaker = self
            .table()
            .read_breaker(&breaker_name(target.name()))
            .await?
            .map(|b| BreakerView {
                state: b.state,
                since_ms: b.since_ms,
                holder: b.holder,
            });
        let health_check = planner::health_check_id(t, target).unwrap_or_default();
        let health = self.api.health_check_status(health_check).await?;
        // A tripped breaker decides alone: the clusters need not be read (their Region may be down).
        if breaker.is_some() {
            return Ok(Observed {
                health,
                breaker,
                topology: Topology::Missing {
                    what: "not read: the breaker is tripped".into(),
                },
                moved_at_ms: None,
            });
        }
        let topology = self.observe_topology(target).await?;
        let moved_at_ms = match &target.kind {
            Kind::Cluster(c) => {
                self.table()
                    .read_watermark(&moved_mark(&c.region, &c.identifier))
                    .await?
            }
            _ => None,
        };
        Ok(Observed {
            health,
            breaker,
            topology,
            moved_at_ms,
        })
    }

    /// The target's clusters as they are now.
    async fn observe_topology(&self, target: &Target) -> Result<Topology, CallError> {
        match &target.kind {
            Kind::Cluster(c) => {
                self.cluster_topology(&c.region, &c.identifier, Topology::Cluster)
                    .await
            }
            Kind::ReadReplica(r) => {
                self.cluster_topology(&r.region, &r.identifier, Topology::ReadReplica)
                    .await
            }
            Kind::Global(spec) => self.observe_global(spec).await,
        }
    }

    async fn observe_global(&self, spec: &GlobalSpec) -> Result<Topology, CallError> {
        let regions: Vec<&str> = spec.regions.iter().map(String::as_str).collect();
        let Some(info) = self.global_info(spec, &regions).await? else {
            return Ok(Topology::Missing {
                what: format!("global cluster {}", spec.global_cluster_identifier),
            });
        };
        let now = now_ms();
        let mut members = Vec::with_capacity(info.members.len());
        for (arn, is_writer, sync) in info.members {
            let region = arn_region(&arn).unwrap_or_default().to_string();
            let identifier = arn_name(&arn).to_string();
            let mut m = MemberView {
                arn,
                identifier,
                region,
                is_writer,
                synchronization_status: sync,
                answered: false,
                cluster: None,
                lag: None,
                lag_error: None,
            };
            if spec.regions.contains(&m.region) {
                match self.api.describe_cluster(&m.region, &m.identifier).await {
                    Ok(c) => {
                        m.answered = true;
                        m.cluster = c;
                    }
                    Err(e) if unanswered(&e) => {
                        tracing::warn!(region = %m.region, cluster = %m.identifier, error = %e, "the cluster's Region does not answer");
                    }
                    Err(e) => return Err(e),
                }
                if !m.is_writer && m.cluster.is_some() {
                    // Unknown lag only forbids a failover; it never fails the invocation.
                    match self
                        .api
                        .replication_lag(&m.region, &m.identifier, now)
                        .await
                    {
                        Ok(lag) => m.lag = lag,
                        Err(e) => {
                            tracing::warn!(cluster = %m.identifier, error = %e, "could not read replication lag");
                            m.lag_error = Some(e.to_string());
                        }
                    }
                }
            }
            members.push(m);
        }
        Ok(Topology::Global(GlobalView {
            identifier: info.identifier,
            engine_version: info.engine_version,
            failover_status: info.failover_status,
            members,
        }))
    }

    async fn handle_rds_event(
        &self,
        payload: &Value,
        inv: &mut Invocation,
    ) -> Result<Value, FunctionError> {
        let ev = parse_rds_event(payload).map_err(|e| rejected(inv, e))?;
        let trigger = format!("{}:{}@{}", ev.event_id, ev.source_identifier, ev.time_ms);
        let dry_run = inv.dry_run;
        let respond = |target: &str, outcome: &str, reason: Option<&Skip>, extra: Value| {
            let mut v = json!({
                "function": FUNCTION,
                "dryRun": dry_run,
                "event": {"id": ev.event_id, "source": ev.source_identifier, "region": ev.region, "promotion": ev.promotion, "message": ev.message},
                "target": target,
                "outcome": outcome,
                "skip": reason,
            });
            if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
                v.extend(extra);
            }
            v
        };
        let Some((promotion, phase)) = ev.promotion else {
            let skip = Skip::new(
                &ev.source_identifier,
                "not_a_promotion",
                format!("{} is not about a promotion", ev.event_id),
            );
            inv.skipped(NOTE, &trigger, &skip, json!({}));
            return Ok(respond("", "skipped", Some(&skip), json!({})));
        };
        // Aurora's own failovers too: an alarm from before one must not fail the cluster over again.
        if (promotion, phase) == (RdsPromotion::Failover, Phase::Completed) && !inv.dry_run {
            let ttl = (ev.time_ms / 1000) + self.config.common.idempotency_ttl.as_secs() as i64;
            self.table()
                .advance_watermark(
                    &moved_mark(&ev.region, &ev.source_identifier),
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
            return Ok(respond("", "skipped", Some(&skip), json!({})));
        };
        let name = target.name();
        let note = |inv: &mut Invocation, reason: &str, detail: String| {
            let skip = Skip::new(name, reason, detail);
            inv.skipped(NOTE, &trigger, &skip, json!({"event": ev}));
            Ok(respond(name, "noted", Some(&skip), json!({})))
        };
        let Some(b) = breaker else {
            return note(
                inv,
                "no_promotion_in_flight",
                "the breaker is not tripped: nothing of ours to complete or release".into(),
            );
        };
        let Ok(p) = serde_json::from_value::<Promotion>(
            b.details
                .get("promotion")
                .cloned()
                .unwrap_or_else(|| b.details.clone()),
        ) else {
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
                Ok(respond(name, outcome, None, json!({"completion": done})))
            }
            Phase::Failed | Phase::Cancelled => {
                // The clusters are the truth: release only when the old writer still writes.
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
                if b.state == "tripped" {
                    return note(
                        inv,
                        "already_completed",
                        "the breaker records a completed promotion".into(),
                    );
                }
                self.table()
                    .release_breaker(&breaker_name(name), &b.holder)
                    .await?;
                tracing::warn!(target = %name, event = %ev.event_id, "the promotion failed; breaker released");
                inv.applied(
                    RELEASE,
                    name,
                    &trigger,
                    json!({"event": ev, "promotion": p}),
                );
                Ok(respond(name, "released", None, json!({"promotion": p})))
            }
        }
    }

    /// The target an RDS event is about: a configured identifier, else a cluster a promotion in
    /// flight moves from or to (the members of a global cluster are not in the configuration).
    async fn target_of(
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
                    .table()
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
                .table()
                .read_breaker(&breaker_name(target.name()))
                .await?
            else {
                continue;
            };
            let p = b.details.get("promotion").unwrap_or(&b.details);
            let names = ["from", "to", "toCluster"];
            if names.iter().any(|k| {
                p[k].as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(source))
            }) {
                return Ok(Some((target, Some(b))));
            }
        }
        Ok(None)
    }
}
