"""A Bonseyes DataTool output: ``dataset.json`` with its images, read as plain JSON.

The DataTool ships ``custom_base_types.py``/``custom_dataset_model.py`` beside the JSON to load it;
dk never executes them. It reads the structure they describe (``annotations`` keyed by sample id,
each naming its image and a class or a list of objects with boxes)::

    {"name": "digits", "labels": ["0", "1"],
     "annotations": {
        "0001": {"image": {"path": "images/0001.png", "width": 32, "height": 32}, "label": "1"},
        "0002": {"image": "images/0002.png",
                 "objects": [{"label": "car", "bbox": [4, 6, 10, 8]}]}}}

``annotations`` may also be a list; ``bbox`` is COCO-style x, y, width, height in pixels (as the
DataTool's ``CocoBoundingBox2D``), or a mapping with x/y/width/height or x1/y1/x2/y2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from dk.errors import DkError
from dk.vision.dataset import Dataset, DatasetItem, few
from dk_datatool.paths import resolve_images

IMAGE_KEYS = ("image", "image_path", "imagePath", "image_file", "file_name", "filename", "file", "path", "img")
LABEL_KEYS = ("label", "class", "class_name", "category", "category_name", "classification")
OBJECT_KEYS = ("objects", "bounding_boxes", "boxes", "bboxes", "detections", "instances")
BOX_KEYS = ("bbox", "box", "bounding_box", "boundingBox")


def read_datatool(path: Path, data: dict[str, Any]) -> Dataset:
    entries = data["annotations"]
    if isinstance(entries, dict):
        entries = list(entries.items())
    elif isinstance(entries, list):
        entries = [(str(e.get("id", i)) if isinstance(e, dict) else str(i), e) for i, e in enumerate(entries)]
    else:
        raise DkError(f"'annotations' in {path} must be a mapping or a list, not {type(entries).__name__}")
    labels = _declared_labels(data)
    parsed, bad = [], []
    for key, entry in entries:
        try:
            parsed.append(_parse_entry(str(key), entry))
        except ValueError as exc:
            bad.append(f"{key}: {exc}")
    if not parsed:
        raise DkError(few(f"no usable entry among the {len(entries)} annotations of {path}", bad))
    detection = data.get("task") == "detection" or any(objs is not None for _, _, _, objs in parsed)
    names = [n for _, _, n, _ in parsed if n is not None] + [o[0] for *_, objs in parsed for o in objs or []]
    labels = labels or sorted({str(n) for n in names}, key=_natural)
    index = {name: i for i, name in enumerate(labels)}
    items = []
    for key, image, name, objects in parsed:
        try:
            if detection:
                objects = objects or []
                classes = np.asarray([_class_index(n, index) for n, _ in objects], dtype=np.int64)
                boxes = np.asarray([b for _, b in objects], dtype=np.float32).reshape(-1, 4)
                items.append(DatasetItem(key, image, boxes=boxes, classes=classes))
            else:
                items.append(DatasetItem(key, image, label=None if name is None else _class_index(name, index)))
        except ValueError as exc:
            bad.append(f"{key}: {exc}")
    warnings = [few(f"{len(bad)} of {len(entries)} annotations in {path} were skipped", bad)] if bad else []
    items, missing = resolve_images(path, items)
    return Dataset(name=str(data.get("name") or path.parent.name), task="detection" if detection else "classification",
                   labels=labels, items=items, warnings=warnings + missing)


def _declared_labels(data: dict[str, Any]) -> list[str]:
    for key in ("labels", "classes", "categories"):
        values = data.get(key)
        if isinstance(values, list) and values:
            return [str(v.get("name", v.get("id")) if isinstance(v, dict) else v) for v in values]
    return []


def _parse_entry(key: str, entry: Any) -> tuple[str, Path, str | None, list | None]:
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object, got {type(entry).__name__}")
    image = _first(entry, IMAGE_KEYS)
    if isinstance(image, dict):
        image = _first(image, ("path", "file_name", "filename", "file", "name", "uri"))
    if not isinstance(image, str) or not image:
        raise ValueError(f"no image path (looked for {', '.join(IMAGE_KEYS[:4])}, ...)")
    label = _first(entry, LABEL_KEYS)
    objects = _first(entry, OBJECT_KEYS)
    if objects is not None and not isinstance(objects, list):
        raise ValueError("objects must be a list")
    parsed_objects = None if objects is None else [_parse_object(o) for o in objects]
    return key, Path(image), None if label is None else _label_name(label), parsed_objects


def _parse_object(obj: Any) -> tuple[str, list[float]]:
    if not isinstance(obj, dict):
        raise ValueError("an object must be a mapping with a label and a bbox")
    label = _first(obj, LABEL_KEYS)
    box = _first(obj, BOX_KEYS)
    if label is None or box is None:
        raise ValueError("an object needs a label and a bbox")
    return _label_name(label), _xyxy(box)


def _xyxy(box: Any) -> list[float]:
    if isinstance(box, (list, tuple)) and len(box) == 4:
        x, y, w, h = (float(v) for v in box)
        return [x, y, x + w, y + h]
    if isinstance(box, dict):
        if {"x1", "y1", "x2", "y2"} <= set(box):
            return [float(box[k]) for k in ("x1", "y1", "x2", "y2")]
        if {"xmin", "ymin", "xmax", "ymax"} <= set(box):
            return [float(box[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        w, h = box.get("width", box.get("w")), box.get("height", box.get("h"))
        if "x" in box and "y" in box and w is not None and h is not None:
            x, y = float(box["x"]), float(box["y"])
            return [x, y, x + float(w), y + float(h)]
    raise ValueError(f"cannot read box {str(box)[:60]}")


def _label_name(label: Any) -> str:
    if isinstance(label, dict):
        label = label.get("name", label.get("label", label.get("id")))
    if label is None or isinstance(label, (list, dict)):
        raise ValueError("label must be a name or an id")
    return str(label)


def _class_index(name: str, index: dict[str, int]) -> int:
    if name in index:
        return index[name]
    raise ValueError(f"label {name!r} is not one of the dataset's labels")


def _first(mapping: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((mapping[k] for k in keys if k in mapping), None)


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]
