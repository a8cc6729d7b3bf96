//! The benchmark runs, and both sides of each function make the same AWS calls. Only that: the
//! figures it prints are never asserted (timing lives in the benchmark, not in tests).
#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use autonomic_benchmarks::Subject;
use autonomic_testkit::workspace_root;

/// The Python peers' interpreter, installed on first use as the benchmark script installs it.
fn python() -> PathBuf {
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/ensure-benchmark-python.sh"))
        .output()
        .expect("run scripts/ensure-benchmark-python.sh");
    assert!(
        out.status.success(),
        "ensure-benchmark-python.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn one_short_run_of_every_function_with_the_same_calls_on_both_sides() {
    let runner = PathBuf::from(env!("CARGO_BIN_EXE_side-by-side"));
    // The function binaries built next to the runner (`cargo build --workspace --bins`).
    let rust_dir = runner.parent().expect("profile directory");
    let out = Command::new(&runner)
        .args(["--runs", "1", "--events", "3", "--rust-dir"])
        .arg(rust_dir)
        .arg("--python")
        .arg(python())
        .output()
        .expect("run side-by-side");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "side-by-side failed:\n{stdout}\n{stderr}"
    );
    for subject in Subject::all() {
        let f = subject.function();
        assert!(
            stdout.contains(&format!("{f}: both sides made the same AWS calls")),
            "{f}: no call check in\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("\n{f}: 1 runs per side")),
            "{f}: no figures in\n{stdout}"
        );
    }
}
