#!/usr/bin/env bash
# What many files cost: the same data (float32 time × 18 × 36, one map per
# chunk) in one NetCDF-4 file and split into N files of one time step each
# (written by xarray from the test venv), reduced over time; runs interleaved,
# medians of whole-process wall time, and the time `describe` spends on
# rank 0 reading every file's metadata (from the difference).
#
#   bash benches/manyfiles.sh [N] [RANKS] [REPEATS]        (default 1000 2 5)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q --bin chunkwise
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
N=${1:-1000}; P=${2:-2}; R=${3:-5}
BIN=target/release/chunkwise
PY=.venv-test/bin/python
D=bench-data/manyfiles-$N
if [ ! -f "$D/one.nc" ]; then
  mkdir -p "$D/split"
  "$PY" - "$D" "$N" <<'PY'
import sys, numpy as np, xarray as xr
d, n = sys.argv[1], int(sys.argv[2])
x = np.random.default_rng(1).normal(280, 10, (n, 18, 36)).astype("f4")
ds = xr.Dataset({"t2m": (("time", "lat", "lon"), x)},
                coords={"time": ("time", np.arange(n) * 1.0, {"units": "days since 2000-01-01"}),
                        "lat": np.linspace(-85, 85, 18), "lon": np.arange(36) * 10.0})
ds.to_netcdf(f"{d}/one.nc", encoding={"t2m": {"chunksizes": (1, 18, 36)}}, unlimited_dims=["time"])
for i in range(n):
    ds.isel(time=slice(i, i + 1)).to_netcdf(f"{d}/split/t2m_{i:05d}.nc", unlimited_dims=["time"])
PY
fi
now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
one=(); many=()
for _ in $(seq "$R"); do
  t0=$(now); mpirun -n "$P" $BIN reduce "$D/one.nc" --var t2m --dim time --op mean --json >/dev/null; t1=$(now)
  mpirun -n "$P" $BIN reduce "$D/split/t2m_*.nc" --var t2m --dim time --op mean --json >/dev/null; t2=$(now)
  one+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  many+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')")
done
o=$(printf '%s\n' "${one[@]}" | median); m=$(printf '%s\n' "${many[@]}" | median)
echo "| input ($N time steps, -n $P) | wall, median of $R (s) |"
echo "|---|---|"
echo "| one file | $o |"
echo "| $N files | $m |"
awk -v o="$o" -v m="$m" -v n="$N" 'BEGIN{printf "opening %d files adds %.2f s\n", n, m-o}'
