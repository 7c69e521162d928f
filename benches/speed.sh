#!/usr/bin/env bash
# Speed and memory of `chunkwise reduce` against the machine's limit (dd from
# the page cache), the h5py + mpi4py way (when Python has h5py and mpi4py),
# and the fixed cost of any MPI + parallel-HDF5 program.
#
#   bash benches/speed.sh [ROWS] [COLS] [RANKS] [REPEATS]
#
# Default: 16384 x 16384 f64 (2 GiB) in 512-row chunks, 2 ranks, 5 repeats;
# `bash benches/speed.sh 32768 32768` is the 8 GiB case. Each figure is the
# median of the repeats, with the page cache warm. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=modules/local.sh
source modules/local.sh >/dev/null
cargo build --release --locked -q --bin chunkwise --example minimal_mpio
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
ROWS=${1:-16384}; COLS=${2:-16384}; P=${3:-2}; R=${4:-5}
BIN=target/release/chunkwise
PY=/usr/bin/python3
mkdir -p bench-data
F=bench-data/speed_${ROWS}x${COLS}.h5
[ -f "$F" ] || mpirun -n "$P" --oversubscribe $BIN generate "$F" --var a --shape "$ROWS,$COLS" --chunks "512,$COLS" --seed 1 >&2
bytes=$(stat -c %s "$F")

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
field() { $PY -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)"; }

cat "$F" > /dev/null   # warm the page cache
dd_s=$(for _ in $(seq "$R"); do dd if="$F" of=/dev/null bs=16M 2>&1 | tail -1 | awk -F', ' '{print $3}' | awk '{print $1}'; done | median)

cw_phase=(); cw_wall=(); cw_rss=()
for _ in $(seq "$R"); do
  t0=$(now)
  j=$(mpirun -n "$P" $BIN reduce "$F" --var a --op mean,std,min,max --json)
  t1=$(now)
  cw_phase+=("$(echo "$j" | field 'j["timings"]["total_s"]')")
  cw_rss+=("$(echo "$j" | field 'j["peak_rss_mib"]')")
  cw_wall+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  cw_json=$j
done
cw_p=$(printf '%s\n' "${cw_phase[@]}" | median)
cw_w=$(printf '%s\n' "${cw_wall[@]}" | median)
cw_m=$(printf '%s\n' "${cw_rss[@]}" | median)
cw_block=$(echo "$cw_json" | field '"x".join(map(str, j["block_shape"]))')

have_py=0
if $PY -c "import h5py, mpi4py" 2>/dev/null; then have_py=1; fi
if [ $have_py = 1 ]; then
  py_phase=(); py_wall=(); py_rss=()
  for _ in $(seq "$R"); do
    t0=$(now)
    j=$(mpirun -n "$P" $PY benches/baseline/h5py_mpi4py.py "$F" a)
    t1=$(now)
    py_phase+=("$(echo "$j" | field 'j["phase_s"]')")
    py_rss+=("$(echo "$j" | field 'j["peak_rss_mib"]')")
    py_wall+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
    py_json=$j
  done
  py_p=$(printf '%s\n' "${py_phase[@]}" | median)
  py_w=$(printf '%s\n' "${py_wall[@]}" | median)
  py_m=$(printf '%s\n' "${py_rss[@]}" | median)
fi

# Fixed cost: reduce of a tiny file vs the least MPI + MPI-IO HDF5 program.
TINY=bench-data/tiny.h5
[ -f "$TINY" ] || mpirun -n "$P" $BIN generate "$TINY" --var a --shape 10,10 >&2
tiny=(); minimal=()
for _ in $(seq "$R"); do
  t0=$(now); mpirun -n "$P" $BIN reduce "$TINY" --var a --json > /dev/null; t1=$(now)
  tiny+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
  t0=$(now); mpirun -n "$P" target/release/examples/minimal_mpio bench-data/minimal.h5; t1=$(now)
  minimal+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
done
tiny_w=$(printf '%s\n' "${tiny[@]}" | median)
min_w=$(printf '%s\n' "${minimal[@]}" | median)

f3() { awk -v x="$1" 'BEGIN{printf "%.3f", x}'; }
f0() { awk -v x="$1" 'BEGIN{printf "%.0f", x}'; }
gbs() { awk -v b="$bytes" -v s="$1" 'BEGIN{printf "%.2f", b/s/1e9}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "### $F ($(awk -v b="$bytes" 'BEGIN{printf "%.2f GiB", b/2^30}')), $P ranks, median of $R, $(nproc) cores"
echo
echo "| tool | read+reduce phase | GB/s | wall, whole process | peak memory per rank |"
echo "|---|---|---|---|---|"
echo "| \`dd bs=16M\` of the file (limit) | $(f3 "$dd_s") s | $(gbs "$dd_s") | — | — |"
echo "| chunkwise reduce, blocks ${cw_block} | $(f3 "$cw_p") s | $(gbs "$cw_p") | $(f3 "$cw_w") s | $(f0 "$cw_m") MiB |"
if [ $have_py = 1 ]; then
  echo "| h5py + mpi4py, row slabs | $(f3 "$py_p") s | $(gbs "$py_p") | $(f3 "$py_w") s | $(f0 "$py_m") MiB |"
fi
echo
echo "| check | measured | target |"
echo "|---|---|---|"
echo "| phase vs dd bandwidth | $(awk -v a="$dd_s" -v b="$cw_p" 'BEGIN{printf "%.0f %%", 100*a/b}') of dd | ≥ 50 % |"
if [ $have_py = 1 ]; then
  echo "| phase vs h5py+mpi4py | $(ratio "$cw_p" "$py_p") × | ≤ 0.33 × |"
  echo "| whole process vs h5py+mpi4py | $(ratio "$cw_w" "$py_w") × | ≤ 0.6 × (2 GiB), ≤ 0.5 × (8 GiB) |"
fi
echo "| fixed cost: reduce of a 10×10 file vs minimal MPI+HDF5 program | $(f3 "$tiny_w") s vs $(f3 "$min_w") s = $(ratio "$tiny_w" "$min_w") × | ≤ 1.2 × |"
echo "| peak memory per rank | $(f0 "$cw_m") MiB | ≤ 2 × block + 64 MiB |"
if [ $have_py = 1 ]; then
  echo
  echo "Same answers: chunkwise mean $(echo "$cw_json" | field 'j["results"]["mean"]'), h5py $(echo "$py_json" | field 'j["mean"]')"
fi
