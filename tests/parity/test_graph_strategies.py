"""The generated graphs are valid ONNX, run on the reference evaluator, and each op does what it says."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from onnx.reference import ReferenceEvaluator

from dk.testing.graphs import INPUT_NAME, OUTPUT_NAME, GeneratedGraph, onnx_graphs


def _declared_shape(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _conv_numpy(x: np.ndarray, w: np.ndarray, pad: int, stride: int, group: int) -> np.ndarray:
    """A direct (slow, obviously right) grouped 2-D convolution without bias."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oc, cg, k, _ = w.shape
    og = oc // group
    oh, ow = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], oc, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride : i * stride + k, j * stride : j * stride + k]
            for g in range(group):
                out[:, g * og : (g + 1) * og, i, j] = np.einsum(
                    "nckl,ockl->no", patch[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og])
    return out


def _run_all(graph: GeneratedGraph) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Feeds, and the value of every tensor in the graph (inputs, initializers, node outputs)."""
    feeds = graph.feeds(seed=1)
    names = [n.output[0] for n in graph.model.graph.node]
    values = dict(zip(names, ReferenceEvaluator(graph.model).run(names, feeds)))
    values.update(feeds)
    values.update({i.name: onnx.numpy_helper.to_array(i) for i in graph.model.graph.initializer})
    return feeds, values


@settings(max_examples=60, deadline=None)
@given(graph=onnx_graphs())
def test_generated_models_pass_the_checker_with_declared_batch(graph):
    onnx.checker.check_model(graph.model, full_check=True)
    assert 1 <= graph.batch <= 4
    (inp,), (out,) = graph.model.graph.input, graph.model.graph.output
    assert (inp.name, out.name) == (INPUT_NAME, OUTPUT_NAME)
    batch_dim = "batch" if graph.dynamic_batch else graph.batch
    assert _declared_shape(inp)[0] == batch_dim and _declared_shape(out)[0] == batch_dim
    assert [(o.domain, o.version) for o in graph.model.opset_import] == [("", 17)]


@settings(max_examples=60, deadline=None)
@given(graph=onnx_graphs())
def test_reference_evaluator_runs_them_to_the_declared_shape(graph):
    (output,) = ReferenceEvaluator(graph.model).run(None, graph.feeds())
    declared = _declared_shape(graph.model.graph.output[0])
    assert output.dtype == np.float32
    assert list(output.shape) == [graph.batch, *declared[1:]]
    assert np.all(np.isfinite(output))


@settings(max_examples=60, deadline=None)
@given(graph=onnx_graphs())
def test_each_op_behaves(graph):
    _, v = _run_all(graph)
    for node in graph.model.graph.node:
        x, y = v[node.input[0]], v[node.output[0]]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "Relu":
            np.testing.assert_array_equal(y, np.maximum(x, 0))
        elif op == "LeakyRelu":
            np.testing.assert_allclose(y, np.where(x >= 0, x, attrs["alpha"] * x), rtol=1e-6)
        elif op == "Sigmoid":
            assert np.all((y >= 0) & (y <= 1))
            np.testing.assert_allclose(y, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-5, atol=1e-7)
        elif op == "Tanh":
            np.testing.assert_allclose(y, np.tanh(x.astype(np.float64)), rtol=1e-5, atol=1e-7)
        elif op == "Add":
            np.testing.assert_allclose(y, x + v[node.input[1]], rtol=1e-6)
        elif op == "Concat":
            np.testing.assert_array_equal(y, np.concatenate([x, v[node.input[1]]], axis=1))
        elif op == "Flatten":
            np.testing.assert_array_equal(y, x.reshape(x.shape[0], -1))
        elif op == "GlobalAveragePool":
            np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
        elif op in ("MaxPool", "AveragePool"):
            k = attrs["kernel_shape"][0]
            assert y.shape[2] == (x.shape[2] - k) // attrs["strides"][0] + 1
            np.testing.assert_allclose(y[:, :, 0, 0], getattr(np, "max" if op == "MaxPool" else "mean")(
                x[:, :, :k, :k], axis=(2, 3)), rtol=1e-5, atol=1e-6)
        elif op in ("Gemm", "MatMul"):
            w = v[node.input[1]].T if attrs.get("transB") else v[node.input[1]]
            bias = v[node.input[2]] if len(node.input) > 2 else 0
            np.testing.assert_allclose(y, x @ w + bias, rtol=1e-4, atol=1e-5)
        elif op == "Conv":
            bias = v[node.input[2]] if len(node.input) > 2 else np.zeros(1)
            pad, stride = attrs["pads"][0], attrs["strides"][0]
            want = _conv_numpy(x, v[node.input[1]], pad, stride, attrs["group"])
            want += np.reshape(bias, (1, -1, 1, 1))
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
        elif op == "Identity":
            np.testing.assert_array_equal(y, x)


@settings(max_examples=40, deadline=None)
@given(graph=onnx_graphs())
def test_reference_agrees_with_onnxruntime(graph):
    ort = pytest.importorskip("onnxruntime")
    from dk.testing.tolerances import compare_outputs

    feeds = graph.feeds()
    session = ort.InferenceSession(graph.model.SerializeToString(), providers=["CPUExecutionProvider"])
    (want,), (got,) = ReferenceEvaluator(graph.model).run(None, feeds), session.run(None, feeds)
    result = compare_outputs(want, got, "fp32")
    assert result.passed, result.summary()


@settings(max_examples=20, deadline=None)
@given(graph=onnx_graphs(dynamic_batch=True))
def test_dynamic_batch_graphs_run_at_any_batch(graph):
    assert _declared_shape(graph.model.graph.input[0])[0] == "batch"
    x = graph.feeds()[INPUT_NAME]
    wider = np.concatenate([x] * 3)
    (output,) = ReferenceEvaluator(graph.model).run(None, {INPUT_NAME: wider})
    assert output.shape[0] == 3 * graph.batch


@settings(max_examples=10, deadline=None)
@given(graph=onnx_graphs(max_layers=2, dynamic_batch=False))
def test_save_names_the_file_by_content(graph):
    with tempfile.TemporaryDirectory() as tmp:
        first, second = graph.save(tmp), graph.save(tmp)
        assert first == second and [p.name for p in Path(tmp).iterdir()] == [first.name]
        loaded = onnx.load(str(first))
    assert loaded.SerializeToString() == graph.model.SerializeToString()
    assert _declared_shape(loaded.graph.input[0])[0] == graph.batch
