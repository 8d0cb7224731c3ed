"""Running the app on uvicorn: loopback by default, graceful shutdown that finishes in-flight requests,
and :class:`StopSignals`, which owns SIGINT/SIGTERM for ``dk serve`` from start-up to exit."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from typing import Any, Callable

#: In-flight requests get this long to finish after SIGINT/SIGTERM; then they are cancelled.
GRACEFUL_SHUTDOWN_S = 20
#: ``dk serve`` exits within this long of the first SIGINT/SIGTERM, whatever it was doing: draining,
#: closing the engine, or still starting. Under Kubernetes' default terminationGracePeriodSeconds (30).
STOP_GRACE_S = 25
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "warning",
                access_log: bool = False, on_started: Callable[[], None] | None = None,
                drain_s: float = GRACEFUL_SHUTDOWN_S) -> Any:
    """A ``uvicorn.Server`` for ``app``; ``server.run()`` blocks until ``should_exit`` is set.

    It installs no signal handlers of its own (in ``dk serve`` :class:`StopSignals` sets ``should_exit``).
    ``on_started`` is called once the server accepts connections, unless it was asked to stop first.
    On shutdown it stops accepting connections, waits for in-flight requests (up to ``drain_s``),
    then the app's lifespan closes the engine.
    """
    import uvicorn

    from dk.serve.protocol import uvicorn_settings

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=access_log, lifespan="on",
        timeout_graceful_shutdown=drain_s, server_header=False, date_header=False,
        timeout_keep_alive=30, **uvicorn_settings(app),
    )
    server = _server_class()(config)
    server.on_started = on_started
    return server


def _server_class() -> type:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn's server without its signal handling. uvicorn installs its handlers only once
        ``run`` has begun and puts the previous ones back (re-raising what it caught) when it ends,
        so a signal just before, during or after leaves a window where it is lost or handled twice."""

        on_started: Callable[[], None] | None = None

        def capture_signals(self) -> Any:
            return contextlib.nullcontext()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit and self.on_started is not None:
                self.on_started()

    return QuietServer


class StopSignals:
    """One SIGINT/SIGTERM handler for the whole life of ``dk serve``.

    The first signal asks the attached server to drain and stop (``should_exit``); a second one
    stops it without waiting for in-flight requests (``force_exit``). Before a server is attached
    (start-up) the signal is only recorded and start-up stops at its next step. The handler never
    raises: an exception thrown into whatever Python was doing (an import, a library's native
    call) can leave it broken, and was seen to crash the process. A watchdog thread ends the
    process with status 1 if the block has not ended ``grace_s`` after the first signal.
    """

    def __init__(self, grace_s: float = STOP_GRACE_S):
        self.grace_s = grace_s
        self.received: list[int] = []
        self.server: Any = None
        self._first = threading.Event()
        self._done = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            threading.Thread(target=self._watchdog, name="dk-serve-stop-watchdog", daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()  # disarms the watchdog: what is left is the interpreter's own exit
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def stopping(self) -> bool:
        return bool(self.received)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else "none"

    def attach(self, server: Any) -> None:
        """From now on signals stop ``server``; one that came before stops it as soon as it starts."""
        self.server = server
        if self.received:
            server.should_exit = True
            server.force_exit = len(self.received) > 1

    def _handle(self, signum: int, frame: Any) -> None:
        first = not self.received
        self.received.append(signum)
        server = self.server
        if server is not None:
            if not first:
                server.force_exit = True
            server.should_exit = True
        if first:
            self._first.set()  # only the first signal takes the Event's lock: a nested handler cannot deadlock

    def _watchdog(self) -> None:
        self._first.wait()
        if self._done.wait(self.grace_s):
            return
        os.write(2, f"error: dk serve did not stop within {self.grace_s:g} s of {self.signal_name}; "
                    "exiting with status 1\n".encode())
        os._exit(1)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket for uvicorn's ``sockets=``.

    ``proto=IPPROTO_TCP`` matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    and without it each response waits ~40 ms for a delayed ACK (headers and body are two writes).
    Listening at once lets connections made before uvicorn starts wait instead of being refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class ServerThread:
    """A uvicorn server in a background thread on a free loopback port (tests, benchmarks, notebooks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.sock = listening_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self._started = threading.Event()
        self.server = make_server(app, self.host, self.port, log_level=log_level, on_started=self._started.set)
        self.thread = threading.Thread(target=self._run, name="dk-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self._started.set()  # wakes __enter__ when start-up failed

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        if not self._started.wait(60) or not self.server.started:
            raise RuntimeError("the dk serve thread did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STOP_GRACE_S)
        self.sock.close()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
