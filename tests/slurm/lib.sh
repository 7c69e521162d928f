# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts
# Shared helpers for start.sh / stop.sh / smoke.sh (local two-node Slurm).
# Sourced, not run: `source "$(dirname "$0")/lib.sh"`.

CW_STATE="${CHUNKWISE_SLURM_STATE:-/tmp/chunkwise-slurm}"
case "$CW_STATE" in /*) ;; *) CW_STATE="$PWD/$CW_STATE" ;; esac
CW_RUN="$CW_STATE/run"          # our own pid files: <name>.pid
CW_CONF="$CW_STATE/slurm.conf"
CW_NODES="n1 n2"
CW_PORTS="6817 6818 17001 17002" # slurmctld, default slurmd, n1, n2

cw_log() { echo "chunkwise-slurm: $*" >&2; }
cw_die() { cw_log "ERROR: $*"; exit 1; }

# cw_alive PID COMM: true if PID runs (not zombie/dead) and its comm is COMM
# (guards against PID reuse). PID 1 does not reap here, so killed daemons can
# linger as zombies: kill -0 would lie.
cw_alive() {
    local pid="$1" comm="$2"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
    cw_pid_alive "$pid"
}

# cw_pid_alive PID: true if PID runs (not zombie/dead), whatever its name —
# for a child still exec'ing (setsid -> setpriv -> munged) whose name changes.
cw_pid_alive() {
    local pid="$1" stat st
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    st="${stat##*) }"; st="${st%% *}"
    case "$st" in Z|X|x) return 1 ;; esac
    return 0
}

# cw_pid NAME: recorded PID of our daemon NAME (munged, slurmctld, slurmd-n1..)
cw_pid() { cat "$CW_RUN/$1.pid" 2>/dev/null || true; }

# cw_comm NAME: process name the daemon NAME must have.
cw_comm() { case "$1" in slurmd-*) echo slurmd ;; *) echo "$1" ;; esac; }

# cw_running NAME: our recorded daemon NAME is alive.
cw_running() { cw_alive "$(cw_pid "$1")" "$(cw_comm "$1")"; }

# cw_our_pids: every alive PID we recorded, one per line.
cw_our_pids() {
    local n
    for n in munged slurmctld $(for x in $CW_NODES; do echo "slurmd-$x"; done); do
        if cw_running "$n"; then cw_pid "$n"; fi
    done
}

# cw_port_holders PORT: PIDs holding a listening TCP socket on PORT (from
# /proc, so it needs neither ss nor netstat; one find, no fork per fd).
cw_port_holders() {
    local hex inodes
    hex="$(printf '%04X' "$1")"
    inodes="$(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p {print $10}' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null | tr '\n' ' ')"
    [ -n "${inodes// /}" ] || return 0
    { find /proc/[0-9]*/fd -maxdepth 1 -type l -lname 'socket:*' -printf '%h %l\n' 2>/dev/null || true; } |
        awk -v inodes="$inodes" '
            BEGIN { n = split(inodes, a, " "); for (i = 1; i <= n; i++) want["socket:[" a[i] "]"] = 1 }
            ($2 in want) { split($1, b, "/"); print b[3] }' | sort -u
}

# cw_stop_pid NAME: SIGTERM our daemon NAME, wait up to 10 s, then SIGKILL.
cw_stop_pid() {
    local name="$1" pid comm i
    pid="$(cw_pid "$name")"; comm="$(cw_comm "$name")"
    if cw_alive "$pid" "$comm"; then
        cw_log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            cw_alive "$pid" "$comm" || break
            sleep 0.1
        done
        if cw_alive "$pid" "$comm"; then
            cw_log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$CW_RUN/$name.pid"
}

# cw_stop_slurm_daemons: stop our slurmd's then slurmctld (not munged).
cw_stop_slurm_daemons() {
    local n
    for n in $CW_NODES; do
        cw_stop_pid "slurmd-$n"
        rm -f "$CW_STATE/slurmd-$n.pid"
    done
    cw_stop_pid slurmctld
    rm -f "$CW_STATE/slurmctld.pid"
}

# cw_tail_logs: last lines of every log, for failure reports.
cw_tail_logs() {
    local f
    for f in "$CW_STATE"/*.log "$CW_STATE"/*.out; do
        [ -s "$f" ] || continue
        # NAME.out repeats NAME.log for the Slurm daemons: show it only alone.
        case "$f" in *.out) [ -s "${f%.out}.log" ] && continue ;; esac
        echo "----- tail $f -----" >&2
        tail -n 20 "$f" >&2
    done
}
