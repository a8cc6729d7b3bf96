#!/usr/bin/env bash
# Deploys everything in one command: builds the arm64 zips (scripts/build-zips.sh), then applies
# infra/ with terraform (or tofu). Arguments go to `apply` (for example -var-file=prod.tfvars).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Checked first: building takes minutes, and is wasted without a way to apply.
tf="$(command -v terraform || command -v tofu || true)"
if [ -z "$tf" ]; then
  echo "scripts/deploy.sh needs terraform or tofu on PATH to apply infra/" >&2
  exit 1
fi
bash scripts/build-zips.sh
"$tf" -chdir=infra init -input=false
"$tf" -chdir=infra apply "$@"
