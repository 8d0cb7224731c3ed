"""Running the app on uvicorn: loopback by default, graceful shutdown that finishes in-flight requests."""

from __future__ import annotations

import socket
import threading
from typing import Any

GRACEFUL_SHUTDOWN_S = 30


def make_server(app: Any, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "warning",
                access_log: bool = False) -> Any:
    """A ``uvicorn.Server`` for ``app``; ``server.run()`` blocks until SIGINT/SIGTERM or ``should_exit``.

    On shutdown uvicorn stops accepting connections, waits for in-flight requests (up to
    ``GRACEFUL_SHUTDOWN_S``), then the app's lifespan closes the engine.
    """
    import uvicorn

    from dk.serve.protocol import uvicorn_settings

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=access_log, lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False, date_header=False,
        timeout_keep_alive=30, **uvicorn_settings(app),
    )
    return uvicorn.Server(config)


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
        self.server = make_server(app, self.host, self.port, log_level=log_level)
        self.thread = threading.Thread(target=self._run, name="dk-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        import time

        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the dk serve thread did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=GRACEFUL_SHUTDOWN_S + 5)
        self.sock.close()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

