#!/usr/bin/env bash
# The side-by-side benchmark, in one command: each function's release binary and its Python/boto3
# peer (benchmarks/python/) under the same Lambda Runtime API emulator and moto, after a check that
# both sides make the same AWS calls; then init, first and warm invocation, CPU, peak RSS and cost.
# It also builds the arm64 zips (scripts/build-zips.sh) and checks each against the 3 MB budget.
#
#   scripts/benchmark.sh                      # everything (a cold first run builds for ~25 minutes)
#   scripts/benchmark.sh --no-zips            # skip the arm64 build and the size budget
#   scripts/benchmark.sh --runs 5 --functions asg-scaler
#
# Other arguments go to the runner (benchmarks/src/main.rs): --runs N (15), --events N (21 per
# run: the first and 20 warm), --functions a,b.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
zips=1
args=()
for arg in "$@"; do
  if [ "$arg" = "--no-zips" ]; then zips=0; else args+=("$arg"); fi
done
bash scripts/ensure-moto.sh
python="$(bash scripts/ensure-benchmark-python.sh)"
if [ "$zips" = 1 ]; then
  bash scripts/build-zips.sh >&2
  args+=(--zips target/lambda)
fi
# The binaries that run here (this machine's architecture), built as they are deployed: release.
cargo build --release --bin asg-scaler --bin cdn-invalidator --bin pipeline-trigger --bin aurora-promoter >&2
cargo run --quiet -p autonomic-benchmarks --bin side-by-side -- \
  --rust-dir target/release --python "$python" "${args[@]}"
