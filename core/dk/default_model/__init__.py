"""The embedded default model: a small CNN trained on scikit-learn's 8x8 digits.

Files (made by ``scripts/make_default_model.py``, committed, about 130 KiB together):

- ``digits_cnn.onnx``: the trained model, dynamic batch, input ``input`` [batch, 1, 8, 8] float32
  in [0, 1], output ``logits`` [batch, 10];
- ``digits_cnn_weights.npz``: the same weights as a torch state dict in numpy form (no pickle);
- ``digits_data.npz``: the held-out evaluation split and a calibration subset of the training
  split, as raw 0..16 pixel values;
- ``model.json``: name, task, labels, pre-processing and the accuracy measured when trained.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ONNX_PATH = HERE / "digits_cnn.onnx"
WEIGHTS_PATH = HERE / "digits_cnn_weights.npz"
DATA_PATH = HERE / "digits_data.npz"
META_PATH = HERE / "model.json"


@lru_cache(maxsize=1)
def metadata() -> dict[str, Any]:
    """Name, task, labels, pre-processing and training-time accuracy of the default model."""
    return json.loads(META_PATH.read_text())


def preprocess(pixels):
    """Raw 0..16 digit images [N, 8, 8] -> model input [N, 1, 8, 8] float32 in [0, 1]."""
    import numpy as np

    scale = metadata()["preprocessing"]["scale"]
    return (np.asarray(pixels, dtype=np.float32) * np.float32(scale))[:, None, :, :]


def load_split(split: str = "eval"):
    """Pre-processed inputs and integer labels of ``split`` (``eval`` or ``calib``)."""
    import numpy as np

    with np.load(DATA_PATH, allow_pickle=False) as data:
        x = data[f"x_{split}"]
        y = data[f"y_{split}"]
    return preprocess(x), y.astype(np.int64)
