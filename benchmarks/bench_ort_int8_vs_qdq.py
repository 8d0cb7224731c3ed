"""dk's ort int8 artifact vs hand-made ONNX Runtime QDQ models vs fp32, on the ResNet-18-sized CNN at
batch 1, in one interleaved run with the spread.

    python benchmarks/bench_ort_int8_vs_qdq.py [--trials 41] [--calls 5]

Variants, every one calibrated on the same 32 random-normal images and loaded into a bare
``onnxruntime.InferenceSession`` with the same options (so only the graphs differ):

- ``fp32``: dk's fp32 ort artifact (``api.export``).
- ``dk-int8``: dk's int8 ort artifact (``api.quantize``, its defaults).
- ``qdq-u8s8-per-channel``: ``quant_pre_process`` then ``quantize_static`` with explicit settings
  (QDQ, QUInt8 activations, QInt8 per-channel weights, MinMax, no reduce_range).
- ``qdq-ort-defaults``: ``quantize_static`` with ONNX Runtime's defaults on the plain ONNX.

Trials rotate the order of the variants; ratios are paired per trial (fp32 time / variant time in
the same trial), so a load change between trials affects both sides of a ratio alike. No target:
this script records what the int8 claim in README.md rests on. Results: results/bench_ort_int8_vs_qdq.json
and a line in README.md, with the CPU (model and ISA extensions) and the load average.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from _ort_common import interleaved, machine, record, resnet18_onnx
from dk import api
from dk.bench.environment import cpu_isa
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, QuantizeRequest

CALIBRATION_IMAGES = 32
CALIBRATION_BATCH = 8


def quantiles(values: list[float]) -> dict[str, float]:
    """Median, 10th and 90th percentile, min and max of ``values``."""
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    return {"median": statistics.median(values), "p10": cuts[0], "p90": cuts[-1], "min": min(values), "max": max(values)}


class _Reader:
    """The calibration images as an onnxruntime CalibrationDataReader (input name ``input``)."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.rewind()

    def get_next(self):
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = ({"input": self.images[i : i + CALIBRATION_BATCH]}
                         for i in range(0, len(self.images), CALIBRATION_BATCH))


def hand_made_qdq(fp32: Path, out: Path, images: np.ndarray) -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_name("pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(out), _Reader(images), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    return out


def ort_defaults(fp32: Path, out: Path, images: np.ndarray) -> Path:
    from onnxruntime.quantization import quantize_static

    quantize_static(str(fp32), str(out), _Reader(images))
    return out


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no spinning: an idle session's threads would otherwise slow whichever variant runs next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=41)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.standard_normal((CALIBRATION_IMAGES, 3, 224, 224), dtype=np.float32)
    load_before = machine()["load_average"]

    def calibration():
        return ({"input": images[i : i + CALIBRATION_BATCH]} for i in range(0, len(images), CALIBRATION_BATCH))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        onnx_file = resnet18_onnx(folder)
        source = parse_model_arg(str(onnx_file))
        fp32 = api.export("ort", ExportRequest(source=source, out_dir=folder / "fp32"))
        dk_int8 = api.quantize("ort", QuantizeRequest(source=source, out_dir=folder / "int8", calibration=calibration,
                                                      calibration_name=f"random-normal-{CALIBRATION_IMAGES}"))
        models = {
            "fp32": fp32.model_file,
            "dk-int8": dk_int8.model_file,
            "qdq-u8s8-per-channel": hand_made_qdq(onnx_file, folder / "qdq-explicit.onnx", images),
            "qdq-ort-defaults": ort_defaults(onnx_file, folder / "qdq-defaults.onnx", images),
        }
        feeds = {"input": rng.standard_normal((1, 3, 224, 224), dtype=np.float32)}
        sessions = {name: session(path) for name, path in models.items()}
        outputs = {name: s.run(None, feeds)[0] for name, s in sessions.items()}
        times = interleaved({name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()},
                            trials=args.trials, calls=args.calls)
    load_after = machine()["load_average"]

    ms = {name: quantiles([t * 1e3 for t in trial_times]) for name, trial_times in times.items()}
    paired = {name: quantiles([f / v for f, v in zip(times["fp32"], trial_times)])
              for name, trial_times in times.items() if name != "fp32"}
    vs_hand = quantiles([h / d for h, d in zip(times["qdq-u8s8-per-channel"], times["dk-int8"])])
    facts = machine()
    top1 = {name: bool(np.argmax(out) == np.argmax(outputs["fp32"])) for name, out in outputs.items() if name != "fp32"}
    result = {
        "benchmark": "bench_ort_int8_vs_qdq",
        "machine": {**facts, "load_average_before": load_before, "load_average_after": load_after,
                    "note": "shared 2-core VM: other work ran during the measurement"},
        "batch": 1, "trials": args.trials, "calls_per_trial": args.calls,
        "session_options": {"graph_optimization_level": "ORT_ENABLE_ALL", "allow_spinning": 0,
                            "providers": ["CPUExecutionProvider"]},
        "per_call_ms": ms,
        "speedup_vs_fp32_paired": paired,
        "hand_made_over_dk_int8_paired": vs_hand,
        "same_top1_as_fp32_on_the_timed_input": top1,
        "calibration": f"{CALIBRATION_IMAGES} random normal images in batches of {CALIBRATION_BATCH}, for every variant",
    }
    cpu = f"{facts['cpu']} ({', '.join(cpu_isa()) or 'no AVX2'})"

    def ratio(name: str) -> str:
        r = paired[name]
        return f"{r['median']:.2f}x (p10-p90 {r['p10']:.2f}-{r['p90']:.2f})"

    line = (
        f"on {cpu}, {facts['cores']} cores, shared, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after; "
        f"ResNet-18-sized CNN, batch 1, {args.trials} interleaved trials x {args.calls} calls, bare sessions with equal "
        f"options: fp32 {ms['fp32']['median']:.2f} ms (p10-p90 {ms['fp32']['p10']:.2f}-{ms['fp32']['p90']:.2f}); "
        f"dk int8 {ms['dk-int8']['median']:.2f} ms = {ratio('dk-int8')} vs fp32; hand-made QDQ u8s8 per-channel "
        f"{ms['qdq-u8s8-per-channel']['median']:.2f} ms = {ratio('qdq-u8s8-per-channel')}; quantize_static defaults "
        f"{ms['qdq-ort-defaults']['median']:.2f} ms = {ratio('qdq-ort-defaults')}; dk int8 runs at "
        f"{vs_hand['median']:.2f}x the speed of the hand-made QDQ (paired per trial)."
    )
    record("bench_ort_int8_vs_qdq", result, line)
    print(line)


if __name__ == "__main__":
    main()
