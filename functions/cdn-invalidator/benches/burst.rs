//! A burst of 10,000 SQS messages (invalidation requests, S3 notifications, duplicates) through
//! the invalidator's pure steps: parse, map, normalise, segment, plan. Prints what it would cost
//! against the naive one-call-per-message approach; asserts nothing about speed.
//! Run: `cargo bench -p cdn-invalidator --bench burst`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use cdn_invalidator::config::BucketMapping;
use cdn_invalidator::messages::{Body, Target, parse_body};
use cdn_invalidator::paths::normalize;
use cdn_invalidator::planner::{InProgress, Part, plan_segment, segments};

const MESSAGES: usize = 10_000;
const COLLAPSE_THRESHOLD: usize = 20;

/// A small deterministic generator (no dependency, same burst every run).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn burst() -> Vec<String> {
    let mut rng = Lcg(42);
    let mut bodies: Vec<String> = Vec::with_capacity(MESSAGES);
    while bodies.len() < MESSAGES {
        let roll = rng.next(10);
        let body = if roll < 4 && !bodies.is_empty() {
            // A duplicate delivery or a repeated request.
            bodies[rng.next(bodies.len() as u64) as usize].clone()
        } else if roll < 7 {
            // A request for a few pages of a 2,000-page site in 40 sections.
            let n = 1 + rng.next(4);
            let paths: Vec<String> = (0..n)
                .map(|_| format!("/docs/section{}/page{}.html", rng.next(40), rng.next(50)))
                .collect();
            serde_json::json!({"domain": "static.example.com", "paths": paths, "requester": "cms"})
                .to_string()
        } else {
            // An S3 upload of a build asset.
            let key = format!(
                "public/assets/build{}/chunk{}.js",
                rng.next(3),
                rng.next(400)
            );
            serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "site-assets"}, "object": {"key": key}}}]})
            .to_string()
        };
        bodies.push(body);
    }
    bodies
}

fn main() {
    let bodies = burst();
    let mapping = BucketMapping {
        distribution_id: Some("E2EXAMPLE".into()),
        domain: None,
        strip_prefix: Some("public/".into()),
        path_prefix: None,
    };
    let domains: BTreeMap<&str, &str> = BTreeMap::from([("static.example.com", "E2EXAMPLE")]);

    let start = Instant::now();
    let mut requested = 0usize;
    let mut parts = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        let wanted: Vec<String> = match parse_body(body).unwrap() {
            Body::Request(r) => {
                let Target::Domain(d) = r.target().unwrap() else {
                    unreachable!()
                };
                assert_eq!(domains[d.as_str()], "E2EXAMPLE");
                r.paths
            }
            Body::S3(objects) => objects
                .iter()
                .filter_map(|o| mapping.path_for(&o.key))
                .collect(),
            Body::TestEvent => vec![],
        };
        requested += wanted.len();
        let paths = wanted.iter().map(|p| normalize(p).unwrap()).collect();
        parts.push(Part {
            message: i,
            message_id: format!("burst-{i}"),
            distribution: "E2EXAMPLE".into(),
            paths,
        });
    }
    let parsed = start.elapsed();
    let mut calls = 0;
    let mut billed = 0;
    let mut wildcards = 0;
    let mut deferred = 0;
    for segment in segments(parts, false) {
        let plan = black_box(plan_segment(
            &segment,
            InProgress::default(),
            COLLAPSE_THRESHOLD,
            false,
        ));
        calls += plan.actions.len();
        billed += plan.actions.iter().map(|c| c.paths.len()).sum::<usize>();
        wildcards += plan.actions.iter().map(|c| c.wildcards()).sum::<usize>();
        deferred += plan.skips.len();
    }
    let total = start.elapsed();
    println!(
        "cdn-invalidator burst: {MESSAGES} messages (requests, S3 notifications, 40% duplicates)"
    );
    println!("  CreateInvalidation calls: {calls} (one call per message would be {MESSAGES})");
    println!("  paths billed: {billed} ({wildcards} wildcards) for {requested} paths requested");
    println!("  messages deferred by the limits: {deferred}");
    println!(
        "  planner time: {:.1} ms in all ({:.1} ms parse + normalise, {:.1} ms plan), {:.2} µs per message",
        total.as_secs_f64() * 1e3,
        parsed.as_secs_f64() * 1e3,
        (total - parsed).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e6 / MESSAGES as f64
    );
}
