"""Datasets as ``dk_load_dataset`` returns them: labelled image references, decoded lazily.

A dataset plugin lists the items (image path and its label or boxes); core decodes the images,
applies the model's pre-processing and computes metrics. Images that fail to decode are
skipped with one warning naming how many and the first few.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Sequence

import attrs
import numpy as np

from dk.errors import InputError

log = logging.getLogger("dk.data")
TASKS = ("classification", "detection")


@attrs.define
class DatasetItem:
    """One image and its annotation: a class index, or boxes ``[K, 4]`` xyxy in pixels and classes."""

    id: str
    path: Path
    label: int | None = None
    boxes: np.ndarray | None = None
    classes: np.ndarray | None = None


@attrs.define
class Sample:
    """A decoded item: ``image`` is ``H x W x 3`` uint8 RGB."""

    item: DatasetItem
    image: np.ndarray


@attrs.define
class Dataset:
    """Labelled images with evaluation and (deterministically sampled) calibration iterators.

    :ivar task: ``classification`` or ``detection``.
    :ivar labels: Class names, indexed by the items' class indices.
    :ivar warnings: What was wrong with the source but skipped (missing files, bad entries).
    """

    name: str
    task: str
    labels: list[str]
    items: list[DatasetItem]
    warnings: list[str] = attrs.field(factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def evaluation(self, limit: int | None = None) -> Iterator[Sample]:
        """Every item in order (the first ``limit``), decoded."""
        return self._decode(self.items[:limit] if limit is not None else self.items)

    def calibration(self, size: int, seed: int = 0) -> Iterator[Sample]:
        """``size`` items drawn without replacement with ``seed`` (the same ones every run), decoded."""
        return self._decode([self.items[i] for i in calibration_indices(len(self.items), size, seed)])

    def _decode(self, items: Sequence[DatasetItem]) -> Iterator[Sample]:
        from dk.vision.media import read_image

        failed: list[str] = []
        for item in items:
            try:
                yield Sample(item, read_image(item.path))
            except InputError as exc:
                failed.append(str(exc))
        if failed:
            message = few(f"{len(failed)} of {len(items)} images of {self.name} could not be decoded and were skipped", failed)
            self.warnings.append(message)
            log.warning("warning: %s", message)


def calibration_indices(total: int, size: int, seed: int = 0) -> list[int]:
    """Sorted indices of a seeded draw of ``min(size, total)`` out of ``total`` items."""
    if size >= total:
        return list(range(total))
    return sorted(np.random.default_rng(seed).choice(total, size=size, replace=False).tolist())


def few(summary: str, examples: Sequence[str], limit: int = 3) -> str:
    """``summary`` followed by the first ``limit`` examples."""
    shown = "; ".join(examples[:limit])
    more = f" (+{len(examples) - limit} more)" if len(examples) > limit else ""
    return f"{summary}: {shown}{more}" if shown else summary
