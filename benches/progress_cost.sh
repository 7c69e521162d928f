#!/usr/bin/env bash
# Cost of progress reporting on `reduce`: the same reduce of a generated
# 2 GiB file with `--progress none` and with `--progress lines` (a line
# every 0.5 s, so the display and the counts to rank 0 are busy), runs
# interleaved, median of `timings.total_s` (the reduce phase) of each.
#
#   bash benches/progress_cost.sh [RANKS] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q --bin chunkwise
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
P=${1:-2}; R=${2:-7}
BIN=target/release/chunkwise
mkdir -p bench-data
F=bench-data/speed_16384x16384.h5
[ -f "$F" ] || mpirun -n "$P" --oversubscribe $BIN generate "$F" --var a --shape 16384,16384 --chunks 512,16384 --seed 1 --progress none >&2
cat "$F" > /dev/null   # warm the page cache
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
total() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['timings']['total_s'])"; }
none=(); lines=()
for _ in $(seq "$R"); do
  none+=("$(mpirun -n "$P" $BIN reduce "$F" --var a --op mean,std,min,max --json --progress none | total)")
  lines+=("$(mpirun -n "$P" $BIN reduce "$F" --var a --op mean,std,min,max --json --progress lines --progress-interval 0.5s 2>/dev/null | total)")
done
n=$(printf '%s\n' "${none[@]}" | median); l=$(printf '%s\n' "${lines[@]}" | median)
echo "| progress | reduce phase, median of $R (s) | runs |"
echo "|---|---|---|"
echo "| none | $n | ${none[*]} |"
echo "| lines (0.5 s) | $l | ${lines[*]} |"
awk -v n="$n" -v l="$l" 'BEGIN{printf "cost: %+.2f %%\n", 100*(l-n)/n}'
