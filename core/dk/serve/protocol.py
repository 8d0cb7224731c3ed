"""uvicorn's httptools HTTP/1.1 protocol with dk's connection rules: malformed framing answered
``{"error": ...}`` like every other error, a header read timeout (408, then close), a header size
limit (431, then close) and a cap on open connections (503, then close).

Why httptools: its parser is llhttp (Node.js's, in C), several times faster per request than the
pure-Python h11 and with the same behaviour on malformed input; see docs/serving.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Iterable

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from dk.serve import trace
from dk.serve.bodies import body_too_slow
from dk.serve.config import ServeConfig
from dk.serve.fast_infer import FastInfer


#: Bytes of a request body buffered per connection before reading pauses until the app takes them.
BODY_BUFFER = 1 << 20
#: Largest request line plus headers (llhttp has no limit of its own; h11's default is 16 KiB).
MAX_HEADER_BYTES = 64 << 10
#: The metrics endpoint of requests refused before their route was known (framing, header limits, connection cap).
CONNECTION_LABEL = "(connection)"


def uvicorn_settings(app: Any) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``: this protocol bound to the limits of the app's
    :class:`ServeConfig` (the defaults for an app that has none)."""
    worker = getattr(getattr(app, "state", None), "worker", None)
    config = getattr(worker, "config", None) or ServeConfig()
    protocol = type("DkHttpProtocol", (DkHttpProtocol,), {
        "header_timeout": config.header_timeout_s, "max_connections": config.max_connections, "worker": worker})
    return {"http": protocol, "proxy_headers": False, "h11_max_incomplete_event_size": 64 * 1024}


def response_head(status: int, headers: Iterable[tuple[str, str]], length: int, close: bool) -> bytes:
    """Status line and headers of a response with a ``length``-byte body, ``connection: close``
    if ``close``."""
    head = [STATUS_LINE[status]]
    head += [b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    head.append(b"content-length: %d\r\n" % length)
    if close:
        head.append(b"connection: close\r\n")
    head.append(b"\r\n")
    return b"".join(head)


def error_bytes(status: int, message: str) -> bytes:
    """A complete ``{"error": message}`` response that closes the connection."""
    body = json.dumps({"error": message}).encode()
    return response_head(status, [("content-type", "application/json")], len(body), True) + body


#: Writes of one event-loop step are joined into one ``send`` up to this many bytes in all.
COMBINE_BYTES = 256 << 10


class WriteCombiner:
    """The connection's transport, with the writes of one event-loop step sent as one.

    uvicorn writes a response's status line and headers, then its body, each straight to the
    socket: two ``send`` calls, each a pass through loopback TCP that wakes the client. Here they
    leave together, in order, at the end of the step (``call_soon``); more than
    ``COMBINE_BYTES`` go as they came, not copied into one. ``close`` sends what is pending first.
    On a ResNet-18-sized request this saves about 0.25 ms of event-loop CPU (docs/serving.md).
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if len(pending) > 1 and sum(map(len, pending)) <= COMBINE_BYTES:
            pending = [b"".join(pending)]
        for data in pending:
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class DkHttpProtocol(HttpToolsProtocol):
    """One connection. ``header_timeout`` runs from the connection (or the end of the previous
    response's keep-alive wait) to the end of the request's headers. With a ``worker`` (the app's),
    binary infer requests take the fast path of :mod:`dk.serve.fast_infer`."""

    header_timeout: float | None = 10.0
    max_connections: int | None = None
    worker: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = WriteCombiner(transport, self.loop)  # type: ignore[assignment]
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_start = time.perf_counter()
        self._in_headers = False  # from a request's first byte to the end of its headers
        self._headers_done = 0  # requests whose headers were parsed on this connection
        self._unparsed_header_bytes = 0
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            self.logger.warning("refused a connection: %d open, the limit is %d", len(self.connections) - 1,
                                self.max_connections)
            self._refuse(503, f"the server has {self.max_connections} connections open, its limit; try again later")
            return
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self.header_timeout is not None and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._refuse(408, f"the request headers did not arrive within {self.header_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request refused before its route was known, counted in the metrics."""
        if self.worker is not None and not self.transport.is_closing():
            self.worker.metrics.observe(CONNECTION_LABEL, status, time.perf_counter() - self._request_start)
        self._answer(status, message)

    def _answer(self, status: int, message: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(error_bytes(status, message))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        """uvicorn's, and a limit on header bytes that have not been parsed yet: httptools hands a
        header on only once its line ends, so a line that never ends would otherwise grow without
        bound. A read that was all headers (headers under way before and after it, none finished
        within it) counts whole."""
        was_in_headers, done = self._in_headers, self._headers_done
        super().data_received(data)
        if was_in_headers and self._in_headers and self._headers_done == done:
            self._unparsed_header_bytes += len(data)
            if self._unparsed_header_bytes > MAX_HEADER_BYTES:
                self._headers_too_large = True
                self.send_400_response("request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_start = time.perf_counter()
        self._header_bytes = self._unparsed_header_bytes = 0
        self._in_headers = True
        self._arm_header_timer()
        if trace.ENABLED:
            trace.stamp(self.scope, trace.BEGIN)  # the request's first byte

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            self._headers_too_large = True
            raise ValueError("request headers too large")  # httptools stops parsing: send_400_response

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._headers_done += 1
        self._disarm_header_timer()
        if trace.ENABLED:
            trace.stamp(self.scope, trace.HEADERS)
        if self.worker is not None and (self.cycle is None or self.cycle.response_complete) \
                and not self.parser.should_upgrade():
            keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
            fast = FastInfer.accept(self.worker, self.parser.get_method(), self.url, self.headers, keep_alive,
                                    self.scope)
            if fast is not None:
                self.cycle = fast  # type: ignore[assignment]
                self._arm_body_timer(fast)
                return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """uvicorn's, with a larger buffer before reading pauses (``BODY_BUFFER`` instead of 64 KiB):
        a ResNet-sized body then arrives without a pause/resume round trip per 64 KiB; and a chunk
        the app takes before the next arrives is handed on as it came (uvicorn copies it twice).
        A fast-path request's chunks go straight into its buffer."""
        cycle = self.cycle
        if isinstance(cycle, FastInfer):
            cycle.feed(body)
            return
        if cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        if not cycle.body:
            cycle.body = body  # the chunk itself: uvicorn's receive() hands ``bytes(body)`` on, no copy
        elif isinstance(cycle.body, bytes):
            cycle.body = bytearray(cycle.body) + body  # a second chunk before the app took the first
        else:
            cycle.body += body
        if len(cycle.body) > BODY_BUFFER:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        fast = self.cycle
        if not isinstance(fast, FastInfer):
            super().on_message_complete()
            return
        self._disarm_body_timer(fast)
        task = self.loop.create_task(self._respond(fast))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _respond(self, fast: FastInfer) -> None:
        """Answer a whole fast-path request: one response, then uvicorn's keep-alive handling."""
        status, content, headers = await fast.answer()
        if self.transport.is_closing():  # the client left meanwhile
            fast.response_complete = True
            return
        default = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.server_state.default_headers]
        self.transport.write(response_head(status, [*default, *headers.items()], len(content), not fast.keep_alive))
        self.transport.write(content)
        self.transport.flush()  # now, as one send unless large (WriteCombiner), not at the end of the step
        fast.response_complete = True
        if not fast.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def _arm_body_timer(self, fast: FastInfer) -> None:
        timeout = fast.worker.config.body_timeout_s
        if timeout is not None:
            fast.timer = self.loop.call_later(timeout, self._body_too_slow, fast, timeout)

    def _disarm_body_timer(self, fast: FastInfer) -> None:
        if fast.timer is not None:
            fast.timer.cancel()
            fast.timer = None

    def _body_too_slow(self, fast: FastInfer, timeout: float) -> None:
        fast.timer = None
        fast.finished()
        fast.worker.metrics.observe(fast.label, 408, time.perf_counter() - fast.start)
        self._answer(408, body_too_slow(timeout).message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        fast = self.cycle
        if isinstance(fast, FastInfer) and fast.timer is not None:  # gone before the whole body came
            self._disarm_body_timer(fast)
            fast.finished()
            fast.worker.metrics.observe(fast.label, 400, time.perf_counter() - fast.start)
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """Malformed framing (bad chunk size or Content-Length, control characters in the method...)."""
        self._disarm_header_timer()
        if getattr(self, "_headers_too_large", False):
            self._refuse(431, f"request line and headers exceed {MAX_HEADER_BYTES} bytes")
            return
        self._refuse(400, "malformed HTTP request (framing, request line or headers); send valid HTTP/1.1")
