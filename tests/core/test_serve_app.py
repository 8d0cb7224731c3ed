"""dk serve's ASGI app in-process: OIP v2, POST /inference, metrics, batching, upload, errors."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")
pytest.importorskip("PIL", reason="dk serve needs Pillow: pip install \"dk-core[serve]\"")

from tests.core.test_serve_support import LinearEngine, call, digit_png, infer_body, make_app  # noqa: E402

INFER = "/v2/models/digitsnet/infer"


def run(coro):
    return asyncio.run(coro)


def test_health_metadata_and_unknown_model():
    app = make_app()

    async def go():
        return [await call(app, "GET", p) for p in
                ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/digitsnet", "/v2/models/nope",
                 "/v2/models/digitsnet/ready", "/nowhere")]

    (live, ready, server, meta, unknown, model_ready, nowhere) = run(go())
    assert (live[0], json.loads(live[2])) == (200, {"live": True})
    assert (ready[0], json.loads(ready[2])) == (200, {"ready": True})
    assert json.loads(server[2])["models"] == ["digitsnet"]
    doc = json.loads(meta[2])
    assert doc["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert doc["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}]
    assert unknown[0] == 404 and json.loads(unknown[2]) == {
        "error": "unknown model 'nope'; this server serves 'digitsnet'"}
    assert model_ready[0] == 200
    assert nowhere[0] == 404 and "error" in json.loads(nowhere[2])


def test_infer_json_nested_and_binary_give_the_engine_outputs():
    engine = LinearEngine()
    app = make_app(engine)
    x = np.random.default_rng(1).random((3, 1, 8, 8), dtype=np.float32)
    expected = engine.infer({"input": x})["logits"]
    nested = json.dumps({"id": "r1", "inputs": [{"name": "input", "shape": [3, 1, 8, 8], "datatype": "FP32",
                                                 "data": x.tolist()}]}).encode()
    header = json.dumps({"inputs": [{"name": "input", "shape": [3, 1, 8, 8], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()

    async def go():
        flat = await call(app, "POST", INFER, infer_body(x))
        deep = await call(app, "POST", INFER, nested)
        binary = await call(app, "POST", INFER, header + x.tobytes(),
                            {"Inference-Header-Content-Length": str(len(header))})
        return flat, deep, binary

    flat, deep, binary = run(go())
    for status, _, body in (flat, deep):
        doc = json.loads(body)
        assert status == 200 and doc["model_name"] == "digitsnet"
        out = doc["outputs"][0]
        assert out["shape"] == [3, 10] and out["datatype"] == "FP32"
        np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(3, 10), expected)
        assert doc["parameters"]["infer_ms"] > 0 and doc["parameters"]["server_ms"] >= doc["parameters"]["infer_ms"]
    assert json.loads(deep[2])["id"] == "r1"
    status, headers, body = binary
    split = int(headers["inference-header-content-length"])
    doc = json.loads(body[:split])
    assert status == 200 and doc["outputs"][0]["parameters"]["binary_data_size"] == 3 * 10 * 4
    np.testing.assert_array_equal(np.frombuffer(body[split:], np.float32).reshape(3, 10), expected)


@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_inference_takes_an_image_like_curl_data_binary(kind):
    engine = LinearEngine()
    app = make_app(engine)
    image, tensor = digit_png(kind)
    status, _, body = run(call(app, "POST", "/inference", image,
                               {"Content-Type": "application/x-www-form-urlencoded"}))  # what curl sends
    doc = json.loads(body)
    assert status == 200, doc
    assert set(doc["time"]) == {"pre_processing_ms", "infer_ms", "queue_ms", "post_processing_ms", "processing_ms"}
    assert doc["time"]["processing_ms"] >= doc["time"]["infer_ms"] > 0
    logits = engine.infer({"input": tensor})["logits"][0]
    top = doc["items"][0]["top_k"]
    if kind == "PNG":  # lossless: exactly the manifest's pre-processing of the same pixels
        assert top[0]["class"] == int(np.argmax(logits))
        assert abs(top[0]["score"] - float(np.exp(logits.max()) / np.exp(logits).sum())) < 1e-5
    assert len(top) == 5 and top[0]["label"] == str(top[0]["class"])


def _png_header(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` RGB pixels whose data holds one row's worth at most."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 25)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size, cut, status, message", [
    ((100_000, 100_000), None, 413, "image exceeds the limit of 40000000 pixels"),  # PIL's own bomb check first
    ((10_000, 5_000), None, 413, "image of 10000x5000 pixels exceeds the limit of 40000000 pixels"),
    ((8, 8), 30, 400, "cannot decode the PNG image: its header is truncated or corrupt"),
])
def test_an_image_too_large_or_truncated_is_refused_before_decoding(size, cut, status, message):
    from dk.serve.images import image_to_tensor
    from dk.serve.limits import HttpError
    from dk.specs import TensorSpec

    with pytest.raises(HttpError) as caught:
        image_to_tensor(_png_header(*size)[:cut], TensorSpec("input", ("batch", 1, 8, 8)), {})
    assert caught.value.status == status and caught.value.message.startswith(message)
    assert " at 0x" not in caught.value.message  # no Python object reprs


def test_image_to_tensor_follows_the_manifest():
    from dk.serve.images import image_to_tensor
    from dk.specs import TensorSpec
    from tests.core.test_serve_support import DIGITS_META

    image, tensor = digit_png("PNG")
    x = image_to_tensor(image, TensorSpec("input", ("batch", 1, 8, 8)), DIGITS_META["preprocessing"])
    assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x, tensor, atol=1e-6)
    rgb = image_to_tensor(image, TensorSpec("input", (1, 3, 4, 4)), {"colour": "rgb", "input_range": [0, 1], "mean": [0.5] * 3})
    assert rgb.shape == (1, 3, 4, 4) and rgb.min() >= -0.5 and rgb.max() <= 0.5


def test_metrics_count_requests_errors_and_latency():
    app = make_app()
    x = np.zeros((1, 1, 8, 8), np.float32)

    async def go():
        for _ in range(3):
            await call(app, "POST", INFER, infer_body(x))
        await call(app, "POST", INFER, b"{not json")
        await call(app, "GET", "/v2/models/other")
        return await call(app, "GET", "/metrics")

    status, headers, body = run(go())
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'dk_requests_total{endpoint="/v2/models/{name}/infer",code="200"} 3' in text
    assert 'dk_requests_total{endpoint="/v2/models/{name}/infer",code="400"} 1' in text
    assert 'dk_request_errors_total{code="400"} 1' in text and 'dk_request_errors_total{code="404"} 1' in text
    assert 'dk_request_duration_seconds_count{endpoint="/v2/models/{name}/infer"} 4' in text
    assert 'dk_request_duration_seconds_bucket{endpoint="/v2/models/{name}/infer",le="+Inf"} 4' in text
    assert "dk_engine_calls_total 3" in text


def test_dynamic_batching_merges_concurrent_requests_and_splits_outputs():
    engine = LinearEngine(delay=0.02)
    app = make_app(engine, max_batch=8, max_delay_ms=50)
    xs = [np.full((1, 1, 8, 8), i, np.float32) for i in range(8)]

    async def go():
        return await asyncio.gather(*(call(app, "POST", INFER, infer_body(x)) for x in xs))

    answers = run(go())
    for x, (status, _, body) in zip(xs, answers):
        doc = json.loads(body)
        assert status == 200
        np.testing.assert_allclose(doc["outputs"][0]["data"], (x.reshape(1, 64) @ engine.weights).ravel(), rtol=1e-5)
    assert max(engine.calls) > 1 and sum(engine.calls) == 8
    assert max(json.loads(b)["parameters"]["batch"] for _, _, b in answers) == max(engine.calls)


def test_batching_is_off_for_a_fixed_batch_axis():
    app = make_app(LinearEngine(batch=1), max_batch=8)
    doc = json.loads(run(call(app, "GET", "/v2/models/digitsnet"))[2])
    assert doc["parameters"]["dynamic_batching"] is None


def test_not_ready_while_the_engine_loads_then_ready():
    import threading

    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig

    gate = threading.Event()

    def loader():
        gate.wait(10)
        return LinearEngine()

    app = create_app(loader, ServeConfig(model_name="m"), ModelInfo(name="m"))

    async def go():
        async with app.app.router.lifespan_context(app.app):  # the Starlette app behind the infer route
            before = await call(app, "GET", "/v2/health/ready")
            infer = await call(app, "POST", "/v2/models/m/infer", infer_body(np.zeros((1, 1, 8, 8), np.float32)))
            gate.set()
            deadline = time.monotonic() + 60  # the loader thread finishes once released, however slow
            while (after := await call(app, "GET", "/v2/health/ready"))[0] != 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return before, infer, after

    before, infer, after = run(go())
    assert before[0] == 503 and json.loads(before[2])["error"].startswith("model 'm' is not ready")
    assert infer[0] == 503 and after[0] == 200


def test_engine_failure_is_a_500_without_traceback_or_path():
    class Broken(LinearEngine):
        def infer(self, inputs):
            raise RuntimeError("boom in /home/secret/model/engine.py line 3")

    status, _, body = run(call(make_app(Broken()), "POST", INFER, infer_body(np.zeros((1, 1, 8, 8), np.float32))))
    doc = json.loads(body)
    assert status == 500 and doc == {"error": "internal error (RuntimeError); see the server log"}


def test_serve_without_the_extra_names_the_pip_command(monkeypatch, capsys):
    import importlib.util

    from dk.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "--plugin", "ort"]) == 2
    assert capsys.readouterr().err.strip() == (
        'error: dk serve needs uvicorn, which is not installed: pip install "dk-core[serve]"')


def test_size_options_parse_units_and_refuse_nonsense():
    from dk.errors import UsageError
    from dk.serve.config import parse_size

    assert parse_size("64MiB") == 64 << 20 and parse_size("10MB") == 10**7 and parse_size("1048576") == 1 << 20
    for bad in ("abc", "0", "-5MiB", "12 parsecs"):
        with pytest.raises(UsageError, match="--max-body"):
            parse_size(bad)
