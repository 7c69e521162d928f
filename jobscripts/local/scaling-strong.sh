#!/bin/bash
# chunkwise job for local (local): Workstation or the test Slurm from tests/slurm/start.sh
# Rendered by `chunkwise jobscript`; re-render instead of editing. Arguments:
# chunkwise-jobscript-args: ["--cluster","local","--account","local","--nodes","2","--ntasks-per-node","2","--cpus-per-task","1","--time","00:30:00","--job-name","scaling-strong","--","scaling","run","--mode","strong","--ranks","1,2,4","--repeat","3","--out","scaling-strong","--","reduce","data/default.h5","--var","temperature","--op","mean,std,min,max"]
#SBATCH -A local
#SBATCH -J scaling-strong
#SBATCH -p debug
#SBATCH -N 2
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH -t 00:30:00
#SBATCH -o scaling-strong-%j.out

set -euo pipefail
# The chunkwise checkout (default: where sbatch was run) and its binary.
CHUNKWISE_HOME="${CHUNKWISE_HOME:-$SLURM_SUBMIT_DIR}"
# shellcheck source=/dev/null
source "$CHUNKWISE_HOME/modules/local.sh"
CHUNKWISE="${CHUNKWISE:-$CHUNKWISE_HOME/target/release/chunkwise}"
# chunkwise takes its thread count from SLURM_CPUS_PER_TASK.
echo "job ${SLURM_JOB_ID}: ${SLURM_NNODES} node(s), ${SLURM_NTASKS} rank(s) x ${SLURM_CPUS_PER_TASK} thread(s) on $(hostname)"

# `chunkwise scaling` launches every run itself inside this allocation.
"$CHUNKWISE" scaling run --mode strong --ranks 1,2,4 --repeat 3 --out scaling-strong -- reduce data/default.h5 --var temperature --op mean,std,min,max
"$CHUNKWISE" scaling report scaling-strong
