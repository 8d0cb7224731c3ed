"""Latency measurement of an engine: warm-up, fixed iterations or duration, percentiles."""

from __future__ import annotations

import time
from typing import Any, Mapping

import attrs
import numpy as np

from dk.engine import Engine


@attrs.define
class LatencyStats:
    """Per-call latency statistics in milliseconds, and throughput in samples per second."""

    batch: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    cv: float
    throughput: float

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def measure_latency(
    engine: Engine,
    feeds: Mapping[str, np.ndarray],
    *,
    warmup: int = 10,
    iterations: int = 100,
    duration: float | None = None,
) -> LatencyStats:
    """Time ``engine.infer(feeds)``: ``warmup`` untimed calls, then ``iterations`` timed calls
    (or as many as fit in ``duration`` seconds, at least 5)."""
    for _ in range(warmup):
        engine.infer(feeds)
    clock = time.perf_counter_ns
    infer = engine.infer
    times: list[int] = []
    if duration is not None:
        deadline = clock() + int(duration * 1e9)
        while clock() < deadline or len(times) < 5:
            start = clock()
            infer(feeds)
            times.append(clock() - start)
    else:
        for _ in range(max(1, iterations)):
            start = clock()
            infer(feeds)
            times.append(clock() - start)
    ms = np.asarray(times, dtype=np.float64) / 1e6
    batch = int(next(iter(feeds.values())).shape[0]) if feeds else 1
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    mean = float(ms.mean())
    return LatencyStats(
        batch=batch,
        iterations=len(ms),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        mean_ms=mean,
        std_ms=float(ms.std()),
        min_ms=float(ms.min()),
        cv=float(ms.std() / mean) if mean else 0.0,
        throughput=float(batch * len(ms) / (ms.sum() / 1e3)),
    )
