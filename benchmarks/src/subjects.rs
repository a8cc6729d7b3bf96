//! The functions in the benchmark: the estate each run seeds in moto, the events each run sends
//! (the samples in `events/`, each made a new event: ids and times), and the peer's module.

use autonomic_testkit::{Invocation, Moto, create_state_table, estate, event};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

/// The state table every run creates (moto is reset before each run).
const STATE_TABLE: &str = "bench-state";

/// A function with a Python peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    AsgScaler,
    CdnInvalidator,
    PipelineTrigger,
    AuroraPromoter,
}

impl Subject {
    pub fn all() -> [Subject; 4] {
        [
            Subject::AsgScaler,
            Subject::CdnInvalidator,
            Subject::PipelineTrigger,
            Subject::AuroraPromoter,
        ]
    }

    pub fn named(name: &str) -> Option<Subject> {
        Subject::all().into_iter().find(|s| s.function() == name)
    }

    pub fn function(&self) -> &'static str {
        match self {
            Subject::AsgScaler => "asg-scaler",
            Subject::CdnInvalidator => "cdn-invalidator",
            Subject::PipelineTrigger => "pipeline-trigger",
            Subject::AuroraPromoter => "aurora-promoter",
        }
    }

    /// The peer's module in `benchmarks/python/`.
    pub fn python_module(&self) -> &'static str {
        match self {
            Subject::AsgScaler => "asg_scaler",
            Subject::CdnInvalidator => "cdn_invalidator",
            Subject::PipelineTrigger => "pipeline_trigger",
            Subject::AuroraPromoter => "aurora_promoter",
        }
    }

    /// Creates the estate for a run of `events` events in a freshly reset moto; returns the
    /// function's configuration: the state table, and its document published in SSM and given
    /// by reference, as infra/ deploys it.
    pub async fn seed(&self, moto: &Moto, events: usize) -> Vec<(String, String)> {
        let sdk = moto.sdk_config().await;
        create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), STATE_TABLE).await;
        let (variable, document) = match self {
            Subject::AsgScaler => {
                let asg = aws_sdk_autoscaling::Client::new(&sdk);
                estate::create_group(&asg, "web", 1, 10, 2).await;
                let rules = json!({"rules": [{
                    "name": "web", "match": {"nameGlob": "web-*"}, "group": "web",
                    "onAlarm": {"change": 2}, "onOk": {"change": -2},
                    "maxStep": 2, "cooldownSeconds": 0
                }]});
                ("SCALING_RULES", rules)
            }
            Subject::CdnInvalidator => {
                let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);
                estate::create_distribution(&cloudfront, "static.demo.example.com").await;
                let buckets = json!({"autonomic-demo-static": {
                    "domain": "static.demo.example.com", "stripPrefix": "public/"
                }});
                ("BUCKET_DISTRIBUTIONS", buckets)
            }
            Subject::PipelineTrigger => {
                estate::create_pipeline(
                    &sdk,
                    "bench-release",
                    "autonomic-demo/web",
                    &["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"],
                )
                .await;
                let routes = json!({"routes": [{
                    "name": "release", "repository": "autonomic-demo/web",
                    "tags": {"semver": ">=1.0.0"}, "pipelines": ["bench-release"],
                    "variables": {
                        "IMAGE_TAG": "{tag}",
                        "IMAGE_URI": "{registry}/{repository}@{digest}",
                        "RELEASE_LINE": "{major}.{minor}"
                    },
                    "sourceRevision": {"actionName": "Image"}
                }]});
                ("PIPELINE_ROUTES", routes)
            }
            Subject::AuroraPromoter => {
                // A promotion trips its target's breaker until an operator resets it, so each
                // event of a run promotes its own global database (orders-N, east to west).
                let zone = estate::create_zone(&sdk, "orders.internal.example.com.").await;
                let zone = zone.trim_start_matches("/hostedzone/").to_string();
                let mut targets = Vec::new();
                for n in 0..events {
                    let g = format!("orders-{n}");
                    let (east, west) = (format!("{g}-east"), format!("{g}-west"));
                    estate::create_global_database_of(
                        &sdk,
                        &g,
                        &[("us-east-1", east.as_str()), ("us-west-2", west.as_str())],
                    )
                    .await;
                    for (region, cluster, az) in [
                        ("us-east-1", &east, "us-east-1a"),
                        ("us-west-2", &west, "us-west-2a"),
                    ] {
                        aws_sdk_rds::Client::new(&estate::in_region(&sdk, region))
                            .create_db_instance()
                            .db_instance_identifier(format!("{cluster}-1"))
                            .db_cluster_identifier(cluster.as_str())
                            .engine("aurora-postgresql")
                            .db_instance_class("db.r6g.large")
                            .promotion_tier(1)
                            .availability_zone(az)
                            .send()
                            .await
                            .unwrap_or_else(|e| panic!("create instance of {cluster}: {e:?}"));
                    }
                    let check = estate::create_health_check(&sdk, &format!("bench-{g}")).await;
                    estate::set_checkers(moto, &check, 6, 8);
                    targets.push(json!({
                        "name": g, "alarms": [format!("{g}-db-health")], "healthCheckId": check,
                        "minFailingShare": 0.6, "cooldownSeconds": 1800,
                        "global": {"globalClusterIdentifier": g, "regions": ["us-east-1", "us-west-2"]},
                        "record": {"hostedZoneId": zone, "name": format!("writer.{g}.orders.internal.example.com."), "ttl": 30}
                    }));
                }
                ("PROMOTION_TARGETS", json!({"targets": targets}))
            }
        };
        let parameter = format!("/bench/{}/{variable}", self.function());
        let reference = estate::publish_document(&sdk, &parameter, &document.to_string()).await;
        let mut env = vec![
            ("STATE_TABLE_NAME", STATE_TABLE.to_string()),
            (variable, reference),
        ];
        if *self == Subject::AsgScaler {
            env.push(("MAX_EVENT_AGE_SECONDS", "600".into()));
        }
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The `n`-th event of a run: a new one each time (its own id and times near now), the same
    /// for both sides.
    pub fn event(&self, n: usize) -> Value {
        let now = Utc::now();
        match self {
            Subject::AsgScaler => {
                // ALARM, OK, ALARM, ...: the group goes 2 → 4 → 2, and every event scales it.
                let mut e = event(if n.is_multiple_of(2) {
                    "eventbridge-alarm-metric-alarm.json"
                } else {
                    "eventbridge-alarm-metric-ok.json"
                });
                e["id"] = json!(format!("bench-{n}"));
                e["time"] = json!(now.to_rfc3339_opts(SecondsFormat::Secs, true));
                let at = now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
                e["detail"]["state"]["timestamp"] = json!(at);
                e
            }
            Subject::AuroraPromoter => {
                // The health alarm of the n-th global database.
                let alarm = format!("orders-{n}-db-health");
                let mut e = event("eventbridge-health-alarm-orders.json");
                e["id"] = json!(format!("bench-{n}"));
                e["time"] = json!(now.to_rfc3339_opts(SecondsFormat::Secs, true));
                e["resources"] = json!([format!(
                    "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"
                )]);
                e["detail"]["alarmName"] = json!(alarm);
                e["detail"]["state"]["timestamp"] =
                    json!(now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string());
                e
            }
            Subject::CdnInvalidator => {
                // New message ids: a new CallerReference, so a new invalidation each time.
                let mut e = event("sqs-invalidation-requests.json");
                if let Some(records) = e["Records"].as_array_mut() {
                    for (i, r) in records.iter_mut().enumerate() {
                        r["messageId"] = json!(format!("bench-{n}-{i}"));
                    }
                }
                e
            }
            Subject::PipelineTrigger => {
                // A new release each time: a new digest (the claim key) and a rising version.
                let mut e = event("eventbridge-ecr-image-push-release.json");
                e["id"] = json!(format!("bench-{n}"));
                e["time"] = json!(now.to_rfc3339_opts(SecondsFormat::Secs, true));
                e["detail"]["image-digest"] = json!(format!("sha256:{:064x}", n + 1));
                e["detail"]["image-tag"] = json!(format!("1.4.{}", n + 1));
                e
            }
        }
    }

    /// Whether the answer to the `n`-th event is what the full path gives.
    pub fn check_answer(&self, _n: usize, answer: &Invocation) -> Result<(), String> {
        let response = expect_response(answer)?;
        match self {
            Subject::CdnInvalidator => {
                let failures = response["batchItemFailures"].as_array().map_or(0, Vec::len);
                if failures > 0 {
                    return Err(format!("{failures} messages failed: {response}"));
                }
            }
            Subject::PipelineTrigger => {
                if response["starts"][0]["outcome"] != "started" {
                    return Err(format!("no pipeline started: {response}"));
                }
            }
            Subject::AuroraPromoter => {
                let t = &response["transitions"][0];
                if t["outcome"] != "promoted" || t["completion"]["completed"] != true {
                    return Err(format!("no promotion completed: {response}"));
                }
            }
            Subject::AsgScaler => {
                let acted = response["transitions"][0]["results"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty());
                if !acted {
                    return Err(format!("the group was not scaled: {response}"));
                }
            }
        }
        Ok(())
    }
}

/// An answer that is not an error, or the error.
fn expect_response(answer: &Invocation) -> Result<&Value, String> {
    match answer {
        Invocation::Response(v) => Ok(v),
        Invocation::Error {
            error_type,
            error_message,
        } => Err(format!("answered {error_type}: {error_message}")),
    }
}
