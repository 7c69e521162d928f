#!/usr/bin/env bash
# Quick start on a workstation: set up, build, generate the default dataset
# (4096 x 8192 f64 = 256 MiB, chunks 256 x 8192) once, then reduce it with
# 2 MPI ranks. Usage: bash jobscripts/local/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=modules/local.sh
source modules/local.sh
cargo build --release --locked
if [ "$(id -u)" -eq 0 ]; then
    # OpenMPI refuses to run as root unless told; containers often are root.
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mkdir -p data
if [ ! -f data/default.h5 ]; then
    mpirun -n 2 --oversubscribe target/release/chunkwise generate data/default.h5 \
        --var temperature --shape 4096,8192 --chunks 256,8192 --dist normal:15,8 --seed 1
fi
mpirun -n 2 --oversubscribe target/release/chunkwise reduce data/default.h5 \
    --var temperature --op count,sum,mean,std,min,max
