//! The planner on the `events/` samples and the example routes, and property tests of the tag
//! filters, the templates and the tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeSet;
use std::time::Duration;

use autonomic::events::parse_ecr_event;
use autonomic_testkit::{event, workspace_root};
use pipeline_trigger::planner::{self, PipelineShape, Settings, client_request_token};
use pipeline_trigger::routes::{Routes, TagFilter, parse_version};
use pipeline_trigger::template::{Image, Template};
use proptest::prelude::*;

fn example_routes() -> Routes {
    let text = std::fs::read_to_string(
        workspace_root().join("functions/pipeline-trigger/routes.example.json"),
    )
    .unwrap();
    Routes::parse(&text).unwrap()
}

const NO_AGE_LIMIT: Settings = Settings {
    max_event_age: None,
};

fn plan(sample: &str) -> autonomic::Plan<planner::Start> {
    let e = parse_ecr_event(&event(sample)).unwrap();
    planner::plan(&e, &example_routes(), NO_AGE_LIMIT, 0)
}

#[test]
fn the_samples_with_the_example_routes() {
    let release = plan("eventbridge-ecr-image-push-release.json");
    assert!(release.skips.is_empty());
    let [start] = release.actions.as_slice() else {
        panic!("{release:?}")
    };
    assert_eq!(start.pipeline, "autonomic-demo-release");
    assert_eq!(start.variables["IMAGE_TAG"], "1.4.0");
    assert_eq!(start.variables["RELEASE_LINE"], "1.4");
    assert!(
        start.variables["IMAGE_URI"]
            .starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com/autonomic-demo/web@sha256:")
    );
    assert_eq!(start.source_revision.as_ref().unwrap().action_name, "Image");

    let rc = plan("eventbridge-ecr-image-push-rc.json");
    let pipelines: Vec<_> = rc.actions.iter().map(|s| s.pipeline.as_str()).collect();
    assert_eq!(pipelines, ["autonomic-demo-staging"]);

    // The same digest as the release push under another tag: the same claim (re-tags are
    // skipped by default), another token.
    let retag = plan("eventbridge-ecr-image-push-retag.json");
    assert_eq!(retag.actions[0].claim_key, start.claim_key);
    assert_ne!(
        retag.actions[0].client_request_token,
        start.client_request_token
    );

    for (sample, reason) in [
        ("eventbridge-ecr-image-push.json", "unrouted"),
        ("eventbridge-ecr-image-push-untagged.json", "untagged"),
        ("eventbridge-ecr-image-push-failed.json", "push_failed"),
        ("eventbridge-ecr-image-delete.json", "not_a_push"),
        ("eventbridge-ecr-image-archive.json", "not_a_push"),
        ("eventbridge-ecr-replication.json", "other_ecr_event"),
        ("eventbridge-ecr-image-scan.json", "other_ecr_event"),
    ] {
        let p = plan(sample);
        assert!(p.actions.is_empty(), "{sample}");
        assert_eq!(p.skips[0].reason, reason, "{sample}");
    }
}

#[test]
fn an_old_push_is_stale() {
    let e = parse_ecr_event(&event("eventbridge-ecr-image-push-release.json")).unwrap();
    let autonomic::events::EcrEvent::ImageAction(push) = &e else {
        panic!()
    };
    let settings = Settings {
        max_event_age: Some(Duration::from_secs(3600)),
    };
    let fresh = planner::plan(&e, &example_routes(), settings, push.time_ms + 3_599_000);
    assert_eq!(fresh.actions.len(), 1);
    let stale = planner::plan(&e, &example_routes(), settings, push.time_ms + 3_601_000);
    assert_eq!(stale.skips[0].reason, "stale");
}

#[test]
fn a_pipeline_two_routes_name_starts_once() {
    let routes = Routes::parse(
        r#"{"routes": [
        {"name": "a", "repository": "autonomic-demo/web", "pipelines": ["p", "q"]},
        {"name": "b", "repository": "autonomic-demo/*", "pipelines": ["q"]}]}"#,
    )
    .unwrap();
    let e = parse_ecr_event(&event("eventbridge-ecr-image-push-release.json")).unwrap();
    let p = planner::plan(&e, &routes, NO_AGE_LIMIT, 0);
    let pipelines: Vec<_> = p.actions.iter().map(|s| s.pipeline.as_str()).collect();
    assert_eq!(pipelines, ["p", "q"]);
    assert_eq!(p.skips[0].reason, "routed_twice");
}

#[test]
fn checks_against_the_pipeline_declaration() {
    let start = plan("eventbridge-ecr-image-push-release.json")
        .actions
        .remove(0);
    let declared = |vars: &[&str], actions: &[&str], kind: &str| PipelineShape {
        pipeline_type: kind.into(),
        variables: vars.iter().map(|s| s.to_string()).collect(),
        ecr_source_actions: actions.iter().map(|s| s.to_string()).collect(),
    };
    let all = ["IMAGE_TAG", "IMAGE_URI", "RELEASE_LINE"];
    assert!(planner::check(&start, &declared(&all, &["Image"], "V2")).is_ok());
    let code = |shape| planner::check(&start, &shape).unwrap_err().code;
    assert_eq!(code(declared(&all, &["Image"], "V1")), "PipelineNotV2");
    assert_eq!(
        code(declared(&all[..2], &["Image"], "V2")),
        "UndeclaredVariable"
    );
    assert_eq!(
        code(declared(&all, &["Source"], "V2")),
        "NoSuchSourceAction"
    );
    let mut long = start.clone();
    long.variables.insert("IMAGE_TAG".into(), "x".repeat(1001));
    assert_eq!(
        planner::check(&long, &declared(&all, &["Image"], "V2"))
            .unwrap_err()
            .code,
        "InvalidVariableValue"
    );
}

fn version() -> impl Strategy<Value = (u64, u64, u64)> {
    (0u64..5, 0u64..20, 0u64..20)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// A `>=` range never takes a lower version, and takes every release at or above it.
    #[test]
    fn a_semver_floor_is_never_crossed(floor in version(), tag in version(), v_prefix: bool, pre: bool) {
        let req = format!(">={}.{}.{}", floor.0, floor.1, floor.2);
        let filter = TagFilter::Semver(semver::VersionReq::parse(&req).unwrap());
        let text = format!("{}{}.{}.{}{}", if v_prefix { "v" } else { "" }, tag.0, tag.1, tag.2, if pre { "-rc1" } else { "" });
        let matched = filter.matches(&text).is_some();
        if tag < floor {
            prop_assert!(!matched, "{text} matched {req}");
        }
        if tag >= floor && !pre {
            prop_assert!(matched, "{text} did not match {req}");
            prop_assert_eq!(filter.matches(&text).unwrap().unwrap(), parse_version(&text).unwrap());
        }
        if pre && tag != floor {
            prop_assert!(!matched, "prerelease {text} matched {req}");
        }
    }

    /// Values are inserted as they are: braces or anything else in a tag never become template
    /// syntax.
    #[test]
    fn templates_insert_values_verbatim(tag in "\\PC{1,40}", repository in "[a-z/{}]{1,20}", digest in "sha256:[0-9a-f]{8}") {
        let t = Template::parse("{repository}:{tag}@{digest} {{literal}}").unwrap();
        let image = Image { repository: &repository, digest: &digest, tag: &tag, account: "1", region: "r", version: None };
        prop_assert_eq!(t.render(&image), format!("{repository}:{tag}@{digest} {{literal}}"));
    }

    /// Any text either parses into known values or is an error; it never panics.
    #[test]
    fn template_parsing_is_total(text in "\\PC{0,40}") {
        if let Ok(t) = Template::parse(&text) {
            prop_assert!(t.values().all(|v| !v.name().is_empty() && v.name() != "?"));
        }
    }

    /// The token is a valid clientRequestToken, the same for the same start, and differs when any
    /// part of it does.
    #[test]
    fn tokens_are_valid_stable_and_distinct(parts in proptest::collection::vec("[a-z0-9:./-]{1,12}", 4), other in "[a-z0-9]{1,12}", which in 0usize..4) {
        let token = client_request_token(&parts[0], &parts[1], &parts[2], &parts[3]);
        prop_assert!(token.len() <= 128 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        prop_assert_eq!(&token, &client_request_token(&parts[0], &parts[1], &parts[2], &parts[3]));
        let mut changed = parts.clone();
        changed[which] = format!("{}{other}", changed[which]);
        prop_assert_ne!(token, client_request_token(&changed[0], &changed[1], &changed[2], &changed[3]));
    }

    /// Every planned start is a pipeline of a route that takes the push, each pipeline once.
    #[test]
    fn starts_come_only_from_matching_routes(tag in "(v?[0-9]\\.[0-9]{1,2}\\.[0-9](-rc[0-9])?|latest|main-[a-f0-9]{4})", repo in "(autonomic-demo/(web|api)|web|other/x)") {
        let mut payload = event("eventbridge-ecr-image-push-release.json");
        payload["detail"]["image-tag"] = tag.clone().into();
        payload["detail"]["repository-name"] = repo.clone().into();
        let e = parse_ecr_event(&payload).unwrap();
        let routes = example_routes();
        let p = planner::plan(&e, &routes, NO_AGE_LIMIT, 0);
        let mut seen = BTreeSet::new();
        for s in &p.actions {
            prop_assert!(seen.insert(s.pipeline.clone()), "{} twice", s.pipeline);
            let route = routes.routes.iter().find(|r| r.spec.name == s.route).unwrap();
            prop_assert!(route.repository.matches(&repo) && route.tags.matches(&tag).is_some());
        }
        let any_route = routes.routes.iter().any(|r| r.repository.matches(&repo) && r.tags.matches(&tag).is_some());
        prop_assert_eq!(p.actions.is_empty(), !any_route);
    }
}

/// Which execution an uncertain start made: by its variables, by the pushed digest as its source
/// revision, and only by time when the start carries neither.
#[test]
fn an_uncertain_start_is_identified_by_what_it_passed() {
    use pipeline_trigger::planner::{
        CLOCK_SKEW_MS, ExecutionSeen, Identified, SourceRevision, identifies,
    };
    let mut start = pipeline_trigger::planner::Start {
        route: "release".into(),
        pipeline: "web".into(),
        repository: "autonomic-demo/web".into(),
        digest: "sha256:aa".into(),
        tag: "1.4.0".into(),
        variables: [("IMAGE_TAG".to_string(), "1.4.0".to_string())].into(),
        source_revision: Some(SourceRevision {
            action_name: "Image".into(),
            image_digest: "sha256:aa".into(),
        }),
        client_request_token: "t".into(),
        claim_key: "k".into(),
    };
    let at = 1_000_000;
    let seen = |started_ms: i64,
                trigger: Option<&str>,
                revision: Option<&str>,
                tag: Option<&str>| ExecutionSeen {
        id: "e".into(),
        started_ms,
        trigger_type: trigger.map(str::to_string),
        source_revisions: revision
            .map(|r| vec![("Image".to_string(), r.to_string())])
            .unwrap_or_default(),
        variables: tag.map(|t| [("IMAGE_TAG".to_string(), t.to_string())].into()),
    };
    let api = Some("StartPipelineExecution");
    assert_eq!(
        identifies(&start, at, &seen(at, api, None, None)),
        Identified::NeedsVariables
    );
    assert_eq!(
        identifies(&start, at, &seen(at, api, None, Some("1.4.0"))),
        Identified::Yes("variables")
    );
    assert_eq!(
        identifies(&start, at, &seen(at, api, None, Some("1.3.9"))),
        Identified::No
    );
    assert_eq!(
        identifies(&start, at, &seen(at, api, Some("sha256:bb"), Some("1.4.0"))),
        Identified::No,
        "another digest"
    );
    assert_eq!(
        identifies(&start, at, &seen(at, Some("Webhook"), None, Some("1.4.0"))),
        Identified::No,
        "not started by the API"
    );
    assert_eq!(
        identifies(
            &start,
            at,
            &seen(at - CLOCK_SKEW_MS - 1, api, None, Some("1.4.0"))
        ),
        Identified::No,
        "before the request"
    );
    assert_eq!(
        identifies(
            &start,
            at,
            &seen(at - CLOCK_SKEW_MS, api, None, Some("1.4.0"))
        ),
        Identified::Yes("variables"),
        "within the clocks' skew"
    );
    start.variables.clear();
    assert_eq!(
        identifies(&start, at, &seen(at, api, Some("sha256:aa"), None)),
        Identified::Yes("source revision")
    );
    assert_eq!(
        identifies(&start, at, &seen(at, None, None, None)),
        Identified::Yes("time")
    );
    start.source_revision = None;
    assert_eq!(
        identifies(&start, at, &seen(at, api, Some("sha256:bb"), None)),
        Identified::Yes("time")
    );
}
