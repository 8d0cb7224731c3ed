"""``dk run quantize --plugin ort --max-accuracy-drop 1%`` on a ResNet-18-sized CNN where plain int8 loses more.

    python benchmarks/bench_debug_mixed_precision.py

The CNN is dk_torch.models.resnet18_like(0) with a 10-class head centred on the mean logits of 512
smooth random images (fixed seed), so that its top-1 varies between images; the labels are its fp32
predictions on the images whose top-1 margin is widest (so fp32 scores 100 %), which plain int8
gets wrong far more often than 1 %. Targets: the chosen artifact within the budget, and a speed-up
over fp32 of at least 1.3x (batch 1, measured by the command itself, interleaved).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _cli import parse_args  # noqa: E402
from _ort_common import machine, record, resnet18_onnx  # noqa: E402

IMAGES, KEEP, CALIB = 512, 64, 16


def centred_ten_class(model_path: Path, x: np.ndarray, target: Path) -> np.ndarray:
    """Write the CNN with a centred 10-class head; return its fp32 logits on ``x``."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(model_path))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = np.concatenate([session.run(None, {"input": x[i:i + 32]})[0] for i in range(0, len(x), 32)])[:, :10]
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = ["raw_logits" if o == out else o for o in node.output]
    model.graph.initializer.extend([numpy_helper.from_array(logits.mean(0).astype(np.float32), "centre"),
                                    numpy_helper.from_array(np.arange(10, dtype=np.int64), "ten")])
    model.graph.node.extend([helper.make_node("Gather", ["raw_logits", "ten"], ["ten_logits"], axis=1, name="/head/Gather"),
                             helper.make_node("Sub", ["ten_logits", "centre"], [out], name="/head/Sub")])
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 10
    onnx.save(model, str(target))
    return logits - logits.mean(0)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(1)
        low = rng.random((IMAGES, 3, 14, 14), dtype=np.float32)
        x = np.repeat(np.repeat(low, 16, axis=2), 16, axis=3)
        model = folder / "resnet18-10.onnx"
        logits = centred_ten_class(resnet18_onnx(folder), x, model)
        top = np.sort(logits, 1)
        keep = np.argsort(-(top[:, -1] - top[:, -2]))[:KEEP]
        np.savez(folder / "data.npz", x=x[keep], y=logits[keep].argmax(1))
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from dk.cli import main; sys.exit(main())", "run", "quantize",
             "--plugin", "ort", "--model", str(model), "--data", str(folder / "data.npz"), "--calib-size", str(CALIB),
             "--max-accuracy-drop", "1%", "--out", str(folder / "out"), "--json"],
            capture_output=True, text=True, env=dict(os.environ))
        if proc.returncode != 0:
            raise SystemExit(f"dk failed ({proc.returncode}): {proc.stderr.strip()[-600:]}")
        report = json.loads(proc.stdout)
    speed = report["speed"]
    result = {"benchmark": "bench_debug_mixed_precision", "machine": machine(), "model": "resnet18-like, centred 10-class head",
              "samples": KEEP, "calibration": CALIB, **{k: report[k] for k in (
                  "budget", "accuracy_fp32", "accuracy_int8_full", "accuracy", "drop", "float_nodes", "trials",
                  "seconds")}, "speed": speed, "ranking": report["ranking"]}
    line = (f"ResNet-18-sized CNN (centred 10-class head, {KEEP} labelled samples, calibration {CALIB}), budget 1 point: "
            f"fp32 {report['accuracy_fp32']:.3f}, all int8 {report['accuracy_int8_full']:.3f}, chosen "
            f"{report['accuracy']:.3f} with {len(report['float_nodes'])} float node(s) after {report['trials']} "
            f"quantizations; speed-up over fp32 at batch 1: all int8 {speed['speedup_int8_full']:.2f}x, chosen "
            f"{speed['speedup_mixed']:.2f}x (target >= 1.3x; load average {result['machine']['load_average'][0]:.1f})")
    record("bench_debug_mixed_precision", result, line)
    print(line)


if __name__ == "__main__":
    parse_args(__doc__)
    main()
