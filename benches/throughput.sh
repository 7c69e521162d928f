#!/usr/bin/env bash
# Throughput of `chunkwise reduce` on a >= 1 GiB f64 dataset, printed next to
# the raw read bandwidth of the same file from the page cache (dd).
#
#   bash benches/throughput.sh [ROWS] [COLS] [RANKS]
#
# Default 16384 x 8192 f64 (1 GiB), chunks of 512 rows, 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
ROWS=${1:-16384}; COLS=${2:-8192}; P=${3:-2}
BIN=target/release/chunkwise
mkdir -p bench-data
F=bench-data/bench_${ROWS}x${COLS}.h5
[ -f "$F" ] || mpirun -n "$P" --oversubscribe $BIN generate "$F" --var a --shape "$ROWS,$COLS" --chunks "512,$COLS" --seed 1
# Warm the page cache, then time dd alone.
cat "$F" > /dev/null
dd_out=$(dd if="$F" of=/dev/null bs=16M 2>&1 | tail -1)
bytes=$(stat -c %s "$F")
dd_s=$(echo "$dd_out" | awk -F', ' '{print $3}' | awk '{print $1}')
printf '%-44s %10s %10s\n' "what" "seconds" "GB/s"
printf '%-44s %10s %10.2f\n' "dd bs=16M (page cache) of $F" "$dd_s" "$(awk -v b="$bytes" -v s="$dd_s" 'BEGIN{print b/s/1e9}')"
for t in 1 2; do
  for rep in 1 2 3; do
    start=$(date +%s.%N)
    json=$(mpirun -n "$P" --oversubscribe --bind-to none $BIN reduce "$F" --var a --op mean,std,min,max --threads $t --json)
    end=$(date +%s.%N)
    phase=$(echo "$json" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["timings"]["total_s"], j["throughput_gbs"])')
    read -r ps pg <<<"$phase"
    printf '%-44s %10.3f %10.2f   (whole process %.3f s)\n' "chunkwise reduce, $P ranks x $t threads, run $rep" "$ps" "$pg" "$(awk -v a="$start" -v b="$end" 'BEGIN{print b-a}')"
  done
done
