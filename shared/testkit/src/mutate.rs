//! Arbitrary JSON shaped like the events: proptest strategies that take the samples in `events/`
//! and break them in small ways (a value replaced by one of another type or an extreme one, a key
//! removed, an array emptied, a JSON document inside a string changed in turn). The parsers must
//! answer each with a value or an error, never a panic. This is the fuzzing that runs with the
//! tests; it needs no nightly toolchain.

use proptest::prelude::*;
use serde_json::{Value, json};

/// A leaf value a mutation puts in place of another.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![Just(u64::MAX), Just(0u64), Just(u32::MAX as u64 + 1)].prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just(""),
            Just("1970-01-01T00:00:00Z"),
            Just("9999-12-31T23:59:59.999+0000"),
            Just("2026-11-27T14:00:00.000+9999"),
            Just("/*"),
            Just("*"),
            Just("{\"a\":"),
            Just("[]"),
            Just("%ZZ"),
            Just("\u{0}\u{7f}\u{202e}"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{}])),
    ]
}

/// Every place in `v` (JSON pointers), JSON text inside strings not entered.
fn places(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                places(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                places(child, p, out);
            }
        }
        _ => {}
    }
}

/// One mutation of `v` at the place `select` picks.
fn mutate(v: &mut Value, select: u64, kind: u8, replacement: &Value) {
    let mut all = Vec::new();
    places(v, String::new(), &mut all);
    if all.is_empty() {
        *v = replacement.clone();
        return;
    }
    let at = &all[(select % all.len() as u64) as usize];
    let (parent_at, key) = at.rsplit_once('/').unwrap_or(("", at));
    match kind % 6 {
        // Remove the key, or the array element.
        0 => match v.pointer_mut(parent_at) {
            Some(Value::Object(m)) => {
                m.remove(&key.replace("~1", "/").replace("~0", "~"));
            }
            Some(Value::Array(a)) => {
                if let Ok(i) = key.parse::<usize>()
                    && i < a.len()
                {
                    a.remove(i);
                }
            }
            _ => {}
        },
        // A JSON document inside a string (an SNS Message, an SQS body): break it inside.
        1 => {
            if let Some(node) = v.pointer_mut(at)
                && let Some(mut inner) = node
                    .as_str()
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .filter(|i| i.is_object() || i.is_array())
            {
                mutate(
                    &mut inner,
                    select / 7,
                    (kind / 6).wrapping_add(2),
                    replacement,
                );
                *node = Value::String(inner.to_string());
            }
        }
        // Repeat an array's first element many times.
        2 => {
            if let Some(Value::Array(a)) = v.pointer_mut(at)
                && let Some(first) = a.first().cloned()
            {
                a.extend(std::iter::repeat_n(first, 50));
            }
        }
        // Replace the value.
        _ => {
            if let Some(node) = v.pointer_mut(at) {
                *node = replacement.clone();
            }
        }
    }
}

/// The samples, each broken by one to three mutations.
pub fn mutated(samples: Vec<Value>) -> impl Strategy<Value = Value> {
    let n = samples.len();
    (
        0..n,
        proptest::collection::vec((any::<u64>(), any::<u8>(), leaf()), 1..4),
    )
        .prop_map(move |(i, mutations)| {
            let mut v = samples[i].clone();
            for (select, kind, replacement) in &mutations {
                mutate(&mut v, *select, *kind, replacement);
            }
            v
        })
}

/// The samples in `events/` whose names start with any of `prefixes`.
pub fn samples(prefixes: &[&str]) -> Vec<Value> {
    prefixes
        .iter()
        .flat_map(|p| crate::events_with_prefix(p))
        .filter_map(|name| serde_json::from_str(&crate::event_text(&name)).ok())
        .collect()
}
