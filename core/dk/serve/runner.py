"""Engine calls off the event loop: a small thread pool, optionally fed by a dynamic batcher."""

from __future__ import annotations

import asyncio
import time
from typing import Mapping

import numpy as np

from dk.engine import Engine, InputChecker
from dk.serve.batching import DynamicBatcher, Timing, batch_limit
from dk.serve.engine_threads import EngineThreads
from dk.serve.metrics import Metrics

__all__ = ["EngineRunner", "Timing"]

#: Calls in a row shorter than ``inline_below_ms`` before the runner skips the thread hop.
INLINE_STREAK = 8


class EngineRunner:
    """Runs ``engine.infer`` on engine threads (:mod:`dk.serve.engine_threads`) so that the event
    loop never blocks on it.

    ``concurrency`` calls may run at once (1 by default: most engines use every core per call).
    With ``max_batch > 1`` and a dynamic batch axis, concurrent requests are merged into one call.

    An engine whose last ``INLINE_STREAK`` calls each took less than ``inline_below_ms`` runs on the
    event loop instead, without the two thread hops (about 0.1 ms on an idle machine, more under
    load): only while no other call is running, only for feeds no larger than those measured fast,
    and back to threads after the first slower call. A liveness probe then waits at most about
    ``inline_below_ms``. 0 turns it off.
    """

    def __init__(self, engine: Engine, metrics: Metrics, *, concurrency: int = 1, max_batch: int = 1,
                 max_delay_ms: float = 2.0, inline_below_ms: float = 1.0):
        self.inline_below = inline_below_ms / 1e3
        self._busy = 0
        self._fast_streak = 0
        self._fast_bytes = 0
        self.engine = engine
        self.metrics = metrics
        self.check = InputChecker(engine.inputs)
        self.concurrency = max(1, concurrency)
        self.threads = EngineThreads(self.concurrency, "dk-engine")
        limit = batch_limit(engine.inputs, max_batch)
        self.batcher = DynamicBatcher(self.run, self.concurrency, limit, max_delay_ms / 1e3) if limit > 1 else None

    async def infer(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Timing]:
        """Check the feeds (InputError on mismatch), then run them, batched with others if enabled."""
        self.check(feeds)
        if self.batcher is not None:
            return await self.batcher.submit(feeds)
        submitted = time.perf_counter()
        outputs, start, end = await self._timed(feeds)
        total = time.perf_counter() - submitted
        return outputs, Timing(queue_ms=(total - (end - start)) * 1e3, infer_ms=(end - start) * 1e3,
                               batch=_batch_of(feeds), engine_start=start, engine_end=end)

    async def run(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """One engine call: (outputs, seconds spent inside ``engine.infer``)."""
        outputs, start, end = await self._timed(feeds)
        return outputs, end - start

    async def _timed(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float, float]:
        nbytes = sum(v.nbytes for v in feeds.values())
        if self._busy == 0 and self._fast_streak >= INLINE_STREAK and nbytes <= self._fast_bytes:
            outputs, start, end = self._call(feeds)
        else:
            self._busy += 1
            try:
                outputs, start, end = await self.threads.call(self._call, feeds)
            finally:
                self._busy -= 1
        if end - start < self.inline_below:
            self._fast_streak += 1
            self._fast_bytes = max(self._fast_bytes, nbytes)
        else:
            self._fast_streak = self._fast_bytes = 0
        return outputs, start, end

    def _call(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float, float]:
        start = time.perf_counter()
        outputs = self.engine.infer(feeds)
        end = time.perf_counter()
        self.metrics.engine_call(_batch_of(feeds))
        return outputs, start, end

    def describe(self) -> dict[str, object]:
        return {"concurrency": self.concurrency,
                "dynamic_batching": None if self.batcher is None else self.batcher.describe()}

    async def aclose(self) -> None:
        if self.batcher is not None:
            await self.batcher.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Wait for running calls, then close the engine."""
        self.threads.shutdown()
        self.engine.close()


def _batch_of(feeds: Mapping[str, np.ndarray]) -> int:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1
