//! From a batch of resolved messages to CreateInvalidation calls: pure, no I/O, no clock.
//!
//! A batch's messages become *parts* (one message, one distribution, its normalised paths). Parts
//! are grouped into *segments*: per distribution for a standard queue; for a FIFO queue, runs of
//! consecutive parts on one distribution, so that calls go out in message order. Each segment is
//! planned within CloudFront's in-progress limits: the longest prefix of its parts that fits is
//! sent; the rest is deferred (reported failed, retried by SQS).

use std::collections::BTreeSet;

use serde::Serialize;
use sha2::{Digest, Sha256};

use autonomic::{Plan, Skip};

use crate::paths::PathSet;

/// CloudFront's limits on invalidations in progress per distribution.
pub const MAX_FILES_IN_PROGRESS: usize = 3000;
pub const MAX_WILDCARDS_IN_PROGRESS: usize = 15;
/// The most paths we put in one CreateInvalidation call.
pub const MAX_PATHS_PER_CALL: usize = 3000;

/// Paths already in progress on a distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InProgress {
    pub files: usize,
    pub wildcards: usize,
}

impl InProgress {
    fn room(&self) -> (usize, usize) {
        (
            MAX_FILES_IN_PROGRESS.saturating_sub(self.files),
            MAX_WILDCARDS_IN_PROGRESS.saturating_sub(self.wildcards),
        )
    }
}

/// One message's paths on one distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The message's index in the batch.
    pub message: usize,
    /// The message's SQS id: the same on every redelivery of the message.
    pub message_id: String,
    pub distribution: String,
    /// Normalised paths.
    pub paths: Vec<String>,
}

/// One CreateInvalidation call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationCall {
    pub distribution: String,
    /// Derived from the distribution, the paths and the ids of the messages carried, so a
    /// redelivered batch sends the same reference (CloudFront then makes no second invalidation)
    /// while a later request for the same paths, a new message, makes a new one.
    pub caller_reference: String,
    pub paths: Vec<String>,
    /// The messages whose paths this call carries (indexes in the batch).
    pub messages: BTreeSet<usize>,
}

impl InvalidationCall {
    pub fn wildcards(&self) -> usize {
        self.paths.iter().filter(|p| p.ends_with('*')).count()
    }
}

/// The skip reason of a message whose paths do not fit in CloudFront's limits now.
pub const DEFERRED: &str = "deferred";

/// Groups parts into segments, in order of their first message.
pub fn segments(parts: Vec<Part>, fifo: bool) -> Vec<Vec<Part>> {
    let mut out: Vec<Vec<Part>> = Vec::new();
    for part in parts {
        let slot = if fifo {
            out.last_mut()
                .filter(|s| s[0].distribution == part.distribution)
        } else {
            out.iter_mut()
                .find(|s| s[0].distribution == part.distribution)
        };
        match slot {
            Some(s) => s.push(part),
            None => out.push(vec![part]),
        }
    }
    out
}

fn reduced(parts: &[Part], threshold: usize, max_wildcards: usize) -> PathSet {
    PathSet::reduce(
        parts
            .iter()
            .flat_map(|p| p.paths.iter().map(String::as_str)),
    )
    .collapse(threshold, max_wildcards)
}

/// Plans one segment (all parts on one distribution) given what is in progress there: the calls
/// to make, and a `deferred` skip (target: the message id) for each message that does not fit. On a FIFO
/// queue (`one_call`) the segment goes out in at most one call, so that a failed call can never
/// leave a later message of the run submitted; what does not fit in it is deferred, in order.
pub fn plan_segment(
    parts: &[Part],
    in_progress: InProgress,
    collapse_threshold: usize,
    one_call: bool,
) -> Plan<InvalidationCall> {
    let Some(first) = parts.first() else {
        return Plan::default();
    };
    let distribution = &first.distribution;
    let (file_room, wildcard_room) = in_progress.room();
    let fits = |k: usize| {
        let set = reduced(&parts[..k], collapse_threshold, wildcard_room);
        set.file_count() <= file_room
            && set.wildcard_count() <= wildcard_room
            && (!one_call || set.file_count() + set.wildcard_count() <= MAX_PATHS_PER_CALL)
    };
    // The longest prefix of parts that fits (binary search, then a walk down in case collapsing
    // made the count non-monotonic).
    let (mut lo, mut hi) = (0, parts.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) { lo = mid } else { hi = mid - 1 }
    }
    let mut k = lo;
    while k > 0 && !fits(k) {
        k -= 1;
    }
    let deferred: Vec<Skip> = parts[k..]
        .iter()
        .map(|p| {
            Skip::new(
                &p.message_id,
                DEFERRED,
                format!(
                    "CloudFront allows {MAX_FILES_IN_PROGRESS} file paths and {MAX_WILDCARDS_IN_PROGRESS} wildcard paths in progress per distribution; {distribution} has {} and {} in progress, and this message's paths do not fit in what is left{}",
                    in_progress.files,
                    in_progress.wildcards,
                    if one_call { " (on a FIFO queue, a run of messages goes out in one call of at most 3000 paths)" } else { "" }
                ),
            )
        })
        .collect();
    let admitted = &parts[..k];
    if admitted.is_empty() {
        return Plan {
            actions: vec![],
            skips: deferred,
        };
    }
    let set = reduced(admitted, collapse_threshold, wildcard_room);
    let mut calls: Vec<InvalidationCall> = set
        .paths()
        .chunks(MAX_PATHS_PER_CALL)
        .map(|chunk| InvalidationCall {
            distribution: distribution.clone(),
            caller_reference: String::new(),
            paths: chunk.to_vec(),
            messages: BTreeSet::new(),
        })
        .collect();
    // Which call carries each message's paths: the one holding the path itself or its wildcard.
    for part in admitted {
        for path in &part.paths {
            let target = set.covering(path).map(|prefix| format!("{prefix}*"));
            let target = target.as_deref().unwrap_or(path);
            if let Some(call) = calls
                .iter_mut()
                .find(|c| c.paths.binary_search_by(|p| cmp_paths(p, target)).is_ok())
            {
                call.messages.insert(part.message);
            }
        }
    }
    for call in &mut calls {
        let ids: Vec<&str> = admitted
            .iter()
            .filter(|p| call.messages.contains(&p.message))
            .map(|p| p.message_id.as_str())
            .collect();
        call.caller_reference = caller_reference(distribution, &call.paths, &ids);
    }
    Plan {
        actions: calls,
        skips: deferred,
    }
}

/// The order of [`PathSet::paths`]: wildcards first, then files, each sorted.
fn cmp_paths(a: &str, b: &str) -> std::cmp::Ordering {
    (!a.ends_with('*'), a).cmp(&(!b.ends_with('*'), b))
}

/// `autonomic-` + the first 32 hex digits of SHA-256 over the distribution, the sorted paths and
/// the sorted message ids.
pub fn caller_reference(distribution: &str, paths: &[String], message_ids: &[&str]) -> String {
    let mut sorted_paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    sorted_paths.sort_unstable();
    let mut sorted_ids = message_ids.to_vec();
    sorted_ids.sort_unstable();
    sorted_ids.dedup();
    let mut h = Sha256::new();
    h.update(distribution.as_bytes());
    for p in sorted_paths {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    // A separator no path or id contains.
    h.update(b"\n\0");
    for id in sorted_ids {
        h.update(b"\n");
        h.update(id.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("autonomic-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(message: usize, dist: &str, paths: &[&str]) -> Part {
        Part {
            message,
            message_id: format!("m{message}"),
            distribution: dist.into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn standard_segments_group_by_distribution_and_fifo_keeps_order() {
        let parts = vec![
            part(0, "A", &["/a"]),
            part(1, "B", &["/b"]),
            part(2, "A", &["/c"]),
        ];
        let s = segments(parts.clone(), false);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].iter().map(|p| p.message).collect::<Vec<_>>(), [0, 2]);
        let f = segments(parts, true);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn one_call_carries_a_whole_segment() {
        let plan = plan_segment(
            &[part(0, "A", &["/a", "/b"]), part(1, "A", &["/b", "/c"])],
            InProgress::default(),
            50,
            false,
        );
        assert_eq!(plan.actions.len(), 1);
        assert_eq!(plan.actions[0].paths, ["/a", "/b", "/c"]);
        assert_eq!(plan.actions[0].messages, BTreeSet::from([0, 1]));
        assert!(plan.skips.is_empty());
    }

    #[test]
    fn what_does_not_fit_the_limits_is_deferred_in_order() {
        let in_progress = InProgress {
            files: 2998,
            wildcards: 0,
        };
        let plan = plan_segment(
            &[
                part(0, "A", &["/a"]),
                part(1, "A", &["/b", "/c"]),
                part(2, "A", &["/d"]),
            ],
            in_progress,
            50,
            false,
        );
        assert_eq!(plan.actions[0].paths, ["/a"]);
        assert_eq!(
            plan.skips
                .iter()
                .map(|d| d.target.as_str())
                .collect::<Vec<_>>(),
            ["m1", "m2"]
        );
        assert!(plan.skips[0].detail.contains("2998"));
        // Nothing fits: everything is deferred, no call.
        let full = plan_segment(
            &[part(0, "A", &["/x/*"])],
            InProgress {
                files: 0,
                wildcards: 15,
            },
            50,
            false,
        );
        assert!(full.actions.is_empty());
        assert_eq!(full.skips.len(), 1);
    }

    #[test]
    fn a_fifo_run_goes_out_in_one_call_and_defers_the_rest_in_order() {
        let files: Vec<String> = (0..2995).map(|i| format!("/f{i}.html")).collect();
        let wildcards: Vec<String> = (0..10).map(|i| format!("/w{i}/*")).collect();
        let parts = [
            Part {
                message: 0,
                message_id: "m0".into(),
                distribution: "A".into(),
                paths: files,
            },
            Part {
                message: 1,
                message_id: "m1".into(),
                distribution: "A".into(),
                paths: wildcards,
            },
        ];
        // Within the limits (2,995 files, 10 wildcards) but 3,005 paths: two calls on a standard queue.
        let standard = plan_segment(&parts, InProgress::default(), 5000, false);
        assert_eq!(standard.actions.len(), 2);
        assert!(standard.skips.is_empty());
        // On a FIFO queue, one call; the later message waits its turn.
        let fifo = plan_segment(&parts, InProgress::default(), 5000, true);
        assert_eq!(fifo.actions.len(), 1);
        assert_eq!(fifo.actions[0].messages, BTreeSet::from([0]));
        assert_eq!(
            fifo.skips
                .iter()
                .map(|d| d.target.as_str())
                .collect::<Vec<_>>(),
            ["m1"]
        );
    }

    #[test]
    fn the_caller_reference_depends_on_content_not_order() {
        let a = caller_reference("A", &["/x".into(), "/y".into()], &["m1", "m2"]);
        assert_eq!(
            a,
            caller_reference("A", &["/y".into(), "/x".into()], &["m2", "m1"])
        );
        assert_ne!(
            a,
            caller_reference("B", &["/x".into(), "/y".into()], &["m1", "m2"])
        );
        assert_ne!(a, caller_reference("A", &["/x".into()], &["m1", "m2"]));
        // The same paths asked for again by a new message are a new invalidation.
        assert_ne!(
            a,
            caller_reference("A", &["/x".into(), "/y".into()], &["m3"])
        );
        assert!(a.starts_with("autonomic-") && a.len() == 42);
    }
}
