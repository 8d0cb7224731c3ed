"""Background hardware sampling: time series, a failing plugin reported once, energy per sample."""

from __future__ import annotations

import time
import types

import pytest

from dk.bench.hwstats import HwSampler, Series, energy_per_sample
from dk.hooks import hookimpl
from dk.plugins import PluginManager
from dk.specs import HwSample


def _broken_platform_module(calls: list[float]) -> types.ModuleType:
    module = types.ModuleType("broken_platform")

    @hookimpl
    def dk_collect_hw_stats():
        calls.append(time.time())
        raise RuntimeError("sensor bus went away")

    module.dk_collect_hw_stats = dk_collect_hw_stats
    return module


def test_a_plugin_that_raises_is_reported_once_and_the_others_go_on():
    calls: list[float] = []
    manager = PluginManager(entry_points=[])
    manager.register(_broken_platform_module(calls), "broken")
    with HwSampler(0.03, manager) as sampler:
        deadline = time.monotonic() + 60  # a guard against hanging, not a speed expectation
        while len(getattr(sampler.series.get("process.rss"), "t", ())) < 5:  # wait for 5 samples, however slow
            assert time.monotonic() < deadline, "the sampler took no 5 samples in 60 s"
            time.sleep(0.03)
    assert len(calls) == 1
    assert sampler.errors == [{"plugin": "broken", "error": "RuntimeError: sensor bus went away"}]
    rss = sampler.series["process.rss"]
    assert len(rss.t) >= 5 and rss.t == sorted(rss.t) and all(v > 1 for v in rss.v)
    assert set(sampler.series) == {"cpu.util", "process.rss", "system.ram_used"}
    assert sampler.to_json()["errors"][0]["plugin"] == "broken"


def test_series_summary_and_json():
    series = Series("gpu0.power", "W", "cuda", t=[0.0, 0.1, 0.2, 0.3], v=[10.0, 20.0, 30.0, 100.0])
    summary = series.summary()
    assert summary == {"n": 4, "mean": 40.0, "std": pytest.approx(35.355339), "median": 25.0, "min": 10.0,
                       "max": 100.0}
    assert series.to_json()["unit"] == "W" and Series("x", "", "").summary() == {"n": 0}


def _sampler_with(points: dict[str, list[tuple[float, float]]], unit: str) -> HwSampler:
    sampler = HwSampler(0, collectors=[])
    sampler.started_at = 1000.0
    for metric, values in points.items():
        sampler._add("test", [HwSample(metric, v, unit, 1000.0 + t) for t, v in values])
    return sampler


def test_energy_from_a_counter_scales_to_the_window():
    sampler = _sampler_with({"gpu0.energy": [(0.0, 500.0), (1.0, 600.0), (2.0, 700.0)]}, "J")
    # 200 J over 2 s of samples, window 2 s, 1000 samples inferred -> 0.2 J each
    energy = energy_per_sample(sampler, 1000.0, 1002.0, 1000)
    assert energy == {"j_per_sample": pytest.approx(0.2), "source": "gpu0.energy", "method": "energy counter"}


def test_energy_from_mean_power_without_a_counter():
    sampler = _sampler_with({"jetson.power": [(0.5, 4.0), (1.0, 6.0), (5.0, 100.0)]}, "W")
    energy = energy_per_sample(sampler, 1000.0, 1002.0, 50)  # mean 5 W over 2 s = 10 J for 50 samples
    assert energy["j_per_sample"] == pytest.approx(0.2) and energy["method"] == "mean power"
    assert energy_per_sample(_sampler_with({}, "W"), 1000.0, 1002.0, 50) is None
