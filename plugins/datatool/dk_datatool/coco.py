"""A COCO-style detection annotation file: ``images``, ``annotations`` (``bbox`` as x, y, w, h in
pixels) and ``categories``. Image files are looked up beside the JSON, then in ``images/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dk.errors import DkError
from dk.vision.dataset import Dataset, DatasetItem, few
from dk_datatool.paths import resolve_images


def read_coco(path: Path, data: dict[str, Any]) -> Dataset:
    categories = sorted(
        (c for c in data.get("categories", []) if isinstance(c, dict) and "id" in c), key=lambda c: c["id"]
    )
    if not categories:
        raise DkError(f"COCO file {path} has no categories; each needs an 'id' and a 'name'")
    index = {c["id"]: i for i, c in enumerate(categories)}
    labels = [str(c.get("name", c["id"])) for c in categories]
    boxes: dict[Any, list[list[float]]] = {}
    classes: dict[Any, list[int]] = {}
    bad: list[str] = []
    for ann in data.get("annotations", []):
        try:
            if ann.get("iscrowd"):
                continue  # crowd regions are not objects to detect
            x, y, w, h = (float(v) for v in ann["bbox"])
            cls = index[ann["category_id"]]
        except (KeyError, TypeError, ValueError):
            bad.append(f"annotation {ann.get('id', '?') if isinstance(ann, dict) else ann!r}")
            continue
        boxes.setdefault(ann["image_id"], []).append([x, y, x + w, y + h])
        classes.setdefault(ann["image_id"], []).append(cls)
    items = []
    for image in data["images"]:
        if not isinstance(image, dict) or "file_name" not in image or "id" not in image:
            bad.append(f"image entry {str(image)[:40]}")
            continue
        items.append(DatasetItem(
            str(image["id"]),
            Path(image["file_name"]),
            boxes=np.asarray(boxes.get(image["id"], []), dtype=np.float32).reshape(-1, 4),
            classes=np.asarray(classes.get(image["id"], []), dtype=np.int64),
        ))
    warnings = [few(f"{len(bad)} malformed entries in {path} were skipped", bad)] if bad else []
    items, missing = resolve_images(path, items)
    warnings += missing
    return Dataset(name=path.stem, task="detection", labels=labels, items=items, warnings=warnings)
