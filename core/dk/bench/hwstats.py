"""Hardware statistics sampled in the background while benchmarks run.

A :class:`HwSampler` thread calls every plugin's ``dk_collect_hw_stats`` at a fixed interval and
keeps the samples as time series. A plugin that raises is reported once (``errors``) and not
asked again; the other plugins go on being sampled.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable

import attrs
import numpy as np

from dk.specs import HwSample


@attrs.define
class Series:
    """One metric over time: times in seconds since the sampler started, and values."""

    metric: str
    unit: str
    source: str
    t: list[float] = attrs.field(factory=list)
    v: list[float] = attrs.field(factory=list)

    def summary(self) -> dict[str, float]:
        values = np.asarray(self.v, dtype=np.float64)
        if values.size == 0:
            return {"n": 0}
        return {
            "n": int(values.size),
            "mean": float(values.mean()),
            "std": float(values.std()),
            "median": float(np.median(values)),
            "min": float(values.min()),
            "max": float(values.max()),
        }

    def to_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "source": self.source, "t": [round(x, 4) for x in self.t], "v": self.v,
                **self.summary()}


class HwSampler:
    """Background sampling of ``dk_collect_hw_stats`` every ``interval`` seconds (a context manager).

    ``collectors`` are (plugin name, zero-argument callable) pairs; by default every registered
    implementation of the hook in ``manager`` (the process-wide plugin manager, all plugins loaded).
    """

    def __init__(self, interval: float = 0.1, manager: Any = None,
                 collectors: Iterable[tuple[str, Any]] | None = None):
        self.interval = float(interval)
        self.series: dict[str, Series] = {}
        self.errors: list[dict[str, str]] = []
        self.started_at = 0.0
        self._collectors = list(collectors) if collectors is not None else _hook_collectors(manager)
        self._failed: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "HwSampler":
        self.started_at = time.time()
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="dk-hw-sampler", daemon=True)
            self._thread.start()
        else:
            self.sample(record=False)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 5 * self.interval))
            self._thread = None

    def __enter__(self) -> "HwSampler":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        # Primes counters such as psutil's CPU percentage, whose state is kept per thread.
        self.sample(record=False)
        next_at = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.sample()
            next_at += self.interval
            if next_at < time.monotonic():  # fell behind (a slow plugin): do not burst to catch up
                next_at = time.monotonic() + self.interval

    # -- sampling -------------------------------------------------------------------------------

    def sample(self, record: bool = True) -> None:
        """Ask every collector once; failures are reported once per plugin and skipped afterwards."""
        for name, collect in self._collectors:
            if name in self._failed:
                continue
            try:
                samples = list(collect() or ())
            except Exception as exc:  # a platform plugin must never stop the benchmark
                self._failed.add(name)
                self.errors.append({"plugin": name, "error": f"{type(exc).__name__}: {exc}"})
                continue
            if record:
                self._add(name, samples)

    def _add(self, plugin: str, samples: list[HwSample]) -> None:
        with self._lock:
            for s in samples:
                series = self.series.get(s.metric)
                if series is None:
                    series = self.series[s.metric] = Series(s.metric, s.unit, s.source or plugin)
                series.t.append(max(0.0, s.timestamp - self.started_at))
                series.v.append(float(s.value))

    # -- results --------------------------------------------------------------------------------

    def window(self, metric: str, start: float, end: float) -> list[tuple[float, float]]:
        """(time, value) of ``metric`` between two ``time.time()`` instants."""
        series = self.series.get(metric)
        if series is None:
            return []
        lo, hi = start - self.started_at, end - self.started_at
        with self._lock:
            return [(t, v) for t, v in zip(series.t, series.v) if lo <= t <= hi]

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "interval_s": self.interval,
                "started_at": self.started_at,
                "series": {name: s.to_json() for name, s in sorted(self.series.items())},
                "errors": list(self.errors),
            }


def _hook_collectors(manager: Any) -> list[tuple[str, Any]]:
    """Every loaded plugin's ``dk_collect_hw_stats`` as a separate callable."""
    if manager is None:
        from dk.plugins import get_plugin_manager

        manager = get_plugin_manager()
        manager.load_all()
    pm = getattr(manager, "pm", manager)
    collectors = []
    for impl in pm.hook.dk_collect_hw_stats.get_hookimpls():
        name = pm.get_name(impl.plugin) or getattr(impl.plugin, "__name__", "plugin")
        collectors.append((name, impl.function))
    return collectors


def energy_per_sample(sampler: HwSampler, start: float, end: float, samples: int) -> dict[str, float] | None:
    """Joules per inferred sample over a window: from an energy counter (``*.energy`` in J) when a
    plugin reports one, else mean power (``*.power`` in W) times the window's duration."""
    if samples <= 0 or end <= start:
        return None
    for metric in sorted(sampler.series):
        if metric.endswith(".energy"):
            points = sampler.window(metric, start, end)
            if len(points) >= 2 and points[-1][1] > points[0][1]:
                joules = points[-1][1] - points[0][1]
                span = points[-1][0] - points[0][0]
                return {"j_per_sample": joules / samples * ((end - start) / span if span else 1.0),
                        "source": metric, "method": "energy counter"}
    for metric in sorted(sampler.series):
        if metric.endswith(".power"):
            points = sampler.window(metric, start, end)
            if points:
                watts = float(np.mean([v for _, v in points]))
                return {"j_per_sample": watts * (end - start) / samples, "source": metric, "method": "mean power"}
    return None
