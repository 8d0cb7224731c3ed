"""Detection post-processing in numpy: decode boxes, score threshold, per-class NMS, top-k.

A detector exposes two outputs: ``boxes`` ``[N, A, 4]`` and ``scores`` ``[N, A, C]`` (per-class
probabilities, no background column). The manifest's ``model`` section may say more::

    {"task": "detection", "labels": ["person", ...], "box_format": "xyxy" | "cxcywh" | "yxyx",
     "boxes_normalized": true, "score_threshold": 0.5, "iou_threshold": 0.45,
     "max_detections": 100, "background_class": null,
     "boxes_output": "boxes", "scores_output": "scores"}

Results are boxes ``[x1, y1, x2, y2]`` normalised to the model input; :mod:`dk.vision.preprocessing`
maps them back to the pixels of the original image.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np

from dk.errors import DkError

BOX_FORMATS = ("xyxy", "cxcywh", "yxyx")


@attrs.frozen
class DetectionConfig:
    """How to read a detector's outputs; every field has a default (see the module docstring)."""

    labels: tuple[str, ...] = ()
    box_format: str = "xyxy"
    boxes_normalized: bool = True
    input_size: tuple[int, int] | None = None  # (height, width), for pixel boxes
    score_threshold: float = 0.5
    iou_threshold: float = 0.45
    max_detections: int = 100
    background_class: int | None = None
    boxes_output: str | None = None
    scores_output: str | None = None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "DetectionConfig":
        fields = {f.name for f in attrs.fields(cls)}
        values = {k: v for k, v in meta.items() if k in fields and v is not None}
        if "labels" in values:
            values["labels"] = tuple(str(v) for v in values["labels"])
        if "input_size" in values:
            values["input_size"] = tuple(int(v) for v in values["input_size"])
        config = cls(**values)
        if config.box_format not in BOX_FORMATS:
            raise DkError(f"detection box_format {config.box_format!r} is not one of {', '.join(BOX_FORMATS)}")
        return config

    def label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else str(index)


def split_outputs(outputs: Mapping[str, np.ndarray], config: DetectionConfig) -> tuple[np.ndarray, np.ndarray]:
    """The (boxes, scores) arrays among ``outputs``: by configured name, else by name, else by shape."""
    arrays = {k: np.asarray(v) for k, v in outputs.items()}
    boxes = arrays.get(config.boxes_output or "boxes")
    scores = arrays.get(config.scores_output or "scores")
    if boxes is None or scores is None:
        by_shape = [v for v in arrays.values() if v.ndim == 3]
        four = [v for v in by_shape if v.shape[-1] == 4]
        rest = [v for v in by_shape if v.shape[-1] != 4]
        if len(four) == 1 and len(rest) == 1:
            boxes, scores = four[0], rest[0]
    if boxes is None or scores is None:
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in arrays.items())
        raise DkError(
            f"cannot find detection outputs boxes [N, A, 4] and scores [N, A, C] among {shapes}; "
            "name them 'boxes' and 'scores' or set boxes_output/scores_output in the model metadata"
        )
    if boxes.shape[:2] != scores.shape[:2] or boxes.shape[-1] != 4:
        raise DkError(f"detection outputs disagree: boxes {list(boxes.shape)} vs scores {list(scores.shape)}")
    return boxes.astype(np.float32), scores.astype(np.float32)


def decode_boxes(boxes: np.ndarray, config: DetectionConfig) -> np.ndarray:
    """Boxes in the model's format -> ``x1, y1, x2, y2`` normalised to the model input."""
    b = np.asarray(boxes, dtype=np.float32)
    if config.box_format == "cxcywh":
        half = b[..., 2:4] / 2
        b = np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)
    elif config.box_format == "yxyx":
        b = b[..., [1, 0, 3, 2]]
    if not config.boxes_normalized:
        if config.input_size is None:
            raise DkError("pixel boxes need input_size (height, width) in the detection metadata")
        h, w = config.input_size
        b = b / np.array([w, h, w, h], dtype=np.float32)
    return b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a [K, 4]`` and ``b [M, 4]`` -> ``[K, M]``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first (ties: lower index first).
    A box is dropped when its IoU with a kept box is strictly greater than ``iou_threshold``;
    stops after ``limit`` boxes are kept (the greedy order makes those the final first ones)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    areas = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    keep = []
    while order.size and (limit is None or len(keep) < limit):
        best, rest = order[0], order[1:]
        keep.append(best)
        lt = np.maximum(boxes[best, :2], boxes[rest, :2])
        rb = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float, limit: int | None = None
) -> np.ndarray:
    """NMS within each class only (boxes of different classes never suppress each other)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if boxes.size == 0:
        return np.zeros(0, dtype=np.int64)
    # shift each class to its own region so that one NMS pass never mixes classes
    span = float(boxes.max() - boxes.min()) + 1.0
    shifted = boxes + (np.asarray(classes, dtype=np.float64) * span)[:, None]
    return nms(shifted, scores, iou_threshold, limit)


def detect(boxes: np.ndarray, scores: np.ndarray, config: DetectionConfig) -> list[dict[str, np.ndarray]]:
    """Per image: ``boxes [K, 4]`` (normalised xyxy), ``scores [K]``, ``classes [K]`` after the
    score threshold and per-class NMS, at most ``max_detections``, best first."""
    decoded = decode_boxes(boxes, config)
    results = []
    for image_boxes, image_scores in zip(decoded, scores):
        if config.background_class is not None:
            image_scores = image_scores.copy()
            image_scores[:, config.background_class] = 0.0
        anchor, cls = np.nonzero(image_scores > config.score_threshold)
        cand_boxes, cand_scores = image_boxes[anchor], image_scores[anchor, cls]
        keep = batched_nms(cand_boxes, cand_scores, cls, config.iou_threshold, config.max_detections)
        results.append({"boxes": cand_boxes[keep], "scores": cand_scores[keep], "classes": cls[keep]})
    return results


def postprocess_detections(outputs: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``dk_postprocess`` for task ``detection``: JSON-ready detections per image."""
    config = DetectionConfig.from_meta(meta)
    boxes, scores = split_outputs(outputs, config)
    results = []
    for found in detect(boxes, scores, config):
        results.append({
            "detections": [
                {"class": int(c), "label": config.label(int(c)), "score": float(s), "box": [float(v) for v in b]}
                for b, s, c in zip(found["boxes"], found["scores"], found["classes"])
            ]
        })
    return results
