"""Static, dynamic and bounded exports of one model get distinct folder names (issues 13 and 15),
in the Bonseyes convention ``v1.0_<model>_<variant>_<H>x<W>_<precision>[_<suffix>]``."""

from __future__ import annotations

import pytest

from dk import api
from dk.artifacts import Artifact, batch_tag, model_artifact_name
from dk.sources import parse_model_arg
from dk.specs import ExportRequest, TensorSpec

VARIANTS = {
    "dynamic": ({}, "v1.0_digitsnet_default_8x8_fp32"),
    "static": ({"dynamic_batch": False}, "v1.0_digitsnet_default_8x8_fp32_batch1"),
    "static-4": ({"dynamic_batch": False, "shapes": {"input": (4, 1, 8, 8)}}, "v1.0_digitsnet_default_8x8_fp32_batch4"),
    "bounded": ({"min_shapes": {"input": (1, 1, 8, 8)}, "max_shapes": {"input": (8, 1, 8, 8)}},
                "v1.0_digitsnet_default_8x8_fp32_batch1-8"),
}


def test_batch_tag_tells_dynamic_static_and_bounded_apart():
    assert batch_tag(TensorSpec("x", ("batch", 3, 224, 224))) == ""
    assert batch_tag(TensorSpec("x", (4, 3, 224, 224))) == "batch4"
    assert batch_tag(TensorSpec("x", ("batch", 3, 224, 224), min_shape=(1, 3, 224, 224),
                                max_shape=(16, 3, 224, 224))) == "batch1-16"
    assert batch_tag(TensorSpec("x", ("batch", 3, 224, 224), max_shape=(16, 3, 224, 224))) == "batch-16"
    assert batch_tag(TensorSpec("x", ("batch", 3, 224, 224), min_shape=(2, 3, 224, 224))) == "batch2-"
    spec = TensorSpec("x", (1, 3, 224, 224))
    assert model_artifact_name("resnet18", {}, [spec], "fp16", suffix="dla_disabled") == (
        "v1.0_resnet18_default_224x224_fp16_batch1_dla_disabled")


@pytest.mark.parametrize("plugin", ["ort", "torch", "openvino"])
def test_the_four_exports_of_one_model_live_side_by_side(tmp_path, plugin):
    pytest.importorskip({"ort": "onnxruntime", "torch": "torch", "openvino": "openvino"}[plugin])
    built = {}
    for variant, (fields, name) in VARIANTS.items():
        request = ExportRequest(source=parse_model_arg(None), out_dir=tmp_path, **fields)
        built[variant] = api.export(plugin, request)
        assert built[variant].path.name == name, f"{plugin} {variant}"
    for variant, artifact in built.items():  # nothing replaced another
        reloaded = Artifact.load(artifact.path)
        assert reloaded.manifest["cache_key"] == artifact.manifest["cache_key"], f"{plugin} {variant} was replaced"
    assert Artifact.load(built["static-4"].path).inputs[0].shape == (4, 1, 8, 8)
    assert Artifact.load(built["bounded"].path).inputs[0].max_shape == (8, 1, 8, 8)


def test_an_export_bounded_on_one_side_does_not_replace_the_plain_one(tmp_path):
    """Only --max-shapes: ort keeps the lower bound open (openvino makes it 1: batch1-8)."""
    pytest.importorskip("onnxruntime")
    plain = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path))
    capped = api.export("ort", ExportRequest(source=parse_model_arg(None), out_dir=tmp_path,
                                             max_shapes={"input": (8, 1, 8, 8)}))
    assert (plain.path.name, capped.path.name) == ("v1.0_digitsnet_default_8x8_fp32",
                                                   "v1.0_digitsnet_default_8x8_fp32_batch-8")
    assert Artifact.load(plain.path).manifest["cache_key"] == plain.manifest["cache_key"]


def test_models_with_one_file_name_get_one_folder_each(tmp_path):
    """``net.onnx``, ``other/net.onnx`` and the embedded model exported side by side: three folders,
    each named by its source's tag, none replacing another; the default model's name has no tag."""
    pytest.importorskip("onnxruntime")
    from dk.default_model import ONNX_PATH
    from dk.sources import source_tag

    (tmp_path / "other").mkdir()
    for path in (tmp_path / "net.onnx", tmp_path / "other" / "net.onnx"):
        path.write_bytes(ONNX_PATH.read_bytes())
    built = {}
    for model in (str(tmp_path / "net.onnx"), str(tmp_path / "other" / "net.onnx"), None):
        source = parse_model_arg(model)
        built[model] = api.export("ort", ExportRequest(source=source, out_dir=tmp_path / "out"))
        tag = source_tag(source)
        assert built[model].path.name == (f"v1.0_net-{tag}_default_8x8_fp32" if model else
                                          "v1.0_digitsnet_default_8x8_fp32")
        assert built[model].manifest["source"].get("tag", "") == tag
    names = sorted(p.name for p in (tmp_path / "out" / "ort").iterdir())
    assert len(names) == 3 and names == sorted(a.path.name for a in built.values())
    tags = [source_tag(parse_model_arg(str(p))) for p in (tmp_path / "net.onnx", tmp_path / "other" / "net.onnx")]
    assert tags[0] != tags[1] and all(len(t) == 8 and int(t, 16) >= 0 for t in tags)


def test_an_artifact_source_keeps_its_models_tag_and_is_not_rebuilt_over_itself(tmp_path):
    pytest.importorskip("onnxruntime")
    from dk.default_model import ONNX_PATH
    from dk.errors import ModelError
    from dk.sources import source_tag

    (tmp_path / "net.onnx").write_bytes(ONNX_PATH.read_bytes())
    first = api.export("ort", ExportRequest(source=parse_model_arg(str(tmp_path / "net.onnx")), out_dir=tmp_path))
    again = parse_model_arg(str(first.path))
    assert source_tag(again) == source_tag(parse_model_arg(str(tmp_path / "net.onnx")))
    with pytest.raises(ModelError, match=r"is the artifact this build would write .* use it as it is with --artifact"):
        api.export("ort", ExportRequest(source=again, out_dir=tmp_path))
    static = api.export("ort", ExportRequest(source=again, out_dir=tmp_path, dynamic_batch=False))
    assert static.path.name == first.path.name + "_batch1"
    assert Artifact.load(first.path).manifest["cache_key"] == first.manifest["cache_key"]  # left as it was
