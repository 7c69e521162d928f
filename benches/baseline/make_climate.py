"""Build the ERA5-like test files of benches/climate.sh with xarray.

t2m float32 (time, lat=181, lon=360), one map per chunk (1, 181, 360),
_FillValue = NaN as xarray writes it on every float variable. Three
encodings: uncompressed, zlib 1 + shuffle, zlib 4 without shuffle.

Usage: python make_climate.py NTIME OUTDIR
Writes OUTDIR/era_{raw,z1s,z4}_NTIME.nc (skips files that exist), and
era_nofill_NTIME.nc: the uncompressed file without its _FillValue attribute
(to show that a NaN fill value costs nothing).
"""
import os
import sys

import numpy as np
import pandas as pd
import xarray as xr


def field(nt):
    lat = np.linspace(90.0, -90.0, 181)
    lon = np.arange(360, dtype=np.float64)
    rng = np.random.default_rng(14)
    # Climatology (warm equator), a seasonal cycle, a daily cycle and weather
    # noise: smooth enough to compress like real temperatures do.
    base = (250.0 + 40.0 * np.cos(np.deg2rad(lat)))[:, None] + 2.0 * np.sin(np.deg2rad(lon))[None, :]
    t = np.arange(nt)
    season = 10.0 * np.sin(2 * np.pi * t / 8760.0)
    day = 3.0 * np.sin(2 * np.pi * t / 24.0)
    out = np.empty((nt, 181, 360), dtype=np.float32)
    for i in range(nt):
        noise = rng.standard_normal((181, 360), dtype=np.float32)
        out[i] = base + (season[i] + day[i]) * np.sin(np.deg2rad(lat))[:, None] + noise
        # Quantise to 1/512 K, about the step of ERA5's 16-bit packed origin.
        out[i] = np.round(out[i] * 512.0) / 512.0
    return out, lat, lon


def main():
    nt, outdir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    encodings = {
        "raw": {"zlib": False},
        "z1s": {"zlib": True, "complevel": 1, "shuffle": True},
        "z4": {"zlib": True, "complevel": 4, "shuffle": False},
    }
    todo = {k: os.path.join(outdir, f"era_{k}_{nt}.nc") for k in encodings}
    todo = {k: p for k, p in todo.items() if not os.path.exists(p)}
    if todo:
        write(nt, todo, encodings)
    nofill = os.path.join(outdir, f"era_nofill_{nt}.nc")
    if not os.path.exists(nofill):
        import shutil

        import h5py

        shutil.copyfile(os.path.join(outdir, f"era_raw_{nt}.nc"), nofill + ".partial")
        with h5py.File(nofill + ".partial", "r+") as f:
            del f["t2m"].attrs["_FillValue"]
        os.replace(nofill + ".partial", nofill)


def write(nt, todo, encodings):
    data, lat, lon = field(nt)
    time = pd.date_range("2001-01-01", periods=nt, freq="h")
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), data, {"units": "K", "long_name": "2 metre temperature"})},
        coords={"time": time, "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
    )
    for k, path in todo.items():
        enc = {"t2m": dict(encodings[k], chunksizes=(1, 181, 360))}
        tmp = path + ".partial"
        ds.to_netcdf(tmp, encoding=enc, format="NETCDF4")
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
