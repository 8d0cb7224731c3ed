"""The pre-processing a model declares in its manifest, applied the same way by every consumer.

``dk run infer``, dataset evaluation, calibration and ``dk serve`` all call :func:`preprocess`:
images (``H x W x 3`` RGB or ``H x W`` gray, uint8) in, one model-ready float32 batch out.
The ``preprocessing`` section of the manifest's ``model`` metadata says how (all keys optional)::

    {"layout": "NCHW", "colour": "rgb", "resize": "letterbox", "input_range": [0, 255],
     "scale": 0.00392156862745098, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
     "pad_value": 114}

An 8-bit pixel ``p`` becomes ``((p / 255 * (hi - lo) + lo) * scale - mean) / std`` where
``[lo, hi]`` is ``input_range``: the default model declares ``input_range [0, 16]`` and
``scale 1/16`` because it was trained on 0..16 digits, so an 8-bit image maps to ``p / 255``.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from dk.errors import InputError
from dk.specs import TensorSpec

RESIZE_POLICIES = ("stretch", "letterbox", "center-crop")
COLOURS = ("rgb", "bgr", "gray")
LAYOUTS = ("NCHW", "NHWC")
_GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as OpenCV


@attrs.frozen
class PreprocessSpec:
    """How images become model input: target size, resize policy, colour order, layout, scaling."""

    size: tuple[int, int]
    layout: str = "NCHW"
    colour: str = "rgb"
    resize: str = "stretch"
    input_range: tuple[float, float] = (0.0, 255.0)
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    pad_value: int = 0

    @property
    def channels(self) -> int:
        return 1 if self.colour == "gray" else 3

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(self).items()}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None, spec: TensorSpec) -> "PreprocessSpec":
        """The spec for input ``spec`` from a manifest's ``model`` section; what the manifest leaves
        out is inferred from the input shape (NCHW, 1 channel = gray, 3 = RGB, 8-bit to [0, 1])."""
        pre = dict((meta or {}).get("preprocessing") or {})
        shape = tuple(spec.shape)
        if len(shape) != 4:
            raise InputError(f"input {spec.name!r} has rank {len(shape)}; images need a rank-4 input (NCHW or NHWC)")
        layout = str(pre.get("layout") or ("NHWC" if shape[3] in (1, 3) and shape[1] not in (1, 3) else "NCHW")).upper()
        if layout not in LAYOUTS:
            raise InputError(f"preprocessing layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        h, w, c = (shape[2], shape[3], shape[1]) if layout == "NCHW" else (shape[1], shape[2], shape[3])
        size = pre.get("size") or (h, w)
        if not all(isinstance(d, int) for d in size):
            raise InputError(
                f"input {spec.name!r} has a dynamic height/width {list(shape)}; declare the image size at export "
                "with --input-size HxW (preprocessing 'size' in --model-meta) or export with fixed --shapes"
            )
        colour = str(pre.get("colour") or ("gray" if c == 1 else "rgb")).lower()
        colour = "gray" if colour in ("grey", "grayscale", "l") else colour
        if colour not in COLOURS:
            raise InputError(f"preprocessing colour {colour!r} is not one of {', '.join(COLOURS)}")
        resize = str(pre.get("resize") or "stretch").lower()
        if resize not in RESIZE_POLICIES:
            raise InputError(f"preprocessing resize {resize!r} is not one of {', '.join(RESIZE_POLICIES)}")
        lo, hi = pre.get("input_range") or (0.0, 255.0)
        scale = pre.get("scale")
        if scale is None:
            scale = 1.0 / 255.0 if (lo, hi) == (0.0, 255.0) else 1.0
        return cls(
            size=(int(size[0]), int(size[1])),
            layout=layout,
            colour=colour,
            resize=resize,
            input_range=(float(lo), float(hi)),
            scale=float(scale),
            mean=tuple(float(v) for v in np.atleast_1d(pre.get("mean", 0.0))),
            std=tuple(float(v) for v in np.atleast_1d(pre.get("std", 1.0))),
            pad_value=int(pre.get("pad_value", 0)),
        )


@attrs.frozen
class Transform:
    """Where an image landed in the model input: ``model_xy = image_xy * scale + offset`` (pixels)."""

    image_size: tuple[int, int]
    scale: tuple[float, float]  # (sx, sy)
    offset: tuple[float, float]  # (dx, dy); negative for a crop

    def boxes_to_image(self, boxes: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
        """Boxes ``[K, 4]`` xyxy normalised to the model input -> pixels of the original image."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        h, w = input_size
        sx, sy = self.scale
        dx, dy = self.offset
        out = (boxes * np.array([w, h, w, h], np.float32) - np.array([dx, dy, dx, dy], np.float32)) / np.array(
            [sx, sy, sx, sy], np.float32
        )
        ih, iw = self.image_size
        return np.clip(out, 0, np.array([iw, ih, iw, ih], np.float32))


def transform_for(image_size: tuple[int, int], spec: PreprocessSpec) -> Transform:
    """The geometry :func:`preprocess` applies to an image of ``image_size`` (height, width)."""
    (h, w), (th, tw) = image_size, spec.size
    if spec.resize == "stretch":
        return Transform((h, w), (tw / w, th / h), (0.0, 0.0))
    ratio = min(th / h, tw / w) if spec.resize == "letterbox" else max(th / h, tw / w)
    nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))
    return Transform((h, w), (nw / w, nh / h), (float((tw - nw) // 2), float((th - nh) // 2)))


def preprocess(images: Sequence[np.ndarray] | np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Images (uint8, ``H x W x 3`` RGB or ``H x W`` gray, any sizes) -> a float32 model batch."""
    th, tw = spec.size
    planes = np.empty((len(images), th, tw, 3), dtype=np.float32)
    for i, image in enumerate(images):
        planes[i] = _place(_as_rgb(image), spec)
    if spec.colour == "gray":
        planes = (planes @ _GRAY_WEIGHTS)[..., None]
    elif spec.colour == "bgr":
        planes = planes[..., ::-1]
    lo, hi = spec.input_range
    scale = np.float32((hi - lo) / 255.0 * spec.scale)
    offset = np.float32(lo * spec.scale)
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    batch = ((planes * scale + offset) - mean) / std
    if spec.layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise InputError(f"images must be uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise InputError(f"an image must be H x W or H x W x 1/3/4, got shape {list(image.shape)}")


def _place(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize ``image`` by the spec's policy onto a canvas of the target size (float32 pixels)."""
    th, tw = spec.size
    t = transform_for(image.shape[:2], spec)
    nh = max(1, round(image.shape[0] * t.scale[1]))
    nw = max(1, round(image.shape[1] * t.scale[0]))
    resized = resize(image, (nh, nw)).astype(np.float32)
    if spec.resize == "stretch":
        return resized
    canvas = np.full((th, tw, 3), spec.pad_value, dtype=np.float32)
    dx, dy = int(t.offset[0]), int(t.offset[1])
    # letterbox: paste inside (offsets >= 0); center-crop: cut out (offsets <= 0)
    sy0, sx0 = max(0, -dy), max(0, -dx)
    cy0, cx0 = max(0, dy), max(0, dx)
    hh, ww = min(th - cy0, nh - sy0), min(tw - cx0, nw - sx0)
    canvas[cy0 : cy0 + hh, cx0 : cx0 + ww] = resized[sy0 : sy0 + hh, sx0 : sx0 + ww]
    return canvas


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``H x W x C`` uint8 to ``size`` (height, width): OpenCV where installed (area when
    shrinking, bilinear when enlarging), else numpy (block mean for integer shrink factors, bilinear)."""
    h, w = image.shape[:2]
    nh, nw = size
    if (nh, nw) == (h, w):
        return image
    if _has_cv2():
        import cv2

        shrink = nh < h or nw < w
        return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR).reshape(
            nh, nw, -1
        )
    if h % nh == 0 and w % nw == 0:
        fy, fx = h // nh, w // nw
        blocks = image.reshape(nh, fy, nw, fx, -1).astype(np.float32).mean(axis=(1, 3))
        return np.clip(np.rint(blocks), 0, 255).astype(np.uint8)
    return _bilinear(image, nh, nw)


def _bilinear(image: np.ndarray, nh: int, nw: int) -> np.ndarray:
    h, w = image.shape[:2]
    ys = np.clip((np.arange(nh) + 0.5) * (h / nh) - 0.5, 0, h - 1)
    xs = np.clip((np.arange(nw) + 0.5) * (w / nw) - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    img = image.astype(np.float32)
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return np.clip(np.rint(top * (1 - wy) + bottom * wy), 0, 255).astype(np.uint8)


def _has_cv2() -> bool:
    return importlib.util.find_spec("cv2") is not None
