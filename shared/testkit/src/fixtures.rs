//! The sample payloads in `events/`, shared by unit tests, end-to-end tests and the demo.

use std::path::PathBuf;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

pub fn events_dir() -> PathBuf {
    workspace_root().join("events")
}

/// The text of `events/<name>` (malformed samples are not valid JSON).
pub fn event_text(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `events/<name>` parsed as JSON.
pub fn event(name: &str) -> serde_json::Value {
    serde_json::from_str(&event_text(name)).unwrap_or_else(|e| panic!("parse events/{name}: {e}"))
}

/// The names of the samples whose file name starts with `prefix`, sorted.
pub fn events_with_prefix(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .expect("read events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}
