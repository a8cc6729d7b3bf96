//! The read-only calls: the breaker, Route 53's checkers, then (only when they confirm a failure)
//! the clusters as each one's own Region reports them, with what each Region answered. A Region
//! that does not answer is recorded as such, not an error; a decision that waits on a primary
//! Region's silence reads again, apart in time, while the invocation has time.

use std::time::Duration;

use autonomic::events::AlarmTransition;
use autonomic::time::now_ms;
use autonomic::{CallError, ErrorClass, FunctionError, Invocation, Plan};

use crate::api::{AuroraApi, UNLISTED_TIER};
use crate::arn::arn_region;
use crate::planner::{
    self, BreakerView, ClusterView, GlobalView, MemberView, Observed, PRIMARY_SILENCE_UNCONFIRMED,
    Promotion, RegionHeard, Topology,
};
use crate::promoter::{AuroraPromoter, breaker_name, moved_mark};
use crate::targets::{GlobalSpec, Kind, Target};

/// What a reading of a global database needs besides the wait: the primary Region's calls, one
/// operation timeout each, and the promotion call after it.
const READING_ALLOWANCE: Duration =
    Duration::from_secs(2 * autonomic::aws::OPERATION_TIMEOUT.as_secs());

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

/// What each Region answered during one reading.
#[derive(Debug, Default)]
pub(crate) struct Hearing {
    started_ms: i64,
    regions: std::collections::BTreeMap<String, RegionHeard>,
}

impl Hearing {
    fn new(started_ms: i64) -> Self {
        Hearing {
            started_ms,
            regions: Default::default(),
        }
    }

    /// Notes whether `region` answered `operation`, and hands the result on.
    fn note<T>(
        &mut self,
        region: &str,
        operation: &str,
        result: Result<T, CallError>,
    ) -> Result<T, CallError> {
        let at = self.started_ms;
        let heard = self
            .regions
            .entry(region.to_string())
            .or_insert_with(|| RegionHeard::asked_at(at));
        match &result {
            Ok(_) => heard.heard(operation, true, String::new),
            Err(e) => heard.heard(operation, !unanswered(e), || e.code.clone()),
        }
        result
    }
}

impl<A: AuroraApi> AuroraPromoter<A> {
    /// The least that shows whether `p` completed: the cluster, or the global cluster asked of
    /// the new primary's Region first, with the new primary's own cluster.
    pub(crate) async fn completion_view(
        &self,
        target: &Target,
        p: &Promotion,
    ) -> Result<Topology, FunctionError> {
        let Kind::Global(spec) = &target.kind else {
            return Ok(self.observe_topology(target).await?);
        };
        let mut regions = vec![p.to_region.as_str()];
        regions.extend(
            spec.regions
                .iter()
                .map(String::as_str)
                .filter(|r| *r != p.to_region),
        );
        let mut hearing = Hearing::new(now_ms());
        let Some(info) = self.global_info(spec, &regions, &mut hearing).await? else {
            return Ok(Topology::Missing {
                what: format!("global cluster {}", spec.global_cluster_identifier),
            });
        };
        let cluster = self
            .read_cluster(&p.to_region, &p.to_cluster, &mut hearing)
            .await?;
        Ok(Topology::Global(GlobalView {
            identifier: info.identifier,
            engine_version: info.engine_version,
            failover_status: info.failover_status,
            members: info
                .members
                .into_iter()
                .map(|(arn, is_writer, sync)| {
                    let mut m = MemberView::listed(arn, is_writer, sync);
                    if m.identifier.eq_ignore_ascii_case(&p.to_cluster) {
                        m.answered = true;
                        m.cluster = cluster.clone();
                    }
                    m
                })
                .collect(),
            heard: hearing.regions,
        }))
    }

    /// DescribeDBClusters, then DescribeDBInstances for the instances the cluster lists; `None`
    /// if the cluster does not exist.
    pub(crate) async fn read_cluster(
        &self,
        region: &str,
        identifier: &str,
        hearing: &mut Hearing,
    ) -> Result<Option<ClusterView>, CallError> {
        let cluster = hearing.note(
            region,
            "DescribeDBClusters",
            self.api.describe_db_cluster(region, identifier).await,
        )?;
        let Some(mut cluster) = cluster else {
            return Ok(None);
        };
        if cluster.instances.is_empty() {
            return Ok(Some(cluster));
        }
        let statuses = hearing.note(
            region,
            "DescribeDBInstances",
            self.api
                .describe_instances(region, &cluster.identifier)
                .await,
        )?;
        for i in &mut cluster.instances {
            // An instance the cluster lists and DescribeDBInstances does not is not usable.
            let status = statuses.iter().find(|s| s.identifier == i.identifier);
            if let Some(s) = status {
                i.status = s.status.clone();
                i.availability_zone = s.availability_zone.clone();
            }
            if i.promotion_tier == UNLISTED_TIER {
                i.promotion_tier = status.and_then(|s| s.promotion_tier).unwrap_or(15);
            }
        }
        Ok(Some(cluster))
    }

    async fn cluster_topology(
        &self,
        region: &str,
        identifier: &str,
        wrap: fn(ClusterView) -> Topology,
    ) -> Result<Topology, CallError> {
        let mut hearing = Hearing::new(now_ms());
        Ok(
            match self.read_cluster(region, identifier, &mut hearing).await? {
                Some(c) => wrap(c),
                None => Topology::Missing {
                    what: format!("cluster {identifier} in {region}"),
                },
            },
        )
    }

    /// DescribeGlobalClusters from the first of `regions` that answers.
    async fn global_info(
        &self,
        spec: &GlobalSpec,
        regions: &[&str],
        hearing: &mut Hearing,
    ) -> Result<Option<crate::api::GlobalInfo>, CallError> {
        let mut last = None;
        for region in regions {
            let answer = self
                .api
                .describe_global_cluster(region, &spec.global_cluster_identifier)
                .await;
            match hearing.note(region, "DescribeGlobalClusters", answer) {
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

    /// Everything [`planner::decide`] needs, read-only. The clusters are read only when the
    /// breaker is clear and Route 53's checkers confirm the failure: otherwise nothing can be
    /// promoted, whatever they say.
    pub(crate) async fn observe(
        &self,
        t: &AlarmTransition,
        target: &Target,
    ) -> Result<Observed, FunctionError> {
        let breaker = self
            .guards
            .read_breaker(&breaker_name(target.name()))
            .await?
            .map(|b| BreakerView {
                promotion: Promotion::recorded(&b.details),
                state: b.state,
                since_ms: b.since_ms,
                holder: b.holder,
            });
        let health_check = planner::health_check_id(t, target).unwrap_or_default();
        let health = self.api.health_check_status(health_check).await?;
        let not_read = |why: &str| Topology::Missing {
            what: format!("not read: {why}"),
        };
        // A tripped breaker decides alone: the clusters need not be read (their Region may be down).
        if breaker.is_some() {
            return Ok(Observed {
                health,
                breaker,
                topology: not_read("the breaker is tripped"),
                moved_at_ms: None,
            });
        }
        if !health.confirms_failure(target.spec.min_failing_share) {
            return Ok(Observed {
                health,
                breaker,
                topology: not_read("the health check does not confirm a failure"),
                moved_at_ms: None,
            });
        }
        let topology = self.observe_topology(target).await?;
        let moved_at_ms = match &target.kind {
            Kind::Cluster(c) => {
                self.guards
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

    /// The decision on `observed`. While it waits on a global primary's silence (a failover
    /// needs its Region to answer nothing over the whole window, in readings apart in time), the
    /// health check and the clusters are read again, as long as this invocation has time for the
    /// rest of the window, a reading and the call; otherwise the wait is the decision, and the
    /// delivery comes back.
    pub(crate) async fn decide_confirmed(
        &self,
        inv: &Invocation,
        t: &AlarmTransition,
        target: &Target,
        mut observed: Observed,
    ) -> Result<(Observed, Plan<Promotion>), FunctionError> {
        let alarm_ms = t.state_changed_at.timestamp_millis();
        let window = self.config.primary_silence;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        // Readings a third of the window apart: three or four in all.
        let interval = (window / 3).clamp(Duration::from_secs(1), Duration::from_secs(10));
        loop {
            let plan = planner::decide(target, alarm_ms, &observed, window_ms);
            let waiting = plan
                .skips
                .iter()
                .any(|s| s.reason == PRIMARY_SILENCE_UNCONFIRMED);
            let Topology::Global(earlier) = &observed.topology else {
                return Ok((observed, plan));
            };
            if !waiting {
                return Ok((observed, plan));
            }
            let earlier = earlier.clone();
            let first_ms = earlier
                .heard
                .values()
                .map(|h| h.first_reading_ms)
                .min()
                .unwrap_or_else(now_ms);
            let rest = Duration::from_millis(
                u64::try_from(first_ms + window_ms - now_ms()).unwrap_or_default(),
            );
            if !inv.has_time_for(rest + READING_ALLOWANCE) {
                tracing::warn!(target = %target.name(), window_s = window.as_secs(), "no time left in this invocation to confirm the primary Region's silence");
                return Ok((observed, plan));
            }
            tokio::time::sleep(interval.min(rest).max(Duration::from_millis(200))).await;
            let health_check = planner::health_check_id(t, target).unwrap_or_default();
            observed.health = self.api.health_check_status(health_check).await?;
            if !observed
                .health
                .confirms_failure(target.spec.min_failing_share)
            {
                continue;
            }
            let again = self.observe_topology(target).await?;
            observed.topology = match again {
                Topology::Global(now) => Topology::Global(now.after(&earlier)),
                other => other,
            };
        }
    }

    /// The target's clusters as they are now.
    pub(crate) async fn observe_topology(&self, target: &Target) -> Result<Topology, CallError> {
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

    /// One reading of a global database: the global cluster, then each member from its own
    /// Region, and the lag of each secondary; what each Region answered.
    async fn observe_global(&self, spec: &GlobalSpec) -> Result<Topology, CallError> {
        let now = now_ms();
        let mut hearing = Hearing::new(now);
        let regions: Vec<&str> = spec.regions.iter().map(String::as_str).collect();
        let Some(info) = self.global_info(spec, &regions, &mut hearing).await? else {
            return Ok(Topology::Missing {
                what: format!("global cluster {}", spec.global_cluster_identifier),
            });
        };
        // Secondaries replicate from the primary's Region.
        let source_region = info
            .members
            .iter()
            .find(|(_, is_writer, _)| *is_writer)
            .and_then(|(arn, _, _)| arn_region(arn))
            .unwrap_or_default()
            .to_string();
        let mut members = Vec::with_capacity(info.members.len());
        for (arn, is_writer, sync) in info.members {
            let mut m = MemberView::listed(arn, is_writer, sync);
            if spec.regions.contains(&m.region) {
                match self
                    .read_cluster(&m.region, &m.identifier, &mut hearing)
                    .await
                {
                    Ok(c) => {
                        m.answered = true;
                        m.cluster = c;
                    }
                    Err(e) if unanswered(&e) => {
                        tracing::warn!(region = %m.region, cluster = %m.identifier, error = %e, "the cluster could not be read from its Region");
                    }
                    Err(e) => return Err(e),
                }
                if !m.is_writer && m.cluster.is_some() {
                    // Unknown lag only forbids a failover; it never fails the invocation.
                    let lag = self
                        .api
                        .replication_lag(&m.region, &m.identifier, &source_region, now)
                        .await;
                    match hearing.note(&m.region, "GetMetricData", lag) {
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
            heard: hearing.regions,
        }))
    }
}
