"""dk's openvino engine vs OpenVINO's own benchmark_app on the same IR (ResNet-18-sized CNN, batch 1, fp32).

    python benchmarks/bench_openvino_modes.py [--rounds 8] [--seconds 6]

Targets: throughput mode (``infer_many`` over an AsyncInferQueue) at least 0.97x the FPS of
``benchmark_app -hint throughput``; latency mode (one synchronous request) median at most 1.03x
the median of ``benchmark_app -hint latency``. Each round runs dk and benchmark_app back to back
(alternating who goes first); the ratios are medians of the per-round ratios.
Results: results/bench_openvino_modes.json and a line in README.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_openvino_common import (
    benchmark_app,
    machine,
    median,
    random_images,
    record,
    resnet_ir,
    timed,
)
from dk import api


def dk_throughput(artifact, images: np.ndarray, seconds: float) -> dict[str, float]:
    """FPS of throughput mode: lists of feeds long enough that the final drain of the queue is negligible."""
    with api.load_engine("openvino", artifact, "CPU", {"mode": "throughput"}) as engine:
        feeds = [{"input": images[i % len(images)]} for i in range(max(64, 16 * engine.requests))]
        engine.infer_many(feeds[: 2 * engine.requests])  # warm-up
        done, elapsed = timed(lambda: len(engine.infer_many(feeds)), seconds)
        return {"fps": done / elapsed, "count": done, "nireq": engine.requests}


def dk_latency(artifact, images: np.ndarray, seconds: float) -> dict[str, float]:
    """Per-call latency of latency mode (``Engine.infer`` on one synchronous request)."""
    with api.load_engine("openvino", artifact, "CPU") as engine:
        feeds = [{"input": images[i]} for i in range(len(images))]
        for feed in feeds[:5]:
            engine.infer(feed)
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            engine.infer(feeds[len(times) % len(feeds)])
            times.append(time.perf_counter() - start)
        ms = np.asarray(times) * 1e3
        return {"median_ms": float(np.median(ms)), "average_ms": float(ms.mean()), "count": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    images = random_images(16)
    rounds: dict[str, list[dict]] = {"dk_throughput": [], "app_throughput": [], "dk_latency": [], "app_latency": []}
    with tempfile.TemporaryDirectory() as tmp:
        artifact = resnet_ir(Path(tmp))
        runs = {
            "throughput": (lambda: dk_throughput(artifact, images, args.seconds),
                           lambda: benchmark_app(artifact.model_file, "throughput", args.seconds)),
            "latency": (lambda: dk_latency(artifact, images, args.seconds),
                        lambda: benchmark_app(artifact.model_file, "latency", args.seconds)),
        }
        for r in range(args.rounds):  # each pair back to back, who goes first alternating
            for mode, (dk_run, app_run) in runs.items():
                if r % 2 == 0:
                    rounds[f"dk_{mode}"].append(dk_run())
                    rounds[f"app_{mode}"].append(app_run())
                else:
                    rounds[f"app_{mode}"].append(app_run())
                    rounds[f"dk_{mode}"].append(dk_run())
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in rounds.items()), flush=True)
    dk_fps, app_fps = median([x["fps"] for x in rounds["dk_throughput"]]), median([x["fps"] for x in rounds["app_throughput"]])
    dk_ms, app_ms = median([x["median_ms"] for x in rounds["dk_latency"]]), median([x["median_ms"] for x in rounds["app_latency"]])
    fps_ratio = median([d["fps"] / a["fps"] for d, a in zip(rounds["dk_throughput"], rounds["app_throughput"])])
    ms_ratio = median([d["median_ms"] / a["median_ms"] for d, a in zip(rounds["dk_latency"], rounds["app_latency"])])
    result = {
        "benchmark": "bench_openvino_modes",
        "machine": machine(),
        "model": "dk_torch.models:resnet18_like, 1x3x224x224, fp32 IR, CPU, INFERENCE_PRECISION_HINT f32",
        "rounds": rounds,
        "throughput": {"dk_fps": dk_fps, "benchmark_app_fps": app_fps, "ratio": fps_ratio, "target": 0.97},
        "latency": {"dk_median_ms": dk_ms, "benchmark_app_median_ms": app_ms, "ratio": ms_ratio, "target": 1.03},
    }
    result["pass"] = fps_ratio >= 0.97 and ms_ratio <= 1.03
    line = (
        f"ResNet-18-sized CNN, batch 1, fp32 IR on CPU: throughput mode (infer_many, {rounds['dk_throughput'][0]['nireq']} "
        f"requests) {dk_fps:.1f} FPS vs benchmark_app -hint throughput {app_fps:.1f} FPS, {fps_ratio:.3f}x (target >= 0.97); "
        f"latency mode median {dk_ms:.2f} ms vs benchmark_app -hint latency {app_ms:.2f} ms, {ms_ratio:.3f}x "
        f"(target <= 1.03); medians of {args.rounds} alternating rounds of {args.seconds} s, per-round ratios."
    )
    record("bench_openvino_modes", result, line)
    print(line)


if __name__ == "__main__":
    main()
