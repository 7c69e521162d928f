#!/usr/bin/env bash
# Speed of `chunkwise reduce` on ERA5-like NetCDF-4 files (issue 14): a time
# mean and a field mean of t2m float32 (time, lat=181, lon=360), one map per
# chunk, as xarray writes them (_FillValue = NaN), uncompressed, zlib 1 +
# shuffle and zlib 4 without shuffle. Interleaved in one run, page cache warm:
#
#   * chunkwise -n 2 and chunkwise -n 1 --threads 2 (mean,std,min,max),
#   * the h5py + mpi4py way, 2 ranks (benches/baseline/h5py_climate.py),
#   * `cdo -P 2 timmean` / `fldmean` when CDO is installed (mean only),
#   * the decoder's limit: one core inflating every stored chunk
#     (crates/io/examples/inflate_chunks.rs: libdeflate, zlib-rs, libhdf5),
#   * `dd` of the file from the page cache (the read limit).
#
#   bash benches/climate.sh [--quick] [REPEATS]
#
# Full size: time = 8760 (2.3 GB per uncompressed file); --quick: time = 1460.
# Files are written once to bench-data/ by benches/baseline/make_climate.py
# (xarray). Prints one Markdown table of medians (wall of the whole process;
# chunkwise's read+reduce phase and peak memory per rank in brackets) and the
# ratios the issue sets targets for.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
NT=8760
if [ "${1:-}" = "--quick" ]; then NT=1460; shift; fi
R=${1:-5}
cargo build --release --locked -q --bin chunkwise
cargo build --release --locked -q -p chunkwise-io --example inflate_chunks
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
BIN=${CHUNKWISE_BIN:-target/release/chunkwise}  # CHUNKWISE_BIN: compare another build
PY=.venv-test/bin/python
[ -x "$PY" ] || PY=python3
if ! $PY -c "import mpi4py" 2>/dev/null; then
  echo "installing mpi4py into the test venv" >&2
  $PY -m pip install -q mpi4py >&2
fi
mkdir -p bench-data
$PY benches/baseline/make_climate.py "$NT" bench-data
declare -A FILE=([nofill]=bench-data/era_nofill_$NT.nc [raw]=bench-data/era_raw_$NT.nc [z1s]=bench-data/era_z1s_$NT.nc [z4]=bench-data/era_z4_$NT.nc)
have_cdo=0; command -v cdo >/dev/null && have_cdo=1

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{print b-a}'; }

# Workloads: name file-key chunkwise-dims python-kind cdo-operator
WORKLOADS=("tmean_raw raw time time timmean" "tmean_nofill nofill time time timmean" "tmean_z1s z1s time time timmean"
           "fmean_z1s z1s lat,lon field fldmean" "tmean_z4 z4 time time timmean")
declare -A T   # T[workload,tool] = newline-separated samples
add() { T[$1]="${T[$1]:-}$2"$'\n'; }

for f in "${FILE[@]}"; do cat "$f" > /dev/null; done
for rep in $(seq "$R"); do
  echo "repeat $rep/$R" >&2
  for w in "${WORKLOADS[@]}"; do
    read -r name key dims kind op <<< "$w"
    F=${FILE[$key]}
    t0=$(now); j=$(mpirun -n 2 --oversubscribe "$BIN" reduce "$F" --var t2m --dim "$dims" --op mean,std,min,max --json); t1=$(now)
    add "$name,cw2" "$(elapsed "$t0" "$t1")"
    add "$name,cw2_phase" "$(echo "$j" | field 'j["timings"]["total_s"]')"
    add "$name,cw2_rss" "$(echo "$j" | field 'j["peak_rss_mib"]')"
    t0=$(now); j=$(mpirun -n 1 "$BIN" reduce "$F" --var t2m --dim "$dims" --op mean,std,min,max --threads 2 --json); t1=$(now)
    add "$name,cw1t2" "$(elapsed "$t0" "$t1")"
    add "$name,cw1t2_phase" "$(echo "$j" | field 'j["timings"]["total_s"]')"
    t0=$(now); mpirun -n 2 --oversubscribe $PY benches/baseline/h5py_climate.py "$F" t2m "$kind" > /dev/null; t1=$(now)
    add "$name,py" "$(elapsed "$t0" "$t1")"
    if [ $have_cdo = 1 ]; then
      t0=$(now); cdo -s -O -P 2 "$op" "$F" bench-data/cdo_out.nc; t1=$(now)
      add "$name,cdo" "$(elapsed "$t0" "$t1")"
    fi
  done
  # The whole-array reduction of the same bytes (the time mean's throughput target).
  j=$(mpirun -n 2 --oversubscribe "$BIN" reduce "${FILE[nofill]}" --var t2m --op mean,std,min,max --json)
  add "whole_nofill,cw2_phase" "$(echo "$j" | field 'j["timings"]["total_s"]')"
  for key in z1s z4; do
    j=$(target/release/examples/inflate_chunks "${FILE[$key]}" t2m)
    add "inflate_$key,libdeflate" "$(echo "$j" | field 'j["libdeflate_s"]')"
    add "inflate_$key,inflate" "$(echo "$j" | field 'j["inflate_s"]')"
    add "inflate_$key,zlib_rs" "$(echo "$j" | field 'j["zlib_rs_s"]')"
    add "inflate_$key,libhdf5" "$(echo "$j" | field 'j["libhdf5_s"]')"
  done
  for key in raw nofill z1s z4; do
    t0=$(now); dd if="${FILE[$key]}" of=/dev/null bs=16M 2>/dev/null; t1=$(now)
    add "dd_$key,dd" "$(elapsed "$t0" "$t1")"
  done
done
rm -f bench-data/cdo_out.nc

med() { printf '%s' "${T[$1]:-}" | median; }
f2() { awk -v x="$1" 'BEGIN{ if (x=="nan") print "—"; else printf "%.2f", x}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="nan" || b=="nan" || b==0) print "—"; else printf "%.2f", a/b}'; }
size() { awk -v b="$(stat -c %s "$1")" 'BEGIN{printf "%.2f GB", b/1e9}'; }

echo "### ERA5-like t2m (time=$NT, 181, 360) float32, chunks (1,181,360), median of $R, $(nproc) cores"
echo
echo "Files: raw $(size "${FILE[raw]}"), zlib1+shuffle $(size "${FILE[z1s]}"), zlib4 $(size "${FILE[z4]}"). Seconds, whole-process wall; [read+reduce phase, peak MiB per rank]."
echo
echo "| workload | chunkwise -n 2 | chunkwise -n 1 --threads 2 | h5py+mpi4py 2 ranks | cdo -P 2 (mean only) | dd |"
echo "|---|---|---|---|---|---|"
for w in "${WORKLOADS[@]}"; do
  read -r name key _ _ op <<< "$w"
  echo "| $name | $(f2 "$(med "$name,cw2")") [$(f2 "$(med "$name,cw2_phase")") s, $(f2 "$(med "$name,cw2_rss")") MiB] | $(f2 "$(med "$name,cw1t2")") [$(f2 "$(med "$name,cw1t2_phase")") s] | $(f2 "$(med "$name,py")") | $(f2 "$(med "$name,cdo")") ($op) | $(f2 "$(med "dd_$key,dd")") |"
done
echo
echo "Single-core decode of every stored chunk (the decoder's limit), seconds:"
echo
echo "| file | libdeflate inflate (chosen) | libdeflate inflate + unshuffle | zlib-rs inflate | libhdf5 read (stock zlib) |"
echo "|---|---|---|---|---|"
for key in z1s z4; do
  echo "| $key | $(f2 "$(med "inflate_$key,inflate")") | $(f2 "$(med "inflate_$key,libdeflate")") | $(f2 "$(med "inflate_$key,zlib_rs")") | $(f2 "$(med "inflate_$key,libhdf5")") |"
done
echo
echo "| ratio | measured | target |"
echo "|---|---|---|"
for name in tmean_raw tmean_z1s fmean_z1s tmean_z4; do
  echo "| $name: chunkwise -n 2 / h5py+mpi4py (wall) | $(ratio "$(med "$name,cw2")" "$(med "$name,py")") | ≤ 0.5 |"
  echo "| $name: chunkwise -n 2 / cdo -P 2 (wall) | $(ratio "$(med "$name,cw2")" "$(med "$name,cdo")") | ≤ 0.6 (raw), ≤ 0.25 (z1s) |"
  echo "| $name: -n 1 --threads 2 / -n 2 (wall) | $(ratio "$(med "$name,cw1t2")" "$(med "$name,cw2")") | ≤ 1.1 |"
done
echo "| tmean_nofill: phase throughput / whole-array phase throughput (same file) | $(ratio "$(med "whole_nofill,cw2_phase")" "$(med "tmean_nofill,cw2_phase")") | ≥ 0.7 |"
echo "| tmean_raw / tmean_nofill (phase: NaN _FillValue vs none) | $(ratio "$(med "tmean_raw,cw2_phase")" "$(med "tmean_nofill,cw2_phase")") | ≤ 1.05 |"
for name in tmean_z1s fmean_z1s; do
  echo "| $name: phase / (libdeflate inflate single-core ÷ 2) | $(ratio "$(med "$name,cw2_phase")" "$(awk -v x="$(med "inflate_z1s,inflate")" 'BEGIN{print x/2}')") | ≤ 1.3 |"
  echo "| $name: phase / (libdeflate inflate + unshuffle single-core ÷ 2) | $(ratio "$(med "$name,cw2_phase")" "$(awk -v x="$(med "inflate_z1s,libdeflate")" 'BEGIN{print x/2}')") | |"
done
