"""The worker client's failure modes: down, dropped connections (retried), garbage, timeouts."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from dk_lpdnn.client import WorkerClient
from dk_lpdnn.errors import WorkerError

FEEDS = {"input": np.zeros((1, 1, 8, 8), np.float32)}


class FakeWorker:
    """A loopback TCP server whose every connection gets ``behaviour(conn)``; counts connections."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.behaviour = behaviour
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self.behaviour, args=(conn, self.stop), daemon=True).start()

    def close(self):
        self.stop.set()
        self.sock.close()


def _read_request(conn):
    conn.settimeout(2)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    return data


def _hang_up(conn, stop):
    _read_request(conn)
    conn.close()


def _garbage(conn, stop):
    _read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    conn.close()


def _not_http(conn, stop):
    _read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH\r\n")
    conn.close()


def _silent(conn, stop):
    _read_request(conn)
    stop.wait(5)
    conn.close()


@pytest.fixture
def fake():
    workers = []

    def start(behaviour):
        workers.append(FakeWorker(behaviour))
        return workers[-1]

    yield start
    for worker in workers:
        worker.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_worker_down_is_retried_with_backoff_then_named():
    client = WorkerClient(f"http://127.0.0.1:{_free_port()}", retries=3, backoff=0.05)
    start = time.perf_counter()
    with pytest.raises(WorkerError, match=r"cannot reach the worker at http://127\.0\.0\.1:\d+ after 4 attempts "
                                          r"\(ConnectionRefusedError\); is 'dk serve' running there\?"):
        client.infer("m", FEEDS, ["logits"])
    assert time.perf_counter() - start >= 0.05 + 0.1 + 0.2  # backoff 0.05, 0.1, 0.2 s


def test_dropped_connections_are_retried(fake):
    worker = fake(_hang_up)
    with pytest.raises(WorkerError, match="after 3 attempts"):
        WorkerClient(worker.url, retries=2, backoff=0.01).infer("m", FEEDS, ["logits"])
    assert worker.connections == 3


@pytest.mark.parametrize("behaviour, message", [
    (_garbage, r"answered garbage \(not JSON\): b'hello'"),
    (_not_http, "failed: BadStatusLine"),
])
def test_garbage_answers_are_clear_errors_and_not_retried(fake, behaviour, message):
    worker = fake(behaviour)
    with pytest.raises(WorkerError, match=message):
        WorkerClient(worker.url, retries=3, backoff=0.01).infer("m", FEEDS, ["logits"])
    assert worker.connections == 1


def test_a_silent_worker_times_out_without_retry(fake):
    worker = fake(_silent)
    with pytest.raises(WorkerError, match=r"did not answer within 0\.3 s; raise -o timeout=SECONDS"):
        WorkerClient(worker.url, timeout=0.3, retries=3).infer("m", FEEDS, ["logits"])
    assert worker.connections == 1  # no retry after a timeout


def test_a_worker_that_is_not_oip_is_named(worker_url):
    client = WorkerClient(worker_url)
    with pytest.raises(Exception, match="unknown model 'nope'; this server serves 'digitsnet'"):
        client.metadata("nope")
    client.close()
