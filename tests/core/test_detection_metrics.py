"""Accuracy metrics: hand-computed cases, and COCO mAP checked against pycocotools where installed."""

from __future__ import annotations

import numpy as np
import pytest

from dk.vision.metrics import classification_metrics, detection_map

GT = {"boxes": np.array([[0, 0, 10, 10]], float), "classes": np.array([0])}


def _pred(boxes, scores, classes):
    return {"boxes": np.asarray(boxes, float), "scores": np.asarray(scores, float), "classes": np.asarray(classes)}


def test_classification_metrics_by_hand():
    scores = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    result = classification_metrics(scores, np.array([0, 1, 1, 2]), ["a", "b", "c"], top_k=(1, 2))
    assert result["top1"] == 0.75 and result["top2"] == 1.0
    assert result["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    per = {c["label"]: (c["precision"], c["recall"], c["support"]) for c in result["per_class"]}
    assert per == {"a": (0.5, 1.0, 1), "b": (1.0, 0.5, 2), "c": (1.0, 1.0, 1)}


def test_perfect_detection_is_map_one():
    result = detection_map([_pred([[0, 0, 10, 10]], [0.9], [0])], [GT])
    assert result["map"] == pytest.approx(1.0) and result["map50"] == pytest.approx(1.0)


def test_iou_point_six_counts_at_three_of_ten_thresholds():
    result = detection_map([_pred([[0, 0, 10, 6]], [0.9], [0])], [GT])  # IoU 0.6
    assert result["map50"] == pytest.approx(1.0) and result["map"] == pytest.approx(0.3)


def test_a_false_positive_between_two_hits_by_hand():
    gt = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "classes": np.array([0, 0])}
    pred = _pred([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0])
    # precision 1 up to recall 0.5 (51 of 101 points), 2/3 above it (50 points)
    assert detection_map([pred], [gt])["map"] == pytest.approx((51 + 50 * 2 / 3) / 101)


def test_a_missed_class_scores_zero_and_classes_without_truth_are_left_out():
    gt = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "classes": np.array([0, 1])}
    pred = _pred([[0, 0, 10, 10], [40, 40, 50, 50]], [0.9, 0.9], [0, 2])
    result = detection_map([pred], [gt], labels=["a", "b", "c"])
    assert result["map"] == pytest.approx(0.5)
    assert [(c["label"], c["ap"]) for c in result["per_class"]] == [("a", 1.0), ("b", 0.0)]


def test_map_matches_pycocotools_on_random_detections():
    pytest.importorskip("pycocotools", reason="pycocotools is not installed")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    targets, predictions, gt_anns, dt_anns = [], [], [], []
    for image in range(6):
        xy = rng.uniform(0, 80, (5, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 40, (5, 2))], 1)
        gcls = rng.integers(0, 3, 5)
        det = np.concatenate([gt + rng.normal(0, 4, gt.shape), gt[:3] + rng.normal(0, 8, (3, 4))])
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        dcls = np.concatenate([gcls, rng.integers(0, 3, 3)])
        scores = rng.uniform(0.05, 1, len(det))
        targets.append({"boxes": gt, "classes": gcls})
        predictions.append({"boxes": det, "scores": scores, "classes": dcls})
        for b, c in zip(gt, gcls):
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": image, "category_id": int(c), "iscrowd": 0,
                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
        for b, c, s in zip(det, dcls, scores):
            dt_anns.append({"image_id": image, "category_id": int(c), "score": float(s),
                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    coco = COCO()
    coco.dataset = {"images": [{"id": i} for i in range(6)], "annotations": gt_anns,
                    "categories": [{"id": c} for c in range(3)]}
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(dt_anns), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    ours = detection_map(predictions, targets)
    assert ours["map"] == pytest.approx(evaluator.stats[0], abs=1e-9)
    assert ours["map50"] == pytest.approx(evaluator.stats[1], abs=1e-9)
    assert ours["map75"] == pytest.approx(evaluator.stats[2], abs=1e-9)
