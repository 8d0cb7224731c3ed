"""NNCF int8 vs fp32 with the openvino plugin: speed on the ResNet-18-sized CNN, accuracy on the default model.

    python benchmarks/bench_openvino_int8.py [--trials 21] [--calls 10]

Records the int8/fp32 speed-up of latency mode (batch 1, one synchronous request; trials
interleave fp32 and int8) and of throughput mode (infer_many), and the default model's top-1
accuracy on its held-out split at fp32 and int8 (target: within 1 point).
Results: results/bench_openvino_int8.json and a line in README.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_openvino_common import machine, median, random_images, record, resnet_ir, timed
from dk import api
from dk.default_model import load_split
from dk.sources import parse_model_arg
from dk.specs import ModelSource, QuantizeRequest


def resnet_int8(fp32, out: Path):
    """The ResNet IR quantized by NNCF over 32 seeded random images (speed only: accuracy is moot)."""
    images = random_images(32, seed=1)
    request = QuantizeRequest(source=ModelSource("artifact", str(fp32.path)), out_dir=out,
                              calibration=lambda: ({"input": image} for image in images),
                              calibration_name="random-normal-32")
    return api.quantize("openvino", request)


def latency_trials(artifacts: dict, feeds: list, trials: int, calls: int) -> dict[str, list[float]]:
    """Per-call seconds of each engine (latency mode), in trials that alternate their order."""
    engines = {name: api.load_engine("openvino", a, "CPU") for name, a in artifacts.items()}
    try:
        for engine in engines.values():
            for feed in feeds[:5]:
                engine.infer(feed)
        times: dict[str, list[float]] = {name: [] for name in engines}
        for t in range(trials):
            for name in (list(engines) if t % 2 == 0 else list(engines)[::-1]):
                infer = engines[name].infer
                start = time.perf_counter()
                for i in range(calls):
                    infer(feeds[i % len(feeds)])
                times[name].append((time.perf_counter() - start) / calls)
        return times
    finally:
        for engine in engines.values():
            engine.close()


def throughput_fps(artifact, feeds: list, seconds: float) -> float:
    with api.load_engine("openvino", artifact, "CPU", {"mode": "throughput"}) as engine:
        batch = [feeds[i % len(feeds)] for i in range(max(64, 16 * engine.requests))]
        engine.infer_many(batch[: 2 * engine.requests])
        done, elapsed = timed(lambda: len(engine.infer_many(batch)), seconds)
    return done / elapsed


def default_model_accuracy(out: Path) -> dict[str, float]:
    x, y = load_split("eval")
    source = parse_model_arg(None)
    from dk.specs import ExportRequest

    fp32 = api.export("openvino", ExportRequest(source=source, out_dir=out))
    int8 = api.quantize("openvino", QuantizeRequest(source=source, out_dir=out))
    accuracy = {}
    for name, artifact in (("fp32", fp32), ("int8", int8)):
        with api.load_engine("openvino", artifact, "CPU") as engine:
            accuracy[name] = float(np.mean(engine.infer({"input": x})["logits"].argmax(1) == y))
    return {**accuracy, "delta_points": (accuracy["int8"] - accuracy["fp32"]) * 100, "samples": len(y)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=21)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fp32 = resnet_ir(out)
        int8 = resnet_int8(fp32, out)
        feeds = [{"input": image} for image in random_images(8)]
        times = latency_trials({"fp32": fp32, "int8": int8}, feeds, args.trials, args.calls)
        fps = {}
        for name, artifact in (("fp32", fp32), ("int8", int8), ("fp32 again", fp32), ("int8 again", int8)):
            fps.setdefault(name.split()[0], []).append(throughput_fps(artifact, feeds, args.seconds))
        accuracy = default_model_accuracy(out)
        fake_quantize = int8.manifest["extra"]["fake_quantize_nodes"]
    fp32_ms, int8_ms = median(times["fp32"]) * 1e3, median(times["int8"]) * 1e3
    latency_speedup = median([f / i for f, i in zip(times["fp32"], times["int8"])])
    fps_fp32, fps_int8 = median(fps["fp32"]), median(fps["int8"])
    result = {
        "benchmark": "bench_openvino_int8",
        "machine": machine(),
        "model": "dk_torch.models:resnet18_like, 1x3x224x224, CPU, INFERENCE_PRECISION_HINT f32",
        "int8_fake_quantize_nodes": fake_quantize,
        "latency_mode": {"fp32_ms": fp32_ms, "int8_ms": int8_ms, "speedup": latency_speedup,
                         "trials": args.trials, "calls_per_trial": args.calls},
        "throughput_mode": {"fp32_fps": fps_fp32, "int8_fps": fps_int8, "speedup": fps_int8 / fps_fp32,
                            "runs": fps},
        "default_model_accuracy": accuracy,
        "pass": accuracy["delta_points"] >= -1.0,
    }
    line = (
        f"NNCF int8 vs fp32 on the ResNet-18-sized CNN, batch 1, CPU: latency mode {int8_ms:.2f} vs {fp32_ms:.2f} ms, "
        f"{latency_speedup:.2f}x ({args.trials} interleaved trials x {args.calls} calls); throughput mode "
        f"{fps_int8:.1f} vs {fps_fp32:.1f} FPS, {fps_int8 / fps_fp32:.2f}x; default model accuracy fp32 "
        f"{accuracy['fp32'] * 100:.2f} % vs int8 {accuracy['int8'] * 100:.2f} % ({accuracy['delta_points']:+.2f} points, "
        "target: within 1 point)."
    )
    record("bench_openvino_int8", result, line)
    print(line)


if __name__ == "__main__":
    main()
