"""dk serve on a real uvicorn server on loopback: body limits while streaming, graceful shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="dk serve needs uvicorn: pip install \"dk-core[serve]\"")
pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")

from dk.serve.server import ServerThread  # noqa: E402
from tests.core.test_serve_support import LinearEngine, infer_body, make_app  # noqa: E402

INFER = "/v2/models/digitsnet/infer"


def _raw(port: int, payload: bytes, read_timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(payload)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and data.endswith(b"}"):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return data


def test_declared_oversize_body_is_refused_before_it_is_sent():
    with ServerThread(make_app(max_body=1024)) as server:  # no byte of the body is ever sent
        answer = _raw(server.port, f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**12}\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == {"error": "request body of 1000000000000 bytes exceeds the limit of 1024 bytes"}


def test_chunked_body_without_length_is_cut_off_at_the_limit():
    with ServerThread(make_app(max_body=4096)) as server:
        chunk = b"100\r\n" + b"x" * 256 + b"\r\n"
        request = f"POST {INFER} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunk * 40
        answer = _raw(server.port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413")
        assert json.loads(body) == {"error": "request body exceeds the limit of 4096 bytes"}
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/v2/health/live")
        assert conn.getresponse().status == 200


class GatedEngine(LinearEngine):
    """A LinearEngine whose calls wait until the test opens the gate; ``entered`` is set once one waits."""

    def __init__(self):
        super().__init__()
        self.entered, self.gate = threading.Event(), threading.Event()

    def infer(self, inputs):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().infer(inputs)


def test_graceful_shutdown_finishes_in_flight_requests_then_closes_the_engine():
    engine = GatedEngine()
    server = ServerThread(make_app(engine)).__enter__()
    x = np.ones((1, 1, 8, 8), np.float32)
    answers = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", INFER, infer_body(x), {"Content-Type": "application/json"})
        response = conn.getresponse()
        answers.append((response.status, json.loads(response.read())))

    thread = threading.Thread(target=client)
    thread.start()
    assert engine.entered.wait(30)  # the request is inside the engine now
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(0.3)
    assert stopper.is_alive() and not engine.closed  # stopping waits for the request in the engine
    engine.gate.set()
    stopper.join(30)
    thread.join(10)
    assert answers and answers[0][0] == 200
    np.testing.assert_allclose(answers[0][1]["outputs"][0]["data"], (x.reshape(1, 64) @ engine.weights).ravel(),
                               rtol=1e-6)
    assert engine.closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_engine_calls_do_not_block_the_event_loop():
    engine = GatedEngine()
    with ServerThread(make_app(engine)) as server:
        slow = threading.Thread(target=lambda: _post(server.port, infer_body(np.ones((1, 1, 8, 8), np.float32))))
        slow.start()
        assert engine.entered.wait(30)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/v2/health/live")
        assert conn.getresponse().status == 200  # answered while the engine call still waits at the gate
        assert not engine.gate.is_set()
        engine.gate.set()
        slow.join(30)


def _post(port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", INFER, body)
    return conn.getresponse().status
