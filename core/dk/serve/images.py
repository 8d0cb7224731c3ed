"""Image bytes -> model input with the shared, manifest-declared pre-processing
(:mod:`dk.vision.preprocessing`), so ``dk serve``, ``dk run infer`` and benchmarks prepare images alike."""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np

from dk.errors import InputError
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
    """Decode a JPEG/PNG (refusing more than ``max_pixels``) and pre-process it into a batch of
    one for ``spec`` as the manifest's ``preprocessing`` section declares."""
    from PIL import Image, UnidentifiedImageError

    from dk.vision.preprocessing import PreprocessSpec, preprocess

    kind = sniff_image(data)
    if kind is None:
        raise HttpError(400, "body is not a JPEG or PNG image")
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise HttpError(413, f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except HttpError:
        raise
    except Image.DecompressionBombError:  # PIL's own, larger limit: its header declares too many pixels
        raise HttpError(413, f"image exceeds the limit of {max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise HttpError(400, f"cannot decode the {kind} image: its header is truncated or corrupt") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise HttpError(400, f"cannot decode the {kind} image: {exc}") from None
    try:
        batch = preprocess([rgb], PreprocessSpec.from_meta({"preprocessing": dict(preprocessing)}, spec))
    except InputError as exc:
        raise HttpError(400, str(exc)) from None
    return np.ascontiguousarray(batch, dtype=np.dtype(spec.dtype))
