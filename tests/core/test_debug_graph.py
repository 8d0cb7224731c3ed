"""Marked graphs: extra outputs appended to an ONNX file without loading its weights."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from dk.debug.graph import candidate_nodes, load_graph, save_marked, uses_external_data, value_infos
from dk.default_model import ONNX_PATH

ort = pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("external", [False, True])
def test_marked_file_is_the_model_plus_typed_outputs(tmp_path, external):
    source = ONNX_PATH
    if external:
        source = tmp_path / "model" / "ext.onnx"
        source.parent.mkdir()
        onnx.save(onnx.load(str(ONNX_PATH)), str(source), save_as_external_data=True, all_tensors_to_one_file=True,
                  location="ext.data", size_threshold=0)
    graph = load_graph(source)
    assert uses_external_data(graph) == external
    infos = value_infos(graph)
    nodes = candidate_nodes(graph, infos)
    tensors = [nodes[1].tensor, nodes[5].tensor]
    target = tmp_path / "marked.onnx"
    save_marked(source, tensors, target, infos, ["logits"], external)
    marked = onnx.load(str(target))
    onnx.checker.check_model(marked)
    assert [o.name for o in marked.graph.output] == ["logits", *tensors]
    assert marked.graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    plain = ort.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    logits, relu, conv = session.run(None, {"input": x})
    np.testing.assert_array_equal(logits, plain)
    assert relu.shape == (2, 16, 8, 8) and relu.min() >= 0 and conv.shape == (2, 32, 4, 4)


def test_bisection_graph_drops_large_weights_but_keeps_their_shapes():
    graph = load_graph(ONNX_PATH)
    assert graph.ByteSize() < onnx.load(str(ONNX_PATH)).ByteSize() / 4
    nodes = candidate_nodes(graph)
    assert nodes[2].input_shapes[1] == (32, 16, 3, 3)
