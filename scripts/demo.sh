#!/usr/bin/env bash
# The demo: moto + a small estate + each function binary under the Runtime API emulator, fed the
# samples in events/. Installs what it needs on first run (moto into .venv/moto).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-moto.sh
echo "building the function binaries and the demo (the first build takes several minutes)..." >&2
cargo build --workspace --bins --quiet
exec target/debug/demo
