#!/usr/bin/env bash
# Re-render every committed job script with `chunkwise jobscript`.
# Usage: bash jobscripts/render.sh   (after cargo build --release)
# The test suite fails when a committed script differs from what this renders.
set -euo pipefail
cd "$(dirname "$0")/.."
CW=target/release/chunkwise
r() { local out=$1; shift; mkdir -p "$(dirname "$out")"; "$CW" jobscript -o "$out" --force "$@"; }

# site  account-placeholder  node  ranks-per-node  largest scaling rank count
while read -r site account node rpn maxr; do
  ranks=$(awk -v m="$maxr" 'BEGIN{s="1"; for(r=2;r<=m;r*=2) s=s","r; print s}')
  r "jobscripts/$site/reduce.sh" --cluster "$site" --account "$account" --node "$node" \
    --nodes 1 --ntasks-per-node "$rpn" --cpus-per-task 4 --time 00:30:00 \
    -- reduce data/default.h5 --var temperature --op count,sum,mean,std,min,max --json
  r "jobscripts/$site/scaling-strong.sh" --cluster "$site" --account "$account" --node "$node" \
    --nodes 2 --ntasks-per-node "$rpn" --cpus-per-task 4 --time 02:00:00 --job-name scaling-strong \
    -- scaling run --mode strong --ranks "$ranks" --repeat 3 --out scaling-strong \
    -- reduce data/default.h5 --var temperature --op mean,std,min,max
  r "jobscripts/$site/scaling-weak.sh" --cluster "$site" --account "$account" --node "$node" \
    --nodes 2 --ntasks-per-node "$rpn" --cpus-per-task 4 --time 02:00:00 --job-name scaling-weak \
    -- scaling run --mode weak --ranks "$ranks" --bytes-per-rank 2GB --repeat 3 --out scaling-weak \
    -- reduce --op mean,std,min,max
done <<'SITES'
kebnekaise hpc2n2026-XXX zen3 32 64
cosmos lu2026-X-XX lu48 12 24
pelle uppmax2026-2-XXX pelle 12 24
tetralith naiss2026-X-XX thin 8 16
SITES

# The local test Slurm (tests/slurm/start.sh): 2 emulated nodes, 1 rank each.
r jobscripts/local/reduce.sh --cluster local --account local --nodes 2 --ntasks-per-node 1 \
  --cpus-per-task 1 --time 00:05:00 --job-name reduce \
  -- reduce data/default.h5 --var temperature --op count,sum,mean,std,min,max --json
r jobscripts/local/scaling-strong.sh --cluster local --account local --nodes 2 --ntasks-per-node 2 \
  --cpus-per-task 1 --time 00:30:00 --job-name scaling-strong \
  -- scaling run --mode strong --ranks 1,2,4 --repeat 3 --out scaling-strong \
  -- reduce data/default.h5 --var temperature --op mean,std,min,max
r jobscripts/local/scaling-weak.sh --cluster local --account local --nodes 2 --ntasks-per-node 2 \
  --cpus-per-task 1 --time 00:30:00 --job-name scaling-weak \
  -- scaling run --mode weak --ranks 1,2,4 --bytes-per-rank 256MB --repeat 3 --out scaling-weak \
  -- reduce --op mean,std,min,max
