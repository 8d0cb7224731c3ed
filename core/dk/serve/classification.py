"""The OIP classification extension (Triton's; tritonclient's ``class_count=k``): an output asked
for with ``parameters.classification = k`` is answered with its top k classes as ``BYTES`` strings
``"score:index"``, or ``"score:index:label"`` when the manifest has labels."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dk.serve.limits import HttpError


def top_classes(name: str, values: np.ndarray, k: int, labels: Sequence[str] | None = None) -> np.ndarray:
    """The top ``k`` (at most the number of classes) along the last axis, best first, as strings
    shaped ``values.shape[:-1] + (k,)`` (one row per sample of a batch)."""
    values = np.asarray(values)
    if values.ndim == 0 or values.dtype.kind not in "biuf" or values.shape[-1] == 0:
        raise HttpError(400, f"output {name[:64]!r} of shape {list(values.shape)} and type {values.dtype} has no "
                             "class axis to classify")
    k = min(k, values.shape[-1])
    rows = values.reshape(-1, values.shape[-1])
    order = np.argsort(-rows.astype(np.float64), axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(rows, order, axis=1)
    names = list(labels or [])
    text = [f"{float(s):f}:{int(i)}" + (f":{names[i]}" if i < len(names) else "")
            for s_row, i_row in zip(scores, order) for s, i in zip(s_row, i_row)]
    return np.array(text, dtype=object).reshape(values.shape[:-1] + (k,))
