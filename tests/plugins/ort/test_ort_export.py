"""ort export: optimised ONNX artifact, manifest, cache, shapes, fp16 and .ort outputs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import onnx
import onnxruntime
import pytest

from dk import api
from dk.artifacts import sha256_file
from dk.default_model import ONNX_PATH, load_split
from dk.errors import DkError, InputError, ModelError
from dk.sources import parse_model_arg, source_tag
from dk.specs import ExportRequest

DEFAULT = parse_model_arg(None)


def test_default_export_writes_optimised_onnx_and_manifest(fp32_artifact):
    m = fp32_artifact.manifest
    assert fp32_artifact.path.name == "v1.0_digitsnet_default_8x8_fp32"
    assert [f["name"] for f in m["files"]] == [
        "v1.0_digitsnet_default_8x8_fp32.onnx", "v1.0_digitsnet_default_8x8_fp32.ort"]
    assert (m["plugin"], m["format"], m["precision"]) == ("ort", "onnx", "fp32")
    assert m["inputs"] == [{"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "logits", "shape": ["batch", 10], "dtype": "float32"}]
    assert m["source"] == {"kind": "default", "location": "dk:digitsnet", "sha256": sha256_file(ONNX_PATH)}
    assert m["tool_versions"] == {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}
    created = dt.datetime.fromisoformat(m["created_at"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
    assert m["options"]["level"] == "extended" and m["options"]["format"] == "ort"
    assert m["model"]["name"] == "digitsnet" and m["model"]["task"] == "classification"
    # Extended optimisation fused Conv+Relu into ORT's FusedConv.
    ops = [n.op_type for n in onnx.load(str(fp32_artifact.model_file)).graph.node]
    assert "FusedConv" in ops and "Relu" not in ops
    assert m["extra"]["op_domains"] == ["com.microsoft"]


def test_export_is_reused_from_cache_and_rebuilt_on_option_change(tmp_path):
    first = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path))
    again = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path))
    assert not first.reused and again.reused
    assert again.manifest["cache_key"] == first.manifest["cache_key"]
    basic = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, options={"level": "basic"}))
    assert not basic.reused and basic.path == first.path
    assert basic.manifest["options"]["level"] == "basic"
    assert basic.manifest["cache_key"] != first.manifest["cache_key"]
    ops = [n.op_type for n in onnx.load(str(basic.model_file)).graph.node]
    assert "FusedConv" not in ops and "Relu" in ops  # basic level does not fuse activations


def test_corrupt_cached_artifact_is_rebuilt(tmp_path):
    first = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path))
    first.model_file.write_bytes(first.model_file.read_bytes()[:100])
    again = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path))
    assert not again.reused
    assert sha256_file(again.model_file) == first.manifest["files"][0]["sha256"]


def test_static_shapes_export_rejects_other_batch_sizes(tmp_path):
    request = ExportRequest(source=DEFAULT, out_dir=tmp_path, shapes={"input": (4, 1, 8, 8)}, dynamic_batch=False)
    artifact = api.export("ort", request)
    assert artifact.manifest["inputs"][0]["shape"] == [4, 1, 8, 8]
    assert artifact.manifest["outputs"][0]["shape"] == [4, 10]
    x, _ = load_split("eval")
    with api.load_engine("ort", artifact) as engine:
        assert engine.infer({"input": x[:4]})["logits"].shape == (4, 10)
        with pytest.raises(InputError, match="axis 0 must be 4"):
            engine.infer({"input": x[:2]})


def test_no_dynamic_batch_fixes_batch_to_one(tmp_path):
    artifact = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, dynamic_batch=False))
    assert artifact.manifest["inputs"][0]["shape"] == [1, 1, 8, 8]


def test_min_max_shapes_are_recorded_and_enforced(tmp_path):
    request = ExportRequest(source=DEFAULT, out_dir=tmp_path, min_shapes={"input": (1, 1, 8, 8)},
                            max_shapes={"input": (8, 1, 8, 8)})
    artifact = api.export("ort", request)
    spec = artifact.manifest["inputs"][0]
    assert (spec["min_shape"], spec["max_shape"]) == ([1, 1, 8, 8], [8, 1, 8, 8])
    x, _ = load_split("eval")
    with api.load_engine("ort", artifact) as engine:
        assert engine.infer({"input": x[:8]})["logits"].shape == (8, 10)
        with pytest.raises(InputError, match=r"is 9, outside the range 1\.\.8"):
            engine.infer({"input": x[:9]})


def test_max_shapes_of_unknown_input_is_refused(tmp_path):
    request = ExportRequest(source=DEFAULT, out_dir=tmp_path, max_shapes={"image": (8, 1, 8, 8)})
    with pytest.raises(ModelError, match="names input 'image'"):
        api.export("ort", request)


def test_ort_flatbuffer_runs_like_the_onnx(fp32_artifact):
    x, _ = load_split("eval")
    with api.load_engine("ort", fp32_artifact) as a, api.load_engine("ort", fp32_artifact, options={"format": "ort"}) as b:
        np.testing.assert_allclose(a.infer({"input": x})["logits"], b.infer({"input": x})["logits"],
                                   rtol=1e-5, atol=1e-5)


def test_fp16_export_keeps_float32_io_and_accuracy(tmp_path, fp32_artifact):
    artifact = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, precision="fp16"))
    assert artifact.name == "v1.0_digitsnet_default_8x8_fp16" and artifact.precision == "fp16"
    model = onnx.load(str(artifact.model_file))
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert artifact.manifest["inputs"][0]["dtype"] == "float32"
    x, y = load_split("eval")
    with api.load_engine("ort", artifact) as half, api.load_engine("ort", fp32_artifact) as full:
        out16, out32 = half.infer({"input": x})["logits"], full.infer({"input": x})["logits"]
    assert out16.dtype == np.float32
    np.testing.assert_allclose(out16, out32, atol=0.05)
    assert (out16.argmax(1) == y).mean() >= (out32.argmax(1) == y).mean() - 0.01


def test_int8_export_points_to_quantize(tmp_path):
    with pytest.raises(DkError, match="dk run quantize --plugin ort"):
        api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, precision="int8"))


def test_unknown_option_and_level_are_refused(tmp_path):
    with pytest.raises(DkError, match="unknown ort export option.*speed"):
        api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, options={"speed": "max"}))
    with pytest.raises(DkError, match="level=turbo is not one of"):
        api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, options={"level": "turbo"}))


def test_export_of_onnx_file_uses_its_name(tmp_path):
    source = tmp_path / "My Model.onnx"
    source.write_bytes(ONNX_PATH.read_bytes())
    artifact = api.export("ort", ExportRequest(source=parse_model_arg(str(source)), out_dir=tmp_path / "out"))
    assert artifact.name == f"v1.0_my-model-{source_tag(parse_model_arg(str(source)))}_default_8x8_fp32"
    assert artifact.manifest["source"]["kind"] == "onnx"


def test_options_of_other_stages_pass_through_export(tmp_path):
    """``dk run bench -o threads=1`` hands the load option to export and quantize too."""
    artifact = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path, options={"threads": "1"}))
    assert artifact.manifest["precision"] == "fp32"
