#!/bin/bash
# chunkwise job for kebnekaise (HPC2N): HPC2N Kebnekaise: node type chosen with -C skylake|zen3|zen4|largemem, no -p
# Rendered by `chunkwise jobscript`; re-render instead of editing. Arguments:
# chunkwise-jobscript-args: ["--cluster","kebnekaise","--account","hpc2n2026-XXX","--node","zen3","--nodes","2","--ntasks-per-node","32","--cpus-per-task","4","--time","02:00:00","--job-name","scaling-weak","--","scaling","run","--mode","weak","--ranks","1,2,4,8,16,32,64","--bytes-per-rank","2GB","--repeat","3","--out","scaling-weak","--","reduce","--op","mean,std,min,max"]
#SBATCH -A hpc2n2026-XXX
#SBATCH -J scaling-weak
#SBATCH -C zen3
#SBATCH -N 2
#SBATCH --ntasks-per-node=32
#SBATCH --cpus-per-task=4
#SBATCH -t 02:00:00
#SBATCH -o scaling-weak-%j.out

set -euo pipefail
# The chunkwise checkout (default: where sbatch was run) and its binary.
CHUNKWISE_HOME="${CHUNKWISE_HOME:-$SLURM_SUBMIT_DIR}"
# shellcheck source=/dev/null
source "$CHUNKWISE_HOME/modules/kebnekaise.sh"
CHUNKWISE="${CHUNKWISE:-$CHUNKWISE_HOME/target/release/chunkwise}"
# chunkwise takes its thread count from SLURM_CPUS_PER_TASK.
echo "job ${SLURM_JOB_ID}: ${SLURM_NNODES} node(s), ${SLURM_NTASKS} rank(s) x ${SLURM_CPUS_PER_TASK} thread(s) on $(hostname)"

# `chunkwise scaling` launches every run itself inside this allocation.
"$CHUNKWISE" scaling run --mode weak --ranks 1,2,4,8,16,32,64 --bytes-per-rank 2GB --repeat 3 --out scaling-weak -- reduce --op mean,std,min,max
"$CHUNKWISE" scaling report scaling-weak
