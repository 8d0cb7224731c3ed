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


def _chain(*nodes, initializers=(), opset=17):
    """x -> nodes -> y (float [1, 4]), for the clamp rules."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_a_tensor_used_only_by_a_relu_or_a_constant_clip_is_compared_clamped():
    from onnx import helper, numpy_helper

    low, high = numpy_helper.from_array(np.array(0.0, np.float32), "low"), \
        numpy_helper.from_array(np.array(6.0, np.float32), "high")
    model = _chain(helper.make_node("Neg", ["x"], ["a"], name="neg"), helper.make_node("Relu", ["a"], ["b"], name="relu"),
                   helper.make_node("Abs", ["b"], ["c"], name="abs"),
                   helper.make_node("Clip", ["c", "low", "high"], ["d"], name="clip6"),
                   helper.make_node("Sin", ["d"], ["e"], name="sin"),
                   helper.make_node("Clip", ["e", "", "high"], ["f"], name="clip_max"),
                   helper.make_node("Cos", ["f"], ["g"], name="cos"),
                   helper.make_node("Clip", ["g", "x"], ["h"], name="clip_by_tensor"),  # not a constant bound
                   helper.make_node("Exp", ["h"], ["i"], name="exp"),
                   helper.make_node("Relu", ["i"], ["j"], name="relu2"), helper.make_node("Add", ["i", "j"], ["y"], name="add"),
                   initializers=[low, high])
    clamps = {n.name: n.clamp for n in candidate_nodes(model)}
    assert clamps == {"neg": (0.0, None), "relu": None, "abs": (0.0, 6.0), "clip6": None, "sin": (None, 6.0),
                      "clip_max": None, "cos": None, "clip_by_tensor": None,
                      "exp": None,  # also used by the Add: its negative values matter
                      "relu2": None, "add": None}
    old = _chain(helper.make_node("Neg", ["x"], ["a"], name="neg"),
                 helper.make_node("Clip", ["a"], ["y"], name="clip", min=-1.0, max=1.0), opset=10)
    assert {n.name: n.clamp for n in candidate_nodes(old)} == {"neg": (-1.0, 1.0), "clip": None}


def test_ort_int8_folds_relu_into_the_conv_before_it_and_the_comparison_allows_for_it(tmp_path):
    """ONNX Runtime's QDQ quantizer drops the Relu after a Conv (the quantized range starts at 0), so
    the int8 Conv output has no negatives: compared as they are, cosine was about 0.89 at
    /features/features.2/Conv_output_0 of the default model and every Conv looked broken."""
    from dk.debug.diverge import diverge
    from dk.pipeline import BuildOptions

    report = diverge([("ort", "fp32"), ("ort", "int8")], BuildOptions(out=tmp_path / "a")).to_json()
    assert report["status"] == "no-divergence"
    checks = report["steps"][0]["checks"]
    conv = "/features/features.2/Conv_output_0"
    assert conv in checks and checks[conv]["clamp"] == [0.0, None]
    assert checks[conv]["passed"] and checks[conv]["cosine"] > 0.99  # 0.99997 with VNNI; 0.89 unclamped


def test_candidate_inputs_skip_shape_paths_and_name_the_nearest_candidates():
    from onnx import TensorProto, helper, numpy_helper

    from dk.debug.graph import candidate_inputs

    # r = Reshape(b, Shape(a)): r is computed from b; a reaches it only through an int64 shape
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="A"), helper.make_node("Neg", ["x"], ["b"], name="B"),
         helper.make_node("Shape", ["a"], ["shape"], name="S"),
         helper.make_node("Reshape", ["b", "shape"], ["r"], name="R"),
         helper.make_node("Add", ["r", "a"], ["y"], name="Y")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [numpy_helper.from_array(np.ones(1), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    nodes = candidate_nodes(model)
    assert [n.name for n in nodes] == ["A", "B", "R", "Y"]
    assert candidate_inputs(model, nodes) == {"a": (), "b": (), "r": ("b",), "y": ("a", "r")}
