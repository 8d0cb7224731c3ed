"""OrtEngine: parity with a bare InferenceSession, foreign ONNX artifacts, clear errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from dk import api
from dk.default_model import ONNX_PATH, load_split
from dk.errors import DeviceError, DkError, InputError, ModelError
from dk.sources import parse_model_arg
from dk.specs import ExportRequest


def test_engine_outputs_equal_a_bare_session_on_the_default_onnx(fp32_artifact):
    x, _ = load_split("eval")
    reference = onnxruntime.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])
    expected = reference.run(None, {"input": x})[0]
    with api.load_engine("ort", fp32_artifact, options={"threads": "1", "spin": "0"}) as engine:
        outputs = engine.infer({"input": x})
        assert list(outputs) == ["logits"]
        np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-5, atol=1e-5)
        assert engine.describe()["providers"] == ["CPUExecutionProvider"]
        assert [s.shape for s in engine.inputs] == [("batch", 1, 8, 8)]


def test_a_cpu_session_runs_through_the_compiled_method_with_the_same_answers(fp32_artifact):
    from dk_ort.engine import compiled_run

    x, _ = load_split("eval")
    with api.load_engine("ort", fp32_artifact) as engine:
        direct = compiled_run(engine.session)
        assert direct is not None  # a CPU-only session skips the Python wrapper
        public = engine.session.run(["logits"], {"input": x})[0]
        np.testing.assert_array_equal(direct(["logits"], {"input": x})[0], public)
        np.testing.assert_array_equal(engine.infer({"input": x})["logits"], public)


def test_engine_runs_another_plugins_onnx_artifact(tmp_path, foreign_onnx_artifact):
    src = tmp_path / "src"
    src.mkdir()
    (src / "digits.onnx").write_bytes(ONNX_PATH.read_bytes())
    artifact = foreign_onnx_artifact(tmp_path / "out", src / "digits.onnx")
    assert artifact.plugin == "torch"
    x, _ = load_split("eval")
    expected = onnxruntime.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    with api.load_engine("ort", artifact) as engine:
        np.testing.assert_array_equal(engine.infer({"input": x})["logits"], expected[0])


def test_closed_engine_says_so(fp32_artifact):
    engine = api.load_engine("ort", fp32_artifact)
    engine.close()
    engine.close()
    with pytest.raises(DkError, match="closed"):
        engine.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})


# -- bad models ---------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_truncated_onnx_source_is_a_model_error(tmp_path, keep):
    data = ONNX_PATH.read_bytes()
    (tmp_path / "digits.onnx").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelError, match="not a valid ONNX"):
        api.export("ort", ExportRequest(source=parse_model_arg(str(tmp_path / "digits.onnx")), out_dir=tmp_path))


@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_truncated_artifact_model_is_a_model_error(tmp_path, foreign_onnx_artifact, keep):
    src = tmp_path / "src"
    src.mkdir()
    data = ONNX_PATH.read_bytes()
    (src / "digits.onnx").write_bytes(data[: int(len(data) * keep)])
    artifact = foreign_onnx_artifact(tmp_path / "out", src / "digits.onnx")
    with pytest.raises(ModelError, match="not a valid ONNX"):
        api.load_engine("ort", artifact)


def test_corrupt_exported_model_file_is_a_model_error(tmp_path):
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path))
    data = bytearray(artifact.model_file.read_bytes())
    artifact.model_file.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelError) as info:
        api.load_engine("ort", artifact)
    assert "\n" not in str(info.value)


def test_text_file_named_onnx_is_a_model_error(tmp_path, foreign_onnx_artifact):
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.onnx").write_text("definitely not a protobuf\n" * 20)
    with pytest.raises(ModelError, match="not a valid ONNX"):
        api.export("ort", ExportRequest(source=parse_model_arg(str(src / "model.onnx")), out_dir=tmp_path))
    with pytest.raises(ModelError, match="not a valid ONNX"):
        api.load_engine("ort", foreign_onnx_artifact(tmp_path / "out", src / "model.onnx"))


def _model_with_external_data(folder, location):
    """y = x + w where w's bytes live in external data at ``location``."""
    folder.mkdir(parents=True, exist_ok=True)
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        weight.external_data.add(key=key, value=value)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight],
    )
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    (folder / location).resolve().write_bytes(np.arange(4, dtype=np.float32).tobytes())
    return path


def test_external_data_outside_the_folder_is_refused(tmp_path, foreign_onnx_artifact):
    path = _model_with_external_data(tmp_path / "src" / "model", "../outside.bin")
    with pytest.raises(ModelError, match="points outside"):
        api.export("ort", ExportRequest(source=parse_model_arg(str(path)), out_dir=tmp_path / "out"))
    artifact = foreign_onnx_artifact(tmp_path / "out", path)
    (artifact.path.parent / "outside.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    with pytest.raises(ModelError, match="points outside"):
        api.load_engine("ort", artifact)


def test_external_data_inside_the_folder_is_read(tmp_path):
    path = _model_with_external_data(tmp_path / "src", "weights.bin")
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(str(path)), out_dir=tmp_path / "out"))
    with api.load_engine("ort", artifact) as engine:
        out = engine.infer({"x": np.ones(4, np.float32)})["y"]
    np.testing.assert_array_equal(out, [1, 2, 3, 4])


# -- bad inputs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(fp32_artifact):
    with api.load_engine("ort", fp32_artifact) as e:
        yield e


def test_wrong_rank_is_an_input_error(engine):
    with pytest.raises(InputError, match="rank 3"):
        engine.infer({"input": np.zeros((1, 8, 8), np.float32)})


def test_wrong_dtype_is_an_input_error(engine):
    with pytest.raises(InputError, match="dtype float64, expected float32"):
        engine.infer({"input": np.zeros((1, 1, 8, 8))})


def test_missing_and_unknown_inputs_are_input_errors(engine):
    with pytest.raises(InputError, match="missing input.*'input'"):
        engine.infer({})
    with pytest.raises(InputError, match="unknown input.*'image'"):
        engine.infer({"image": np.zeros((1, 1, 8, 8), np.float32)})


def test_wrong_fixed_dim_is_an_input_error(engine):
    with pytest.raises(InputError, match="axis 2 must be 8"):
        engine.infer({"input": np.zeros((1, 1, 9, 8), np.float32)})


# -- devices and options ------------------------------------------------------------------


@pytest.mark.skipif("CUDAExecutionProvider" in onnxruntime.get_available_providers(), reason="CUDA EP present")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_on_cpu_only_onnxruntime_names_onnxruntime_gpu(fp32_artifact, device):
    with pytest.raises(DeviceError, match="pip install onnxruntime-gpu"):
        api.load_engine("ort", fp32_artifact, device=device)


@pytest.mark.skipif("TensorrtExecutionProvider" in onnxruntime.get_available_providers(), reason="TRT EP present")
def test_tensorrt_on_cpu_only_onnxruntime_is_a_device_error(fp32_artifact):
    with pytest.raises(DeviceError, match="TensorrtExecutionProvider"):
        api.load_engine("ort", fp32_artifact, device="tensorrt")


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cpu:0"])
def test_unknown_device_lists_valid_ones(fp32_artifact, device):
    with pytest.raises(DeviceError, match="valid devices: cpu, cuda, cuda:N, tensorrt"):
        api.load_engine("ort", fp32_artifact, device=device)


def test_bad_runtime_options_are_refused(fp32_artifact):
    with pytest.raises(DkError, match="threads=many must be a whole number"):
        api.load_engine("ort", fp32_artifact, options={"threads": "many"})
    with pytest.raises(DkError, match="unknown ort load option"):
        api.load_engine("ort", fp32_artifact, options={"fast": "1"})


def test_loading_ort_format_needs_an_ort_file(tmp_path):
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path))
    with pytest.raises(ModelError, match="has no .ort file"):
        api.load_engine("ort", artifact, options={"format": "ort"})
