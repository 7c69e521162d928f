"""Baseline for benches/climate.sh: the h5py + mpi4py way of a time mean
(`--dim time`) or a field mean (`--dim lat,lon`) with mean, std, min, max of
a (time, lat, lon) variable, NaN skipped as xarray does.

Time mean: each rank reads its contiguous range of time steps in slabs of
16 steps and keeps per-cell count, sum, sum of squares, min and max (f64);
MPI.Reduce combines them on rank 0. Field mean: each rank reduces its time
steps' maps and rank 0 gathers the series. Rank 0 prints one JSON line
with its timer around open -> combined result (`phase_s`) and the largest
peak RSS.

Usage: mpirun -n P python h5py_climate.py FILE VAR time|field
"""
import json
import resource
import sys
import time

import h5py
import numpy as np
from mpi4py import MPI


def main():
    path, var, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    comm.Barrier()
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        ds = f[var]
        nt = ds.shape[0]
        lo, hi = nt * rank // size, nt * (rank + 1) // size
        if kind == "time":
            cells = ds.shape[1:]
            n = np.zeros(cells)
            s = np.zeros(cells)
            ss = np.zeros(cells)
            mn = np.full(cells, np.inf)
            mx = np.full(cells, -np.inf)
            for r in range(lo, hi, 16):
                a = ds[r:min(r + 16, hi)].astype(np.float64)
                ok = ~np.isnan(a)
                n += ok.sum(axis=0)
                s += np.nansum(a, axis=0)
                ss += np.nansum(a * a, axis=0)
                mn = np.fmin(mn, np.nanmin(a, axis=0))
                mx = np.fmax(mx, np.nanmax(a, axis=0))
            tot = np.zeros((3,) + cells) if rank == 0 else None
            comm.Reduce(np.stack([n, s, ss]), tot, op=MPI.SUM)
            gmn = np.empty(cells) if rank == 0 else None
            gmx = np.empty(cells) if rank == 0 else None
            comm.Reduce(mn, gmn, op=MPI.MIN)
            comm.Reduce(mx, gmx, op=MPI.MAX)
            if rank == 0:
                mean = tot[1] / tot[0]
                std = np.sqrt(np.maximum(tot[2] / tot[0] - mean * mean, 0.0))
                summary = float(mean.mean())
        else:
            out = []
            for r in range(lo, hi, 16):
                a = ds[r:min(r + 16, hi)].astype(np.float64)
                m = np.nanmean(a, axis=(1, 2))
                out.append(np.stack([m, np.nanstd(a, axis=(1, 2)),
                                     np.nanmin(a, axis=(1, 2)), np.nanmax(a, axis=(1, 2))]))
            mine = np.concatenate(out, axis=1) if out else np.zeros((4, 0))
            parts = comm.gather(mine, root=0)
            if rank == 0:
                summary = float(np.concatenate(parts, axis=1)[0].mean())
    phase = time.perf_counter() - t0
    rss = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, op=MPI.MAX)
    if rank == 0:
        print(json.dumps({"phase_s": phase, "mean_of_means": summary, "peak_rss_mib": rss / 1024.0}))


if __name__ == "__main__":
    main()
