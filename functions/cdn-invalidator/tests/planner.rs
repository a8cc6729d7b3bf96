//! The planner's invariants under proptest: no path lost, limits never exceeded, collapse only
//! where a folder is crowded, caller references independent of order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test scaffolding: a panic is the failure report

use std::collections::BTreeSet;

use cdn_invalidator::paths::{PathSet, is_wildcard};
use cdn_invalidator::planner::{
    InProgress, MAX_FILES_IN_PROGRESS, MAX_PATHS_PER_CALL, MAX_WILDCARDS_IN_PROGRESS, Part,
    plan_segment, segments,
};
use proptest::prelude::*;

fn any_path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..4usize, 0..12usize).prop_map(|(d, f)| format!("/d{d}/f{f}.js")),
        2 => (0..12usize).prop_map(|f| format!("/f{f}.html")),
        1 => (0..4usize).prop_map(|d| format!("/d{d}/*")),
        1 => (0..3usize, 0..3usize).prop_map(|(d, s)| format!("/d{d}/s{s}/*")),
    ]
}

fn any_parts() -> impl Strategy<Value = Vec<Part>> {
    prop::collection::vec(prop::collection::vec(any_path(), 1..6), 1..40).prop_map(|messages| {
        messages
            .into_iter()
            .enumerate()
            .map(|(i, paths)| Part {
                message: i,
                message_id: format!("m{i}"),
                distribution: "E1".into(),
                paths,
            })
            .collect()
    })
}

fn any_in_progress() -> impl Strategy<Value = InProgress> {
    prop_oneof![
        Just(InProgress::default()),
        (2950..=MAX_FILES_IN_PROGRESS, 10..=MAX_WILDCARDS_IN_PROGRESS)
            .prop_map(|(files, wildcards)| InProgress { files, wildcards }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_path_is_lost_and_limits_hold(parts in any_parts(), in_progress in any_in_progress(), threshold in 1usize..8, one_call in any::<bool>()) {
        let plan = plan_segment(&parts, in_progress, threshold, one_call);
        prop_assert!(!one_call || plan.actions.len() <= 1);
        let deferred: BTreeSet<usize> = plan
            .skips
            .iter()
            .map(|d| parts.iter().find(|p| p.message_id == d.target).unwrap().message)
            .collect();
        // Limits, counting what is already in progress.
        let files: usize = plan.actions.iter().map(|c| c.paths.len() - c.wildcards()).sum();
        let wildcards: usize = plan.actions.iter().map(|c| c.wildcards()).sum();
        prop_assert!(in_progress.files + files <= MAX_FILES_IN_PROGRESS);
        prop_assert!(in_progress.wildcards + wildcards <= MAX_WILDCARDS_IN_PROGRESS);
        prop_assert!(plan.actions.iter().all(|c| !c.paths.is_empty() && c.paths.len() <= MAX_PATHS_PER_CALL));
        // Every path of every message is sent (covered by a call listing that message) or its
        // message is deferred with a reason; deferred messages are a suffix (order kept).
        for part in &parts {
            if deferred.contains(&part.message) {
                continue;
            }
            for path in &part.paths {
                let covered = plan.actions.iter().any(|c| {
                    c.messages.contains(&part.message)
                        && PathSet::reduce(c.paths.iter().map(String::as_str)).covers(path)
                });
                prop_assert!(covered, "{} of message {} not covered", path, part.message);
            }
        }
        if let Some(first) = deferred.iter().next() {
            prop_assert!(deferred.iter().copied().eq(*first..parts.len()));
            prop_assert!(plan.skips.iter().all(|d| d.reason == "deferred" && !d.detail.is_empty()));
        }
        // Nothing beyond what was asked: each sent path is an input path, or the wildcard of a
        // folder that held more than `threshold` input files; never the root.
        let inputs: BTreeSet<&str> = parts.iter().flat_map(|p| p.paths.iter().map(String::as_str)).collect();
        for c in &plan.actions {
            for p in &c.paths {
                if inputs.contains(p.as_str()) {
                    continue;
                }
                prop_assert!(is_wildcard(p) && p != "/*", "{} was never asked for", p);
                let folder = p.trim_end_matches('*');
                let crowd = inputs.iter().filter(|i| !is_wildcard(i) && i.starts_with(folder) && !i[folder.len()..].contains('/')).count();
                prop_assert!(crowd > threshold, "{} collapsed from only {} files", p, crowd);
            }
        }
    }

    #[test]
    fn caller_references_do_not_depend_on_order(parts in any_parts(), seed in any::<u64>()) {
        let plan = plan_segment(&parts, InProgress::default(), 4, false);
        // The same messages in another order, each message's paths reversed.
        let mut shuffled = parts.clone();
        let n = shuffled.len();
        for i in 0..n {
            let j = (seed as usize).wrapping_mul(31).wrapping_add(i * 17) % n;
            shuffled.swap(i, j);
        }
        shuffled.iter_mut().for_each(|p| p.paths.reverse());
        let again = plan_segment(&shuffled, InProgress::default(), 4, false);
        let refs = |p: &autonomic::Plan<cdn_invalidator::planner::InvalidationCall>| p.actions.iter().map(|c| c.caller_reference.clone()).collect::<BTreeSet<_>>();
        prop_assert_eq!(refs(&plan), refs(&again));
    }

    #[test]
    fn segments_keep_every_part(parts in any_parts(), fifo in any::<bool>()) {
        let mut parts = parts;
        for (i, p) in parts.iter_mut().enumerate() {
            p.distribution = format!("E{}", i % 3);
        }
        let segs = segments(parts.clone(), fifo);
        prop_assert_eq!(segs.iter().map(Vec::len).sum::<usize>(), parts.len());
        prop_assert!(segs.iter().all(|s| s.iter().all(|p| p.distribution == s[0].distribution)));
        if fifo {
            // Runs in message order.
            let order: Vec<usize> = segs.iter().flatten().map(|p| p.message).collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
