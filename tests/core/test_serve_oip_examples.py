"""``dk serve``'s Open Inference Protocol v2 against the protocol's published examples, served by the
ort engine on a real uvicorn server (tiny ONNX models whose I/O match the examples).

Where each example comes from:

- Inference request/response ("mymodel", ``"id": "42"``, input0 UINT32 [2, 2], input1 BOOL [3],
  output0 FP32 [3, 2] = ``[1.0, 1.1, 2.0, 2.1, 3.0, 3.1]``), and the error object ``{"error": ...}``:
  https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
  ("Inference Request Examples", "... JSON Error Object"; the same text is KServe's
  https://github.com/kserve/kserve/blob/master/docs/predict-api/v2/required_api.md and the
  ``x-examples`` of open_inference_rest.yaml). As published, input1 declares shape [3] but gives one
  value (``[true]``); the protocol says the data holds the whole tensor, so a compliant server answers
  400 with an error object, and the tests also send the consistent ``[true, true, true]`` (Triton's
  binary example sends 3 bytes for the same input).
- Flat and nested ``data`` ("Tensor Data", same pages).
- Binary tensor data (16 + 3 bytes in, ``binary_data_size: 24`` out):
  https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
- Health (``{"live": true}``, ``{"ready": true}``, ``{"name": ..., "ready": true}``), server metadata
  (``name``, ``version``, ``extensions``) and the model metadata example (input shape [1, -1, 3],
  output [1, 3], ``-1`` for a variable dimension):
  https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the served engine is ort's: pip install onnxruntime")
pytest.importorskip("uvicorn", reason="dk serve needs uvicorn: pip install \"dk-core[serve]\"")
pytest.importorskip("starlette", reason="dk serve needs starlette: pip install \"dk-core[serve]\"")

import onnx
from onnx import TensorProto, helper

#: The published response's values, as the FP32 the protocol says they are.
PUBLISHED_OUTPUT0 = np.array([1.0, 1.1, 2.0, 2.1, 3.0, 3.1], np.float32)
PUBLISHED_REQUEST = {
    "id": "42",
    "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]},
    ],
    "outputs": [{"name": "output0"}],
}
RESPONSE_KEYS = {"model_name", "model_version", "id", "parameters", "outputs"}  # $inference_response


def example_model() -> onnx.ModelProto:
    """input0 UINT32 [2, 2], input1 BOOL [3] -> output0 FP32 [3, 2] = [x, x + 0.1 * input1] with x the
    first three values of input0: the published request gives the published response."""
    tensor = helper.make_tensor
    nodes = [
        helper.make_node("Reshape", ["input0", "flat_shape"], ["flat"]),
        helper.make_node("Slice", ["flat", "zero", "three"], ["first3"]),
        helper.make_node("Cast", ["first3"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["input1"], ["b"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["b", "tenth"], ["frac"]),
        helper.make_node("Add", ["x", "frac"], ["y"]),
        helper.make_node("Unsqueeze", ["x", "one"], ["x1"]),
        helper.make_node("Unsqueeze", ["y", "one"], ["y1"]),
        helper.make_node("Concat", ["x1", "y1"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "oip_example",
        [helper.make_tensor_value_info("input0", TensorProto.UINT32, [2, 2]),
         helper.make_tensor_value_info("input1", TensorProto.BOOL, [3])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [3, 2])],
        [tensor("flat_shape", TensorProto.INT64, [1], [-1]), tensor("zero", TensorProto.INT64, [1], [0]),
         tensor("three", TensorProto.INT64, [1], [3]), tensor("one", TensorProto.INT64, [1], [1]),
         tensor("tenth", TensorProto.FLOAT, [], [0.1])],
    )
    return _model(graph)


def metadata_model() -> onnx.ModelProto:
    """The model metadata example's I/O: FP32 [1, -1, 3] -> FP32 [1, 3] (the sum over the variable axis)."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["input0", "axes"], ["output0"], keepdims=0)], "oip_metadata",
        [helper.make_tensor_value_info("input0", TensorProto.FLOAT, [1, "n", 3])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    return _model(graph)


def _model(graph) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _serve(tmp: Path, model: onnx.ModelProto, name: str):
    """``dk serve --plugin ort --artifact <ort export of model> --name NAME``, in a thread."""
    from dk import api
    from dk.plugins import get_plugin_manager
    from dk.serve.app import ModelInfo, create_app
    from dk.serve.config import ServeConfig
    from dk.serve.server import ServerThread
    from dk.sources import parse_model_arg
    from dk.specs import ExportRequest

    onnx.save(model, tmp / f"{name}.onnx")
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(str(tmp / f"{name}.onnx")), out_dir=tmp / "out",
                                               dynamic_batch=False))
    engine = get_plugin_manager().call_stage("ort", "load", artifact=artifact, device="cpu", options={})
    info = ModelInfo.from_artifact(artifact, "ort", name)
    return ServerThread(create_app(engine, ServeConfig(model_name=name), info))


@pytest.fixture(scope="module")
def mymodel(tmp_path_factory):
    with _serve(tmp_path_factory.mktemp("oip-mymodel"), example_model(), "mymodel") as server:
        yield server.port


@pytest.fixture(scope="module")
def metamodel(tmp_path_factory):
    with _serve(tmp_path_factory.mktemp("oip-meta"), metadata_model(), "metamodel") as server:
        yield server.port


def request(port: int, method: str, path: str, body: bytes | dict | None = None,
            headers: dict | None = None) -> tuple[int, dict, bytes]:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def assert_parameters(params: dict) -> None:
    """$parameters: "name": $string | $number | $boolean."""
    assert params and all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in params.items())


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_published_request_gives_the_published_response(mymodel, layout):
    doc = json.loads(json.dumps(PUBLISHED_REQUEST))
    doc["inputs"][1]["data"] = [True, True, True]
    if layout == "nested":
        doc["inputs"][0]["data"] = [[1, 2], [3, 4]]
    status, headers, body = request(mymodel, "POST", "/v2/models/mymodel/infer", doc)
    assert status == 200 and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) <= RESPONSE_KEYS and answer["model_name"] == "mymodel" and answer["id"] == "42"
    (output,) = answer["outputs"]
    assert {k: output[k] for k in ("name", "shape", "datatype")} == {"name": "output0", "shape": [3, 2],
                                                                       "datatype": "FP32"}
    assert set(output) == {"name", "shape", "datatype", "data"}
    np.testing.assert_array_equal(np.array(output["data"], np.float32), PUBLISHED_OUTPUT0)
    assert_parameters(answer["parameters"])


def test_published_request_as_printed_is_an_error_object(mymodel):
    status, headers, body = request(mymodel, "POST", "/v2/models/mymodel/infer", PUBLISHED_REQUEST)
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "input 'input1': data holds 1 values, shape [3] needs 3"}


def test_versioned_infer_url_and_unknown_output(mymodel):
    doc = json.loads(json.dumps(PUBLISHED_REQUEST))
    doc["inputs"][1]["data"] = [True, False, True]
    status, _, body = request(mymodel, "POST", "/v2/models/mymodel/versions/1/infer", doc)
    assert status == 200
    np.testing.assert_array_equal(np.array(json.loads(body)["outputs"][0]["data"], np.float32),
                                  np.array([1.0, 1.1, 2.0, 2.0, 3.0, 3.1], np.float32))
    doc["outputs"] = [{"name": "output7"}]
    status, _, body = request(mymodel, "POST", "/v2/models/mymodel/infer", doc)
    assert status == 400 and json.loads(body) == {"error": "unknown output(s) 'output7'; the model has 'output0'"}


def test_binary_tensor_data_example(mymodel):
    header = json.dumps({
        "model_name": "mymodel",
        "inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "parameters": {"binary_data_size": 16}},
            {"name": "input1", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}},
        ],
        "outputs": [{"name": "output0", "parameters": {"binary_data": True}}],
    }).encode()
    data = np.array([1, 2, 3, 4], "<u4").tobytes() + bytes([1, 1, 1])
    assert len(data) == 19  # "the total size of the binary data is 19 bytes"
    status, headers, body = request(mymodel, "POST", "/v2/models/mymodel/infer", header + data, {
        "Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(header))})
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    split = int(headers["inference-header-content-length"])
    answer = json.loads(body[:split])
    assert set(answer) <= RESPONSE_KEYS
    assert answer["outputs"] == [{"name": "output0", "shape": [3, 2], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 24}}]
    assert len(body) == split + 24
    np.testing.assert_array_equal(np.frombuffer(body[split:], "<f4"), PUBLISHED_OUTPUT0)


def test_health_examples(mymodel):
    assert request(mymodel, "GET", "/v2/health/live")[::2] == (200, b'{"live":true}')
    assert request(mymodel, "GET", "/v2/health/ready")[::2] == (200, b'{"ready":true}')
    status, _, body = request(mymodel, "GET", "/v2/models/mymodel/ready")
    assert (status, json.loads(body)) == (200, {"name": "mymodel", "ready": True})


def test_server_metadata_example(mymodel):
    status, _, body = request(mymodel, "GET", "/v2")
    doc = json.loads(body)
    assert status == 200 and isinstance(doc["name"], str) and isinstance(doc["version"], str)
    assert all(isinstance(e, str) for e in doc["extensions"]) and "binary_tensor_data" in doc["extensions"]


def test_model_metadata_of_the_request_example(mymodel):
    status, _, body = request(mymodel, "GET", "/v2/models/mymodel")
    doc = json.loads(body)
    assert status == 200 and doc["name"] == "mymodel" and isinstance(doc["platform"], str)
    assert all(isinstance(v, str) for v in doc["versions"])
    assert doc["inputs"] == [{"name": "input0", "datatype": "UINT32", "shape": [2, 2]},
                             {"name": "input1", "datatype": "BOOL", "shape": [3]}]
    assert doc["outputs"] == [{"name": "output0", "datatype": "FP32", "shape": [3, 2]}]


def test_model_metadata_example_with_a_variable_dimension(metamodel):
    status, _, body = request(metamodel, "GET", "/v2/models/metamodel")
    doc = json.loads(body)
    assert status == 200
    assert doc["inputs"] == [{"name": "input0", "datatype": "FP32", "shape": [1, -1, 3]}]
    assert doc["outputs"] == [{"name": "output0", "datatype": "FP32", "shape": [1, 3]}]
    infer = {"inputs": [{"name": "input0", "shape": [1, 2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}
    status, _, body = request(metamodel, "POST", "/v2/models/metamodel/infer", infer)
    assert status == 200
    assert json.loads(body)["outputs"] == [{"name": "output0", "shape": [1, 3], "datatype": "FP32",
                                            "data": [5.0, 7.0, 9.0]}]
    infer["inputs"][0]["shape"] = [2, 1, 3]
    status, _, body = request(metamodel, "POST", "/v2/models/metamodel/infer", infer)
    assert status == 400 and json.loads(body) == {
        "error": "input 'input0' has shape [2, 1, 3], the model expects [1, -1, 3]"}


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/v2/models/nosuchmodel", None, 404),
    ("GET", "/v2/models/nosuchmodel/ready", None, 404),
    ("POST", "/v2/models/nosuchmodel/infer", PUBLISHED_REQUEST, 404),
    ("POST", "/v2/models/mymodel/infer", b"{not json", 400),
    ("POST", "/v2/models/mymodel/infer", {"inputs": [{"name": "input0", "shape": [2, 2], "datatype": "FP32",
                                                      "data": [1, 2, 3, 4]}]}, 400),
])
def test_failures_are_error_objects(mymodel, method, path, body, status):
    got, headers, answer = request(mymodel, method, path, body)
    doc = json.loads(answer)
    assert got == status and headers["content-type"] == "application/json"
    assert list(doc) == ["error"] and isinstance(doc["error"], str) and doc["error"]


def test_versioned_metadata_and_ready_urls(mymodel):
    status, _, body = request(mymodel, "GET", "/v2/models/mymodel/versions/1")
    assert status == 200 and json.loads(body)["versions"] == ["1"]
    status, _, body = request(mymodel, "GET", "/v2/models/mymodel/versions/1/ready")
    assert (status, json.loads(body)) == (200, {"name": "mymodel", "ready": True})
    status, _, body = request(mymodel, "GET", "/v2/models/mymodel/versions/7/ready")
    assert (status, json.loads(body)) == (404, {"error": "model 'mymodel' has no version '7'; it has version 1"})


def test_an_outputs_own_binary_data_setting_wins_over_the_requests():
    """Triton: ``binary_data_output`` is the default, each output's ``binary_data`` overrides it."""
    from dk.serve.tensors import _requested_outputs, encode_response

    names, default, overrides, _ = _requested_outputs(
        [{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}], {"binary_data_output": True})
    assert (names, default, overrides) == (["a", "b"], True, {"a": False})
    outputs = {"a": np.array([1.5, 2.5], np.float32), "b": np.array([7, 8], np.int64)}
    body, headers = encode_response("m", "1", None, outputs, default, {}, overrides)
    split = int(headers["inference-header-content-length"])
    entries = json.loads(body[:split])["outputs"]
    assert entries[0]["data"] == [1.5, 2.5] and "parameters" not in entries[0]
    assert entries[1]["parameters"] == {"binary_data_size": 16}
    np.testing.assert_array_equal(np.frombuffer(body[split:], "<i8"), [7, 8])
    json_only, headers = encode_response("m", "1", None, outputs, False, {}, {})
    assert headers == {"content-type": "application/json"} and json.loads(json_only)["outputs"][1]["data"] == [7, 8]
