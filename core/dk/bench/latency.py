"""Latency measurement of an engine: warm-up, fixed iterations or duration, percentiles, and the
pre-process / infer / post-process split of an application-like loop."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

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


def summarize(times_ns: Any, batch: int) -> LatencyStats:
    """Statistics of per-call times in nanoseconds; ``cv`` is std / mean (0 for an empty phase)."""
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    if ms.size == 0:
        ms = np.zeros(1)
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    mean, std, total = float(ms.mean()), float(ms.std()), float(ms.sum())
    return LatencyStats(
        batch=batch,
        iterations=int(ms.size),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        mean_ms=mean,
        std_ms=std,
        min_ms=float(ms.min()),
        cv=std / mean if mean else 0.0,
        throughput=batch * ms.size / (total / 1e3) if total else 0.0,
    )


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
    batch = int(next(iter(feeds.values())).shape[0]) if feeds else 1
    return summarize(times, batch)


# -- the application-like loop ---------------------------------------------------------------


@attrs.define
class TimedRegion:
    """What the headline latency covers. Pre-processing is in it only when asked; host<->device
    copies are in it unless excluded and the engine can separate them (see :func:`copies_mode`)."""

    preprocess: bool = False
    copies: bool = True


@attrs.define
class PipelineTiming:
    """The headline latency of the timed region, each phase on its own, and the whole loop."""

    latency: LatencyStats
    phases: dict[str, LatencyStats]
    end_to_end: LatencyStats
    copies: str
    copies_note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_json(),
            "phases": {k: v.to_json() for k, v in self.phases.items()},
            "end_to_end": self.end_to_end.to_json(),
            "copies": self.copies,
            "copies_note": self.copies_note,
        }


def copies_mode(engine: Engine, include: bool) -> tuple[str, str]:
    """(``none``|``included``|``excluded``, why) for host<->device copies in the timed region.

    An engine separates its copies by providing ``prepare_inputs(feeds)`` (upload, untimed) and
    ``infer_prepared(prepared)`` (run on resident inputs); engines on the CPU have no copies."""
    device = str(getattr(engine, "device", "cpu") or "cpu")
    if device.lower() == "cpu":  # openvino says "CPU"
        return "none", "engine runs on the CPU: no host<->device copies"
    separable = callable(getattr(engine, "prepare_inputs", None)) and callable(getattr(engine, "infer_prepared", None))
    if include:
        return "included", f"copies to and from {device} are inside the timed region"
    if separable:
        return "excluded", f"inputs uploaded to {device} before the timed region"
    return "included", f"engine {engine.name!r} cannot separate its copies; they stay in the timed region"


def measure_pipeline(
    engine: Engine,
    raw: Any,
    preprocess: Callable[[Any], Mapping[str, np.ndarray]],
    postprocess: Callable[[Mapping[str, np.ndarray]], Any] | None,
    *,
    region: TimedRegion = TimedRegion(),
    warmup: int = 10,
    iterations: int = 100,
    duration: float | None = None,
    batch: int = 1,
) -> PipelineTiming:
    """Time pre-process, infer and post-process of one batch of ``raw`` samples.

    The timed loop runs what the timed region holds: inference, preceded by pre-processing when
    ``region.preprocess`` (otherwise the inputs are pre-processed once and reused, so the loop is
    the same as a bare engine loop). Phases outside the loop (pre-processing when excluded, and
    post-processing of the engine's outputs) are timed in their own loops; ``end_to_end`` is the
    sum of the three phases per iteration."""
    copies, note = copies_mode(engine, region.copies)
    clock = time.perf_counter_ns
    if copies == "excluded":
        upload, infer = engine.prepare_inputs, engine.infer_prepared  # type: ignore[attr-defined]
    else:
        upload, infer = None, engine.infer
    fixed = None if region.preprocess else preprocess(raw)
    outputs: Any = None

    def once() -> tuple[int, int]:
        nonlocal outputs
        t0 = clock()
        feeds = preprocess(raw) if fixed is None else fixed
        t1 = clock()
        args = upload(feeds) if upload is not None else feeds
        t2 = clock()
        outputs = infer(args)
        return t1 - t0, clock() - t2

    for _ in range(warmup):
        once()
    pre_ns: list[int] = []
    infer_ns: list[int] = []
    deadline = clock() + int(duration * 1e9) if duration is not None else None
    count = max(1, iterations)
    if fixed is not None and upload is None and deadline is None:
        append = infer_ns.append  # the common case: as tight as a bare engine loop
        for _ in range(count):
            start = clock()
            outputs = infer(fixed)
            append(clock() - start)
    while (len(infer_ns) < count) if deadline is None else (clock() < deadline or len(infer_ns) < 5):
        a, b = once()
        pre_ns.append(a)
        infer_ns.append(b)
    inf = np.asarray(infer_ns, dtype=np.int64)
    pre = np.asarray(pre_ns, dtype=np.int64) if region.preprocess else _time_calls(preprocess, raw, len(inf))
    post = _time_calls(postprocess, outputs, len(inf)) if postprocess is not None else np.zeros(len(inf), np.int64)
    return PipelineTiming(
        latency=summarize(inf + pre if region.preprocess else inf, batch),
        phases={"preprocess": summarize(pre, batch), "infer": summarize(inf, batch),
                "postprocess": summarize(post, batch)},
        end_to_end=summarize(pre + inf + post, batch),
        copies=copies,
        copies_note=note,
    )


def _time_calls(fn: Callable[[Any], Any], arg: Any, n: int) -> np.ndarray:
    """Per-call times of ``fn(arg)`` over ``min(n, 200)`` calls, repeated to length ``n``."""
    clock = time.perf_counter_ns
    runs = max(1, min(n, 200))
    times = np.empty(runs, dtype=np.int64)
    for i in range(runs):
        start = clock()
        fn(arg)
        times[i] = clock() - start
    return np.resize(times, n)
