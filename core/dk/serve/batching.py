"""Dynamic batching: concurrent requests with the same sample shape merged into one engine call."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Mapping, Sequence

import attrs
import numpy as np

from dk.serve.limits import HttpError
from dk.specs import TensorSpec

#: One engine call: feeds -> (outputs, seconds spent inside ``engine.infer``).
EngineCall = Callable[[Mapping[str, np.ndarray]], Awaitable[tuple[dict[str, np.ndarray], float]]]


@attrs.define
class Timing:
    """Where one request's engine time went, in milliseconds."""

    queue_ms: float
    infer_ms: float
    batch: int = 1
    engine_start: float = 0.0  # perf_counter seconds (unbatched calls; for DK_SERVE_TRACE)
    engine_end: float = 0.0


def batch_limit(specs: Sequence[TensorSpec], max_batch: int) -> int:
    """``max_batch`` capped by the engine's range, or 1 when an input has no dynamic batch axis."""
    if max_batch <= 1 or not specs or any(not s.shape or isinstance(s.shape[0], int) for s in specs):
        return 1
    for spec in specs:
        if spec.max_shape:
            max_batch = min(max_batch, int(spec.max_shape[0]))
    return max(1, max_batch)


class _Item:
    __slots__ = ("feeds", "size", "future", "key", "queued")

    def __init__(self, feeds: Mapping[str, np.ndarray], future: asyncio.Future):
        self.feeds = feeds
        self.size = int(next(iter(feeds.values())).shape[0])
        self.future = future
        self.key = tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(feeds.items()))
        self.queued = time.perf_counter()


class DynamicBatcher:
    """Collects requests for up to ``max_delay`` seconds or ``max_batch`` samples, runs them as one
    batch and hands each request its slice of the outputs."""

    def __init__(self, run: EngineCall, concurrency: int, max_batch: int, max_delay: float):
        self.run = run
        self.concurrency = concurrency
        self.max_batch = max_batch
        self.max_delay = max_delay
        self._queue: asyncio.Queue[_Item] | None = None
        self._carry: _Item | None = None
        self._task: asyncio.Task | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task] = set()

    def describe(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch, "max_queue_delay_ms": self.max_delay * 1e3}

    async def submit(self, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], Timing]:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._slots = asyncio.Semaphore(self.concurrency)
            self._task = asyncio.get_running_loop().create_task(self._collect())
        item = _Item(feeds, asyncio.get_running_loop().create_future())
        if item.size > self.max_batch:
            raise HttpError(400, f"batch of {item.size} exceeds the server's max batch size {self.max_batch}")
        self._queue.put_nowait(item)
        return await item.future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            first = self._carry or await self._queue.get()
            self._carry = None
            batch, size = [first], first.size
            deadline = loop.time() + self.max_delay
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if item.key != first.key or size + item.size > self.max_batch:
                    self._carry = item
                    break
                batch.append(item)
                size += item.size
            task = loop.create_task(self._execute(batch, size))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _execute(self, batch: list[_Item], size: int) -> None:
        try:
            live = [i for i in batch if not i.future.done()]
            if not live:
                return
            feeds = live[0].feeds if len(live) == 1 else {
                name: np.concatenate([i.feeds[name] for i in live]) for name in live[0].feeds}
            started = time.perf_counter()
            try:
                outputs, seconds = await self.run(feeds)
            except BaseException as exc:  # every waiting request gets the engine's error
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            total = sum(i.size for i in live)
            bad = [k for k, v in outputs.items() if np.ndim(v) == 0 or np.shape(v)[0] != total]
            offset = 0
            for item in live:
                if item.future.done():
                    offset += item.size
                    continue
                if bad:
                    item.future.set_exception(HttpError(
                        500, f"output {bad[0]!r} has no batch axis; serve this model without --max-batch"))
                    continue
                part = {k: v[offset: offset + item.size] for k, v in outputs.items()}
                offset += item.size
                queue_ms = (started - item.queued) * 1e3 + ((time.perf_counter() - started) - seconds) * 1e3
                item.future.set_result((part, Timing(queue_ms=queue_ms, infer_ms=seconds * 1e3, batch=total)))
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            for task in list(self._running):
                await asyncio.gather(task, return_exceptions=True)
