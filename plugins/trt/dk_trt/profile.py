"""Per-layer timings like ``trtexec --dumpProfile``, through TensorRT's IProfiler."""

from __future__ import annotations

from typing import Mapping

import attrs
import numpy as np


@attrs.frozen
class LayerTime:
    """Mean time of one engine layer over the profiled runs."""

    layer: str
    mean_ms: float
    total_ms: float
    percent: float
    calls: int


def profile_layers(engine, feeds: Mapping[str, np.ndarray], runs: int = 10) -> list[LayerTime]:
    """Run ``feeds`` ``runs`` times through a :class:`~dk_trt.runtime.TrtEngine` with a profiler
    attached; rows sorted by total time, slowest first. Layer names are detailed only for engines
    built with ProfilingVerbosity.DETAILED."""
    from dk_trt.versions import require_tensorrt

    trt = require_tensorrt()
    totals: dict[str, list[float]] = {}
    recording = [False]

    class Collector(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            if recording[0]:
                totals.setdefault(layer_name, []).append(ms)

    collector = Collector()
    engine.context.profiler = collector  # reports after every execute_async_v3 while attached
    engine.infer(feeds)  # warm-up, not recorded
    recording[0] = True
    try:
        for _ in range(max(1, runs)):
            engine.infer(feeds)
    finally:
        recording[0] = False
    grand = sum(sum(v) for v in totals.values()) or 1.0
    rows = [LayerTime(name, sum(v) / len(v), sum(v), 100.0 * sum(v) / grand, len(v)) for name, v in totals.items()]
    return sorted(rows, key=lambda r: r.total_ms, reverse=True)
