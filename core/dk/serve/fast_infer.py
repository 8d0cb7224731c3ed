"""Binary OIP infer requests answered by the HTTP protocol itself, without an ASGI cycle.

The common request of a deployed model (``POST /v2/models/NAME[/versions/V]/infer`` with binary
tensors, a Content-Length within ``--max-body``, no Content-Encoding, no ``Expect``, nothing else
in flight on the connection) has its body copied, as it arrives, straight into the buffer its
tensors are views of; once whole, one task runs the same code as the ASGI route
(``handlers.answer_infer``, the same errors and metrics) and writes status line, headers and body
in one send. Every other request (JSON, compressed, chunked, pipelined behind another, any other
endpoint) takes the ASGI way, with the same answers.

Why: on the 2-core development VM, uvicorn's per-request cycle (scope, ASGI messages, the task's
``receive``/``send``) and the ASGI plumbing cost about 0.4 ms of event-loop CPU per
ResNet-18-sized request, a fifth of what serving added to the engine call (docs/serving.md).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import httptools

from dk.serve import handlers
from dk.serve.bodies import aligned_buffer
from dk.serve.infer_route import INFER_LABEL, INFER_PATH, VERSIONED_INFER_LABEL
from dk.serve.limits import byte_count
from dk.serve.responses import CUT_OFF, dumps, error_reply
from dk.serve.tensors import BINARY_HEADER_BYTES

if TYPE_CHECKING:
    from dk.serve.worker import Worker


class _NoWaiter:
    """uvicorn sets its cycle's ``message_event`` when the connection is lost; nobody waits here."""

    def set(self) -> None:
        pass


_NO_WAITER = _NoWaiter()


class FastInfer:
    """One binary infer request on the fast path, standing in as the protocol's current cycle
    (``response_complete``, ``keep_alive``, ``disconnected``, ``message_event``: what uvicorn's
    protocol reads of a cycle) so that a request pipelined behind it waits its turn."""

    def __init__(self, worker: "Worker", label: str, name: str, version: str | None, length: int,
                 header: str, keep_alive: bool, scope: Any):
        self.worker, self.label, self.name, self.version = worker, label, name, version
        self.header, self.keep_alive = header, keep_alive
        self.scope = scope  # the ASGI-style scope the protocol made (trace stamps)
        self.response_complete = self.disconnected = False
        self.message_event = _NO_WAITER
        self.start = time.perf_counter()
        self.body = aligned_buffer(length, int(header))  # the binary tensors start aligned
        self.received = 0
        self.timer: asyncio.TimerHandle | None = None  # the body timeout, until the body is whole
        worker.metrics.in_flight += 1  # from its headers on, as the ASGI route counts a request
        self._in_flight = True

    @classmethod
    def accept(cls, worker: "Worker | None", method: bytes, url: bytes, headers: list[tuple[bytes, bytes]],
               keep_alive: bool, scope: Any) -> "FastInfer | None":
        """The fast-path request for these headers, or None when the request is not one for it."""
        if worker is None or method != b"POST":
            return None
        path = httptools.parse_url(url).path
        match = None if b"%" in path else INFER_PATH.fullmatch(path.decode("latin-1"))
        if match is None:
            return None
        length = header = None
        for key, value in headers:
            if key == b"content-length":
                length = value
            elif key == BINARY_HEADER_BYTES:
                if header is not None:
                    return None  # given twice: the ASGI route says what is wrong with that
                header = value
            elif key in _NOT_FAST:
                return None
        body_bytes, json_bytes = byte_count(length), byte_count(header)
        if body_bytes is None or json_bytes is None or json_bytes > body_bytes or body_bytes > worker.config.max_body:
            return None
        name, version = match.groups()
        label = INFER_LABEL if version is None else VERSIONED_INFER_LABEL
        return cls(worker, label, name, version, body_bytes, header.decode("latin-1"), keep_alive, scope)

    def feed(self, chunk: bytes) -> None:
        """A piece of the body (llhttp stops at the Content-Length: it never overruns)."""
        end = self.received + len(chunk)
        self.body[self.received: end] = chunk
        self.received = end

    def finished(self) -> None:
        """The request is answered or given up on (body timeout, client gone): it leaves the
        in-flight gauge, once."""
        if self._in_flight:
            self._in_flight = False
            self.worker.metrics.in_flight -= 1

    async def answer(self) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) of the response, errors as the ASGI route answers them."""
        worker = self.worker
        try:
            worker.require_model(self.name, self.version)
            runner = worker.require_ready()
            content, headers = await handlers.answer_infer(worker, runner, self.body, self.header, self.start,
                                                           self.scope)
            status = 200
        except Exception as exc:
            status, message = error_reply(exc, self.label)
            content, headers = dumps({"error": message}), {"content-type": "application/json"}
        except asyncio.CancelledError:  # still running when the stop grace period ended
            (status, message), self.keep_alive = CUT_OFF, False
            content, headers = dumps({"error": message}), {"content-type": "application/json"}
        finally:
            self.finished()
        worker.metrics.observe(self.label, status, time.perf_counter() - self.start)
        return status, content, headers


#: Headers that send a request the ASGI way (the fast path reads an identity body of known length).
_NOT_FAST = frozenset({b"content-encoding", b"transfer-encoding", b"expect"})
