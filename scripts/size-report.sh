#!/usr/bin/env bash
# What each crate costs in each function's binary: cargo-bloat on a release build that keeps its
# symbols (profile size-report), for this machine's architecture (cargo-bloat cannot link the
# arm64 build; the shares are close, the arm64 zip is what scripts/benchmark.sh checks).
# Installs cargo-bloat into .tools/ the first time.
#
#   scripts/size-report.sh                 # every function, the 20 largest crates of each
#   scripts/size-report.sh k8s-rollout 40
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .tools/bin/cargo-bloat ]; then
  echo "installing cargo-bloat into .tools (first run only)" >&2
  cargo install --quiet --locked --root .tools cargo-bloat >&2
fi
functions=("${1:-}")
if [ -z "${functions[0]}" ]; then
  functions=()
  for dir in functions/*/; do functions+=("$(basename "$dir")"); done
fi
for f in "${functions[@]}"; do
  echo "== $f"
  # cargo-bloat runs only as a cargo subcommand; its build output goes to stderr.
  PATH="$PWD/.tools/bin:$PATH" cargo bloat --profile size-report --bin "$f" --crates -n "${2:-20}" 2>/dev/null
done
