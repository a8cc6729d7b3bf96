#!/usr/bin/env bash
# Installs the AWS emulator (moto server) into .venv/moto the first time it is needed.
# Safe to call from several test binaries at once: the install runs under a lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv/moto"
# moto 5.2.1 answers HTTP 500 on CodePipeline executions; 5.2.5 is the first version we measured good.
spec='moto[server]>=5.2.5,<6'
mkdir -p "$root/.venv"
exec 9>"$root/.venv/moto.lock"
flock 9
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto, sys; v = tuple(int(x) for x in moto.__version__.split(".")[:3]); sys.exit(v < (5, 2, 5))' 2>/dev/null; then
  exit 0
fi
echo "installing $spec into $venv (first run only)" >&2
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2
"$venv/bin/python" -c 'import moto; print("moto", moto.__version__, "ready")' >&2
