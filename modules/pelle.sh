#!/usr/bin/env bash
# chunkwise environment on UPPMAX Pelle. `source modules/pelle.sh`.
# (H) = UPPMAX docs, (L) = unverified: check with `module spider HDF5`.
module purge >/dev/null 2>&1 || true
module load OpenMPI/5.0.3-GCC-13.3.0             # (H) 2024a toolchain
module load HDF5/1.14.5-gompi-2024a              # (L) the MPI build
# No Rust module documented: use rustup in $HOME
# (curl https://sh.rustup.rs -sSf | sh), then `cargo build --release`.
if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if [ -n "${EBROOTHDF5:-}" ]; then export HDF5_DIR="$EBROOTHDF5"; fi
