"""OpenVinoEngine: a compiled model run by one synchronous request (latency mode) or by an
``AsyncInferQueue`` of the device's optimal number of requests (throughput mode)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from dk.engine import Engine, InputChecker
from dk.errors import DkError
from dk.specs import TensorSpec

MODES = ("latency", "throughput")


class _Job:
    """One submitted inference: its outputs (or error) arrive from the queue's callback thread."""

    __slots__ = ("done", "error", "outputs")

    def __init__(self, wait: bool):
        self.outputs: tuple[np.ndarray, ...] | None = None
        self.error: BaseException | None = None
        self.done = threading.Event() if wait else None


def _finished(request: Any, job: _Job) -> None:
    try:  # the request is reused for the next job: copy its outputs out
        job.outputs = tuple(t.data.copy() for t in request.output_tensors)
    except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
        job.error = exc
    if job.done is not None:
        job.done.set()


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
        self._queue = None
        if mode == "throughput":
            from openvino import AsyncInferQueue

            self._queue = AsyncInferQueue(compiled, requests)
            self._queue.set_callback(_finished)
        from dk_openvino.runtime import track

        track(self)

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check(inputs)
        request = self._request
        if request is not None:
            with self._lock:
                for index, name in self._input_order:
                    request.set_input_tensor(index, _shared_tensor(inputs[name]))
                request.infer()
                return {name: request.get_output_tensor(i).data.copy() for i, name in enumerate(self._names)}
        queue = self._live_queue()
        job = _Job(wait=True)
        queue.start_async(inputs, job, share_inputs=True)
        job.done.wait()
        return self._result(job)

    @property
    def parallel_requests(self) -> int:
        """Requests in flight through ``infer_many``: all of them in throughput mode, else one."""
        return self.requests if self.mode == "throughput" else 1

    def infer_many(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Outputs for each feed, in order. Throughput mode submits them all to the request queue
        (the feeds must stay unchanged until this returns); latency mode runs them one by one."""
        for one in feeds:
            self._check(one)
        if self._request is not None:
            return [self.infer(one) for one in feeds]
        queue = self._live_queue()
        jobs = [_Job(wait=False) for _ in feeds]
        for one, job in zip(feeds, jobs):
            queue.start_async(one, job, share_inputs=True)
        queue.wait_all()
        return [self._result(job) for job in jobs]

    def close(self) -> None:
        """Release OpenVINO's objects now, users before what they use: the queue once its jobs are
        done, the request, then the compiled model (runtime.release drops the Core at exit)."""
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.wait_all()
            del queue
        self._request = None
        self.compiled = None
        self.mode = "closed"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "mode": self.mode, "requests": self.requests}

    def _live_queue(self) -> Any:
        if self._queue is None:
            raise DkError("this openvino engine is closed; load the artifact again")
        return self._queue

    def _result(self, job: _Job) -> dict[str, np.ndarray]:
        if job.error is not None or job.outputs is None:
            raise DkError(f"OpenVINO inference failed: {job.error or 'no outputs'}")
        return dict(zip(self._names, job.outputs))
