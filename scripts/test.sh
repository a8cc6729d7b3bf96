#!/usr/bin/env bash
# Every check: formatting, lints, unit, emulator and end-to-end tests, infra checks. Installs what
# it needs on first run (moto into .venv/moto; pytest, tfparse, python-hcl2, checkov into .venv/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all --check

step "AWS emulator (moto server) in .venv/moto"
bash scripts/ensure-moto.sh

step "the test kit's stand-ins for what moto lacks (RDS global switchover/failover, health-check observations)"
.venv/moto/bin/python shared/testkit/test_moto_stand_ins.py

step "build the function binaries (the end-to-end tests run them)"
cargo build --workspace --bins

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "no import cycles between modules"
python3 scripts/check-module-cycles.py

step "cargo test (unit, emulator, end to end; they record the AWS operations each function calls)"
rm -rf target/autonomic-operations
cargo test --workspace

step "every sample in events/ through cargo lambda watch and cargo lambda invoke (events/local.env)"
bash scripts/invoke-samples.sh

step "infra checks (syntax, checkov, Terraform against the code, cargo lambda deploy against the emulator)"
bash scripts/test-infra.sh
