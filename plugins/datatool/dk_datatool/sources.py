"""Which reader a ``--data`` location needs: DataTool JSON, COCO JSON or an image folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dk.errors import DkError
from dk.vision.dataset import Dataset

#: split -> the DataTool output files to prefer in a folder, in order
DATATOOL_FILES = {
    "calib": ("dataset_calib.json", "dataset_train.json", "dataset.json"),
    "eval": ("dataset_eval.json", "dataset_val.json", "dataset_test.json", "dataset.json"),
}


def open_dataset(location: str, split: str) -> Dataset | None:
    """The dataset at ``location``, or ``None`` when it is no format this plugin reads."""
    path = Path(location)
    if path.is_dir():
        for name in DATATOOL_FILES.get(split, ("dataset.json",)):
            if (path / name).is_file():
                return _from_json(path / name, split)
        from dk_datatool.image_folder import read_image_folder

        return read_image_folder(path, split)
    if path.is_file() and path.suffix.lower() == ".json":
        return _from_json(path, split)
    return None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DkError(
            f"cannot parse {path}: {exc.msg} at line {exc.lineno} column {exc.colno}; it must be a DataTool "
            "dataset.json or a COCO annotation file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DkError(f"cannot read {path}: {exc}") from None


def _from_json(path: Path, split: str) -> Dataset:
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("images"), list) and "categories" in data:
        from dk_datatool.coco import read_coco

        return read_coco(path, data)
    if isinstance(data, dict) and "annotations" in data:
        from dk_datatool.datatool_json import read_datatool

        return read_datatool(path, data)
    keys = ", ".join(sorted(data)[:6]) if isinstance(data, dict) else type(data).__name__
    raise DkError(
        f"{path} is neither a DataTool dataset.json (with 'annotations') nor a COCO file (with 'images' and "
        f"'categories'); found {keys}"
    )
