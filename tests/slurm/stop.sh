#!/usr/bin/env bash
# Tear down the private Slurm that tests/slurm/start.sh brought up:
# cancel remaining jobs, then stop ONLY the daemons it recorded (slurmd n1/n2,
# slurmctld, and munged if it started one) and remove their pid files.
# Idempotent; a no-op when nothing runs. Logs and config stay in the state dir.
#
#   bash tests/slurm/stop.sh   # same CHUNKWISE_SLURM_STATE as start.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

if cw_running slurmctld && [ -f "$CW_CONF" ]; then
    export SLURM_CONF="$CW_CONF"
    jobs="$(timeout 10 squeue -h -o %A 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
        cw_log "cancelling jobs: $(tr '\n' ' ' <<<"$jobs")"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        # Give slurmd time to kill the steps (bounded).
        for ((i = 0; i < 50; i++)); do
            [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null || true)" ] && break
            sleep 0.2
        done
    fi
fi

cw_stop_slurm_daemons
if [ -f "$CW_RUN/munged.pid" ]; then
    cw_stop_pid munged
fi
rm -f "$CW_STATE/env.sh"
rmdir "$CW_RUN" 2>/dev/null || true
cw_log "stopped (state kept in $CW_STATE)"
