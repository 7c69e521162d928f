#!/usr/bin/env bash
# chunkwise environment on HPC2N Kebnekaise. `source modules/kebnekaise.sh`
# (job scripts do this). Module names from HPC2N docs (H) and EasyBuild naming
# (L = unverified): check with `module spider HDF5` / `module spider Rust`.
module purge >/dev/null 2>&1 || true
module load GCC/12.3.0 OpenMPI/4.1.5            # (H)
module load HDF5/1.14.0                          # (L) the gompi-2023a build is the MPI one
module load Rust/1.70.0-GCCcore-12.3.0 2>/dev/null || true   # (L) too old for our crates: rustup below
# Our crates need a newer Rust than the modules offer: use rustup in $HOME
# (curl https://sh.rustup.rs -sSf | sh), then `cargo build --release`.
if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
# hdf5-metno-sys finds the MPI build of HDF5 through HDF5_DIR.
if [ -n "${EBROOTHDF5:-}" ]; then export HDF5_DIR="$EBROOTHDF5"; fi
