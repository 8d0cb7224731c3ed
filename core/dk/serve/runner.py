"""Engine calls off the event loop: a small thread pool, optionally fed by a dynamic batcher."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import numpy as np

from dk.engine import Engine, InputChecker
from dk.serve.batching import DynamicBatcher, Timing, batch_limit
from dk.serve.metrics import Metrics

__all__ = ["EngineRunner", "Timing"]

class EngineRunner:
    """Runs ``engine.infer`` in worker threads so that the event loop never blocks on it.

    ``concurrency`` calls may run at once (1 by default: most engines use every core per call).
    With ``max_batch > 1`` and a dynamic batch axis, concurrent requests are merged into one call.
    """

    def __init__(self, engine: Engine, metrics: Metrics, *, concurrency: int = 1, max_batch: int = 1,
                 max_delay_ms: float = 2.0):
        self.engine = engine
        self.metrics = metrics
        self.check = InputChecker(engine.inputs)
        self.executor = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="dk-engine")
        self.concurrency = max(1, concurrency)
        limit = batch_limit(engine.inputs, max_batch)
        self.batcher = DynamicBatcher(self.run, self.concurrency, limit, max_delay_ms / 1e3) if limit > 1 else None

    async def infer(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Timing]:
        """Check the feeds (InputError on mismatch), then run them, batched with others if enabled."""
        self.check(feeds)
        if self.batcher is not None:
            return await self.batcher.submit(feeds)
        start = time.perf_counter()
        outputs, seconds = await self.run(feeds)
        total = time.perf_counter() - start
        return outputs, Timing(queue_ms=(total - seconds) * 1e3, infer_ms=seconds * 1e3)

    async def run(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """One engine call in the pool: (outputs, seconds spent inside ``engine.infer``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._call, feeds)

    def _call(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        start = time.perf_counter()
        outputs = self.engine.infer(feeds)
        seconds = time.perf_counter() - start
        self.metrics.engine_call(_batch_of(feeds))
        return outputs, seconds

    def describe(self) -> dict[str, object]:
        return {"concurrency": self.concurrency,
                "dynamic_batching": None if self.batcher is None else self.batcher.describe()}

    async def aclose(self) -> None:
        if self.batcher is not None:
            await self.batcher.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def close(self) -> None:
        """Wait for running calls, then close the engine."""
        self.executor.shutdown(wait=True)
        self.engine.close()


def _batch_of(feeds: Mapping[str, np.ndarray]) -> int:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1
