//! The size budget of the deployment packages `scripts/build-zips.sh` builds
//! (`target/lambda/<function>/bootstrap.zip`, arm64).

use std::path::Path;

/// Each function's arm64 zip may be at most this many bytes (3 MB).
pub const ZIP_BUDGET_BYTES: u64 = 3_000_000;

/// Every function of the workspace: each crate under `functions/`, as `scripts/build-zips.sh`
/// finds them.
pub fn functions() -> Result<Vec<String>, String> {
    let dir = autonomic_testkit::workspace_root().join("functions");
    let mut names = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    names.sort();
    Ok(names)
}

/// Each function's zip size, and whether it is within the budget; an error names a function whose
/// zip is missing.
pub fn check(lambda_dir: &Path) -> Result<Vec<(String, u64, bool)>, String> {
    functions()?
        .iter()
        .map(|f| {
            let zip = lambda_dir.join(f).join("bootstrap.zip");
            let bytes = std::fs::metadata(&zip)
                .map_err(|e| format!("{}: {e} (run scripts/build-zips.sh)", zip.display()))?
                .len();
            Ok((f.to_string(), bytes, bytes <= ZIP_BUDGET_BYTES))
        })
        .collect()
}
