"""Drawing results onto images: the top class as a caption, detections as labelled boxes.

Pillow where installed, else OpenCV. Small images are enlarged first so the text stays legible.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dk.errors import MissingDependency
from dk.media import OPENCV_HINT, PILLOW_HINT, has_module

MIN_SIDE = 128
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def render(image: np.ndarray, result: dict[str, Any]) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with ``result`` drawn on it: a classification result
    (``top_k``) or detections (``detections`` with ``box`` in image pixels)."""
    factor = max(1, int(np.ceil(MIN_SIDE / max(1, min(image.shape[:2])))))
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
    if has_module("PIL"):
        from PIL import Image, ImageDraw

        img = Image.fromarray(np.ascontiguousarray(canvas))
        draw = ImageDraw.Draw(img)
        for (x1, y1, x2, y2), text, colour in boxes:
            draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
            draw.text((x1 + 2, max(0, y1 - 11)), text, fill=colour)
        if caption:
            draw.rectangle([0, 0, 8 + 7 * len(caption), 14], fill=(0, 0, 0))
            draw.text((3, 2), caption, fill=(255, 255, 255))
        return np.asarray(img)
    if has_module("cv2"):
        import cv2

        out = np.ascontiguousarray(canvas)
        for (x1, y1, x2, y2), text, colour in boxes:
            cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, 2)
            cv2.putText(out, text, (int(x1) + 2, max(10, int(y1) - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1)
        if caption:
            cv2.rectangle(out, (0, 0), (8 + 7 * len(caption), 14), (0, 0, 0), -1)
            cv2.putText(out, caption, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        return out
    raise MissingDependency(f"drawing results needs Pillow ({PILLOW_HINT}) or OpenCV ({OPENCV_HINT})")
