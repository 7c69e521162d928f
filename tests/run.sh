#!/usr/bin/env bash
# The whole test suite (the README's test command; CI runs it on a fresh clone):
#   1. the pure core crate on its own, before any system library is set up:
#      its dependency tree must hold no hdf5, mpi, clap or libc, and its unit
#      and property tests run without libhdf5 or OpenMPI;
#   2. set-up (idempotent: Debian packages, the test venv), formatting and
#      lints (clippy warnings are errors);
#   3. every test of the workspace: unit tests plus real `mpirun` runs of the
#      built binary.
# Usage: bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

echo "== 1/3 chunkwise-core alone (no HDF5, MPI, clap or libc)"
banned="$(cargo tree -p chunkwise-core -e normal --prefix none --locked | grep -Ei '^(hdf5|mpi|clap|libc)' || true)"
if [ -n "$banned" ]; then
    echo "chunkwise-core depends on: $banned" >&2
    exit 1
fi
env -u HDF5_DIR -u LD_LIBRARY_PATH cargo test -p chunkwise-core --release --locked
# …and its test programs link neither libhdf5 nor libmpi.
for exe in $(cargo test -p chunkwise-core --release --locked --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p'); do
    if ldd "$exe" | grep -Ei 'libhdf5|libmpi'; then
        echo "$exe links HDF5 or MPI" >&2
        exit 1
    fi
done

echo "== 2/3 set-up, format, lints"
# shellcheck source=modules/local.sh
source modules/local.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --release --locked -- -D warnings

echo "== 3/3 build and test the workspace"
cargo build --release --locked
cargo test --workspace --release --locked -- --test-threads=2
