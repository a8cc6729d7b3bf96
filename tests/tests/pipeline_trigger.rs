//! pipeline-trigger end to end: the built binary under the Runtime API emulator, fed the ECR
//! samples in `events/`, against moto's CodePipeline; the executions are asserted in moto.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use autonomic_e2e::start_function;
use autonomic_testkit::estate::{create_pipeline, pipeline_executions, publish_document};
use autonomic_testkit::{Invocation, Moto, create_state_table, event, unique};

#[tokio::test]
async fn every_ecr_sample_through_the_runtime_api() {
    let moto = Moto::shared();
    let sdk = moto.sdk_config().await;
    let release = unique("release");
    let staging = unique("staging");
    create_pipeline(
        &sdk,
        &release,
        "autonomic-demo/web",
        &["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"],
    )
    .await;
    create_pipeline(
        &sdk,
        &staging,
        "autonomic-demo/web",
        &["IMAGE_TAG", "IMAGE_URI"],
    )
    .await;
    let table = unique("state");
    create_state_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await;
    // The example routes, pointed at this test's pipelines, read by reference from SSM as
    // infra/ deploys them.
    let example = std::fs::read_to_string(
        autonomic_testkit::workspace_root().join("functions/pipeline-trigger/routes.example.json"),
    )
    .unwrap()
    .replace("autonomic-demo-release", &release)
    .replace("autonomic-demo-staging", &staging);
    let routes = publish_document(
        &sdk,
        &format!("/{table}/pipeline-trigger/PIPELINE_ROUTES"),
        &example,
    )
    .await;
    let f = start_function(
        "pipeline-trigger",
        moto,
        &[
            ("PIPELINE_ROUTES", routes.as_str()),
            ("STATE_TABLE_NAME", table.as_str()),
            ("MAX_EVENT_AGE_SECONDS", "0"),
        ],
    )
    .await;

    // sample, release executions after, staging executions after
    let steps: &[(&str, usize, usize)] = &[
        ("eventbridge-ecr-image-push-release.json", 1, 0),
        ("eventbridge-ecr-image-push-rc.json", 1, 1),
        ("eventbridge-ecr-image-push-release.json", 1, 1), // the duplicate delivery
        ("eventbridge-ecr-image-push-retag.json", 1, 1),   // the same digest, another tag
        ("eventbridge-ecr-image-push.json", 1, 1),         // an unrouted repository
        ("eventbridge-ecr-image-push-untagged.json", 1, 1),
        ("eventbridge-ecr-image-push-failed.json", 1, 1),
        ("eventbridge-ecr-image-delete.json", 1, 1),
        ("eventbridge-ecr-image-archive.json", 1, 1),
        ("eventbridge-ecr-image-scan.json", 1, 1),
        ("eventbridge-ecr-replication.json", 1, 1),
    ];
    for (sample, want_release, want_staging) in steps {
        let answer = f.api.invoke(&event(sample)).await;
        let Invocation::Response(r) = &answer else {
            panic!("{sample}: {answer:?}")
        };
        assert_eq!(r["function"], "pipeline-trigger", "{sample}");
        assert_eq!(
            pipeline_executions(&sdk, &release).await.len(),
            *want_release,
            "{sample}: release"
        );
        assert_eq!(
            pipeline_executions(&sdk, &staging).await.len(),
            *want_staging,
            "{sample}: staging"
        );
    }
    let (_, variables) = pipeline_executions(&sdk, &release).await.remove(0);
    assert_eq!(variables["IMAGE_TAG"], "1.4.0");
    assert_eq!(variables["RELEASE_LINE"], "1.4");

    // A malformed event is a structured error, and the process lives on.
    let answer = f
        .api
        .invoke(&event("malformed-ecr-missing-repository.json"))
        .await;
    let Invocation::Error { error_type, .. } = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(error_type, "Permanent.InvalidEvent");
    let answer = f
        .api
        .invoke(&event("eventbridge-ecr-image-scan.json"))
        .await;
    assert!(matches!(answer, Invocation::Response(_)), "{answer:?}");
}
