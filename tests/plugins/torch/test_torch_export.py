"""torch -> ONNX export of the default model: naming, parity, caching, dynamic axes, atomicity."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from dk import api
from dk.artifacts import sha256_file
from dk.default_model import WEIGHTS_PATH, load_split
from dk.errors import DkError, InputError, MissingDependency, ModelError
from dk.specs import ExportRequest, ModelSource
from dk.testing.tolerances import assert_outputs_close
from dk_torch.models import digits_net

ort = pytest.importorskip(
    "onnxruntime", reason="ONNX parity checks need onnxruntime: pip install onnxruntime"
)

NAME = "v1.0_digitsnet_default_8x8_fp32"


def run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def test_default_export_writes_manifest_and_onnx_under_conventional_name(export_default, tmp_path):
    artifact = export_default()

    assert artifact.path == tmp_path / "out" / "torch" / NAME
    assert sorted(p.name for p in artifact.path.iterdir()) == ["dk.json", f"{NAME}.onnx"]
    manifest = json.loads((artifact.path / "dk.json").read_text())
    assert (manifest["plugin"], manifest["format"], manifest["precision"]) == (
        "torch",
        "onnx",
        "fp32",
    )
    assert manifest["inputs"] == [
        {"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}
    ]
    assert manifest["outputs"] == [{"name": "logits", "shape": ["batch", 10], "dtype": "float32"}]
    assert manifest["source"] == {
        "kind": "default",
        "location": "dk:digitsnet",
        "sha256": sha256_file(WEIGHTS_PATH),
    }
    assert manifest["tool_versions"] == {"torch": torch.__version__, "onnx": onnx.__version__}
    assert (
        manifest["model"]["name"] == "digitsnet" and manifest["model"]["task"] == "classification"
    )
    assert manifest["extra"]["torch_source"]["kind"] == "default"


def test_onnx_output_equals_torch_output(export_default):
    artifact = export_default()
    x, _ = load_split("eval")
    with torch.inference_mode():
        expected = digits_net()(torch.from_numpy(x)).numpy()

    assert_outputs_close(
        run_onnx(artifact.model_file, {"input": x}), expected, what="ONNX Runtime on the export"
    )


def test_second_export_is_reused_and_changing_opset_rebuilds(export_default):
    first = export_default()
    mtime = first.model_file.stat().st_mtime_ns

    again = export_default()
    assert again.reused and again.path == first.path
    assert again.model_file.stat().st_mtime_ns == mtime

    rebuilt = export_default(opset=16)
    assert not rebuilt.reused and rebuilt.path == first.path
    assert rebuilt.manifest["options"]["opset"] == 16
    opsets = {o.domain: o.version for o in onnx.load(str(rebuilt.model_file)).opset_import}
    assert opsets[""] == 16


@pytest.mark.parametrize("batch", [1, 7])
def test_dynamic_batch_export_runs_any_batch(export_default, batch):
    artifact = export_default()
    x = load_split("eval")[0][:batch]

    onnx_out = run_onnx(artifact.model_file, {"input": x})
    with api.load_engine("torch", artifact) as engine:
        torch_out = engine.infer({"input": x})["logits"]

    assert onnx_out.shape == torch_out.shape == (batch, 10)
    assert_outputs_close(onnx_out, torch_out, what="ONNX Runtime against the torch engine")


def test_static_export_fixes_batch_and_engine_rejects_batch_2(export_default):
    artifact = export_default(dynamic_batch=False)

    assert artifact.inputs[0].shape == (1, 1, 8, 8)
    assert artifact.outputs[0].shape == (1, 10)
    with api.load_engine("torch", artifact) as engine:
        assert engine.infer({"input": np.zeros((1, 1, 8, 8), np.float32)})["logits"].shape == (
            1,
            10,
        )
        with pytest.raises(InputError, match=r"axis 0 must be 1"):
            engine.infer({"input": np.zeros((2, 1, 8, 8), np.float32)})


def test_dynamic_hw_names_height_and_width_axes(export_default, tmp_path):
    artifact = export_default(dynamic_hw=True)

    assert artifact.path == tmp_path / "out" / "torch" / "v1.0_digitsnet_default_any_fp32"
    assert artifact.inputs[0].shape == ("batch", 1, "height", "width")


def test_min_and_max_shapes_bound_the_engine_batch(export_default):
    artifact = export_default(
        min_shapes={"input": (1, 1, 8, 8)}, max_shapes={"input": (4, 1, 8, 8)}
    )

    assert artifact.manifest["inputs"][0]["max_shape"] == [4, 1, 8, 8]
    with api.load_engine("torch", artifact) as engine:
        assert engine.infer({"input": np.zeros((4, 1, 8, 8), np.float32)})["logits"].shape == (
            4,
            10,
        )
        with pytest.raises(InputError, match=r"is 5, outside the range 1\.\.4"):
            engine.infer({"input": np.zeros((5, 1, 8, 8), np.float32)})


@pytest.mark.parametrize("precision, message", [
    ("fp16", "fp32 ONNX only, not fp16.*--plugin ort"),  # the engine runs fp16 (cuda); export does not
    ("int8", "plugin 'torch' has no int8 precision.*plugins with int8: .*ort"),  # dk.api.check_precision
])
def test_non_fp32_export_is_refused_pointing_to_ort(export_default, tmp_path, precision, message):
    with pytest.raises(DkError, match=message):
        export_default(precision=precision)
    assert not (tmp_path / "out").exists()


def test_wrong_shapes_for_the_default_model_are_refused(export_default):
    with pytest.raises(
        ModelError, match=r"one input 'input' of rank 4.*got --shapes for image:1x8x8"
    ):
        export_default(shapes={"image": (1, 8, 8)})


def test_onnx_source_is_refused_with_a_pointer_to_onnx_plugins(tmp_path):
    request = ExportRequest(source=ModelSource("onnx", str(tmp_path / "m.onnx")), out_dir=tmp_path)
    with pytest.raises(
        ModelError, match=r"not a 'onnx' source; use an ONNX plugin such as --plugin ort"
    ):
        api.export("torch", request)


def test_simplify_without_onnxslim_names_the_install(export_default, tmp_path):
    for name in ("onnxslim", "onnxsim"):
        try:
            __import__(name)
            pytest.skip(f"{name} is installed")
        except ImportError:
            pass
    with pytest.raises(MissingDependency, match=r"pip install onnxslim"):
        export_default(simplify=True)
    assert not (tmp_path / "out").exists()


def test_interrupted_export_leaves_no_artifact_and_no_temp_folder(
    export_default, tmp_path, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_default()

    assert not (tmp_path / "out").exists()


def test_failing_torch_export_is_one_model_error_line(export_default, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::foo\nlong traceback text")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(
        ModelError, match=r"^torch\.onnx\.export failed for dk:digitsnet: unsupported operator"
    ) as info:
        export_default()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("opset", [5, 0, -1, 99])
def test_an_opset_the_torch_exporter_does_not_write_is_one_usage_error_before_loading(export_default, opset,
                                                                                      tmp_path):
    from dk.errors import UsageError
    from dk_torch.export import exporter_opset_range

    low, high = exporter_opset_range()
    with pytest.raises(UsageError) as info:
        export_default(opset=opset)
    assert str(info.value) == (f"--opset {opset}: the torch exporter (torch {torch.__version__}) writes opsets "
                               f"{low} to {high}; give one of those (default 17)")
    assert not (tmp_path / "out").exists()


def test_the_lowest_opset_the_exporter_writes_exports_without_warnings(export_default, recwarn):
    from dk_torch.export import exporter_opset_range

    low, _ = exporter_opset_range()
    artifact = export_default(opset=low)

    assert {o.domain: o.version for o in onnx.load(str(artifact.model_file)).opset_import}[""] == low
    assert artifact.manifest["options"]["opset"] == low
    assert [str(w.message) for w in recwarn] == []
