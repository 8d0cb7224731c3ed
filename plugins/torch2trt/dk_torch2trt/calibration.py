"""Calibration samples in the form torch2trt's ``DatasetCalibrator`` takes (see dk_torch2trt.quantize
for the torch2trt facts): items of the example inputs' shape, batch axis kept."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dk.errors import DkError
from dk.specs import CalibrationData, TensorSpec


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
