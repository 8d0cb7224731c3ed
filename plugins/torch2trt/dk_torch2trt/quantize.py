"""``dk run quantize --plugin torch2trt``: int8 through torch2trt's own calibrator (TensorRT 10.x).

torch2trt facts (master 4e820ae31b4e35d59685935223b05b2e11d47b03, torch2trt/dataset_calibrator.py):
its ``DatasetCalibrator`` hands each dataset item's tensors to TensorRT as they are (``data_ptr``) and
says ``get_batch_size() == 1``, and torch2trt.py calibrates on the network's profile, whose opt shape is
the example input's. So every item must have the example's shape, batch axis included.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dk.artifacts import Artifact
from dk.errors import DkError, UsageError
from dk.specs import CalibrationData, QuantizeRequest, TensorSpec

from dk_torch2trt.options import QUANTIZE_OPTIONS, check_options, convert_settings


def quantize_engine(request: QuantizeRequest) -> Artifact:
    from dk.cli.options import parse_shapes
    from dk.vision.calibration import fingerprint

    from dk_torch2trt.export import convert

    check_options(request.options, QUANTIZE_OPTIONS, "quantize")
    if request.precision != "int8" or request.method != "static":
        raise UsageError("torch2trt quantizes to int8 with calibration data only (--method static)")
    if request.calibration is None:
        raise UsageError("torch2trt int8 needs calibration data: pass --data calib.npz or use the default model")
    settings = convert_settings("int8", request.options)
    options = {**request.build_options(), "calibration": fingerprint(request.calibration)}
    shapes = parse_shapes(request.options.get("shapes"))
    device = request.export.device if request.export is not None else "cpu"
    return convert(request.source, request.out_dir, shapes, settings, request.force, options, request.calibration,
                   device)


def calibration_batches(calibration: CalibrationData, inputs: Sequence[TensorSpec]) -> list[list[np.ndarray]]:
    """The calibration feeds cut into items of the example inputs' shape (batch axis kept, the
    example's batch size per item, a short tail dropped), each in the input's dtype."""
    batch = int(inputs[0].shape[0]) if inputs and isinstance(inputs[0].shape[0], int) else 1
    items: list[list[np.ndarray]] = []
    for feed in calibration():
        arrays = [np.asarray(feed[s.name], dtype=np.dtype(s.dtype)) for s in inputs]
        for start in range(0, len(arrays[0]) - batch + 1, batch):
            items.append([np.ascontiguousarray(a[start:start + batch]) for a in arrays])
    if not items:
        raise DkError(f"the calibration set has no batch of {batch} sample(s); give at least {batch}")
    return items


def calibration_samples(calibration: CalibrationData, inputs: Sequence[TensorSpec], cuda: str) -> list[list[Any]]:
    """torch2trt's ``int8_calib_dataset``: :func:`calibration_batches` as CUDA tensors on ``cuda``."""
    import torch

    return [[torch.from_numpy(a).to(cuda) for a in item] for item in calibration_batches(calibration, inputs)]
