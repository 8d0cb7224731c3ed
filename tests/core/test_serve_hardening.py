"""Hostile HTTP input (issue 13, part 2): worst-case bodies stay linear and liveness answers,
non-finite numbers never make invalid JSON, malformed framing and slow or excess connections get
JSON errors, compressed bodies are limited by their decompressed size, classification, /config and
the repository index."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import socket
import threading
import zlib

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="dk serve needs uvicorn: pip install \"dk-core[serve]\"")
pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")

from dk.serve.server import ServerThread  # noqa: E402
from tests.core.test_serve_support import DIGITS_META, LinearEngine, call, infer_body, make_app  # noqa: E402

INFER = "/v2/models/digitsnet/infer"
HANG_GUARD_S = 60  # only stops a hung test; every answer here comes long before it


def run(coro):
    return asyncio.run(coro)


def _read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One HTTP response from a raw socket (read until the server closes or the body is complete)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", -1))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _raw(port: int, payload: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(payload)
        return _read_response(sock)


def worst_case_body(size: int, opens: int) -> bytes:
    """``opens`` brackets, then an unclosed string of escaped quotes up to ``size`` bytes: quadratic
    for a backtracking string regex (issue 13)."""
    head = b'{"inputs": ' + b"[" * opens + b'"'
    return head + b'\\"' * ((size - len(head)) // 2)


# -- 1. linear body checks; liveness answers meanwhile ---------------------------------------------

def test_json_depth_is_exact_across_blocks_and_escapes():
    from dk.serve.limits import json_depth

    docs = {b'["\\\\", [[1]]]': 3, b'["\\\\\\"[[", [1]]': 2, b'[[["a\\"b"]]]': 3, b'{"a": "[[[", "b": [[1], [2]]}': 3,
            b'"\\"[[["': 0, b"[" * 1000 + b"]" * 1000: 1000}
    for doc, depth in docs.items():
        for block in (1, 2, 3, 5, 1 << 22):
            assert json_depth(doc, block=block) == depth, (doc, block)
    assert json_depth(worst_case_body(200_000, 30), block=4096) == 31


@pytest.mark.parametrize("opens", [30, 20_000], ids=["shallow-then-unclosed-string", "deep"])
def test_worst_case_body_is_refused_while_liveness_keeps_answering(opens):
    body = worst_case_body(1 << 20, opens)  # 1 MiB: hours for the old quadratic check
    with ServerThread(make_app(max_body=2 << 20)) as server:
        answers: dict[str, tuple] = {}
        sent = threading.Event()

        def attack() -> None:
            request = (f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
                sock.sendall(request)
                sent.set()
                answers["infer"] = _read_response(sock)

        thread = threading.Thread(target=attack)
        thread.start()
        try:
            assert sent.wait(HANG_GUARD_S)
            live = _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            thread.join(HANG_GUARD_S)
    assert (live[0], json.loads(live[2])) == (200, {"live": True})
    status, _, answer = answers["infer"]
    expected = "JSON nested deeper than 64 levels" if opens > 64 else "body is not valid JSON"
    assert status == 400 and json.loads(answer)["error"].startswith(expected)


# -- 2. non-finite numbers ---------------------------------------------------------------------------

@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_json_input_is_refused(literal):
    body = infer_body(np.zeros((1, 1, 8, 8), np.float32)).replace(b"0.0,", f"{literal},".encode(), 1)
    status, _, answer = run(call(make_app(), "POST", INFER, body))
    error = json.loads(answer)["error"]
    assert status == 400
    if "e999" in literal:
        assert error.startswith("input 'input': data holds a number out of FP32's range (such as 1e999)")
    else:
        assert error.startswith(f"JSON holds {literal}, which is not a JSON number")


class NanEngine(LinearEngine):
    def infer(self, inputs):
        out = super().infer(inputs)["logits"]
        out[:, 0], out[:, 1] = np.nan, np.inf
        return {"logits": out}


def test_non_finite_outputs_go_out_as_binary_or_as_an_error_that_says_so():
    app = make_app(NanEngine())
    x = np.zeros((1, 1, 8, 8), np.float32)
    status, headers, answer = run(call(app, "POST", INFER, infer_body(x)))
    assert status == 500 and headers["content-type"] == "application/json"
    assert json.loads(answer) == {"error": "output 'logits' holds NaN or Infinity, which JSON cannot carry; ask for "
                                           "it as binary (parameters.binary_data_output, or the output's binary_data)"}
    doc = json.loads(infer_body(x))
    doc["parameters"] = {"binary_data_output": True}
    status, headers, answer = run(call(app, "POST", INFER, json.dumps(doc).encode()))
    split = int(headers["inference-header-content-length"])
    values = np.frombuffer(answer[split:], "<f4")
    assert status == 200 and np.isnan(values[0]) and np.isposinf(values[1]) and np.isfinite(values[2:]).all()


def test_json_responses_never_hold_bare_nan():
    from dk.serve.limits import HttpError
    from dk.serve.responses import dumps

    with pytest.raises(HttpError, match="the response holds NaN or Infinity, which JSON cannot carry"):
        dumps({"score": float("nan")})


# -- 3. malformed framing -----------------------------------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}",
    b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
    b"PO\x01ST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2 HTTP/1.1\r\nHo st\r\n\r\n",
], ids=["bad-chunk-size", "bad-content-length", "two-content-lengths", "control-char-in-method", "bad-header"])
def test_malformed_framing_gets_a_json_error(request_bytes):
    with ServerThread(make_app()) as server:
        status, headers, body = _raw(server.port, request_bytes)
        assert status == 400 and headers["content-type"] == "application/json" and headers["connection"] == "close"
        assert json.loads(body) == {"error": "malformed HTTP request (framing, request line or headers); "
                                             "send valid HTTP/1.1"}
        assert _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


# -- 4. read timeouts and the connection cap ---------------------------------------------------------

def test_stalled_headers_and_bodies_get_408_and_are_closed():
    with ServerThread(make_app(header_timeout_s=0.3, body_timeout_s=0.3)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Le")  # and stall
            status, _, body = _read_response(sock)
            assert (status, json.loads(body)) == (408, {"error": "the request headers did not arrive within 0.3 s"})
            assert sock.recv(10) == b""  # closed
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inp")
            status, headers, body = _read_response(sock)
            assert status == 408 and headers["connection"] == "close"
            assert json.loads(body) == {"error": "the request body did not arrive within 0.3 s; send it at once"}
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            assert _read_response(sock)[0] == 408  # connected and sent nothing at all
        assert _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_connections_beyond_the_cap_get_503():
    with ServerThread(make_app(max_connections=2)) as server:
        held = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=HANG_GUARD_S) for _ in range(2)]
        try:
            for conn in held:  # both are accepted and kept alive
                conn.request("GET", "/v2/health/live")
                assert conn.getresponse().read() == b'{"live":true}'
            status, headers, body = _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 503 and headers["connection"] == "close"
            assert json.loads(body) == {"error": "the server has 2 connections open, its limit; try again later"}
        finally:
            for conn in held:
                conn.close()


# -- 5. compressed bodies ------------------------------------------------------------------------------

def test_gzip_and_deflate_bodies_are_decompressed():
    engine = LinearEngine()
    app = make_app(engine)
    x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    expected = engine.infer({"input": x})["logits"].ravel()
    for encoding, pack in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        status, _, answer = run(call(app, "POST", INFER, pack(infer_body(x)), {"Content-Encoding": encoding}))
        assert status == 200, answer
        np.testing.assert_array_equal(np.asarray(json.loads(answer)["outputs"][0]["data"], np.float32), expected)
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 256}}]}).encode()
    status, _, answer = run(call(app, "POST", INFER, gzip.compress(header + x.tobytes()),
                                 {"Content-Encoding": "gzip", "Inference-Header-Content-Length": str(len(header))}))
    assert status == 200
    np.testing.assert_array_equal(np.asarray(json.loads(answer)["outputs"][0]["data"], np.float32), expected)


def test_compressed_bodies_are_limited_by_their_decompressed_size():
    app = make_app(max_body=64 * 1024)
    bomb = gzip.compress(b"[" + b" " * (64 << 20) + b"]")  # 64 MiB of JSON in about 64 KiB... of gzip
    assert len(bomb) < 64 * 1024
    status, headers, answer = run(call(app, "POST", INFER, [bomb[i:i + 4096] for i in range(0, len(bomb), 4096)],
                                       {"Content-Encoding": "gzip"}))
    assert status == 413
    assert json.loads(answer) == {"error": "decompressed request body exceeds the limit of 65536 bytes"}
    assert headers["connection"] == "close"
    body = gzip.compress(infer_body(np.zeros((1, 1, 8, 8), np.float32)))
    for encoding, data, status, error in (
            ("br", body, 415, "Content-Encoding 'br' is not supported; send gzip, deflate or identity"),
            ("gzip", body[:-12], 400, "the gzip body ends before its compressed stream does"),
            ("deflate", body, 400, "body is not valid compressed data for its Content-Encoding: Error -3 while "
                                   "decompressing data: incorrect header check")):
        got = run(call(app, "POST", INFER, data, {"Content-Encoding": encoding}))
        assert (got[0], json.loads(got[2])) == (status, {"error": error})


# -- 6. classification extension ----------------------------------------------------------------------

def test_classification_extension_gives_the_top_k_as_score_index_label():
    engine = LinearEngine()
    app = make_app(engine)
    x = np.random.default_rng(2).random((2, 1, 8, 8), dtype=np.float32)
    logits = engine.infer({"input": x})["logits"]
    doc = json.loads(infer_body(x))
    doc["outputs"] = [{"name": "logits", "parameters": {"classification": 3}}]
    status, _, answer = run(call(app, "POST", INFER, json.dumps(doc).encode()))
    out = json.loads(answer)["outputs"][0]
    assert status == 200 and out["datatype"] == "BYTES" and out["shape"] == [2, 3]
    for row, texts in zip(logits, np.array(out["data"]).reshape(2, 3)):
        best = np.argsort(-row)[:3]
        labels = DIGITS_META["labels"]
        assert list(texts) == [f"{row[i]:f}:{i}:{labels[i]}" for i in best]
    doc["outputs"][0]["parameters"]["binary_data"] = True
    status, headers, answer = run(call(app, "POST", INFER, json.dumps(doc).encode()))
    blob = answer[int(headers["inference-header-content-length"]):]
    first = blob[4: 4 + int.from_bytes(blob[:4], "little")].decode()
    assert status == 200 and first == np.array(out["data"]).ravel()[0]
    for params, error in (({"classification": 0}, "output 'logits': classification must be a positive integer "
                                                   "(the top k classes), not 0"),
                          ({"classification": "3"}, "output 'logits': classification must be a positive integer "
                                                    "(the top k classes), not 3")):
        doc["outputs"] = [{"name": "logits", "parameters": params}]
        got = run(call(app, "POST", INFER, json.dumps(doc).encode()))
        assert (got[0], json.loads(got[2])) == (400, {"error": error})
    doc.pop("outputs")
    doc["parameters"] = {"classification": 2}
    got = run(call(app, "POST", INFER, json.dumps(doc).encode()))
    assert got[0] == 400 and "a parameter of an output" in json.loads(got[2])["error"]


# -- 7. model configuration and repository index ------------------------------------------------------

def test_model_config_and_repository_index_are_served():
    app = make_app(LinearEngine(), max_batch=8)

    async def go():
        return (await call(app, "GET", "/v2/models/digitsnet/config"),
                await call(app, "GET", "/v2/models/digitsnet/versions/1/config"),
                await call(app, "POST", "/v2/repository/index", b"{}"),
                await call(app, "GET", "/v2/models/other/config"),
                await call(app, "GET", "/v2"))

    config, versioned, index, other, server = run(go())
    doc = json.loads(config[2])
    assert config[0] == 200 and versioned[2] == config[2]
    assert doc["name"] == "digitsnet" and doc["max_batch_size"] == 8 and doc["platform"] == "dk-test"
    assert doc["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [1, 8, 8]}]
    assert doc["output"] == [{"name": "logits", "data_type": "TYPE_FP32", "dims": [10]}]
    assert (index[0], json.loads(index[2])) == (200, [{"name": "digitsnet", "version": "1", "state": "READY"}])
    assert other[0] == 404
    assert {"classification", "model_configuration", "model_repository"} <= set(json.loads(server[2])["extensions"])


# -- 1b. large JSON tensors are parsed in pieces (the GIL is free between them) ---------------------

def _big_json(x: np.ndarray, nested: bool, **extra) -> bytes:
    return json.dumps({"id": 'say "data": [1, 2]', **extra, "inputs": [{
        "name": "input", "shape": list(x.shape), "datatype": "FP32", "parameters": {"data": [9, 9]},
        "data": x.tolist() if nested else x.ravel().tolist()}]}).encode()


def test_large_json_tensors_are_parsed_in_pieces_with_the_same_result(monkeypatch):
    import dk.serve.jsonpieces as pieces
    from dk.serve.limits import HttpError
    from dk.serve.tensors import PIECEWISE_BYTES, decode_request

    x = np.random.default_rng(3).standard_normal((1000, 1, 8, 8)).astype(np.float32)
    sizes: list[int] = []
    loads = json.loads
    monkeypatch.setattr(json, "loads", lambda text, **kw: sizes.append(len(text)) or loads(text, **kw))
    specs = LinearEngine().inputs
    for nested in (True, False):
        body = _big_json(x, nested)
        assert len(body) > PIECEWISE_BYTES
        sizes.clear()
        decoded = decode_request(body, None, specs, max_depth=64, max_bytes=1 << 30)
        np.testing.assert_array_equal(decoded.inputs["input"], x)
        assert decoded.id == 'say "data": [1, 2]'
        assert len(sizes) > 4 and max(sizes) <= pieces.PIECE + 2  # never the whole body at once
    flat = _big_json(x, False)
    cut = flat.index(b",", len(flat) // 2)
    for token, error in ((b"NaN", "JSON holds NaN, which is not a JSON number"),
                         (b"1e999", "input 'input': data holds a number out of FP32's range (such as 1e999)"),
                         (b".5", "input 'input': data is not a (nested) list of FP32 numbers"),
                         (b"[1]", "input 'input': data holds 64001 values, shape [1000, 1, 8, 8] needs 64000")):
        with pytest.raises(HttpError) as info:
            decode_request(flat[:cut + 1] + token + b"," + flat[cut + 1:], None, specs, max_depth=64,
                           max_bytes=1 << 30)
        assert info.value.message.startswith(error)


def test_pieces_split_at_commas_whatever_the_piece_size(monkeypatch):
    import dk.serve.jsonpieces as pieces

    monkeypatch.setattr(pieces, "PIECE", 7)
    header, arrays = pieces.cut_data_arrays(b'{"a": "x\\"data\\": [", "data": [[1.5, -2], [3e2, 4]], "data" : [[ ]]}')
    assert json.loads(header) == {"a": 'x"data": [', "data": {pieces.MARKER: 1}}  # the last key wins in JSON
    values = pieces.parse_numbers(arrays[0], "input", "FP32", lambda c: None)
    assert values.tolist() == [1.5, -2.0, 300.0, 4.0]
    assert pieces.parse_numbers(arrays[1], "input", "FP32", lambda c: None).size == 0


def test_oversized_headers_get_431():
    with ServerThread(make_app()) as server:
        status, headers, body = _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: "
                                     + b"a" * (100 << 10) + b"\r\n\r\n")
        assert status == 431 and headers["connection"] == "close"
        assert json.loads(body) == {"error": "request line and headers exceed 65536 bytes"}
        status, _, _ = _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 30_000
                            + b"\r\n\r\n")
        assert status == 200


def test_a_header_line_that_never_ends_gets_431_without_waiting_for_the_timeout():
    """httptools hands a header on only when its line ends: the unparsed bytes are limited too."""
    with ServerThread(make_app(header_timeout_s=HANG_GUARD_S)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Long: ")
            try:
                for _ in range(64):  # 4 MiB at most; the server answers after about 64 KiB
                    sock.sendall(b"a" * (64 << 10))
            except (BrokenPipeError, ConnectionResetError):
                pass  # it answered and closed while we were still sending
            status, headers, body = _read_response(sock)
        assert (status, headers["connection"]) == (431, "close")
        assert json.loads(body) == {"error": "request line and headers exceed 65536 bytes"}
        assert _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_cli_options_reach_the_protocol(monkeypatch):
    pytest.importorskip("onnxruntime")
    from click.testing import CliRunner

    import dk.serve.server as server_module
    from dk.cli.serve import serve
    from dk.serve.protocol import uvicorn_settings

    seen = {}

    class NoServer:
        def run(self, sockets):
            pass

    def fake_make_server(app, host, port, **kw):
        seen["app"] = app
        return NoServer()

    monkeypatch.setattr(server_module, "make_server", fake_make_server)
    result = CliRunner().invoke(serve, ["--plugin", "ort", "--port", "0", "--header-timeout", "0.5",
                                        "--body-timeout", "2", "--max-connections", "7"])
    assert result.exit_code == 0, result.output
    config = seen["app"].state.worker.config
    assert (config.header_timeout_s, config.body_timeout_s, config.max_connections) == (0.5, 2.0, 7)
    protocol = uvicorn_settings(seen["app"])["http"]
    assert (protocol.header_timeout, protocol.max_connections) == (0.5, 7)


def test_errors_before_the_route_is_known_are_in_the_metrics():
    """Malformed framing, oversized or late headers and refused connections are counted too, under
    endpoint "(connection)"."""
    from dk.serve.protocol import CONNECTION_LABEL

    with ServerThread(make_app(header_timeout_s=0.3, max_connections=1)) as server:
        assert _raw(server.port, b"GET /v2/health/live HTTP/1.1\r\nContent-Length: x\r\n\r\n")[0] == 400
        assert _raw(server.port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * (70 << 10) + b"\r\n\r\n")[0] == 431
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as held:
            assert _read_response(held)[0] == 408  # connected and sent nothing
        with socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as first, \
                socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as second:
            assert _read_response(second)[0] == 503
            first.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            text = _read_response(first)[2].decode()
    counts = {code: int(line.split()[-1]) for code in (400, 431, 408, 503) for line in text.splitlines()
              if line.startswith(f'dk_requests_total{{endpoint="{CONNECTION_LABEL}",code="{code}"}}')}
    assert counts == {400: 1, 431: 1, 408: 1, 503: 1}


def test_a_405_names_the_allowed_methods_and_a_trailing_slash_is_a_json_404():
    app = make_app()
    status, headers, body = run(call(app, "DELETE", "/v2/health/live"))
    assert status == 405 and set(headers["allow"].split(", ")) == {"GET", "HEAD"} and "error" in json.loads(body)
    status, headers, body = run(call(app, "GET", "/v2/models/digitsnet/", headers={"Host": "evil.example"}))
    assert status == 404 and "location" not in headers and "error" in json.loads(body)


def test_error_messages_lose_file_paths_but_keep_the_servers_own_urls():
    from dk.serve.limits import scrub

    assert scrub("cannot open /home/u/m.onnx, C:\\a\\b.onnx or (/tmp/x/y)") == "cannot open <path>, <path> or (<path>)"
    assert scrub("upload it first: POST /v2/repository/models/x/upload") == \
        "upload it first: POST /v2/repository/models/x/upload"
