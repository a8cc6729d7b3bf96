//! The Table `kubectl get deployments` asks for (`Accept: ...;as=Table`), with kubectl's short
//! ages.
//!
//! Separate: a kubectl presentation format, not part of the Deployment API itself.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

pub(super) fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// The Table `kubectl get deployments` asks for: NAME READY UP-TO-DATE AVAILABLE AGE (and, with
/// `-o wide`, CONTAINERS IMAGES SELECTOR).
pub(super) fn table(
    items: &[Value],
    resource_version: u64,
    include: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let column = |name: &str, kind: &str, format: &str, priority: u8| json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority});
    let rows: Vec<Value> = items
        .iter()
        .map(|d| {
            let status = &d["status"];
            let count = |v: &Value| v.as_i64().unwrap_or(0);
            let containers = d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let joined = |field: &str| {
                containers
                    .iter()
                    .filter_map(|c| c[field].as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let selector = d["spec"]["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let age = d["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| human_age(now.signed_duration_since(t.with_timezone(&Utc))))
                .unwrap_or_else(|| "<unknown>".to_string());
            let mut row = json!({
                "cells": [
                    d["metadata"]["name"],
                    format!("{}/{}", count(&status["readyReplicas"]), count(&d["spec"]["replicas"])),
                    count(&status["updatedReplicas"]),
                    count(&status["availableReplicas"]),
                    age,
                    joined("name"),
                    joined("image"),
                    selector
                ]
            });
            match include {
                Some("None") => {}
                Some("Object") => row["object"] = d.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": d["metadata"]
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": [
            column("Name", "string", "name", 0),
            column("Ready", "string", "", 0),
            column("Up-to-date", "integer", "", 0),
            column("Available", "integer", "", 0),
            column("Age", "string", "", 0),
            column("Containers", "string", "", 1),
            column("Images", "string", "", 1),
            column("Selector", "string", "", 1)
        ],
        "rows": rows
    })
}

/// kubectl's short ages: `45s`, `3m20s`, `42m`, `5h3m`, `30h`, `12d`.
fn human_age(age: TimeDelta) -> String {
    let s = age.num_seconds().max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 == 0 => format!("{m}m"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 && m % 60 == 0 => format!("{h}h"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ => format!("{d}d"),
    }
}
