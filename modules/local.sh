#!/usr/bin/env bash
# chunkwise — set up a Debian/Ubuntu workstation (or CI machine).
#
#   source modules/local.sh   # installs what is missing, exports the build env
#   bash modules/local.sh     # same, for a one-off install
#
# Installs (only what is missing): OpenMPI, parallel HDF5 built against it,
# libclang (for bindgen), the HDF5 command-line tools, pkg-config, and the
# NetCDF tools (ncgen/ncdump) and xarray, which the tests use as independent
# writers and readers, and fontconfig + the DejaVu fonts, which the plots of
# `scaling report` (plotters) draw their text with. Exports HDF5_DIR so the
# `hdf5-metno-sys` build script links the *MPI* build of HDF5, not the serial one.

_cw_pkgs="libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libclang-dev hdf5-tools pkg-config netcdf-bin shellcheck python3-xarray python3-netcdf4 python3-h5py procps libfontconfig1-dev fonts-dejavu-core"

_cw_setup() {
    local missing="" p sudo=""
    for p in $_cw_pkgs; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        echo "chunkwise setup: installing$missing" >&2
        $sudo apt-get update -qq || return 1
        # shellcheck disable=SC2086 # word splitting of the package list is intended
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null || return 1
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "chunkwise setup: no Rust toolchain; install one with https://rustup.rs" >&2
            return 1
        fi
    fi
    local multiarch
    multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)"
    export HDF5_DIR="/usr/lib/$multiarch/hdf5/openmpi"
    _cw_test_venv || return 1
    return 0
}

# The test venv: current xarray, netCDF4, h5py (its wheel bundles a current
# HDF5), cftime, pandas and NumPy from PyPI, used by the tests as independent
# writers and readers (oracles). Made once in .venv-test/ of the checkout;
# the tests find it there (or through CHUNKWISE_PYTHON).
_cw_venv_pkgs="numpy pandas xarray netCDF4 h5py cftime scipy"
_cw_test_venv() {
    local root venv
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv-test"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import numpy, pandas, xarray, netCDF4, h5py, cftime, scipy" 2>/dev/null; then
        return 0
    fi
    local py
    py="$(command -v python3 || echo /usr/bin/python3)"
    echo "chunkwise setup: making the test venv $venv" >&2
    if ! "$py" -m venv "$venv" 2>/dev/null; then
        # Debian's python3 needs python3-venv for `-m venv`.
        DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq --no-install-recommends python3-venv >/dev/null || return 1
        "$py" -m venv "$venv" || return 1
    fi
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    "$venv/bin/pip" install -q $_cw_venv_pkgs >/dev/null || return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    _cw_setup
    echo "chunkwise setup: ok (HDF5_DIR=$HDF5_DIR)"
else
    _cw_setup || echo "chunkwise setup: FAILED" >&2
fi
