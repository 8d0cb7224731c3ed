"""dk's fp16-typed ONNX for strongly typed TensorRT 11 builds, run for real with onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dk.default_model import ONNX_PATH, load_split
from dk_trt.fp16_onnx import KEEP_FP32_OPS, convert_to_fp16

ort = pytest.importorskip("onnxruntime", reason="runs the converted models: pip install onnxruntime")


def run(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def types_by_name(model) -> dict[str, int]:
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    types.update({i.name: i.data_type for i in graph.initializer})
    return types


def test_default_model_in_fp16_matches_fp32_and_keeps_float32_io():
    model = onnx.load(str(ONNX_PATH))
    half, report = convert_to_fp16(model)
    x, y = load_split("eval")
    ref, got = run(model, {"input": x}), run(half, {"input": x})
    assert got.dtype == np.float32
    assert np.abs(ref - got).max() < 0.05
    assert (got.argmax(1) == y).mean() >= (ref.argmax(1) == y).mean() - 0.005
    assert report.fp16_nodes == len(model.graph.node) and report.casts == 2  # input and output casts only
    assert {i.data_type for i in half.graph.initializer} == {TensorProto.FLOAT16}
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT


def sensitive_graph():
    """Conv -> BatchNorm -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> Softmax, with dynamic batch."""
    rng = np.random.default_rng(0)
    init = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "scale"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "bias"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "mean"),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "var"),
        numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "sensitive", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 4])], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_normalisation_and_softmax_stay_fp32_between_casts():
    model = sensitive_graph()
    half, report = convert_to_fp16(model)
    types = types_by_name(half)
    by_op = {n.op_type: n for n in half.graph.node}
    assert all(types[i] == TensorProto.FLOAT for i in by_op["BatchNormalization"].input)
    assert types[by_op["Softmax"].input[0]] == TensorProto.FLOAT
    assert types[by_op["Conv"].input[1]] == TensorProto.FLOAT16 and types["scale"] == TensorProto.FLOAT
    assert types[by_op["Gemm"].output[0]] == TensorProto.FLOAT16
    assert set(report.kept_fp32) == {"BatchNormalization", "Softmax"} <= KEEP_FP32_OPS
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    ref, got = run(model, {"x": x}), run(half, {"x": x})
    np.testing.assert_allclose(got, ref, atol=2e-3)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)  # softmax computed in fp32


def test_ops_to_keep_can_be_widened():
    half, report = convert_to_fp16(sensitive_graph(), keep=frozenset({"Gemm"}))
    assert "Gemm" in report.kept_fp32
    gemm = next(n for n in half.graph.node if n.op_type == "Gemm")
    assert types_by_name(half)[gemm.input[1]] == TensorProto.FLOAT
