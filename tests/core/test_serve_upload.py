"""--allow-upload: ONNX only, size-limited, atomic, inside the store; no endpoint without the flag."""

from __future__ import annotations

import asyncio
import json
import pickle
import socket
import time

import pytest

pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")

from dk.default_model import ONNX_PATH  # noqa: E402
from dk.serve.server import ServerThread  # noqa: E402
from tests.core.test_serve_hardening import HANG_GUARD_S, _read_response  # noqa: E402
from tests.core.test_serve_support import call, make_app  # noqa: E402


def _upload(app, name: str, body: bytes | list[bytes], content_length: bool = True):
    return asyncio.run(call(app, "POST", f"/v2/repository/models/{name}/upload", body,
                            content_length=content_length))


def _store_files(store):
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()) if store.exists() else []


def test_no_upload_endpoint_without_the_flag(tmp_path):
    status, _, body = _upload(make_app(store=tmp_path), "m", ONNX_PATH.read_bytes())
    assert status == 404 and "error" in json.loads(body)
    assert _store_files(tmp_path) == []


def test_onnx_upload_becomes_an_artifact_in_the_store(tmp_path):
    from dk.artifacts import Artifact

    data = ONNX_PATH.read_bytes()
    chunks = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    status, _, body = _upload(make_app(allow_upload=True, store=tmp_path), "digits-v2", chunks)
    doc = json.loads(body)
    assert status == 201 and doc["stored"] is True and doc["name"] == "digits-v2"
    assert doc["inputs"][0]["name"] == "input" and str(tmp_path) not in body.decode()
    artifact = Artifact.load(tmp_path / "uploads" / "digits-v2")
    artifact.verify()
    assert artifact.model_file.read_bytes() == data and artifact.format == "onnx"
    assert _store_files(tmp_path) == ["uploads/digits-v2/dk.json", "uploads/digits-v2/model.onnx"]


@pytest.mark.parametrize("payload, message", [
    (pickle.dumps({"weights": [1, 2, 3]}), "upload is a pickle or zip archive, not ONNX"),
    (b"PK\x03\x04" + b"\x00" * 100, "upload is a pickle or zip archive, not ONNX"),
    (ONNX_PATH.read_bytes()[:5000], "upload is not a valid ONNX model"),
    (b"hello world", "upload is not a valid ONNX model"),
])
def test_non_onnx_uploads_are_refused_and_leave_nothing(tmp_path, payload, message):
    status, _, body = _upload(make_app(allow_upload=True, store=tmp_path), "m", payload)
    error = json.loads(body)["error"]
    assert status == 400 and error.startswith(message), error
    assert str(tmp_path) not in error and "/tmp" not in error
    assert _store_files(tmp_path) == []


@pytest.mark.parametrize("name", ["..", ".hidden", "a.b", "-x", "x" * 65, "%2e%2e"])
def test_names_cannot_leave_the_store(tmp_path, name):
    status, _, body = _upload(make_app(allow_upload=True, store=tmp_path), name, ONNX_PATH.read_bytes())
    assert status in (400, 404) and "error" in json.loads(body)
    assert _store_files(tmp_path) == []


@pytest.mark.parametrize("name", ["nl\n", "nl%0A"])
def test_a_name_ending_in_a_newline_is_refused(tmp_path, name):
    status, _, body = _upload(make_app(allow_upload=True, store=tmp_path), name, ONNX_PATH.read_bytes())
    assert (status, json.loads(body)["error"]) == (
        400, "model name must be 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    assert _store_files(tmp_path) == []


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_compressed_upload_is_refused_not_stored_as_sent(tmp_path, encoding):
    status, _, body = asyncio.run(call(make_app(allow_upload=True, store=tmp_path), "POST",
                                       "/v2/repository/models/m/upload", ONNX_PATH.read_bytes(),
                                       headers={"Content-Encoding": encoding}))
    assert (status, json.loads(body)["error"]) == (
        415, f"Content-Encoding '{encoding}' is not supported for uploads; send the .onnx file uncompressed")
    assert _store_files(tmp_path) == []


def test_oversize_upload_is_refused_while_streaming(tmp_path):
    app = make_app(allow_upload=True, store=tmp_path, max_upload=10_000)
    status, _, body = _upload(app, "m", [b"\x08" * 1000] * 50, content_length=False)
    assert status == 413 and json.loads(body) == {"error": "model exceeds the upload limit of 10000 bytes"}
    assert _store_files(tmp_path) == []


def test_an_uploaded_model_is_served_after_load(tmp_path):
    """``POST /v2/repository/models/NAME/load`` builds the upload with the serving plugin and swaps
    it in on a running server: the new name answers, the old one is gone, outputs are the model's."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("uvicorn")
    import http.client

    import numpy as np

    from dk import api
    from dk.default_model import load_split
    from dk.pipeline import BuildOptions, build
    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig
    from dk.serve.server import ServerThread
    from tests.core.test_serve_support import infer_body

    built = build("ort", "fp32", BuildOptions(out=tmp_path))
    model = ModelInfo.from_artifact(built, "ort")
    app = create_app(api.load_engine("ort", built), ServeConfig(model_name=model.name, allow_upload=True,
                                                                store=tmp_path), model)

    def post(port, path, body=b""):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST" if body is not None else "GET", path, body)
        response = conn.getresponse()
        return response.status, json.loads(response.read())

    x = load_split("eval")[0][:3]
    with ServerThread(app) as server:
        assert post(server.port, "/v2/repository/models/digits-v2/upload", ONNX_PATH.read_bytes())[0] == 201
        status, doc = post(server.port, "/v2/repository/models/nope/load")
        assert status == 404 and doc["error"].startswith("no uploaded model 'nope'")
        status, doc = post(server.port, "/v2/repository/models/digits-v2/load")
        assert (status, doc) == (200, {"name": "digits-v2", "loaded": True, "plugin": "ort", "precision": "fp32"})
        assert post(server.port, f"/v2/models/{model.name}", None)[0] == 404
        status, doc = post(server.port, "/v2/models/digits-v2/infer", infer_body(x))
        assert status == 200
    with api.load_engine("ort", built) as engine:
        expected = engine.infer({"input": x})["logits"]
    np.testing.assert_allclose(np.array(doc["outputs"][0]["data"], np.float32).reshape(expected.shape), expected,
                               rtol=1e-5, atol=1e-5)


def _upload_head(length: int) -> bytes:
    return (b"POST /v2/repository/models/m/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


def test_a_stalled_upload_gets_408_closes_and_leaves_nothing(tmp_path):
    data = ONNX_PATH.read_bytes()
    with ServerThread(make_app(allow_upload=True, store=tmp_path, body_timeout_s=0.3)) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(_upload_head(len(data)) + data[:1000])  # and stall
        status, headers, body = _read_response(sock)
        assert (status, headers["connection"]) == (408, "close")
        assert json.loads(body) == {"error": "the request body stalled: no byte came for 0.3 s; send it without pauses"}
        assert sock.recv(10) == b""
    assert _store_files(tmp_path) == []  # not even the partial file


def test_an_upload_slower_than_the_body_timeout_but_steady_is_stored(tmp_path):
    data = ONNX_PATH.read_bytes()
    pieces = [data[i * len(data) // 6:(i + 1) * len(data) // 6] for i in range(6)]
    with ServerThread(make_app(allow_upload=True, store=tmp_path, body_timeout_s=2.0)) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall(_upload_head(len(data)))
        for piece in pieces:  # 6 pieces 0.5 s apart: 3 s in all, pauses well under the 2 s limit
            sock.sendall(piece)
            time.sleep(0.5)
        status, _, body = _read_response(sock)
    assert status == 201 and json.loads(body)["name"] == "m"
    assert _store_files(tmp_path) == ["uploads/m/dk.json", "uploads/m/model.onnx"]
