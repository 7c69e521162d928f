#!/usr/bin/env bash
# Cost of exact quantiles and of weights, against the plain statistics on
# the same data (issue 13's targets):
#   * whole-array median (and q0.05,q0.95) vs a plain mean on the 2 GiB f64
#     benchmark file of benches/speed.sh (16384 x 16384, 512-row chunks):
#     time <= 3x, same peak memory per rank;
#   * weighted field mean per time step vs the unweighted one on a 2 GiB
#     (time=2048, lat=128, lon=1024) f64 file: cos(lat)-like weights over
#     lat (constant along each row) and area-like weights over (lat, lon):
#     time <= 1.2x.
#
#   bash benches/quantiles_weights.sh [RANKS] [REPEATS]
#
# Each figure is the median of the repeats of reduce's total_s (file open
# to combined result) with the page cache warm; peak memory is the largest
# rank's high-water mark. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q --bin chunkwise
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
P=${1:-2}; R=${2:-5}
BIN=target/release/chunkwise
PY=.venv-test/bin/python
mkdir -p bench-data
F=bench-data/speed_16384x16384.h5
[ -f "$F" ] || mpirun -n "$P" --oversubscribe $BIN generate "$F" --var a --shape 16384,16384 --chunks 512,16384 --seed 1 >&2
G=bench-data/field_2048x128x1024.h5
[ -f "$G" ] || mpirun -n "$P" --oversubscribe $BIN generate "$G" --var a --shape 2048,128,1024 --chunks 8,128,1024 --seed 2 --dist normal:280,10 >&2
W=bench-data/field_weights.nc
[ -f "$W" ] || $PY -c "
import numpy as np, xarray as xr
lat = np.linspace(-89.5, 89.5, 128)
w = np.cos(np.deg2rad(lat))
xr.Dataset({'coslat': (('dim_1',), w),
            'area': (('dim_1', 'dim_2'), np.repeat(w[:, None], 1024, 1) * (1 + 0.01 * np.random.default_rng(0).random((128, 1024))))}
          ).to_netcdf('$W')"

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { $PY -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)"; }
# run NAME ARGS...: median total_s and peak RSS of R runs, into $t and $m.
run() {
  local ts=() ms=() j
  for _ in $(seq "$R"); do
    j=$(mpirun -n "$P" --oversubscribe $BIN reduce "$@" --json --progress none)
    ts+=("$(echo "$j" | field 'j["timings"]["total_s"]')")
    ms+=("$(echo "$j" | field 'j["peak_rss_mib"]')")
  done
  t=$(printf '%s\n' "${ts[@]}" | median)
  m=$(printf '%s\n' "${ms[@]}" | median)
}
cat "$F" "$G" > /dev/null   # warm the page cache
row() { awk -v n="$1" -v t="$2" -v m="$3" -v b="$4" 'BEGIN{printf "| %s | %.3f s | %.2f × | %.0f MiB |\n", n, t, t/b, m}'; }

echo "### $P ranks, median of $R, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "| $F | total_s | vs mean | peak memory per rank |"
echo "|---|---|---|---|"
run "$F" --var a --op mean; base=$t; row "mean" "$t" "$m" "$base"
run "$F" --var a --quantile 0.5; row "median (--quantile 0.5)" "$t" "$m" "$base"
run "$F" --var a --quantile 0.05,0.95; row "--quantile 0.05,0.95" "$t" "$m" "$base"
echo
echo "| $G, field mean per time step | total_s | vs unweighted | peak memory per rank |"
echo "|---|---|---|---|"
run "$G" --var a --dim dim_1,dim_2 --op mean; base=$t; row "unweighted" "$t" "$m" "$base"
run "$G" --var a --dim dim_1,dim_2 --op mean --weights "$W:coslat"; row "--weights FILE:coslat (over lat)" "$t" "$m" "$base"
run "$G" --var a --dim dim_1,dim_2 --op mean --weights "$W:area"; row "--weights FILE:area (over lat, lon)" "$t" "$m" "$base"
