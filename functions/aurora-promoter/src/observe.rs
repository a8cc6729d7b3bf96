//! The read-only calls: the breaker, Route 53's checkers, and the clusters as each one's own Region
//! reports them (a Region that does not answer is recorded as such, not an error).

use autonomic::events::AlarmTransition;
use autonomic::runtime::now_ms;
use autonomic::{CallError, ErrorClass, FunctionError};

use crate::api::{AuroraApi, arn_region};
use crate::handler::{AuroraPromoter, breaker_name, moved_mark};
use crate::planner::{
    self, BreakerView, ClusterView, GlobalView, MemberView, Observed, Promotion, Topology,
};
use crate::targets::{GlobalSpec, Kind, Target};

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
        let Some(info) = self.global_info(spec, &regions).await? else {
            return Ok(Topology::Missing {
                what: format!("global cluster {}", spec.global_cluster_identifier),
            });
        };
        let cluster = self
            .api
            .describe_cluster(&p.to_region, &p.to_cluster)
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
        }))
    }

    pub(crate) async fn cluster_topology(
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
    pub(crate) async fn global_info(
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
    pub(crate) async fn observe(
        &self,
        t: &AlarmTransition,
        target: &Target,
    ) -> Result<Observed, FunctionError> {
        let breaker = self
            .table()
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

    pub(crate) async fn observe_global(&self, spec: &GlobalSpec) -> Result<Topology, CallError> {
        let regions: Vec<&str> = spec.regions.iter().map(String::as_str).collect();
        let Some(info) = self.global_info(spec, &regions).await? else {
            return Ok(Topology::Missing {
                what: format!("global cluster {}", spec.global_cluster_identifier),
            });
        };
        let now = now_ms();
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
                        .replication_lag(&m.region, &m.identifier, &source_region, now)
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
}
