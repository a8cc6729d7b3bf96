#!/usr/bin/env bash
# Installs the Python peers' runtime (benchmarks/requirements.txt: awslambdaric, boto3) into
# .venv/benchmarks the first time it is needed, and prints the interpreter's path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv/benchmarks"
requirements="$root/benchmarks/requirements.txt"
mkdir -p "$root/.venv"
exec 9>"$root/.venv/benchmarks.lock"
flock 9
# Reinstall when the requirements changed since the last install.
if ! cmp -s "$requirements" "$venv/requirements.installed" 2>/dev/null; then
  echo "installing the Python peers' runtime into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$venv/requirements.installed"
fi
echo "$venv/bin/python"
