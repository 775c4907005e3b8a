"""An independent safetensors reader (json/struct/numpy only, none of lmt's code): an 8-byte
little-endian header length, a JSON header, then raw little-endian tensor bytes."""
import json
import struct

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    tensors, end = {}, 0
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, stop = entry["data_offsets"]
        assert begin == end, f"{name}: gap or overlap at {begin} (expected {end})"
        dtype = np.dtype(DTYPES[entry["dtype"]])
        count = int(np.prod(entry["shape"], dtype=np.int64))
        assert stop - begin == count * dtype.itemsize, f"{name}: byte size does not match shape"
        tensors[name] = np.frombuffer(data[begin:stop], dtype=dtype).reshape(entry["shape"])
        end = stop
    assert end == len(data), f"{len(data) - end} trailing bytes"
    return metadata, tensors
