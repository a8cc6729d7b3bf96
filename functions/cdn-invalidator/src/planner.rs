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
    pub distribution: String,
    /// Normalised paths.
    pub paths: Vec<String>,
}

/// One CreateInvalidation call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidationCall {
    pub distribution: String,
    /// Derived from the content, so a retried batch sends the same reference and CloudFront does
    /// not create a second invalidation.
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

/// A segment's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SegmentPlan {
    pub calls: Vec<InvalidationCall>,
    /// Messages not sent because of the limits, with the reason.
    pub deferred: Vec<(usize, String)>,
}

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

/// Plans one segment (all parts on one distribution) given what is in progress there.
pub fn plan_segment(
    parts: &[Part],
    in_progress: InProgress,
    collapse_threshold: usize,
) -> SegmentPlan {
    let Some(first) = parts.first() else {
        return SegmentPlan::default();
    };
    let distribution = &first.distribution;
    let (file_room, wildcard_room) = in_progress.room();
    let fits = |k: usize| {
        let set = reduced(&parts[..k], collapse_threshold, wildcard_room);
        set.file_count() <= file_room && set.wildcard_count() <= wildcard_room
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
    let deferred = parts[k..]
        .iter()
        .map(|p| {
            (
                p.message,
                format!(
                    "CloudFront allows {MAX_FILES_IN_PROGRESS} file paths and {MAX_WILDCARDS_IN_PROGRESS} wildcard paths in progress per distribution; {distribution} has {} and {} in progress, and this message's paths do not fit in what is left",
                    in_progress.files, in_progress.wildcards
                ),
            )
        })
        .collect();
    let admitted = &parts[..k];
    if admitted.is_empty() {
        return SegmentPlan {
            calls: vec![],
            deferred,
        };
    }
    let set = reduced(admitted, collapse_threshold, wildcard_room);
    let mut calls: Vec<InvalidationCall> = set
        .paths()
        .chunks(MAX_PATHS_PER_CALL)
        .map(|chunk| InvalidationCall {
            distribution: distribution.clone(),
            caller_reference: caller_reference(distribution, chunk),
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
    SegmentPlan { calls, deferred }
}

/// The order of [`PathSet::paths`]: wildcards first, then files, each sorted.
fn cmp_paths(a: &str, b: &str) -> std::cmp::Ordering {
    (!a.ends_with('*'), a).cmp(&(!b.ends_with('*'), b))
}

/// `autonomic-` + the first 32 hex digits of SHA-256 over the distribution and the sorted paths.
pub fn caller_reference(distribution: &str, paths: &[String]) -> String {
    let mut sorted: Vec<&str> = paths.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let mut h = Sha256::new();
    h.update(distribution.as_bytes());
    for p in sorted {
        h.update(b"\n");
        h.update(p.as_bytes());
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
        );
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].paths, ["/a", "/b", "/c"]);
        assert_eq!(plan.calls[0].messages, BTreeSet::from([0, 1]));
        assert!(plan.deferred.is_empty());
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
        );
        assert_eq!(plan.calls[0].paths, ["/a"]);
        assert_eq!(
            plan.deferred.iter().map(|d| d.0).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(plan.deferred[0].1.contains("2998"));
        // Nothing fits: everything is deferred, no call.
        let full = plan_segment(
            &[part(0, "A", &["/x/*"])],
            InProgress {
                files: 0,
                wildcards: 15,
            },
            50,
        );
        assert!(full.calls.is_empty());
        assert_eq!(full.deferred.len(), 1);
    }

    #[test]
    fn the_caller_reference_depends_on_content_not_order() {
        let a = caller_reference("A", &["/x".into(), "/y".into()]);
        assert_eq!(a, caller_reference("A", &["/y".into(), "/x".into()]));
        assert_ne!(a, caller_reference("B", &["/x".into(), "/y".into()]));
        assert_ne!(a, caller_reference("A", &["/x".into()]));
        assert!(a.starts_with("autonomic-") && a.len() == 42);
    }
}
