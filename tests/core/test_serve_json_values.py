"""JSON tensor values reach the model as sent, or the request is refused: no cast that wraps,
truncates or overflows (dk.serve.tensors.decode_request), and the request's other fields are
checked, not coerced."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dk.serve import tensors
from dk.serve.limits import HttpError
from dk.specs import TensorSpec

LIMITS = {"max_depth": 64, "max_bytes": 64 << 20}


def decode(datatype: str, data: list, **request) -> np.ndarray:
    spec = TensorSpec("x", (len(data),), tensors.DATATYPES[datatype])
    body = json.dumps({"inputs": [{"name": "x", "shape": [len(data)], "datatype": datatype, "data": data}],
                       **request}).encode()
    return tensors.decode_request(body, None, [spec], **LIMITS).inputs["x"]


def refusal(datatype: str, data: list, **request) -> str:
    with pytest.raises(HttpError) as caught:
        decode(datatype, data, **request)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize("datatype, data, expected", [
    ("INT32", [-2**31, 2**31 - 1, 3.0], [-2**31, 2**31 - 1, 3]),
    ("UINT8", [0, 255, 7], [0, 255, 7]),
    ("INT64", [2**62, -5], [2**62, -5]),
    ("BOOL", [True, False], [True, False]),
    ("FP16", [65504.0, -1.5], [65504.0, -1.5]),
    ("FP32", [3, 1e38], [3, 1e38]),
    ("FP64", [1e300], [1e300]),
])
def test_values_within_the_datatype_arrive_as_sent(datatype, data, expected):
    array = decode(datatype, data)
    assert array.dtype == np.dtype(tensors.DATATYPES[datatype])
    np.testing.assert_array_equal(array, np.array(expected, dtype=array.dtype))


@pytest.mark.parametrize("datatype, data, problem", [
    ("INT32", [2**40], "data holds a number outside INT32's range -2147483648 to 2147483647"),
    ("INT32", [2**31], "data holds a number outside INT32's range"),
    ("INT32", [-2**31 - 1], "data holds a number outside INT32's range"),
    ("UINT8", [-1], "data holds a number outside UINT8's range 0 to 255"),
    ("UINT8", [256], "data holds a number outside UINT8's range 0 to 255"),
    ("UINT8", [1.7], "data holds a number with a fraction; UINT8 takes whole numbers"),
    ("INT32", [2.5, 1], "data holds a number with a fraction; INT32 takes whole numbers"),
    ("INT32", [True, False], "data holds true/false; INT32 takes numbers"),
    ("FP32", [True], "data holds true/false; FP32 takes numbers"),
    ("BOOL", [1, 0], "data holds numbers; BOOL takes true and false"),
    ("FP32", [1e39], "data holds a number out of FP32's range (such as 1e999), which would be Infinity"),
    ("FP16", [70000], "data holds a number out of FP16's range"),
])
def test_values_a_cast_would_change_are_refused(datatype, data, problem):
    assert refusal(datatype, data).startswith(f"input 'x': {problem}")


def test_a_large_body_takes_the_same_checks(monkeypatch):
    monkeypatch.setattr(tensors, "PIECEWISE_BYTES", 16)  # every body is parsed in pieces
    np.testing.assert_array_equal(decode("INT32", [1, -2, 3]), [1, -2, 3])
    assert refusal("UINT8", [1, 300]).startswith("input 'x': data holds a number outside UINT8's range")


def test_a_marker_written_by_the_client_is_not_taken_for_data(monkeypatch):
    """A large body's data arrays are cut out and left as markers; one the client spelled itself
    must not pick up another array's values."""
    monkeypatch.setattr(tensors, "PIECEWISE_BYTES", 16)
    spec = TensorSpec("x", (3,), "float32")
    body = json.dumps({"parameters": {"data": [1.0, 2.0, 3.0]},
                       "inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": {tensors.MARKER: 0}}]})
    with pytest.raises(HttpError) as caught:
        tensors.decode_request(body.encode(), None, [spec], **LIMITS)
    assert caught.value.message == "input 'x': data is not a (nested) list of FP32 numbers"


@pytest.mark.parametrize("request_fields, problem", [
    ({"id": {"a": 1}}, "'id' must be a string (it is echoed in the response), not an object"),
    ({"id": True}, "'id' must be a string (it is echoed in the response), not true/false"),
    ({"parameters": {"binary_data_output": "true"}}, "parameters.binary_data_output must be true or false, not true"),
    ({"outputs": [{"name": "y", "parameters": {"binary_data": 1}}]}, "output 'y': binary_data must be true or false, not 1"),
])
def test_request_fields_of_the_wrong_kind_are_refused(request_fields, problem):
    assert refusal("FP32", [1.0], **request_fields) == problem


def test_an_id_comes_back_whole_and_empty_outputs_mean_all():
    spec = TensorSpec("x", (1,), "float32")
    body = json.dumps({"id": "r" * 1000, "outputs": [],
                       "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()
    request = tensors.decode_request(body, None, [spec], **LIMITS)
    assert request.id == "r" * 1000
    assert request.requested_outputs is None  # every output, as when "outputs" is absent


def test_a_missing_datatype_is_named_as_missing():
    body = json.dumps({"inputs": [{"name": "x", "shape": [1], "data": [1.0]}]}).encode()
    with pytest.raises(HttpError) as caught:
        tensors.decode_request(body, None, [TensorSpec("x", (1,), "float32")], **LIMITS)
    assert caught.value.message == "input 'x' has no 'datatype'; the model expects FP32"
