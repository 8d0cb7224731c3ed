"""1,000+ malformed requests: every one a 4xx with {"error": ...}, no crash, no path or traceback in
the text, liveness stays 200 and valid requests interleaved still succeed."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")
pytest.importorskip("PIL", reason="dk serve needs Pillow: pip install \"dk-core[serve]\"")

from tests.core.test_serve_support import LinearEngine, call, digit_png, infer_body, make_app  # noqa: E402

INFER = "/v2/models/digitsnet/infer"
MAX_BODY = 64 * 1024


def _tensor(**fields: Any) -> dict:
    base = {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def malformed_requests(seed: int = 0) -> Iterator[tuple[str, str, Any, dict]]:
    """(method, path, body or list of chunks, headers) of requests that must all be refused."""
    rng = random.Random(seed)
    png, _ = digit_png("PNG")
    jpeg, _ = digit_png("JPEG")
    valid = infer_body(np.zeros((1, 1, 8, 8), np.float32))
    # truncated images and JSON, at every 7th cut
    for cut in range(0, len(png) - 20, 2):  # without IEND and the last CRC a PNG still decodes
        yield "POST", "/inference", png[:cut], {}
    for cut in range(0, len(jpeg) - 2, 11):
        yield "POST", "/inference", jpeg[:cut], {"Content-Type": "image/jpeg"}
    for cut in range(0, len(valid) - 1, 13):
        yield "POST", INFER, valid[:cut], {}
    # non-image and wrong content types
    for _ in range(100):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        yield "POST", "/inference", junk, {"Content-Type": rng.choice(["text/plain", "image/png", "application/json"])}
        yield "POST", INFER, junk, {"Content-Type": rng.choice(["image/png", "multipart/form-data", "text/plain"])}
    yield "POST", "/inference", valid, {"Content-Type": "application/json"}
    yield "POST", INFER, png, {"Content-Type": "image/png"}
    yield "POST", "/inference", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, {}
    yield "POST", "/inference", b"\xff\xd8\xff" + b"\xff" * 200, {}
    # deep JSON
    for depth in (65, 1000, 100_000):
        yield "POST", INFER, b"[" * depth + b"]" * depth, {}
        yield "POST", INFER, b'{"a":' * depth + b"1" + b"}" * depth, {}
        yield "POST", INFER, json.dumps({"inputs": [_tensor(data=0)]}).encode().replace(
            b'"data": 0', b'"data": ' + b"[" * depth + b"0" + b"]" * depth), {}
    # not a request object
    for doc in ([], 1, "x", None, {}, {"inputs": None}, {"inputs": {}}, {"inputs": []}, {"inputs": [1]},
                {"inputs": ["input"]}, {"inputs": [{}]}, {"inputs": [{"name": 5}]}, {"inputs": [_tensor()] * 65}):
        yield "POST", INFER, json.dumps(doc).encode(), {}
    # wrong names, datatypes, shapes, data
    bad_tensors = [
        _tensor(name="other"), _tensor(name=""), _tensor(name="x" * 10_000),
        *(_tensor(datatype=d) for d in ("FP64", "FP16", "INT64", "INT32", "UINT8", "BOOL", "BYTES", "fp32", "", None, 3)),
        *(_tensor(shape=s) for s in ([1, 1, 8], [1, 1, 8, 8, 1], [1, 3, 8, 8], [1, 1, 7, 8], [-1, 1, 8, 8], [1.0, 1, 8, 8],
                                     [True, 1, 8, 8], "1x1x8x8", None, {}, [1] * 40, [2**40, 1, 8, 8],
                                     [10**30, 1, 8, 8], [2**31, 2**31, 8, 8], [0, 1, 8, 8, 9])),
        *(_tensor(data=d) for d in ([0.5] * 63, [0.5] * 65, [], ["a"] * 64, [{}] * 64, [[0.5] * 8] * 7, [None] * 64,
                                    [[1, 2], [3]], [0.5] * 64 + [[1]], "abc", {"x": 1})),
        _tensor(data=...), _tensor(shape=...), _tensor(datatype=...),
        _tensor(shape=[2, 1, 8, 8]),  # 64 values for 128
    ]
    for tensor in bad_tensors:
        yield "POST", INFER, json.dumps({"inputs": [tensor]}).encode(), {}
    yield "POST", INFER, json.dumps({"inputs": [_tensor(), _tensor()]}).encode(), {}  # duplicate input
    yield "POST", INFER, json.dumps({"inputs": [_tensor()], "outputs": [{"name": "nope"}]}).encode(), {}
    yield "POST", INFER, json.dumps({"inputs": [_tensor()], "outputs": "logits"}).encode(), {}
    yield "POST", INFER, json.dumps({"inputs": [_tensor()], "outputs": [{"nam": "logits"}]}).encode(), {}
    # binary extension with wrong sizes
    x = np.zeros((1, 1, 8, 8), np.float32)
    for size, extra, header_len in ((255, 0, None), (257, 0, None), (256, -1, None), (256, 5, None), (-256, 0, None),
                                    ("256", 0, None), (256, 0, "abc"), (256, 0, "999999"), (256, 0, "-5"), (0, 0, None),
                                    (256, 0, "\u00b2"), (256, 0, "9" * 5000)):
        head = json.dumps({"inputs": [_tensor(data=..., parameters={"binary_data_size": size})]}).encode()
        blob = x.tobytes()
        blob = blob[:extra] if extra < 0 else blob + b"\x00" * extra
        yield "POST", INFER, head + blob, {"Inference-Header-Content-Length": header_len or str(len(head))}
    # huge declared shapes with binary data
    for shape in ([2**20, 1, 8, 8], [2**62, 1, 8, 8], [4096, 1, 8, 8]):
        head = json.dumps({"inputs": [_tensor(data=..., shape=shape, parameters={
            "binary_data_size": int(np.prod(shape, dtype=object)) * 4})]}).encode()
        yield "POST", INFER, head, {"Inference-Header-Content-Length": str(len(head))}
    # too large: declared, undeclared, in many tiny chunks
    big = b"[" + b"0," * (MAX_BODY // 2) + b"0]"
    yield "POST", INFER, big, {}
    yield "POST", "/inference", big, {}
    yield "POST", INFER, [b"x" * 100] * (MAX_BODY // 100 + 2), {"__no_length__": "1"}
    yield "POST", INFER, b"{}", {"Content-Length": str(10**12)}
    yield "POST", INFER, b"{}", {"Content-Length": "12abc"}
    # many tiny chunks of bad bodies
    for _ in range(40):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(10, 400)))
        yield "POST", rng.choice([INFER, "/inference"]), [body[i:i + 1] for i in range(len(body))], {}
    for cut in range(5, len(png) - 20, 5):
        yield "POST", "/inference", [png[:cut][i:i + 3] for i in range(0, cut, 3)], {}
    # wrong endpoints, methods and model names
    for method, path in (("GET", INFER), ("PUT", INFER), ("DELETE", "/inference"), ("GET", "/inference"),
                         ("POST", "/v2/models/other/infer"), ("POST", "/v2/models//infer"), ("GET", "/v2/models/x"),
                         ("POST", "/v2/repository/models/x/upload"), ("GET", "/../../etc/passwd"), ("POST", "/v3")):
        yield method, path, valid, {}
    # random mutations of a valid request
    for _ in range(800):
        body = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            body[rng.randrange(len(body))] = rng.choice(b'[]{}",:-e.0123456789xnull ')
        try:
            doc = json.loads(body)
            tensor = doc["inputs"][0]
            if (tensor.get("name") == "input" and tensor.get("datatype") == "FP32"
                    and tensor.get("shape") == [1, 1, 8, 8] and len(tensor.get("data", [])) == 64):
                continue  # the mutation kept it valid
        except Exception:
            pass
        yield "POST", INFER, bytes(body), {}


def test_a_thousand_malformed_requests_are_refused_cleanly():
    engine = LinearEngine()
    app = make_app(engine, max_body=MAX_BODY)
    requests = list(malformed_requests())
    assert len(requests) >= 1000
    x = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    expected = engine.infer({"input": x})["logits"].ravel()

    async def go() -> tuple[list, list]:
        refused, valid = [], []
        for i, (method, path, body, headers) in enumerate(requests):
            no_length = headers.pop("__no_length__", None) is not None
            refused.append((i, await call(app, method, path, body, headers, content_length=not no_length)))
            if i % 50 == 0:
                live = await call(app, "GET", "/v2/health/live")
                ok = await call(app, "POST", INFER, infer_body(x))
                valid.append((live, ok))
        return refused, valid

    refused, valid = asyncio.run(go())
    codes: dict[int, int] = {}
    for i, (status, headers, body) in refused:
        assert 400 <= status < 500, (i, requests[i][:2], status, body[:200])
        doc = json.loads(body)
        assert set(doc) == {"error"} and isinstance(doc["error"], str) and doc["error"], (i, body[:200])
        assert "Traceback" not in doc["error"] and "/tmp" not in doc["error"] and "/work" not in doc["error"]
        codes[status] = codes.get(status, 0) + 1
    assert codes.get(413, 0) >= 4 and codes.get(404, 0) >= 4 and codes.get(405, 0) >= 2 and codes[400] > 900
    for live, ok in valid:
        assert live[0] == 200
        assert ok[0] == 200
        np.testing.assert_array_equal(np.asarray(json.loads(ok[2])["outputs"][0]["data"], np.float32), expected)


def test_deep_json_is_refused_before_parsing():
    from dk.serve.limits import json_depth

    assert json_depth(b"[" * 100_000 + b"]" * 100_000) == 100_000
    assert json_depth(b'{"a": "[[[[[[", "b": [[1], [2]]}') == 3
    assert json_depth(b'"\\"[[["') == 0
