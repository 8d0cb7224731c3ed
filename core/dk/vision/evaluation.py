"""``--data PATH`` datasets through the model's pre-processing, and accuracy metrics per task.

:func:`load_dataset` asks the ``dk_load_dataset`` hook (the ``datatool`` plugin) for the
dataset; :func:`evaluation_set` and :func:`calibration_batches` turn it into model inputs with
:func:`dk.vision.preprocessing.preprocess`; :func:`evaluate` computes the task's metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import attrs
import numpy as np

from dk.errors import DkError, InputError
from dk.specs import TensorSpec
from dk.vision.dataset import Dataset
from dk.vision.preprocessing import PreprocessSpec, Transform, preprocess, transform_for

log = logging.getLogger("dk.data")


@attrs.define
class EvaluationSet:
    """Pre-processed inputs with their ground truth (class indices, or boxes in image pixels)."""

    x: np.ndarray
    y: np.ndarray | None
    task: str
    targets: list[dict[str, np.ndarray]] | None = None
    transforms: list[Transform] | None = None
    input_size: tuple[int, int] | None = None


def load_dataset(location: str, split: str) -> Dataset:
    """The dataset at ``location`` from the first plugin that reads it; its warnings are logged."""
    from dk.plugins import get_plugin_manager

    if not Path(location).exists():
        raise DkError(f"data path {location} does not exist")
    manager = get_plugin_manager()
    manager.load_all()
    dataset = manager.hook.dk_load_dataset(location=str(location), split=split)
    if dataset is None:
        hint = "" if "datatool" in manager.records else " (pip install ./plugins/datatool)"
        raise DkError(
            f"no installed plugin reads {location}{hint}; --data takes an .npz (x, y), a folder of class "
            "sub-folders, a DataTool dataset.json folder or a COCO .json file"
        )
    if not isinstance(dataset, Dataset):
        raise DkError(f"dk_load_dataset returned {type(dataset).__name__} for {location}, expected a dk.vision.dataset.Dataset")
    for message in dataset.warnings:
        log.warning("warning: %s", message)
    if len(dataset) == 0:
        raise DkError(f"dataset {location} holds no usable images")
    return dataset


def class_mapping(dataset: Dataset, model_labels: Sequence[str] | None) -> np.ndarray:
    """Dataset class index -> model class index (by label name when the model names its classes)."""
    if not model_labels or not dataset.labels:
        return np.arange(max(len(dataset.labels), 1), dtype=np.int64)
    names = [str(n) for n in model_labels]
    unknown = [label for label in dataset.labels if label not in names]
    if unknown:
        raise DkError(
            f"dataset {dataset.name} has classes the model does not know: {', '.join(unknown[:5])} "
            f"(model labels: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"
        )
    return np.asarray([names.index(label) for label in dataset.labels], dtype=np.int64)


def evaluation_set(dataset: Dataset, spec: TensorSpec, meta: Mapping[str, Any], limit: int | None = None) -> EvaluationSet:
    """The first ``limit`` items pre-processed for input ``spec`` as the model ``meta`` declares."""
    pre = PreprocessSpec.from_meta(meta, spec)
    mapping = class_mapping(dataset, meta.get("labels"))
    samples = list(dataset.evaluation(limit))
    if not samples:
        raise InputError(f"no image of dataset {dataset.name} could be decoded")
    x = preprocess([s.image for s in samples], pre)
    if dataset.task == "detection":
        targets = [{"boxes": s.item.boxes, "classes": mapping[s.item.classes]} for s in samples]
        transforms = [transform_for(s.image.shape[:2], pre) for s in samples]
        return EvaluationSet(x, None, "detection", targets, transforms, pre.size)
    labelled = all(s.item.label is not None for s in samples)
    y = mapping[np.asarray([s.item.label for s in samples], dtype=np.int64)] if labelled else None
    return EvaluationSet(x, y, "classification")


def calibration_batches(
    dataset: Dataset, spec: TensorSpec, meta: Mapping[str, Any], size: int, batch: int = 16, seed: int = 0
) -> Iterator[dict[str, np.ndarray]]:
    """Feeds of pre-processed calibration images (a seeded, repeatable draw of ``size`` items)."""
    pre = PreprocessSpec.from_meta(meta, spec)
    chunk: list[np.ndarray] = []
    for sample in dataset.calibration(size, seed):
        chunk.append(sample.image)
        if len(chunk) == batch:
            yield {spec.name: preprocess(chunk, pre)}
            chunk = []
    if chunk:
        yield {spec.name: preprocess(chunk, pre)}


def evaluate(outputs: Mapping[str, np.ndarray], data: EvaluationSet, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task's metrics for ``outputs`` (from ``pipeline.run_all``) against the ground truth:
    classification top-1/top-5, per-class precision/recall, confusion matrix; detection mAP."""
    from dk.vision import metrics

    labels = meta.get("labels")
    if data.task == "detection" and data.targets is not None:
        from dk.vision.detection import DetectionConfig, detect, split_outputs

        config = DetectionConfig.from_meta(meta)
        config = attrs.evolve(config, score_threshold=float(meta.get("eval_score_threshold", 0.001)))
        boxes, scores = split_outputs(outputs, config)
        found = detect(boxes, scores, config)
        for result, transform in zip(found, data.transforms or []):
            result["boxes"] = transform.boxes_to_image(result["boxes"], data.input_size)
        return {"task": "detection", **metrics.detection_map(found, data.targets[: len(found)], labels=labels)}
    if data.y is None:
        return None
    logits = np.asarray(next(iter(outputs.values())))
    return {"task": "classification", **metrics.classification_metrics(logits.reshape(len(logits), -1), data.y, labels)}
