"""Image bytes -> model input, as the artifact's manifest declares (``model.preprocessing``).

One function on purpose: a shared pre-processing module can replace :func:`image_to_tensor` later.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np

from dk.serve.limits import HttpError
from dk.specs import TensorSpec

_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def sniff_image(data: bytes) -> str | None:
    """``PNG`` or ``JPEG`` from the first bytes, else ``None``."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    return None


def image_to_tensor(data: bytes, spec: TensorSpec, preprocessing: Mapping[str, Any],
                    max_pixels: int = 40_000_000) -> np.ndarray:
    """Decode a JPEG/PNG and turn it into a batch of one for ``spec``.

    ``preprocessing`` keys (all optional): ``layout`` NCHW|NHWC, ``colour`` gray|rgb|bgr, ``resize``
    [H, W] (default: the input's fixed H and W), ``input_range`` [lo, hi] that 0..255 pixels map to,
    ``scale``, ``mean``, ``std`` (per channel), ``invert`` (dark ink on light paper).
    """
    from PIL import Image, UnidentifiedImageError

    kind = sniff_image(data)
    if kind is None:
        raise HttpError(400, "body is not a JPEG or PNG image")
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
        width, height = image.size
        if width * height > max_pixels:
            raise HttpError(413, f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
        colour = str(preprocessing.get("colour", "rgb")).lower()
        image = image.convert("L" if colour in ("gray", "grey") else "RGB")
        layout = str(preprocessing.get("layout", "NCHW")).upper()
        size = preprocessing.get("resize") or _fixed_hw(spec, layout)
        if size and tuple(size) != (height, width):
            image = image.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32)
    except HttpError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise HttpError(400, f"cannot decode the {kind} image: {exc}") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if colour == "bgr":
        pixels = pixels[:, :, ::-1]
    if preprocessing.get("invert"):
        pixels = 255.0 - pixels
    lo, hi = preprocessing.get("input_range") or (0, 255)
    x = pixels * np.float32((hi - lo) / 255.0) + np.float32(lo)
    x = x * np.float32(preprocessing.get("scale", 1.0))
    x = (x - np.asarray(preprocessing.get("mean", [0.0]), np.float32)) / np.asarray(
        preprocessing.get("std", [1.0]), np.float32)
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.dtype(spec.dtype))


def _fixed_hw(spec: TensorSpec, layout: str) -> tuple[int, int] | None:
    if len(spec.shape) != 4:
        return None
    hw = spec.shape[2:4] if layout == "NCHW" else spec.shape[1:3]
    return (int(hw[0]), int(hw[1])) if all(isinstance(d, int) for d in hw) else None
