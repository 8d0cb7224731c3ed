"""Accuracy metrics in numpy: classification (top-k, per-class precision/recall, confusion
matrix) and COCO-style detection mAP (mAP@[.5:.95] and mAP@.5, 101-point interpolation).

The detection metric follows pycocotools' ``COCOeval`` for boxes with area range "all": per image
and class the detections are taken best first (at most ``max_detections``) and each is matched
to the unmatched ground truth of highest IoU at or above the threshold; crowd regions are not
modelled. Classes without ground truth are left out of the mean.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from dk.vision.detection import box_iou

IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def classification_metrics(
    scores: np.ndarray, y_true: np.ndarray, labels: Sequence[str] | None = None, top_k: Sequence[int] = (1, 5)
) -> dict[str, Any]:
    """Top-k accuracy, per-class precision/recall and the confusion matrix (rows: truth).

    :param scores: ``[N, C]`` logits or probabilities (argmax is the prediction).
    :param y_true: ``[N]`` integer class indices.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    y_true = np.asarray(y_true, dtype=np.int64)[: len(scores)]
    n, c = scores.shape
    c = max(c, int(y_true.max()) + 1 if n else 0)
    ranked = np.argsort(-scores, axis=1, kind="stable")
    result: dict[str, Any] = {"samples": int(n)}
    for k in top_k:
        hits = (ranked[:, : min(k, scores.shape[1])] == y_true[:, None]).any(axis=1)
        result[f"top{k}"] = float(hits.mean()) if n else 0.0
    predicted = ranked[:, 0]
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (y_true, predicted), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted_count, true_count = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted_count, out=np.zeros(c), where=predicted_count > 0)
    recall = np.divide(tp, true_count, out=np.zeros(c), where=true_count > 0)
    result["per_class"] = [
        {
            "class": i,
            "label": labels[i] if labels and i < len(labels) else str(i),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "support": int(true_count[i]),
        }
        for i in range(c)
    ]
    result["confusion_matrix"] = confusion.tolist()
    return result


def detection_map(
    predictions: Sequence[dict[str, np.ndarray]],
    targets: Sequence[dict[str, np.ndarray]],
    max_detections: int = 100,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """COCO-style box mAP over images.

    :param predictions: Per image ``boxes [K, 4]`` (xyxy), ``scores [K]``, ``classes [K]``.
    :param targets: Per image ground truth ``boxes [M, 4]`` (xyxy, same units), ``classes [M]``.
    :return: ``map`` (mean over IoU .50:.95), ``map50``, ``map75`` and ``per_class`` AP.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} images")
    classes = sorted({int(c) for t in targets for c in np.asarray(t["classes"]).reshape(-1)})
    ap = np.full((len(IOU_THRESHOLDS), len(classes)), np.nan)
    for j, cls in enumerate(classes):
        ap[:, j] = _class_ap(predictions, targets, cls, max_detections)
    mean = np.nanmean(ap, axis=1) if classes else np.zeros(len(IOU_THRESHOLDS))
    return {
        "map": float(mean.mean()),
        "map50": float(mean[0]),
        "map75": float(mean[5]),
        "images": len(targets),
        "per_class": [
            {"class": cls, "label": labels[cls] if labels and cls < len(labels) else str(cls),
             "ap": float(ap[:, j].mean()), "ap50": float(ap[0, j])}
            for j, cls in enumerate(classes)
        ],
    }


def _class_ap(predictions, targets, cls: int, max_detections: int) -> np.ndarray:
    """AP of one class at every IoU threshold."""
    scores, matched, total_gt = [], [], 0
    for pred, target in zip(predictions, targets):
        gt = np.asarray(target["boxes"], dtype=np.float64).reshape(-1, 4)[np.asarray(target["classes"]).reshape(-1) == cls]
        mask = np.asarray(pred["classes"]).reshape(-1) == cls
        det = np.asarray(pred["boxes"], dtype=np.float64).reshape(-1, 4)[mask]
        det_scores = np.asarray(pred["scores"], dtype=np.float64).reshape(-1)[mask]
        order = np.argsort(-det_scores, kind="mergesort")[:max_detections]
        det, det_scores = det[order], det_scores[order]
        total_gt += len(gt)
        scores.append(det_scores)
        matched.append(_match(det, gt))
    if total_gt == 0:
        return np.full(len(IOU_THRESHOLDS), np.nan)
    all_scores = np.concatenate(scores)
    all_matched = np.concatenate(matched, axis=1) if matched else np.zeros((len(IOU_THRESHOLDS), 0), bool)
    order = np.argsort(-all_scores, kind="mergesort")
    tp = np.cumsum(all_matched[:, order], axis=1, dtype=np.float64)
    fp = np.cumsum(~all_matched[:, order], axis=1, dtype=np.float64)
    result = np.zeros(len(IOU_THRESHOLDS))
    for t in range(len(IOU_THRESHOLDS)):
        recall = tp[t] / total_gt
        precision = tp[t] / np.maximum(tp[t] + fp[t], np.finfo(np.float64).eps)
        precision = np.maximum.accumulate(precision[::-1])[::-1] if precision.size else precision
        idx = np.searchsorted(recall, RECALL_POINTS, side="left")
        q = np.zeros(len(RECALL_POINTS))
        valid = idx < len(precision)
        q[valid] = precision[idx[valid]]
        result[t] = q.mean()
    return result


def _match(det: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """``[T, D]``: whether each detection (best first) matches a ground truth at each threshold."""
    out = np.zeros((len(IOU_THRESHOLDS), len(det)), dtype=bool)
    if len(det) == 0 or len(gt) == 0:
        return out
    ious = box_iou(det, gt)
    reachable = np.flatnonzero(ious.max(axis=1) >= IOU_THRESHOLDS[0])  # the rest match nothing
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt), dtype=bool)
        for d in reachable:
            candidates = np.where(taken, -1.0, ious[d])
            best = int(np.argmax(candidates[::-1]))
            best = len(gt) - 1 - best  # the last of equal IoUs, as COCOeval
            if candidates[best] >= min(threshold, 1 - 1e-10):
                taken[best] = True
                out[t, d] = True
    return out
