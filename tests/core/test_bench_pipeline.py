"""The timed loop: phase split, what the timed region covers, copies, statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dk.bench.latency import TimedRegion, copies_mode, measure_latency, measure_pipeline, summarize
from dk.engine import Engine
from dk.specs import TensorSpec


class SleepEngine(Engine):
    """Sums its input after sleeping ``seconds``: a real engine with a known cost."""

    name = "sleep"

    def __init__(self, seconds: float, device: str = "cpu"):
        self.seconds, self.device = seconds, device
        self.inputs = [TensorSpec("x", ("batch", 4))]
        self.outputs = [TensorSpec("y", ("batch",))]
        self.prepared_calls = 0

    def infer(self, inputs):
        time.sleep(self.seconds)
        return {"y": inputs["x"].sum(axis=1)}


class ResidentEngine(SleepEngine):
    """An engine that can take inputs already on its device (the copy-separation protocol)."""

    def prepare_inputs(self, feeds):
        self.prepared_calls += 1
        time.sleep(0.004)  # the upload: must stay outside the timed region
        return dict(feeds)

    def infer_prepared(self, prepared):
        return self.infer(prepared)


def slow_preprocess(raw):
    time.sleep(0.005)
    return {"x": raw.astype(np.float32)}


def test_summarize_known_values():
    stats = summarize([1e6, 2e6, 3e6, 4e6], batch=2)  # 1..4 ms
    assert stats.iterations == 4 and stats.p50_ms == 2.5 and stats.mean_ms == 2.5 and stats.min_ms == 1.0
    assert stats.cv == pytest.approx(np.std([1, 2, 3, 4]) / 2.5)
    assert stats.throughput == pytest.approx(2 * 4 / 0.010)


def test_measure_latency_keeps_its_contract():
    engine = SleepEngine(0.001)
    stats = measure_latency(engine, {"x": np.ones((3, 4), np.float32)}, warmup=1, iterations=7)
    assert stats.batch == 3 and stats.iterations == 7 and stats.min_ms >= 1.0


def test_preprocessing_is_in_the_timed_region_only_when_asked():
    raw = np.ones((2, 4))
    engine = SleepEngine(0.001)
    outside = measure_pipeline(engine, raw, slow_preprocess, None, warmup=1, iterations=8, batch=2)
    inside = measure_pipeline(engine, raw, slow_preprocess, None, region=TimedRegion(preprocess=True), warmup=1,
                              iterations=8, batch=2)
    for timing in (outside, inside):
        assert timing.phases["preprocess"].min_ms >= 5.0 and timing.phases["infer"].min_ms >= 1.0
        assert timing.end_to_end.min_ms >= 6.0 and timing.latency.iterations == 8
    assert outside.latency.p50_ms < 4.0 <= 6.0 <= inside.latency.min_ms
    assert outside.latency.throughput > inside.latency.throughput


def test_postprocessing_is_its_own_phase():
    seen = []
    timing = measure_pipeline(SleepEngine(0.0), np.ones((1, 4)), slow_preprocess, lambda out: seen.append(out["y"]),
                              warmup=2, iterations=5)
    assert len(seen) == 5 and seen[-1].tolist() == [4.0]  # timed on the engine's outputs, in its own loop
    assert timing.phases["postprocess"].iterations == 5 and timing.copies == "none"
    assert timing.end_to_end.min_ms >= 5.0


def test_cpu_engines_have_no_copies():
    assert copies_mode(SleepEngine(0), include=False) == ("none", "engine runs on the CPU: no host<->device copies")


def test_a_device_engine_without_the_protocol_keeps_copies_in_the_region():
    mode, note = copies_mode(SleepEngine(0, device="cuda"), include=False)
    assert mode == "included" and "cannot separate its copies" in note


def test_copies_excluded_when_the_engine_separates_them():
    engine = ResidentEngine(0.001, device="cuda")
    timing = measure_pipeline(engine, np.ones((1, 4)), lambda raw: {"x": raw}, None,
                              region=TimedRegion(copies=False), warmup=0, iterations=5)
    assert timing.copies == "excluded" and engine.prepared_calls == 5
    assert timing.latency.p50_ms < 4.0  # the 4 ms upload is not in it
    included = measure_pipeline(engine, np.ones((1, 4)), lambda raw: {"x": raw}, None, warmup=0, iterations=3)
    assert included.copies == "included" and engine.prepared_calls == 5
