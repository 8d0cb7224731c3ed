"""Q/DQ ONNX from the ort plugin's quantizer, made acceptable to TensorRT (symmetric int8, float
biases) and still accurate: checked with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from dk import api
from dk.default_model import ONNX_PATH, load_split
from dk.sources import parse_model_arg
from dk.specs import QuantizeRequest
from dk.testing.models import calibration_feeds
from dk_trt.qdq import count_qdq, prepare_for_tensorrt

ort = pytest.importorskip("onnxruntime", reason="the ort plugin's quantizer: pip install onnxruntime")


@pytest.fixture(scope="module", params=["uint8", "int8"])
def ort_qdq(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"qdq-{request.param}")
    artifact = api.quantize("ort", QuantizeRequest(source=parse_model_arg(None), out_dir=out,
                                                   calibration=calibration_feeds(),
                                                   options={"activations": request.param}))
    return onnx.load(str(artifact.model_file))


def accuracy(model) -> float:
    x, y = load_split("eval")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return float((session.run(None, {"input": x})[0].argmax(1) == y).mean())


def zero_points(model) -> list[np.ndarray]:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_prepared_model_is_symmetric_int8_with_float_biases_and_stays_accurate(ort_qdq):
    prepared, report = prepare_for_tensorrt(ort_qdq)
    assert report.folded_biases == 4 and report.qdq_nodes == count_qdq(prepared) > 0
    zps = zero_points(prepared)
    assert len(zps) == report.qdq_nodes
    assert all(z.dtype == np.int8 and not z.any() for z in zps)
    inits = {i.name: numpy_helper.to_array(i) for i in prepared.graph.initializer}
    dq_inputs = [inits.get(n.input[0]) for n in prepared.graph.node if n.op_type == "DequantizeLinear"]
    assert not any(a is not None and a.dtype == np.int32 for a in dq_inputs)  # no int32 bias DQ left
    assert accuracy(prepared) >= 0.95 and accuracy(prepared) >= accuracy(ort_qdq) - 0.02


def test_preparing_twice_changes_nothing_more(ort_qdq):
    once, _ = prepare_for_tensorrt(ort_qdq)
    twice, report = prepare_for_tensorrt(once)
    assert (report.symmetrized, report.folded_biases) == (0, 0)
    assert accuracy(twice) == accuracy(once)


def test_a_float_model_has_no_qdq_nodes():
    assert count_qdq(onnx.load(str(ONNX_PATH))) == 0
