"""A minimal Zarr v3 writer from the published core specification
(https://zarr-specs.readthedocs.io/en/latest/v3/core/index.html): array
metadata in zarr.json, a regular chunk grid, the default chunk key encoding
("c/i/j"), the "bytes" codec (either endianness) optionally followed by
"gzip"; edge chunks are stored at full chunk size. Python standard library
only, so the tests have an external writer without the zarr package."""
import json, gzip, struct, os, sys, math
def store(path, shape, chunks, dtype_name, fmt, endian, gz, values, fill, missing=(), dims=None, attrs=None):
    os.makedirs(path, exist_ok=True)
    codecs = [{"name": "bytes", "configuration": {"endian": endian}}]
    if gz:
        codecs.append({"name": "gzip", "configuration": {"level": 5}})
    meta = {"zarr_format": 3, "node_type": "array", "shape": list(shape), "data_type": dtype_name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(chunks)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill, "codecs": codecs, "attributes": attrs or {}}
    if dims: meta["dimension_names"] = dims
    json.dump(meta, open(os.path.join(path, "zarr.json"), "w"))
    e = "<" if endian == "little" else ">"
    grid = [math.ceil(s / c) for s, c in zip(shape, chunks)]
    import itertools
    for ci in itertools.product(*[range(g) for g in grid]):
        if ci in missing: continue
        buf = []
        for li in itertools.product(*[range(c) for c in chunks]):
            gi = [a * c + b for a, c, b in zip(ci, chunks, li)]
            if all(g < s for g, s in zip(gi, shape)):
                flat = 0
                for g, s in zip(gi, shape): flat = flat * s + g
                buf.append(values[flat])
            else:
                buf.append(fill if not isinstance(fill, str) else float("nan"))
        data = struct.pack(e + fmt * len(buf), *buf)
        if gz: data = gzip.compress(data)
        key = os.path.join(path, "c", *[str(i) for i in ci])
        os.makedirs(os.path.dirname(key), exist_ok=True)
        open(key, "wb").write(data)
# Two test arrays, written into the current directory:
#  a.zarr: 5 x 7 float64, chunks 2 x 3, little-endian bytes + gzip, dimension
#          names y, x, units K; chunk (1, 1) is never written, so it reads as
#          the fill value 0. a.expected.raw holds the values a reader must see.
#  y, x:   coordinate arrays next to a.zarr, as xarray lays them out:
#          y = 10, 20, ..., 50 (float64, units m); x = 0, 50, ..., 300 (int32).
#  b.zarr: 4 x 3 x 5 int32, chunks 3 x 2 x 5, big-endian bytes, no compression.
shape = (5, 7)
vals = [(i * 7 + j) * 0.5 - 3 for i in range(5) for j in range(7)]
missing = {(1, 1)}
exp = list(vals)
for i in range(2, 4):
    for j in range(3, 6):
        exp[i * 7 + j] = 0.0
store("a.zarr", shape, (2, 3), "float64", "d", "little", True, vals, 0.0, missing, ["y", "x"], {"units": "K"})
open("a.expected.raw", "wb").write(struct.pack("<" + "d" * len(exp), *exp))
ivals = [(k * 37) % 101 - 50 for k in range(4 * 3 * 5)]
store("b.zarr", (4, 3, 5), (3, 2, 5), "int32", "i", "big", False, ivals, 0)
open("b.expected.raw", "wb").write(struct.pack("<" + "i" * len(ivals), *ivals))
store("y", (5,), (5,), "float64", "d", "little", False, [10.0 * (k + 1) for k in range(5)], 0.0, attrs={"units": "m"})
store("x", (7,), (4,), "int32", "i", "little", True, [50 * k for k in range(7)], 0)
