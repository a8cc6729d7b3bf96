//! The simulated Deployment controller: the `status` a real controller would have written by now
//! (replica counts, the `Progressing` condition), which `kubectl rollout status` and k8s-rollout
//! read.
//!
//! Separate from the store: the status is computed on every read from the rollout's timeline
//! (delay, failing image, pause), never stored.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The status the Deployment controller would have written: `rollout` is the time since the
/// current template's rollout started and when it started (`None`: complete since `created`).
pub(super) fn status_of(
    object: &Value,
    created: DateTime<Utc>,
    rollout: Option<(Duration, DateTime<Utc>)>,
    delay: Duration,
    failing_image: Option<&str>,
) -> Value {
    #[derive(PartialEq)]
    enum Phase {
        Progressing,
        Failed,
        Complete,
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let spec = &object["spec"];
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let paused = spec["paused"].as_bool().unwrap_or(false);
    let replica_set = format!("{name}-{}", template_hash(&spec["template"]));
    let fails = failing_image.is_some_and(|bad| {
        ["containers", "initContainers"].iter().any(|list| {
            spec["template"]["spec"][*list]
                .as_array()
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["image"].as_str().is_some_and(|i| i.contains(bad)))
                })
        })
    });
    // (phase, when the Progressing condition last changed, when it was last updated)
    let (phase, transition, update) = match rollout {
        None => (Phase::Complete, created, created),
        Some((_, started_at)) if paused => (Phase::Progressing, started_at, started_at),
        Some((elapsed, started_at)) if elapsed < delay => {
            (Phase::Progressing, started_at, started_at)
        }
        Some((_, started_at)) => {
            let done_at = started_at + TimeDelta::from_std(delay).unwrap_or_default();
            if fails {
                (Phase::Failed, done_at, done_at)
            } else {
                (Phase::Complete, started_at, done_at)
            }
        }
    };
    let (total, updated, ready, available, unavailable) = match phase {
        Phase::Complete => (replicas, replicas, replicas, replicas, 0),
        Phase::Progressing | Phase::Failed => {
            let updated = if replicas == 0 && phase == Phase::Progressing {
                0
            } else {
                1
            };
            (replicas + 1, updated, replicas, replicas, 1)
        }
    };
    let (status, reason, message) = if paused {
        (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".to_string(),
        )
    } else {
        match phase {
            Phase::Progressing => (
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{replica_set}\" is progressing."),
            ),
            Phase::Failed => (
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{replica_set}\" has timed out progressing."),
            ),
            Phase::Complete => (
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
            ),
        }
    };
    json!({
        "observedGeneration": generation,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": timestamp(created),
                "lastTransitionTime": timestamp(created)
            },
            {
                "type": "Progressing",
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": timestamp(update),
                "lastTransitionTime": timestamp(transition)
            }
        ]
    })
}

/// A pod-template-hash lookalike: stable for a template, in the alphabet Kubernetes uses.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in template.to_string().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = ALPHABET[(hash % ALPHABET.len() as u64) as usize] as char;
            hash /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_stand_in::deployment;

    #[test]
    fn status_follows_the_rollout() {
        let mut d = deployment("shop", "web", &[("web", "web:bad")], &[], &[]);
        d["metadata"]["generation"] = json!(3);
        let created = Utc::now();
        let delay = Duration::from_secs(10);

        let s = status_of(
            &d,
            created,
            Some((Duration::from_secs(1), created)),
            delay,
            None,
        );
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(
            (s["updatedReplicas"].as_i64(), s["replicas"].as_i64()),
            (Some(1), Some(3))
        );
        assert_eq!(s["conditions"][1]["reason"], "ReplicaSetUpdated");

        let s = status_of(&d, created, Some((delay, created)), delay, Some("bad"));
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "ProgressDeadlineExceeded");
        assert!(
            s["conditions"][1]["message"]
                .as_str()
                .unwrap()
                .starts_with("ReplicaSet \"web-")
        );

        let s = status_of(&d, created, Some((delay, created)), delay, Some("other"));
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            assert_eq!(s[field], 2, "{field}");
        }
    }
}
