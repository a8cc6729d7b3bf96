#!/usr/bin/env bash
# Installs cargo-lambda (and zig, which it links arm64 binaries with) into .venv/cargo-lambda the
# first time it is needed, and prints the directory to put on PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv/cargo-lambda"
mkdir -p "$root/.venv"
exec 9>"$root/.venv/cargo-lambda.lock"
flock 9
if ! [ -x "$venv/bin/cargo-lambda" ] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "installing cargo-lambda and ziglang into $venv (first run only)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cargo-lambda>=1.8,<2' 'ziglang>=0.13,<1' >&2
fi
echo "$venv/bin"
