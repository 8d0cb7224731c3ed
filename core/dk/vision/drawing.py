"""Drawing results onto images: the top class as a caption, detections as labelled boxes.

Pillow where installed, else OpenCV. Small images are enlarged first (the CLI says so) and the label
is sized to the image, so that it stays legible at any size.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dk.errors import MissingDependency
from dk.vision.media import OPENCV_HINT, PILLOW_HINT, has_module

MIN_SIDE = 128
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def scale_for(image: np.ndarray) -> int:
    """The whole factor :func:`render` enlarges ``image`` by (nearest neighbour) so that its
    shorter side reaches :data:`MIN_SIDE`; 1 for images that are large enough."""
    return max(1, int(np.ceil(MIN_SIDE / max(1, min(image.shape[:2])))))


def text_size(canvas_shape: tuple[int, ...]) -> int:
    """Label height in pixels for a canvas: about 1/20 of its shorter side, at least 14, so that the
    label reads the same on a 128-pixel thumbnail and a 4K frame."""
    return max(14, round(min(canvas_shape[:2]) / 20))


def render(image: np.ndarray, result: dict[str, Any]) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with ``result`` drawn on it: a classification result
    (``top_k``) or detections (``detections`` with ``box`` in image pixels). Images with a side under
    :data:`MIN_SIDE` are enlarged by :func:`scale_for` first."""
    factor = scale_for(image)
    canvas = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image.copy()
    boxes = []
    for det in result.get("detections", []):
        colour = PALETTE[int(det["class"]) % len(PALETTE)]
        boxes.append(([v * factor for v in det["box"]], f"{det['label']} {det['score']:.2f}", colour))
    caption = None
    if result.get("top_k"):
        best = result["top_k"][0]
        caption = f"{best['label']} {best['score']:.2f}"
    return _draw(canvas, boxes, caption)


def _draw(canvas: np.ndarray, boxes: Sequence[tuple[list[float], str, tuple]], caption: str | None) -> np.ndarray:
    size = text_size(canvas.shape)
    line = max(2, size // 8)
    pad = max(2, size // 6)
    if has_module("PIL"):
        from PIL import Image, ImageDraw, ImageFont

        img = Image.fromarray(np.ascontiguousarray(canvas))
        draw = ImageDraw.Draw(img)
        try:
            font = ImageFont.load_default(size=size)
        except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
            font = ImageFont.load_default()
        for (x1, y1, x2, y2), text, colour in boxes:
            draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            y = max(0, y1 - (bottom - top) - 2 * pad)
            draw.rectangle([x1, y, x1 + right - left + 2 * pad, y + bottom - top + 2 * pad], fill=colour)
            draw.text((x1 + pad - left, y + pad - top), text, fill=(0, 0, 0), font=font)
        if caption:
            left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
            draw.rectangle([0, 0, right - left + 2 * pad, bottom - top + 2 * pad], fill=(0, 0, 0))
            draw.text((pad - left, pad - top), caption, fill=(255, 255, 255), font=font)
        return np.asarray(img)
    if has_module("cv2"):
        import cv2

        out = np.ascontiguousarray(canvas)
        scale = size / 22  # FONT_HERSHEY_SIMPLEX is about 22 pixels high at scale 1
        thickness = max(1, size // 12)
        for (x1, y1, x2, y2), text, colour in boxes:
            cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, line)
            (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            y = max(h + base + 2 * pad, int(y1))
            cv2.rectangle(out, (int(x1), y - h - base - 2 * pad), (int(x1) + w + 2 * pad, y), colour, -1)
            cv2.putText(out, text, (int(x1) + pad, y - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
        if caption:
            (w, h), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            cv2.rectangle(out, (0, 0), (w + 2 * pad, h + base + 2 * pad), (0, 0, 0), -1)
            cv2.putText(out, caption, (pad, pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness)
        return out
    raise MissingDependency(f"drawing results needs Pillow ({PILLOW_HINT}) or OpenCV ({OPENCV_HINT})")
