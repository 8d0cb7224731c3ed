"""int8 PTQ (through the ort plugin's quantize) vs fp32: latency on the ResNet-18-sized CNN at
batch 1 and the default model's accuracy.

    python benchmarks/bench_ort_int8.py [--variants]

Targets: int8 at least 1.6x faster than fp32; default-model int8 accuracy within 1 point of fp32.
``--variants`` also times the other quantization settings tried (int8 activations, reduce_range).
Results: results/bench_ort_int8.json and a line in README.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from _cli import parse_args
from _ort_common import interleaved, machine, median, record, resnet18_onnx
from dk import api
from dk.default_model import load_split
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, QuantizeRequest

CALIBRATION_IMAGES = 32
VARIANTS = {"int8-activations": {"activations": "int8"}, "uint8-reduce-range": {"reduce_range": "1"}}


def accuracy(artifact) -> float:
    x, y = load_split("eval")
    with api.load_engine("ort", artifact) as engine:
        return float((engine.infer({"input": x})["logits"].argmax(1) == y).mean())


def main(with_variants: bool = False) -> None:
    variants = VARIANTS if with_variants else {}
    rng = np.random.default_rng(0)
    images = rng.standard_normal((CALIBRATION_IMAGES, 3, 224, 224), dtype=np.float32)

    def calibration():
        return ({"input": images[i : i + 8]} for i in range(0, len(images), 8))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "artifacts"
        source = parse_model_arg(str(resnet18_onnx(Path(tmp))))
        fp32 = api.export("ort", ExportRequest(source=source, out_dir=out))
        built = {"fp32": fp32}
        for name, options in {"int8": {}, **variants}.items():
            request = QuantizeRequest(source=source, out_dir=Path(tmp) / name, calibration=calibration,
                                      calibration_name=f"random-normal-{CALIBRATION_IMAGES}", options=options)
            built[name] = api.quantize("ort", request)
        feeds = {"input": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}
        # spin=0: an idle session's spinning threads would otherwise slow whichever engine runs next.
        engines = {name: api.load_engine("ort", a, options={"spin": "0"}) for name, a in built.items()}
        times = interleaved({name: (lambda e=e: e.infer(feeds)) for name, e in engines.items()}, trials=21, calls=5)
        for engine in engines.values():
            engine.close()
        digits_fp32 = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=out))
        digits_int8 = api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=out))
        acc_fp32, acc_int8 = accuracy(digits_fp32), accuracy(digits_int8)

    ms = {name: median(t) * 1e3 for name, t in times.items()}
    speedup = {name: ms["fp32"] / ms[name] for name in ms if name != "fp32"}
    result = {
        "benchmark": "bench_ort_int8",
        "machine": machine(),
        "resnet18_like_batch1_median_ms": ms,
        "speedup_vs_fp32": speedup,
        "int8_settings": "QDQ, per-channel QInt8 weights, QUInt8 activations, MinMax calibration, "
                         f"{CALIBRATION_IMAGES} random normal images in batches of 8",
        "variants_tried": {name: VARIANTS[name] for name in variants},
        "trials": 21, "calls_per_trial": 5, "load_options": {"spin": "0"},
        "default_model_accuracy": {"fp32": acc_fp32, "int8": acc_int8, "delta_points": (acc_fp32 - acc_int8) * 100},
        "targets": {"speedup": 1.6, "accuracy_delta_points": 1.0},
        "pass": speedup["int8"] >= 1.6 and abs(acc_fp32 - acc_int8) <= 0.01,
    }
    tried = "".join(f"; {n} {speedup[n]:.2f}x" for n in variants)
    line = (
        f"int8 QDQ PTQ (U8 activations, per-channel S8 weights) vs fp32 on the ResNet-18-sized CNN, batch 1: "
        f"{ms['int8']:.2f} vs {ms['fp32']:.2f} ms, {speedup['int8']:.2f}x (target >= 1.6x){tried}; default model "
        f"accuracy fp32 {acc_fp32 * 100:.2f} % vs int8 {acc_int8 * 100:.2f} % (target: within 1 point); "
        "engines loaded with spin=0 so that idle sessions do not steal the cores of the one running."
    )
    record("bench_ort_int8", result, line)
    print(line)


if __name__ == "__main__":
    main(parse_args(__doc__, ("--variants", "also time the other quantization settings tried")).variants)
