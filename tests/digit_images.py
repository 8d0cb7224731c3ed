"""Small real image fixtures made at test time: the default model's held-out digits as PNGs,
upscaled 4x (8x8 -> 32x32, nearest), so that resizing them back to 8x8 gives the original pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dk.default_model import load_split

SCALE = 4


def digit_images(count: int, split: str = "eval") -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` digits as 32x32 uint8 gray images, with their labels."""
    x, y = load_split(split)
    pixels = np.rint(x[:count, 0] * 255).astype(np.uint8)
    return [np.kron(p, np.ones((SCALE, SCALE), np.uint8)) for p in pixels], y[:count]


def save_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def class_folder(root: Path, count: int, split: str = "eval") -> Path:
    """``root/<digit>/<index>.png`` for the first ``count`` digits of ``split``."""
    images, labels = digit_images(count, split)
    for i, (image, label) in enumerate(zip(images, labels)):
        save_png(root / str(label) / f"{i:03d}.png", image)
    return root


def datatool_folder(root: Path, count: int) -> Path:
    """A DataTool-style output: ``dataset.json`` (annotations keyed by id) and ``images/``."""
    images, labels = digit_images(count)
    annotations = {}
    for i, (image, label) in enumerate(zip(images, labels)):
        save_png(root / "images" / f"{i:04d}.png", image)
        annotations[f"{i:04d}"] = {"image": {"path": f"images/{i:04d}.png", "width": 32, "height": 32},
                                   "label": str(label)}
    (root / "dataset.json").write_text(json.dumps({"name": "digits-dt", "annotations": annotations}))
    return root


def scene(size: tuple[int, int], boxes: list[tuple[int, int, int, int]], seed: int = 0) -> np.ndarray:
    """An RGB scene with bright rectangles (x1, y1, x2, y2) on a dark noisy background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 40, size=(*size, 3), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        image[y1:y2, x1:x2] = (200, 60 + 60 * k % 180, 40)
    return image


def coco_file(root: Path, count: int = 3) -> Path:
    """A COCO detection file with ``count`` scenes of two objects each in ``root/images``."""
    images, annotations = [], []
    for i in range(count):
        boxes = [(4 + i, 6, 30 + i, 40), (40, 20 + i, 60, 50)]
        save_png(root / "images" / f"scene{i}.png", scene((64, 72), boxes, seed=i))
        images.append({"id": i + 1, "file_name": f"scene{i}.png", "width": 72, "height": 64})
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 10 + k,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    categories = [{"id": 10, "name": "box"}, {"id": 11, "name": "plate"}]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path
