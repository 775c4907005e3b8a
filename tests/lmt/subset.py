# subset.py SRC DST N: the first N samples of a dataset file (same schema and attributes).
import sys
import h5py
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(src, "r") as s, h5py.File(dst, "w") as d:
    for name in s.attrs:
        d.attrs.create(name, s.attrs[name], dtype=s.attrs.get_id(name).dtype)
    for name in ("images", "labels"):
        ds = s[name]
        data = ds[:n]
        chunks = tuple(max(1, min(c, e)) for c, e in zip(ds.chunks, data.shape)) if ds.chunks else None
        out = d.create_dataset(name, data=data, chunks=chunks, fletcher32=ds.fletcher32)
        for a in ds.attrs:
            out.attrs.create(a, ds.attrs[a], dtype=ds.attrs.get_id(a).dtype)
