"""Open Inference Protocol v2 (KServe/Triton) tensors: datatypes and the encoding of one tensor,
shared by ``dk serve`` and its clients."""

from __future__ import annotations

import functools
from typing import Any

#: OIP datatype -> numpy dtype name.
DATATYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
    "FP32": "float32", "FP64": "float64",
}
#: numpy dtype name -> OIP datatype.
NUMPY_TO_DATATYPE = {v: k for k, v in DATATYPES.items()}


@functools.lru_cache(maxsize=64)
def _datatype(dtype: Any) -> str:
    """The OIP datatype of a numpy dtype (``dtype.name`` is Python code in numpy: looked up once)."""
    return NUMPY_TO_DATATYPE.get(dtype.name, "BYTES")


class NonFiniteError(ValueError):
    """A tensor holds NaN or Infinity, which JSON cannot carry (send it as binary instead)."""


def encode_tensor(name: str, array: Any, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    """The JSON entry of one tensor and, with ``binary``, its little-endian bytes to append after
    the JSON header (the entry then says how many); without, the values go into ``data``.

    Strings (numpy ``str``/``bytes``/``object`` arrays) are ``BYTES``: JSON strings, or in binary
    each element as a 4-byte little-endian length and its UTF-8 bytes. A NaN or Infinity headed for
    JSON raises :class:`NonFiniteError`, never an invalid document.
    """
    import numpy as np

    array = np.asarray(array)
    entry: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": _datatype(array.dtype)}
    if array.dtype.kind in "OSU":
        items = [v.encode() if isinstance(v, str) else bytes(v) for v in array.ravel().tolist()]
        if not binary:
            entry["data"] = [v.decode("utf-8", "replace") for v in items]
            return entry, None
        blob = b"".join(len(v).to_bytes(4, "little") + v for v in items)
    elif not binary:
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise NonFiniteError(f"tensor {name!r} holds NaN or Infinity, which JSON cannot carry")
        entry["data"] = array.ravel().tolist()
        return entry, None
    else:
        blob = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    entry["parameters"] = {"binary_data_size": len(blob)}
    return entry, blob
