"""Cost of hardware sampling every 100 ms on the ResNet-18-sized CNN (ort, batch 1).

    python benchmarks/bench_harness_hwstats.py

Target: at most 1 % lower throughput with the sampler running. Trials alternate sampler on/off;
the cost is the median of per-trial paired ratios.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _cli import parse_args
from _harness_common import record
from _ort_common import machine, resnet18_onnx
from dk import api
from dk.bench.hwstats import HwSampler
from dk.sources import parse_model_arg
from dk.specs import ExportRequest

CALLS, TRIALS, INTERVAL = 30, 21, 0.1


def throughput(engine, feeds) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        engine.infer(feeds)
    return CALLS / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = resnet18_onnx(Path(tmp))
        artifact = api.export("ort", ExportRequest(source=parse_model_arg(str(onnx_path)), out_dir=Path(tmp)))
        image = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
        feeds = {"input": image}
        samples = 0
        with api.load_engine("ort", artifact) as engine:
            throughput(engine, feeds)
            off, on = [], []
            for trial in range(TRIALS):
                for sampling in ((False, True) if trial % 2 == 0 else (True, False)):
                    if sampling:
                        with HwSampler(INTERVAL) as sampler:
                            on.append(throughput(engine, feeds))
                        samples += len(sampler.series.get("process.rss").v) if sampler.series else 0
                    else:
                        off.append(throughput(engine, feeds))
    probe = HwSampler(0).start()  # the direct cost: time of one sampling round of every plugin installed
    start = time.perf_counter()
    for _ in range(500):
        probe.sample()
    round_ms = (time.perf_counter() - start) / 500 * 1e3
    ratios = [a / b for a, b in zip(on, off)]
    cost = (1 - statistics.median(ratios)) * 100
    result = {
        "benchmark": "bench_harness_hwstats", "machine": machine(), "interval_s": INTERVAL, "calls_per_trial": CALLS,
        "trials": TRIALS, "off_per_s_median": statistics.median(off), "on_per_s_median": statistics.median(on),
        "cost_pct_median": cost, "round_ms": round_ms, "round_share_pct": round_ms / (INTERVAL * 1e3) * 100,
        "ratios": ratios, "samples_taken": samples, "target_cost_pct": 1.0,
        "pass": cost <= 1.0 and round_ms / (INTERVAL * 1e3) * 100 <= 1.0,
    }
    line = (f"sampling every {INTERVAL:g} s on the ResNet-18-sized CNN (ort, batch 1): "
            f"{result['on_per_s_median']:.1f} vs {result['off_per_s_median']:.1f} inferences/s, cost {cost:+.2f} % "
            f"(target <= 1 %; median of {TRIALS} paired trials x {CALLS} calls, {samples} sampling rounds); one round of "
            f"every installed plugin takes {round_ms:.3f} ms = {result['round_share_pct']:.2f} % of the interval.")
    record("bench_harness_hwstats", result, line)
    print(line)


if __name__ == "__main__":
    parse_args(__doc__)
    main()
