"""OpenVinoEngine: a compiled model run by one synchronous request (latency mode) or by a pool of
the device's optimal number of requests (throughput mode).

No Python callback is ever given to OpenVINO: its worker threads then never take the GIL, which
is what aborted processes at exit (a stream thread running a callback while the interpreter
finalized; docs/openvino.md, "Exit"). Requests are started and waited on from the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from dk.engine import Engine, InputChecker
from dk.errors import DkError
from dk.specs import TensorSpec

MODES = ("latency", "throughput")


def _shared_tensor(array: np.ndarray) -> Any:
    """An ``openvino.Tensor`` over the array's own memory; OpenVINO can share only writable
    C-contiguous arrays, so others are copied once."""
    from openvino import Tensor

    if array.flags.c_contiguous and array.flags.writeable:
        return Tensor(array, shared_memory=True)
    return Tensor(np.ascontiguousarray(array))


class OpenVinoEngine(Engine):
    """``infer(feeds)`` in both modes; ``infer_many(list_of_feeds)`` keeps every request busy in
    throughput mode. Inputs are shared with OpenVINO (no copy); outputs are the caller's own arrays."""

    def __init__(self, compiled: Any, *, name: str, device: str, precision: str, mode: str, requests: int,
                 inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]):
        self.compiled = compiled
        self.name, self.device, self.precision, self.mode = name, device, precision, mode
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.requests = requests
        self._check = InputChecker(self.inputs)
        self._names = [s.name for s in self.outputs]
        self._input_order = list(enumerate(s.name for s in self.inputs))
        self._lock = threading.Lock()
        self._request = compiled.create_infer_request() if mode == "latency" else None
        self._idle: queue.SimpleQueue | None = None  # throughput mode: the requests no call is using
        if mode == "throughput":
            self._idle = queue.SimpleQueue()
            for _ in range(requests):
                self._idle.put(compiled.create_infer_request())
        from dk_openvino.runtime import track

        track(self)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check(inputs)
        request = self._request
        if request is not None:
            with self._lock:
                self._set_inputs(request, inputs)
                _run(request.infer)
                return self._outputs(request)
        idle = self._live_pool()
        request = idle.get()  # concurrent callers each get their own request
        try:
            self._set_inputs(request, inputs)
            _run(request.infer)
            return self._outputs(request)
        finally:
            idle.put(request)

    @property
    def parallel_requests(self) -> int:
        """Requests in flight through ``infer_many``: all of them in throughput mode, else one."""
        return self.requests if self.mode == "throughput" else 1

    def infer_many(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Outputs for each feed, in order. Throughput mode keeps every request of the pool busy,
        the feeds taking turns (the feeds must stay unchanged until this returns); latency mode runs
        them one by one."""
        for one in feeds:
            self._check(one)
        if self._request is not None:
            return [self.infer(one) for one in feeds]
        idle = self._live_pool()
        pool = [idle.get() for _ in range(self.requests)]
        results: list[dict[str, np.ndarray]] = [{} for _ in feeds]
        running: dict[int, int] = {}  # place in the pool -> index of the feed it runs
        try:
            for index, one in enumerate(feeds):
                slot = index % len(pool)
                if slot in running:
                    results[running.pop(slot)] = self._finish(pool[slot])
                self._set_inputs(pool[slot], one)
                _run(pool[slot].start_async)
                running[slot] = index
            for slot in sorted(running, key=running.__getitem__):
                results[running.pop(slot)] = self._finish(pool[slot])
        finally:
            for slot in running:  # after an error: the others finish before their requests are reused
                try:
                    pool[slot].wait()
                except RuntimeError:
                    pass
            for request in pool:
                idle.put(request)
        return results

    def close(self) -> None:
        """Release OpenVINO's objects now, users before what they use: the idle requests, then the
        compiled model (runtime.release drops the Core at exit)."""
        idle, self._idle = self._idle, None
        while idle is not None and not idle.empty():
            idle.get_nowait()
        self._request = None
        self.compiled = None
        self.mode = "closed"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "mode": self.mode, "requests": self.requests}

    def _live_pool(self) -> queue.SimpleQueue:
        if self._idle is None:
            raise DkError("this openvino engine is closed; load the artifact again")
        return self._idle

    def _set_inputs(self, request: Any, inputs: Mapping[str, np.ndarray]) -> None:
        for index, name in self._input_order:
            request.set_input_tensor(index, _shared_tensor(inputs[name]))

    def _outputs(self, request: Any) -> dict[str, np.ndarray]:
        return {name: request.get_output_tensor(i).data.copy() for i, name in enumerate(self._names)}

    def _finish(self, request: Any) -> dict[str, np.ndarray]:
        _run(request.wait)
        return self._outputs(request)


def _run(call: Any) -> None:
    """An OpenVINO call whose failure becomes a :class:`DkError` with OpenVINO's message."""
    try:
        call()
    except RuntimeError as exc:
        from dk_openvino.runtime import one_line

        raise DkError(f"OpenVINO inference failed: {one_line(exc)}") from None
