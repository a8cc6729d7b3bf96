#!/usr/bin/env bash
# Installs the offline Terraform checkers the first time they are needed:
#   .venv/infra    pytest, tfparse (resolves variables, locals, jsonencode), python-hcl2 (syntax),
#                  boto3 (reads back what cargo lambda deploy made in the emulator)
#   .venv/checkov  checkov (its own virtualenv: it pins an older boto3 than anything else wants)
#   .venv/aws-provider-schema  the AWS provider schema (from npm), for infra/tests/tfcheck.py
# No terraform binary can be downloaded here; these run offline.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$root/.venv"
exec 9>"$root/.venv/infra.lock"
flock 9
install() { # venv, marker module, specs...
  local venv="$root/.venv/$1" marker="$2"; shift 2
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $marker" 2>/dev/null; then return; fi
  echo "installing $* into $venv (first run only)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
}
install infra 'tfparse, boto3' 'pytest>=8,<10' 'tfparse>=0.6.22,<0.7' 'python-hcl2>=7,<9' 'boto3>=1.34,<2'
install checkov checkov 'checkov>=3.2,<4'

# The AWS provider's schema, for the offline `terraform validate` (infra/tests/tfcheck.py): built
# from the type description in the npm package @cdktf/provider-aws (generated from the Terraform
# AWS provider 6.x), and kept as a 3 MB JSON file.
schema_version='21.22.1'
schema_dir="$root/.venv/aws-provider-schema"
if [ ! -s "$schema_dir/schema-$schema_version.json" ]; then
  command -v npm >/dev/null || { echo "npm is needed once to fetch @cdktf/provider-aws (the AWS provider schema)" >&2; exit 1; }
  echo "fetching @cdktf/provider-aws@$schema_version and building the provider schema (first run only)" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@cdktf/provider-aws@$schema_version" >/dev/null && tar xzf ./*.tgz package/.jsii)
  mkdir -p "$schema_dir"
  "$root/.venv/infra/bin/python" "$root/infra/tests/provider_schema.py" build "$work/package/.jsii" "$schema_dir/schema-$schema_version.json.tmp"
  mv "$schema_dir/schema-$schema_version.json.tmp" "$schema_dir/schema-$schema_version.json"
  ln -sf "schema-$schema_version.json" "$schema_dir/schema.json"
fi
