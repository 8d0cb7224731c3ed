"""dk plugin ``datatool``: thin hooks over :mod:`dk_datatool.sources` (imported only when used)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import TYPE_CHECKING

from dk.hooks import hookimpl

if TYPE_CHECKING:
    from dk.specs import PluginInfo
    from dk.vision.dataset import Dataset

FORMATS = ["datatool-json", "image-folder", "coco-json"]


@hookimpl
def dk_describe(probe: bool) -> "PluginInfo":
    from dk.specs import PluginInfo

    info = PluginInfo(name="datatool", kind="data", formats_in=FORMATS, details={"tasks": ["classification", "detection"]})
    for package, dist in (("PIL", "pillow"), ("cv2", "opencv-python-headless"), ("pycocotools", "pycocotools")):
        if importlib.util.find_spec(package) is not None:
            info.versions[dist] = importlib.metadata.version(dist)
    if "pillow" not in info.versions and "opencv-python-headless" not in info.versions:
        info.available, info.status = False, "missing-dependency"
        info.reason = "decoding images needs Pillow: pip install pillow"
    elif "opencv-python-headless" not in info.versions:
        info.details["video"] = "videos and cameras need OpenCV: pip install opencv-python-headless"
    return info


@hookimpl
def dk_load_dataset(location: str, split: str) -> "Dataset | None":
    from dk_datatool.sources import open_dataset

    return open_dataset(location, split)
