#!/usr/bin/env bash
# A local strong and weak scaling study with `chunkwise scaling`, then the
# reports (Markdown tables; SVG/PNG plots in the study directories).
#
#   bash benches/scaling-local.sh [RANKS] [BYTES] [BYTES_PER_RANK] [REPEAT]
#
# Defaults: ranks 1,2 (this is a 2-core machine; more ranks oversubscribe),
# a 512 MiB f64 dataset for the strong study, 256 MiB per rank for the weak one,
# 3 measured runs (plus a warm-up) per rank count, reduce's default block size.
# Results go to bench-data/scaling-{strong,weak}/; re-running resumes there
# (delete the directory, or pass other sizes, for a fresh study).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
RANKS=${1:-1,2}; BYTES=${2:-512MiB}; PER_RANK=${3:-256MiB}; REPEAT=${4:-3}
BIN=target/release/chunkwise
mkdir -p bench-data
$BIN scaling run --mode strong --ranks "$RANKS" --repeat "$REPEAT" --bytes "$BYTES" \
  --launcher mpirun --out bench-data/scaling-strong \
  -- reduce --op mean,std,min,max
$BIN scaling run --mode weak --ranks "$RANKS" --repeat "$REPEAT" --bytes-per-rank "$PER_RANK" \
  --launcher mpirun --out bench-data/scaling-weak \
  -- reduce --op mean,std,min,max
echo
$BIN scaling report bench-data/scaling-strong
$BIN scaling report bench-data/scaling-weak
