#!/bin/bash
# chunkwise job for pelle (UPPMAX): UPPMAX Pelle: one Slurm CPU is one hardware thread, so --threads-per-core=1
# Rendered by `chunkwise jobscript`; re-render instead of editing. Arguments:
# chunkwise-jobscript-args: ["--cluster","pelle","--account","uppmax2026-2-XXX","--node","pelle","--nodes","1","--ntasks-per-node","12","--cpus-per-task","4","--time","00:30:00","--","reduce","data/default.h5","--var","temperature","--op","count,sum,mean,std,min,max","--json"]
#SBATCH -A uppmax2026-2-XXX
#SBATCH -J chunkwise
#SBATCH -p pelle
#SBATCH -N 1
#SBATCH --ntasks-per-node=12
#SBATCH --cpus-per-task=4
#SBATCH --threads-per-core=1
#SBATCH -t 00:30:00
#SBATCH -o chunkwise-%j.out

set -euo pipefail
# The chunkwise checkout (default: where sbatch was run) and its binary.
CHUNKWISE_HOME="${CHUNKWISE_HOME:-$SLURM_SUBMIT_DIR}"
# shellcheck source=/dev/null
source "$CHUNKWISE_HOME/modules/pelle.sh"
CHUNKWISE="${CHUNKWISE:-$CHUNKWISE_HOME/target/release/chunkwise}"
# chunkwise takes its thread count from SLURM_CPUS_PER_TASK.
echo "job ${SLURM_JOB_ID}: ${SLURM_NNODES} node(s), ${SLURM_NTASKS} rank(s) x ${SLURM_CPUS_PER_TASK} thread(s) on $(hostname)"

srun "$CHUNKWISE" reduce data/default.h5 --var temperature --op count,sum,mean,std,min,max --json
