"""openvino export: IR files and manifest, fp16 weights, static/dynamic/bounded batch, sources
(ONNX file, torch model, an ort artifact with fused ops), cache and atomic writes."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import openvino
import pytest
from dk import api
from dk.artifacts import sha256_file
from dk.default_model import ONNX_PATH, load_split
from dk.errors import DkError, InputError, ModelError
from dk.sources import parse_model_arg, source_tag
from dk.specs import ExportRequest

DEFAULT = parse_model_arg(None)


def _run(artifact, x, **options):
    """The one output of ``artifact`` for input ``x``."""
    with api.load_engine("openvino", artifact, "CPU", options) as engine:
        (logits,) = engine.infer({"input": x}).values()
        return logits


def test_default_export_writes_ir_files_and_manifest(ov_fp32):
    m = ov_fp32.manifest
    assert ov_fp32.path.name == "v1.0_digitsnet_default_8x8_fp32"
    assert [f["name"] for f in m["files"]] == [
        "v1.0_digitsnet_default_8x8_fp32.xml", "v1.0_digitsnet_default_8x8_fp32.bin"]
    assert (m["plugin"], m["format"], m["precision"]) == ("openvino", "openvino-ir", "fp32")
    assert m["inputs"] == [{"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "logits", "shape": ["batch", 10], "dtype": "float32"}]
    assert m["source"] == {"kind": "default", "location": "dk:digitsnet", "sha256": sha256_file(ONNX_PATH)}
    assert m["tool_versions"] == {"openvino": openvino.get_version()}
    model = openvino.Core().read_model(str(ov_fp32.model_file))
    assert str(model.inputs[0].get_partial_shape()) == "[?,1,8,8]"


def test_fp16_export_halves_the_weights_and_keeps_accuracy(ov_fp32, ov_artifacts_dir):
    fp16 = api.export("openvino", ExportRequest(source=DEFAULT, out_dir=ov_artifacts_dir, precision="fp16"))
    fp32_bin, fp16_bin = (a.path / a.manifest["files"][1]["name"] for a in (ov_fp32, fp16))
    assert 0.45 < fp16_bin.stat().st_size / fp32_bin.stat().st_size < 0.55
    consts = openvino.Core().read_model(str(fp16.model_file)).get_ops()
    assert any(op.get_type_name() == "Constant" and op.get_element_type() == openvino.Type.f16 for op in consts)
    x, y = load_split("eval")
    logits = _run(fp16, x)
    assert logits.dtype == np.float32  # fp16 weights, fp32 inputs and outputs
    np.testing.assert_allclose(logits, _run(ov_fp32, x), atol=2e-2)
    assert np.mean(logits.argmax(1) == y) >= 0.97


def test_static_export_fixes_the_batch(tmp_path, ov_fp32):
    static = api.export("openvino", ExportRequest(source=DEFAULT, out_dir=tmp_path, dynamic_batch=False,
                                                  shapes={"input": (4, 1, 8, 8)}))
    assert static.manifest["inputs"][0]["shape"] == [4, 1, 8, 8]
    x = load_split("eval")[0]
    np.testing.assert_allclose(_run(static, x[:4]), _run(ov_fp32, x[:4]), rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match=r"axis 0 must be 4"):
        _run(static, x[:3])


def test_min_max_shapes_bound_the_dynamic_batch(tmp_path):
    request = ExportRequest(source=DEFAULT, out_dir=tmp_path, min_shapes={"input": (1, 1, 8, 8)},
                            max_shapes={"input": (8, 1, 8, 8)})
    bounded = api.export("openvino", request)
    assert bounded.manifest["inputs"][0]["min_shape"] == [1, 1, 8, 8]
    assert bounded.manifest["inputs"][0]["max_shape"] == [8, 1, 8, 8]
    x = load_split("eval")[0]
    assert _run(bounded, x[:8]).shape == (8, 10)
    with pytest.raises(InputError, match="outside the range 1..8"):
        _run(bounded, x[:9])


@pytest.mark.parametrize("shapes, message", [
    ({"image": (1, 1, 8, 8)}, "names input 'image'"),
    ({"input": (1, 8, 8)}, "rank 3"),
    ({"input": (1, 3, 8, 8)}, "fixes it to 1"),
])
def test_shapes_that_do_not_fit_the_model_raise_model_error(tmp_path, shapes, message):
    with pytest.raises(ModelError, match=message):
        api.export("openvino", ExportRequest(source=DEFAULT, out_dir=tmp_path, shapes=shapes))
    assert not (tmp_path / "openvino").exists()


def test_export_from_an_onnx_file_names_the_artifact_after_it(tmp_path):
    path = tmp_path / "my_digits.onnx"
    shutil.copy(ONNX_PATH, path)
    artifact = api.export("openvino", ExportRequest(source=parse_model_arg(str(path)), out_dir=tmp_path / "out"))
    assert artifact.path.name == f"v1.0_my-digits-{source_tag(parse_model_arg(str(path)))}_default_8x8_fp32"
    assert artifact.manifest["source"]["kind"] == "onnx"
    x = load_split("eval")[0][:16]
    from onnx.reference import ReferenceEvaluator

    want = ReferenceEvaluator(onnx.load(str(path))).run(None, {"input": x})[0]
    np.testing.assert_allclose(_run(artifact, x), want, rtol=1e-4, atol=1e-4)


def test_export_from_a_torch_source_goes_through_the_torch_plugin(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not installed: no torch sources")
    from dk_torch.models import digits_net

    source = parse_model_arg("dk_torch.models:digits_net")
    request = ExportRequest(source=source, out_dir=tmp_path, shapes={"input": (1, 1, 8, 8)})
    artifact = api.export("openvino", request)
    assert artifact.manifest["source"]["kind"] == "torch-callable"
    assert (tmp_path / "torch").is_dir()  # the ONNX the torch plugin exported on the way
    x = load_split("eval")[0][:5]
    with torch.no_grad():
        want = digits_net()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(artifact, x), want, rtol=1e-4, atol=1e-4)


def test_ort_artifact_with_fused_ops_is_exported_from_its_recorded_source(tmp_path, ov_fp32):
    pytest.importorskip("onnxruntime", reason="needs the ort plugin's onnxruntime")
    ort = api.export("ort", ExportRequest(source=DEFAULT, out_dir=tmp_path))
    assert ort.manifest["extra"]["op_domains"] == ["com.microsoft"]
    artifact = api.export("openvino", ExportRequest(source=parse_model_arg(str(ort.path)), out_dir=tmp_path))
    assert artifact.manifest["source"]["kind"] == "artifact"
    x = load_split("eval")[0][:16]
    np.testing.assert_allclose(_run(artifact, x), _run(ov_fp32, x), rtol=1e-5, atol=1e-5)


def test_fused_ort_artifact_whose_source_changed_raises_model_error(tmp_path):
    pytest.importorskip("onnxruntime", reason="needs the ort plugin's onnxruntime")
    path = tmp_path / "model.onnx"
    shutil.copy(ONNX_PATH, path)
    ort = api.export("ort", ExportRequest(source=parse_model_arg(str(path)), out_dir=tmp_path))
    changed = onnx.load(str(path))
    changed.doc_string = "edited since the ort export"
    onnx.save(changed, str(path))
    with pytest.raises(ModelError, match="fused ops .* is gone or changed"):
        api.export("openvino", ExportRequest(source=parse_model_arg(str(ort.path)), out_dir=tmp_path))


def test_reexport_of_an_fp32_ir_artifact_to_fp16(ov_fp32, tmp_path):
    fp16 = api.export("openvino", ExportRequest(source=parse_model_arg(str(ov_fp32.path)), out_dir=tmp_path,
                                                precision="fp16"))
    assert fp16.precision == "fp16" and fp16.manifest["source"]["kind"] == "artifact"
    x = load_split("eval")[0][:16]
    np.testing.assert_allclose(_run(fp16, x), _run(ov_fp32, x), atol=2e-2)


def test_load_options_do_not_change_the_cache_key(ov_fp32, ov_artifacts_dir):
    again = api.export("openvino", ExportRequest(source=DEFAULT, out_dir=ov_artifacts_dir, device="GPU",
                                                 options={"mode": "throughput", "threads": "1"}))
    assert again.reused and again.path == ov_fp32.path


@pytest.mark.parametrize("precision, options, message", [
    ("int8", {}, "dk run quantize --plugin openvino"),
    ("fp32", {"colour": "blue"}, "unknown openvino option.*colour.*mode: latency"),
])
def test_bad_export_requests_raise_one_line_errors(tmp_path, precision, options, message):
    with pytest.raises(DkError, match=message) as info:
        api.export("openvino", ExportRequest(source=DEFAULT, out_dir=tmp_path, precision=precision, options=options))
    assert "\n" not in str(info.value)


def test_failed_build_leaves_nothing_half_written(tmp_path, monkeypatch):
    import dk_openvino.export

    def fail(model, folder, name, compress_to_fp16):
        (folder / f"{name}.xml").write_text("<half")
        raise ModelError("disk full")

    monkeypatch.setattr(dk_openvino.export, "save_ir", fail)
    with pytest.raises(ModelError, match="disk full"):
        api.export("openvino", ExportRequest(source=DEFAULT, out_dir=tmp_path))
    assert not (tmp_path / "openvino").exists()
