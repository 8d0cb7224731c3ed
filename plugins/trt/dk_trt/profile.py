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
    """Run ``feeds`` ``runs`` times through a :class:`~dk_trt.runtime.TrtEngine` on a second execution
    context with a profiler attached; rows sorted by total time, slowest first. Layers are named by
    the engine's profiling verbosity (indices for ``none``, names otherwise)."""
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

    # A profiler cannot be detached again (setting None is refused), and it slows every run: profile
    # on a context of its own that is dropped afterwards, so the engine's context stays unprofiled.
    context = engine.engine.create_execution_context()
    collector = Collector()
    context.profiler = collector  # reports every layer after each execute_async_v3
    try:
        engine.execute(context, feeds)  # warm-up, not recorded
        recording[0] = True
        for _ in range(max(1, runs)):
            engine.execute(context, feeds)
    finally:
        recording[0] = False
        del context
    return summarize(totals)


def summarize(times: Mapping[str, list[float]]) -> list[LayerTime]:
    """Rows from each layer's reported times (ms): mean, total, share of all layers, slowest first."""
    grand = sum(sum(v) for v in times.values()) or 1.0
    rows = [LayerTime(name, sum(v) / len(v), sum(v), 100.0 * sum(v) / grand, len(v)) for name, v in times.items() if v]
    return sorted(rows, key=lambda r: (-r.total_ms, r.layer))
