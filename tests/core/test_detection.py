"""Detection post-processing: decode, score threshold, per-class NMS, through dk_postprocess."""

from __future__ import annotations

import numpy as np
import pytest

from dk import api
from dk.errors import DkError
from dk.vision.detection import DetectionConfig, batched_nms, box_iou, decode_boxes, nms


def test_box_iou_by_hand():
    iou = box_iou([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 6]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 0.6]])


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 6], [21, 20, 31, 30]], float)
    scores = np.array([0.6, 0.9, 0.8, 0.7, 0.5])
    # 1 beats 0 (IoU 0.82) and 3 (IoU 0.55); 2 beats 4 (IoU 0.82)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    # at 0.6, box 3 (IoU 0.55 with box 1) survives, box 0 (IoU 0.82) does not
    assert nms(boxes, scores, 0.6).tolist() == [1, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_batched_nms_never_suppresses_across_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]


def test_decode_cxcywh_and_pixel_boxes():
    config = DetectionConfig.from_meta({"box_format": "cxcywh", "boxes_normalized": False, "input_size": [20, 40]})
    np.testing.assert_allclose(decode_boxes(np.array([[[20, 10, 8, 4]]]), config), [[[0.4, 0.4, 0.6, 0.6]]])
    with pytest.raises(DkError, match="box_format 'xywh' is not one of"):
        DetectionConfig.from_meta({"box_format": "xywh"})


def test_dk_postprocess_detection_thresholds_and_labels():
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9], [0, 0, 1, 1]]], np.float32)
    scores = np.array([[[0.9, 0.0], [0.8, 0.1], [0.1, 0.7], [0.2, 0.3]]], np.float32)
    meta = {"labels": ["cat", "dog"], "score_threshold": 0.5}
    results = api.postprocess("detection", {"scores": scores, "boxes": boxes}, meta)
    found = results[0]["detections"]
    assert [(d["label"], round(d["score"], 2)) for d in found] == [("cat", 0.9), ("dog", 0.7)]
    np.testing.assert_allclose(found[0]["box"], [0.1, 0.1, 0.5, 0.5], atol=1e-6)


def test_outputs_found_by_shape_and_a_clear_error_otherwise():
    boxes = np.tile(np.array([0.1, 0.1, 0.4, 0.4], np.float32), (1, 3, 1))
    outputs = {"out0": boxes, "out1": np.full((1, 3, 2), 0.9, np.float32)}
    assert len(api.postprocess("detection", outputs, {})[0]["detections"]) == 2  # 3 identical boxes per class -> 1
    with pytest.raises(DkError, match="cannot find detection outputs"):
        api.postprocess("detection", {"logits": np.zeros((1, 10), np.float32)}, {})
