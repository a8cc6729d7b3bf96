//! The AWS calls the promoter makes, behind a trait implemented for the SDK clients: RDS and
//! CloudWatch per Region (the function must work while one Region is down), Route 53 once.

use std::collections::BTreeMap;
use std::future::Future;

use autonomic::{CallError, ErrorClass};
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::types::Filter;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_types::DateTime;

use crate::planner::{ClusterView, Health, InstanceView, Lag};

/// A global cluster as DescribeGlobalClusters gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalInfo {
    pub identifier: String,
    pub engine_version: Option<String>,
    pub failover_status: Option<String>,
    /// (cluster ARN, is writer, synchronization status)
    pub members: Vec<(String, bool, Option<String>)>,
}

/// The promotion tier of an instance the cluster lists without one: DescribeDBInstances then says.
pub const UNLISTED_TIER: i32 = -1;

/// One DB instance as DescribeDBInstances gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    pub identifier: String,
    pub status: String,
    pub promotion_tier: Option<i32>,
    pub availability_zone: Option<String>,
}

pub trait AuroraApi: Send + Sync + 'static {
    /// GetHealthCheckStatus: how many checkers report, and how many report failure.
    fn health_check_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Health, CallError>> + Send;

    /// DescribeDBClusters in `region`: the cluster with its members as the cluster lists them
    /// (each instance's status `unknown` until [`AuroraApi::describe_instances`] says); `None` if
    /// the cluster does not exist.
    fn describe_db_cluster(
        &self,
        region: &str,
        identifier: &str,
    ) -> impl Future<Output = Result<Option<ClusterView>, CallError>> + Send;

    /// DescribeDBInstances in `region`, filtered on the cluster: each instance's status and zone.
    fn describe_instances(
        &self,
        region: &str,
        cluster: &str,
    ) -> impl Future<Output = Result<Vec<InstanceStatus>, CallError>> + Send;

    /// DescribeGlobalClusters, asked of `region`; `None` if it does not exist.
    fn describe_global_cluster(
        &self,
        region: &str,
        identifier: &str,
    ) -> impl Future<Output = Result<Option<GlobalInfo>, CallError>> + Send;

    /// GetMetricData in `region`: the newest `AuroraGlobalDBRPOLag`, else
    /// `AuroraGlobalDBReplicationLag`, of `cluster` replicating from `source_region`, within the
    /// last five minutes.
    fn replication_lag(
        &self,
        region: &str,
        cluster: &str,
        source_region: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<Lag>, CallError>> + Send;

    /// The mutating call of a promotion.
    fn promote(
        &self,
        call: &crate::planner::Call,
    ) -> impl Future<Output = Result<(), CallError>> + Send;

    /// ChangeResourceRecordSets: UPSERT `name` CNAME `value`.
    fn upsert_cname(
        &self,
        zone: &str,
        name: &str,
        ttl: i64,
        value: &str,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
}

/// The SDK clients: RDS and CloudWatch for every configured Region, Route 53 once.
#[derive(Debug, Clone)]
pub struct AwsApi {
    pub rds: BTreeMap<String, aws_sdk_rds::Client>,
    pub cloudwatch: BTreeMap<String, aws_sdk_cloudwatch::Client>,
    pub route53: aws_sdk_route53::Client,
}

fn no_client(service: &'static str, operation: &'static str, region: &str) -> CallError {
    CallError::new(
        service,
        operation,
        "RegionNotConfigured",
        format!("no client for {region}: name it in a target's regions"),
        ErrorClass::Permanent,
    )
}

impl AwsApi {
    fn rds(
        &self,
        region: &str,
        operation: &'static str,
    ) -> Result<&aws_sdk_rds::Client, CallError> {
        self.rds
            .get(region)
            .ok_or_else(|| no_client("rds", operation, region))
    }
}

impl AuroraApi for AwsApi {
    async fn health_check_status(&self, id: &str) -> Result<Health, CallError> {
        let out = self
            .route53
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .await
            .map_err(|e| CallError::aws("route53", "GetHealthCheckStatus", e))?;
        let observations = out.health_check_observations();
        // Route 53 writes "Success: ..." or "Failure: ..." in each checker's report.
        let failing = observations
            .iter()
            .filter(|o| {
                o.status_report()
                    .and_then(|r| r.status())
                    .is_some_and(|s| s.starts_with("Failure"))
            })
            .count();
        Ok(Health {
            checkers: observations.len(),
            failing,
        })
    }

    async fn describe_db_cluster(
        &self,
        region: &str,
        identifier: &str,
    ) -> Result<Option<ClusterView>, CallError> {
        let rds = self.rds(region, "DescribeDBClusters")?;
        let out = match rds
            .describe_db_clusters()
            .db_cluster_identifier(identifier)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_cluster_not_found_fault()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(CallError::aws("rds", "DescribeDBClusters", e)),
        };
        let Some(c) = out.db_clusters().iter().find(|c| {
            c.db_cluster_identifier()
                .is_some_and(|i| i.eq_ignore_ascii_case(identifier))
        }) else {
            return Ok(None);
        };
        Ok(Some(ClusterView {
            identifier: c.db_cluster_identifier().unwrap_or(identifier).to_string(),
            arn: c.db_cluster_arn().unwrap_or_default().to_string(),
            status: c.status().unwrap_or("unknown").to_string(),
            engine_version: c.engine_version().unwrap_or_default().to_string(),
            endpoint: c.endpoint().map(str::to_string),
            replication_source: c
                .replication_source_identifier()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            instances: c
                .db_cluster_members()
                .iter()
                .map(|m| InstanceView {
                    identifier: m.db_instance_identifier().unwrap_or_default().to_string(),
                    is_writer: m.is_cluster_writer().unwrap_or(false),
                    // Not usable until DescribeDBInstances says it is.
                    status: "unknown".to_string(),
                    promotion_tier: m.promotion_tier().unwrap_or(UNLISTED_TIER),
                    availability_zone: None,
                })
                .collect(),
        }))
    }

    async fn describe_instances(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<InstanceStatus>, CallError> {
        let out = self
            .rds(region, "DescribeDBInstances")?
            .describe_db_instances()
            .filters(
                Filter::builder()
                    .name("db-cluster-id")
                    .values(cluster)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| CallError::aws("rds", "DescribeDBInstances", e))?;
        Ok(out
            .db_instances()
            .iter()
            .map(|i| InstanceStatus {
                identifier: i.db_instance_identifier().unwrap_or_default().to_string(),
                status: i.db_instance_status().unwrap_or("unknown").to_string(),
                promotion_tier: i.promotion_tier(),
                availability_zone: i.availability_zone().map(str::to_string),
            })
            .collect())
    }

    async fn describe_global_cluster(
        &self,
        region: &str,
        identifier: &str,
    ) -> Result<Option<GlobalInfo>, CallError> {
        let rds = self.rds(region, "DescribeGlobalClusters")?;
        let out = match rds
            .describe_global_clusters()
            .global_cluster_identifier(identifier)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_global_cluster_not_found_fault()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(CallError::aws("rds", "DescribeGlobalClusters", e)),
        };
        // Filtered here too: not every implementation honours the identifier.
        let Some(g) = out.global_clusters().iter().find(|g| {
            g.global_cluster_identifier()
                .is_some_and(|i| i.eq_ignore_ascii_case(identifier))
        }) else {
            return Ok(None);
        };
        Ok(Some(GlobalInfo {
            identifier: identifier.to_string(),
            engine_version: g.engine_version().map(str::to_string),
            failover_status: g
                .failover_state()
                .and_then(|f| f.status())
                .map(|s| s.as_str().to_string()),
            members: g
                .global_cluster_members()
                .iter()
                .map(|m| {
                    (
                        m.db_cluster_arn().unwrap_or_default().to_string(),
                        m.is_writer().unwrap_or(false),
                        m.synchronization_status().map(|s| s.as_str().to_string()),
                    )
                })
                .collect(),
        }))
    }

    async fn replication_lag(
        &self,
        region: &str,
        cluster: &str,
        source_region: &str,
        now_ms: i64,
    ) -> Result<Option<Lag>, CallError> {
        let cw = self
            .cloudwatch
            .get(region)
            .ok_or_else(|| no_client("cloudwatch", "GetMetricData", region))?;
        // A metric stat matches one exact set of dimensions: each lag metric is asked for by
        // cluster, and by cluster and source Region, so it is found whichever way it is published.
        let dimensions = |by_source: bool| {
            let mut d = vec![
                Dimension::builder()
                    .name("DBClusterIdentifier")
                    .value(cluster)
                    .build(),
            ];
            if by_source {
                d.push(
                    Dimension::builder()
                        .name("SourceRegion")
                        .value(source_region)
                        .build(),
                );
            }
            d
        };
        let query =
            |id: &str, metric: &str, by_source: bool| -> Result<MetricDataQuery, CallError> {
                let build = |e: aws_sdk_cloudwatch::error::BuildError| {
                    CallError::new(
                        "cloudwatch",
                        "GetMetricData",
                        "InvalidRequest",
                        e.to_string(),
                        ErrorClass::Permanent,
                    )
                };
                Ok(MetricDataQuery::builder()
                    .id(id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(
                                Metric::builder()
                                    .namespace("AWS/RDS")
                                    .metric_name(metric)
                                    .set_dimensions(Some(dimensions(by_source)))
                                    .build(),
                            )
                            .period(60)
                            .stat("Maximum")
                            .build(),
                    )
                    .return_data(true)
                    .build())
                .map_err(build)
            };
        const METRICS: [(&str, &str, bool); 4] = [
            ("rpo", "AuroraGlobalDBRPOLag", false),
            ("rpo_by_source", "AuroraGlobalDBRPOLag", true),
            ("replication", "AuroraGlobalDBReplicationLag", false),
            (
                "replication_by_source",
                "AuroraGlobalDBReplicationLag",
                true,
            ),
        ];
        let mut request = cw
            .get_metric_data()
            .start_time(DateTime::from_millis(now_ms - 5 * 60 * 1000))
            .end_time(DateTime::from_millis(now_ms + 60 * 1000))
            .scan_by(ScanBy::TimestampDescending);
        for (id, metric, by_source) in METRICS {
            request = request.metric_data_queries(query(id, metric, by_source)?);
        }
        let out = request
            .send()
            .await
            .map_err(|e| CallError::aws("cloudwatch", "GetMetricData", e))?;
        // Both metrics are in milliseconds; the RPO lag is the one that says what a failover loses.
        for (id, metric, _) in METRICS {
            let newest = out
                .metric_data_results()
                .iter()
                .find(|r| r.id() == Some(id))
                .and_then(|r| r.values().first().copied());
            if let Some(ms) = newest {
                return Ok(Some(Lag {
                    metric: metric.to_string(),
                    seconds: ms / 1000.0,
                }));
            }
        }
        Ok(None)
    }

    async fn promote(&self, call: &crate::planner::Call) -> Result<(), CallError> {
        use crate::planner::Call;
        // One attempt: a retry after an attempt whose answer was lost would meet the promotion
        // that attempt started (RDS: InvalidGlobalClusterStateFault), which reads as a refusal
        // and would hide that it took effect. The redelivery reads the clusters instead.
        let once = || aws_sdk_rds::config::Builder::new().retry_config(RetryConfig::disabled());
        match call {
            Call::FailoverDBCluster {
                region,
                cluster,
                target_instance,
            } => self
                .rds(region, "FailoverDBCluster")?
                .failover_db_cluster()
                .db_cluster_identifier(cluster)
                .target_db_instance_identifier(target_instance)
                .customize()
                .config_override(once())
                .send()
                .await
                .map(drop)
                .map_err(|e| CallError::aws("rds", "FailoverDBCluster", e)),
            Call::SwitchoverGlobalCluster {
                region,
                global_cluster,
                target_cluster_arn,
            } => self
                .rds(region, "SwitchoverGlobalCluster")?
                .switchover_global_cluster()
                .global_cluster_identifier(global_cluster)
                .target_db_cluster_identifier(target_cluster_arn)
                .customize()
                .config_override(once())
                .send()
                .await
                .map(drop)
                .map_err(|e| CallError::aws("rds", "SwitchoverGlobalCluster", e)),
            Call::FailoverGlobalCluster {
                region,
                global_cluster,
                target_cluster_arn,
            } => self
                .rds(region, "FailoverGlobalCluster")?
                .failover_global_cluster()
                .global_cluster_identifier(global_cluster)
                .target_db_cluster_identifier(target_cluster_arn)
                .allow_data_loss(true)
                .customize()
                .config_override(once())
                .send()
                .await
                .map(drop)
                .map_err(|e| CallError::aws("rds", "FailoverGlobalCluster", e)),
            Call::PromoteReadReplicaDBCluster { region, cluster } => self
                .rds(region, "PromoteReadReplicaDBCluster")?
                .promote_read_replica_db_cluster()
                .db_cluster_identifier(cluster)
                .customize()
                .config_override(once())
                .send()
                .await
                .map(drop)
                .map_err(|e| CallError::aws("rds", "PromoteReadReplicaDBCluster", e)),
        }
    }

    async fn upsert_cname(
        &self,
        zone: &str,
        name: &str,
        ttl: i64,
        value: &str,
    ) -> Result<(), CallError> {
        let invalid = |e: aws_sdk_route53::error::BuildError| {
            CallError::new(
                "route53",
                "ChangeResourceRecordSets",
                "InvalidRequest",
                e.to_string(),
                ErrorClass::Permanent,
            )
        };
        let record = ResourceRecordSet::builder()
            .name(name)
            .r#type(RrType::Cname)
            .ttl(ttl)
            .resource_records(
                ResourceRecord::builder()
                    .value(value)
                    .build()
                    .map_err(invalid)?,
            )
            .build()
            .map_err(invalid)?;
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(record)
            .build()
            .map_err(invalid)?;
        self.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(
                ChangeBatch::builder()
                    .comment("aurora-promoter: the new writer")
                    .changes(change)
                    .build()
                    .map_err(invalid)?,
            )
            .send()
            .await
            .map(drop)
            .map_err(|e| CallError::aws("route53", "ChangeResourceRecordSets", e))
    }
}
