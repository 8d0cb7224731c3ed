"""The protocol's fast path for binary infer requests (dk.serve.fast_infer): the same answers,
errors, metrics and timeouts as the ASGI way, requests pipelined behind it answered in order."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="dk serve needs uvicorn: pip install \"dk-core[serve]\"")
pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")

from dk.serve import fast_infer  # noqa: E402
from dk.serve.server import ServerThread  # noqa: E402
from tests.core.test_serve_hardening import HANG_GUARD_S, _read_response  # noqa: E402
from tests.core.test_serve_support import LinearEngine, call, make_app  # noqa: E402

INFER = "/v2/models/digitsnet/infer"


def binary_request(x: np.ndarray, path: str = INFER, *, chunked: bool = False, version: str = "1.1",
                   name: str = "input") -> bytes:
    header = json.dumps({"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    body = header + x.tobytes()
    head = (f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Inference-Header-Content-Length: {len(header)}\r\n").encode()
    if chunked:
        half = len(body) // 2
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])) + b"0\r\n\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict, bytes]]:
    """``count`` responses in a row from one connection (buffered: one recv may hold several)."""
    stream = sock.makefile("rb")
    answers = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline().decode("latin-1").strip()):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        answers.append((status, headers, stream.read(int(headers["content-length"]))))
    return answers


def logits_of(headers: dict, body: bytes) -> np.ndarray:
    split = int(headers["inference-header-content-length"])
    doc = json.loads(body[:split])
    assert doc["model_name"] == "digitsnet" and doc["outputs"][0]["name"] == "logits"
    return np.frombuffer(body[split:], np.float32).reshape(doc["outputs"][0]["shape"])


@pytest.fixture
def accepted(monkeypatch):
    """Every FastInfer.accept answer: a request or None."""
    seen: list = []
    real = fast_infer.FastInfer.accept.__func__

    def spy(cls, *args, **kwargs):
        seen.append(real(cls, *args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(fast_infer.FastInfer, "accept", classmethod(spy))
    return seen


def test_binary_requests_take_the_fast_path_with_the_answer_of_the_asgi_way(accepted):
    engine = LinearEngine()
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    with ServerThread(make_app(engine)) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(binary_request(x))
        fast = _read_response(sock)
        sock.sendall(binary_request(x, chunked=True))  # no Content-Length: the ASGI way
        slow = _read_response(sock)
        sock.sendall(binary_request(x, "/v2/models/digitsnet/versions/1/infer"))
        versioned = _read_response(sock)
    assert [a is not None for a in accepted] == [True, False, True]
    expected = x.reshape(2, 64) @ engine.weights
    for status, headers, body in (fast, slow, versioned):
        assert status == 200 and headers["content-type"] == "application/octet-stream"
        np.testing.assert_array_equal(logits_of(headers, body), expected)
    assert engine.calls == [2, 2, 2]


def test_requests_pipelined_behind_a_fast_one_are_answered_in_order():
    engine = LinearEngine()
    xs = [np.full((1, 1, 8, 8), v, np.float32) for v in (1.0, 2.0)]
    with ServerThread(make_app(engine)) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(binary_request(xs[0]) + binary_request(xs[1]) + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = read_responses(sock, 3)
    for (status, headers, body), x in zip(answers, xs):
        assert status == 200
        np.testing.assert_array_equal(logits_of(headers, body), x.reshape(1, 64) @ engine.weights)
    assert answers[2][0] == 200 and json.loads(answers[2][2]) == {"live": True}


@pytest.mark.parametrize("path, name, shape", [
    ("/v2/models/other/infer", "input", (1, 1, 8, 8)),  # unknown model: 404
    (INFER, "input", (1, 1, 4, 4)),  # wrong shape: 400
    (INFER, "nope", (1, 1, 8, 8)),  # unknown input: 400
    ("/v2/models/digitsnet/versions/7/infer", "input", (1, 1, 8, 8)),  # unknown version: 404
])
def test_fast_path_errors_are_the_asgi_ones_and_keep_the_connection(accepted, path, name, shape):
    import asyncio

    x = np.zeros(shape, np.float32)
    request = binary_request(x, path, name=name)
    head, _, body = request.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    app = make_app()
    status, _, answer = asyncio.run(call(app, "POST", path, body, headers=headers))  # straight into ASGI
    with ServerThread(make_app()) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(request)
        got = _read_response(sock)
        sock.sendall(binary_request(np.zeros((1, 1, 8, 8), np.float32)))  # the connection goes on
        after = _read_response(sock)
    assert accepted[0] is not None
    assert status in (400, 404) and (got[0], json.loads(got[2])) == (status, json.loads(answer))
    assert "connection" not in got[1] and after[0] == 200


@pytest.mark.parametrize("second", ["same", "other"])
def test_an_inference_header_length_given_twice_is_refused(accepted, second):
    """Whichever value a path would read (the first, the last), two of them are a 400."""
    x = np.zeros((1, 1, 8, 8), np.float32)
    head, _, body = binary_request(x).partition(b"\r\n\r\n")
    length = int(head.split(b"Inference-Header-Content-Length: ")[1].split(b"\r\n")[0])
    twice = head + b"\r\nInference-Header-Content-Length: %d\r\n\r\n" % (length if second == "same" else length - 1)
    with ServerThread(make_app()) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(twice + body)
        status, _, answer = _read_response(sock)
    assert accepted == [None]  # not the fast path: the ASGI way names the problem
    assert (status, json.loads(answer)) == (400, {"error": "Inference-Header-Content-Length is given 2 times; send it once"})


def _metric(port: int, endpoint: str, code: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        text = _read_response(sock)[2].decode()
    key = f'dk_requests_total{{endpoint="{endpoint}",code="{code}"}} '
    return next((int(line[len(key):]) for line in text.splitlines() if line.startswith(key)), 0)


def test_fast_requests_are_counted_and_a_stalled_body_gets_408_then_close():
    x = np.zeros((1, 1, 8, 8), np.float32)
    request = binary_request(x)
    with ServerThread(make_app(body_timeout_s=0.3)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(request)
            assert _read_response(sock)[0] == 200
            sock.sendall(request[:-10])  # and stall
            status, headers, body = _read_response(sock)
            assert (status, headers["connection"]) == (408, "close")
            assert json.loads(body) == {"error": "the request body did not arrive within 0.3 s; send it at once"}
            assert sock.recv(10) == b""  # closed
        assert _metric(server.port, "/v2/models/{name}/infer", 200) == 1
        assert _metric(server.port, "/v2/models/{name}/infer", 408) == 1


def test_a_client_gone_mid_body_is_counted_and_the_server_goes_on():
    x = np.zeros((1, 1, 8, 8), np.float32)
    request = binary_request(x)
    with ServerThread(make_app()) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(request[:-10])
        deadline = time.monotonic() + HANG_GUARD_S  # the server sees the close when its loop gets to it
        while _metric(server.port, "/v2/models/{name}/infer", 400) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _metric(server.port, "/v2/models/{name}/infer", 400) == 1
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(request)
            assert _read_response(sock)[0] == 200


def test_an_http_1_0_request_gets_its_answer_then_close(accepted):
    x = np.ones((1, 1, 8, 8), np.float32)
    with ServerThread(make_app()) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(binary_request(x, version="1.0"))
        status, headers, _ = _read_response(sock)
        assert (status, headers["connection"]) == (200, "close")
        assert sock.recv(10) == b""
    assert accepted[0] is not None and accepted[0].keep_alive is False


def _in_flight(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        text = _read_response(sock)[2].decode()
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("dk_requests_in_flight "))


def _wait_for_in_flight(port: int, value: int) -> int:
    deadline = time.monotonic() + HANG_GUARD_S  # the server counts it when its loop gets to the bytes
    while (seen := _in_flight(port)) != value and time.monotonic() < deadline:
        time.sleep(0.01)
    return seen


def test_a_fast_request_is_in_flight_from_its_headers_until_answered_or_given_up():
    request = binary_request(np.zeros((1, 1, 8, 8), np.float32))
    with ServerThread(make_app()) as server:
        idle = _in_flight(server.port)  # the /metrics request counts itself
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(request[:-10])  # headers and most of the body: on the fast path, in flight
            assert _wait_for_in_flight(server.port, idle + 1) == idle + 1
            sock.sendall(request[-10:])
            assert _read_response(sock)[0] == 200
            assert _in_flight(server.port) == idle  # answered: out before its response was written
            sock.sendall(request[:-10])
            assert _wait_for_in_flight(server.port, idle + 1) == idle + 1
        assert _wait_for_in_flight(server.port, idle) == idle  # the client left mid-body


class GatedEngine(LinearEngine):
    """Its calls wait for ``release``; ``entered`` is set when one has begun."""

    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def infer(self, inputs):
        self.entered.set()
        self.release.wait(HANG_GUARD_S)
        return super().infer(inputs)


def test_requests_still_running_when_the_grace_period_ends_get_a_json_503():
    """uvicorn cancels what still runs after its graceful-shutdown timeout: a fast-path request in
    its engine call and an ASGI one waiting for its body each get a JSON 503, then close."""
    from dk.serve.responses import CUT_OFF

    engine = GatedEngine()
    server = ServerThread(make_app(engine))
    server.server.config.timeout_graceful_shutdown = 0.2
    with server, socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as fast, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as waiting:
        idle = _in_flight(server.port)
        fast.sendall(binary_request(np.zeros((1, 1, 8, 8), np.float32)))
        assert engine.entered.wait(HANG_GUARD_S)
        waiting.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
        assert _wait_for_in_flight(server.port, idle + 2) == idle + 2
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        try:
            answers = [_read_response(sock) for sock in (fast, waiting)]
        finally:
            engine.release.set()
            stopper.join()
    for status, headers, body in answers:
        assert (status, headers["connection"], json.loads(body)) == (503, "close", {"error": CUT_OFF[1]})
