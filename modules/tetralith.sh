#!/usr/bin/env bash
# chunkwise environment on NSC Tetralith. `source modules/tetralith.sh`.
# (H) = NSC docs, (M)/(L) = unverified: check with `module avail hdf5`.
module purge >/dev/null 2>&1 || true
module load buildenv-gcc/2023b-eb                # (H) GCC + OpenMPI build environment
module load HDF5/1.12.2-hpc1 2>/dev/null || true # (M) seen with buildenv-intel; check a gcc/OpenMPI build exists
# No Rust module known: use rustup in $HOME
# (curl https://sh.rustup.rs -sSf | sh), then `cargo build --release`.
if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
# hdf5-metno-sys finds HDF5 through HDF5_DIR: point it at the module's prefix
# (see `module show HDF5/...`) if the module does not set it.
if [ -z "${HDF5_DIR:-}" ]; then echo "modules/tetralith.sh: set HDF5_DIR to the MPI HDF5 prefix" >&2; fi
