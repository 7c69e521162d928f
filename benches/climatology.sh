#!/usr/bin/env bash
# What a climatology costs next to a plain time mean: an ERA5-like dataset
# (float32 time × 181 × 360, one map per chunk, zlib 1 + shuffle, noleap
# daily steps, written by xarray as one file per year) reduced by chunkwise
# over time (--dim time), by calendar month (--groupby time.month) and by
# month (--resample time=1MS), and the same by CDO (`timmean`, `ymonmean`,
# `monmean` of `-mergetime`) and by xarray (open_mfdataset + groupby).
# Every run writes its result to a NetCDF file, as CDO does. Runs are
# interleaved; medians of whole-process wall time; ratios to the chunkwise
# time mean. The grouping is arithmetic on the same single read
# pass, so the target is ≤ 1.2× the time mean.
#
#   bash benches/climatology.sh [YEARS] [RANKS] [REPEATS]     (default 4 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q --bin chunkwise
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
Y=${1:-4}; P=${2:-2}; R=${3:-3}
BIN=target/release/chunkwise
PY=.venv-test/bin/python
D=bench-data/climatology-$Y
if [ ! -f "$D/done" ]; then
  mkdir -p "$D"
  "$PY" - "$D" "$Y" <<'PY'
import sys, numpy as np, xarray as xr
d, years = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(3)
lat = np.linspace(90, -90, 181); lon = np.arange(360) * 1.0
for y in range(years):
    t = xr.date_range(f"{1991 + y}-01-01", periods=365, freq="D", calendar="noleap", use_cftime=True)
    doy = np.arange(365)[:, None, None]
    x = (280 + 20 * np.cos(np.deg2rad(lat))[None, :, None] - 10 * np.cos(2 * np.pi * doy / 365)
         + rng.normal(0, 2, (365, 181, 360))).astype("f4")
    ds = xr.Dataset({"t2m": (("time", "lat", "lon"), x, {"units": "K"})},
                    coords={"time": t, "lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    enc = {"t2m": {"chunksizes": (1, 181, 360), "zlib": True, "complevel": 1, "shuffle": True},
           "time": {"units": "days since 1991-01-01", "calendar": "noleap"}}
    ds.to_netcdf(f"{d}/t2m_{1991 + y}.nc", encoding=enc, unlimited_dims=["time"])
PY
  touch "$D/done"
fi
now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
G="$D/t2m_*.nc"
declare -A cmds=(
  [cw_timmean]="mpirun -n $P $BIN reduce '$G' --var t2m --dim time --op mean --progress none -o $D/cw_out.nc --force"
  [cw_ymonmean]="mpirun -n $P $BIN reduce '$G' --var t2m --groupby time.month --op mean --progress none -o $D/cw_out.nc --force"
  [cw_monmean]="mpirun -n $P $BIN reduce '$G' --var t2m --resample time=1MS --op mean --progress none -o $D/cw_out.nc --force"
  [cw_ymon_all]="mpirun -n $P $BIN reduce '$G' --var t2m --groupby time.month --progress none -o $D/cw_out.nc --force"
  [cw_tim_all]="mpirun -n $P $BIN reduce '$G' --var t2m --dim time --progress none -o $D/cw_out.nc --force"
)
if command -v cdo >/dev/null; then
  cmds[cdo_timmean]="cdo -s -P $P timmean -mergetime '$G' $D/cdo_out.nc"
  cmds[cdo_ymonmean]="cdo -s -P $P ymonmean -mergetime '$G' $D/cdo_out.nc"
  cmds[cdo_monmean]="cdo -s -P $P monmean -mergetime '$G' $D/cdo_out.nc"
fi
cmds[xr_ymonmean]="$PY -c \"import xarray as xr; xr.open_mfdataset('$G', combine='by_coords', use_cftime=True).t2m.groupby('time.month').mean().compute()\""
order=(cw_timmean cw_ymonmean cw_monmean cw_tim_all cw_ymon_all cdo_timmean cdo_ymonmean cdo_monmean xr_ymonmean)
declare -A times
for _ in $(seq "$R"); do
  for k in "${order[@]}"; do
    [ -n "${cmds[$k]:-}" ] || continue
    rm -f "$D/cdo_out.nc"
    t0=$(now); bash -c "${cmds[$k]}" >/dev/null 2>&1; t1=$(now)
    times[$k]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}') "
  done
done
base=$(tr ' ' '\n' <<<"${times[cw_timmean]}" | grep . | median)
echo "climatology of $Y yearly files (365 × 181 × 360 float32, zlib1+shuffle each), -n $P / -P $P, median of $R, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | wall (s) | × chunkwise time mean |"
echo "|---|---|---|"
for k in "${order[@]}"; do
  [ -n "${times[$k]:-}" ] || continue
  m=$(tr ' ' '\n' <<<"${times[$k]}" | grep . | median)
  awk -v k="$k" -v m="$m" -v b="$base" 'BEGIN{printf "| %s | %.2f | %.2f |\n", k, m, m/b}'
done
