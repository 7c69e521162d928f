"""Baseline for benches/speed.sh: the h5py + mpi4py way of computing
mean, std, min and max of a 2-D dataset with P ranks.

Each rank opens the file (serial h5py, read-only), reads its contiguous range
of rows in slabs of the storage chunk's row count, keeps sum, sum of squares,
min, max and count with NumPy, and the ranks combine them with
MPI.Allreduce. Rank 0 prints one JSON line: its own timer around
open -> allreduce (`phase_s`), the statistics, and the largest peak RSS.

Usage: mpirun -n P python3 h5py_mpi4py.py FILE VAR
"""
import json
import resource
import sys
import time

import h5py
import numpy as np
from mpi4py import MPI


def main():
    path, var = sys.argv[1], sys.argv[2]
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    comm.Barrier()
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        ds = f[var]
        rows = ds.shape[0]
        slab = ds.chunks[0] if ds.chunks else 512
        lo = rows * rank // size
        hi = rows * (rank + 1) // size
        s = ss = 0.0
        mn, mx = np.inf, -np.inf
        n = 0
        for r in range(lo, hi, slab):
            a = ds[r:min(r + slab, hi)]
            s += float(a.sum())
            ss += float(np.dot(a.ravel(), a.ravel()))
            mn = min(mn, float(a.min()))
            mx = max(mx, float(a.max()))
            n += a.size
    tot = comm.allreduce(np.array([s, ss, float(n)]), op=MPI.SUM)
    gmin = comm.allreduce(mn, op=MPI.MIN)
    gmax = comm.allreduce(mx, op=MPI.MAX)
    phase = time.perf_counter() - t0
    rss = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, op=MPI.MAX)
    if rank == 0:
        mean = tot[0] / tot[2]
        std = max(tot[1] / tot[2] - mean * mean, 0.0) ** 0.5
        print(json.dumps({"phase_s": phase, "mean": mean, "std": std, "min": gmin,
                          "max": gmax, "peak_rss_mib": rss / 1024.0}))


if __name__ == "__main__":
    main()
