//! The strategic merge patch (what a roll of k8s-rollout and `kubectl set image` send), applied
//! to a Deployment as the API server applies it.
//!
//! Separate: a pure JSON transform, the one patch type the `json_patch` crate does not provide.

use serde_json::{Value, json};

/// A strategic merge patch as the API server applies it to a Deployment: objects merge
/// recursively, `null` deletes, `containers` and `initContainers` merge by `name` (an element for
/// a new name is appended, `$patch: delete` removes one), every other list is replaced.
/// `$patch: replace` on an object replaces it; other `$` directives (`$setElementOrder/...`,
/// `$retainKeys`) are ignored.
pub(super) fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = json!({});
        strategic_merge(&mut replacement, &without_directives(patch));
        *target = replacement;
        return;
    }
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            if let Some(o) = target.as_object_mut() {
                o.remove(key);
            }
            continue;
        }
        let merge_by_name = key == "containers" || key == "initContainers";
        match value {
            Value::Array(elements) if merge_by_name && target[key.as_str()].is_array() => {
                merge_list_by_name(&mut target[key.as_str()], elements);
            }
            Value::Array(elements) if merge_by_name => {
                let mut list = json!([]);
                merge_list_by_name(&mut list, elements);
                target[key.as_str()] = list;
            }
            Value::Object(_) => strategic_merge(&mut target[key.as_str()], value),
            _ => target[key.as_str()] = value.clone(),
        }
    }
}

fn merge_list_by_name(target: &mut Value, elements: &[Value]) {
    let Some(list) = target.as_array_mut() else {
        return;
    };
    for element in elements {
        let Some(name) = element["name"].as_str() else {
            list.push(without_directives(element));
            continue;
        };
        let position = list.iter().position(|e| e["name"].as_str() == Some(name));
        let delete = element["$patch"].as_str() == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut list[i], element),
            (None, false) => {
                let mut new = json!({});
                strategic_merge(&mut new, element);
                list.push(new);
            }
        }
    }
}

fn without_directives(value: &Value) -> Value {
    match value.as_object() {
        Some(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        None => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_stand_in::deployment;

    fn container_images(d: &Value) -> Vec<(String, String)> {
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["image"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_replaces_other_lists() {
        let mut d = deployment(
            "shop",
            "web",
            &[("web", "web:1"), ("sidecar", "proxy:1")],
            &[("a", "1"), ("b", "2")],
            &[],
        );
        d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--x", "--y"]);
        let patch = json!({
            "metadata": {"annotations": {"a": null, "c": "3"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                "containers": [
                    {"name": "web", "image": "web:2", "args": ["--z"]},
                    {"name": "new", "image": "new:1"}
                ]
            }}}
        });
        strategic_merge(&mut d, &patch);
        assert_eq!(d["metadata"]["annotations"], json!({"b": "2", "c": "3"}));
        assert_eq!(
            container_images(&d),
            vec![
                ("web".to_string(), "web:2".to_string()),
                ("sidecar".to_string(), "proxy:1".to_string()),
                ("new".to_string(), "new:1".to_string()),
            ]
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["--z"])
        );
        assert_eq!(d["spec"]["replicas"], 2, "untouched fields stay");
        assert!(
            d["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none(),
            "directives are not stored"
        );
    }
}
