"""Pre-processing (numpy vs OpenCV resize) and numpy NMS/mAP costs, the per-image work that
``dk run infer`` and ``--data`` evaluation add around the engine.

    python benchmarks/bench_data_preprocess_nms.py

Interleaves the variants in repeated trials and records medians in
results/bench_data_preprocess_nms.json.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from dk.specs import TensorSpec
from dk.vision import preprocessing
from dk.vision.detection import DetectionConfig, detect
from dk.vision.metrics import detection_map
from dk.vision.preprocessing import PreprocessSpec, preprocess

from _cli import parse_args

TRIALS = 15


def _time(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def main() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(8)]
    spec = PreprocessSpec.from_meta(
        {"preprocessing": {"resize": "letterbox", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
        TensorSpec("input", (8, 3, 224, 224), "float32"),
    )
    boxes = rng.uniform(0, 0.8, (1, 3000, 2))
    boxes = np.concatenate([boxes, boxes + rng.uniform(0.02, 0.2, boxes.shape)], axis=2).astype(np.float32)
    scores = rng.uniform(0, 1, (1, 3000, 10)).astype(np.float32)
    config = DetectionConfig(score_threshold=0.9)
    times: dict[str, list[float]] = {"preprocess_numpy_ms": [], "preprocess_opencv_ms": [], "detect_ms": [], "map_ms": []}
    has_cv2 = preprocessing._has_cv2()
    found = detect(boxes, scores, config)
    targets = [{"boxes": f["boxes"][::2], "classes": f["classes"][::2]} for f in found] * 50
    predictions = found * 50
    for _ in range(TRIALS):
        preprocessing._has_cv2 = lambda: False
        times["preprocess_numpy_ms"].append(_time(lambda: preprocess(images, spec), 3))
        if has_cv2:
            preprocessing._has_cv2 = lambda: True
            times["preprocess_opencv_ms"].append(_time(lambda: preprocess(images, spec), 3))
        times["detect_ms"].append(_time(lambda: detect(boxes, scores, config), 5))
        times["map_ms"].append(_time(lambda: detection_map(predictions, targets), 1))
    result = {
        "preprocess": "8 images 640x480 RGB -> letterbox 224x224, mean/std, NCHW float32 (ms per batch)",
        "detect": f"3000 anchors x 10 classes, score > 0.9 ({sum(len(f['scores']) for f in found)} kept), per-class NMS (ms per image)",
        "map": f"COCO mAP over 50 images with {len(found[0]['scores'])} detections each (ms)",
        "trials": TRIALS,
        "median": {k: round(statistics.median(v), 3) for k, v in times.items() if v},
    }
    out = Path(__file__).parent / "results" / "bench_data_preprocess_nms.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parse_args(__doc__)
    main()
