"""Harness overhead: ``dk run bench --plugin ort`` throughput on the tiny default model against a
bare ``session.run`` loop on a session of the same artifact, in the same process.

    python benchmarks/bench_harness_overhead.py

Target: dk's reported throughput at least 0.97x the bare loop's. Each trial runs the bare loop
(wall time of N calls) and then the whole bench path the CLI takes (plan, environment record,
hardware sampling every 0.1 s, pre/infer/post loop; its reported throughput), alternating order.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _cli import parse_args
from _harness_common import record
from _ort_common import machine
from dk import api
from dk.cli.bench import bench
from dk.default_model import load_split
from dk.pipeline import BuildOptions
from dk.sources import parse_model_arg
from dk.specs import ExportRequest

CALLS, TRIALS = 2000, 15


def bare_throughput(session, names, feeds) -> float:
    start = time.perf_counter()
    for _ in range(CALLS):
        session.run(names, feeds)
    return CALLS / (time.perf_counter() - start)


def dk_throughput(opts) -> float:
    kw = {"iterations": CALLS, "warmup": 20, "duration": None, "hw_interval": 0.1, "include_copies": True}
    document = bench("ort", None, opts, kw, as_json=True)
    return document["runs"][0]["latency"]["throughput"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        opts = BuildOptions(out=Path(tmp))
        artifact = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=Path(tmp)))
        with api.load_engine("ort", artifact) as engine:
            session, names = engine.session, [s.name for s in engine.outputs]
            feeds = {"input": np.ascontiguousarray(load_split("eval")[0][:1])}  # what dk's bench feeds at batch 1
            bare_throughput(session, names, feeds)
            dk_throughput(opts)  # warm caches (artifact, imports)
            bare, dk = [], []
            for trial in range(TRIALS):
                order = (("bare", "dk") if trial % 2 == 0 else ("dk", "bare"))
                for which in order:
                    if which == "bare":
                        bare.append(bare_throughput(session, names, feeds))
                    else:
                        dk.append(dk_throughput(opts))
    ratios = [d / b for d, b in zip(dk, bare)]
    result = {
        "benchmark": "bench_harness_overhead", "machine": machine(), "calls_per_trial": CALLS, "trials": TRIALS,
        "bare_samples_per_s_median": statistics.median(bare), "dk_samples_per_s_median": statistics.median(dk),
        "ratio_median": statistics.median(ratios), "ratios": ratios, "target_ratio": 0.97,
        "pass": statistics.median(ratios) >= 0.97,
    }
    line = (f"`dk run bench --plugin ort` on the default model reports {result['dk_samples_per_s_median']:,.0f} "
            f"samples/s vs {result['bare_samples_per_s_median']:,.0f} for a bare session.run loop (same artifact, same process): "
            f"{result['ratio_median']:.3f}x (target >= 0.97; median of {TRIALS} paired trials x {CALLS} calls, "
            "hardware sampling on at 0.1 s).")
    record("bench_harness_overhead", result, line)
    print(line)


if __name__ == "__main__":
    parse_args(__doc__)
    main()
