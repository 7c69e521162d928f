#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: unit tests plus real
# `mpirun` runs of the built binary. Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh
cargo build --release --locked
cargo test --release --locked -- --test-threads=2
