#!/usr/bin/env bash
# Smoke test of the local two-node Slurm: start.sh, then
#   srun -N 2 -n 2 hostname                  (one task on each of n1, n2)
#   sbatch --wait  (-N 2 --ntasks-per-node=1, `srun hostname` inside)
#   srun --mpi=pmix -N 2 --ntasks-per-node=2 <MPI program>
#        (if mpicc is installed: a C MPI_Allreduce over 4 ranks on n1+n2)
# and stop.sh on exit, whatever happened. Exit 0 on success.
#
#   bash tests/slurm/smoke.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

trap 'bash "$HERE/stop.sh"' EXIT
bash "$HERE/start.sh" >/dev/null
# shellcheck source=/dev/null
source "$CW_STATE/env.sh"

work="$CW_STATE/smoke"
rm -rf "$work"; mkdir -p "$work"
host="$(hostname)"
fails=0
check() {   # check NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        echo "ok: $1"
    else
        echo "FAIL: $1"; echo "  expected: $(tr '\n' '|' <<<"$2")"
        echo "  actual:   $(tr '\n' '|' <<<"$3")"; fails=$((fails + 1))
    fi
}

# 1. interactive srun across both nodes
out="$(timeout 60 srun -N 2 -n 2 hostname 2>&1)" || true
check "srun -N 2 -n 2 hostname" "$(printf '%s\n%s' "$host" "$host")" "$out"
# shellcheck disable=SC2016
out="$(timeout 60 srun -N 2 -n 2 sh -c 'echo $SLURMD_NODENAME' 2>&1 | sort)" || true
check "srun -N 2 -n 2 places one task per node" "$(printf 'n1\nn2')" "$out"

# 2. batch job, waited for
cat >"$work/job.sh" <<'EOF'
#!/usr/bin/env bash
#SBATCH -N 2 --ntasks-per-node=1
#SBATCH -J cw-smoke
set -euo pipefail
srun hostname
srun sh -c 'echo "node=$SLURMD_NODENAME btl=$OMPI_MCA_btl"' | sort
EOF
rc=0
timeout 120 sbatch --wait -o "$work/job.out" "$work/job.sh" >"$work/sbatch.out" 2>&1 || rc=$?
check "sbatch --wait exit status" 0 "$rc"
check "sbatch job output" \
    "$(printf '%s\n%s\nnode=n1 btl=self,tcp\nnode=n2 btl=self,tcp' "$host" "$host")" \
    "$(cat "$work/job.out" 2>/dev/null || cat "$work/sbatch.out")"

# 3. a real MPI program over pmix across both nodes (needs OpenMPI's mpicc)
if command -v mpicc >/dev/null 2>&1; then
    cat >"$work/mpi_hello.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    int rank, size, sum = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    const char *node = getenv("SLURMD_NODENAME");
    printf("rank %d/%d on %s sum %d\n", rank, size, node ? node : "?", sum);
    MPI_Finalize();
    return 0;
}
EOF
    mpicc -O1 -o "$work/mpi_hello" "$work/mpi_hello.c"
    out="$(timeout 120 srun --mpi=pmix -N 2 --ntasks-per-node=2 "$work/mpi_hello" 2>&1 | sort)" || true
    check "srun --mpi=pmix -N 2 --ntasks-per-node=2 mpi_hello (Allreduce)" \
        "$(printf 'rank 0/4 on n1 sum 6\nrank 1/4 on n1 sum 6\nrank 2/4 on n2 sum 6\nrank 3/4 on n2 sum 6')" \
        "$out"
else
    echo "skip: MPI program (no mpicc)"
fi

if (( fails )); then
    cw_tail_logs
    echo "smoke: $fails check(s) failed"
    exit 1
fi
echo "smoke: all checks passed"
