//! Resources tests and the demo create in the emulator.

/// Creates an Auto Scaling group (with a launch configuration of the same name).
pub async fn create_group(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
    min: i32,
    max: i32,
    desired: i32,
) {
    client
        .create_launch_configuration()
        .launch_configuration_name(name)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create launch configuration {name}: {e:?}"));
    client
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(name)
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones("us-east-1a")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create group {name}: {e:?}"));
}

/// A group's desired capacity, as the emulator holds it.
pub async fn desired_capacity(client: &aws_sdk_autoscaling::Client, name: &str) -> i32 {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe group {name}: {e:?}"));
    out.auto_scaling_groups()
        .first()
        .and_then(|g| g.desired_capacity())
        .unwrap_or_else(|| panic!("group {name} not found"))
}

/// Creates a CloudFront distribution with one alternate domain name; returns its id.
pub async fn create_distribution(client: &aws_sdk_cloudfront::Client, alias: &str) -> String {
    use aws_sdk_cloudfront::types::{
        Aliases, DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("static")
        .domain_name("autonomic-demo-static.s3.amazonaws.com")
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference(alias)
        .comment("Autonomic test distribution")
        .enabled(true)
        .aliases(Aliases::builder().quantity(1).items(alias).build().unwrap())
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("static")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .cache_policy_id("658327ea-f89d-4fab-a63d-7e88639e58f6")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = client
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create distribution {alias}: {e:?}"));
    out.distribution()
        .map(|d| d.id().to_string())
        .expect("distribution id")
}

/// Every invalidation of a distribution, newest first as CloudFront lists them: (id, paths).
pub async fn invalidations(
    client: &aws_sdk_cloudfront::Client,
    distribution: &str,
) -> Vec<(String, Vec<String>)> {
    invalidation_batches(client, distribution)
        .await
        .into_iter()
        .map(|(id, _, paths)| (id, paths))
        .collect()
}

/// Every invalidation of a distribution: (id, caller reference, paths).
pub async fn invalidation_batches(
    client: &aws_sdk_cloudfront::Client,
    distribution: &str,
) -> Vec<(String, String, Vec<String>)> {
    // Every page: a listing holds 100 at most.
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let list = client
            .list_invalidations()
            .distribution_id(distribution)
            .max_items(100)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list invalidations: {e:?}"));
        let Some(list) = list.invalidation_list() else {
            break;
        };
        ids.extend(list.items().iter().map(|s| s.id().to_string()));
        match list.next_marker() {
            Some(next) if list.is_truncated() && marker.as_deref() != Some(next) => {
                marker = Some(next.to_string());
            }
            _ => break,
        }
    }
    let mut out = Vec::new();
    for id in ids {
        let inv = client
            .get_invalidation()
            .distribution_id(distribution)
            .id(&id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get invalidation: {e:?}"));
        let batch = inv.invalidation().and_then(|i| i.invalidation_batch());
        let paths = batch
            .and_then(|b| b.paths())
            .map(|p| p.items().to_vec())
            .unwrap_or_default();
        let reference = batch
            .map(|b| b.caller_reference().to_string())
            .unwrap_or_default();
        out.push((id, reference, paths));
    }
    out
}

/// Publishes a configuration document as a SecureString SSM parameter (as `infra/` does) and
/// returns the reference a function's variable takes: `ssm:NAME`.
pub async fn publish_document(sdk: &aws_config::SdkConfig, name: &str, document: &str) -> String {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(document)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .tier(aws_sdk_ssm::types::ParameterTier::IntelligentTiering)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"));
    format!("ssm:{name}")
}

/// A CodePipeline V2 pipeline in the emulator: an ECR source action named `Image` (on
/// `repository`), a manual approval after it, and `variables` declared. Creates the role
/// CodePipeline assumes first (moto checks it).
pub async fn create_pipeline(
    sdk: &aws_config::SdkConfig,
    name: &str,
    repository: &str,
    variables: &[&str],
) {
    use aws_sdk_codepipeline::types::{
        ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore,
        ArtifactStoreType, OutputArtifact, PipelineDeclaration, PipelineType,
        PipelineVariableDeclaration, StageDeclaration,
    };
    let trust = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": "codepipeline.amazonaws.com"}}]}"#;
    let role = aws_sdk_iam::Client::new(sdk)
        .create_role()
        .role_name(format!("{name}-role"))
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create role for {name}: {e:?}"));
    let role_arn = role.role().map(|r| r.arn().to_string()).expect("role arn");
    let action = |name: &str, category: ActionCategory, provider: &str| {
        ActionTypeId::builder()
            .category(category)
            .owner(ActionOwner::Aws)
            .provider(provider)
            .version("1")
            .build()
            .map(|t| ActionDeclaration::builder().name(name).action_type_id(t))
            .expect("action type")
    };
    let source = action("Image", ActionCategory::Source, "ECR")
        .configuration("RepositoryName", repository)
        .output_artifacts(
            OutputArtifact::builder()
                .name("image")
                .build()
                .expect("artifact"),
        )
        .build()
        .expect("source action");
    let approve = action("Approve", ActionCategory::Approval, "Manual")
        .build()
        .expect("approval action");
    let stage = |name: &str, a: ActionDeclaration| {
        StageDeclaration::builder()
            .name(name)
            .actions(a)
            .build()
            .expect("stage")
    };
    let mut pipeline = PipelineDeclaration::builder()
        .name(name)
        .role_arn(role_arn)
        .pipeline_type(PipelineType::V2)
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("autonomic-artifacts")
                .build()
                .expect("artifact store"),
        )
        .stages(stage("Source", source))
        .stages(stage("Release", approve));
    for v in variables {
        pipeline = pipeline.variables(
            PipelineVariableDeclaration::builder()
                .name(*v)
                .default_value("unset")
                .build()
                .expect("variable"),
        );
    }
    aws_sdk_codepipeline::Client::new(sdk)
        .create_pipeline()
        .pipeline(pipeline.build().expect("pipeline"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create pipeline {name}: {e:?}"));
}

/// Every execution of a pipeline: (execution id, its variables).
pub async fn pipeline_executions(
    sdk: &aws_config::SdkConfig,
    pipeline: &str,
) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
    let client = aws_sdk_codepipeline::Client::new(sdk);
    let list = client
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list executions of {pipeline}: {e:?}"));
    let mut out = Vec::new();
    for summary in list.pipeline_execution_summaries() {
        let id = summary
            .pipeline_execution_id()
            .unwrap_or_default()
            .to_string();
        let execution = client
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(&id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get execution {id}: {e:?}"));
        let variables = execution
            .pipeline_execution()
            .map(|e| {
                e.variables()
                    .iter()
                    .map(|v| {
                        (
                            v.name().unwrap_or_default().to_string(),
                            v.resolved_value().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((id, variables));
    }
    out
}

/// Puts a configuration document in an S3 object (creating the bucket) and returns the
/// reference a function's variable takes: `s3://BUCKET/KEY`.
pub async fn publish_object(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    key: &str,
    document: &str,
) -> String {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {bucket}: {e:?}"));
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(document.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put object {bucket}/{key}: {e:?}"));
    format!("s3://{bucket}/{key}")
}

/// The SDK configuration of `sdk` in another Region (one emulator serves them all).
pub fn in_region(sdk: &aws_config::SdkConfig, region: &str) -> aws_config::SdkConfig {
    sdk.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// An Aurora PostgreSQL cluster in `region` with `instances` (identifier, promotion tier,
/// Availability Zone); the first is the writer. Returns the cluster ARN.
pub async fn create_aurora_cluster(
    sdk: &aws_config::SdkConfig,
    region: &str,
    identifier: &str,
    instances: &[(&str, i32, &str)],
) -> String {
    let rds = aws_sdk_rds::Client::new(&in_region(sdk, region));
    let arn = rds
        .create_db_cluster()
        .db_cluster_identifier(identifier)
        .engine("aurora-postgresql")
        .engine_version("15.4")
        .master_username("admin")
        .master_user_password("password1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create cluster {identifier}: {e:?}"))
        .db_cluster
        .and_then(|c| c.db_cluster_arn)
        .expect("cluster ARN");
    for (id, tier, zone) in instances {
        add_aurora_instance(sdk, region, identifier, (id, *tier, zone)).await;
    }
    arn
}

/// An instance (identifier, promotion tier, Availability Zone) of the Aurora PostgreSQL cluster
/// `cluster` in `region`.
pub async fn add_aurora_instance(
    sdk: &aws_config::SdkConfig,
    region: &str,
    cluster: &str,
    (id, tier, zone): (&str, i32, &str),
) {
    aws_sdk_rds::Client::new(&in_region(sdk, region))
        .create_db_instance()
        .db_instance_identifier(id)
        .db_cluster_identifier(cluster)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .promotion_tier(tier)
        .availability_zone(zone)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create instance {id}: {e:?}"));
}

/// A global database `identifier` with one cluster per Region (`<identifier>-<n>` in
/// `regions[n]`); the first Region's is the primary. Returns the members' (identifier, ARN).
pub async fn create_global_database(
    sdk: &aws_config::SdkConfig,
    identifier: &str,
    regions: &[&str],
) -> Vec<(String, String)> {
    let members: Vec<(String, String)> = regions
        .iter()
        .enumerate()
        .map(|(n, r)| (r.to_string(), format!("{identifier}-{n}")))
        .collect();
    let members: Vec<(&str, &str)> = members
        .iter()
        .map(|(r, m)| (r.as_str(), m.as_str()))
        .collect();
    create_global_database_of(sdk, identifier, &members).await
}

/// A global database `identifier` with the member clusters (Region, identifier) given; the first
/// is the primary. Created as moto needs it: the global cluster with its engine first, then each
/// member with `GlobalClusterIdentifier`. Returns the members' (identifier, ARN).
pub async fn create_global_database_of(
    sdk: &aws_config::SdkConfig,
    identifier: &str,
    members: &[(&str, &str)],
) -> Vec<(String, String)> {
    let first = aws_sdk_rds::Client::new(&in_region(sdk, members[0].0));
    first
        .create_global_cluster()
        .global_cluster_identifier(identifier)
        .engine("aurora-postgresql")
        .engine_version("15.4")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create global cluster {identifier}: {e:?}"));
    let mut created = Vec::new();
    for (n, (region, member)) in members.iter().enumerate() {
        let rds = aws_sdk_rds::Client::new(&in_region(sdk, region));
        let mut create = rds
            .create_db_cluster()
            .db_cluster_identifier(*member)
            .engine("aurora-postgresql")
            .engine_version("15.4")
            .global_cluster_identifier(identifier);
        if n == 0 {
            create = create
                .master_username("admin")
                .master_user_password("password1");
        }
        let arn = create
            .send()
            .await
            .unwrap_or_else(|e| panic!("create member {member}: {e:?}"))
            .db_cluster
            .and_then(|c| c.db_cluster_arn)
            .expect("member ARN");
        created.push((member.to_string(), arn));
    }
    created
}

/// An Aurora MySQL read replica cluster of `source_arn` in `region`.
pub async fn create_replica_cluster(
    sdk: &aws_config::SdkConfig,
    region: &str,
    identifier: &str,
    source_arn: &str,
) {
    aws_sdk_rds::Client::new(&in_region(sdk, region))
        .create_db_cluster()
        .db_cluster_identifier(identifier)
        .engine("aurora-mysql")
        .master_username("admin")
        .master_user_password("password1")
        .replication_source_identifier(source_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create replica cluster {identifier}: {e:?}"));
}

/// The global cluster's writer member (identifier), as the emulator holds it.
pub async fn global_writer(sdk: &aws_config::SdkConfig, identifier: &str) -> Option<String> {
    let out = aws_sdk_rds::Client::new(sdk)
        .describe_global_clusters()
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe global clusters: {e:?}"));
    out.global_clusters()
        .iter()
        .find(|g| g.global_cluster_identifier() == Some(identifier))?
        .global_cluster_members()
        .iter()
        .find(|m| m.is_writer() == Some(true))
        .and_then(|m| m.db_cluster_arn())
        .map(|arn| arn.rsplit(':').next().unwrap_or(arn).to_string())
}

/// The writer instance of an in-Region cluster.
pub async fn cluster_writer(
    sdk: &aws_config::SdkConfig,
    region: &str,
    cluster: &str,
) -> Option<String> {
    let out = aws_sdk_rds::Client::new(&in_region(sdk, region))
        .describe_db_clusters()
        .db_cluster_identifier(cluster)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe cluster {cluster}: {e:?}"));
    out.db_clusters()
        .first()?
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
        .map(str::to_string)
}

/// A Route 53 health check (TCP to a documentation address); returns its id.
pub async fn create_health_check(sdk: &aws_config::SdkConfig, reference: &str) -> String {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    aws_sdk_route53::Client::new(sdk)
        .create_health_check()
        .caller_reference(reference)
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::Tcp)
                .ip_address("192.0.2.10")
                .port(5432)
                .build()
                .expect("health check config"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("create health check: {e:?}"))
        .health_check
        .map(|h| h.id)
        .expect("health check id")
}

/// Sets what Route 53's checkers report for a health check (the stand-in's control request):
/// `failing` of `checkers` report failure.
pub fn set_checkers(moto: &crate::Moto, health_check_id: &str, failing: usize, checkers: usize) {
    const REGIONS: [&str; 8] = [
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    ];
    let observations: Vec<serde_json::Value> = (0..checkers)
        .map(|i| {
            let status = if i < failing {
                "Failure: Connection timed out. The endpoint or the internet connection is down."
            } else {
                "Success: TCP connection established."
            };
            serde_json::json!({"region": REGIONS[i % REGIONS.len()], "status": status})
        })
        .collect();
    moto.control(
        "health-check-status",
        &serde_json::json!({"healthCheckId": health_check_id, "observations": observations}),
    );
}

/// Sets (or with `None` clears) a global cluster's `FailoverState` (the stand-in's control
/// request): a switchover or failover in progress.
pub fn set_failover_state(
    moto: &crate::Moto,
    global_cluster: &str,
    state: Option<serde_json::Value>,
) {
    moto.control(
        "global-cluster-failover-state",
        &serde_json::json!({"globalClusterIdentifier": global_cluster, "failoverState": state}),
    );
}

/// Publishes a replication-lag datapoint (milliseconds) for `cluster` in `region`, now, with
/// the `SourceRegion` dimension too when `source_region` is given.
pub async fn put_lag(
    sdk: &aws_config::SdkConfig,
    region: &str,
    metric: &str,
    (cluster, source_region): (&str, Option<&str>),
    ms: f64,
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    aws_sdk_cloudwatch::Client::new(&in_region(sdk, region))
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(
            MetricDatum::builder()
                .metric_name(metric)
                .set_dimensions(Some(
                    std::iter::once(("DBClusterIdentifier", cluster))
                        .chain(source_region.map(|r| ("SourceRegion", r)))
                        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                        .collect(),
                ))
                .value(ms)
                .timestamp(aws_smithy_types_now())
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {metric}: {e:?}"));
}

fn aws_smithy_types_now() -> aws_sdk_cloudwatch::primitives::DateTime {
    aws_sdk_cloudwatch::primitives::DateTime::from_millis(autonomic::time::now_ms())
}

/// A private hosted zone; returns its id.
pub async fn create_zone(sdk: &aws_config::SdkConfig, name: &str) -> String {
    aws_sdk_route53::Client::new(sdk)
        .create_hosted_zone()
        .name(name)
        .caller_reference(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create zone {name}: {e:?}"))
        .hosted_zone
        .map(|z| z.id)
        .expect("zone id")
}

/// The value of the CNAME `name` in `zone`, if there is one.
pub async fn cname(sdk: &aws_config::SdkConfig, zone: &str, name: &str) -> Option<String> {
    let out = aws_sdk_route53::Client::new(sdk)
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list records of {zone}: {e:?}"));
    out.resource_record_sets()
        .iter()
        .find(|r| r.name() == name && r.r#type().as_str() == "CNAME")
        .and_then(|r| r.resource_records().first())
        .map(|r| r.value().to_string())
}

/// An EKS cluster in moto (its endpoint and CA are fake: the Kubernetes API stand-in serves the
/// cluster, and the function's configuration points at it).
pub async fn create_eks_cluster(sdk: &aws_config::SdkConfig, name: &str) {
    let eks = aws_sdk_eks::Client::new(sdk);
    eks.create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-12345678")
                .build(),
        )
        .send()
        .await
        .expect("create the EKS cluster in moto");
}
