"""Open Inference Protocol v2 (KServe/Triton) tensors: datatypes and the encoding of one tensor,
shared by ``dk serve`` and its clients."""

from __future__ import annotations

from typing import Any

#: OIP datatype -> numpy dtype name.
DATATYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
    "FP32": "float32", "FP64": "float64",
}
#: numpy dtype name -> OIP datatype.
NUMPY_TO_DATATYPE = {v: k for k, v in DATATYPES.items()}


def encode_tensor(name: str, array: Any, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """The JSON entry of one tensor and, with ``binary``, its little-endian bytes to append after
    the JSON header (the entry then says how many); without, the values go into ``data``."""
    import numpy as np

    array = np.asarray(array)
    entry: dict[str, Any] = {"name": name, "shape": list(array.shape),
                             "datatype": NUMPY_TO_DATATYPE.get(array.dtype.name, "BYTES")}
    if not binary:
        entry["data"] = array.ravel().tolist()
        return entry, None
    blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    entry["parameters"] = {"binary_data_size": len(blob)}
    return entry, blob
