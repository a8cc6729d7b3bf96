//! The size budget of the deployment packages `scripts/build-zips.sh` builds
//! (`target/lambda/<function>/bootstrap.zip`, arm64).

use std::path::Path;

/// Each function's arm64 zip may be at most this many bytes (3 MB).
pub const ZIP_BUDGET_BYTES: u64 = 3_000_000;

/// Each function's zip size, and whether it is within the budget; an error names a function whose
/// zip is missing.
pub fn check(lambda_dir: &Path, functions: &[&str]) -> Result<Vec<(String, u64, bool)>, String> {
    functions
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
