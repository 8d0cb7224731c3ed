"""EngineRunner: short engine calls skip the thread hop, long or larger ones never run on the loop."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from dk.serve.metrics import Metrics
from dk.serve.runner import INLINE_STREAK, EngineRunner
from tests.core.test_serve_support import LinearEngine


class WhereEngine(LinearEngine):
    """Records the thread of every call."""

    def __init__(self, delay: float = 0.0):
        super().__init__(delay=delay)
        self.threads: list[str] = []

    def infer(self, inputs):
        self.threads.append(threading.current_thread().name)
        return super().infer(inputs)


def _calls(engine, feeds_list, **kw):
    async def go():
        runner = EngineRunner(engine, Metrics(), **kw)
        loop_thread = threading.current_thread().name
        for feeds in feeds_list:
            await runner.infer(feeds)
        runner.threads.shutdown()
        return loop_thread
    return asyncio.run(go())


def test_fast_engine_calls_run_on_the_loop_after_a_streak_and_larger_feeds_go_back_to_threads():
    engine = WhereEngine()
    one = {"input": np.zeros((1, 1, 8, 8), np.float32)}
    four = {"input": np.zeros((4, 1, 8, 8), np.float32)}
    loop = _calls(engine, [one] * (INLINE_STREAK + 3) + [four], inline_below_ms=1000.0)
    threads = engine.threads
    assert all(t.startswith("dk-engine") for t in threads[:INLINE_STREAK])
    assert threads[INLINE_STREAK: INLINE_STREAK + 3] == [loop] * 3
    assert threads[-1].startswith("dk-engine")  # feeds larger than any measured fast


def test_slow_or_disabled_engines_always_run_in_worker_threads():
    one = {"input": np.zeros((1, 1, 8, 8), np.float32)}
    slow = WhereEngine(delay=0.003)
    _calls(slow, [one] * (INLINE_STREAK + 2), inline_below_ms=1.0)
    off = WhereEngine()
    _calls(off, [one] * (INLINE_STREAK + 2), inline_below_ms=0.0)
    for engine in (slow, off):
        assert all(t.startswith("dk-engine") for t in engine.threads), engine.threads


def test_engine_threads_hand_back_results_and_exceptions_and_survive_a_cancelled_caller():
    from dk.serve.engine_threads import EngineThreads

    release = threading.Event()

    def fail():
        raise ValueError("engine says no")

    async def go():
        threads = EngineThreads(1, "dk-test-engine")
        blocked = threads.call(release.wait, 30)
        blocked.cancel()  # the request went away while its call runs: the answer is dropped, not an error
        release.set()
        assert await threads.call(lambda a, b: a + b, 2, 3) == 5
        try:
            await threads.call(fail)
        except ValueError as exc:
            error = str(exc)
        name = await threads.call(lambda: threading.current_thread().name)
        threads.shutdown()
        return error, name

    error, name = asyncio.run(go())
    assert error == "engine says no"
    assert name == "dk-test-engine_0"
