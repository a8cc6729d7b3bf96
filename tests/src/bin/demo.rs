//! The demo: starts moto, provisions a small estate, runs each function as a real binary under
//! the Runtime API emulator on its `events/` samples, and prints what it decided and what changed.
//!
//! Run it with `scripts/demo.sh` (which installs moto and builds the binaries first).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use autonomic_e2e::start_function;
use autonomic_testkit::estate::{
    cname, create_distribution, create_global_database_of, create_group, create_pipeline,
    create_zone, desired_capacity, global_writer, pipeline_executions, set_checkers,
};
use autonomic_testkit::{Moto, create_state_table, event, workspace_root};
use serde_json::Value;

const WEB: &str = "autonomic-demo-web";
const API: &str = "autonomic-demo-api";
const TABLE: &str = "autonomic-demo-state";
const DOMAIN: &str = "static.demo.example.com";
const RELEASE: &str = "autonomic-demo-release";
const STAGING: &str = "autonomic-demo-staging";

#[tokio::main]
async fn main() {
    println!(
        "Autonomic demo: real function binaries, a real AWS API (moto server), sample events from events/\n"
    );
    let moto = Moto::start();
    println!("moto server at {}", moto.endpoint());
    let sdk = moto.sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let cloudfront = aws_sdk_cloudfront::Client::new(&sdk);

    create_state_table(&ddb, TABLE).await;
    create_group(&asg, WEB, 1, 10, 2).await;
    create_group(&asg, API, 1, 6, 2).await;
    let distribution = create_distribution(&cloudfront, DOMAIN).await;
    create_pipeline(
        &sdk,
        RELEASE,
        "autonomic-demo/web",
        &["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"],
    )
    .await;
    create_pipeline(
        &sdk,
        STAGING,
        "autonomic-demo/web",
        &["IMAGE_TAG", "IMAGE_URI"],
    )
    .await;
    println!("estate:");
    println!("  Auto Scaling group {WEB}: min 1, max 10, desired 2");
    println!("  Auto Scaling group {API}: min 1, max 6, desired 2");
    println!("  CloudFront distribution {distribution} (static.demo.example.com)");
    println!("  CodePipeline V2 pipelines {RELEASE} and {STAGING}");
    println!("  DynamoDB table {TABLE} (idempotency claims, cooldown leases)\n");

    asg_scaler(&moto, &asg).await;
    cdn_invalidator(&moto, &cloudfront, &distribution).await;
    pipeline_trigger(&moto, &sdk).await;
    aurora_promoter(&moto, &sdk).await;
    k8s_rollout(&moto, &sdk).await;
    println!(
        "\ndone: every decision above was made by a function binary; every effect was read back from the emulator."
    );
}

async fn asg_scaler(moto: &Moto, asg: &aws_sdk_autoscaling::Client) {
    let rules_path = workspace_root().join("functions/asg-scaler/rules.example.json");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    println!("== asg-scaler (rules: functions/asg-scaler/rules.example.json, cooldown 3 s) ==");
    // The samples carry fixed dates; the staleness check (MAX_EVENT_AGE_SECONDS) is off here.
    let f = start_function(
        "asg-scaler",
        moto,
        &[
            ("SCALING_RULES", rules.as_str()),
            ("STATE_TABLE_NAME", TABLE),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ],
    )
    .await;

    let steps: &[(&str, &str)] = &[
        ("eventbridge-alarm-metric-alarm.json", "web CPU alarm fires"),
        (
            "eventbridge-alarm-math-alarm.json",
            "a second alarm on the same group, inside its cooldown",
        ),
        (
            "eventbridge-alarm-tagged-alarm.json",
            "a tagged alarm names its group through a tag",
        ),
        (
            "eventbridge-alarm-insufficient-data.json",
            "the CPU alarm loses its data",
        ),
        (
            "eventbridge-alarm-unmatched.json",
            "an alarm no rule is about",
        ),
        (
            "eventbridge-alarm-metric-alarm.json",
            "EventBridge delivers the first event again",
        ),
        ("WAIT", "the cooldown runs out"),
        ("eventbridge-alarm-metric-ok.json", "web CPU back to OK"),
    ];
    for (sample, what) in steps {
        if *sample == "WAIT" {
            println!("\n-- waiting 3 s: {what}");
            tokio::time::sleep(Duration::from_secs(3)).await;
            continue;
        }
        let before = (
            desired_capacity(asg, WEB).await,
            desired_capacity(asg, API).await,
        );
        let answer = f.api.invoke(&event(sample)).await;
        let after = (
            desired_capacity(asg, WEB).await,
            desired_capacity(asg, API).await,
        );
        println!("\n-- {what}\n   event   events/{sample}");
        match answer {
            autonomic_testkit::Invocation::Response(r) => print_decisions(&r),
            autonomic_testkit::Invocation::Error {
                error_type,
                error_message,
            } => {
                println!("   error   {error_type}: {error_message}")
            }
        }
        println!(
            "   groups  {WEB} desired {} -> {}, {API} desired {} -> {}",
            before.0, after.0, before.1, after.1
        );
    }
}

fn print_decisions(r: &Value) {
    for t in r["transitions"].as_array().into_iter().flatten() {
        println!(
            "   alarm   {} -> {}",
            t["alarm"].as_str().unwrap_or("?"),
            t["state"].as_str().unwrap_or("?")
        );
        for a in t["plan"]["actions"].as_array().into_iter().flatten() {
            println!(
                "   decided scale {} from {} to {} (rule {})",
                a["group"].as_str().unwrap_or("?"),
                a["from"],
                a["to"],
                a["rule"].as_str().unwrap_or("?")
            );
        }
        for s in t["plan"]["skips"].as_array().into_iter().flatten() {
            println!(
                "   decided skip [{}] {}",
                s["reason"].as_str().unwrap_or("?"),
                s["detail"].as_str().unwrap_or("")
            );
        }
    }
}

async fn cdn_invalidator(moto: &Moto, cloudfront: &aws_sdk_cloudfront::Client, distribution: &str) {
    println!(
        "\n== cdn-invalidator (bucket autonomic-demo-static -> {DOMAIN}, folders of more than 20 paths collapse) =="
    );
    let buckets = format!(
        r#"{{"autonomic-demo-static": {{"domain": "{DOMAIN}", "stripPrefix": "public/"}}}}"#
    );
    let f = start_function(
        "cdn-invalidator",
        moto,
        &[
            ("STATE_TABLE_NAME", TABLE),
            ("BUCKET_DISTRIBUTIONS", buckets.as_str()),
        ],
    )
    .await;
    let steps: Vec<(String, String, Value)> = vec![
        (
            "three invalidation requests, one naming a wildcard".into(),
            "events/sqs-invalidation-requests.json".into(),
            event("sqs-invalidation-requests.json"),
        ),
        (
            "S3 uploads and a delete; one key outside public/".into(),
            "events/sqs-s3-notifications.json".into(),
            event("sqs-s3-notifications.json"),
        ),
        (
            "a request, an upload, S3's test event and a truncated body".into(),
            "events/sqs-mixed.json".into(),
            event("sqs-mixed.json"),
        ),
        (
            "a FIFO batch whose second message has a control character".into(),
            "events/sqs-fifo.json".into(),
            event("sqs-fifo.json"),
        ),
        (
            "a burst: a deploy of 300 assets, 60 page requests and their redeliveries".into(),
            "(generated)".into(),
            burst(),
        ),
    ];
    for (what, source, payload) in steps {
        let before = f.process.audit_records().len();
        let messages = payload["Records"].as_array().map_or(0, Vec::len);
        let answer = f.api.invoke(&payload).await;
        println!("\n-- {what}\n   event   {source} ({messages} messages)");
        let r = answer.response();
        for a in &f.process.audit_records()[before..] {
            let rec = &a["record"];
            if rec["action"] == "create_invalidation" {
                println!(
                    "   sent    CreateInvalidation {} paths ({} wildcards) for {} message(s): {}",
                    rec["details"]["paths"],
                    rec["details"]["wildcards"],
                    rec["details"]["messages"].as_array().map_or(0, Vec::len),
                    rec["outcome"].as_str().unwrap_or("?")
                );
            } else if rec["outcome"] == "failed" || rec["outcome"] == "skipped" {
                println!(
                    "   {:7} message {}: {}",
                    rec["outcome"].as_str().unwrap_or("?"),
                    rec["target"]
                        .as_str()
                        .unwrap_or("?")
                        .rsplit('-')
                        .next()
                        .unwrap_or("?"),
                    rec["details"]["detail"].as_str().unwrap_or("")
                );
            }
        }
        let failed: Vec<&str> = r["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["itemIdentifier"].as_str())
            .map(|id| id.rsplit('-').next().unwrap_or(id))
            .collect();
        println!(
            "   report  batchItemFailures: {failed:?} (these stay on the queue; everything else was submitted or acknowledged)"
        );
    }
    let made = autonomic_testkit::estate::invalidations(cloudfront, distribution).await;
    let paths: usize = made.iter().map(|(_, p)| p.len()).sum();
    println!(
        "\n   the distribution now has {} invalidations, {paths} paths in all",
        made.len()
    );
}

/// An SQS batch like a busy deploy: asset uploads (S3 notifications), page requests, redeliveries.
fn burst() -> Value {
    let mut records = Vec::new();
    let mut push = |body: String| {
        let n = records.len();
        records.push(serde_json::json!({
            "messageId": format!("burst-{n:04}"), "receiptHandle": format!("rh-{n}"), "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:autonomic-invalidations", "awsRegion": "us-east-1"
        }));
    };
    for i in 0..300 {
        push(serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "autonomic-demo-static"}, "object": {"key": format!("public/assets/v2/chunk{i}.js")}}}]}).to_string());
    }
    for i in 0..60 {
        let body = serde_json::json!({"domain": DOMAIN, "paths": [format!("/docs/page{}.html", i % 12), "/index.html"], "requester": "cms"}).to_string();
        push(body.clone());
        if i % 3 == 0 {
            push(body);
        }
    }
    serde_json::json!({"Records": records})
}

async fn pipeline_trigger(moto: &Moto, sdk: &aws_config::SdkConfig) {
    println!(
        "\n== pipeline-trigger (routes: functions/pipeline-trigger/routes.example.json, read from the package as file:) =="
    );
    let root = workspace_root().display().to_string();
    // The samples carry fixed dates; the staleness check (MAX_EVENT_AGE_SECONDS) is off here.
    let f = start_function(
        "pipeline-trigger",
        moto,
        &[
            (
                "PIPELINE_ROUTES",
                "file:functions/pipeline-trigger/routes.example.json",
            ),
            ("LAMBDA_TASK_ROOT", root.as_str()),
            ("STATE_TABLE_NAME", TABLE),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ],
    )
    .await;
    let steps: &[(&str, &str)] = &[
        (
            "eventbridge-ecr-image-push-release.json",
            "autonomic-demo/web:1.4.0 is pushed",
        ),
        (
            "eventbridge-ecr-image-push-rc.json",
            "autonomic-demo/web:1.4.0-rc1 is pushed",
        ),
        (
            "eventbridge-ecr-image-push-release.json",
            "EventBridge delivers the 1.4.0 push again",
        ),
        (
            "eventbridge-ecr-image-push-retag.json",
            "the 1.4.0 digest is tagged v1.4.0 as well",
        ),
        (
            "eventbridge-ecr-image-push.json",
            "web:v1.4.2 is pushed to a repository no route takes",
        ),
        (
            "eventbridge-ecr-image-push-untagged.json",
            "an untagged platform manifest of a multi-arch push",
        ),
    ];
    for (sample, what) in steps {
        let before = (
            pipeline_executions(sdk, RELEASE).await.len(),
            pipeline_executions(sdk, STAGING).await.len(),
        );
        let answer = f.api.invoke(&event(sample)).await;
        println!("\n-- {what}\n   event   events/{sample}");
        match answer {
            autonomic_testkit::Invocation::Response(r) => {
                for l in r["starts"].as_array().into_iter().flatten() {
                    match l["outcome"].as_str() {
                        Some("started") => println!(
                            "   decided start {} (route {}) with {}",
                            l["pipeline"].as_str().unwrap_or("?"),
                            l["route"].as_str().unwrap_or("?"),
                            l["variables"]
                        ),
                        _ => println!(
                            "   decided skip {} [{}] {}",
                            l["pipeline"].as_str().unwrap_or("?"),
                            l["reason"].as_str().unwrap_or("?"),
                            l["detail"].as_str().unwrap_or("")
                        ),
                    }
                }
                for s in r["skips"].as_array().into_iter().flatten() {
                    println!(
                        "   decided skip [{}] {}",
                        s["reason"].as_str().unwrap_or("?"),
                        s["detail"].as_str().unwrap_or("")
                    );
                }
            }
            autonomic_testkit::Invocation::Error {
                error_type,
                error_message,
            } => println!("   error   {error_type}: {error_message}"),
        }
        let after = (
            pipeline_executions(sdk, RELEASE).await.len(),
            pipeline_executions(sdk, STAGING).await.len(),
        );
        println!(
            "   runs    {RELEASE} {} -> {}, {STAGING} {} -> {}",
            before.0, after.0, before.1, after.1
        );
    }
    let (_, variables) = pipeline_executions(sdk, RELEASE).await.remove(0);
    println!("\n   {RELEASE}'s execution, read back from the emulator: variables {variables:?}");
}

/// The sample alarms' health check (the stand-in answers for it: moto makes ids up).
const HEALTH_CHECK: &str = "11111111-2222-3333-4444-555555555555";

async fn aurora_promoter(moto: &Moto, sdk: &aws_config::SdkConfig) {
    println!(
        "\n== aurora-promoter (targets: functions/aurora-promoter/targets.example.json; stand-ins for the global switchover and Route 53's checkers) =="
    );
    create_global_database_of(
        sdk,
        "orders",
        &[("us-east-1", "orders-east"), ("us-west-2", "orders-west")],
    )
    .await;
    let zone = create_zone(sdk, "orders.internal.example.com.").await;
    let record = "writer.orders.internal.example.com.";
    let targets = std::fs::read_to_string(
        workspace_root().join("functions/aurora-promoter/targets.example.json"),
    )
    .unwrap()
    .replace(
        "Z0123456789EXAMPLE",
        zone.trim_start_matches("/hostedzone/"),
    );
    println!(
        "   global database orders: orders-east (us-east-1, writer), orders-west (us-west-2); zone {zone}"
    );
    let f = start_function(
        "aurora-promoter",
        moto,
        &[
            ("PROMOTION_TARGETS", targets.as_str()),
            ("STATE_TABLE_NAME", TABLE),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ],
    )
    .await;
    let steps: &[(&str, usize, &str)] = &[
        (
            "eventbridge-health-alarm-orders.json",
            2,
            "orders-db-health goes to ALARM; 2 of 8 Route 53 checkers report failure",
        ),
        (
            "sns-health-alarm-orders.json",
            6,
            "it goes to ALARM again 15 minutes later; 6 of 8 checkers report failure",
        ),
        (
            "sns-health-alarm-orders.json",
            6,
            "SNS delivers that notification again",
        ),
        (
            "lambda-health-alarm-orders.json",
            6,
            "another transition of the alarm arrives (through its Lambda action)",
        ),
        (
            "eventbridge-rds-global-switchover-completed.json",
            6,
            "RDS reports the switchover to orders-west finished (RDS-EVENT-0185, sent now)",
        ),
    ];
    for (sample, failing, what) in steps {
        set_checkers(moto, HEALTH_CHECK, *failing, 8);
        let before = global_writer(sdk, "orders").await.unwrap_or_default();
        let mut payload = event(sample);
        // RDS's event comes after the promotion it reports on: dated now, not the sample's date.
        if sample.starts_with("eventbridge-rds-") {
            let now = chrono::Utc::now();
            payload["time"] =
                serde_json::json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            payload["detail"]["Date"] = serde_json::json!(now.to_rfc3339());
        }
        let answer = f.api.invoke(&payload).await;
        println!("\n-- {what}\n   event   events/{sample}");
        match answer {
            autonomic_testkit::Invocation::Response(r) => {
                let lines = match r["transitions"].as_array() {
                    Some(t) => t.clone(),
                    None => vec![r.clone()],
                };
                for l in lines {
                    let plan = &l["plan"];
                    for a in plan["actions"].as_array().into_iter().flatten() {
                        println!(
                            "   decided {} {} -> {} ({})",
                            a["call"]["operation"].as_str().unwrap_or("?"),
                            a["from"].as_str().unwrap_or("?"),
                            a["to"].as_str().unwrap_or("?"),
                            a["why"].as_str().unwrap_or("")
                        );
                    }
                    let skips = plan["skips"].as_array().cloned().unwrap_or_default();
                    for s in skips
                        .iter()
                        .chain(l["skip"].as_object().map(|_| &l["skip"]))
                    {
                        println!(
                            "   decided skip [{}] {}",
                            s["reason"].as_str().unwrap_or("?"),
                            s["detail"].as_str().unwrap_or("")
                        );
                    }
                    if l["completion"]["completed"] == true {
                        println!(
                            "   completed: breaker tripped; {} CNAME {}",
                            l["completion"]["record"]["name"].as_str().unwrap_or("-"),
                            l["completion"]["record"]["value"].as_str().unwrap_or("-")
                        );
                    }
                }
            }
            autonomic_testkit::Invocation::Error {
                error_type,
                error_message,
            } => println!("   error   {error_type}: {error_message}"),
        }
        let after = global_writer(sdk, "orders").await.unwrap_or_default();
        println!("   writer  {before} -> {after}");
    }
    println!(
        "\n   read back from the emulator: writer {}, {record} CNAME {}",
        global_writer(sdk, "orders").await.unwrap_or_default(),
        cname(sdk, &zone, record).await.unwrap_or_default()
    );
    println!(
        "   the breaker stays tripped until an operator deletes breaker#aurora-promoter#orders from {TABLE}"
    );
}

async fn k8s_rollout(moto: &Moto, sdk: &aws_config::SdkConfig) {
    use autonomic_testkit::estate::create_eks_cluster;
    use autonomic_testkit::kube_stand_in::{
        KubeStandIn, TokenCheck, eks_clusters_document, seed_demo,
    };
    println!(
        "\n== k8s-rollout (an EKS cluster in moto, served by the Kubernetes API stand-in: no API server can run here) =="
    );
    create_eks_cluster(sdk, "shop").await;
    let kube = KubeStandIn::start(TokenCheck::EksPresigned {
        cluster: "shop".into(),
    })
    .await;
    seed_demo(&kube);
    // The rollouts take a moment, as on a cluster, so the verification is seen waiting.
    kube.set_rollout_delay(Duration::from_millis(1500));
    let clusters = eks_clusters_document(&kube, "shop", "shop");
    println!(
        "   namespace shop: web (semver:>=1.0.0), web-canary (releases and candidates), storefront (opted in, managed by Argo CD), worker (not opted in); all on 1.3.0"
    );
    let f = start_function(
        "k8s-rollout",
        moto,
        &[
            ("ROLLOUT_CLUSTERS", clusters.as_str()),
            ("STATE_TABLE_NAME", TABLE),
            ("MAX_EVENT_AGE_SECONDS", "0"),
            ("ROLLOUT_POLL_SECONDS", "1"),
        ],
    )
    .await;
    let tag = |name: &str| {
        let image = kube.image("shop", name);
        let short = image.rsplit('/').next().unwrap_or_default();
        short.split_once('@').map_or(short.to_string(), |(t, d)| {
            format!("{t}@{}", &d[..d.len().min(19)])
        })
    };
    let steps: &[(&str, &str)] = &[
        (
            "eventbridge-ecr-multiarch-1-amd64.json",
            "a multi-arch push begins: the amd64 manifest, untagged",
        ),
        (
            "eventbridge-ecr-multiarch-3-attestation.json",
            "its attestation manifest, untagged",
        ),
        ("eventbridge-ecr-image-push-rc.json", "1.4.0-rc1 is pushed"),
        ("eventbridge-ecr-image-push-release.json", "1.4.0 is pushed"),
        (
            "eventbridge-ecr-image-push-release.json",
            "EventBridge delivers the 1.4.0 push again",
        ),
        (
            "eventbridge-ecr-multiarch-4-index.json",
            "1.5.0 (the multi-arch index) is pushed, and its pods never become ready",
        ),
        ("eventbridge-ecr-image-delete.json", "an image is deleted"),
    ];
    for (sample, what) in steps {
        if sample.contains("multiarch-4") {
            kube.set_failing_image("ca0d460b0eaf");
        }
        let before: Vec<String> = ["web", "web-canary", "storefront"]
            .iter()
            .map(|n| tag(n))
            .collect();
        // The function's timeout in infra/: a roll is started only with time to watch it.
        let answer = f
            .api
            .invoke_within(
                event(sample).to_string().into_bytes(),
                Duration::from_secs(300),
            )
            .await;
        println!("\n-- {what}\n   event   events/{sample}");
        match answer {
            autonomic_testkit::Invocation::Response(r) => {
                for l in r["workloads"].as_array().into_iter().flatten() {
                    let detail = l["detail"].as_str().or(l["failure"].as_str()).unwrap_or("");
                    let reason = l["reason"]
                        .as_str()
                        .map(|r| format!(" [{r}]"))
                        .unwrap_or_default();
                    println!(
                        "   {:<22} {}{reason} {detail}",
                        l["workload"].as_str().unwrap_or("?"),
                        l["outcome"].as_str().unwrap_or("?"),
                    );
                }
                if r["workloads"].as_array().is_none_or(Vec::is_empty) {
                    for s in r["skips"].as_array().into_iter().flatten() {
                        println!(
                            "   skipped [{}] {}",
                            s["reason"].as_str().unwrap_or("?"),
                            s["detail"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            autonomic_testkit::Invocation::Error {
                error_type,
                error_message,
            } => println!("   error   {error_type}: {error_message}"),
        }
        for (name, before) in ["web", "web-canary", "storefront"].iter().zip(before) {
            let after = tag(name);
            if after != before {
                println!("   image   {name}: {before} -> {after}");
            }
        }
    }
    println!(
        "\n   read back from the stand-in: web {}, web-canary {}, storefront {}, worker {}",
        tag("web"),
        tag("web-canary"),
        tag("storefront"),
        tag("worker")
    );
    println!(
        "   1.5.0's digest is recorded as bad for web and web-canary (registry#k8s-rollout-bad#shop/shop/<name> in {TABLE}): no later push of it rolls them"
    );
}
