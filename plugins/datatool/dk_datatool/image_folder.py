"""A folder of images with one sub-folder per class (``root/cat/1.png``), optionally split into
``train/`` and ``val/`` (or ``test/``); a flat folder of images is an unlabelled set (calibration)."""

from __future__ import annotations

import re
from pathlib import Path

from dk.errors import DkError
from dk.vision.dataset import Dataset, DatasetItem, few
from dk.vision.media import IMAGE_SUFFIXES, is_image

SPLIT_FOLDERS = {"calib": ("calib", "train"), "eval": ("eval", "val", "valid", "validation", "test")}


def read_image_folder(root: Path, split: str) -> Dataset:
    root = _split_folder(root, split)
    classes = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=_natural)
    items: list[DatasetItem] = []
    empty = []
    for index, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
        items += [DatasetItem(f"{folder.name}/{file.name}", file, label=index) for file in files]
        empty += [] if files else [folder.name]
    labels = [d.name for d in classes]
    if not items:
        flat = sorted(p for p in root.iterdir() if p.is_file() and is_image(p))
        if not flat:
            raise DkError(
                f"folder {root} holds no images: expected one sub-folder of images per class "
                f"({', '.join(IMAGE_SUFFIXES[:3])}, ...) or a DataTool dataset.json"
            )
        items, labels = [DatasetItem(p.name, p) for p in flat], []
    warnings = [few(f"{len(empty)} class folders in {root} hold no images", empty)] if empty and labels else []
    return Dataset(name=root.name, task="classification", labels=labels, items=items, warnings=warnings)


def _split_folder(root: Path, split: str) -> Path:
    """``root/train`` for calibration and ``root/val`` for evaluation when the folder is split."""
    names = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    splits = [n for n in names if n in SPLIT_FOLDERS["calib"] + SPLIT_FOLDERS["eval"]]
    if len(splits) < 2 or len(splits) != len(names):
        return root
    for name in SPLIT_FOLDERS.get(split, ()):
        if name in names:
            return names[name]
    return root


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]
