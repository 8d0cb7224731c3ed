"""TensorRT 10.x implicit int8 calibration: an IInt8EntropyCalibrator2 over dk calibration feeds,
with a calibration cache file. TensorRT 11 has no calibrators (Q/DQ ONNX only; the 11.0 and 11.4
bindings have no IInt8* class, tests/plugins/trt/data).

``getBatch`` hands TensorRT pointers to "device memory containing each network input data"
(include/NvInfer.h, release/10.16 d0faf303, IInt8Calibrator::getBatch) and offers no stream or event
to wait on, so the copies dk queues on its own stream are synchronized before get_batch returns.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dk.errors import DkError
from dk.specs import CalibrationData

from dk_trt.versions import require_tensorrt


def first_batch_shapes(calibration: CalibrationData) -> dict[str, tuple[int, ...]]:
    """Shapes of the first calibration feed: the calibration profile (later batches of another
    shape, such as a short last batch, are skipped)."""
    first = next(iter(calibration()), None)
    if not first:
        raise DkError("the calibration set is empty; give at least one batch of inputs")
    return {name: tuple(np.shape(v)) for name, v in first.items()}


def batch_arrays(feed: Mapping[str, Any], names: list[str], dtypes: Mapping[str, str]) -> list[np.ndarray]:
    """The feed's arrays for ``names``, contiguous and in each input's own dtype (float32 only when the
    input is float32: an int64 or float16 input gets its own type)."""
    return [np.ascontiguousarray(feed[n], dtype=np.dtype(dtypes.get(n, "float32"))) for n in names]


def entropy_calibrator(
    calibration: CalibrationData, cache_file: Path | None, buffers: Any, dtypes: Mapping[str, str] | None = None
) -> Any:
    """An IInt8EntropyCalibrator2 that uploads each feed through ``buffers`` (a DeviceBuffers) in the
    inputs' ``dtypes`` and waits for the copies before handing the pointers to TensorRT."""
    trt = require_tensorrt()
    dtypes = dict(dtypes or {})
    shapes = first_batch_shapes(calibration)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._feeds = iter(calibration())

        def get_batch_size(self) -> int:
            return int(next(iter(shapes.values()))[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            for feed in self._feeds:
                if {n: tuple(np.shape(feed[n])) for n in names} != {n: shapes[n] for n in names}:
                    continue
                pointers = [buffers.upload(n, a) for n, a in zip(names, batch_arrays(feed, names, dtypes))]
                buffers.synchronize()  # TensorRT reads the memory as soon as get_batch returns
                return pointers
            return None

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file is not None and cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_file is None:
                return
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.name}.tmp-{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(bytes(cache))
            os.replace(tmp, cache_file)

    return EntropyCalibrator(), shapes
