//! Query strings (percent-decoded) and the field and label selectors lists and watches are
//! filtered with.
//!
//! Separate: both the routes and the EKS token check (a presigned URL's query) read them.

use serde_json::Value;

pub(super) struct Query(pub(super) Vec<(String, String)>);

impl Query {
    pub(super) fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn selects(&self, object: &Value) -> bool {
        self.get("fieldSelector")
            .is_none_or(|s| field_selector_matches(s, object))
            && self
                .get("labelSelector")
                .is_none_or(|s| label_selector_matches(s, object))
    }
}

/// Decodes `%XX` escapes (and `+` as a space, as in a form-encoded query). A broken escape is
/// kept as it is: the check that follows fails on it.
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `metadata.name` and `metadata.namespace` terms (`=`, `==`, `!=`), as `kubectl rollout status`
/// sends them; other fields are not filtered on.
fn field_selector_matches(selector: &str, object: &Value) -> bool {
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            let (field, want, negate) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, false)
            } else {
                return true;
            };
            let actual = match field.trim() {
                "metadata.name" => object["metadata"]["name"].as_str(),
                "metadata.namespace" => object["metadata"]["namespace"].as_str(),
                _ => return true,
            };
            (actual == Some(want.trim())) != negate
        })
}

/// Equality-based label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`); a set-based one (`in`,
/// `notin`) is not evaluated and selects everything.
fn label_selector_matches(selector: &str, object: &Value) -> bool {
    if selector.contains('(') {
        return true;
    }
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels[k.trim()].is_null()
            } else {
                !labels[term].is_null()
            }
        })
}
