"""Parameters, MACs and activation memory from the ONNX graph."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

from dk.bench.model_summary import summarize_onnx
from dk.default_model import ONNX_PATH


def test_default_model_counts_match_its_layers():
    summary = summarize_onnx(ONNX_PATH)
    # conv 1->16, 16->32 at 8x8, 32->32 at 4x4 (3x3 kernels), linear 128->10
    assert summary.params == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 32 * 9 + 32) + (128 * 10 + 10)
    assert summary.macs == 16 * 64 * 9 + 32 * 64 * 16 * 9 + 32 * 16 * 32 * 9 + 128 * 10
    assert summary.flops == 2 * summary.macs and summary.param_bytes == 4 * summary.params
    assert summary.macs_by_op == {"Conv": 451584, "Gemm": 1280}
    assert summary.input_shapes == {"input": [1, 1, 8, 8]}
    assert summary.largest_activation_bytes == 32 * 8 * 8 * 4
    assert summary.activation_bytes > summary.largest_activation_bytes


def test_batch_scales_macs_and_activations_not_params():
    one, four = summarize_onnx(ONNX_PATH), summarize_onnx(ONNX_PATH, batch=4)
    assert four.macs == 4 * one.macs and four.activation_bytes == 4 * one.activation_bytes
    assert four.params == one.params


def test_matmul_with_dynamic_spatial_size(tmp_path):
    weight = numpy_helper.from_array(np.ones((64, 32), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "seq", 32])], [weight])
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    summary = summarize_onnx(path, {"x": (2, 10, 64)})
    assert summary.macs == 2 * 10 * 32 * 64 and summary.params == 64 * 32
    assert summary.activation_bytes == 2 * (2 * 10 * 32 * 4)  # y and z
