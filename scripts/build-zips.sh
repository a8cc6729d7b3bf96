#!/usr/bin/env bash
# Builds every function as target/lambda/<function>/bootstrap.zip for provided.al2023 on arm64,
# the layout infra/ expects. Installs cargo-lambda (with zig for linking) into .venv/cargo-lambda
# and the aarch64 Rust target the first time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo_lambda_bin="$(bash scripts/ensure-cargo-lambda.sh)"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
# Every function binary (each crate under functions/ has one of its name), not the demo.
packages=()
if [ $# -eq 0 ]; then
  for dir in functions/*/; do packages+=(--bin "$(basename "$dir")"); done
fi
PATH="$cargo_lambda_bin:$PATH" cargo lambda build --release --arm64 --output-format zip "${packages[@]}" "$@"
ls -l target/lambda/*/bootstrap.zip
