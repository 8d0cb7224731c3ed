"""Finding the image files a JSON annotation file names, and reporting the ones that are missing."""

from __future__ import annotations

from pathlib import Path

from dk.errors import DkError
from dk.vision.dataset import DatasetItem, few


def resolve_images(json_path: Path, items: list[DatasetItem]) -> tuple[list[DatasetItem], list[str]]:
    """Items whose image exists (path made absolute) and a warning naming the missing ones;
    :class:`DkError` when none exists."""
    base = json_path.parent
    found, missing = [], []
    for item in items:
        candidates = [item.path] if item.path.is_absolute() else [base / item.path, base / "images" / item.path]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            missing.append(str(item.path))
            continue
        item.path = path
        found.append(item)
    if items and not found:
        raise DkError(
            f"none of the {len(items)} images listed in {json_path} exists (first: {', '.join(missing[:3])}); "
            f"image paths are read relative to {base}"
        )
    if not items:
        raise DkError(f"{json_path} lists no images")
    warnings = [few(f"{len(missing)} of {len(items)} images listed in {json_path} are missing; going on without them", missing)] if missing else []
    return found, warnings
