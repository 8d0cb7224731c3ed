"""The ray sweep runner against the in-process runner, on a local Ray cluster (2 CPUs).

    python benchmarks/bench_ray_sweep.py

Targets (issue 9):
- scheduling overhead per cell at most 0.2 s over the cell's own run time: single-cell sweeps one
  after another, driver wall time minus the time the cell took on its node (build + measure);
- a 24-cell CPU sweep (ort fp32/fp16/int8 x batches 1..128) on two Ray worker processes in at most
  0.65x the time of the in-process runner. Both runners run the same plan with the same engine
  options (ort ``threads=1``, so two cells on two cores do not fight); artifacts are built before
  timing, so both measure the sweep, not the first export.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from _cli import parse_args
from _harness_common import record
from _machine import machine
from dk.bench.execution import new_document
from dk.bench.runners import LocalRunner
from dk.bench.sweep import plan_sweep
from dk.pipeline import BuildOptions
from dk.plugins import get_plugin_manager

BATCHES = [1, 2, 4, 8, 16, 32, 64, 128]
ITERATIONS, TRIALS, SINGLE_CELLS = 300, 3, 10


def sweep_seconds(runner, opts, precisions, batches, iterations=ITERATIONS) -> tuple[float, dict]:
    plan = plan_sweep(["ort"], precisions, get_plugin_manager(), batches=batches, iterations=iterations,
                      warmup=10, hw_interval=0.0)
    document = new_document(plan, opts, {}, [])
    start = time.perf_counter()
    runner.run(plan, opts, document, None, lambda _: None)
    elapsed = time.perf_counter() - start
    assert all(r["status"] == "ok" for r in document["runs"]), [r.get("error") for r in document["runs"]]
    return elapsed, document


def main() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from dk_ray.runner import RayRunner

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DK_RAY_CACHE"] = str(Path(tmp) / "ray-cache")
        opts = BuildOptions(out=Path(tmp) / "artifacts", options={"threads": "1"})
        started = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        init_s = time.perf_counter() - started
        local, remote = LocalRunner(), RayRunner("auto")
        precisions = ["fp32", "fp16", "int8"]
        sweep_seconds(local, opts, precisions, [1], 10)  # build the artifacts for the local runner
        cold_s, _ = sweep_seconds(remote, opts, precisions, BATCHES)  # first use: workers import dk
        local_s, remote_s = [], []
        for trial in range(TRIALS):
            for name in (("local", "ray") if trial % 2 == 0 else ("ray", "local")):
                if name == "local":
                    local_s.append(sweep_seconds(local, opts, precisions, BATCHES)[0])
                else:
                    remote_s.append(sweep_seconds(remote, opts, precisions, BATCHES)[0])
        overheads, own = [], []
        for _ in range(SINGLE_CELLS):
            wall, document = sweep_seconds(remote, opts, ["fp32"], [1])
            node = document["runs"][0]["node"]
            cell_s = node["cell_seconds"] + node["build"]["seconds"]
            own.append(cell_s)
            overheads.append(wall - cell_s)
        ray.shutdown()
    ratio = statistics.median(remote_s) / statistics.median(local_s)
    overhead = statistics.median(overheads)
    result = {
        "machine": machine(ray=ray.__version__),
        "cells": 3 * len(BATCHES), "iterations_per_cell": ITERATIONS, "ort_threads": 1, "ray_cpus": 2,
        "ray_init_s": round(init_s, 3),
        "in_process_s": [round(s, 3) for s in local_s], "ray_s": [round(s, 3) for s in remote_s],
        "ray_first_sweep_s": round(cold_s, 3),
        "ratio_ray_over_in_process": round(ratio, 3), "ratio_target": 0.65,
        "single_cell_overhead_s": [round(s, 4) for s in overheads], "single_cell_own_s": [round(s, 4) for s in own],
        "overhead_per_cell_s": round(overhead, 4), "overhead_target_s": 0.2,
    }
    record("bench_ray_sweep", result,
           f"24-cell sweep on 2 Ray workers: {ratio:.2f}x the in-process runner's time (median of {TRIALS}; "
           f"target <= 0.65x; first sweep on a fresh cluster {cold_s:.1f} s vs {statistics.median(local_s):.1f} s); "
           f"scheduling overhead {overhead * 1e3:.0f} ms per cell over its own {statistics.median(own) * 1e3:.0f} ms "
           "(target <= 200 ms)")
    print(result)


if __name__ == "__main__":
    parse_args(__doc__)
    main()
