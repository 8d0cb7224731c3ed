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
