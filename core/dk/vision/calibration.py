"""Fingerprints of calibration sets: a changed set must change an int8 artifact's cache key."""

from __future__ import annotations

import hashlib
from typing import Any

from dk.errors import DkError
from dk.specs import CalibrationData


def fingerprint(calibration: CalibrationData) -> dict[str, Any]:
    """Samples, batches and sha256 (over names, dtypes, shapes and bytes) of a calibration set."""
    import numpy as np

    digest, samples, batches = hashlib.sha256(), 0, 0
    for feed in calibration():
        for key in sorted(feed):
            array = np.ascontiguousarray(feed[key])
            digest.update(f"{key}:{array.dtype}:{array.shape}".encode())
            digest.update(array.data)
        first = next(iter(feed.values()), None)
        samples += int(np.shape(first)[0]) if first is not None and np.ndim(first) else 1
        batches += 1
    if batches == 0:
        raise DkError("the calibration set is empty; give at least one batch of inputs")
    return {"samples": samples, "batches": batches, "sha256": digest.hexdigest()}
