#!/usr/bin/env bash
# chunkwise environment on LUNARC COSMOS. `source modules/cosmos.sh`.
# (H) = LUNARC docs, (L) = unverified: check with `module spider HDF5`.
module purge >/dev/null 2>&1 || true
module load GCC/13.3.0 OpenMPI/5.0.3             # (L) foss/2024a components; GCC/12.3.0 OpenMPI/4.1.5 is (H)
module load HDF5/1.14.5                          # (L) HDF5/1.14.5-gompi-2024a: the MPI build
# No documented Rust module new enough: use rustup in $HOME
# (curl https://sh.rustup.rs -sSf | sh), then `cargo build --release`.
if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if [ -n "${EBROOTHDF5:-}" ]; then export HDF5_DIR="$EBROOTHDF5"; fi
