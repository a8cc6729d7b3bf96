#!/usr/bin/env bash
# Installs the offline Terraform checkers the first time they are needed:
#   .venv/infra    pytest, tfparse (resolves variables, locals, jsonencode), python-hcl2 (syntax)
#   .venv/checkov  checkov (its own virtualenv: it pins an older boto3 than anything else wants)
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
install infra tfparse 'pytest>=8,<10' 'tfparse>=0.6.22,<0.7' 'python-hcl2>=7,<9'
install checkov checkov 'checkov>=3.2,<4'
