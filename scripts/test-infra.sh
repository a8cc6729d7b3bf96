#!/usr/bin/env bash
# Offline checks of infra/: HCL syntax, checkov, and the tests that compare the Terraform with the
# code (tfparse). The IAM tests read the operations the Rust tests recorded in
# target/autonomic-operations/, so run this after `cargo test` (scripts/test.sh does).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-infra-tools.sh

echo "checkov (security checks; every skip in infra/ carries its reason)" >&2
# Without CKV_PARSE_ERROR_FAIL, checkov exits 0 on a syntax error.
BC_SKIP_MAPPING=TRUE CKV_PARSE_ERROR_FAIL=true .venv/checkov/bin/checkov -d infra \
  --framework terraform --skip-download --compact --quiet

echo "pytest infra/tests" >&2
.venv/infra/bin/python -m pytest -q infra/tests
