#!/bin/bash
# chunkwise job for cosmos (LUNARC): LUNARC COSMOS: partitions lu48 (default) and lu32; --qos=test for <= 1 h, <= 2 nodes
# Rendered by `chunkwise jobscript`; re-render instead of editing. Arguments:
# chunkwise-jobscript-args: ["--cluster","cosmos","--account","lu2026-X-XX","--node","lu48","--nodes","2","--ntasks-per-node","12","--cpus-per-task","4","--time","02:00:00","--job-name","scaling-strong","--","scaling","run","--mode","strong","--ranks","1,2,4,8,16","--repeat","3","--out","scaling-strong","--","reduce","data/default.h5","--var","temperature","--op","mean,std,min,max"]
#SBATCH -A lu2026-X-XX
#SBATCH -J scaling-strong
#SBATCH -p lu48
#SBATCH -N 2
#SBATCH --ntasks-per-node=12
#SBATCH --cpus-per-task=4
#SBATCH -t 02:00:00
#SBATCH -o scaling-strong-%j.out

set -euo pipefail
# The chunkwise checkout (default: where sbatch was run) and its binary.
CHUNKWISE_HOME="${CHUNKWISE_HOME:-$SLURM_SUBMIT_DIR}"
# shellcheck source=/dev/null
source "$CHUNKWISE_HOME/modules/cosmos.sh"
CHUNKWISE="${CHUNKWISE:-$CHUNKWISE_HOME/target/release/chunkwise}"
# chunkwise takes its thread count from SLURM_CPUS_PER_TASK.
echo "job ${SLURM_JOB_ID}: ${SLURM_NNODES} node(s), ${SLURM_NTASKS} rank(s) x ${SLURM_CPUS_PER_TASK} thread(s) on $(hostname)"

# `chunkwise scaling` launches every run itself inside this allocation.
"$CHUNKWISE" scaling run --launcher mpirun --mode strong --ranks 1,2,4,8,16 --repeat 3 --out scaling-strong -- reduce data/default.h5 --var temperature --op mean,std,min,max
"$CHUNKWISE" scaling report scaling-strong
