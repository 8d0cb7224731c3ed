"""Safe ONNX reading: missing, non-ONNX, truncated, external data outside the folder."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dk.default_model import ONNX_PATH
from dk.errors import ModelError
from dk.onnx_io import io_specs, load_onnx, set_input_shapes


def test_default_model_specs_have_a_dynamic_batch():
    inputs, outputs = io_specs(load_onnx(ONNX_PATH))
    assert [(s.name, s.shape, s.dtype) for s in inputs] == [("input", ("batch", 1, 8, 8), "float32")]
    assert [(s.name, s.shape) for s in outputs] == [("logits", ("batch", 10))]


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_onnx(tmp_path / "nope.onnx")


def test_text_file_is_not_onnx(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a model\n" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX"):
        load_onnx(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file_is_refused(tmp_path, keep):
    data = ONNX_PATH.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="not a valid ONNX"):
        load_onnx(path)


def _model_with_external_weight(tmp_path, location: str):
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight],
    )
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "m.onnx"
    onnx.save(helper.make_model(graph), path)
    return path


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "sub/../../x.bin"])
def test_external_data_outside_the_model_folder_is_refused(tmp_path, location):
    (tmp_path / "outside.bin").write_bytes(np.ones((2, 2), np.float32).tobytes())
    path = _model_with_external_weight(tmp_path, location)
    with pytest.raises(ModelError, match="points outside the model's folder"):
        load_onnx(path)


def test_external_data_inside_the_folder_is_read(tmp_path):
    path = _model_with_external_weight(tmp_path, "w.bin")
    (path.parent / "w.bin").write_bytes(np.full((2, 2), 3, np.float32).tobytes())
    model = load_onnx(path)
    assert numpy_helper.to_array(model.graph.initializer[0]).tolist() == [[3, 3], [3, 3]]


@pytest.mark.parametrize("load_external_data", [True, False])
def test_a_missing_external_data_file_is_named(tmp_path, load_external_data):
    path = _model_with_external_weight(tmp_path, "w.bin")
    with pytest.raises(ModelError) as caught:
        load_onnx(path, load_external_data=load_external_data)
    assert str(caught.value) == (f"the model's external data file {path.parent / 'w.bin'} is missing (tensor 'w' is "
                                 "stored there); put it beside the model, as it was saved")


@pytest.mark.parametrize("plugin", ["ort", "openvino"])
def test_a_missing_external_data_file_is_one_error_line_from_the_cli(tmp_path, plugin):
    pytest.importorskip({"ort": "onnxruntime", "openvino": "openvino"}[plugin])
    from tests.conftest import run_dk

    path = _model_with_external_weight(tmp_path, "w.bin")
    proc = run_dk("run", "export", "--plugin", plugin, "--model", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: the model's external data file {path.parent / 'w.bin'} is missing "
                                   "(tensor 'w' is stored there); put it beside the model, as it was saved")
    assert not (tmp_path / "out").exists()


def test_set_input_shapes_fixes_dims_and_reinfers_outputs():
    model = set_input_shapes(load_onnx(ONNX_PATH), {"input": (4, 1, 8, 8)}, dynamic_batch=False)
    inputs, outputs = io_specs(model)
    assert inputs[0].shape == (4, 1, 8, 8) and outputs[0].shape == (4, 10)


def test_set_input_shapes_keeps_a_dynamic_batch_unless_static():
    model = set_input_shapes(load_onnx(ONNX_PATH), {"input": (4, 1, 8, 8)}, dynamic_batch=True)
    inputs, outputs = io_specs(model)
    assert inputs[0].shape == ("batch", 1, 8, 8) and outputs[0].shape[1:] == (10,)


@pytest.mark.parametrize("shapes, message", [
    ({"image": (1, 1, 8, 8)}, "names input 'image'"),
    ({"input": (1, 8, 8)}, "rank 3"),
    ({"input": (1, 3, 8, 8)}, "axis 1 to 3, but the model fixes it to 1"),
])
def test_set_input_shapes_rejects_mismatches(shapes, message):
    with pytest.raises(ModelError, match=message):
        set_input_shapes(load_onnx(ONNX_PATH), shapes, dynamic_batch=True)


def fused_op_model() -> onnx.ModelProto:
    """``x`` [batch, 4] -> com.microsoft FusedGemm -> ``y`` [batch, 3]: onnx cannot infer its shape."""
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    node = helper.make_node("FusedGemm", ["x", "w"], ["y"], domain="com.microsoft", activation="Relu")
    graph = helper.make_graph([node], "fused", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


@pytest.mark.parametrize("dynamic_batch, expected", [(False, (4, 3)), (True, ("batch", 3))])
def test_outputs_after_an_op_onnx_cannot_infer_keep_their_declared_shape(dynamic_batch, expected):
    model = set_input_shapes(fused_op_model(), {"x": (4, 4)}, dynamic_batch=dynamic_batch)

    _, outputs = io_specs(model)
    assert [(s.name, s.shape) for s in outputs] == [("y", expected)]
    onnx.checker.check_model(model)  # an output type without a shape made it invalid


def test_an_ort_optimised_artifact_reexported_at_a_fixed_batch_runs(tmp_path):
    import json

    from tests.conftest import run_dk

    pytest.importorskip("onnxruntime")
    out = str(tmp_path / "out")
    first = run_dk("run", "export", "--plugin", "ort", "-o", "level=all", "--out", out, "--json")
    optimised = json.loads(first.stdout)["artifact"]["path"]
    second = run_dk("run", "export", "--plugin", "ort", "--model", optimised, "--shapes", "input:4x1x8x8", "--static",
                    "--out", out, "--json")
    assert second.returncode == 0, second.stderr
    fixed = json.loads(second.stdout)["artifact"]

    proc = run_dk("run", "infer", "--plugin", "ort", "--artifact", fixed["path"], "--batch", "4", "--json")

    assert proc.returncode == 0, proc.stderr
    assert fixed["outputs"][0]["shape"] == [4, 10]
    assert json.loads(proc.stdout)["outputs"] == {"logits": {"shape": [4, 10], "dtype": "float32"}}
